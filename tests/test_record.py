"""Recording sim demonstrations into real LeRobot v3 datasets on disk: round trip, append, refusal, SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from lerobot.datasets.lerobot_dataset import LeRobotDataset

from robosteer.constants import ACTION, OBS_STATE, image_key
from robosteer.data import EpisodeWriter, read_episode_labels, robot_features
from robosteer.errors import RobosteerError
from sim.recording import record_dataset


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    root = tmp_path_factory.mktemp("rec") / "pick"
    record_dataset("pick_cube", 2, root, variations="train", seed=0, image_size=32, progress=False)
    return root


def test_round_trip_counts_keys_shapes_tasks_labels(recorded):
    ds = LeRobotDataset("robosteer/pick", root=recorded)
    assert ds.num_episodes == 2 and ds.num_frames == len(ds) > 20
    item = ds[0]
    assert item[OBS_STATE].shape == (8,) and item[ACTION].shape == (8,)
    assert tuple(item[image_key("front")].shape) == (3, 32, 32) and tuple(item[image_key("wrist")].shape) == (3, 32, 32)
    assert ds.meta.video_keys == [image_key("front"), image_key("wrist")]
    labels = read_episode_labels(recorded)
    assert len(labels) == 2 and labels[0]["task_name"] == "pick_cube" and labels[1]["seed"] == 1
    last = ds[ds.num_frames - 1]
    assert last["episode_index"].item() == 1
    assert labels[1]["colour_name"] in last["task"]
    # the recorded actions are what drove the arm: the state follows the previous action closely
    states = np.stack([ds[i][OBS_STATE].numpy() for i in range(5, 10)])
    actions = np.stack([ds[i][ACTION].numpy() for i in range(4, 9)])
    assert np.abs(states[:, :7] - actions[:, :7]).max() < 0.1


def test_video_encoding_leaves_the_thread_on_the_normal_scheduler(tmp_path):
    """SVT-AV1 (lerobot's default codec) makes the encoding thread SCHED_FIFO 99 when run as root; the writer undoes it
    so later threads and processes are not real-time (robosteer.scheduling)."""
    import os

    record_dataset("press_button", 1, tmp_path / "v", image_size=32, cameras=("front",), progress=False)
    assert os.sched_getscheduler(0) == os.SCHED_OTHER


@pytest.mark.slow
def test_append_adds_episodes_and_other_features_are_refused(recorded, tmp_path):
    with pytest.raises(RobosteerError, match="already holds a dataset"):
        record_dataset("pick_cube", 1, recorded, image_size=32, progress=False)
    with pytest.raises(RobosteerError, match="other features"):
        record_dataset("pick_cube", 1, recorded, image_size=48, append=True, progress=False)
    before = json.loads((recorded / "meta" / "info.json").read_text())["total_episodes"]
    assert before == 2  # nothing was written by the refused calls
    record_dataset("press_button", 1, recorded, image_size=32, append=True, seed=5, progress=False)
    ds = LeRobotDataset("robosteer/pick", root=recorded)
    assert ds.num_episodes == 3
    assert read_episode_labels(recorded)[2]["task_name"] == "press_button"
    assert "button" in ds[ds.num_frames - 1]["task"]


def test_images_mode_and_writer_bad_input(tmp_path):
    root = tmp_path / "img"
    record_dataset("press_button", 1, root, image_size=32, use_videos=False, cameras=("front",), progress=False)
    ds = LeRobotDataset("robosteer/img", root=root)
    assert ds.meta.video_keys == [] and ds.meta.image_keys == [image_key("front")]
    writer = EpisodeWriter(tmp_path / "w", robot_features(("front",), 16), fps=15)
    with pytest.raises(RobosteerError, match="no frames"):
        writer.save_episode()
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("x")
    with pytest.raises(RobosteerError, match="not a LeRobot dataset"):
        EpisodeWriter(tmp_path / "junk", robot_features(), fps=15)
    with pytest.raises(RobosteerError, match="unknown teleop"):
        record_dataset("pick_cube", 1, tmp_path / "t", teleop="joystick")


RECORDER = textwrap.dedent("""
    import sys, time
    import sim.recording as rec
    from sim.experts import ScriptedExpert
    slow_act = ScriptedExpert.act
    def act(self, obs=None, info=None):
        if self.env.episode_id >= 2:   # the second episode: announce, then crawl so the parent can kill us mid-episode
            print("EPISODE2", flush=True); time.sleep(0.2)
        return slow_act(self, obs, info)
    ScriptedExpert.act = act
    rec.record_dataset("pick_cube", 5, sys.argv[1], image_size=32, cameras=("front",), progress=False)
""")


@pytest.mark.slow
def test_sigkill_mid_episode_loses_only_that_episode(tmp_path):
    root = tmp_path / "killed"
    script = tmp_path / "recorder.py"
    script.write_text(RECORDER)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(root)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    deadline = time.monotonic() + 240
    for line in proc.stdout:
        if "EPISODE2" in line or time.monotonic() > deadline:
            break
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    ds = LeRobotDataset("robosteer/killed", root=root)
    assert ds.num_episodes == 1 and ds.num_frames > 20
    assert len(read_episode_labels(root)) == 1
    _ = ds[ds.num_frames - 1][image_key("front")]  # the saved video decodes
    record_dataset("pick_cube", 1, root, image_size=32, cameras=("front",), append=True, seed=7, progress=False)
    assert LeRobotDataset("robosteer/killed", root=root).num_episodes == 2


def test_cli_record_sim(tmp_path):
    from typer.testing import CliRunner

    from robosteer.cli import app

    runner = CliRunner()
    bad = runner.invoke(app, ["record", "sim", "--task", "pick_cubes", "--out", str(tmp_path / "x")])
    assert isinstance(bad.exception, RobosteerError) and "valid tasks" in str(bad.exception)
    good = runner.invoke(
        app,
        [
            "record",
            "sim",
            "--task",
            "press_button",
            "--episodes",
            "1",
            "--image-size",
            "32",
            "--out",
            str(tmp_path / "cli"),
            "--images",
        ],
    )
    assert good.exit_code == 0, good.output
    assert "1 episodes" in good.output
    assert LeRobotDataset("robosteer/cli", root=tmp_path / "cli").meta.image_keys


def test_hold_frames_extend_each_demo_past_success_with_the_goal_held(tmp_path):
    plain = record_dataset("reach_bowl", 2, tmp_path / "plain", image_size=32, use_videos=False, progress=False)
    held = record_dataset(
        "reach_bowl", 2, tmp_path / "held", image_size=32, use_videos=False, progress=False, hold_frames=15
    )
    plain_ds, held_ds = (LeRobotDataset("robosteer/r", root=root) for root in (plain, held))
    for episode in range(2):
        p_from, p_to = (plain_ds.meta.episodes[k][episode] for k in ("dataset_from_index", "dataset_to_index"))
        h_from, h_to = (held_ds.meta.episodes[k][episode] for k in ("dataset_from_index", "dataset_to_index"))
        assert h_to - h_from == p_to - p_from + 15
        # the same demo up to its success (no noise: the same trajectory), then the expert holds still
        first = [plain_ds[i][ACTION].numpy() for i in (p_from, p_to - 1)]
        assert np.allclose(first, [held_ds[i][ACTION].numpy() for i in (h_from, h_from + p_to - p_from - 1)])
        tail = np.stack([held_ds[i][ACTION].numpy() for i in range(h_to - 5, h_to)])
        assert np.abs(tail - tail[-1]).max() < 1e-3
    assert read_episode_labels(plain) == read_episode_labels(held)


def test_bad_hold_frames_are_refused_before_anything_is_written(tmp_path):
    with pytest.raises(RobosteerError, match="--hold-frames must be >= 0"):
        record_dataset("reach_bowl", 1, tmp_path / "a", hold_frames=-1, progress=False)
    with pytest.raises(RobosteerError, match="scripted expert only"):
        record_dataset("reach_bowl", 1, tmp_path / "b", teleop="keyboard", hold_frames=5, progress=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
