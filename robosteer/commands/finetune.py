"""``robosteer finetune``: steer (only the chosen heads), LoRA or full finetuning of a LeRobot policy."""

from __future__ import annotations

from pathlib import Path

import typer

from robosteer.commands._options import ConfigCommand, ConfigOptions, Flag, config_options

FLAGS = {
    "method": Flag(help="steer (only the heads in --heads), lora (peft baseline) or full."),
    "lr": Flag(help="Peak learning rate (default: 1e-3 steer/lora, 1e-5 full)."),
    "warmup_steps": Flag(help="Linear warm-up steps before the cosine decay (default 5%)."),
    "resume": Flag(help="Continue the run in --out from its last checkpoint."),
    "overwrite": Flag(help="Replace a non-empty --out folder."),
    "head_rank": Flag(help="steer: rank of per-head low-rank deltas (default: full)."),
    "mlp_rank": Flag(
        help="steer: also train rank-r deltas on every VLM MLP linear; with --head-rank 16 and "
        "--train-action-projections this is the released Robotic Steering recipe."
    ),
    "lora_alpha": Flag(help="lora: alpha (default: the rank, i.e. scale 1)."),
    "betas": Flag(help="AdamW betas, comma separated (the paper uses b2 = 0.95)."),
    "batch_size": Flag(
        help="Samples per step in each process: under `accelerate launch --num_processes N` a step trains on "
        "N x this many (as lerobot-train); the learning rate is not scaled."
    ),
    "mixed_precision": Flag(
        help="auto (bf16 on a CUDA GPU that supports it, else off), no, bf16 or fp16; applied through accelerate "
        "(this flag decides, not `accelerate launch --mixed_precision`)."
    ),
}
"""Where the finetune flags differ from FinetuneConfig's docstrings (they name the flags, not the fields)."""
HIDDEN = ("heads", "heads_fingerprint", "progress")
"""Set from --heads (heads.json) and --quiet."""


@config_options("robosteer.tuners.config:FinetuneConfig", flags=FLAGS, hidden=HIDDEN)
def finetune(
    options: ConfigOptions,
    policy: str = typer.Option(
        "embedded",
        help="Base policy: 'embedded' (Franka), 'embedded-franka-v4' (broader Franka base), 'embedded-metaworld', a LeRobot checkpoint folder or a hub id (owner/name[@revision]).",
    ),
    dataset: Path = typer.Option(..., help="LeRobot dataset folder with the demonstrations."),
    out: Path = typer.Option(..., help="Run folder: adapter/, merged/, log.jsonl, summary.json, checkpoints/."),
    heads: Path | None = typer.Option(None, help="heads.json from `robosteer rank` (required for --method steer)."),
    device: str = typer.Option("auto", help="auto (cuda if available), cpu or cuda."),
    quiet: bool = typer.Option(False, help="No progress bar."),
) -> None:
    """Finetune a policy on demonstrations: only the chosen heads (steer), LoRA, or every weight (full).

    Data-parallel on many GPUs: `accelerate launch --num_processes N -m robosteer.cli finetune ...` (each process
    trains on --batch-size samples of every step; only the main process writes into --out).
    """
    from robosteer.tuners import finetune as run_finetune
    from robosteer.tuners.train import is_main_process
    from robosteer.validation import check_out_path, check_policy_dir, validate_dataset

    check_out_path(out, {"--dataset": dataset, "--heads": heads, "--policy": policy})
    config = options.build(**_heads_fields(options, heads), progress=not quiet)
    validate_dataset(dataset, policy)
    check_policy_dir(policy)
    base = _load_base(policy, device)
    result = run_finetune(base, dataset, config, out)
    if is_main_process():
        options.save(config, out)
        _print_result(result, config.method, out)


def _heads_fields(options: ConfigOptions, heads: Path | None) -> dict:
    """``heads`` and ``heads_fingerprint`` from --heads; steer without heads (nor another trained part) is refused."""
    from robosteer.errors import RobosteerError
    from robosteer.tuners import read_heads_json

    steer = options["method"] == "steer"
    if steer and heads is None and options["mlp_rank"] is None and not options["train_action_projections"]:
        raise RobosteerError("--method steer needs --heads heads.json (from `robosteer rank`)")
    if not steer or heads is None:
        return {"heads": [], "heads_fingerprint": None}
    names, fingerprint = read_heads_json(heads)
    return {"heads": names, "heads_fingerprint": fingerprint}


def _load_base(policy: str, device: str):
    """The base policy on ``device`` (auto: cuda when torch sees one; a launched process's own GPU)."""
    from robosteer.errors import RobosteerError

    if device not in ("auto", "cpu", "cuda"):
        raise RobosteerError(f"--device {device!r}: use auto, cpu or cuda")
    import torch

    from robosteer.policies import load_policy

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device == "cuda" and not torch.cuda.is_available():
        raise RobosteerError("--device cuda but torch sees no CUDA GPU; use --device cpu")
    _start_processes(device)
    return load_policy(policy, device=device)


def _start_processes(device: str) -> None:
    """Under a distributed launcher, join the process group first: that makes ``cuda`` this process's own GPU."""
    from robosteer.tuners.train import launched, process_state

    if launched():
        process_state(cpu=device == "cpu")


def _print_result(result, method: str, out: Path) -> None:
    """One summary line, then where the adapter, merged checkpoint, log and summary are."""
    from rich.console import Console

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
    app.command("finetune", cls=ConfigCommand)(finetune)
