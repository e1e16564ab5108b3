"""``robosteer study``: the resumable comparison of adaptation methods (arms x demos x training seeds)."""

from __future__ import annotations

from pathlib import Path

import typer


def study(
    out: Path = typer.Option(..., "--out", help="Study folder; re-running into it runs only the missing cells."),
    plan_file: Path = typer.Option(
        None, "--plan", help="YAML/JSON file of plan fields (task, arms, train_seeds, demos, episodes, steps, lrs...)."
    ),
    task: str = typer.Option(None, "--task", help="Held-out sim task (default place_cube)."),
    arms: str = typer.Option(
        None,
        "--arms",
        help="Comma-separated arms: zero, full, lora, lora-matched, steer, steer-random, steer-bottom (default all).",
    ),
    train_seeds: int = typer.Option(None, "--train-seeds", help="Training seeds per arm and demo count (default 6)."),
    demos: str = typer.Option(None, "--demos", help="Demo counts, comma separated, e.g. 5,10,20 (default 10)."),
    episodes: int = typer.Option(None, "--episodes", help="Evaluation episodes per cell (default 40)."),
    steps: int = typer.Option(None, "--steps", help="Training steps of every arm (default 1000)."),
    lr: str = typer.Option(None, "--lr", help="Peak learning rates per arm, e.g. full=3e-4,steer=1e-3."),
    forgetting_episodes: int = typer.Option(
        None, "--forgetting-episodes", help="Episodes per pretraining task after adaptation (default 20)."
    ),
    gate: bool = typer.Option(
        False, "--gate", help="Only the gate: zero-shot and full finetuning from 20 demos, 50 episodes, one seed."
    ),
    lanes: int = typer.Option(
        1,
        "--lanes",
        help="Cells trained at once, each in its own process with 1 torch thread (2 suits 2 cores; see make bench).",
        min=1,
    ),
    lr_sweep: str = typer.Option(
        None,
        "--lr-sweep",
        help="Instead of the study: every trained arm at its rate times each factor (e.g. 0.3,3), seed 0, into "
        "OUT/lr-sweep/ (reuses OUT's demos and ranking; the study's own seed-0 cells are the x1 column).",
    ),
    max_cells: int = typer.Option(None, "--max-cells", help="Run at most this many missing cells, then stop."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the cells, what is stored and an estimated time."),
) -> None:
    """Compare adaptation arms on a held-out task with training seeds, paired hierarchical-bootstrap intervals and
    pre-declared contrasts. Every cell is stored with the hash of its inputs, so the study runs in parts."""
    from rich.console import Console

    from robosteer.errors import RobosteerError
    from robosteer.heads.config import parse_named_floats
    from robosteer.study.plan import ARM_LR, StudyPlan
    from robosteer.study.runner import describe, run_plan

    overrides = {
        "task": task,
        "arms": arms,
        "train_seeds": train_seeds,
        "demos": demos,
        "episodes": episodes,
        "steps": steps,
        "forgetting_episodes": forgetting_episodes,
        "lrs": parse_named_floats(lr, tuple(ARM_LR), "--lr full=3e-4,steer=1e-3") if lr else None,
    }
    if plan_file is not None:
        plan = StudyPlan.from_file(plan_file, **overrides)
    else:
        plan = StudyPlan.from_dict({k: v for k, v in overrides.items() if v is not None})
    if gate:
        plan = plan.with_gate()
    if out.exists() and not out.is_dir():
        raise RobosteerError(f"--out {out} is a file: give a folder for the study")
    console = Console(highlight=False)
    if lr_sweep:
        from robosteer.study.sweep import render_sweep, run_lr_sweep

        factors = tuple(float(f) for f in lr_sweep.split(","))
        if not factors or min(factors) <= 0:
            raise RobosteerError(f"--lr-sweep {lr_sweep!r}: give positive factors, e.g. 0.3,3")
        if dry_run:
            console.print(f"lr sweep: {len(factors)} x {len(plan.arms) - ('zero' in plan.arms)} cells", markup=False)
            return
        console.print(render_sweep(run_lr_sweep(plan, out, factors, console, lanes=lanes)), markup=False)
        return
    describe(plan, out, console)
    if dry_run:
        return
    results = run_plan(plan, out, console, max_cells=max_cells, lanes=lanes)
    console.print((out / "results.md").read_text(), markup=False)
    if results.get("gate") is not None:
        console.print(f"gate {'passed' if results['gate']['passed'] else 'FAILED'}", markup=False)


def register(app: typer.Typer) -> None:
    app.command("study")(study)
