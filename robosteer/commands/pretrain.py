"""``robosteer pretrain``: record scripted-expert demos and train the base SmolVLA from scratch."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer

from robosteer.commands._options import ConfigCommand, ConfigOptions, Flag, config_options


def _counts(text: str) -> tuple[int, ...]:
    """``--episodes-per-task 50,100,50`` as PretrainConfig's ``episodes_per_task`` (one count or one per task)."""
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise typer.BadParameter(f"{text!r}: give whole numbers, e.g. 50 or 50,100,50") from None


FLAGS = {
    "tasks": Flag(
        help="Comma-separated pretraining tasks (default: the suite's; metaworld: ML10's 10 training tasks)."
    ),
    "episodes_per_task": Flag(
        help="Scripted-expert demonstrations per task: one count, or one per task (e.g. 50,100,50). [default: 50]",
        parse=_counts,
    ),
    "noise_std": Flag(
        help="Std [rad] of noise on the executed joint targets while recording; labels stay clean (DART)."
    ),
    "batch_size": Flag(help="Frames per optimizer step."),
    "lr": Flag(help="Peak learning rate (warm-up then cosine decay)."),
    "seed": Flag(help="Seed of recording, initialisation, batches and evaluation."),
    "variations": Flag(help="Variation presets cycled over each task's episodes (default: the suite's)."),
    "eval_episodes": Flag(
        help="Seeded evaluation episodes per pretraining task (0 = skip; run `robosteer eval` later)."
    ),
    "heldout_eval_episodes": Flag(help="Seeded zero-shot episodes per held-out/unseen task (0 = skip)."),
    "eval_max_steps": Flag(help="Cut evaluation episodes after this many steps (default: the task's own limit)."),
    "workers": Flag(help="Recording worker processes (0 = one per CPU core)."),
    "threads": Flag(help="torch CPU threads (1 is fastest on a busy 2-core machine)."),
    "data": Flag(
        help="Reuse recorded LeRobot datasets instead of recording: one folder, or several comma-separated (trained "
        "on together, normalised with their pooled statistics)."
    ),
    "init_from": Flag(help="Continue training this checkpoint instead of random weights.", parse=Path),
}
"""Where the pretrain flags differ from PretrainConfig's docstrings (today's wording is kept)."""
HIDDEN = ("out", "spec")
"""--out is the command's own; the model size (spec) is the base policy's, set in Python only."""


@config_options("robosteer.pretrain.pipeline:PretrainConfig", flags=FLAGS, hidden=HIDDEN)
def pretrain(
    options: ConfigOptions,
    out: Path = typer.Option(
        ...,
        "--out",
        help="Output folder: dataset/, policy/ (checkpoint + MODEL_CARD.md), log.jsonl, checkpoints/, eval.json.",
    ),
) -> None:
    """Record demonstrations, train a small SmolVLA from scratch, evaluate it and write a model card."""
    from rich.console import Console

    from robosteer.pretrain.pipeline import run_pretraining
    from robosteer.validation import check_out_path, read_dataset_info

    data = options["data"] or ()
    check_out_path(out, {"--init-from": options["init_from"]})
    for root in data:
        check_out_path(out, {"--data": root})
        read_dataset_info(Path(root))
    cfg = options.build(out=out)
    command = "robosteer pretrain " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    policy_dir = run_pretraining(cfg, command)
    options.save(cfg, out)
    Console().print(f"checkpoint + MODEL_CARD.md: {policy_dir}", markup=False)


def register(app: typer.Typer) -> None:
    app.command(name="pretrain", cls=ConfigCommand)(pretrain)
