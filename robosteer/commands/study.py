"""``robosteer study``: the resumable comparison of adaptation methods (arms x demos x training seeds)."""

from __future__ import annotations

from pathlib import Path

import typer

from robosteer.commands._options import ConfigCommand, ConfigOptions, Flag, config_options


def _parse_lrs(text: str) -> dict[str, float]:
    """``--lr full=3e-4,steer=1e-3`` as the plan's ``lrs``."""
    from robosteer.heads.config import parse_named_floats
    from robosteer.study.plan import ARM_LR

    return parse_named_floats(text, tuple(ARM_LR), "--lr full=3e-4,steer=1e-3")


FLAGS = {
    "task": Flag(help="Held-out sim task: place_cube, pick_mug, or a Meta-World one as metaworld/drawer-open."),
    "arms": Flag(help="Comma-separated arms: zero, full, lora, lora-matched, steer, steer-random, steer-bottom."),
    "demos": Flag(help="Demo counts, comma separated, e.g. 5,10,20."),
    "episodes": Flag(help="Evaluation episodes per cell."),
    "steps": Flag(help="Training steps of every arm."),
    "lrs": Flag(name="--lr", help="Peak learning rates per arm, e.g. full=3e-4,steer=1e-3.", parse=_parse_lrs),
    "forgetting_episodes": Flag(help="Episodes per pretraining task after adaptation."),
    "max_steps": Flag(help="Evaluation episode step limit (default: the task's own; smoke tests shorten it)."),
    "forgetting_tasks": Flag(help="Pretraining tasks re-evaluated after adaptation, comma separated (empty: none)."),
}
"""Where the study flags differ from StudyPlan's field names and docstrings (today's spelling is kept)."""


@config_options(
    "robosteer.study.plan:StudyPlan",
    flags=FLAGS,
    config_flag="--plan",
    config_help="YAML/JSON file of plan fields (task, arms, train_seeds, demos, episodes, steps, lrs...); flags "
    "given here override it. A study's plan.json is such a file.",
)
def study(
    options: ConfigOptions,
    out: Path = typer.Option(..., "--out", help="Study folder; re-running into it runs only the missing cells."),
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
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the cells, what is stored and the estimated time left."
    ),
) -> None:
    """Compare adaptation arms on a held-out task with training seeds, paired hierarchical-bootstrap intervals and
    pre-declared contrasts. Every cell is stored with the hash of its inputs, so the study runs in parts."""
    from rich.console import Console

    from robosteer.errors import RobosteerError
    from robosteer.study.runner import describe, run_plan

    plan = options.build()
    if gate:
        plan = plan.with_gate()
    if out.exists() and not out.is_dir():
        raise RobosteerError(f"--out {out} is a file: give a folder for the study")
    console = Console(highlight=False)
    if lr_sweep:
        _lr_sweep(plan, out, lr_sweep, console, lanes=lanes, dry_run=dry_run)
        return
    describe(plan, out, console, lanes=lanes)
    if dry_run:
        return
    results = run_plan(plan, out, console, max_cells=max_cells, lanes=lanes)  # saves the plan as OUT/plan.json
    console.print((out / "results.md").read_text(), markup=False)
    if results.get("gate") is not None:
        console.print(f"gate {'passed' if results['gate']['passed'] else 'FAILED'}", markup=False)


def _lr_sweep(plan, out: Path, text: str, console, *, lanes: int, dry_run: bool) -> None:
    """``--lr-sweep 0.3,3``: every trained arm at its rate times each factor, into OUT/lr-sweep/."""
    from robosteer.errors import RobosteerError
    from robosteer.study.sweep import render_sweep, run_lr_sweep

    factors = tuple(float(f) for f in text.split(","))
    if not factors or min(factors) <= 0:
        raise RobosteerError(f"--lr-sweep {text!r}: give positive factors, e.g. 0.3,3")
    if dry_run:
        console.print(f"lr sweep: {len(factors)} x {len(plan.arms) - ('zero' in plan.arms)} cells", markup=False)
        return
    console.print(render_sweep(run_lr_sweep(plan, out, factors, console, lanes=lanes)), markup=False)


def register(app: typer.Typer) -> None:
    app.command("study", cls=ConfigCommand)(study)
