"""Evaluation in the sim suite: seeded rollouts in parallel, success with Wilson intervals, results files, videos.

    from robosteer.evaluation import EvalConfig, PolicySource, evaluate
    results = evaluate(PolicySource("embedded"), EvalConfig(tasks=("place_cube",), episodes=20), out_dir="eval/")
    results.cell("place_cube", "none").success_rate

Nothing here imports ``sim`` or ``mujoco`` at import time.
"""

from robosteer.evaluation.config import EMBEDDED, EXPERT, EvalConfig, PolicySource, parse_csv
from robosteer.evaluation.report import CellResult, EvalResults
from robosteer.evaluation.runner import evaluate, load_results
from robosteer.evaluation.stats import difference_interval, wilson_interval

__all__ = [
    "EMBEDDED",
    "EXPERT",
    "CellResult",
    "EvalConfig",
    "EvalResults",
    "PolicySource",
    "evaluate",
    "load_results",
    "parse_csv",
    "difference_interval",
    "wilson_interval",
]
