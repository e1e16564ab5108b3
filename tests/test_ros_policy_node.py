"""The policy node with real rclpy over Fast DDS on loopback: it publishes nothing until enabled, drops NaN actions,
clamps joint limits, and holds the last command within 2 periods when the joint states stop.

Actions come from the node's chunk topic (``~/action_chunk``: chunks computed elsewhere), so these tests need no
policy model; the closed loop with a real policy is in test_ros_closed_loop.py."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy")

from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Float64, Float64MultiArray, String  # noqa: E402
from std_srvs.srv import SetBool  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402

from ros_nodes.harness import RosHarness  # noqa: E402
from ros_nodes.policy_node import PolicyNode  # noqa: E402
from ros_nodes.ros_io import joint_state  # noqa: E402
from ros_nodes.safety import FR3_UPPER  # noqa: E402

HOME = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])
RATE = 15.0


class FakeArm:
    """A probe standing in for the controller side: publishes joint states at 30 Hz, records commands."""

    def __init__(self, ros: RosHarness):
        self.node = ros.add(ros.make_node("fake_arm"))
        self.publishing = True
        self.lock = threading.Lock()
        self.commands: list[tuple[float, np.ndarray]] = []
        self.gripper: list[float] = []
        self.diagnostics: list[dict] = []
        self.state_pub = self.node.create_publisher(JointState, "/joint_states", 10)
        self.chunk_pub = self.node.create_publisher(Float64MultiArray, "/robosteer_policy/action_chunk", 10)
        self.node.create_subscription(JointTrajectory, "/fr3_arm_controller/joint_trajectory", self._on_cmd, 50)
        self.node.create_subscription(Float64, "/robosteer/gripper_width", lambda m: self.gripper.append(m.data), 50)
        self.node.create_subscription(
            String, "/robosteer_policy/diagnostics", lambda m: self.diagnostics.append(json.loads(m.data)), 10
        )
        self.node.create_timer(1 / 30, self._publish_state)

    def _publish_state(self):
        if self.publishing:
            t = self.node.get_clock().now().nanoseconds * 1e-9
            self.state_pub.publish(joint_state(HOME, 0.04, "fr3_joint", t))

    def _on_cmd(self, msg: JointTrajectory):
        assert list(msg.joint_names) == [f"fr3_joint{i}" for i in range(1, 8)]
        assert msg.points[0].time_from_start.nanosec == pytest.approx(1e9 / RATE, abs=1)
        with self.lock:
            self.commands.append((time.monotonic(), np.array(msg.points[0].positions)))

    def send_chunk(self, chunk: np.ndarray):
        self.chunk_pub.publish(Float64MultiArray(data=chunk.astype(float).ravel().tolist()))

    def commands_after(self, t: float) -> list[np.ndarray]:
        with self.lock:
            return [c for stamp, c in self.commands if stamp > t]


def start(ros: RosHarness, **params) -> tuple[PolicyNode, FakeArm]:
    values = {"policy": "", "control_rate_hz": RATE, "diagnostics_rate_hz": 10.0, **params}
    node = ros.add(
        PolicyNode(context=ros.context, parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])
    )
    arm = FakeArm(ros)
    return node, arm


def enable(ros: RosHarness, arm: FakeArm, on: bool = True):
    response = ros.call(arm.node, SetBool, "/robosteer_policy/enable", SetBool.Request(data=on))
    assert response.success


def test_disabled_node_publishes_nothing_until_enabled(ros_domain_id):
    with RosHarness(domain_id=ros_domain_id) as ros:
        node, arm = start(ros)
        assert ros.wait_for(lambda: node.joint_buffer.count > 5, timeout=15), "joint states never arrived"
        arm.send_chunk(np.tile(np.r_[HOME, 0.04], (15, 1)))
        time.sleep(1.0)
        assert arm.commands == [] and arm.gripper == []
        enable(ros, arm)
        assert ros.wait_for(lambda: len(arm.commands) >= 5, timeout=10), "enabled node sent no commands"
        np.testing.assert_allclose(arm.commands[0][1], HOME, atol=1e-6)  # nothing queued yet: holds the measured pose
        assert arm.gripper and arm.gripper[-1] == pytest.approx(0.04)
        enable(ros, arm, False)
        time.sleep(0.3)
        count = len(arm.commands)
        time.sleep(0.6)
        assert len(arm.commands) == count, "a disabled node must stop publishing"


def test_nan_action_dropped_and_joint_limits_clamped(ros_domain_id):
    with RosHarness(domain_id=ros_domain_id) as ros:
        # isolate the position clamp from the step clamp, and from the watchdog on a loaded machine
        node, arm = start(ros, max_joint_velocity=[100.0], stale_periods=30.0)
        assert ros.wait_for(lambda: node.joint_buffer.count > 3, timeout=15)
        enable(ros, arm)
        assert ros.wait_for(lambda: len(arm.commands) >= 2, timeout=10)
        beyond = HOME.copy()
        beyond[0] = FR3_UPPER[0] + 1.0
        chunk = np.stack([np.r_[HOME, 0.04], np.r_[HOME, np.nan], *[np.r_[beyond, 0.5]] * 6])  # (8, 8)
        t0 = time.monotonic()
        arm.send_chunk(chunk)
        assert ros.wait_for(lambda: node.safety.stats.clamped_position >= 3, timeout=10), "no clamp happened"
        time.sleep(0.3)
        sent = arm.commands_after(t0)
        assert all(np.all(np.isfinite(c)) for c in sent), "a NaN reached the controller"
        assert node.safety.stats.dropped_nonfinite == 1
        assert max(c[0] for c in sent) == pytest.approx(FR3_UPPER[0])
        assert all(c[0] <= FR3_UPPER[0] + 1e-9 for c in sent)
        assert max(arm.gripper) <= 0.08 + 1e-9
        assert ros.wait_for(
            lambda: arm.diagnostics and arm.diagnostics[-1]["safety"]["dropped_nonfinite"] == 1, timeout=5
        ), "diagnostics must report the dropped action"


def test_watchdog_holds_when_joint_states_stop(ros_domain_id):
    with RosHarness(domain_id=ros_domain_id) as ros:
        node, arm = start(ros)
        assert ros.wait_for(lambda: node.joint_buffer.count > 3, timeout=15)
        enable(ros, arm)
        ramp = np.array([np.r_[HOME + [0.01 * i, 0, 0, 0, 0, 0, 0], 0.04] for i in range(1, 200)])  # (199, 8)

        def moving():
            last = arm.commands_after(0.0)[-5:]
            return len(last) == 5 and len({round(c[0], 6) for c in last}) == 5

        for _ in range(3):  # a load spike on a shared machine may trip the watchdog, which clears the queue
            arm.send_chunk(ramp)
            if ros.wait_for(moving, timeout=3):
                break
        assert moving(), "the ramp should move the command every tick"
        arm.publishing = False
        stopped = time.monotonic()
        time.sleep(1.0)
        # allow 2 periods for the watchdog plus transport/scheduling slack on a loaded 2-core machine
        held = arm.commands_after(stopped + 2 / RATE + 0.25)
        assert len(held) >= 5, "the node must keep publishing the hold command"
        assert all(np.array_equal(c, held[0]) for c in held), "commands must hold still without joint states"
        assert node.watchdog.holding and node.diag.holds_stale_input > 0
        arm.publishing = True
        assert ros.wait_for(lambda: not node.watchdog.holding, timeout=5), "fresh joint states end the hold"
