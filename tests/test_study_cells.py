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
