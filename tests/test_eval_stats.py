"""Wilson and Newcombe intervals against published values and their defining equations; config validation."""

import math

import pytest

from robosteer.errors import RobosteerError
from robosteer.evaluation import EvalConfig, PolicySource, difference_interval, parse_csv, wilson_interval
from robosteer.evaluation.stats import Z_95


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [
        (0, 10, 0.0, 0.2775),  # upper = z^2 / (n + z^2)
        (10, 10, 0.7225, 1.0),
        (5, 10, 0.2366, 0.7634),
        (1, 10, 0.0179, 0.4042),
        (8, 20, 0.2188, 0.6134),
        (45, 50, 0.7864, 0.9565),
    ],
)
def test_wilson_matches_known_values(successes, trials, low, high):
    got_low, got_high = wilson_interval(successes, trials)
    assert got_low == pytest.approx(low, abs=1e-4)
    assert got_high == pytest.approx(high, abs=1e-4)


@pytest.mark.parametrize(
    ("counts", "low", "high"),
    [  # Newcombe (1998), Statistics in Medicine 17:873, table II, method 10
        ((56, 70, 48, 80), 0.0524, 0.3339),
        ((9, 10, 3, 10), 0.1705, 0.8090),
        ((5, 56, 0, 29), -0.0381, 0.1926),
        ((0, 10, 0, 20), -0.1611, 0.2775),
        ((0, 10, 0, 10), -0.2775, 0.2775),
        ((10, 10, 0, 20), 0.6791, 1.0),
        ((10, 10, 0, 10), 0.6075, 1.0),
    ],
)
def test_difference_interval_matches_newcombe(counts, low, high):
    got_low, got_high = difference_interval(*counts)
    assert got_low == pytest.approx(low, abs=1e-4)
    assert got_high == pytest.approx(high, abs=1e-4)


def test_difference_interval_is_antisymmetric_and_holds_the_difference():
    low, high = difference_interval(30, 50, 20, 50)
    assert low < 0.2 < high
    assert difference_interval(20, 50, 30, 50) == pytest.approx((-high, -low))


@pytest.mark.parametrize(("successes", "trials"), [(1, 3), (7, 20), (33, 50), (499, 1000)])
def test_wilson_bounds_solve_the_score_equation(successes, trials):
    """Each end point p satisfies |p_hat - p| = z * sqrt(p (1 - p) / n) and the interval contains p_hat."""
    p_hat = successes / trials
    for p in wilson_interval(successes, trials):
        assert abs(p_hat - p) == pytest.approx(Z_95 * math.sqrt(p * (1 - p) / trials), rel=1e-9)
    low, high = wilson_interval(successes, trials)
    assert low < p_hat < high


def test_wilson_narrows_with_more_trials_and_rejects_bad_counts():
    widths = [(lambda lo_hi: lo_hi[1] - lo_hi[0])(wilson_interval(n // 2, n)) for n in (10, 40, 160)]
    assert widths[0] > widths[1] > widths[2]
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_config_and_source_reject_bad_input(tmp_path):
    with pytest.raises(RobosteerError, match="--episodes"):
        EvalConfig(episodes=0)
    with pytest.raises(RobosteerError, match="no task"):
        EvalConfig(tasks=())
    with pytest.raises(RobosteerError, match="not a folder"):
        PolicySource(str(tmp_path / "missing"))
    with pytest.raises(RobosteerError, match="expert"):
        PolicySource("expert", adapter=str(tmp_path))
    assert parse_csv(" none, lighting,,") == ("none", "lighting")
    assert EvalConfig(episodes=3, seed=5).seeds == [5, 6, 7]
