"""Paired hierarchical bootstrap on synthetic outcomes whose true rates are known."""

from __future__ import annotations

import numpy as np

from robosteer.evaluation.paired import arm_interval, contrast, verdict, verdict_words


def _outcomes(rate: float, seeds: int, episodes: int, seed: int, seed_sd: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    per_seed = np.clip(rate + rng.normal(0, seed_sd, size=(seeds, 1)), 0, 1)  # training-seed variance
    return (rng.random((seeds, episodes)) < per_seed).astype(int)


def test_known_difference_is_decisive_and_covered():
    a, b = _outcomes(0.8, 6, 50, 1, 0.05), _outcomes(0.4, 6, 50, 2, 0.05)
    result = contrast(a, b)
    low, high = result["ci95"]
    assert result["verdict"] == "better" and low < 0.4 < high and low > 0.1
    assert contrast(b, a)["verdict"] == "worse"
    assert "beats" in verdict_words("steer", "lora", result)


def test_one_training_seed_is_never_called():
    """A 40-point gap over 200 episodes is decisive with 2 seeds but not with 1: one seed shows no seed variance."""
    one = contrast(_outcomes(0.8, 1, 200, 7), _outcomes(0.4, 1, 200, 8))
    assert one["verdict"] == "undecided" and one["ci95"][0] > 0.1
    assert "one training seed" in verdict_words("steer", "lora", one)
    assert contrast(_outcomes(0.8, 2, 200, 7), _outcomes(0.4, 2, 200, 8))["verdict"] == "better"


def test_identical_arms_give_a_decisive_null_only_with_enough_data():
    big_a, big_b = _outcomes(0.5, 6, 200, 3), _outcomes(0.5, 6, 200, 4)
    assert contrast(big_a, big_b)["verdict"] == "equivalent"
    small_a, small_b = _outcomes(0.5, 1, 20, 5), _outcomes(0.5, 1, 20, 6)
    assert contrast(small_a, small_b)["verdict"] == "undecided"


def test_seed_variance_widens_the_arm_interval():
    steady = arm_interval(_outcomes(0.5, 6, 40, 7, 0.0))
    noisy = arm_interval(_outcomes(0.5, 6, 40, 7, 0.3))
    width = [r["ci95"][1] - r["ci95"][0] for r in (steady, noisy)]
    assert width[1] > width[0] and steady["ci95"][0] < steady["rate"] < steady["ci95"][1]


def test_verdict_rules():
    assert verdict(0.05, 0.01, 0.09) == "equivalent"  # excludes 0 but the effect is below the margin
    assert verdict(0.15, 0.02, 0.28) == "better"
    assert verdict(0.15, -0.02, 0.32) == "undecided"


def test_all_failures_still_get_an_honest_upper_bound():
    zero = np.zeros((6, 50), dtype=int)  # a deterministic arm repeated per seed: 50 distinct episodes
    result = arm_interval(zero)
    assert result["rate"] == 0 and result["ci95"][0] == 0 and 0.05 < result["ci95"][1] < 0.09  # Wilson 0/50


def test_an_interval_past_zero_around_a_small_effect_says_why_it_is_not_called():
    small = {"effect": 0.07, "ci95": [0.01, 0.14], "verdict": "undecided", "margin": 0.10, "seeds": 16}
    assert verdict(small["effect"], *small["ci95"]) == "undecided"
    words = verdict_words("steer", "steer-random", small)
    assert "excludes 0, but the difference is under the 10-point margin" in words
    holds_zero = {**small, "ci95": [-0.01, 0.14]}
    assert "excludes 0" not in verdict_words("steer", "steer-random", holds_zero)
