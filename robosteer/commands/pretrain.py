"""``robosteer pretrain``: record scripted-expert demos and train the base SmolVLA from scratch."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer


def pretrain(
    out: Path = typer.Option(
        ...,
        "--out",
        help="Output folder: dataset/, policy/ (checkpoint + MODEL_CARD.md), log.jsonl, checkpoints/, eval.json.",
    ),
    tasks: str = typer.Option("pick_cube,push_cube,press_button", help="Comma-separated pretraining tasks."),
    episodes_per_task: str = typer.Option(
        "50", help="Scripted-expert demonstrations per task: one count, or one per task (e.g. 50,100,50)."
    ),
    noise_std: float = typer.Option(
        0.0, help="Std [rad] of noise on the executed joint targets while recording; labels stay clean (DART)."
    ),
    steps: int = typer.Option(3000, help="Optimizer steps."),
    batch_size: int = typer.Option(32, help="Frames per optimizer step."),
    lr: float = typer.Option(5e-4, help="Peak learning rate (warm-up then cosine decay)."),
    seed: int = typer.Option(0, help="Seed of recording, initialisation, batches and evaluation."),
    variations: str = typer.Option("none,none,colour", help="Variation presets cycled over each task's episodes."),
    eval_episodes: int = typer.Option(50, help="Seeded evaluation episodes per pretraining task."),
    heldout_eval_episodes: int = typer.Option(
        20, help="Seeded zero-shot episodes per held-out/unseen task (0 = skip)."
    ),
    threads: int = typer.Option(1, help="torch CPU threads (1 is fastest on a busy 2-core machine)."),
    workers: int = typer.Option(0, help="Recording worker processes (0 = one per CPU core)."),
    data: Path = typer.Option(None, help="Reuse this recorded LeRobot dataset instead of recording."),
    init_from: Path = typer.Option(None, help="Continue training this checkpoint instead of random weights."),
) -> None:
    """Record demonstrations, train a small SmolVLA from scratch, evaluate it and write a model card."""
    from rich.console import Console

    from robosteer.pretrain.pipeline import PretrainConfig, run_pretraining
    from robosteer.validation import check_out_path, read_dataset_info

    check_out_path(out, {"--data": data, "--init-from": init_from})
    if data is not None:
        read_dataset_info(data)

    cfg = PretrainConfig(
        out=out,
        tasks=tuple(t.strip() for t in tasks.split(",") if t.strip()),
        episodes_per_task=_counts(episodes_per_task),
        noise_std=noise_std,
        variations=tuple(v.strip() for v in variations.split(",") if v.strip()),
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        eval_episodes=eval_episodes,
        heldout_eval_episodes=heldout_eval_episodes,
        threads=threads,
        workers=workers,
        data=data,
        init_from=init_from,
    )
    command = "robosteer pretrain " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    policy_dir = run_pretraining(cfg, command)
    Console().print(f"checkpoint + MODEL_CARD.md: {policy_dir}", markup=False)


def _counts(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise typer.BadParameter(f"{text!r}: give whole numbers, e.g. 50 or 50,100,50") from None


def register(app: typer.Typer) -> None:
    app.command(name="pretrain")(pretrain)
