"""A Franka FR3 (franka_ros2) with the robosteer policy node; optionally two RealSense cameras.

    ros2 launch robosteer deploy.launch.py robot_ip:=172.16.0.2 policy:=/path/to/checkpoint task:="pick up the cube"
    ros2 service call /robosteer_policy/enable std_srvs/srv/SetBool "{data: true}"

The policy node starts disabled and commands nothing until enabled. use_fake_hardware:=true runs franka_ros2's mock.
"""

import os
from pathlib import Path

from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.conditions import IfCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription


def config_file(name: str) -> str:
    """A parameter file of this package: installed share/robosteer/config, else the source tree's launch/config."""
    try:
        from ament_index_python.packages import get_package_share_directory

        return os.path.join(get_package_share_directory("robosteer"), "config", name)
    except Exception:  # not installed with colcon: run from the repository
        return str(Path(__file__).resolve().parent / "config" / name)


def realsense(camera_name: str, serial_arg: str):
    return IncludeLaunchDescription(
        PythonLaunchDescriptionSource(
            PathJoinSubstitution([FindPackageShare("realsense2_camera"), "launch", "rs_launch.py"])
        ),
        launch_arguments={
            "camera_namespace": "camera",
            "camera_name": camera_name,
            "serial_no": LaunchConfiguration(serial_arg),
            "rgb_camera.color_profile": "640x480x30",
            "enable_depth": "false",
        }.items(),
        condition=IfCondition(LaunchConfiguration("use_realsense")),
    )


def generate_launch_description():
    return LaunchDescription(
        [
            DeclareLaunchArgument("robot_ip", description="FR3 control box IP"),
            DeclareLaunchArgument("use_fake_hardware", default_value="false"),
            DeclareLaunchArgument("load_gripper", default_value="true"),
            DeclareLaunchArgument("robot_type", default_value="fr3"),
            DeclareLaunchArgument("use_realsense", default_value="false", description="start two RealSense cameras"),
            DeclareLaunchArgument("front_serial", default_value="''", description="serial of the front camera"),
            DeclareLaunchArgument("wrist_serial", default_value="''", description="serial of the wrist camera"),
            DeclareLaunchArgument("policy", default_value="embedded", description="'embedded' or a checkpoint folder"),
            DeclareLaunchArgument("task", default_value="", description="instruction (or publish /robosteer/task)"),
            DeclareLaunchArgument("device", default_value="cpu", description="torch device of the policy"),
            IncludeLaunchDescription(
                PythonLaunchDescriptionSource(
                    PathJoinSubstitution([FindPackageShare("franka_bringup"), "launch", "franka.launch.py"])
                ),
                launch_arguments={
                    "robot_ip": LaunchConfiguration("robot_ip"),
                    "use_fake_hardware": LaunchConfiguration("use_fake_hardware"),
                    "load_gripper": LaunchConfiguration("load_gripper"),
                    "robot_type": LaunchConfiguration("robot_type"),
                }.items(),
            ),
            realsense("front", "front_serial"),
            realsense("wrist", "wrist_serial"),
            Node(
                package="robosteer",
                executable="robosteer-policy-node",
                name="robosteer_policy",
                output="screen",
                parameters=[
                    config_file("policy_fr3.yaml"),
                    {
                        "policy": LaunchConfiguration("policy"),
                        "task": LaunchConfiguration("task"),
                        "device": LaunchConfiguration("device"),
                    },
                ],
            ),
        ]
    )
