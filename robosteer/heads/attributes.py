"""Visual and linguistic scores: decoding recorded episode labels (and the instruction) from each head, and how
far each head moves when only the image or only the instruction is swapped."""

from __future__ import annotations

import torch

from robosteer.heads import dataset as ds
from robosteer.heads import scores


def label_parts(frames, labels, keys, hints) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Per-frame class ids of each usable label key; plus a note on the keys skipped."""
    notes, out, partitions, skipped = [], {}, {}, []
    if labels is None:
        return out, notes
    available = sorted({k for row in labels for k in row})
    wanted = keys if keys is not None else [k for k in available if any(h in k.lower() for h in hints)]
    for key in wanted:
        values = [labels[int(e)].get(key) if int(e) < len(labels) else None for e in frames.episode]
        n_episodes = int(frames.episode.unique().numel())
        classes = ds.encode_classes(values, max_classes=max(2, n_episodes // 2))
        if classes is None:
            skipped.append(key)
            continue
        first_seen = {c: i for i, c in reversed(list(enumerate(classes.tolist())))}
        partition = tuple(first_seen[c] for c in classes.tolist())  # the same grouping under any class names
        if partition in partitions:
            notes.append(f"label {key!r} groups the episodes exactly like {partitions[partition]!r}; counted once")
            continue
        partitions[partition] = key
        out[key] = classes
    if skipped:
        notes.append(
            f"labels {skipped} not decoded (missing for some episodes, continuous, a single class, or more "
            f"classes than half the episodes)"
        )
    return out, notes


def part_score(features, episodes, label_keys, tensors, swap: str, mask: torch.Tensor) -> torch.Tensor | None:
    """Mean of the decoding scores of ``label_keys`` and the ``swap`` sensitivity, on the frames in ``mask``."""
    parts = []
    for classes in label_keys.values():
        kept = classes[mask]
        if kept.unique().numel() >= 2:
            parts.append(scores.decoding_score(features[mask], kept, episodes[mask]))
    if f"swap_{swap}" in tensors:
        inside = mask[tensors[f"sens_positions_{swap}"]]
        if bool(inside.any()):
            parts.append(
                scores.sensitivity_score(tensors[f"sens_base_{swap}"][inside], tensors[f"swap_{swap}"][inside])
            )
    return scores.mean_of_parts(parts)
