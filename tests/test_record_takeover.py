"""Recovery demos: a policy (or any driver) acts first, the scripted expert takes over from where it left the scene,
and only the expert's part is recorded, into a real LeRobot dataset."""

from __future__ import annotations

import numpy as np
import pytest
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from typer.testing import CliRunner

from robosteer.cli import app
from robosteer.constants import ACTION, OBS_STATE
from robosteer.data import read_episode_labels
from robosteer.errors import RobosteerError
from sim.recording import Takeover, record_dataset


class HoldStill:
    """A driver that commands the arm's current joint positions and an open gripper: the scene stays as it was reset."""

    def reset(self, seed: int) -> None:
        self.seeds = [*getattr(self, "seeds", []), seed]

    def act(self, obs, info):
        return np.asarray(obs[OBS_STATE], dtype=np.float32).copy()


def _episode_actions(root, episode: int) -> np.ndarray:
    ds = LeRobotDataset("robosteer/t", root=root)
    start, stop = (ds.meta.episodes[k][episode] for k in ("dataset_from_index", "dataset_to_index"))
    return np.stack([ds[i][ACTION].numpy() for i in range(start, stop)])


def test_after_a_driver_that_held_still_the_expert_records_the_plain_demo(tmp_path):
    driver = HoldStill()
    plain = record_dataset("reach_bowl", 2, tmp_path / "plain", seed=3, image_size=32, use_videos=False, progress=False)
    taken = record_dataset(
        "reach_bowl", 2, tmp_path / "taken", seed=3, image_size=32, use_videos=False, progress=False,
        takeover=Takeover(driver, min_steps=5, max_steps=30),
    )  # fmt: skip
    assert driver.seeds == [3, 4]
    for episode in range(2):
        before, after = _episode_actions(plain, episode), _episode_actions(taken, episode)
        assert abs(len(before) - len(after)) <= 2  # the driver's steps are not recorded
        assert np.abs(before[-1] - after[-1]).max() < 0.05  # the same goal, reached from the same (held) scene
    labels = read_episode_labels(taken)
    assert all(5 <= lab["takeover_step"] <= 30 for lab in labels)
    assert [lab["takeover_step"] for lab in labels] == [Takeover(driver, 5, 30).steps_for(s) for s in (3, 4)]


@pytest.mark.slow
def test_policy_takeover_starts_the_recorded_part_where_the_policy_left_the_arm(tmp_path):
    plain = record_dataset("push_cube", 1, tmp_path / "plain", seed=11, use_videos=False, progress=False)
    result = CliRunner().invoke(
        app,
        [
            "record", "sim", "--task", "push_cube", "--episodes", "1", "--seed", "11", "--images",
            "--takeover-from", "embedded", "--takeover-steps", "30:40", "--out", str(tmp_path / "taken"),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    labels = read_episode_labels(tmp_path / "taken")[0]
    assert 30 <= labels["takeover_step"] <= 40 and labels["success"]
    start_plain = LeRobotDataset("robosteer/p", root=plain)[0][OBS_STATE].numpy()
    first_taken = LeRobotDataset("robosteer/t", root=tmp_path / "taken")[0]
    start_taken = first_taken[OBS_STATE].numpy()
    assert np.abs(start_plain[:7] - start_taken[:7]).max() > 0.05  # the policy moved the arm before the handover
    # the expert's plan restarts from the measured arm: its first target is one small step from where the arm is
    assert np.abs(first_taken[ACTION].numpy()[:7] - start_taken[:7]).max() < 0.1


@pytest.mark.slow
def test_a_policy_that_finishes_before_the_takeover_saves_nothing_and_says_why(tmp_path):
    from robosteer.evaluation.rollout import PolicyDriver
    from robosteer.policies import load_policy

    takeover = Takeover(PolicyDriver(load_policy("embedded")), min_steps=100, max_steps=100)
    with pytest.raises(RobosteerError, match="lower --takeover-steps"):
        record_dataset("press_button", 1, tmp_path / "none", takeover=takeover, max_attempts=2, progress=False)
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--takeover-from", "embedded", "--takeover-steps", "50:10"], "is not a range"),
        (["--takeover-from", "embedded", "--takeover-steps", "fifty"], "give MIN:MAX"),
        (["--takeover-from", "expert"], "give a policy to take over from"),
        (["--takeover-from", "no/such/folder"], "not a folder"),
        (["--takeover-from", "embedded", "--teleop", "keyboard"], "not --teleop keyboard"),
        (["--takeover-from", "embedded", "--suite", "metaworld", "--task", "drawer-open"], "franka tasks only"),
    ],
)
def test_bad_takeover_options_are_refused_before_anything_is_written(tmp_path, args, message):
    out = tmp_path / "out"
    task = [] if "--task" in args else ["--task", "push_cube"]
    result = CliRunner().invoke(app, ["record", "sim", *task, "--episodes", "1", "--out", str(out), *args])
    assert isinstance(result.exception, RobosteerError) and message in str(result.exception), result.output
    assert not out.exists()
