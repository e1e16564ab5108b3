"""Meta-World ML10 as a second suite: names, the env's interface, scripted experts, recording and evaluation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from robosteer.constants import ACTION, OBS_STATE, image_key
from robosteer.errors import RobosteerError
from robosteer.evaluation import EvalConfig

pytest.importorskip("metaworld")

CAMERA = image_key("corner2")


def _cli(*args: str):
    """Run ``robosteer ARGS`` in this process; returns typer's result (exit code 0 asserted by the caller)."""
    from typer.testing import CliRunner

    from robosteer.cli import app

    return CliRunner().invoke(app, list(args))


def test_suite_registry_names_tasks_of_both_suites():
    from metaworld.env_dict import ML10_V3

    from sim.metaworld_tasks import ML10_TEST_TASKS, ML10_TRAIN_TASKS
    from sim.suites import SUITES, env_id, qualified_task, split_task

    assert set(SUITES) == {"franka", "metaworld"}
    assert [f"{t}-v3" for t in ML10_TRAIN_TASKS] == list(ML10_V3["train"])
    assert [f"{t}-v3" for t in ML10_TEST_TASKS] == list(ML10_V3["test"])
    assert (
        env_id("drawer-open", "metaworld") == env_id("metaworld/drawer-open-v3") == "robosteer/metaworld-drawer-open-v3"
    )
    assert env_id("place_cube") == env_id("robosteer/PlaceCube-v0") == "robosteer/PlaceCube-v0"
    assert qualified_task("drawer-open", "metaworld") == "metaworld/drawer-open"
    assert qualified_task("place_cube") == "place_cube"
    assert split_task("metaworld/lever-pull", "franka")[0].name == "metaworld"
    with pytest.raises(RobosteerError, match="unknown task 'place_cube' in suite metaworld"):
        split_task("place_cube", "metaworld")
    with pytest.raises(RobosteerError, match="unknown suite"):
        split_task("drawer-open", "libero")


def test_eval_config_qualifies_and_checks_metaworld_cells():
    config = EvalConfig(tasks=("drawer-open", "metaworld/door-close"), suite="metaworld", episodes=1)
    assert config.cells == [("metaworld/drawer-open", "none"), ("metaworld/door-close", "none")]
    config.validate_names()
    assert EvalConfig(tasks=("place_cube",)).tasks == ("place_cube",)  # Franka names stay bare
    with pytest.raises(RobosteerError, match="unknown task 'metaworld/pick_cube'"):
        EvalConfig(tasks=("pick_cube",), suite="metaworld").validate_names()
    with pytest.raises(RobosteerError, match="variation preset.*lighting for metaworld"):
        EvalConfig(tasks=("drawer-open",), suite="metaworld", variations=("lighting",)).validate_names()
    with pytest.raises(RobosteerError, match="unknown suite"):
        EvalConfig(tasks=("drawer-open",), suite="libero").validate_names()


