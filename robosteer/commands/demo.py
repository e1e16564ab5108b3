"""``robosteer demo`` (``make demo``): the whole loop on the embedded base policy with small settings.

Records 10 scripted-expert demonstrations of the held-out ``place_cube`` task, ranks every head, trains steer and
LoRA with the same short budget, evaluates them and the untouched base policy on the same seeded episodes, and
prints the comparison table and where the plots and videos are.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer

DEMO_DEFAULTS = {"demos": 10, "steps": 300, "batch_size": 8, "episodes": 20, "top_k": 20}
"""Small settings that finish in <= 15 minutes on 2 CPU cores."""

WHAT_TO_EXPECT = (
    "what to expect: 6-15 min on 2 CPU cores (record ~1 min, rank 1-2 min, then training and evaluation with "
    "progress bars). The base has never placed anything in a bowl, so zero-shot is ~0 %; after 300 steps on 10 demos "
    "steer and LoRA typically reach 40-55 % on place_cube without variations and 10-20 % under random lighting. "
    "With 20 episodes and one training seed, differences between steer and LoRA below ~30 points mean nothing: "
    "`robosteer study` is the comparison that decides. Ctrl-C stops the demo without leaving partial outputs."
)


def demo(
    out: Path = typer.Option(
        Path("outputs/demo"), "--out", help="Output folder (replaced if it holds an earlier demo)."
    ),
    task: str = typer.Option("place_cube", "--task", help="Held-out sim task to adapt to."),
    demos: int = typer.Option(DEMO_DEFAULTS["demos"], "--demos", help="Scripted-expert demonstrations to record."),
    steps: int = typer.Option(DEMO_DEFAULTS["steps"], "--steps", help="Training steps for steer and LoRA each."),
    batch_size: int = typer.Option(DEMO_DEFAULTS["batch_size"], "--batch-size", help="Training batch size."),
    episodes: int = typer.Option(DEMO_DEFAULTS["episodes"], "--episodes", help="Evaluation episodes per method."),
    variations: str = typer.Option(
        "none,lighting",
        "--variations",
        help="Variation presets to evaluate, comma separated (none = nominal scene, lighting = random lights).",
    ),
    workers: int = typer.Option(0, "--workers", help="Evaluation worker processes (0 = one per CPU core)."),
    seed: int = typer.Option(0, "--seed", help="Seed of training, ranking and the first evaluation episode."),
) -> None:
    """Run record -> rank -> finetune (steer, LoRA) -> eval on the embedded policy and print the comparison."""
    from rich.console import Console

    from robosteer.commands.bench import print_study_summary
    from robosteer.errors import RobosteerError
    from robosteer.evaluation import parse_csv
    from robosteer.policies import embedded_available
    from robosteer.study import StudyConfig, run_study
    from robosteer.validation import check_out_path

    check_out_path(out, {})
    if not embedded_available():
        raise RobosteerError(
            "the embedded base policy is not installed in this copy of robosteer; reinstall it "
            "(make setup) or run `robosteer bench --policy <checkpoint> --out <dir>` instead"
        )
    if out.exists() and any(out.iterdir()) and not (out / "results.json").is_file():
        raise RobosteerError(f"{out} exists and is not an earlier demo (no results.json): pass --out <new folder>")
    console = Console()
    config = StudyConfig(
        out=out,
        task=task,
        demos=demos,
        policy="embedded",
        methods=("zero", "lora", "steer"),
        steps=steps,
        batch_size=batch_size,
        top_k=DEMO_DEFAULTS["top_k"],
        episodes=episodes,
        variations=parse_csv(variations),
        unseen_tasks=(),
        seed=seed,
        workers=workers,
        videos_per_cell=1,
        overwrite=True,
    )
    console.print(
        f"[bold]robosteer demo[/]: {demos} demos of {task} -> rank heads -> steer & LoRA ({steps} steps) "
        f"-> {episodes} evaluation episodes per method",
        highlight=False,
    )
    console.print(WHAT_TO_EXPECT, markup=False, highlight=False)
    summary = run_study(config, console=console, command="robosteer " + shlex.join(sys.argv[1:]))
    print_study_summary(summary, out, console)
    console.print(
        f"head heatmap: {out / 'plots' / 'heads.png'}; success plot: {out / 'plots' / 'success.png'}", markup=False
    )
    console.print(
        "one training seed x 20 episodes shows that adaptation works, not which method is better; "
        "`robosteer study` compares arms with training seeds and paired intervals",
        markup=False,
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command(name="demo")(demo)
