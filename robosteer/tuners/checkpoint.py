"""Resumable training checkpoints as safetensors + JSON (no pickles).

A checkpoint folder holds ``trainable.safetensors`` (the trainable tensors by name), ``optimizer.safetensors`` (the
optimizer's per-parameter tensors) and ``state.json`` (step, optimizer hyper-parameters, scheduler state, config).
Folders are written atomically (``robosteer.files.atomic_dir``), so a crash never leaves a half checkpoint as
``latest``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from robosteer.errors import RobosteerError
from robosteer.files import atomic_dir

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
    return atomic_dir(
        ckpt_root / LATEST, lambda tmp: _write_checkpoint(tmp, step, named_trainable, optimizer, scheduler, extra)
    )


def _write_checkpoint(tmp: Path, step: int, named_trainable, optimizer, scheduler, extra: dict) -> None:
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
