"""Demonstrations held in memory for fast from-scratch training (no video decoding per step).

A recorded LeRobot dataset is decoded once; images are resized with the same ``resize_with_pad`` SmolVLA applies at
inference, so training and acting see identical pixels. Batches are raw LeRobot batches (action chunks +
``action_is_pad`` + ``task``), ready for ``RobotPolicy.loss``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from robosteer.constants import ACTION, OBS_STATE, TASK
from robosteer.data.labels import read_episode_labels
from robosteer.errors import RobosteerError
from robosteer.pretrain.locate import POSITIONS, episode_positions


@dataclass
class InMemoryDemos:
    """Every frame of a dataset: states/actions (N, 8), images uint8 (N, 3, S, S) per key, episode bounds, tasks."""

    states: torch.Tensor
    actions: torch.Tensor
    images: dict[str, torch.Tensor]
    episode_end: torch.Tensor
    """(N,) index one past the last frame of each frame's episode."""
    task_ids: torch.Tensor
    """(N,) index into ``tasks``."""
    tasks: list[str]
    positions: torch.Tensor | None = None
    """(N, 4) each frame's episode object and target positions [m] (``robosteer.pretrain.locate``); None when the
    recording's labels lack them."""

    def __len__(self) -> int:
        return int(self.states.shape[0])

    def sample(self, batch_size: int, chunk_size: int, generator: torch.Generator, positions: bool = False) -> dict:
        """A random batch of frames with their next ``chunk_size`` actions (padded past the episode end), and with
        ``positions`` each frame's object/target positions under ``robosteer.pretrain.locate.POSITIONS``."""
        idx = torch.randint(len(self), (batch_size,), generator=generator)  # (B,)
        offsets = idx[:, None] + torch.arange(chunk_size)[None, :]  # (B, T)
        end = self.episode_end[idx][:, None]  # (B, 1)
        is_pad = offsets >= end  # (B, T)
        offsets = torch.minimum(offsets, end - 1)
        batch = {
            OBS_STATE: self.states[idx],  # (B, 8)
            ACTION: self.actions[offsets],  # (B, T, 8)
            "action_is_pad": is_pad,
            TASK: [self.tasks[i] for i in self.task_ids[idx].tolist()],
        }
        for key, frames in self.images.items():
            batch[key] = frames[idx].float() / 255.0  # (B, 3, S, S)
        if positions:
            batch[POSITIONS] = self.positions[idx]  # (B, 4)
        return batch


def load_demos(root: str | Path, image_size: int, image_keys: list[str], progress=None) -> InMemoryDemos:
    """Decode a LeRobot dataset on disk into memory; images resized (with padding) to ``image_size``."""
    from lerobot.policies.common.vla_utils import resize_with_pad

    from robosteer.validation import open_lerobot_dataset

    dataset = open_lerobot_dataset(root)
    missing = [k for k in image_keys if k not in dataset.meta.features]
    if missing:
        raise RobosteerError(f"dataset {root} lacks {missing}; it has {list(dataset.meta.features)}")
    n = len(dataset)
    states = torch.empty(n, dataset.meta.features[OBS_STATE]["shape"][0])
    actions = torch.empty(n, dataset.meta.features[ACTION]["shape"][0])
    images = {k: torch.empty(n, 3, image_size, image_size, dtype=torch.uint8) for k in image_keys}
    episodes = torch.empty(n, dtype=torch.long)
    task_ids = torch.empty(n, dtype=torch.long)
    tasks: dict[str, int] = {}
    task_bar = progress.add_task("decoding demonstrations", total=n) if progress else None
    for i in range(n):
        item = dataset[i]
        states[i] = item[OBS_STATE]
        actions[i] = item[ACTION]
        episodes[i] = int(item["episode_index"])
        task_ids[i] = tasks.setdefault(item[TASK], len(tasks))
        for key in image_keys:
            img = resize_with_pad(item[key][None].float(), image_size, image_size, pad_value=0)  # (1, 3, S, S)
            images[key][i] = (img[0].clamp(0, 1) * 255).round().to(torch.uint8)
        if progress:
            progress.advance(task_bar)
    per_episode = episode_positions(read_episode_labels(root))  # (E, 4) or None
    positions = per_episode[episodes] if per_episode is not None else None  # (N, 4)
    return InMemoryDemos(states, actions, images, _episode_ends(episodes), task_ids, list(tasks), positions)


