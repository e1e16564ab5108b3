"""Every tensor a ranking needs from the policy: head features on all frames (plus each head's mean output), the
same on a randomly initialised copy (a control), and re-runs with swapped images or instructions (sensitivity)."""

from __future__ import annotations

import torch

from robosteer.constants import OBS_IMAGES_PREFIX, TASK
from robosteer.heads import features as feats


def evenly_spread(n: int, count: int) -> list[int]:
    """``count`` evenly spread positions out of ``n`` (all when count >= n)."""
    if count >= n:
        return list(range(n))
    return torch.linspace(0, n - 1, count).round().long().unique().tolist()


def partners(frames: feats.FrameTable, positions: list[int], seed: int, same_task: bool) -> dict[int, int]:
    """For each position, a frame of another episode (same instruction if ``same_task`` and one exists)."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for p in positions:
        others = [q for q in range(len(frames)) if frames.episode[q] != frames.episode[p]]
        if same_task:
            same = [q for q in others if frames.task[q] == frames.task[p]]
            others = same or others
        else:
            others = [q for q in others if frames.task[q] != frames.task[p]]
        if others:
            out[p] = others[int(torch.randint(len(others), (1,), generator=gen))]
    return out


def extract_all(policy, loader, frames, options: dict, config, notes: list[str], control=None) -> dict:
    """``features`` (N, H, D) and ``means`` (H, D); ``random_init_features`` when a ``control`` policy is given;
    ``swap_<image|task>`` / ``sens_base_<...>`` / ``sens_positions_<...>`` for the sensitivity scores."""
    everything = list(range(len(frames)))
    out = feats.extract(policy, loader, frames, everything, record_mean=True, description="head features", **options)
    if control is not None:
        out["random_init_features"] = feats.extract(
            control, loader, frames, everything, description="random-init control", **options
        )["features"]
    if config.sensitivity_frames == 0:
        return out
    subset = evenly_spread(len(frames), config.sensitivity_frames)
    for swap, same_task in (("image", True), ("task", False)):
        partner = partners(frames, subset, config.seed, same_task)
        if not partner:
            notes.append(f"no {swap} swap possible (all frames share one instruction or one episode)")
            continue
        positions = [p for p in subset if p in partner]
        out[f"swap_{swap}"] = feats.extract(
            policy,
            loader,
            frames,
            positions,
            edit=_swap_edit(loader, frames, partner, swap),
            description=f"{swap} swap",
            **options,
        )["features"]
        out[f"sens_base_{swap}"] = out["features"][positions]
        out[f"sens_positions_{swap}"] = torch.tensor(positions)
    return out


def _swap_edit(loader, frames, partner: dict[int, int], swap: str):
    def edit(raw, pos):
        if swap == "task":
            raw[TASK] = [frames.task[partner[p]] for p in pos]
            return raw
        other = feats.load_batch(loader, frames, [partner[p] for p in pos])
        raw.update({k: v for k, v in other.items() if k.startswith(OBS_IMAGES_PREFIX)})
        return raw

    return edit
