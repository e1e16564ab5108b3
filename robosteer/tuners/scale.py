"""Trainable parameters and training memory of steer, LoRA and full finetuning on full-size VLAs, on the meta device.

The embedded policy is tiny (head_dim 16, width 128), so its parameter ratios say little about a real VLA. This
builds LeRobot's ``smolvla_base`` (SmolVLM2-500M's first 16 layers x 15 heads of 64 + an expert 0.75 as wide; the
VLM config is built in code from published numbers, see :mod:`robosteer.tuners.scale_smolvla`), ``pi0`` and ``pi05``
(Gemma 2B + 300M expert, 18 + 18 layers x 8 heads of 256) with every tensor on ``meta`` and counts, without
training, what each method would train: steer on ``n_heads`` heads (full per-head deltas and low-rank forms), peft
LoRA rank ``lora_rank`` on LeRobot's default targets and on every linear layer of the decoder layers, and full
finetuning (the parameters LeRobot's config leaves trainable). With ``batch_size`` it also estimates each method's
training memory (:mod:`robosteer.tuners.scale_memory`: weights, gradients, AdamW, measured activations).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import torch

KINDS = ("smolvla_base", "pi0", "pi05")
"""Policies the scale section builds on the meta device."""


def build_on_meta(kind: str = "pi0") -> torch.nn.Module:
    """A full-size LeRobot ``smolvla_base``/``pi0``/``pi05`` policy whose parameters live on the meta device."""
    from robosteer.policies.smolvla_builder import default_features

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if kind == "smolvla_base":
        from robosteer.tuners.scale_smolvla import build_smolvla_base_on_meta

        return build_smolvla_base_on_meta()
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


def _methods(
    heads: list[str], head_ranks: tuple[int | None, ...], lora_rank: int
) -> dict[str, Callable[[torch.nn.Module], int]]:
    """Method name -> function that applies the method to a fresh policy in place and returns its trainable count."""
    from robosteer.policies.layouts import layout_for_policy
    from robosteer.tuners.head.config import HeadTunerConfig
    from robosteer.tuners.head.model import HeadTunerModel
    from robosteer.tuners.lora import inject_lora

    def steer(rank):
        def apply(policy):
            config = HeadTunerConfig(heads=heads, rank=rank)
            return HeadTunerModel(policy, layout_for_policy(policy), config).n_trainable()

        return apply

    def lora(targets):
        return lambda policy: _trainable(inject_lora(policy, layout_for_policy(policy), lora_rank, targets=targets))

    methods = {f"steer-{'full' if rank is None else f'r{rank}'}": steer(rank) for rank in head_ranks}
    methods.update({f"lora-{targets}-r{lora_rank}": lora(targets) for targets in ("lerobot", "all-linear")})
    methods["full"] = _trainable  # LeRobot's own trainable set (SmolVLA: expert + projections, VLM frozen)
    return methods


def count_at_scale(
    kind: str = "pi0",
    n_heads: int = 20,
    head_ranks: tuple[int | None, ...] = (None, 16, 4),
    lora_rank: int = 16,
    batch_size: int | None = None,
) -> dict[str, Any]:
    """Trainable parameters of each method on a meta-device ``kind`` policy and steer/LoRA ratios; with
    ``batch_size``, each method's training-memory estimate (``memory``) and steer/LoRA ratios of the totals."""
    from robosteer.policies.layouts import layout_for_policy
    from robosteer.tuners.bench import default_bench_heads
    from robosteer.tuners.scale_memory import estimate_memory

    policy = build_on_meta(kind)
    heads = default_bench_heads(layout_for_policy(policy), n_heads=n_heads)
    counts: dict[str, int] = {"total": sum(p.numel() for p in policy.parameters())}
    memory: dict[str, dict] = {}
    for name, apply in _methods(heads, head_ranks, lora_rank).items():
        model = policy if name == "full" else build_on_meta(kind)
        counts[name] = apply(model)
        if batch_size:
            memory[name] = estimate_memory(model, batch_size).as_dict()
    result = {"kind": kind, "heads": len(heads), "counts": counts, **_ratios(kind, counts, memory)}
    if batch_size:
        result["memory"] = memory
    return result


def _ratios(kind: str, counts: dict[str, int], memory: dict[str, dict]) -> dict[str, float]:
    """``"<kind> <steer>/<lora>: param_ratio"`` for every pair, and ``memory_ratio[_checkpointed]`` of the totals."""
    out = {}
    for steer in [name for name in counts if name.startswith("steer")]:
        for lora in [name for name in counts if name.startswith("lora")]:
            prefix = f"{kind} {steer}/{lora}"
            out[f"{prefix}: param_ratio"] = counts[steer] / counts[lora]
            if memory:
                out[f"{prefix}: memory_ratio"] = memory[steer]["total"] / memory[lora]["total"]
                if memory[steer]["total_checkpointed"] is not None:
                    ratio = memory[steer]["total_checkpointed"] / memory[lora]["total_checkpointed"]
                    out[f"{prefix}: memory_ratio_checkpointed"] = ratio
    return out


