"""Training data: a LeRobotDataset with the policy's action chunk, checked against the policy, in a resumable order."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch

from robosteer.errors import RobosteerError


class StepBatchSampler(torch.utils.data.Sampler):
    """Index batches for steps ``start_step .. steps-1``: consecutive slices of a stream of seeded permutations
    (epoch e uses ``seed + e``), so the batch of step s is the same whether or not the run was resumed.

    ``shard=(index, count)`` (data-parallel training): ``batch_size`` is per process, step s's global batch is the
    next ``batch_size * count`` positions of the stream and this process gets slice ``index`` of it, so the global
    batch is the one a single process with ``batch_size * count`` gets."""

    def __init__(
        self, n_samples: int, batch_size: int, seed: int, start_step: int, steps: int, shard: tuple[int, int] = (0, 1)
    ):
        if n_samples < 1:
            raise RobosteerError("the dataset has no frames; record some episodes first")
        self.n, self.batch_size, self.seed = n_samples, batch_size, seed
        self.start_step, self.steps = start_step, steps
        self.index, self.count = shard
        self._epoch, self._perm = -1, None

    def _index(self, position: int) -> int:
        epoch, offset = divmod(position, self.n)
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(self.seed + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.n, generator=generator).tolist()
        return self._perm[offset]

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start_step, self.steps):
            first = (step * self.count + self.index) * self.batch_size
            yield [self._index(p) for p in range(first, first + self.batch_size)]

    def __len__(self) -> int:
        return max(0, self.steps - self.start_step)


def _policy_config(policy):
    config = getattr(policy.model, "config", None)
    if config is None or not hasattr(config, "input_features"):
        raise RobosteerError("this policy has no LeRobot config with input_features; finetune needs a LeRobot policy")
    return config


def check_dataset_features(policy, meta) -> None:
    """Refuse a dataset that lacks a feature the policy reads (or the action it predicts) or has other sizes."""
    config = _policy_config(policy)
    wanted = dict(config.input_features)
    wanted.update(dict(getattr(config, "output_features", {}) or {}))
    have = meta.features
    missing = [key for key in wanted if key not in have]
    if missing:
        raise RobosteerError(
            f"the dataset at {meta.root} lacks {missing} that the policy needs (it has "
            f"{sorted(k for k in have if not k.startswith(('index', 'frame_index', 'episode_index', 'timestamp')))}); "
            "record the dataset with the policy's cameras/state, or use a policy made for this dataset"
        )
    for key, feature in wanted.items():
        if "image" in key:
            continue  # the processors resize images; only presence matters
        want, got = tuple(feature.shape), tuple(have[key]["shape"])
        if want[-1:] != got[-1:]:
            raise RobosteerError(
                f"dataset feature {key} has shape {got} but the policy expects {want}; "
                "the dataset was recorded for another robot or policy"
            )


def open_dataset(policy, dataset_root: str | Path):
    """The LeRobotDataset at ``dataset_root`` with the policy's delta timestamps (the action chunk)."""
    from lerobot.datasets.factory import resolve_delta_timestamps

    from robosteer.validation import open_lerobot_dataset, open_lerobot_metadata

    meta = open_lerobot_metadata(dataset_root)
    check_dataset_features(policy, meta)
    delta_timestamps = resolve_delta_timestamps(_policy_config(policy), meta)
    return open_lerobot_dataset(dataset_root, delta_timestamps=delta_timestamps)


def make_batch_stream(
    dataset,
    batch_size: int,
    seed: int,
    steps: int,
    num_workers: int = 0,
    in_memory: bool | None = None,
    show_progress: bool = False,
    shard: tuple[int, int] = (0, 1),
):
    """``make_batches(start_step)`` for :func:`robosteer.tuners.train.train_loop`.

    ``in_memory`` (None = when the decoded frames fit :data:`robosteer.tuners.memory.DEFAULT_MAX_BYTES`) decodes
    the dataset once and serves the same batches from memory; otherwise a DataLoader decodes every batch.
    ``shard=(index, count)``: this process's ``batch_size`` samples of every global batch (:class:`StepBatchSampler`).
    """
    from robosteer.tuners.memory import DEFAULT_MAX_BYTES, InMemoryFrames, estimated_bytes

    if in_memory is None:
        in_memory = estimated_bytes(dataset) <= DEFAULT_MAX_BYTES
    frames = InMemoryFrames(dataset, show_progress) if in_memory else None

    def make_batches(start_step: int) -> Iterator[dict]:
        sampler = StepBatchSampler(len(dataset), batch_size, seed, start_step, steps, shard)
        if frames is not None:
            return (frames.batch(indices) for indices in sampler)
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers)
        return iter(loader)

    return make_batches
