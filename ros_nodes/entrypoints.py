"""Console-script entry points of the nodes. Each prepares the ROS environment (re-executing the process once with the
ROS 2 wheels' library path when needed) *before* importing rclpy, then runs the node."""

from __future__ import annotations

from robosteer.ros.env import ensure_ros_environment


def policy_node() -> None:
    """``robosteer-policy-node``: the policy node (see ros_nodes/policy_node.py)."""
    ensure_ros_environment()
    from ros_nodes.policy_node import main

    main()


def recorder_node() -> None:
    """``robosteer-recorder-node``: the demonstration recorder (see ros_nodes/recorder_node.py)."""
    ensure_ros_environment()
    from ros_nodes.recorder_node import main

    main()


def sim_node() -> None:
    """``robosteer-sim-node``: the MuJoCo Franka suite as a ROS 2 robot (see ros_nodes/sim_node.py)."""
    ensure_ros_environment()
    from ros_nodes.sim_node import main

    main()


NODES = {"policy": policy_node, "recorder": recorder_node, "sim": sim_node}
"""Node name -> entry point (``python -m ros_nodes <name> [--ros-args ...]``)."""
