"""Bags written with rosbags (MCAP and sqlite3) convert to a LeRobot dataset holding exactly the frames the live
recorder's alignment produces from the same messages as rclpy objects, and each frame is the as-of sample."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from robosteer.constants import ACTION, OBS_STATE, image_key
from robosteer.errors import RobosteerError
from robosteer.ros.recording import RecordingConfig, RecordingSession

pytest.importorskip("rosbags")

SIZE = 16
FPS = 10
CAMS = {"front": "/camera/front/image_raw", "wrist": "/camera/wrist/image_raw"}
ARM = [f"fr3_joint{i}" for i in range(1, 8)]
T0 = 1_700_000_000.0


def synthetic_streams(duration=1.2):
    """(topic, stamp, log_time, content) tuples: state at 30 Hz, teleop at 25 Hz, cameras at 15 Hz.

    Joint 1 of each message is its own stamp offset, so the as-of sample can be checked exactly."""
    events = []
    for rate, topic in ((30, "/joint_states"), (25, "/gello/joint_states")):
        for k in range(int(duration * rate)):
            t = T0 + 0.013 + k / rate
            events.append((topic, t, t + 0.002, np.r_[t - T0, np.linspace(-0.5, 0.5, 6) + k * 0.001]))
    rng = np.random.default_rng(0)
    for cam, topic in CAMS.items():
        for k in range(int(duration * 15)):
            t = T0 + k / 15 + (0.004 if cam == "wrist" else 0.0)
            events.append((topic, t, t + 0.005, rng.integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8)))
    return sorted(events, key=lambda e: e[2])


def config(task="stack the blocks") -> RecordingConfig:
    return RecordingConfig.from_dict(
        {
            "state": "/joint_states",
            "action": "/gello/joint_states",
            "cameras": CAMS,
            "fps": FPS,
            "max_age_s": 0.1,
            "image_size": SIZE,
            "task": task,
        }
    )


def write_bag(path, events, storage: str):
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_JAZZY)
    T = store.types
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        conns = {}
        for topic, stamp, log, content in events:
            sec, nsec = int(stamp), int(round((stamp - int(stamp)) * 1e9))
            header = T["std_msgs/msg/Header"](
                stamp=T["builtin_interfaces/msg/Time"](sec=sec, nanosec=nsec), frame_id=""
            )
            if topic in CAMS.values():
                msg = T["sensor_msgs/msg/Image"](
                    header=header,
                    height=SIZE,
                    width=SIZE,
                    encoding="rgb8",
                    is_bigendian=0,
                    step=3 * SIZE,
                    data=content.reshape(-1),
                )
                msgtype = "sensor_msgs/msg/Image"
            else:
                names, positions = ARM, content
                if topic == "/joint_states":
                    names = [*ARM, "fr3_finger_joint1", "fr3_finger_joint2"]
                    positions = np.r_[content, 0.02, 0.015]
                msg = T["sensor_msgs/msg/JointState"](
                    header=header, name=names, position=np.asarray(positions), velocity=np.zeros(0), effort=np.zeros(0)
                )
                msgtype = "sensor_msgs/msg/JointState"
            if topic not in conns:
                conns[topic] = writer.add_connection(topic, msgtype, typestore=store)
            writer.write(conns[topic], int(round(log * 1e9)), store.serialize_cdr(msg, msgtype))


def live_frames(events, cfg):
    """The live recorder's path: rclpy messages through RecordingSession, ticks from the first complete time."""
    from sensor_msgs.msg import Image, JointState

    from ros_nodes.ros_io import image_message, set_stamp

    session = RecordingSession(cfg)
    for topic, stamp, log, content in events:
        if topic in CAMS.values():
            msg: Image | JointState = image_message(content, stamp)
        else:
            msg = JointState(
                name=[*ARM, "fr3_finger_joint1", "fr3_finger_joint2"] if topic == "/joint_states" else ARM,
                position=list(content) + ([0.02, 0.015] if topic == "/joint_states" else []),
            )
            set_stamp(msg.header, stamp)
        session.on_message(topic, msg, log)
    start = session.aligner.first_complete_time()
    frames = [session.frame_at(t) for t in session.aligner.tick_times(start, events[-1][2])]
    return [f for f in frames if f is not None], session


