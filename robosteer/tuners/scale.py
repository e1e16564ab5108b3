"""Trainable-parameter counts of steer and LoRA on a full-size VLA, built on the meta device (no weights, no memory).

The embedded policy is tiny (head_dim 16, width 128), so its parameter ratios say little about a real VLA. This
builds LeRobot's pi0 (Gemma 2B + 300M expert, 18 + 18 layers x 8 heads of 256) with every tensor on ``meta`` and
counts, without training, what each method would train: steer on ``n_heads`` heads (full per-head deltas and low-rank
forms) and peft LoRA rank ``lora_rank`` on LeRobot's default targets and on every linear layer of the decoder layers.
"""

from __future__ import annotations

import importlib
from typing import Any

import torch


def build_on_meta(kind: str = "pi0") -> torch.nn.Module:
    """A full-size LeRobot ``pi0``/``pi05`` policy whose parameters live on the meta device."""
    from robosteer.policies.smolvla_builder import default_features

    if kind not in ("pi0", "pi05"):
        raise ValueError(f"kind must be 'pi0' or 'pi05', got {kind!r}")
    conf = importlib.import_module(f"lerobot.policies.{kind}.configuration_{kind}")
    modeling = importlib.import_module(f"lerobot.policies.{kind}.modeling_{kind}")
    config_cls = conf.PI0Config if kind == "pi0" else conf.PI05Config
    policy_cls = modeling.PI0Policy if kind == "pi0" else modeling.PI05Policy
    inputs, outputs = default_features()
    config = config_cls(input_features=inputs, output_features=outputs, device="cpu")
    config.device = "meta"
    with torch.device("meta"):
        return policy_cls(config)


def _trainable(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def count_at_scale(
    kind: str = "pi0", n_heads: int = 20, head_ranks: tuple[int | None, ...] = (None, 16, 4), lora_rank: int = 16
) -> dict[str, Any]:
    """Trainable parameters of each method on a meta-device ``kind`` policy, and steer/LoRA ratios."""
    from robosteer.policies.layouts import layout_for_policy
    from robosteer.tuners.bench import default_bench_heads
    from robosteer.tuners.head.config import HeadTunerConfig
    from robosteer.tuners.head.model import HeadTunerModel
    from robosteer.tuners.lora import inject_lora

    policy = build_on_meta(kind)
    layout = layout_for_policy(policy)
    heads = default_bench_heads(layout, n_heads=n_heads)
    counts: dict[str, int] = {"total": sum(p.numel() for p in policy.parameters())}
    for rank in head_ranks:
        model = build_on_meta(kind)
        tuner = HeadTunerModel(model, layout_for_policy(model), HeadTunerConfig(heads=heads, rank=rank))
        counts[f"steer-{'full' if rank is None else f'r{rank}'}"] = tuner.n_trainable()
    for targets in ("lerobot", "all-linear"):
        model = build_on_meta(kind)
        counts[f"lora-{targets}-r{lora_rank}"] = _trainable(
            inject_lora(model, layout_for_policy(model), lora_rank, targets=targets)
        )
    ratios = {
        f"{kind} {steer}/{lora}: param_ratio": counts[steer] / counts[lora]
        for steer in counts
        if steer.startswith("steer")
        for lora in counts
        if lora.startswith("lora")
    }
    return {"kind": kind, "heads": len(heads), "counts": counts, **ratios}