def concat_demos(parts: list[InMemoryDemos]) -> InMemoryDemos:
    """Several decoded datasets as one: frames appended in order, episode bounds shifted, tasks merged by text."""
    if len(parts) == 1:
        return parts[0]
    tasks: dict[str, int] = {}
    task_ids, ends, offset = [], [], 0
    for part in parts:
        remap = torch.tensor([tasks.setdefault(task, len(tasks)) for task in part.tasks])  # (T_part,) -> merged ids
        task_ids.append(remap[part.task_ids])
        ends.append(part.episode_end + offset)
        offset += len(part)
    return InMemoryDemos(
        states=torch.cat([p.states for p in parts]),  # (N, 8)
        actions=torch.cat([p.actions for p in parts]),  # (N, 8)
        images={key: torch.cat([p.images[key] for p in parts]) for key in parts[0].images},  # (N, 3, S, S)
        episode_end=torch.cat(ends),
        task_ids=torch.cat(task_ids),
        tasks=list(tasks),
        positions=None if any(p.positions is None for p in parts) else torch.cat([p.positions for p in parts]),
    )


def pooled_metadata(roots: list[Path]):
    """Features and normalisation statistics of several datasets trained on together: the features they share
    (refused when they differ) and their pooled statistics (LeRobot's ``aggregate_stats``)."""
    from types import SimpleNamespace

    from lerobot.datasets.compute_stats import aggregate_stats

    from robosteer.validation import open_lerobot_metadata

    metas = [open_lerobot_metadata(root) for root in roots]
    first = metas[0]
    for root, meta in zip(roots[1:], metas[1:], strict=True):
        if _shapes(meta.features) != _shapes(first.features) or meta.fps != first.fps:
            raise RobosteerError(
                f"--data {root} has other features or fps than {roots[0]}; train together only datasets recorded "
                "with the same cameras, image size, state/action layout and fps"
            )
    return SimpleNamespace(features=first.features, stats=aggregate_stats([m.stats for m in metas]))


def _shapes(features: dict) -> dict:
    return {key: (f["dtype"], tuple(f["shape"])) for key, f in features.items()}


def _episode_ends(episodes: torch.Tensor) -> torch.Tensor:
    """(N,) one-past-last frame index of each frame's episode (frames of an episode are contiguous)."""
    ep = episodes.numpy()
    ends = np.empty_like(ep)
    boundaries = np.flatnonzero(np.diff(ep)) + 1
    starts = np.concatenate([[0], boundaries])
    stops = np.concatenate([boundaries, [len(ep)]])
    for start, stop in zip(starts, stops, strict=True):
        ends[start:stop] = stop
    return torch.from_numpy(ends)


def batch_stream(demos: InMemoryDemos, batch_size: int, chunk_size: int, seed: int, positions: bool = False):
    """``make_batches(start_step)`` for :func:`robosteer.tuners.train.train_loop`: seeded random batches of
    ``demos`` (with ``positions``, each frame's object/target positions too); a resumed run skips the draws of the
    steps before ``start_step``, so it sees the same batches."""

    def make_batches(start_step: int):
        generator = torch.Generator().manual_seed(seed)
        for _ in range(start_step):
            torch.randint(len(demos), (batch_size,), generator=generator)  # the draw sample() makes
        while True:
            yield demos.sample(batch_size, chunk_size, generator, positions)

    return make_batches
