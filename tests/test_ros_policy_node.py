"""The policy node with real rclpy over Fast DDS on loopback: it publishes nothing until enabled, drops NaN actions,
clamps joint limits, holds the last command within 2 periods when the joint states stop, and keeps episodes apart:
``~/reset`` and a jump of the measured state drop the queued plan and a chunk still being computed, and an arm moved
by hand is never pulled back.

Actions come from the node's chunk topic (``~/action_chunk``: chunks computed elsewhere), so most tests need no
policy model; the in-flight chunk test uses a policy whose inference waits for the test. The closed loop with a real
policy is in test_ros_closed_loop.py and test_ros_parity.py."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]

rclpy = pytest.importorskip("rclpy")

from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image, JointState  # noqa: E402
from std_msgs.msg import Bool, Float64, Float64MultiArray, String  # noqa: E402
from std_srvs.srv import SetBool, Trigger  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402

from ros_nodes.harness import RosHarness  # noqa: E402
from ros_nodes.policy_node import PolicyNode  # noqa: E402
from ros_nodes.ros_io import image_message, joint_state  # noqa: E402
from ros_nodes.safety import FR3_UPPER  # noqa: E402

HOME = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])
RATE = 15.0


class FakeArm:
    """A probe standing in for the controller side: publishes joint states at 30 Hz, records commands."""

    def __init__(self, ros: RosHarness):
        self.node = ros.add(ros.make_node("fake_arm"))
        self.publishing = True
        self.position = HOME.copy()
        """What the arm measures (a test moves it as a hand would)."""
        self.camera = False
        """Also publish a front camera image stamped like each joint state."""
        self.lock = threading.Lock()
        self.commands: list[tuple[float, np.ndarray]] = []
        self.gripper: list[float] = []
        self.diagnostics: list[dict] = []
        self.state_pub = self.node.create_publisher(JointState, "/joint_states", 10)
        self.image_pub = self.node.create_publisher(Image, "/camera/front/image_raw", 2)
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
            if self.camera:
                self.image_pub.publish(image_message(np.zeros((32, 32, 3), np.uint8), t))
            self.state_pub.publish(joint_state(self.position, 0.04, "fr3_joint", t))

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


def start(ros: RosHarness, policy=None, **params) -> tuple[PolicyNode, FakeArm]:
    values = {"policy": "", "control_rate_hz": RATE, "diagnostics_rate_hz": 10.0, **params}
    node = ros.add(
        PolicyNode(
            policy=policy, context=ros.context, parameter_overrides=[Parameter(k, value=v) for k, v in values.items()]
        )
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
        # isolate the position clamp from the step clamp, from the anchor check (this arm never follows) and from the
        # watchdog on a loaded machine
        node, arm = start(ros, max_joint_velocity=[100.0], stale_periods=30.0, anchor_tolerance=100.0)
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
        node, arm = start(ros, anchor_tolerance=100.0)  # the fake arm does not follow the ramp
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


def test_arm_moved_by_hand_is_never_pulled_back(ros_domain_id):
    with RosHarness(domain_id=ros_domain_id) as ros:
        node, arm = start(ros, stale_periods=30.0)
        assert ros.wait_for(lambda: node.joint_buffer.count > 3, timeout=15)
        enable(ros, arm)
        arm.send_chunk(np.tile(np.r_[HOME, 0.04], (150, 1)))  # a plan that keeps the arm at HOME for 10 s
        assert ros.wait_for(lambda: node.queue.remaining(node.last_tick or 0) > 20, timeout=10)
        t0 = time.monotonic()
        for _ in range(25):  # a hand pushes joint 1 by 0.5 rad at 0.6 rad/s: slower than a jump, beyond tolerance
            arm.position = arm.position + np.r_[0.02, np.zeros(6)]
            time.sleep(1 / 30)
        time.sleep(0.5)
        sent = [c[0] for c in arm.commands_after(t0)]
        assert len(sent) >= 5, "the node kept publishing while the arm moved"
        steps = np.diff(sent)
        assert np.all(steps >= -1e-9), f"a command stepped back towards the old pose: {np.round(sent, 3)}"
        assert sent[-1] == pytest.approx(arm.position[0], abs=0.2), (  # 0.2: the default anchor_tolerance
            f"commands must follow the arm to where the hand left it ({arm.position[0]:.2f}), got {sent[-1]:.2f}"
        )
        assert node.episodes.reasons["disagreement"] >= 1 and node.queue.remaining(node.last_tick) == 0


def test_reset_service_and_state_jump_drop_the_queued_plan(ros_domain_id):
    with RosHarness(domain_id=ros_domain_id) as ros:
        node, arm = start(ros, stale_periods=30.0, anchor_tolerance=100.0)
        assert ros.wait_for(lambda: node.joint_buffer.count > 3, timeout=15)
        enable(ros, arm)
        ramp = np.array([np.r_[HOME + [0.01 * i, 0, 0, 0, 0, 0, 0], 0.04] for i in range(1, 200)])  # (199, 8)
        for trigger in ("service", "jump"):
            arm.send_chunk(ramp)
            assert ros.wait_for(lambda: len(arm.commands_after(0.0)) and arm.commands[-1][1][0] > HOME[0] + 0.03, 10)
            if trigger == "service":
                response = ros.call(arm.node, Trigger, "/robosteer_policy/reset", Trigger.Request())
                assert response.success
            else:
                arm.position = HOME + np.r_[0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0]  # teleported: faster than any joint
            assert ros.wait_for(lambda t=trigger: node.episodes.reasons[t] >= 1, timeout=5)
            t0 = time.monotonic()
            time.sleep(0.5)
            held = arm.commands_after(t0)
            assert len(held) >= 3 and all(np.allclose(c, arm.position, atol=1e-9) for c in held), (
                f"after a {trigger} reset the node must hold the measured pose, not continue the old plan"
            )
            arm.position = HOME.copy()
            time.sleep(0.3)


class GatedPolicy:
    """A policy whose inference waits until the test releases it; its first chunk moves the arm away, later ones
    hold the measured pose."""

    image_keys = ["observation.images.front"]
    config = None

    def __init__(self):
        self.called = threading.Event()
        self.release = threading.Event()

    def predict_action_chunk(self, obs, task):
        first = not self.called.is_set()
        self.called.set()
        self.release.wait(timeout=30)
        offset = 0.5 if first else 0.0  # the first chunk (the one the test makes stale) would move the arm away
        return np.tile(np.r_[obs["observation.state"][:7] + offset, 0.04], (30, 1))  # (30, 8)


def test_chunk_computed_before_a_reset_is_discarded_and_ready_is_reported(ros_domain_id):
    policy = GatedPolicy()
    with RosHarness(domain_id=ros_domain_id) as ros:
        node, arm = start(ros, policy, task="t", camera_names=["front"], camera_topics=["/camera/front/image_raw"])
        ready: list[bool] = []
        arm.node.create_subscription(
            Bool,
            "/robosteer_policy/ready",
            lambda m: ready.append(m.data),
            rclpy.qos.QoSProfile(depth=1, durability=rclpy.qos.DurabilityPolicy.TRANSIENT_LOCAL),
        )
        arm.camera = True
        enable(ros, arm)
        assert policy.called.wait(timeout=10), "no inference was requested (images paired with the state?)"
        assert ros.wait_for(lambda: ready == [False], timeout=5), f"not ready before the first chunk: {ready}"
        t0 = time.monotonic()
        assert ros.call(arm.node, Trigger, "/robosteer_policy/reset", Trigger.Request()).success
        policy.release.set()
        assert ros.wait_for(lambda: node.diag.stale_chunks_dropped == 1, timeout=10), node.diagnostics()
        assert ros.wait_for(lambda: ready[-1:] == [True], timeout=5), "ready after the first chunk"
        time.sleep(0.5)
        after = arm.commands_after(t0)
        assert after and all(c[0] < HOME[0] + 0.01 for c in after), "the stale chunk must not be executed"
        assert node.diagnostics()["pairing_age_ms"]["max"] == pytest.approx(0.0, abs=1e-6), "paired by stamp"
