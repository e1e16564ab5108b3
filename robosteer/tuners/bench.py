"""Steer vs LoRA on the same policy, batch and loop: trainable parameters, step time, backward time, peak memory.

Targets: trainable steer/LoRA <= 1/30, step time steer/LoRA <= 0.6, peak memory steer <= LoRA. The
speed-up comes from where the backward pass stops: with every base weight frozen, autograd records nothing below the
lowest tuned layer, while LoRA on every layer must backpropagate through all of them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from robosteer.tuners.config import FinetuneConfig
from robosteer.tuners.finetune import finetune

TARGET_PARAM_RATIO = 1 / 30
TARGET_TIME_RATIO = 0.6


def default_bench_heads(layout, n_heads: int = 12, lowest_fraction: float = 0.5) -> list[str]:
    """``n_heads`` heads spread over the layers at or above ``lowest_fraction`` of the depth, alternating stacks.

    The last layer of a VLM stack is skipped: in SmolVLA the expert reads only the VLM's keys/values, so the last
    VLM layer's query and output projections never reach the action.
    """
    candidates = []
    for site in layout:
        depth = max(s.layer for s in layout if s.stack == site.stack) + 1
        if site.layer < int(lowest_fraction * depth) or (site.stack == "vlm" and site.layer == depth - 1):
            continue
        candidates.append(site)
    names = []
    for h in range(max((s.n_heads for s in candidates), default=0)):
        for site in candidates:
            if h < site.n_heads and len(names) < n_heads:
                names.append(f"{site.stack}.L{site.layer}.H{h}")
    return names


def benchmark_steer_vs_lora(
    make_policy: Callable[[], object],
    batch: dict,
    heads: list[str],
    steps: int = 6,
    lora_rank: int = 16,
    head_rank: int = 4,
    repeats: int = 2,
    out_dir: str | Path | None = None,
    print_results: bool = True,
) -> dict:
    """Train steer (full per-head deltas and rank ``head_rank``) and both LoRA variants for ``steps`` steps on the
    same ``batch``; returns and prints the ratios of each steer run to each LoRA run.

    ``make_policy()`` must return a fresh, identical base policy each call. The first step of each run is excluded
    from the mean step time (allocation warm-up); with ``repeats`` > 1 the runs are interleaved and each keeps its
    fastest repetition, which damps the noise of a shared machine.
    """
    runs = {
        "steer": {"method": "steer", "heads": heads},
        f"steer-r{head_rank}": {"method": "steer", "heads": heads, "head_rank": head_rank},
        "lora-lerobot": {"method": "lora", "lora_targets": "lerobot", "lora_rank": lora_rank},
        "lora-all-linear": {"method": "lora", "lora_targets": "all-linear", "lora_rank": lora_rank},
    }
    root = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="robosteer-bench-"))
    summaries: dict[str, dict] = {}
    for _ in range(repeats):  # interleaved repeats; keep each run's fastest (least disturbed) repetition
        for name, options in runs.items():
            config = FinetuneConfig(
                steps=steps, batch_size=len(batch["action"]), progress=False, overwrite=True, warmup_steps=0, **options
            )
            torch.manual_seed(0)
            summary = finetune(
                make_policy(), None, config, root / name, make_batches=lambda start: iter([batch] * (steps - start))
            ).summary
            if name not in summaries or summary["mean_step_time_s"] < summaries[name]["mean_step_time_s"]:
                summaries[name] = summary
    steer = summaries["steer"]
    report = {
        "runs": summaries,
        "heads": heads,
        "lowest_tuned_layers": steer.get("lowest_tuned_layers"),
        "device": steer["device"],
        "comparisons": {},
    }
    for steer_name in [name for name in runs if name.startswith("steer")]:
        for lora_name in [name for name in runs if name.startswith("lora")]:
            report["comparisons"][f"{steer_name}/{lora_name}"] = _ratios(summaries[steer_name], summaries[lora_name])
    if print_results:
        print_report(report)
    return report


def _ratios(steer: dict, lora: dict) -> dict:
    ratios = {
        "trainable_ratio": steer["trainable_params"] / lora["trainable_params"],
        "step_time_ratio": steer["mean_step_time_s"] / lora["mean_step_time_s"],
        "backward_time_ratio": steer["mean_backward_time_s"] / lora["mean_backward_time_s"],
        "peak_memory_ratio": steer["peak_memory_bytes"] / lora["peak_memory_bytes"],
    }
    ratios["meets_param_target"] = ratios["trainable_ratio"] <= TARGET_PARAM_RATIO
    ratios["meets_time_target"] = ratios["step_time_ratio"] <= TARGET_TIME_RATIO
    ratios["meets_memory_target"] = ratios["peak_memory_ratio"] <= 1.0
    return ratios


def print_report(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"steer vs LoRA, same batch and loop ({report['device']})")
    for column in ("run", "trainable", "total", "ms/step", "ms backward", "peak MiB", "final loss"):
        table.add_column(column, justify="right" if column != "run" else "left")
    for name, s in report["runs"].items():
        table.add_row(
            name,
            f"{s['trainable_params']:,}",
            f"{s['total_params']:,}",
            f"{s['mean_step_time_s'] * 1e3:.1f}",
            f"{s['mean_backward_time_s'] * 1e3:.1f}",
            f"{s['peak_memory_bytes'] / 2**20:.1f}",
            f"{s['final_loss']:.4f}",
        )
    console.print(table)
    console.print(
        f"heads ({len(report['heads'])}): lowest tuned layer per stack {report['lowest_tuned_layers']}; "
        f"memory: {next(iter(report['runs'].values()))['peak_memory_source']}"
    )
    ok = {True: "[green]meets[/]", False: "[red]misses[/]"}
    for name, r in report["comparisons"].items():
        console.print(
            f"{name}: params x{r['trainable_ratio']:.4f} ({ok[r['meets_param_target']]} <= 1/30), "
            f"step time x{r['step_time_ratio']:.2f} ({ok[r['meets_time_target']]} <= 0.6), "
            f"backward x{r['backward_time_ratio']:.2f}, "
            f"peak memory x{r['peak_memory_ratio']:.2f} ({ok[r['meets_memory_target']]} <= 1)"
        )


def bench_batch(policy, dataset_root: str | Path | None = None, batch_size: int = 8, seed: int = 0) -> dict:
    """One training batch: from a LeRobot dataset when given, else random inputs of the policy's shapes."""
    if dataset_root is not None:
        from robosteer.tuners.data import make_batch_stream, open_dataset

        return next(make_batch_stream(open_dataset(policy, dataset_root), batch_size, seed, 1)(0))
    generator = torch.Generator().manual_seed(seed)
    config = policy.model.config
    chunk = config.chunk_size
    batch = {
        "observation.state": torch.randn(batch_size, policy.state_dim, generator=generator),
        "action": torch.randn(batch_size, chunk, policy.action_dim, generator=generator),
        "action_is_pad": torch.zeros(batch_size, chunk, dtype=torch.bool),
        "task": ["pick up the red cube"] * batch_size,
    }
    for key in policy.image_keys:
        size = config.input_features[key].shape[-1]
        batch[key] = torch.rand(batch_size, 3, size, size, generator=generator)
    return batch


def run_bench(
    policy: str | None = None,
    dataset_root: str | Path | None = None,
    heads: list[str] | None = None,
    steps: int = 8,
    batch_size: int = 8,
    lora_rank: int = 16,
    head_rank: int = 4,
    repeats: int = 3,
) -> dict:
    """The ``make bench`` entry: a checkpoint path / 'embedded', or (None) a from-scratch SmolVLA of the embedded
    policy's architecture (timings and memory do not depend on the weights)."""
    from robosteer.policies import load_policy
    from robosteer.policies.loading import make_smolvla
    from robosteer.policies.smolvla_builder import SmolVLASpec

    def make_policy():
        return load_policy(policy) if policy else make_smolvla(SmolVLASpec(), dataset_root, seed=0)

    first = make_policy()
    heads = heads or default_bench_heads(first.layout)
    batch = bench_batch(first, dataset_root, batch_size)
    return benchmark_steer_vs_lora(make_policy, batch, heads, steps, lora_rank, head_rank, repeats)
