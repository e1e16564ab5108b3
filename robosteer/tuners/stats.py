"""Normalisation statistics: keep the base policy's (default) or use the finetuning dataset's, as lerobot-train does.

The base policy was pretrained with its own statistics; a heads-only tuner cannot re-learn the frozen state/action
projections, so by default the statistics stay. With ``stats="dataset"`` the dataset's statistics replace them in
the policy's normaliser and unnormaliser, and are saved beside the adapter (``normalization.safetensors``) so that
:func:`robosteer.tuners.apply_adapter` restores them.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

STATS_FILE = "normalization.safetensors"


def _normalisation_steps(policy) -> list:
    from lerobot.processor.normalize_processor import NormalizerProcessorStep, UnnormalizerProcessorStep

    steps = []
    for pipeline in (getattr(policy, "preprocessor", None), getattr(policy, "postprocessor", None)):
        for step in getattr(pipeline, "steps", []):
            if isinstance(step, NormalizerProcessorStep | UnnormalizerProcessorStep):
                steps.append(step)
    return steps


def set_policy_stats(policy, stats: dict[str, dict]) -> int:
    """Replace the statistics of every (un)normaliser step of ``policy``; returns how many steps changed."""
    steps = _normalisation_steps(policy)
    for step in steps:
        step.stats = {key: dict(value) for key, value in stats.items()}
        step.to()  # rebuilds the tensor copies of the statistics on the step's device
    return len(steps)


def save_policy_stats(policy, out_dir: Path) -> None:
    steps = _normalisation_steps(policy)
    if steps:
        flat = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in steps[0].state_dict().items()}
        save_file(flat, str(Path(out_dir) / STATS_FILE))


def load_policy_stats(policy, adapter_dir: Path) -> bool:
    path = Path(adapter_dir) / STATS_FILE
    if not path.is_file():
        return False
    stats: dict[str, dict] = {}
    for flat_key, tensor in load_file(str(path)).items():
        key, stat_name = flat_key.rsplit(".", 1)
        stats.setdefault(key, {})[stat_name] = tensor
    set_policy_stats(policy, stats)
    return True
