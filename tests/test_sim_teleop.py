"""Headless teleoperation: a scripted input source drives the arm through IK into a real LeRobot dataset."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from lerobot.datasets.lerobot_dataset import LeRobotDataset

from robosteer.constants import ACTION, OBS_STATE
from robosteer.data import read_episode_labels
from robosteer.errors import RobosteerError
from sim.ik import DifferentialIK
from sim.recording import record_dataset
from sim.teleop import ScriptedSource, TeleopCommand, TeleopController, TeleopSettings


def moves(velocity, steps, **kwargs):
    return [TeleopCommand(velocity=np.array(velocity, dtype=float), **kwargs) for _ in range(steps)]


@pytest.mark.slow
def test_scripted_teleop_records_saved_episodes_and_drops_discarded(tmp_path):
    script = (
        [TeleopCommand(event="start")]
        + moves([0.15, 0, 0], 15)
        + [TeleopCommand(toggle_gripper=True)]
        + moves([0, 0, 0], 8)
        + [TeleopCommand(event="save")]
        + [TeleopCommand(event="start")]
        + moves([0, 0.15, 0], 5)
        + [TeleopCommand(event="discard")]
        + [TeleopCommand(event="save_or_start")]
        + moves([0, 0, -0.15], 6)
        + [TeleopCommand(event="save_or_start")]
    )
    root = record_dataset(
        "pick_cube",
        3,
        tmp_path / "teleop",
        input_source=ScriptedSource(script),
        image_size=32,
        cameras=("front",),
        progress=False,
    )
    ds = LeRobotDataset("robosteer/teleop", root=root)
    assert ds.num_episodes == 2  # the quit at the end of the script comes before a third save
    assert ds.meta.total_frames == 24 + 6
    labels = read_episode_labels(root)
    assert [lab["teleop"] for lab in labels] == ["ScriptedSource"] * 2 and labels[1]["seed"] == 2

    env = gym.make("robosteer/PickCube-v0", cameras=())
    ik = DifferentialIK(
        env.unwrapped.model,
        env.unwrapped.ids.arm_qpos,
        env.unwrapped.ids.arm_dof,
        env.unwrapped.ids.tcp,
        env.unwrapped.robot.limits,
    )
    first, last = ds[0], ds[23]
    start_tcp, _ = ik.forward(first[OBS_STATE].numpy()[:7].astype(float))
    end_tcp, _ = ik.forward(last[ACTION].numpy()[:7].astype(float))
    np.testing.assert_allclose(end_tcp - start_tcp, [0.15, 0.0, 0.0], atol=0.01)  # 15 steps at 0.15 m/s, 15 Hz
    assert first[ACTION][7].item() == pytest.approx(0.08) and last[ACTION][7].item() == pytest.approx(0.0)
    drop_tcp, _ = ik.forward(ds[29][ACTION].numpy()[:7].astype(float))
    assert drop_tcp[2] < start_tcp[2] - 0.05


def test_controller_keeps_the_target_in_the_workspace():
    env = gym.make("robosteer/PickCube-v0", cameras=())
    env.reset(seed=0)
    settings = TeleopSettings(workspace_high=(0.8, 0.4, 0.3))
    controller = TeleopController(env, settings)
    controller.reset()
    for _ in range(40):
        action = controller.action(TeleopCommand(velocity=np.array([0, 0, 0.5])))
    assert controller.position[2] == pytest.approx(0.3)
    assert env.action_space.contains(action)


def test_bad_teleop_input_is_refused(tmp_path):
    with pytest.raises(RobosteerError, match="unknown teleop event"):
        TeleopCommand(event="pause")
    with pytest.raises(RobosteerError, match="positive"):
        TeleopSettings(linear_speed=0)
    (tmp_path / "t.json").write_text('{"linear_sped": 0.1}')
    with pytest.raises(RobosteerError, match="linear_speed"):
        TeleopSettings.from_json(tmp_path / "t.json")
