"""The foundation is real: the library imports light, MuJoCo renders, LeRobot's data path works offline,
rclpy talks over Fast DDS on loopback, and the CLI answers."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from robosteer import doctor


def test_import_robosteer_stays_light():
    code = (
        "import sys, robosteer, robosteer.cli, robosteer.constants, robosteer.ros.env\n"
        "heavy = [m for m in ('rclpy', 'sim', 'mujoco', 'ros_nodes') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_environment_prepared_by_plugin():
    assert os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    assert 1 <= int(os.environ["ROS_DOMAIN_ID"]) <= 100
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    from robosteer.ros.env import environment_is_ready

    assert environment_is_ready()


def test_mujoco_renders_offscreen():
    frame = doctor.render_probe_frame(size=64)
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8
    red = (frame[..., 0].astype(int) - frame[..., 1].astype(int)) > 80
    assert red.any(), "the red box should be visible from the front camera"
    assert frame.std() > 5, "a rendered scene is not a flat colour"


def test_lerobot_dataset_roundtrip_with_delta_timestamps(tmp_path):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    doctor.write_probe_dataset(tmp_path / "probe", n_episodes=2, n_frames=6, fps=15)
    dt = 1 / 15
    ds = LeRobotDataset(
        "robosteer/probe",
        root=tmp_path / "probe",
        delta_timestamps={"action": [0.0, dt, 2 * dt], "observation.state": [-dt, 0.0]},
    )
    assert ds.num_episodes == 2 and ds.num_frames == 12
    item = ds[7]  # episode 1, frame 1
    assert item["action"].shape == (3, 8)
    assert item["observation.state"].shape == (2, 8)
    # state is ep*100 + t: the previous frame then this one
    assert item["observation.state"][:, 0].tolist() == [100.0, 101.0]
    assert item["task"] == "probe task 1"
    assert item["observation.images.front"].shape == (3, 16, 16)
    # at the episode end, future actions are padded and flagged
    last = ds[11]
    assert last["action_is_pad"].tolist() == [False, True, True]


@pytest.mark.slow
@pytest.mark.ros
def test_two_rclpy_processes_exchange_joint_state(ros_domain_id):
    out = doctor.ros_pubsub_roundtrip(timeout_s=20, domain_id=ros_domain_id)
    names, positions = out.split()
    assert names.split(",") == [f"fr3_joint{i}" for i in range(1, 8)]
    assert positions.split(",")[:3] == ["0.0", "0.1", "0.2"]


def test_cli_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "robosteer.cli", "--help"], capture_output=True, text=True, check=True)
    assert "doctor" in out.stdout
