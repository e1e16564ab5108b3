"""The pure parts of the ROS integration (no node spinning): buffers with max age, as-of frame alignment, the action
chunk queue with blending, the safety filter with FR3 forward kinematics, the stale-input watchdog, message reading."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from robosteer.errors import RobosteerError
from robosteer.ros.alignment import FrameAligner, LatestBuffer
from robosteer.ros.messages import any_image_rgb, image_kind, image_rgb, joint_state_arm, joint_state_gripper
from ros_nodes.chunk_queue import ActionChunkQueue
from ros_nodes.episode import EpisodeTracker
from ros_nodes.safety import FR3_LOWER, FR3_UPPER, SafetyConfig, SafetyFilter, StaleInputWatchdog, flange_pose


class FakeClock:
    def __init__(self, t=100.0):
        self.t = t

    def __call__(self):
        return self.t


def test_latest_buffer_rejects_values_older_than_max_age():
    clock = FakeClock()
    buf = LatestBuffer(max_age_s=0.1, clock=clock)
    assert buf.get() is None
    buf.put("a")
    clock.t += 0.05
    assert buf.get() == "a"
    clock.t += 0.06
    assert buf.get() is None and buf.latest() == "a"
    buf.put("old", stamp=clock.t - 1.0)  # out-of-order message: ignored
    assert buf.latest() == "a"


def test_aligner_takes_newest_at_or_before_tick_and_skips_stale_streams():
    aligner = FrameAligner(["state", "cam"], fps=10, max_age_s=0.15)
    for k in range(10):  # state at 30 Hz
        aligner.add("state", 1.0 + k / 30, k)
    aligner.add("cam", 1.0, "c0")
    aligner.add("cam", 1.2, "c1")
    assert aligner.sample(1.1) == {"state": 3, "cam": "c0"}
    assert aligner.sample(1.2) == {"state": 6, "cam": "c1"}
    assert aligner.sample(0.99) is None  # nothing yet
    assert aligner.sample(1.5) is None  # state last at 1.3: 0.2 s old > 0.15
    assert aligner.stats.frames == 2 and aligner.stats.skipped == 2
    assert aligner.stats.missing_by_stream["state"] == 2
    assert aligner.first_complete_time() == pytest.approx(1.0)
    ticks = aligner.tick_times(1.0, 1.3)
    assert len(ticks) == 4 and ticks[-1] == pytest.approx(1.3)


def test_chunk_queue_skips_stale_actions_and_blends_overlap():
    queue = ActionChunkQueue(blend_old=0.3)
    chunk = np.arange(5, dtype=float)[:, None] * np.ones((5, 8))  # action i = i
    # observation at tick 10, chunk ready at tick 12: actions for ticks 10, 11 are stale
    assert queue.push(chunk, start_tick=10, now_tick=12) == 3
    assert queue.stats.stale_skipped == 2
    assert queue.pop(12)[0] == 2.0
    new = np.full((4, 8), 10.0)  # from tick 13 on: overlaps ticks 13, 14
    queue.push(new, start_tick=13, now_tick=13)
    assert queue.pop(13)[0] == pytest.approx(0.3 * 3 + 0.7 * 10)
    assert queue.pop(15)[0] == 10.0  # tick 14 expired unexecuted
    assert queue.stats.expired == 1 and queue.stats.blended == 2
    assert queue.remaining(16) == 1 and queue.pop(20) is None
    with pytest.raises(RobosteerError):
        ActionChunkQueue(blend_old=1.0)


def test_nonfinite_actions_are_counted_on_arrival_and_leave_their_tick_empty():
    safety = SafetyFilter(SafetyConfig())
    queue = ActionChunkQueue(blend_old=0.3)
    chunk = np.zeros((4, 8))
    chunk[1, 3], chunk[2, 0] = np.nan, np.inf
    assert safety.screen_chunk(chunk).tolist() == [True, False, False, True]
    assert safety.stats.dropped_nonfinite == 2  # counted even if those ticks pass unexecuted
    assert queue.push(chunk, start_tick=0, now_tick=0) == 2 and queue.stats.nonfinite == 2
    assert queue.pop(1) is None and queue.pop(2) is None and queue.pop(3) is not None


def test_fr3_forward_kinematics_zero_pose():
    position = flange_pose(np.zeros(7))[:3, 3]
    np.testing.assert_allclose(position, [0.088, 0.0, 0.333 + 0.316 + 0.384 - 0.107], atol=1e-9)
    # joint 1 rotates the arm about z
    rotated = flange_pose([np.pi / 2, 0, 0, 0, 0, 0, 0])[:3, 3]
    np.testing.assert_allclose(rotated[:2], [0.0, 0.088], atol=1e-9)


HOME = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785, 0.04])


def test_safety_filter_drops_nonfinite_and_clamps_limits_and_steps():
    cfg = SafetyConfig(period_s=0.1, max_velocity=(1.0,))
    safety = SafetyFilter(cfg)
    assert safety.apply(np.r_[HOME[:7], np.nan], HOME) is None
    assert safety.apply(np.r_[np.inf, HOME[1:]], HOME) is None
    assert safety.stats.dropped_nonfinite == 2
    # a small step passes unchanged
    small = HOME + 0.05 * np.r_[np.ones(7), 0]
    np.testing.assert_allclose(safety.apply(small, HOME), small)
    # a big step is shortened to max_velocity * period = 0.1 rad per joint
    far = HOME + np.r_[np.full(7, 0.5), 0]
    np.testing.assert_allclose(safety.apply(far, HOME)[:7], HOME[:7] + 0.1)
    # beyond joint limits: clamped to the limit (previous already at the limit so the step limit doesn't interfere)
    at_limit = np.r_[FR3_UPPER, 0.04]
    beyond = at_limit + np.r_[np.full(7, 1.0), 0.5]
    out = safety.apply(beyond, at_limit)
    np.testing.assert_allclose(out[:7], FR3_UPPER)
    assert out[7] == pytest.approx(0.08)  # gripper clamped to max width
    assert safety.stats.clamped_position >= 1 and safety.stats.clamped_velocity >= 1
    assert np.all(np.array(FR3_LOWER) < np.array(FR3_UPPER))


def test_workspace_box_rejects_commands_that_leave_it():
    home_xyz = flange_pose(HOME[:7])[:3, 3]
    cfg = SafetyConfig(
        period_s=1.0, max_velocity=(3.0,), workspace_min=tuple(home_xyz - 0.05), workspace_max=tuple(home_xyz + 0.05)
    )
    safety = SafetyFilter(cfg)
    np.testing.assert_allclose(safety.apply(HOME, HOME), HOME)
    away = HOME.copy()
    away[0] += 0.8  # swing the base joint: the flange leaves the 10 cm box
    np.testing.assert_allclose(safety.apply(away, HOME)[:7], HOME[:7])
    assert safety.stats.rejected_workspace == 1
    with pytest.raises(RobosteerError):
        SafetyConfig(workspace_min=(0, 0), workspace_max=(1, 1))


def test_watchdog_holds_after_two_periods():
    dog = StaleInputWatchdog(period_s=0.1, max_periods=2)
    assert dog.is_stale(None, 5.0)
    assert not dog.is_stale(5.0, 5.15)
    assert not dog.is_stale(5.0, 5.19)
    assert dog.is_stale(5.0, 5.21) and dog.holds == 2


def test_message_readers_map_joint_names_and_image_encodings():
    names = [f"panda_joint{i}" for i in (3, 1, 2, 4, 5, 6, 7)] + ["panda_finger_joint1", "panda_finger_joint2"]
    msg = SimpleNamespace(name=names, position=[3, 1, 2, 4, 5, 6, 7, 0.02, 0.02])
    np.testing.assert_allclose(joint_state_arm(msg), [1, 2, 3, 4, 5, 6, 7])
    assert joint_state_gripper(msg) == pytest.approx(0.04)
    with pytest.raises(RobosteerError):
        joint_state_arm(SimpleNamespace(name=["a", "b"], position=[0, 0]))
    rgb = np.random.default_rng(0).integers(0, 255, (4, 6, 3), dtype=np.uint8)
    bgr = SimpleNamespace(height=4, width=6, step=18, encoding="bgr8", data=rgb[..., ::-1].tobytes())
    np.testing.assert_array_equal(image_rgb(bgr), rgb)
    assert image_rgb(bgr, size=8).shape == (8, 8, 3)
    with pytest.raises(RobosteerError):
        image_rgb(SimpleNamespace(height=1, width=1, step=2, encoding="16UC1", data=b"00"))


def test_compressed_images_decode_to_rgb():
    import cv2

    rgb = np.zeros((10, 12, 3), dtype=np.uint8)
    rgb[..., 0] = 200  # red
    ok, png = cv2.imencode(".png", rgb[..., ::-1])
    msg = SimpleNamespace(format="rgb8; png compressed bgr8", data=png.tobytes())
    np.testing.assert_array_equal(any_image_rgb(msg), rgb)
    assert any_image_rgb(msg, size=16).shape == (16, 16, 3)
    assert image_kind("/camera/front/image_raw/compressed") == "compressed_image"
    assert image_kind("/camera/front/image_raw") == "image"
    with pytest.raises(RobosteerError):
        any_image_rgb(SimpleNamespace(format="jpeg", data=b"not an image"))


def test_episode_tracker_detects_jumps_and_disagreement():
    tracker = EpisodeTracker([2.0], period_s=0.1, anchor_tolerance=0.2)
    home = np.zeros(7)
    assert not tracker.jumped(home, 1.0)  # the first state has nothing to jump from
    assert not tracker.jumped(home + 0.19, 1.1)  # 0.19 rad in 0.1 s < 2 rad/s * 0.1 s
    assert tracker.jumped(home + 0.19 + np.r_[0.0, 0.0, 0.3, 0, 0, 0, 0], 1.101)  # measured over a period: 0.3 > 0.2
    assert not tracker.jumped(home + 0.5, 1.3)  # a lost state: 0.5 rad over ~0.2 s is within 2 rad/s
    command, measured = np.zeros(8), np.zeros(8)
    measured[6], measured[7] = 0.19, 0.08  # the gripper width never counts
    assert not tracker.disagrees(command, measured)
    measured[3] = -0.21
    assert tracker.disagrees(command, measured)
    assert tracker.new_episode("jump") == 1 and tracker.new_episode("service") == 2
    assert tracker.stats == {"generation": 2, "resets": {"jump": 1, "service": 1}}
    with pytest.raises(RobosteerError):
        EpisodeTracker([1.0, 2.0], period_s=0.1, anchor_tolerance=0.2)
