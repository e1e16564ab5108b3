"""The LoRA baseline, through peft, on the same policy and layout as the head tuner.

Targets:
- ``lerobot``: what LeRobot 0.6.1's own PEFT integration targets (``policy._get_default_peft_targets()``): for SmolVLA
  the action expert's ``q_proj``/``v_proj`` plus ``state_proj``, ``action_in_proj``, ``action_out_proj``,
  ``action_time_mlp_in/out``; for pi0/pi05 the Gemma expert's q/v plus the same projections. A model without
  LeRobot defaults (a plain decoder) gets q/v of every attention layer of its layout.
- ``all-linear``: every linear of every attention layer and its MLP in the layout's stacks (the paper's LoRA
  baseline on pi0 trains attention + MLP of the transformers; the vision encoder stays frozen).
"""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from robosteer.errors import RobosteerError
from robosteer.policies.layout import HeadLayout

META_FILE = "robosteer_adapter.json"


def lora_target_modules(model: nn.Module, layout: HeadLayout, targets: str) -> str | list[str]:
    """peft ``target_modules`` (a regex string or a list of full module paths) for ``targets``."""
    if targets == "lerobot":
        defaults = getattr(model, "_get_default_peft_targets", None)
        found = defaults() if callable(defaults) else None
        if found and found.get("target_modules"):
            return found["target_modules"]
        return [f"{site.module_path}.{proj}" for site in layout for proj in ("q_proj", "v_proj")]
    if targets == "all-linear":
        paths = []
        for site in layout:
            decoder_layer = site.module_path.rsplit(".", 1)[0]
            for name, module in model.get_submodule(decoder_layer).named_modules():
                if isinstance(module, nn.Linear):
                    paths.append(f"{decoder_layer}.{name}")
        return sorted(set(paths))
    raise RobosteerError(f"unknown LoRA targets {targets!r}; use 'lerobot' or 'all-linear'")


def inject_lora(
    model: nn.Module,
    layout: HeadLayout,
    rank: int = 16,
    alpha: float | None = None,
    targets: str = "lerobot",
    seed: int = 0,
):
    """Freeze ``model`` and add LoRA adapters in place; returns the ``PeftModel`` (its base is ``model``)."""
    import torch
    from peft import LoraConfig, get_peft_model

    target_modules = lora_target_modules(model, layout, targets)
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha if alpha is not None else rank,
        lora_dropout=0.0,
        target_modules=target_modules,
        bias="none",
    )
    for param in model.parameters():
        param.requires_grad_(False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        peft_model = get_peft_model(model, config)
    return peft_model


def save_lora(peft_model, out_dir: str | Path, policy_fingerprint: str | None, extra: dict | None = None) -> Path:
    """peft's own files (``adapter_config.json``, ``adapter_model.safetensors``) + robosteer's metadata."""
    out_dir = Path(out_dir)
    peft_model.save_pretrained(str(out_dir), safe_serialization=True)
    meta = {"method": "lora", "policy_fingerprint": policy_fingerprint, **(extra or {})}
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=2))
    return out_dir


def load_lora(model: nn.Module, adapter_dir: str | Path, policy_fingerprint: str | None):
    """Load a saved LoRA adapter onto ``model`` with peft's ``PeftModel.from_pretrained`` (checks the fingerprint)."""
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    meta_path = adapter_dir / META_FILE
    if meta_path.is_file():
        saved = json.loads(meta_path.read_text()).get("policy_fingerprint")
        if saved and policy_fingerprint and saved != policy_fingerprint:
            raise RobosteerError(
                f"LoRA adapter {adapter_dir} was trained on policy {saved[:12]} but this policy is "
                f"{policy_fingerprint[:12]}; load it onto the base policy it was trained on"
            )
    return PeftModel.from_pretrained(model, str(adapter_dir))
