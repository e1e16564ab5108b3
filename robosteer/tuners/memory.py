"""The few demonstrations of a finetuning run, decoded once and kept in memory as tensors.

Finetuning reads the same few hundred frames thousands of times; decoding their video for every batch cost about
two thirds of the wall time. ``InMemoryFrames`` decodes every item once (images kept as uint8 when that is exact)
and serves batches by indexing, with the same keys, dtypes and values a DataLoader over the dataset gives.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

DEFAULT_MAX_BYTES = 2 * 1024**3
"""Datasets whose decoded frames would take more memory than this are streamed from disk instead."""


def estimated_bytes(dataset) -> int:
    """Decoded size of every frame of ``dataset`` (images as uint8), from one item."""
    item = dataset[0]
    per_frame = 0
    for key, value in item.items():
        if isinstance(value, torch.Tensor):
            per_frame += value.numel() * (1 if _is_image(key, value) else value.element_size())
    return per_frame * len(dataset)


def _is_image(key: str, value: torch.Tensor) -> bool:
    return "image" in key and value.is_floating_point() and value.dim() >= 3  # (..., C, H, W)


def _as_uint8(images: torch.Tensor) -> torch.Tensor | None:
    """Float images in [0, 1] as uint8 when that round-trips exactly (decoded 8-bit frames), else None."""
    scaled = images * 255.0
    as_int = scaled.round()
    if torch.equal(as_int / 255.0, images) and images.min() >= 0 and images.max() <= 1:
        return as_int.to(torch.uint8)
    return None


class InMemoryFrames:
    """Every item of a LeRobotDataset, stacked per key: tensors (N, ...) and lists for strings."""

    def __init__(self, dataset, show_progress: bool = False):
        items = [dataset[i] for i in _progress(len(dataset), show_progress)]
        self.length = len(items)
        self.tensors: dict[str, torch.Tensor] = {}
        self.uint8_images: set[str] = set()
        self.lists: dict[str, list] = {}
        for key, value in items[0].items():
            if isinstance(value, torch.Tensor):
                stacked = torch.stack([item[key] for item in items])  # (N, ...)
                packed = _as_uint8(stacked) if _is_image(key, value) else None
                if packed is not None:
                    self.uint8_images.add(key)
                self.tensors[key] = packed if packed is not None else stacked
            else:
                self.lists[key] = [item[key] for item in items]

    def __len__(self) -> int:
        return self.length

    def batch(self, indices: list[int]) -> dict:
        """The batch of these frames, as ``torch.utils.data.default_collate`` would build it."""
        index = torch.as_tensor(indices)
        out: dict = {}
        for key, values in self.tensors.items():
            picked = values[index]
            out[key] = picked.float() / 255.0 if key in self.uint8_images else picked
        for key, values in self.lists.items():
            picked = [values[i] for i in indices]
            out[key] = picked if isinstance(picked[0], str) else torch.utils.data.default_collate(picked)
        return out


def _progress(n: int, show: bool) -> Iterator[int]:
    if not show:
        yield from range(n)
        return
    from rich.progress import track

    yield from track(range(n), description="reading the demos into memory", transient=True)
