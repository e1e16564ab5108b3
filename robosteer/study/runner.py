"""``run_plan``: prepare the shared data, run every missing cell, and rewrite the results after each cell."""

from __future__ import annotations

import json
from pathlib import Path

from robosteer.evaluation.report import atomic_write_text
from robosteer.study import analysis, cells
from robosteer.study.plan import StudyPlan


def describe(plan: StudyPlan, out: Path, console) -> None:
    """The plan as the dry run prints it: cells, what is already stored, and an estimated time."""
    stored = {p.parent.name for p in (out / "cells").glob(f"*/{cells.CELL_FILE}")} if out.is_dir() else set()
    todo = [c for c in plan.cells() if c.name not in stored]
    hours = plan.estimate_seconds() / 3600
    console.print(
        f"study of {plan.task}: {len(plan.cells())} cells ({len(todo)} not stored yet), arms {', '.join(plan.arms)}, "
        f"{plan.train_seeds} training seeds, demos {list(plan.demos)}, {plan.episodes} episodes per cell",
        markup=False,
    )
    console.print(f"contrasts: {'; '.join(f'{c.a} - {c.b}' for c in plan.contrasts()) or 'none'}", markup=False)
    console.print(f"estimated time for the whole plan on 2 CPU cores: {hours:.1f} h", markup=False)
    for cell in todo[:12]:
        console.print(f"  to run: {cell.name}", markup=False)
    if len(todo) > 12:
        console.print(f"  ... and {len(todo) - 12} more", markup=False)


def run_plan(plan: StudyPlan, out: Path, console, max_cells: int | None = None) -> dict:
    """Run the cells of ``plan`` not stored in ``out`` yet (at most ``max_cells``); returns the results."""
    from robosteer.policies import load_policy

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "plan.json", json.dumps(plan.to_dict(), indent=2) + "\n")
    base = load_policy(plan.policy)
    fingerprint = base.fingerprint()
    shared = cells.prepare_demos(plan, out, base, console)
    lora = _lora_settings(plan, base, shared)
    ran = 0
    for cell in plan.cells():
        data = shared[cell.demos]
        heads = cells.arm_heads(cell.arm, cell.seed, data["ranking"]) if cell.arm.startswith("steer") else None
        inputs = cells.cell_inputs(plan, cell, fingerprint, data, heads, lora[cell.demos].get(cell.arm))
        if cells.stored_cell(out, cell, inputs):
            continue
        if max_cells is not None and ran >= max_cells:
            break
        console.print(f"cell {cell.name}", markup=False)
        cells.run_cell(plan, cell, inputs, data, out, console)
        ran += 1
        write_results(plan, out)
    return write_results(plan, out)


def _lora_settings(plan: StudyPlan, base, shared: dict) -> dict[int, dict]:
    settings = {}
    for n, data in shared.items():
        settings[n] = {"lora": {"targets": "lerobot", "rank": plan.lora_rank}}
        if "lora-matched" in plan.arms:
            rank, counts = cells.matched_lora_rank(base, data["ranking"]["selected"])
            settings[n]["lora-matched"] = {"targets": "all-linear", "rank": rank, **counts}
    return settings


def write_results(plan: StudyPlan, out: Path) -> dict:
    """results.json, results.md and plots/success_vs_demos.png from the stored cells."""
    results = analysis.analyse(plan, out)
    atomic_write_text(out / "results.json", json.dumps(results, indent=2) + "\n")
    atomic_write_text(out / "results.md", analysis.render_markdown(results))
    (out / "plots").mkdir(exist_ok=True)
    analysis.plot_success_vs_demos(results, out / "plots" / "success_vs_demos.png")
    return results