@pytest.mark.ros
@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bag_converts_to_the_live_recorder_frames(tmp_path, storage):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from robosteer.ros.bag_import import convert_bags

    events = synthetic_streams()
    write_bag(tmp_path / "bag", events, storage)
    bag = next((tmp_path / "bag").glob("*.mcap" if storage == "mcap" else "*.db3"))
    results = convert_bags([bag], config(), tmp_path / "ds", repo_id="local/bag_test")
    expected, session = live_frames(events, config())
    assert results[0].frames == len(expected) >= 10
    ds = LeRobotDataset("local/bag_test", root=tmp_path / "ds")
    assert ds.num_episodes == 1 and ds.num_frames == len(expected)
    state_stamps = np.array([e[1] - T0 for e in events if e[0] == "/joint_states"])
    for i, frame in enumerate(expected):
        item = ds[i]
        np.testing.assert_array_equal(item[OBS_STATE].numpy(), frame[OBS_STATE])
        np.testing.assert_array_equal(item[ACTION].numpy(), frame[ACTION])
        for cam in CAMS:
            image = (item[image_key(cam)].numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)  # (H, W, 3)
            np.testing.assert_array_equal(image, frame[image_key(cam)])
        assert item["task"] == "stack the blocks"
    # as-of: each frame's state is the newest state message at or before its tick
    ticks = session.aligner.tick_times(session.aligner.first_complete_time(), events[-1][2])
    first_tick = ticks[0] - T0
    newest = state_stamps[state_stamps <= first_tick + 1e-9].max()
    assert expected[0][OBS_STATE][0] == pytest.approx(newest, abs=1e-6)
    assert expected[0][OBS_STATE][7] == pytest.approx(0.035)  # the two finger joints


def test_convert_bag_cli_and_clear_errors(tmp_path):
    from typer.testing import CliRunner

    from robosteer.cli import app

    events = synthetic_streams(duration=0.8)
    write_bag(tmp_path / "bag", events, "mcap")
    cfg = {
        "state": "/joint_states",
        "action": "/gello/joint_states",
        "cameras": CAMS,
        "fps": FPS,
        "max_age_s": 0.1,
        "image_size": SIZE,
    }
    (tmp_path / "topics.yaml").write_text(yaml.safe_dump(cfg))
    result = CliRunner().invoke(
        app,
        [
            "convert-bag",
            "--bag",
            str(tmp_path / "bag"),
            "--config",
            str(tmp_path / "topics.yaml"),
            "--out",
            str(tmp_path / "ds"),
            "--task",
            "push it",
            "--labels",
            '{"colour_name": "red"}',
        ],
    )
    assert result.exit_code == 0, result.output
    assert "1 episode" in result.output
    from robosteer.data import read_episode_labels

    assert read_episode_labels(tmp_path / "ds")[0]["colour_name"] == "red"
    again = CliRunner().invoke(
        app,
        [
            "convert-bag",
            "--bag",
            str(tmp_path / "bag"),
            "--config",
            str(tmp_path / "topics.yaml"),
            "--out",
            str(tmp_path / "ds"),
            "--task",
            "x",
        ],
    )
    assert again.exit_code != 0 and "--append" in str(again.exception), "an existing dataset needs --append"
    bad = {**cfg, "cameras": {"front": "/no/such/topic"}, "task": "x"}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    from robosteer.ros.bag_import import convert_bags

    with pytest.raises(RobosteerError, match="no messages on"):
        convert_bags([tmp_path / "bag"], RecordingConfig.from_yaml(tmp_path / "bad.yaml"), tmp_path / "ds2")
    with pytest.raises(RobosteerError, match="unknown recording keys"):
        RecordingConfig.from_dict({"topics": []})
