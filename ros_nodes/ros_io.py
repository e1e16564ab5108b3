"""rclpy helpers shared by the nodes: declared-parameter tables, message builders, time conversion.

Importing this module imports rclpy: call :func:`robosteer.ros.env.ensure_ros_environment` before (the nodes'
``main()`` do).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import rclpy
from builtin_interfaces.msg import Duration
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from robosteer.constants import N_ARM_JOINTS, joint_names
from robosteer.ros.messages import seconds_to_stamp_parts


@dataclass(frozen=True)
class Param:
    """One declared ROS parameter: its default (which fixes its type) and what it means."""

    default: Any
    """Default value; lists must be non-empty so ROS can infer the array type."""
    description: str
    """Shown by ``ros2 param describe``."""


def declare_all(node: Node, table: dict[str, Param]) -> dict[str, Any]:
    """Declare every parameter of ``table`` on ``node`` and return their current values (overrides applied)."""
    for name, param in table.items():
        node.declare_parameter(name, param.default, ParameterDescriptor(description=param.description))
    return {name: node.get_parameter(name).value for name in table}


def now_seconds(node: Node) -> float:
    """The node clock in float seconds (system time unless use_sim_time)."""
    return node.get_clock().now().nanoseconds * 1e-9


def set_stamp(header, t: float) -> None:
    header.stamp.sec, header.stamp.nanosec = seconds_to_stamp_parts(t)


def joint_trajectory(arm: np.ndarray, prefix: str, period_s: float) -> JointTrajectory:
    """A one-point JointTrajectory reaching ``arm`` (7,) after one control period (header stamp 0 = start now)."""
    msg = JointTrajectory()
    msg.joint_names = joint_names(prefix)
    point = JointTrajectoryPoint()
    point.positions = [float(x) for x in arm[:N_ARM_JOINTS]]
    ns = int(round(period_s * 1e9))
    point.time_from_start = Duration(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)
    msg.points = [point]
    return msg


def float_array(values: np.ndarray) -> Float64MultiArray:
    msg = Float64MultiArray()
    msg.data = [float(x) for x in values]
    return msg


def joint_state(arm: np.ndarray, gripper_width: float | None, prefix: str, t: float) -> JointState:
    """JointState with the 7 arm joints and, when given, the two finger joints (each half the width)."""
    msg = JointState()
    set_stamp(msg.header, t)
    names = joint_names(prefix)
    positions = [float(x) for x in arm[:N_ARM_JOINTS]]
    if gripper_width is not None:
        finger = prefix.replace("_joint", "_finger_joint")
        names += [f"{finger}1", f"{finger}2"]
        positions += [gripper_width / 2.0, gripper_width / 2.0]
    msg.name = names
    msg.position = positions
    return msg


def image_message(rgb: np.ndarray, t: float, frame_id: str = "") -> Image:
    """(H, W, 3) uint8 RGB -> sensor_msgs/Image rgb8."""
    msg = Image()
    set_stamp(msg.header, t)
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(rgb.shape[0]), int(rgb.shape[1])
    msg.encoding = "rgb8"
    msg.step = 3 * msg.width
    msg.data = np.ascontiguousarray(rgb, dtype=np.uint8).tobytes()
    return msg


def make_executor(context=None) -> Executor:
    """The executor the nodes and :class:`~ros_nodes.harness.RosHarness` spin on: rclpy's SingleThreadedExecutor.

    Not rclpy's MultiThreadedExecutor: in this rclpy (Jazzy 7.1) it yields a callback task again while the task waits
    in its thread pool without having started, submits it again and returns at once instead of waiting
    (ros2/rclpy#1452, fixed upstream by ros2/rclpy#1547). While the pool threads wait for the GIL its spin thread
    loops on that; in the in-process closed-loop test the pending list reached ~1900 entries and the spin threads took
    about a core, which slowed the policy's inference from ~0.1 s to 0.3-2.5 s per chunk and the 15 Hz loop to 2-8 Hz.
    Every callback here is short (inference has a thread of its own, the sim steps on its own thread), so one thread
    serves them all.
    """
    return SingleThreadedExecutor(context=context)


def spin_node(make_node, args=None) -> None:
    """Run one node until Ctrl-C or shutdown: ``rclpy.init``, spin ``make_node()`` on :func:`make_executor`, clean up.

    ``make_node`` is a factory because the node needs the context that ``rclpy.init`` creates.
    """
    rclpy.init(args=args)
    node = make_node()
    executor = make_executor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
