"""Gripper command outputs of the policy node: franka_gripper Move/Grasp actions where ``franka_msgs`` is importable
(on the robot), otherwise a width topic (std_msgs/Float64, metres) that the sim node and GELLO-style gripper managers
take."""

from __future__ import annotations

from std_msgs.msg import Float64


def franka_msgs_available() -> bool:
    try:
        import franka_msgs.action  # noqa: F401
    except ImportError:
        return False
    return True


class WidthTopicGripper:
    """Publishes the width target every control tick."""

    def __init__(self, node, topic: str):
        self.publisher = node.create_publisher(Float64, topic, 10)

    def command(self, width: float) -> None:
        self.publisher.publish(Float64(data=float(width)))


class FrankaActionGripper:
    """Sends franka_gripper Grasp when the target closes below ``grasp_below`` and Move otherwise.

    A goal is sent only when the target moved by more than ``deadband`` from the last goal and no goal is running:
    the gripper is slow (about 1 s per stroke), so per-tick goals would preempt each other.
    """

    def __init__(self, node, namespace: str, speed: float, force: float, grasp_below: float, deadband: float):
        from franka_msgs.action import Grasp, Move
        from rclpy.action import ActionClient

        self._move_type, self._grasp_type = Move, Grasp
        self.move = ActionClient(node, Move, f"{namespace}/move")
        self.grasp = ActionClient(node, Grasp, f"{namespace}/grasp")
        self.speed, self.force = speed, force
        self.grasp_below, self.deadband = grasp_below, deadband
        self._last_target: float | None = None
        self._pending = None
        self.logger = node.get_logger()

    def command(self, width: float) -> None:
        if self._pending is not None and not self._pending.done():
            return
        if self._last_target is not None and abs(width - self._last_target) < self.deadband:
            return
        if width < self.grasp_below:
            goal = self._grasp_type.Goal()
            goal.width, goal.speed, goal.force = float(width), self.speed, self.force
            goal.epsilon.inner, goal.epsilon.outer = 0.08, 0.08
            client = self.grasp
        else:
            goal = self._move_type.Goal()
            goal.width, goal.speed = float(width), self.speed
            client = self.move
        if not client.server_is_ready():
            self.logger.warn("franka gripper action server not ready; gripper command skipped", throttle_duration_sec=5)
            return
        self._pending = client.send_goal_async(goal)
        self._last_target = width


def make_gripper(
    node, mode: str, topic: str, action_ns: str, speed: float, force: float, grasp_below: float, deadband: float
):
    """The gripper output for ``mode`` (auto | action | topic | none); None for none."""
    if mode == "none":
        return None
    if mode == "action" or (mode == "auto" and franka_msgs_available()):
        return FrankaActionGripper(node, action_ns, speed, force, grasp_below, deadband)
    return WidthTopicGripper(node, topic)
