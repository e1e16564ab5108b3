"""Record demonstrations: the recorder node plus a teleop source, on the robot or on the sim node.

    ros2 launch robosteer record.launch.py dataset_root:=~/demos/wipe task:="wipe the table" \
        teleop_package:=gello teleop_executable:=gello_publisher
    ros2 service call /robosteer_recorder/start std_srvs/srv/Trigger   # ... then save or discard

use_sim:=true starts the sim node as the robot (the teleop source then commands it through its topics).
"""

import os
from pathlib import Path

from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node

from launch import LaunchDescription


def config_file(name: str) -> str:
    """A parameter file of this package: installed share/robosteer/config, else the source tree's launch/config."""
    try:
        from ament_index_python.packages import get_package_share_directory

        return os.path.join(get_package_share_directory("robosteer"), "config", name)
    except Exception:  # not installed with colcon: run from the repository
        return str(Path(__file__).resolve().parent / "config" / name)


def generate_launch_description():
    teleop = LaunchConfiguration("teleop_executable")
    return LaunchDescription(
        [
            DeclareLaunchArgument("dataset_root", description="dataset folder to create or extend"),
            DeclareLaunchArgument("task", default_value="", description="instruction of the episodes"),
            DeclareLaunchArgument("use_sim", default_value="false", description="start the sim node as the robot"),
            DeclareLaunchArgument("sim_task", default_value="pick_cube", description="sim task when use_sim:=true"),
            DeclareLaunchArgument("teleop_package", default_value="", description="ROS package of the teleop node"),
            DeclareLaunchArgument("teleop_executable", default_value="", description="its executable ('' = none)"),
            Node(
                package="robosteer",
                executable="robosteer-recorder-node",
                name="robosteer_recorder",
                output="screen",
                parameters=[
                    config_file("recorder.yaml"),
                    {"dataset_root": LaunchConfiguration("dataset_root"), "task": LaunchConfiguration("task")},
                ],
            ),
            Node(
                package="robosteer",
                executable="robosteer-sim-node",
                name="robosteer_sim",
                output="screen",
                parameters=[
                    config_file("sim.yaml"),
                    # no policy node while recording: step at once, reset nobody
                    {"task": LaunchConfiguration("sim_task"), "start_when_ready_topic": "", "policy_reset_service": ""},
                ],
                condition=IfCondition(LaunchConfiguration("use_sim")),
            ),
            Node(
                package=LaunchConfiguration("teleop_package"),
                executable=teleop,
                name="teleop",
                output="screen",
                condition=IfCondition(PythonExpression(["'", teleop, "' != ''"])),
            ),
        ]
    )