@pytest.mark.slow
def test_env_interface_seeding_and_lerobot_images():
    """LeRobot keys and shapes, seeded scenes, Meta-World's success in info, state-only steps, and corner2 images
    equal to LeRobot's own MetaworldEnv at its 480 px with ``lerobot_lighting`` (and visibly not without it)."""
    import gymnasium as gym
    from lerobot.envs.metaworld import MetaworldEnv

    from sim.suites import make_env, make_expert

    env = gym.make("robosteer/metaworld-drawer-open-v3", image_size=32, disable_env_checker=True)
    obs, info = env.reset(seed=5)
    assert obs[OBS_STATE].shape == (4,) and obs[OBS_STATE].dtype == np.float32
    assert obs[CAMERA].shape == (32, 32, 3) and obs[CAMERA].dtype == np.uint8
    assert info["task"] == "Open a drawer" and info["success"] is False and info["labels"]["task_name"] == "drawer-open"
    goal = info["labels"]["goal"]
    assert env.reset(seed=6)[1]["labels"]["goal"] != goal and env.reset(seed=5)[1]["labels"]["goal"] == goal
    env.unwrapped.render_images = False
    obs, reward, terminated, truncated, info = env.step(np.zeros(4, np.float32))
    assert set(obs) == {OBS_STATE} and set(env.unwrapped.observe()) == {OBS_STATE, CAMERA}
    assert (reward, terminated, truncated, info["success"]) == (0.0, False, False, False)
    with pytest.raises(RobosteerError, match="expected \\(4,\\)"):
        env.step(np.zeros(8, np.float32))
    expert = make_expert(env, noise_std=0.5, seed=0)
    clean = expert.act()
    noisy = expert.perturb(clean)
    assert clean.shape == (4,) and noisy[3] == clean[3] and not np.allclose(noisy[:3], clean[:3])
    assert np.all(np.abs(noisy) <= 1.0)
    env.close()

    ours = make_env("metaworld/drawer-open", image_size=480, lerobot_lighting=True, disable_env_checker=True)
    fast = make_env("metaworld/drawer-open", image_size=480, disable_env_checker=True)
    theirs = MetaworldEnv("drawer-open-v3", obs_type="pixels_agent_pos")
    mine, _ = ours.reset(seed=3)
    lerobot_obs, _ = theirs.reset(seed=3)
    np.testing.assert_allclose(mine[OBS_STATE], lerobot_obs["agent_pos"], atol=1e-6)
    assert np.abs(mine[CAMERA].astype(int) - lerobot_obs["pixels"].astype(int)).mean() < 1.0
    unlit = fast.reset(seed=3)[0][CAMERA].astype(int)
    assert np.abs(unlit - lerobot_obs["pixels"].astype(int)).mean() > 1.0
    ours.close()
    fast.close()
    theirs.close()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Two scripted episodes of the held-out drawer-open, recorded through the CLI with execution noise."""
    root = tmp_path_factory.mktemp("mw") / "drawer_open"
    result = _cli(
        "record", "sim", "--suite", "metaworld", "--task", "drawer-open", "--episodes", "2", "--out", str(root),
        "--image-size", "32", "--noise", "0.1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return root


@pytest.mark.slow
def test_recorded_dataset_reloads_in_lerobot(recorded):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from robosteer.data import read_episode_labels

    ds = LeRobotDataset("robosteer/drawer_open", root=recorded)
    assert ds.num_episodes == 2 and ds.fps == 80 and ds.meta.robot_type == "sawyer"
    assert ds.meta.video_keys == [CAMERA]
    item = ds[0]
    assert item[OBS_STATE].shape == (4,) and item[ACTION].shape == (4,)
    assert tuple(item[CAMERA].shape) == (3, 32, 32)
    assert item["task"] == "Open a drawer"
    assert float(item[ACTION].abs().max()) <= 1.0
    labels = read_episode_labels(recorded)
    assert [label["seed"] for label in labels] == [0, 1] and labels[0]["task_name"] == "drawer-open"


@pytest.mark.slow
def test_record_refuses_franka_only_options(tmp_path):
    result = _cli(
        "record", "sim", "--task", "metaworld/drawer-open", "--variations", "lighting", "--out", str(tmp_path / "x")
    )
    assert isinstance(result.exception, RobosteerError) and "--variations" in str(result.exception)


@pytest.mark.slow
def test_scripted_expert_succeeds_through_eval(tmp_path):
    out = tmp_path / "eval"
    result = _cli(
        "eval", "--suite", "metaworld", "--task", "drawer-open,door-close", "--policy", "expert", "--episodes", "2",
        "--workers", "1", "--videos", "0", "--image-size", "32", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads((out / "results.json").read_text())
    assert [c["task"] for c in data["cells"]] == ["metaworld/drawer-open", "metaworld/door-close"]
    assert all(c["successes"] == 2 for c in data["cells"]), result.output
    assert data["episodes"][0]["instruction"] == "Open a drawer"


@pytest.mark.slow
def test_tiny_smolvla_from_the_recording_runs_an_episode(recorded, tmp_path):
    from robosteer.policies import make_tiny_smolvla

    policy_dir = make_tiny_smolvla(recorded).save(tmp_path / "tiny")
    out = tmp_path / "eval"
    result = _cli(
        "eval", "--suite", "metaworld", "--task", "drawer-open", "--policy", str(policy_dir), "--episodes", "1",
        "--workers", "1", "--videos", "1", "--image-size", "32", "--max-steps", "6", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    episode = json.loads((out / "results.json").read_text())["episodes"][0]
    assert episode["length"] == 6 and len(episode["final_state"]) == 4
    assert (out / episode["video"]).stat().st_size > 1000


@pytest.mark.slow
def test_batched_evaluation_of_metaworld_matches_its_episode_count(recorded, tmp_path):
    """`eval --batch 2` steps two Meta-World episodes on one chunk clock (cameras rendered at chunk boundaries)."""
    from robosteer.policies import make_tiny_smolvla

    policy_dir = make_tiny_smolvla(recorded).save(tmp_path / "tiny")
    out = tmp_path / "eval"
    result = _cli(
        "eval", "--suite", "metaworld", "--task", "drawer-open", "--policy", str(policy_dir), "--episodes", "3",
        "--workers", "1", "--batch", "2", "--videos", "0", "--image-size", "32", "--max-steps", "10", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    episodes = json.loads((out / "results.json").read_text())["episodes"]
    assert sorted(e["seed"] for e in episodes) == [0, 1, 2] and all(e["length"] == 10 for e in episodes)


@pytest.mark.slow
def test_embedded_metaworld_base_runs_a_heldout_episode(tmp_path):
    """The shipped Meta-World base by name: one whole seeded episode of a held-out task through `robosteer eval`."""
    from robosteer.policies import embedded_available

    if not embedded_available("embedded-metaworld"):
        pytest.skip("no Meta-World base shipped yet (robosteer/policies/embedded_metaworld/)")
    out = tmp_path / "eval"
    result = _cli(
        "eval", "--suite", "metaworld", "--task", "drawer-open", "--policy", "embedded-metaworld", "--episodes", "1",
        "--workers", "1", "--videos", "0", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    episode = json.loads((out / "results.json").read_text())["episodes"][0]
    assert episode["instruction"] == "Open a drawer" and len(episode["final_state"]) == 4
    assert episode["success"] or episode["length"] == 500, episode
