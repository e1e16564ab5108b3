"""Success-rate statistics: the Wilson score interval (good at small n and at 0 % / 100 %, unlike the normal one)."""

from __future__ import annotations

import math

Z_95 = 1.959963984540054
"""Two-sided 95 % standard-normal quantile."""


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion ``successes / trials``.

    Returns ``(low, high)`` within [0, 1]. With ``trials == 0`` nothing is known and the interval is ``(0, 1)``.
    """
    if trials < 0 or successes < 0 or successes > trials:
        raise ValueError(f"need 0 <= successes <= trials, got successes={successes}, trials={trials}")
    if trials == 0:
        return 0.0, 1.0
    p_hat = successes / trials
    z2 = z * z
    denominator = 1.0 + z2 / trials
    centre = (p_hat + z2 / (2 * trials)) / denominator
    half_width = z * math.sqrt(p_hat * (1 - p_hat) / trials + z2 / (4 * trials * trials)) / denominator
    low, high = max(0.0, centre - half_width), min(1.0, centre + half_width)
    # The exact end points are 0 and 1 when every trial failed / succeeded; avoid -0.0 / 0.9999999 from rounding.
    if successes == 0:
        low = 0.0
    if successes == trials:
        high = 1.0
    return low, high


def difference_interval(
    successes_a: int, trials_a: int, successes_b: int, trials_b: int, z: float = Z_95
) -> tuple[float, float]:
    """Newcombe's hybrid score interval for ``rate_a - rate_b`` of two independent binomial proportions.

    Built from each rate's Wilson interval (Newcombe 1998, method 10): as good as Wilson's at small n and near 0 % /
    100 %, where the normal (Wald) difference interval undercovers. Returns ``(low, high)`` within [-1, 1].
    """
    rate_a, rate_b = successes_a / max(trials_a, 1), successes_b / max(trials_b, 1)
    low_a, high_a = wilson_interval(successes_a, trials_a, z)
    low_b, high_b = wilson_interval(successes_b, trials_b, z)
    difference = rate_a - rate_b
    low = difference - math.sqrt((rate_a - low_a) ** 2 + (high_b - rate_b) ** 2)
    high = difference + math.sqrt((high_a - rate_a) ** 2 + (rate_b - low_b) ** 2)
    return max(-1.0, low), min(1.0, high)
