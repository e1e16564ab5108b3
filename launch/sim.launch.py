"""The MuJoCo Franka suite as a ROS 2 robot plus the policy node driving it.

ros2 launch robosteer sim.launch.py task:=pick_cube policy:=embedded
"""

import os
from pathlib import Path

from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
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
    return LaunchDescription(
        [
            DeclareLaunchArgument("task", default_value="pick_cube", description="sim task name"),
            DeclareLaunchArgument("variations", default_value="none", description="sim variation preset"),
            DeclareLaunchArgument("policy", default_value="embedded", description="'embedded' or a checkpoint folder"),
            Node(
                package="robosteer",
                executable="robosteer-sim-node",
                name="robosteer_sim",
                output="screen",
                parameters=[
                    config_file("sim.yaml"),
                    {"task": LaunchConfiguration("task"), "variations": LaunchConfiguration("variations")},
                ],
            ),
            Node(
                package="robosteer",
                executable="robosteer-policy-node",
                name="robosteer_policy",
                output="screen",
                parameters=[config_file("policy_sim.yaml"), {"policy": LaunchConfiguration("policy")}],
            ),
        ]
    )
