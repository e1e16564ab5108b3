"""The resumable study: a tiny plan runs every arm, stores cells with their input hashes, and a second run trains
nothing; the plan, gate and contrasts are checked without running anything."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from robosteer.errors import RobosteerError
from robosteer.study.plan import StudyPlan

pytest.importorskip("sim.recording")


@pytest.fixture(scope="module")
def tiny_policy_dir(tmp_path_factory):
    from robosteer.policies import make_tiny_smolvla
    from sim.recording import record_dataset

    root = tmp_path_factory.mktemp("study")
    shape = record_dataset("place_cube", 1, root / "shape", seed=7, image_size=32, use_videos=False, progress=False)
    make_tiny_smolvla(shape, seed=0).save(root / "policy")
    return root / "policy"


def _tiny_plan(policy_dir, **fields) -> StudyPlan:
    """A study of the tiny policy that runs in seconds: 2 demos, 2 steps, 2 episodes of 5 steps at 32 px."""
    tiny = dict(demos=(2,), episodes=2, steps=2, batch_size=2, top_k=3, demo_noise=0.0, forgetting_episodes=1)
    return StudyPlan(policy=str(policy_dir), workers=1, image_size=32, max_steps=5, **tiny, **fields)


def test_plan_cells_contrasts_and_validation(tmp_path):
    plan = StudyPlan(arms=("zero", "full", "steer", "steer-random"), train_seeds=3, demos=(5, 10))
    names = [c.name for c in plan.cells()]
    assert names[:2] == ["zero__demos5__seed0", "zero__demos10__seed0"] and len(names) == 2 + 3 * 2 * 3
    assert [(c.a, c.b) for c in plan.contrasts()] == [("steer", "steer-random"), ("full", "zero")]
    assert plan.lr("full") == 3e-4 and StudyPlan(lrs={"full": 1e-4}).lr("full") == 1e-4
    gate = plan.with_gate()
    assert gate.arms == ("zero", "full") and gate.demos == (20,) and gate.episodes == 50
    for bad in ({"arms": ("steer", "magic")}, {"demos": (1,)}, {"lrs": {"zero": 1.0}}, {"episodes": 0}):
        with pytest.raises(RobosteerError):
            StudyPlan.from_dict(bad)
    path = tmp_path / "plan.yaml"
    path.write_text("arms: [zero, full]\ndemos: 5,10\ntrain_seeds: 2\n")
    loaded = StudyPlan.from_file(path, episodes=7)
    assert loaded.arms == ("zero", "full") and loaded.demos == (5, 10) and loaded.episodes == 7
    path.write_text("colour: red\n")
    with pytest.raises(RobosteerError, match="unknown study field"):
        StudyPlan.from_file(path)


def test_tiny_study_runs_every_arm_and_resumes_without_training(tiny_policy_dir, tmp_path):
    from robosteer.study.runner import run_plan

    arms = ("zero", "full", "lora-matched", "steer", "steer-random", "steer-bottom", "steer-release", "release-noheads")
    plan = _tiny_plan(tiny_policy_dir, arms=arms, train_seeds=2, forgetting_tasks=("press_button",))
    out = tmp_path / "study"
    console = Console(quiet=True)
    results = run_plan(plan, out, console)
    arms = results["by_demos"]["2"]["arms"]
    assert all(arms[a]["complete"] for a in plan.arms), arms
    assert arms["zero"]["cells_done"] == 1 and arms["steer"]["cells_done"] == 2
    seed_rates = arms["steer"]["seed_rates"]
    assert set(seed_rates) == {"0", "1"} and sum(seed_rates.values()) / 2 == pytest.approx(arms["steer"]["rate"])
    assert (out / "plots" / "success_vs_demos.png").stat().st_size > 0  # one demo count: the per-seed strip
    assert set(arms["steer"]["forgetting"]) == {"press_button"}
    contrasts = {(c["a"], c["b"]): c for c in results["by_demos"]["2"]["contrasts"]}
    assert contrasts[("steer", "steer-random")]["verdict"] in ("better", "worse", "equivalent", "undecided")
    cells = {p.parent.name: json.loads(p.read_text()) for p in (out / "cells").glob("*/cell.json")}
    random_heads = [cells[f"steer-random__demos2__seed{s}"]["inputs"]["heads"] for s in (0, 1)]
    assert random_heads[0] != random_heads[1]  # a new stratified draw per training seed
    assert cells["lora-matched__demos2__seed0"]["inputs"]["lora"]["targets"] == "all-linear"
    release, noheads = (
        cells["steer-release__demos2__seed0"]["inputs"],
        cells["release-noheads__demos2__seed0"]["inputs"],
    )
    assert release["heads"] == cells["steer__demos2__seed0"]["inputs"]["heads"] and noheads["heads"] == []
    assert (
        release["release"] == noheads["release"] == {"head_rank": 16, "mlp_rank": 16, "train_action_projections": True}
    )
    assert (
        cells["release-noheads__demos2__seed0"]["compute"]["trainable_params"]
        < (cells["steer-release__demos2__seed0"]["compute"]["trainable_params"])
    )
    assert ("steer-release", "release-noheads") in contrasts
    assert (out / "results.md").read_text().startswith("# Study: place_cube")
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "cells").glob("*/cell.json")}

    again = run_plan(plan, out, console)  # everything stored: nothing is trained or evaluated again
    assert {p: p.stat().st_mtime_ns for p in (out / "cells").glob("*/cell.json")} == mtimes
    assert again["by_demos"] == results["by_demos"]
    more = StudyPlan(**{**plan.to_dict(), "train_seeds": 3})
    run_plan(more, out, console, max_cells=1)  # one new seed's first cell only; the old cells stay valid
    assert len(list((out / "cells").glob("*/cell.json"))) == len(mtimes) + 1


def test_lanes_run_cells_in_parallel_processes_and_resume(tiny_policy_dir, tmp_path):
    from robosteer.study.runner import run_plan

    plan = _tiny_plan(tiny_policy_dir, arms=("zero", "full", "steer"), train_seeds=1, forgetting_tasks=())
    out = tmp_path / "study"
    console = Console(quiet=True)
    results = run_plan(plan, out, console, lanes=2)
    assert all(arm["complete"] for arm in results["by_demos"]["2"]["arms"].values())
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "cells").glob("*/cell.json")}
    assert len(mtimes) == 3
    run_plan(plan, out, console)  # the lanes' cells are valid for a one-lane run: nothing runs again
    assert {p: p.stat().st_mtime_ns for p in (out / "cells").glob("*/cell.json")} == mtimes

    from robosteer.study.sweep import run_lr_sweep

    table = run_lr_sweep(plan, out, (0.5,), console)  # the study's seed-0 cells are the x1 column
    for arm in ("full", "steer"):
        assert set(table["arms"][arm]) == {"0.5", "1"}
        assert table["arms"][arm]["0.5"]["lr"] == pytest.approx(0.5 * plan.lr(arm))
    assert "zero" not in table["arms"] and (out / "lr-sweep" / "sweep.md").is_file()
    swept = json.loads((out / "lr-sweep" / "x0.5" / "cells" / "steer__demos2__seed0" / "cell.json").read_text())
    assert swept["inputs"]["lr"] == pytest.approx(0.5 * plan.lr("steer"))


def test_dataset_fingerprint_is_the_demos_not_the_recording_machine(tmp_path):
    """Re-recorded seeded demos hash the same even when the metadata a machine writes (image statistics, codec
    details) differs; other demos hash differently."""
    from robosteer.heads.dataset import dataset_identity, metadata_fingerprint, open_dataset
    from sim.recording import record_dataset

    def record(name: str, seed: int):
        root = tmp_path / name
        record_dataset("press_button", 2, root, seed=seed, image_size=32, use_videos=False, progress=False)
        return root

    first, again, other = record("a", 3), record("b", 3), record("c", 4)
    stats = json.loads((again / "meta" / "stats.json").read_text())
    image_key = next(k for k in stats if k.startswith("observation.images."))
    stats[image_key]["mean"] = [[[0.123]]] * 3  # another renderer's image statistics
    (again / "meta" / "stats.json").write_text(json.dumps(stats))

    def fingerprint(root):
        return dataset_identity(open_dataset(root), [0, 1])["fingerprint"]

    assert fingerprint(first) == fingerprint(again) != fingerprint(other)
    assert metadata_fingerprint(first, [0, 1]) != metadata_fingerprint(again, [0, 1])
    assert dataset_identity(open_dataset(first), [0])["fingerprint"] != fingerprint(first)


def test_cells_stored_with_the_metadata_hash_are_reused_and_upgraded(tiny_policy_dir, tmp_path):
    from robosteer.study import cells
    from robosteer.study.runner import run_plan

    plan = _tiny_plan(tiny_policy_dir, arms=("zero", "full"), train_seeds=1)
    out, console = tmp_path / "study", Console(quiet=True)
    run_plan(plan, out, console)
    path = out / "cells" / "full__demos2__seed0" / "cell.json"
    stored = json.loads(path.read_text())
    legacy_fp = cells.prepare_demos(plan, out, None, console)[2]["metadata_fingerprint"]
    legacy = {**stored["inputs"], "dataset": legacy_fp}
    kept = {"kept_from_the_stored_cell": True}
    path.write_text(json.dumps({**stored, **kept, "inputs": legacy, "inputs_hash": cells._hash(legacy)}))

    run_plan(plan, out, console)  # recognised: not trained again, rewritten with the portable hash
    upgraded = json.loads(path.read_text())
    assert upgraded["inputs_hash"] == stored["inputs_hash"] and upgraded["inputs"] == stored["inputs"]
    assert upgraded["kept_from_the_stored_cell"] and upgraded["outcomes"] == stored["outcomes"]

    other = {**legacy, "dataset": "0" * 16}  # a cell of some other dataset: trained again
    path.write_text(json.dumps({**stored, **kept, "inputs": other, "inputs_hash": cells._hash(other)}))
    run_plan(plan, out, console)
    retrained = json.loads(path.read_text())
    assert "kept_from_the_stored_cell" not in retrained and retrained["inputs_hash"] == stored["inputs_hash"]


def test_time_left_comes_from_the_stored_cells_when_there_are_any():
    from robosteer.study.runner import remaining_seconds

    plan = StudyPlan(arms=("zero", "full", "steer"), train_seeds=2, demos=(5,))
    todo = [c for c in plan.cells() if c.seed == 1]  # full and steer of seed 1
    guess, basis = remaining_seconds(plan, todo, {}, lanes=1)
    assert guess == pytest.approx(plan.estimate_seconds(todo)) and "rough guess" in basis
    stored = {"zero__demos5__seed0": {"wall_s": 10.0}, "full__demos5__seed0": {"wall_s": 100.0}}
    stored["steer__demos5__seed0"] = {"wall_s": 300.0}
    measured, basis = remaining_seconds(plan, todo, stored, lanes=2)
    assert measured == pytest.approx(2 * 200.0 / 2) and "2 stored trained cells" in basis


def test_a_study_under_a_variation_preset_records_and_evaluates_under_it(tiny_policy_dir, tmp_path):
    from robosteer.data.labels import read_episode_labels
    from robosteer.study import cells as study_cells
    from robosteer.study.runner import run_plan
    from sim.tasks import PlaceCube

    for bad in ({"variations": "bogus"}, {"task": "metaworld/drawer-open", "variations": "goal_position"}):
        with pytest.raises(RobosteerError, match="presets are"):
            StudyPlan.from_dict(bad)
    plan = _tiny_plan(tiny_policy_dir, arms=("zero", "full"), train_seeds=1, forgetting_tasks=("press_button",))
    wide = StudyPlan(**{**plan.to_dict(), "variations": "goal_position"})
    out = tmp_path / "study"
    run_plan(wide, out, Console(quiet=True))
    bowls_y = [labels["target_y"] for labels in read_episode_labels(out / "data" / "demos2")]
    low, high = PlaceCube.nominal_bowl_y
    assert any(not low <= y <= high for y in bowls_y), bowls_y  # the demos' bowls left their nominal region
    cells = {p.parent.name: json.loads(p.read_text()) for p in (out / "cells").glob("*/cell.json")}
    assert {c["inputs"]["variations"] for c in cells.values()} == {"goal_position"}
    assert (out / "results.md").read_text().startswith("# Study: place_cube (preset goal_position)")
    assert "variations" not in study_cells.cell_inputs(plan, plan.cells()[0], "fp", {"fingerprint": "d"}, None, {})
