"""The learning-rate sweep behind a study's per-arm rates: every trained arm at its rate x each factor, seed 0.

Each factor is a small study of its own (``<out>/lr-sweep/x<factor>/``: the trained arms, one training seed, no
forgetting episodes) that reuses the main study's demos and ranking, so it differs from the main study's seed-0
cells only in the learning rate. The table puts the main study's seed-0 cell in the x1 column: success on the same
evaluation episodes, at the same budget, with a Wilson 95 % interval per rate.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from robosteer.evaluation.stats import wilson_interval
from robosteer.files import atomic_dir, atomic_write_text
from robosteer.study.cells import CELL_FILE
from robosteer.study.plan import StudyPlan

SWEEP_DIR = "lr-sweep"


def sweep_plan(plan: StudyPlan, factor: float) -> StudyPlan:
    """The plan of one sweep point: trained arms at ``factor`` x their rate, one seed, no forgetting."""
    trained = tuple(a for a in plan.arms if a != "zero")
    return StudyPlan.from_dict(
        {
            **plan.to_dict(),
            "arms": trained,
            "train_seeds": 1,
            "forgetting_tasks": (),
            "lrs": {arm: factor * plan.lr(arm) for arm in trained},
        }
    )


def run_lr_sweep(plan: StudyPlan, out: Path, factors: tuple[float, ...], console, lanes: int = 1) -> dict:
    """Run every sweep point not stored yet (resumable like a study); returns and writes the sweep table."""
    from robosteer.study.runner import run_plan

    for factor in factors:
        folder = out / SWEEP_DIR / f"x{factor:g}"
        _share_inputs(out, folder)
        console.print(f"learning-rate sweep: every trained arm at {factor:g} x its rate", markup=False)
        run_plan(sweep_plan(plan, factor), folder, console, lanes=lanes)
    table = sweep_table(plan, out, factors)
    atomic_write_text(out / SWEEP_DIR / "sweep.json", json.dumps(table, indent=2) + "\n")
    atomic_write_text(out / SWEEP_DIR / "sweep.md", render_sweep(table))
    return table


def _share_inputs(out: Path, folder: Path) -> None:
    """Copy the main study's recorded demos and ranking into a sweep point (small; recorded once)."""
    for name in ("data", "ranking"):
        if (out / name).is_dir() and not (folder / name).exists():
            atomic_dir(folder / name, lambda tmp, name=name: shutil.copytree(out / name, tmp, dirs_exist_ok=True))


def sweep_table(plan: StudyPlan, out: Path, factors: tuple[float, ...]) -> dict:
    """``{arm: {factor: {lr, successes, episodes, rate, ci}}}`` with the main study's seed 0 as factor 1."""
    columns = sorted({1.0, *factors})
    table: dict = {"task": plan.task, "demos": plan.demos[0], "steps": plan.steps, "factors": columns, "arms": {}}
    for arm in (a for a in plan.arms if a != "zero"):
        row = {}
        for factor in columns:
            folder = out if factor == 1.0 else out / SWEEP_DIR / f"x{factor:g}"
            path = folder / "cells" / f"{arm}__demos{plan.demos[0]}__seed0" / CELL_FILE
            if not path.is_file():
                continue
            outcomes = json.loads(path.read_text())["outcomes"][plan.task]
            low, high = wilson_interval(sum(outcomes), len(outcomes))
            row[f"{factor:g}"] = {
                "lr": factor * plan.lr(arm),
                "successes": sum(outcomes),
                "episodes": len(outcomes),
                "rate": sum(outcomes) / len(outcomes),
                "ci": [low, high],
            }
        table["arms"][arm] = row
    return table


def render_sweep(table: dict) -> str:
    """The sweep as a markdown table (one row per arm, one column per learning-rate factor)."""
    factors = [f"{f:g}" for f in table["factors"]]
    lines = [
        f"# Learning-rate sweep: {table['task']}, {table['demos']} demos, {table['steps']} steps, training seed 0",
        "",
        "Success [Wilson 95 % CI] at each arm's study rate times the factor (x1: the study's own seed-0 cell).",
        "",
        "| arm | " + " | ".join(f"x{f}" for f in factors) + " | best |",
        "|---|" + "---|" * (len(factors) + 1),
    ]
    for arm, row in table["arms"].items():
        cells = []
        for factor in factors:
            point = row.get(factor)
            cells.append(
                "not run"
                if point is None
                else f"{_pct(point['rate'])} [{_pct(point['ci'][0])}-{_pct(point['ci'][1])}] at {point['lr']:.0e}"
            )
        best = max(row, key=lambda f: row[f]["rate"]) if row else None
        lines.append(f"| {arm} | " + " | ".join(cells) + f" | {'x' + best if best else '-'} |")
    lines += [
        "",
        "One seed per rate: a rate is called better only where its interval clears the others'.",
    ]
    return "\n".join(lines) + "\n"


def _pct(rate: float) -> str:
    return f"{100 * rate:.0f} %"
