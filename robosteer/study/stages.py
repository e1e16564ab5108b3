"""The study's stages, each a thin call into another part of robosteer: record, rank, finetune.

Kept in one file so the glue to the other parts' APIs is in one place.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from robosteer.errors import RobosteerError


def record_demos(task: str, n_episodes: int, out: Path, *, variations: str, seed: int, image_size: int) -> Path:
    """Scripted-expert demonstrations of a task of any suite as a LeRobotDataset."""
    from sim.suites import record_expert_dataset

    return record_expert_dataset(task, n_episodes, out, variations=variations, seed=seed, image_size=image_size)


def dataset_summary(root: Path) -> dict[str, Any]:
    """Episode/frame counts and fps from a LeRobot dataset's meta/info.json."""
    from robosteer.validation import require_lerobot_dataset

    info = json.loads((require_lerobot_dataset(root) / "meta" / "info.json").read_text())
    return {"episodes": info.get("total_episodes"), "frames": info.get("total_frames"), "fps": info.get("fps")}


def rank(
    policy,
    dataset_root: Path,
    out: Path,
    *,
    top_k: int,
    seed: int,
    weights: dict[str, float] | None = None,
    min_layer: int = 0,
) -> dict[str, Any]:
    """Rank every head (``robosteer.heads.rank_heads``), save heads.json + heads.png into ``out``."""
    from robosteer.heads import RankConfig, rank_heads

    options = {"weights": dict(weights)} if weights else {}
    t0 = time.perf_counter()
    ranking = rank_heads(policy, dataset_root, RankConfig(top_k=top_k, seed=seed, min_layer=min_layer, **options))
    elapsed = time.perf_counter() - t0
    ranking.save(out)
    return {
        "selected": list(ranking.selected),
        "time_s": elapsed,
        "heads_json": str(Path(out) / "heads.json"),
        "causal": ranking.causal,
        "stability": ranking.stability,
        "controls": ranking.controls,
        "frames": {"mode": ranking.dataset["frame_mode"], "n": ranking.dataset["n_frames_scored"]},
        "timings": ranking.timings,
        "weights": options.get("weights", "default"),
    }


def finetune_method(
    policy,
    dataset_root: Path,
    out: Path,
    *,
    method: str,
    steps: int,
    batch_size: int,
    seed: int,
    heads: list[str] | None,
    heads_fingerprint: str | None,
    lora_rank: int,
    head_rank: int | None = None,
    lr: float | None = None,
    progress: bool = True,
    lora_targets: str = "lerobot",
    mlp_rank: int | None = None,
    train_action_projections: bool = False,
) -> dict[str, Any]:
    """Finetune with ``robosteer.tuners.finetune`` (``merged/`` checkpoint written); returns paths and compute figures.

    ``policy`` is edited in place (the tuner merges into it).
    """
    from robosteer.tuners import FinetuneConfig, finetune

    steer = method == "steer"
    config = FinetuneConfig(
        method=method,
        steps=steps,
        batch_size=batch_size,
        seed=seed,
        merge=True,
        heads=list(heads or []) if steer else [],
        heads_fingerprint=heads_fingerprint if steer else None,
        lora_rank=lora_rank,
        lora_targets=lora_targets,
        head_rank=head_rank if steer else None,
        mlp_rank=mlp_rank if steer else None,
        train_action_projections=train_action_projections and steer,
        lr=lr,
        progress=progress,
    )
    t0 = time.perf_counter()
    result = finetune(policy, dataset_root, config, out_dir=out)
    wall = time.perf_counter() - t0
    if result.merged_dir is None or not Path(result.merged_dir).is_dir():
        raise RobosteerError(f"finetune of {method} wrote no merged checkpoint in {out}")
    return {
        "merged": str(result.merged_dir),
        "adapter": str(result.adapter_dir) if result.adapter_dir else None,
        "compute": compute_figures(result.summary, wall),
    }


def compute_figures(summary: dict[str, Any], wall: float) -> dict[str, Any]:
    """The compute table's figures from a finetune summary.json (peak memory: CUDA measured, or the CPU estimate)."""
    peak = summary.get("peak_memory_bytes")
    return {
        "trainable_params": summary.get("trainable_params"),
        "total_params": summary.get("total_params"),
        "step_time_s": summary.get("mean_step_time_s"),
        "peak_memory_mb": peak / 2**20 if peak is not None else None,
        "peak_memory_source": summary.get("peak_memory_source"),
        "train_wall_s": summary.get("wall_time_s") or wall,
        "final_loss": summary.get("final_loss"),
        "peak_lr": summary.get("peak_lr"),
    }
