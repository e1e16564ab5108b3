"""The MuJoCo Franka suite: gymnasium API, seeding, variations, labels, bad input (real MuJoCo, EGL rendering)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import sim
from robosteer.constants import OBS_STATE, image_key
from robosteer.errors import RobosteerError
from sim.robot import HOME_QPOS, RobotSpec


@pytest.mark.parametrize("task", list(sim.TASKS))
def test_check_env_passes(task):
    env = gym.make(sim.TASKS[task], image_size=32, render_mode="rgb_array")
    check_env(env.unwrapped, skip_render_check=False)
    env.close()


def test_registry_and_task_sets():
    roles = (sim.PRETRAIN_TASKS, sim.HELDOUT_TASKS, sim.UNSEEN_TASKS, sim.EXTRA_TASKS)
    assert set().union(*roles) == set(sim.TASKS) and sum(map(len, roles)) == len(sim.TASKS)
    assert sim.TASKS["pick_cube"] == "robosteer/PickCube-v0"
    assert {"none", "lighting", "distractors", "object_form", "position", "paraphrase"} <= set(sim.VARIATION_PRESETS)
    assert gym.spec("robosteer/PushCube-v0").max_episode_steps > 0


def test_same_seed_same_first_frame_and_different_seed_differs():
    env = gym.make("robosteer/PickCube-v0", variations="all")
    a, info_a = env.reset(seed=3)
    b, info_b = env.reset(seed=3)
    c, _ = env.reset(seed=4)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert info_a["labels"] == info_b["labels"] and info_a["task"] == info_b["task"]
    assert not np.array_equal(a[image_key("front")], c[image_key("front")])
    assert a[image_key("front")].shape == (96, 96, 3) and a[image_key("wrist")].dtype == np.uint8
    np.testing.assert_allclose(a[OBS_STATE][:7], HOME_QPOS, atol=1e-6)
    env.close()


def test_observations_without_renders_until_observed():
    env = gym.make("robosteer/PickCube-v0", image_size=32, disable_env_checker=True)
    first, _ = env.reset(seed=3)
    env.unwrapped.render_images = False  # a chunked policy reads images once per chunk: render only then
    obs, *_ = env.step(first[OBS_STATE])
    assert set(obs) == {OBS_STATE}
    full = env.unwrapped.observe()
    assert set(full) == set(first) and full[image_key("front")].shape == (32, 32, 3)
    np.testing.assert_array_equal(full[OBS_STATE], obs[OBS_STATE])
    env.close()


def test_info_and_labels_have_the_contract_keys():
    env = gym.make("robosteer/PushCube-v0", cameras=(), variations="train")
    _, info = env.reset(seed=0)
    assert {"task", "task_name", "labels", "is_success", "n_clipped_actions"} <= set(info)
    labels = info["labels"]
    for key in (
        "colour_id",
        "colour_name",
        "form",
        "position_bin",
        "paraphrase_id",
        "paraphrase_set",
        "n_distractors",
        "object_x",
        "target_x",
        "light_intensity",
        "table_colour_id",
    ):
        assert key in labels
        assert isinstance(labels[key], (int, float, str))
    assert labels["colour_name"] in info["task"] and info["task_name"] == "push_cube"


def test_variations_change_what_they_say():
    env = gym.make("robosteer/PickCube-v0", cameras=())
    seen = {"none": set(), "object_form": set(), "paraphrase": set()}
    for preset in seen:
        for seed in range(12):
            _, info = env.reset(seed=seed, options={"variations": preset})
            seen[preset].add((info["labels"]["form"], info["labels"]["paraphrase_set"], info["task"]))
    assert {s[0] for s in seen["none"]} == {"cube"} and len({s[2] for s in seen["none"]}) == 1
    assert len({s[0] for s in seen["object_form"]}) >= 2
    heldout = {s[2] for s in seen["paraphrase"]}
    assert all(s[1] == "heldout" for s in seen["paraphrase"]) and not heldout & {s[2] for s in seen["none"]}
    _, info = env.reset(seed=1, options={"variations": "distractors,lighting"})
    assert info["labels"]["light_intensity"] != 0.7


@pytest.mark.parametrize("task", ["pick_cube", "push_cube", "place_cube"])
def test_object_form_samples_cube_cylinder_sphere_and_labels_what_is_on_the_table(task):
    env = gym.make(sim.TASKS[task], cameras=(), variations="object_form")
    u, forms, sizes = env.unwrapped, set(), set()
    for seed in range(12):
        _, info = env.reset(seed=seed)
        form = info["labels"]["form"]
        forms.add(form)
        sizes.add(info["labels"]["object_size"])
        live = [
            name
            for name in ("obj_cube", "obj_cylinder", "obj_sphere")
            if u.model.body_gravcomp[u.ids.free[name].body] == 0
        ]
        assert live == [f"obj_{form}"]  # the one body on the table is the labelled form
        assert {"cube": "cube", "cylinder": "cylinder", "sphere": "ball"}[form] in info["task"]
        geom = u.ids.free[f"obj_{form}"].geoms[0]
        assert u.model.geom_size[geom][0] == pytest.approx(info["labels"]["object_size"] / 2, abs=1e-4)
    assert forms == {"cube", "cylinder", "sphere"} and len(sizes) > 6


def test_out_of_limit_actions_are_clipped_and_counted():
    env = gym.make("robosteer/PickCube-v0", cameras=())
    obs, _ = env.reset(seed=0)
    action = obs[OBS_STATE].copy()
    action[3] = 5.0  # far beyond joint 4's upper limit
    _, _, _, _, info = env.step(action)
    assert info["action_clipped"] and info["n_clipped_actions"] == 1
    _, _, _, _, info = env.step(obs[OBS_STATE])
    assert not info["action_clipped"] and info["n_clipped_actions"] == 1


def test_nan_action_raises_with_the_step():
    env = gym.make("robosteer/PickCube-v0", cameras=())
    obs, _ = env.reset(seed=0)
    env.step(obs[OBS_STATE])
    bad = obs[OBS_STATE].copy()
    bad[2] = np.nan
    with pytest.raises(RobosteerError, match="step 1"):
        env.step(bad)
    with pytest.raises(RobosteerError, match="shape"):
        env.step(np.zeros(7))


def test_bad_names_list_the_valid_ones():
    with pytest.raises(RobosteerError, match="pick_cube"):
        sim.make_env("pick_cubes")
    with pytest.raises(RobosteerError, match="lighting"):
        gym.make("robosteer/PickCube-v0", variations="lights")
    with pytest.raises(RobosteerError, match="front"):
        gym.make("robosteer/PickCube-v0", cameras=("top",))
    with pytest.raises(ValueError, match="panda_joint"):
        RobotSpec(joint_prefix="ur5_joint")


def test_panda_naming_uses_panda_limits():
    env = gym.make("robosteer/PickCube-v0", cameras=(), joint_prefix="panda_joint")
    assert env.unwrapped.model.joint("panda_joint4").range[1] == pytest.approx(-0.0698)
    assert env.action_space.high[5] == pytest.approx(3.7525)


def test_setpoint_respects_joint_velocity_limits():
    env = gym.make("robosteer/PickCube-v0", cameras=())
    obs, _ = env.reset(seed=0)
    target = obs[OBS_STATE].copy()
    target[0] += 1.0  # 1 rad in one 1/15 s step would need 15 rad/s; FR3 allows 2.62
    obs2, _, _, _, info = env.step(target)
    assert info["velocity_limited"]
    assert abs(obs2[OBS_STATE][0] - obs[OBS_STATE][0]) <= 2.62 / 15 + 1e-3
    for _ in range(10):
        obs2, _, _, _, info = env.step(target)
    assert not info["velocity_limited"] and obs2[OBS_STATE][0] == pytest.approx(target[0], abs=0.02)


def test_place_cube_bowl_is_nominal_unless_positions_vary():
    """Without the `position` variation the bowl sits in a small nominal region (a learnable held-out goal);
    with it the bowl ranges over the workspace."""
    from sim.tasks import PlaceCube

    def bowls(preset):
        env = gym.make(sim.TASKS["place_cube"], image_size=32, variations=preset)
        out = []
        for seed in range(12):
            labels = env.reset(seed=seed)[1]["labels"]
            out.append((labels["target_x"], labels["target_y"]))
        env.close()
        return np.array(out)

    nominal, wide = bowls("none"), bowls("position")
    (x0, x1), (y0, y1) = PlaceCube.nominal_bowl_x, PlaceCube.nominal_bowl_y
    assert ((nominal[:, 0] >= x0) & (nominal[:, 0] <= x1) & (nominal[:, 1] >= y0) & (nominal[:, 1] <= y1)).all()
    assert np.ptp(wide[:, 1]) > 2 * (y1 - y0) and (wide[:, 1] < y0).any()


def test_reach_bowl_names_one_of_two_bowls_by_colour_and_succeeds_only_above_it():
    env = gym.make(sim.TASKS["reach_bowl"], cameras=(), variations="colour")
    seen = set()
    for seed in range(6):
        _, info = env.reset(seed=seed)
        u = env.unwrapped
        colour = info["labels"]["colour_name"]
        seen.add(colour)
        assert u.instruction == f"move above the {colour} bowl"
        target = np.array([info["labels"]["target_x"], info["labels"]["target_y"]])
        other = u.data.mocap_pos[u.model.body_mocapid[u.model.body("other_bowl").id], :2]
        assert np.linalg.norm(other - target) > 0.18  # two separate bowls
        bowl_geoms = u.model.geom_bodyid == u.model.body("bowl").id
        other_geoms = u.model.geom_bodyid == u.model.body("other_bowl").id
        assert not np.allclose(u.model.geom_rgba[bowl_geoms][0], u.model.geom_rgba[other_geoms][0])
        assert not u._is_success()  # the hand starts away from the bowl
    assert len(seen) > 1
    _, info = env.reset(seed=0, options={"variations": "none"})
    assert info["labels"]["colour_name"] == "white"  # without the colour variation the named bowl is place_cube's


def test_every_franka_instruction_word_is_in_the_base_vocabulary():
    import re

    from robosteer.policies.vlm_folder import vocabulary
    from sim import tasks as task_classes
    from sim.tasks import FORM_WORDS, TabletopTask
    from sim.variations import COLOURS

    known = set(vocabulary())
    for task in sim.TASKS:
        cls = gym.spec(sim.TASKS[task]).entry_point.split(":")[1]
        task_cls = getattr(task_classes, cls)
        assert issubclass(task_cls, TabletopTask)
        for template in (task_cls.canonical, *task_cls.train_paraphrases, *task_cls.heldout_paraphrases):
            text = template.format(colour=" ".join(("white", *COLOURS)), object=" ".join(FORM_WORDS.values()))
            assert set(re.findall(r"[a-z]+", text)) <= known, (task, template)


def test_goal_position_spreads_only_place_cubes_bowl():
    """`goal_position` puts the bowl anywhere but keeps the cube in its nominal region; `position` moves both."""
    from sim.tasks import NOMINAL_X, NOMINAL_Y

    def scenes(preset):
        env = gym.make(sim.TASKS["place_cube"], image_size=32, variations=preset)
        labels = [env.reset(seed=seed)[1]["labels"] for seed in range(12)]
        env.close()
        cubes = np.array([(lab["object_x"], lab["object_y"]) for lab in labels])
        return cubes, np.array([(lab["target_x"], lab["target_y"]) for lab in labels])

    def nominal(xy):
        return (xy[:, 0] >= NOMINAL_X[0]) & (xy[:, 0] <= NOMINAL_X[1]) & (np.abs(xy[:, 1]) <= NOMINAL_Y[1])

    cubes, bowls = scenes("goal_position")
    assert nominal(cubes).all() and np.ptp(bowls[:, 1]) > 0.2
    assert not nominal(scenes("position")[0]).all()
