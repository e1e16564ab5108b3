"""``robosteer finetune``: steer (only the chosen heads), LoRA or full finetuning of a LeRobot policy."""

from __future__ import annotations

from pathlib import Path

import typer


def finetune(
    method: str = typer.Option("steer", help="steer (only the heads in --heads), lora (peft baseline) or full."),
    policy: str = typer.Option("embedded", help="Base policy: a LeRobot checkpoint folder, or 'embedded'."),
    dataset: Path = typer.Option(..., help="LeRobot dataset folder with the demonstrations."),
    out: Path = typer.Option(..., help="Run folder: adapter/, merged/, log.jsonl, summary.json, checkpoints/."),
    heads: Path | None = typer.Option(None, help="heads.json from `robosteer rank` (required for --method steer)."),
    steps: int = typer.Option(1000, help="Optimizer steps."),
    batch_size: int = typer.Option(8, help="Samples per step."),
    lr: float | None = typer.Option(None, help="Peak learning rate (default: 1e-3 steer/lora, 1e-5 full)."),
    warmup_steps: int | None = typer.Option(None, help="Linear warm-up steps before the cosine decay (default 5%)."),
    seed: int = typer.Option(0, help="Seed for data order and initialisation."),
    merge: bool = typer.Option(
        False, help="Also write merged/: a plain LeRobot checkpoint with the adapter folded in."
    ),
    save_every: int = typer.Option(0, help="Write a resumable checkpoint every N steps (0: only at the end)."),
    resume: bool = typer.Option(False, help="Continue the run in --out from its last checkpoint."),
    overwrite: bool = typer.Option(False, help="Replace a non-empty --out folder."),
    head_rank: int | None = typer.Option(None, help="steer: rank of per-head low-rank deltas (default: full)."),
    head_kv: str = typer.Option("off", help="steer: k/v rows: off, own (refused under GQA/MQA) or shared."),
    train_action_projections: bool = typer.Option(
        False, help="steer: also train the action in/out projections (slower: backward reaches the expert's bottom)."
    ),
    mlp_rank: int | None = typer.Option(
        None,
        help="steer: also train rank-r deltas on every VLM MLP linear; with --head-rank 16 and "
        "--train-action-projections this is the released Robotic Steering recipe.",
    ),
    lora_rank: int = typer.Option(16, help="lora: rank."),
    lora_targets: str = typer.Option("lerobot", help="lora: 'lerobot' (LeRobot's default targets) or 'all-linear'."),
    device: str = typer.Option("auto", help="auto (cuda if available), cpu or cuda."),
    mixed_precision: str = typer.Option("auto", help="auto (bf16 on a GPU), no, bf16 or fp16."),
    num_workers: int = typer.Option(0, help="DataLoader worker processes."),
    stats: str = typer.Option(
        "policy",
        help="Normalisation statistics: policy (keep the base policy's) or "
        "dataset (this dataset's, as lerobot-train does; saved with the adapter).",
    ),
    quiet: bool = typer.Option(False, help="No progress bar."),
) -> None:
    """Finetune a policy on demonstrations: only the chosen heads (steer), LoRA, or every weight (full)."""
    from rich.console import Console

    from robosteer.errors import RobosteerError
    from robosteer.tuners import FinetuneConfig, read_heads_json
    from robosteer.tuners import finetune as run_finetune
    from robosteer.validation import check_out_path, check_policy_dir, validate_dataset

    check_out_path(out, {"--dataset": dataset, "--heads": heads, "--policy": policy})
    head_names, heads_fingerprint = [], None
    if method == "steer":
        if heads is None and mlp_rank is None and not train_action_projections:
            raise RobosteerError("--method steer needs --heads heads.json (from `robosteer rank`)")
        if heads is not None:
            head_names, heads_fingerprint = read_heads_json(heads)
    config = FinetuneConfig(
        method=method,
        heads=head_names,
        heads_fingerprint=heads_fingerprint,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        warmup_steps=warmup_steps,
        seed=seed,
        merge=merge,
        save_every=save_every,
        resume=resume,
        overwrite=overwrite,
        head_rank=head_rank,
        head_kv=head_kv,
        train_action_projections=train_action_projections,
        mlp_rank=mlp_rank,
        lora_rank=lora_rank,
        lora_targets=lora_targets,
        mixed_precision=mixed_precision,
        num_workers=num_workers,
        stats=stats,
        progress=not quiet,
    )
    validate_dataset(dataset, policy)
    check_policy_dir(policy)
    if device not in ("auto", "cpu", "cuda"):
        raise RobosteerError(f"--device {device!r}: use auto, cpu or cuda")
    import torch

    from robosteer.policies import load_policy

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device == "cuda" and not torch.cuda.is_available():
        raise RobosteerError("--device cuda but torch sees no CUDA GPU; use --device cpu")
    base = load_policy(policy, device=device)
    result = run_finetune(base, dataset, config, out)
    summary = result.summary
    console = Console()
    console.print(
        f"[green]done[/] {method}: {summary['trainable_params']:,} trainable of "
        f"{summary['total_params']:,} params, final loss {summary['final_loss']:.4f}, "
        f"{summary['mean_step_time_s'] * 1000:.1f} ms/step, wall {summary['wall_time_s']:.1f} s"
    )
    for label, path in (("adapter", result.adapter_dir), ("merged checkpoint", result.merged_dir)):
        if path:
            console.print(f"  {label}: {path}", markup=False)
    console.print(f"  log: {out / 'log.jsonl'}  summary: {out / 'summary.json'}", markup=False)


def register(app: typer.Typer) -> None:
    app.command("finetune")(finetune)
