"""Gripper command outputs of the policy node: franka_gripper Move/Grasp actions where ``franka_msgs`` is importable
(on the robot), otherwise a width topic (std_msgs/Float64, metres) that the sim node and GELLO-style gripper managers
take."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict

from action_msgs.msg import GoalStatus
from std_msgs.msg import Float64

from robosteer.errors import RobosteerError
from ros_nodes.diagnostics import GripperDiagnostics


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
    the gripper is slow (about 1 s per stroke), so per-tick goals would preempt each other. Every goal ends in one
    outcome counted in :attr:`diag` (:class:`~ros_nodes.diagnostics.GripperDiagnostics`): succeeded, rejected, aborted,
    or timeout when no result came within ``result_timeout_s`` (the goal is then canceled and the next target change
    goes out, so a silent server never wedges the client). A failed goal is not retried for the same target. A failure
    is logged when the status changes (not per repeat), a success after failures once at info.
    """

    def __init__(
        self,
        node,
        namespace: str,
        speed: float,
        force: float,
        grasp_below: float,
        deadband: float,
        result_timeout_s: float = 5.0,
    ):
        from franka_msgs.action import Grasp, Move
        from rclpy.action import ActionClient

        if not result_timeout_s > 0:
            raise RobosteerError(f"gripper_result_timeout_s must be > 0 (e.g. 5.0), got {result_timeout_s}")
        self._move_type, self._grasp_type = Move, Grasp
        self.move = ActionClient(node, Move, f"{namespace}/move")
        self.grasp = ActionClient(node, Grasp, f"{namespace}/grasp")
        self.speed, self.force = speed, force
        self.grasp_below, self.deadband = grasp_below, deadband
        self.result_timeout_s = float(result_timeout_s)
        self._last_target: float | None = None
        self.diag = GripperDiagnostics()
        self._lock = threading.RLock()  # futures may complete on the executor thread, stats are read from others
        self._seq = 0  # the goal in flight; callbacks of an older (timed-out) goal are ignored
        self._sent_at = 0.0
        self._what = ""
        self._handle = None
        self.logger = node.get_logger()

    def command(self, width: float) -> None:
        with self._lock:
            self._expire(time.monotonic())
            if self.diag.in_flight:
                return
            if self._last_target is not None and abs(width - self._last_target) < self.deadband:
                return
            if width < self.grasp_below:
                goal = self._grasp_type.Goal()
                goal.width, goal.speed, goal.force = float(width), self.speed, self.force
                goal.epsilon.inner, goal.epsilon.outer = 0.08, 0.08
                client, kind = self.grasp, "grasp"
            else:
                goal = self._move_type.Goal()
                goal.width, goal.speed = float(width), self.speed
                client, kind = self.move, "move"
            if not client.server_is_ready():
                self.logger.warn(
                    "franka gripper action server not ready; gripper command skipped", throttle_duration_sec=5
                )
                return
            self._seq += 1
            seq = self._seq
            self._sent_at, self._what, self._handle = time.monotonic(), f"{kind} {width:.3f} m", None
            self.diag.goals_sent += 1
            self.diag.in_flight = True
            self._last_target = width
            future = client.send_goal_async(goal)
        future.add_done_callback(lambda f: self._on_goal_response(seq, f))

    def stats(self) -> dict:
        """The diagnostics as a dict (a goal past its timeout is counted first)."""
        with self._lock:
            self._expire(time.monotonic())
            return asdict(self.diag)

    def reset_stats(self) -> None:
        """Zero the counters; the status, the error and a goal in flight stay."""
        with self._lock:
            d = self.diag
            self.diag = GripperDiagnostics(in_flight=d.in_flight, status=d.status, error=d.error)

    def _expire(self, now: float) -> None:
        """Give up on the goal in flight once it is older than the timeout (lock held): cancel it, count a timeout."""
        if not self.diag.in_flight or now - self._sent_at < self.result_timeout_s:
            return
        self._seq += 1  # whatever still arrives for it is ignored
        if self._handle is not None:
            self._handle.cancel_goal_async()
        self._finish("timeout", f"{self._what}: no result within {self.result_timeout_s:g} s (goal canceled)")

    def _finish(self, outcome: str, error: str = "") -> None:
        was = self.diag.status
        if not self.diag.record(outcome, error):
            return
        if outcome == "succeeded":
            self.logger.info(f"franka gripper goals succeed again ({self._what}) after: {was}")
        else:
            self.logger.error(
                f"franka gripper goal {outcome}: {error} (repeats are counted in the diagnostics, not logged)"
            )

    def _on_goal_response(self, seq: int, future) -> None:
        handle = future.result() if future.exception() is None else None
        with self._lock:
            if seq != self._seq:  # timed out before the server answered: cancel it if it runs
                if handle is not None and handle.accepted:
                    handle.cancel_goal_async()
                return
            if handle is None:
                self._finish("rejected", f"{self._what}: goal request failed: {future.exception()}")
                return
            if not handle.accepted:
                self._finish("rejected", f"{self._what}: rejected by the action server")
                return
            self._handle = handle
        handle.get_result_async().add_done_callback(lambda f: self._on_result(seq, f))

    def _on_result(self, seq: int, future) -> None:
        response = future.result() if future.exception() is None else None
        with self._lock:
            if seq != self._seq:
                return
            self._handle = None
            if response is not None and response.status == GoalStatus.STATUS_SUCCEEDED and response.result.success:
                self._finish("succeeded")
                return
            if response is None:
                detail = f"no result: {future.exception()}"
            else:
                name = _STATUS_NAMES.get(response.status, str(response.status))
                detail = f"status {name}, success {response.result.success}, error {response.result.error!r}"
            self._finish("aborted", f"{self._what}: {detail}")


_STATUS_NAMES = {
    GoalStatus.STATUS_SUCCEEDED: "succeeded",
    GoalStatus.STATUS_CANCELED: "canceled",
    GoalStatus.STATUS_ABORTED: "aborted",
}


def make_gripper(
    node,
    mode: str,
    topic: str,
    action_ns: str,
    speed: float,
    force: float,
    grasp_below: float,
    deadband: float,
    result_timeout_s: float = 5.0,
):
    """The gripper output for ``mode`` (auto | action | topic | none); None for none."""
    if mode == "none":
        return None
    if mode == "action" or (mode == "auto" and franka_msgs_available()):
        return FrankaActionGripper(node, action_ns, speed, force, grasp_below, deadband, result_timeout_s)
    return WidthTopicGripper(node, topic)
