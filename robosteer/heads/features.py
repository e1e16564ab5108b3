"""Per-head features of a policy over dataset frames: one batched pass, a progress bar, a safetensors cache.

A run reads every head once per frame (see :mod:`robosteer.heads.readers` for which token and call, per architecture), records each
head's mean output (for mean-ablation) and can repeat the pass with only the images or only the instruction swapped
(causal sensitivity). The forward stops right after the first denoising step (nothing later is needed).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from robosteer.constants import ACTION, OBS_IMAGES_PREFIX, OBS_STATE, TASK
from robosteer.heads.readers import demonstrated_action, reader_for
from robosteer.heads.trace import HeadEdit, HeadTrace

RawBatch = dict
BatchEdit = Callable[[RawBatch, list[int]], RawBatch]
"""Changes a raw (unprocessed) batch given the positions of its frames in the frame table, e.g. swaps images."""


@dataclass
class FrameTable:
    """The frames a ranking is computed on."""

    index: list[int]
    """Global frame index in the LeRobotDataset."""
    episode: torch.Tensor
    """(N,) episode index of each frame."""
    state: torch.Tensor
    """(N, state_dim) raw observation.state."""
    action: torch.Tensor
    """(N, action_dim) raw demonstrated action."""
    task: list[str]
    """Instruction of each frame."""
    phase: torch.Tensor | None = None
    """(N,) position of each frame within its episode, 0 (first frame) .. 1 (last frame)."""

    def __len__(self) -> int:
        return len(self.index)


def collate(items: list[dict]) -> RawBatch:
    """Stack LeRobotDataset items into a raw batch (tensors stacked, task strings listed)."""
    batch: RawBatch = {}
    for key in items[0]:
        if key == TASK:
            batch[key] = [item[key] for item in items]
        elif key in (OBS_STATE, ACTION) or key.startswith(OBS_IMAGES_PREFIX):
            batch[key] = torch.stack([torch.as_tensor(item[key]) for item in items])
    return batch


class FrameLoader:
    """Reads dataset items (decoded images) once and keeps them: ranking visits the same frames several times."""

    def __init__(self, dataset):
        self.dataset = dataset
        self._items: dict[int, dict] = {}

    def item(self, index: int) -> dict:
        if index not in self._items:
            self._items[index] = self.dataset[index]
        return self._items[index]


def load_batch(loader: FrameLoader, frames: FrameTable, positions: list[int]) -> RawBatch:
    """Raw batch of the frames at ``positions`` of the frame table (a fresh dict; items are not modified)."""
    return collate([loader.item(frames.index[p]) for p in positions])


def progress_bar(total: int, description: str, show: bool):
    """A transient rich progress bar and its task id (disabled when ``show`` is False)."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    from robosteer.progress import Progress

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not show,
        transient=True,
    )
    return progress, progress.add_task(description, total=total)


def _chunks(n: int, size: int) -> list[list[int]]:
    return [list(range(i, min(i + size, n))) for i in range(0, n, size)]


