"""Resumable training checkpoints as safetensors + JSON (no pickles).

A checkpoint folder holds ``trainable.safetensors`` (the trainable tensors by name), ``optimizer.safetensors`` (the
optimizer's per-parameter tensors) and ``state.json`` (step, optimizer hyper-parameters, scheduler state, config).
Folders are written to a temp name and renamed, so a crash never leaves a half checkpoint as ``latest``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from robosteer.errors import RobosteerError

LATEST = "latest"


def save_checkpoint(
    ckpt_root: Path,
    step: int,
    named_trainable: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    scheduler,
    extra: dict,
) -> Path:
    """Write ``<ckpt_root>/latest`` for ``step`` (replacing the previous one)."""
    ckpt_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".ckpt-", dir=ckpt_root))
    save_file(
        {k: v.detach().to("cpu").contiguous() for k, v in named_trainable.items()}, str(tmp / "trainable.safetensors")
    )
    opt_state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, per_param in opt_state["state"].items():
        for key, value in per_param.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{key}"] = value.detach().to("cpu").contiguous()
            else:
                scalars[f"{index}.{key}"] = value
    tensors["rng.torch"] = torch.get_rng_state()
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    state = {
        "step": step,
        "param_groups": opt_state["param_groups"],
        "optimizer_scalars": scalars,
        "scheduler": scheduler.state_dict(),
        **extra,
    }
    (tmp / "state.json").write_text(json.dumps(state, indent=2))
    target = ckpt_root / LATEST
    if target.exists():
        old = ckpt_root / f".old-{step}"
        os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old)
    else:
        os.replace(tmp, target)
    return target


def read_checkpoint_state(ckpt_dir: Path) -> dict:
    path = ckpt_dir / "state.json"
    if not path.is_file():
        raise RobosteerError(
            f"{ckpt_dir} is not a robosteer training checkpoint (no state.json); drop --resume to start fresh"
        )
    from robosteer.validation import read_strict_json

    state = read_strict_json(path, "drop --resume (with --overwrite) to start the run again")
    if not isinstance(state, dict) or not isinstance(state.get("step"), int):
        raise RobosteerError(f"{path} holds no training step; drop --resume (with --overwrite) to start the run again")
    return state


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError

    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise RobosteerError(
            f"checkpoint file {path} is unreadable ({err}); drop --resume (with --overwrite) to start the run again"
        ) from None


@torch.no_grad()
def load_checkpoint(
    ckpt_dir: Path, named_trainable: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer, scheduler
) -> dict:
    """Restore trainable tensors, optimizer, scheduler and torch RNG; returns state.json's content."""
    state = read_checkpoint_state(ckpt_dir)
    saved = _load_tensors(ckpt_dir / "trainable.safetensors")
    if set(saved) != set(named_trainable):
        raise RobosteerError(
            f"checkpoint {ckpt_dir} trains other parameters than this run (e.g. "
            f"{sorted(set(saved) ^ set(named_trainable))[:3]}); resume with the same method and "
            "heads, or drop --resume"
        )
    for key, param in named_trainable.items():
        param.copy_(saved[key].to(param.device, param.dtype))
    tensors = _load_tensors(ckpt_dir / "optimizer.safetensors")
    torch.set_rng_state(tensors.pop("rng.torch"))
    per_param: dict[int, dict] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        per_param.setdefault(int(index), {})[name] = value
    for key, value in state["optimizer_scalars"].items():
        index, name = key.split(".", 1)
        per_param.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": per_param, "param_groups": state["param_groups"]})
    scheduler.load_state_dict(state["scheduler"])
    return state
