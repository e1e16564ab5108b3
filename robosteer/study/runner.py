"""``run_plan``: prepare the shared data, run every missing cell, and rewrite the results after each cell."""

from __future__ import annotations

import json
from pathlib import Path

from robosteer.files import atomic_write_text
from robosteer.study import analysis, cells
from robosteer.study.plan import StudyPlan


def describe(plan: StudyPlan, out: Path, console, lanes: int = 1) -> None:
    """The plan as the dry run prints it: cells, what is already stored, and an estimated time for the rest."""
    stored = _stored_records(out)
    todo = [c for c in plan.cells() if c.name not in stored]
    console.print(
        f"study of {plan.task} (preset {plan.variations}): {len(plan.cells())} cells ({len(todo)} not stored yet), arms {', '.join(plan.arms)}, "
        f"{plan.train_seeds} training seeds, demos {list(plan.demos)}, {plan.episodes} episodes per cell",
        markup=False,
    )
    console.print(f"contrasts: {'; '.join(f'{c.a} - {c.b}' for c in plan.contrasts()) or 'none'}", markup=False)
    if todo:
        seconds, basis = remaining_seconds(plan, todo, stored, lanes)
        console.print(
            f"estimated time for the {len(todo)} cells left in {lanes} lane(s): {seconds / 3600:.1f} h ({basis})",
            markup=False,
        )
    for cell in todo[:12]:
        console.print(f"  to run: {cell.name}", markup=False)
    if len(todo) > 12:
        console.print(f"  ... and {len(todo) - 12} more", markup=False)


def _stored_records(out: Path) -> dict[str, dict]:
    paths = (out / "cells").glob(f"*/{cells.CELL_FILE}") if out.is_dir() else []
    return {p.parent.name: json.loads(p.read_text()) for p in paths}


def remaining_seconds(plan: StudyPlan, todo: list, stored: dict[str, dict], lanes: int) -> tuple[float, str]:
    """Wall time of the ``todo`` cells in ``lanes`` lanes, and what the estimate rests on: the mean wall time of the
    stored trained cells when there are any (they ran on this kind of machine), else the plan's rough per-step and
    per-episode guess."""
    walls = [r["wall_s"] for name, r in stored.items() if not name.startswith("zero__") and r.get("wall_s")]
    if not walls:
        return plan.estimate_seconds(todo) / lanes, "a rough guess for 2 CPU cores"
    per_cell = sum(walls) / len(walls)
    zero = plan.estimate_seconds([c for c in todo if c.arm == "zero"])
    trained = sum(1 for c in todo if c.arm != "zero")
    return (trained * per_cell + zero) / lanes, f"from the mean wall time of {len(walls)} stored trained cells"


def run_plan(plan: StudyPlan, out: Path, console, max_cells: int | None = None, lanes: int = 1) -> dict:
    """Run the cells of ``plan`` not stored in ``out`` yet (at most ``max_cells``); returns the results.

    ``lanes`` > 1 trains that many cells at once, each in its own process with one torch thread and one evaluation
    worker (on a few cores, two 1-thread trainings finish more steps per second than one 2-thread training).
    """
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "plan.json", json.dumps(plan.to_dict(), indent=2) + "\n")
    todo = _missing_cells(plan, out, console)[: max_cells if max_cells is not None else None]
    if lanes <= 1 or len(todo) <= 1:
        _run_jobs(plan, out, todo, console)  # the inputs computed above, not again
        return write_results(plan, out)
    _run_lanes(plan, out, [cell.name for cell, _, _ in todo], lanes, console)
    return write_results(plan, out)


def _missing_cells(plan: StudyPlan, out: Path, console) -> list[tuple]:
    """Prepare the shared data (demos, ranking) and list ``(cell, inputs, data)`` of every cell whose stored result
    is missing or stale, in plan order."""
    from robosteer.policies import load_policy

    base = load_policy(plan.policy)
    shared = cells.prepare_demos(plan, out, base, console)
    return [job for job in _cell_inputs(plan, base, shared) if not cells.stored_cell(out, *job)]


def _cell_inputs(plan: StudyPlan, base, shared: dict):
    fingerprint = base.fingerprint()
    lora = _lora_settings(plan, base, shared)
    for cell in plan.cells():
        data = shared[cell.demos]
        heads = cells.arm_heads(cell.arm, cell.seed, data["ranking"])
        yield cell, cells.cell_inputs(plan, cell, fingerprint, data, heads, lora[cell.demos].get(cell.arm)), data


def run_cells(plan: StudyPlan, out: Path, names: list[str], console, lane: str = "") -> None:
    """Run the named cells that are still missing, in plan order (a lane process: its parent rewrites the results)."""
    wanted = set(names)
    _run_jobs(plan, out, [job for job in _missing_cells(plan, out, console) if job[0].name in wanted], console, lane)


def _run_jobs(plan: StudyPlan, out: Path, jobs: list[tuple], console, lane: str = "") -> None:
    """Run ``(cell, inputs, data)`` jobs; without a lane, rewrite the results after each cell."""
    for cell, inputs, data in jobs:
        if cells.stored_cell(out, cell, inputs, data):  # another process may have stored it meanwhile
            continue
        console.print(f"{lane}cell {cell.name}", markup=False)
        record = cells.run_cell(plan, cell, inputs, data, out, console, progress=not lane)
        if lane:
            console.print(f"{lane}cell {cell.name} done in {record['wall_s']:.0f} s", markup=False)
        else:
            write_results(plan, out)


def _run_lanes(plan: StudyPlan, out: Path, names: list[str], lanes: int, console) -> None:
    """Deal ``names`` round-robin to ``lanes`` processes (1 torch thread, 1 evaluation worker each) and rewrite the
    results whenever a cell lands."""
    import multiprocessing as mp
    import os

    from robosteer.policies.loading import THREADS_ENV

    lane_plan = StudyPlan.from_dict({**plan.to_dict(), "workers": 1})
    os.environ[THREADS_ENV] = "1"  # inherited by the spawned lanes before they import torch's thread pool
    context = mp.get_context("spawn")
    procs = [
        context.Process(target=_lane_main, args=(lane_plan.to_dict(), str(out), names[k::lanes], f"[lane {k}] "))
        for k in range(min(lanes, len(names)))
    ]
    console.print(f"running {len(names)} cells in {len(procs)} lanes", markup=False)
    for proc in procs:
        proc.start()
    try:
        seen = _stored_names(out)
        while any(p.is_alive() for p in procs):
            for proc in procs:
                proc.join(timeout=10)
            if _stored_names(out) != seen:
                seen = _stored_names(out)
                write_results(plan, out)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
    failed = [k for k, p in enumerate(procs) if p.exitcode != 0]
    if failed:
        from robosteer.errors import RobosteerError

        raise RobosteerError(f"study lane(s) {failed} failed (see their output above); re-run to continue")


def _stored_names(out: Path) -> set[str]:
    return {p.parent.name for p in (out / "cells").glob(f"*/{cells.CELL_FILE}")}


def _lane_main(plan: dict, out: str, names: list[str], lane: str) -> None:
    from rich.console import Console

    from robosteer.policies.loading import set_torch_threads

    set_torch_threads(1)
    run_cells(StudyPlan.from_dict(plan), Path(out), names, Console(highlight=False), lane=lane)


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
