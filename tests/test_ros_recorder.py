"""The recorder node with real rclpy: start / save / discard episodes over std_srvs/Trigger and the result is a
LeRobotDataset v3 that lerobot loads, with as-of aligned state, action, images and the task."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]

rclpy = pytest.importorskip("rclpy")

from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image, JointState  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from ros_nodes.harness import RosHarness  # noqa: E402
from ros_nodes.recorder_node import RecorderNode  # noqa: E402
from ros_nodes.ros_io import image_message, joint_state  # noqa: E402

SIZE = 24


class Teleop:
    """Publishes a robot (joint states with fingers, 30 Hz), a GELLO-style leader (25 Hz) and two cameras (15 Hz)."""

    def __init__(self, ros: RosHarness):
        self.node = ros.add(ros.make_node("teleop_probe"))
        self.k = 0
        self.state = self.node.create_publisher(JointState, "/joint_states", 10)
        self.leader = self.node.create_publisher(JointState, "/gello/joint_states", 10)
        self.cams = {c: self.node.create_publisher(Image, f"/camera/{c}/image_raw", 2) for c in ("front", "wrist")}
        self.status: list[dict] = []
        self.node.create_subscription(
            String, "/robosteer_recorder/status", lambda m: self.status.append(json.loads(m.data)), 10
        )
        self.node.create_timer(1 / 30, self._robot)
        self.node.create_timer(1 / 25, self._teleop)
        self.node.create_timer(1 / 15, self._camera)

    def now(self):
        return self.node.get_clock().now().nanoseconds * 1e-9

    def _robot(self):
        self.k += 1
        self.state.publish(
            joint_state(np.full(7, 0.001 * self.k) + [0, 0, 0, -2, 0, 1.5, 0], 0.06, "fr3_joint", self.now())
        )

    def _teleop(self):
        msg = joint_state(np.full(7, 0.5), 0.02, "fr3_joint", self.now())
        self.leader.publish(msg)

    def _camera(self):
        for i, pub in enumerate(self.cams.values()):
            pub.publish(image_message(np.full((32, 32, 3), 40 + 100 * i, dtype=np.uint8), self.now()))


def test_recorder_writes_episodes_lerobot_loads(tmp_path, ros_domain_id):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    root = tmp_path / "demos"
    params = {
        "dataset_root": str(root),
        "task": "wipe the table",
        "image_size": SIZE,
        "fps": 15.0,
        "episode_labels": '{"surface": "wood"}',
    }
    with RosHarness(domain_id=ros_domain_id) as ros:
        recorder = ros.add(
            RecorderNode(context=ros.context, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
        )
        probe = Teleop(ros)

        def trigger(name):
            return ros.call(probe.node, Trigger, f"/robosteer_recorder/{name}", Trigger.Request())

        assert not trigger("save").success  # nothing open yet: refused with a message
        assert ros.wait_for(lambda: recorder.session.aligner.buffers["image.wrist"].first_stamp, timeout=15)
        assert trigger("start").success
        assert ros.wait_for(lambda: recorder.sink.frames_in_episode >= 12, timeout=20)
        saved = trigger("save")
        assert saved.success, saved.message
        # a saved episode is complete on disk at once: killing the recorder now would lose nothing saved
        assert LeRobotDataset("local/robosteer_demos", root=root).num_episodes == 1
        assert trigger("start").success
        assert ros.wait_for(lambda: recorder.sink.frames_in_episode >= 3, timeout=20)
        assert trigger("discard").success
        assert trigger("start").success
        assert ros.wait_for(lambda: recorder.sink.frames_in_episode >= 5, timeout=20)
        assert trigger("save").success
        assert ros.wait_for(lambda: probe.status and probe.status[-1]["episodes"] == 2, timeout=5)

    from robosteer.data import read_episode_labels

    assert [labels.get("surface") for labels in read_episode_labels(root)] == ["wood", "wood"]
    ds = LeRobotDataset("local/robosteer_demos", root=root)
    assert ds.num_episodes == 2 and ds.num_frames >= 17
    item = ds[3]
    state, action = item["observation.state"].numpy(), item["action"].numpy()
    assert state[7] == pytest.approx(0.06) and state[3] == pytest.approx(-2 + state[0], abs=1e-5)
    np.testing.assert_allclose(action, [0.5] * 7 + [0.02], atol=1e-6)
    assert item["observation.images.front"].shape == (3, SIZE, SIZE)
    assert float(item["observation.images.wrist"].mean()) == pytest.approx(140 / 255, abs=1e-2)
    assert item["task"] == "wipe the table"
    # frames are 1/fps apart and the state moves forward in time
    states = np.stack([ds[i]["observation.state"].numpy() for i in range(5)])
    assert np.all(np.diff(states[:, 0]) >= 0) and states[-1, 0] > states[0, 0]
