"""Split-half reliability of a head ranking: is it a property of the policy, or of these particular demos?

The episodes are split into two disjoint halves (alternating, so both see early and late recordings); every head is
scored on each half alone; the Spearman correlation of the two score vectors and the overlap of the two top-k lists
(against the overlap two random top-k lists would have) say how reproducible the ranking is.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

DEFAULT_THRESHOLD = 0.7
"""Split-half Spearman correlation below which a ranking is reported as not reproducible."""


def split_halves(episodes: list[int]) -> tuple[list[int], list[int]]:
    """Two disjoint halves of the episodes: even and odd positions."""
    return episodes[0::2], episodes[1::2]


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman rank correlation of two score vectors (ties get their average rank); 0 when one is constant."""
    from scipy.stats import spearmanr

    a, b = a.double().numpy(), b.double().numpy()
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(spearmanr(a, b).statistic)


def top_overlap(a: torch.Tensor, b: torch.Tensor, eligible: list[int], k: int) -> int:
    """Heads shared by the top-k (among ``eligible``) of two score vectors."""

    def top(score):
        return set(sorted(eligible, key=lambda i: (-float(score[i]), i))[:k])

    return len(top(a) & top(b))


def reliability(
    score_on: Callable[[list[int]], torch.Tensor],
    episodes: list[int],
    eligible: list[int],
    top_k: int,
    threshold: float = DEFAULT_THRESHOLD,
    groups: dict[str, list[int]] | None = None,
) -> dict:
    """Split-half reliability of ``score_on(episodes) -> (H,)`` scores; needs >= 4 episodes (2 per half).

    ``groups`` (e.g. eligible heads per stack) get a Spearman correlation of their own."""
    if len(episodes) < 4:
        return {"skipped": True, "reason": f"{len(episodes)} episodes; split-half needs at least 4"}
    first, second = split_halves(episodes)
    a, b = score_on(first), score_on(second)
    eligible_a, eligible_b = a[eligible], b[eligible]
    k = min(top_k, len(eligible))
    rho = spearman(eligible_a, eligible_b)
    constant = bool(eligible_a.std() == 0 or eligible_b.std() == 0)
    return {
        "spearman": round(rho, 4),
        "constant": constant,
        "top_k": k,
        "top_k_overlap": None if constant else top_overlap(a, b, eligible, k),
        "top_k_overlap_chance": round(k * k / len(eligible), 2),
        "per_group": {name: round(spearman(a[idx], b[idx]), 4) for name, idx in (groups or {}).items() if idx},
        "halves": [first, second],
        "threshold": threshold,
        "reproducible": rho >= threshold,
    }
