"""Which heads a ranking selects: top-k (optionally per-stack quotas), and control selections (stratified random,
bottom) that keep the top-k's stack x layer histogram, so a comparison changes *which* heads, not *where* they are.

Scores of different stacks are read at different tokens and calls (VLM: a prefix token; expert: an action token of
a denoising step) and have different spreads; ``normalise_per_stack`` maps each stack's scores onto [0, 1] before
they are pooled, so one stack cannot crowd out the other by scale alone.
"""

from __future__ import annotations

from collections import Counter

import torch

from robosteer.errors import RobosteerError
from robosteer.heads import scores
from robosteer.policies.layout import HeadId

SELECT_MODES: tuple[str, ...] = ("top", "random", "bottom")


def cell(name: str) -> tuple[str, int]:
    """(stack, layer) of a head name."""
    head = HeadId.parse(name)
    return head.stack, head.layer


def normalise_per_stack(score: torch.Tensor, heads: list[str]) -> torch.Tensor:
    """Min-max normalise the scores of each stack separately onto [0, 1] (a constant stack maps to 0)."""
    out = score.clone().float()
    stacks = [cell(h)[0] for h in heads]
    for stack in dict.fromkeys(stacks):
        idx = torch.tensor([i for i, s in enumerate(stacks) if s == stack])
        values = out[idx]
        span = float(values.max() - values.min())
        out[idx] = (values - values.min()) / span if span > 0 else torch.zeros_like(values)
    return out


def top_k(score: torch.Tensor, k: int, eligible: list[int], heads: list[str], quota: dict[str, int] | None) -> list:
    """The best ``k`` eligible heads (best first); with ``quota`` the best ``quota[stack]`` of each stack instead."""
    if not quota:
        return scores.top_k(score, k, eligible)
    chosen = []
    for stack, count in quota.items():
        in_stack = [i for i in eligible if cell(heads[i])[0] == stack]
        if count > len(in_stack):
            raise RobosteerError(
                f"--stack-quota asks for {count} {stack} heads but only {len(in_stack)} are selectable; lower it"
            )
        chosen += scores.top_k(score, count, in_stack)
    return sorted(chosen, key=lambda i: (-float(score[i]), i))


def histogram(chosen: list[int], heads: list[str]) -> Counter:
    """How many chosen heads sit in each (stack, layer) cell."""
    return Counter(cell(heads[i]) for i in chosen)


def _by_cell(eligible: list[int], heads: list[str]) -> dict[tuple[str, int], list[int]]:
    cells: dict[tuple[str, int], list[int]] = {}
    for i in eligible:
        cells.setdefault(cell(heads[i]), []).append(i)
    return cells


def stratified_random(chosen: list[int], eligible: list[int], heads: list[str], seed: int) -> list[int]:
    """A random set with the same (stack, layer) histogram as ``chosen``, drawn from the eligible heads."""
    gen = torch.Generator().manual_seed(seed)
    cells = _by_cell(eligible, heads)
    out = []
    for key, count in sorted(histogram(chosen, heads).items()):
        pool = cells[key]
        out += [pool[j] for j in torch.randperm(len(pool), generator=gen)[:count].tolist()]
    return out


def stratified_bottom(chosen: list[int], score: torch.Tensor, eligible: list[int], heads: list[str]) -> list[int]:
    """The lowest-scoring heads of each (stack, layer) cell, as many per cell as ``chosen`` has there."""
    cells = _by_cell(eligible, heads)
    out = []
    for key, count in sorted(histogram(chosen, heads).items()):
        out += sorted(cells[key], key=lambda i: (float(score[i]), i))[:count]
    return out


def release_select(
    mse_by_k: torch.Tensor,
    ks: list[int],
    similarity: torch.Tensor,
    targets: torch.Tensor,
    episodes: torch.Tensor,
    k_heads: int,
    eligible: list[int],
) -> tuple[list[int], int, dict[int, float]]:
    """The authors' selection: for every k of the grid, the top ``k_heads`` heads by their error at that k; keep
    the k whose concatenated selection has the lowest LOEO error. Returns (chosen, k, {k: set error})."""
    standard = scores.standardise(targets)
    errors, choices = {}, {}
    for j, k in enumerate(ks):
        chosen = scores.top_k(-mse_by_k[:, j], k_heads, eligible)
        choices[k] = chosen
        errors[k] = float(scores.knn_mse(scores.concat_similarity(similarity, chosen), standard, episodes, [k])[0, 0])
    best = min(errors, key=errors.get)
    return choices[best], best, errors
