"""Paired, hierarchical statistics for comparing adaptation methods.

Every arm of a study is trained with the same training seeds and evaluated on the same evaluation episodes (seeds),
so outcomes are a (training seeds x episodes) table of 0/1 per arm, aligned across arms. The hierarchical bootstrap
resamples training seeds, then episodes, with the *same* draws for every arm of a contrast: the interval then
carries both sources of variance and the pairing.

A contrast is called only when its interval allows: ``better``/``worse`` when the 95 % interval excludes 0 and the
effect is at least ``margin`` (10 points), ``equivalent`` (a decisive null) when the whole interval lies within
+-``margin``, ``undecided`` otherwise. With fewer than :data:`MIN_SEEDS` training seeds the bootstrap sees no
seed-to-seed variance, so such a contrast stays ``undecided`` whatever its interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robosteer.evaluation.stats import wilson_interval

MIN_SEEDS = 2
"""Training seeds a contrast needs before it can be called (one seed says nothing about seed-to-seed variance)."""
DEFAULT_MARGIN = 0.10
"""Smallest difference in success rate worth calling (10 points); also the half-width of a decisive null."""


def _draws(n_seeds: int, n_episodes: int, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    seeds = rng.integers(n_seeds, size=(n_boot, n_seeds))  # (B, S) resampled training seeds
    episodes = rng.integers(n_episodes, size=(n_boot, n_episodes))  # (B, E) resampled episodes
    return seeds, episodes


def _resampled_means(outcomes: np.ndarray, seeds: np.ndarray, episodes: np.ndarray) -> np.ndarray:
    """Mean success of every bootstrap draw: (S, E) table -> (B,)."""
    rows = outcomes[seeds]  # (B, S, E)
    picked = np.take_along_axis(rows, episodes[:, None, :].repeat(rows.shape[1], 1), axis=2)  # (B, S, E)
    return picked.mean(axis=(1, 2))


def _table(outcomes) -> np.ndarray:
    table = np.asarray(outcomes, dtype=np.float64)
    if table.ndim != 2 or table.size == 0:
        raise ValueError(f"outcomes must be a non-empty (training seeds, episodes) table, got shape {table.shape}")
    return table


def arm_interval(outcomes, n_boot: int = 4000, seed: int = 0) -> dict:
    """Success rate of one arm with a hierarchical-bootstrap 95 % interval."""
    table = _table(outcomes)
    seeds, episodes = _draws(*table.shape, n_boot, seed)
    means = _resampled_means(table, seeds, episodes)
    low, high = np.quantile(means, [0.025, 0.975])
    # A bootstrap cannot widen past what it saw (0/n gives [0, 0]); never report less than Wilson's interval on
    # the distinct outcomes (identical seed rows, e.g. a deterministic arm repeated per seed, count once).
    distinct = len({tuple(row) for row in table.tolist()})
    trials = distinct * table.shape[1]
    w_low, w_high = wilson_interval(int(round(table.mean() * trials)), trials)
    return {
        "rate": float(table.mean()),
        "ci95": [float(min(low, w_low)), float(max(high, w_high))],
        "seeds": table.shape[0],
        "episodes": table.shape[1],
    }


@dataclass(frozen=True)
class Contrast:
    """A pre-declared difference between two arms."""

    a: str
    b: str
    question: str
    """What the contrast answers, in words (e.g. "does ranking matter?")."""


def contrast(a, b, n_boot: int = 4000, seed: int = 0, margin: float = DEFAULT_MARGIN) -> dict:
    """Effect ``rate(a) - rate(b)`` with a paired hierarchical-bootstrap 95 % interval and its verdict."""
    ta, tb = _table(a), _table(b)
    if ta.shape != tb.shape:
        raise ValueError(f"paired arms need the same seeds x episodes, got {ta.shape} and {tb.shape}")
    seeds, episodes = _draws(*ta.shape, n_boot, seed)
    differences = _resampled_means(ta, seeds, episodes) - _resampled_means(tb, seeds, episodes)
    low, high = (float(v) for v in np.quantile(differences, [0.025, 0.975]))
    effect = float(ta.mean() - tb.mean())
    called = verdict(effect, low, high, margin) if ta.shape[0] >= MIN_SEEDS else "undecided"
    return {"effect": effect, "ci95": [low, high], "verdict": called, "margin": margin, "seeds": ta.shape[0]}


def verdict(effect: float, low: float, high: float, margin: float = DEFAULT_MARGIN) -> str:
    """``better`` / ``worse`` / ``equivalent`` / ``undecided`` (see the module docstring)."""
    if (low > 0 or high < 0) and abs(effect) >= margin:
        return "better" if effect > 0 else "worse"
    if low > -margin and high < margin:
        return "equivalent"
    return "undecided"


def verdict_words(name_a: str, name_b: str, result: dict) -> str:
    """One sentence for the report."""
    pts = 100 * result["effect"]
    low, high = (100 * v for v in result["ci95"])
    span = f"{pts:+.0f} points [95 % CI {low:+.0f} to {high:+.0f}]"
    margin = 100 * result["margin"]
    return {
        "better": f"{name_a} beats {name_b}: {span} (decisive)",
        "worse": f"{name_a} loses to {name_b}: {span} (decisive)",
        "equivalent": f"{name_a} and {name_b} are equivalent within {margin:.0f} points: {span} (a decisive null)",
        "undecided": f"{name_a} vs {name_b} is undecided: {span}; {_why_undecided(pts, low, high, margin)}",
    }[result["verdict"]] + (
        " (one training seed cannot be called)" if result.get("seeds", MIN_SEEDS) < MIN_SEEDS else ""
    )


def _why_undecided(effect: float, low: float, high: float, margin: float) -> str:
    """Why a contrast (in points) calls nothing; says so when its interval excludes 0 around an effect under the
    margin (a real but perhaps negligible difference)."""
    if (low > 0 or high < 0) and abs(effect) < margin:
        return (
            f"the interval excludes 0, but the difference is under the {margin:.0f}-point margin and the interval "
            "reaches past it; more seeds or episodes are needed"
        )
    return "more seeds or episodes are needed"