def bench_scale(kinds: tuple[str, ...] = KINDS, batch_size: int = 32, print_results: bool = True) -> dict[str, Any]:
    """The ``bench --micro`` scale section: counts and memory of every method on each of ``kinds``, printed."""
    out: dict[str, Any] = {"batch_size": batch_size}
    for kind in kinds:
        result = count_at_scale(kind, batch_size=batch_size)
        if print_results:
            print_scale(result)
        out.update({k: v for k, v in result.items() if ": " in k})
        out[f"{kind}_counts"] = result["counts"]
        out[f"{kind}_memory"] = result["memory"]
    if "pi05" in kinds:
        out["pi05_steer_memory_at_or_below_lora"] = steer_at_or_below_lora(out, "pi05")
        if print_results:
            _print_verdict(out, "pi05")
    return out


def steer_at_or_below_lora(report: dict[str, Any], kind: str) -> bool:
    """Whether every steer form's estimated total (checkpointed where the policy supports it) is <= every LoRA's."""
    checkpointed = any(k.startswith(f"{kind} ") and k.endswith("checkpointed") for k in report)
    suffix = "memory_ratio_checkpointed" if checkpointed else "memory_ratio"
    ratios = [v for k, v in report.items() if k.startswith(f"{kind} steer") and k.endswith(f": {suffix}")]
    return bool(ratios) and max(ratios) <= 1.0


def _console():
    """A rich console at least 120 columns wide (the memory table has nine columns)."""
    from rich.console import Console

    return Console(width=max(Console().width, 120))


def _gib(n: int | None) -> str:
    return "n/a" if n is None else f"{n / 2**30:.1f}"


def print_scale(result: dict[str, Any]) -> None:
    """One table per policy: trainable parameters and the memory estimate of each method."""
    from rich.table import Table

    console, kind, counts = _console(), result["kind"], result["counts"]
    memory = result.get("memory") or {}
    batch = next(iter(memory.values()))["batch_size"] if memory else None
    table = Table(
        title=f"{kind} on the meta device: {counts['total'] / 1e6:,.1f} M parameters, {result['heads']} steer heads"
        + (f", memory GiB at batch {batch} (AdamW)" if batch else "")
    )
    columns = ["method", "trainable"]
    if memory:
        columns += ["weights", "grads", "AdamW", "activations", "act. ckpt", "total", "total ckpt"]
    for column in columns:
        table.add_column(column, justify="left" if column == "method" else "right")
    for name, count in counts.items():
        if name == "total":
            continue
        row = [name, f"{count:,}"]
        if name in memory:
            m = memory[name]
            row += [_gib(m[k]) for k in ("weights", "gradients", "optimizer", "activations")]
            row += [_gib(m["activations_checkpointed"]), _gib(m["total"]), _gib(m["total_checkpointed"])]
        table.add_row(*row)
    console.print(table)
    _print_notes(console, result)


def _print_notes(console, result: dict[str, Any]) -> None:
    """Where the numbers come from, and a table of the steer/LoRA ratios (parameters, memory totals)."""
    from rich.table import Table

    from robosteer.tuners.scale_smolvla import CONFIG_SOURCE

    kind = result["kind"]
    if kind == "smolvla_base":
        console.print(
            f"smolvla_base: {CONFIG_SOURCE}; VLM weights bf16 as LeRobot loads them, expert fp32", markup=False
        )
    elif result.get("memory"):
        console.print(f"{kind}: weights at LeRobot's default dtype (config.dtype float32)", markup=False)
    if result.get("memory") and not any(k.endswith("checkpointed") for k in result):
        console.print(f"{kind}: LeRobot has no gradient checkpointing for this policy (ckpt columns n/a)", markup=False)
    kinds = {"param_ratio": "params", "memory_ratio": "memory", "memory_ratio_checkpointed": "memory ckpt"}
    table = Table(title=f"{kind}: steer / LoRA")
    table.add_column("pair")
    present = [k for k in kinds if any(key.endswith(f": {k}") for key in result)]
    for k in present:
        table.add_column(kinds[k], justify="right")
    pairs = [key.split(": ")[0].split(" ", 1)[1] for key in result if key.endswith(": param_ratio")]
    for pair in pairs:
        table.add_row(pair, *[f"{result.get(f'{kind} {pair}: {k}', float('nan')):.3f}" for k in present])
    console.print(table)


def _print_verdict(report: dict[str, Any], kind: str) -> None:
    ok = report[f"{kind}_steer_memory_at_or_below_lora"]
    _console().print(
        f"{kind}, gradient checkpointing on: steer's estimated training memory is "
        f"{'at or below' if ok else 'ABOVE'} LoRA's for every steer form and LoRA target",
        markup=False,
    )