@torch.no_grad()
def extract(
    policy,
    loader: FrameLoader,
    frames: FrameTable,
    positions: list[int],
    tokens: dict[str, str],
    batch_size: int = 16,
    denoise_step: int = 0,
    seed: int = 0,
    edit: BatchEdit | None = None,
    record_mean: bool = False,
    show_progress: bool = True,
    description: str = "head features",
    clean_pass: bool = False,
) -> dict[str, torch.Tensor]:
    """Features of every head at ``positions`` of the frame table: ``{"features": (n, H, D)}`` plus
    ``"means": (H, D)`` with ``record_mean`` (each head's mean output over every token it processed).

    With ``clean_pass`` the expert is read in an extra pass on the policy's own sampled chunk at t = 0
    (``denoise_step`` must then name that call, i.e. the policy's ``num_steps``)."""
    model, layout = policy.model, policy.layout
    reader = reader_for(model)
    model.eval()
    dim = max(site.head_dim for site in layout.sites)
    out, sums, count = [], None, 0
    progress, task_id = progress_bar(len(positions), description, show_progress)
    with progress:
        for chunk in _chunks(len(positions), batch_size):
            raw = load_batch(loader, frames, [positions[i] for i in chunk])
            if edit is not None:
                raw = edit(raw, [positions[i] for i in chunk])
            inputs = reader.model_inputs(model, policy.prepare_batch(raw))
            caps = reader.captures(tokens, inputs, denoise_step)
            with HeadTrace(model, layout, caps, stop_when_captured=True, record_mean=record_mean) as trace:
                (reader.sample_with_clean_pass if clean_pass else reader.sample_actions)(model, inputs, seed)
            out.append(trace.all_heads(tokens, dim).float().cpu())  # (b, H, D)
            if record_mean:
                means = trace.site_means()
                stacked = torch.stack(
                    [torch.nn.functional.pad(means[h], (0, dim - means[h].numel())) for h in layout.heads()]
                ).cpu()  # (H, D)
                weight = len(chunk)
                sums = stacked * weight if sums is None else sums + stacked * weight
                count += weight
            progress.advance(task_id, len(chunk))
    result = {"features": torch.cat(out)}
    if record_mean:
        result["means"] = sums / count
    return result


@torch.no_grad()
def model_batches(
    policy,
    loader: FrameLoader,
    frames: FrameTable,
    positions: list[int],
    batch_size: int = 16,
    pad_language: bool = False,
) -> list[tuple[tuple, torch.Tensor]]:
    """Preprocessed model inputs and demonstrated (normalised) actions per chunk of ``positions``, for reuse
    (``pad_language``: one prefix length for every batch, see :meth:`robosteer.heads.readers.HeadReader.pad_language`)."""
    reader = reader_for(policy.model)
    out = []
    for chunk in _chunks(len(positions), batch_size):
        batch = policy.prepare_batch(load_batch(loader, frames, [positions[i] for i in chunk]))
        inputs = reader.model_inputs(policy.model, batch)
        if pad_language:
            inputs = reader.pad_language(policy.model, inputs)
        out.append((inputs, demonstrated_action(batch).float()))
    return out


@torch.no_grad()
def predict(
    policy, batches: list[tuple[tuple, torch.Tensor]], edits: list[HeadEdit] | None = None, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """(predicted first action, demonstrated action), both normalised, (n, action_dim) each, with head edits."""
    model, layout = policy.model, policy.layout
    reader = reader_for(model)
    model.eval()
    predicted, demonstrated = [], []
    for inputs, demo in batches:
        with HeadTrace(model, layout, edits=edits or []):
            actions = reader.sample_actions(model, inputs, seed)  # (b, chunk, A)
        predicted.append(actions[:, 0].float().cpu())
        demonstrated.append(demo.cpu())
    return torch.cat(predicted), torch.cat(demonstrated)


# -- cache ---------------------------------------------------------------------------------------------------------
def cache_dir() -> Path:
    """``$ROBOSTEER_CACHE/heads`` or ``~/.cache/robosteer/heads``."""
    root = (
        os.environ.get("ROBOSTEER_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "robosteer"
    )
    return Path(root) / "heads"


def cache_key(**identity) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:20]


def load_cached(key: str) -> dict[str, torch.Tensor] | None:
    from safetensors.torch import load_file

    path = cache_dir() / f"features-{key}.safetensors"
    if not path.exists():
        return None
    try:
        return load_file(str(path))
    except Exception:  # a damaged cache file is recomputed, never trusted
        return None


def save_cached(key: str, tensors: dict[str, torch.Tensor]) -> Path:
    from safetensors.torch import save_file

    from robosteer.files import atomic_write

    path = cache_dir() / f"features-{key}.safetensors"
    return atomic_write(path, lambda tmp: save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp)))
