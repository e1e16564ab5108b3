"""Compare two evaluations of the same cells: each rate's Wilson interval, the difference's Newcombe interval and
the study's verdict rule (called only when the interval excludes 0 and the effect reaches the margin).

Reads ``robosteer eval``'s results.json and ``robosteer pretrain``'s eval.json (or the folders holding them). Cells
are matched by (task, variation) and must have run on the same episode seeds: a difference between other episodes
would mix the methods with the draw of episodes. One evaluation per side carries episode-to-episode variance only,
not training-seed variance; ``robosteer study`` is the tool for that.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from robosteer.errors import RobosteerError
from robosteer.evaluation.paired import DEFAULT_MARGIN, verdict
from robosteer.evaluation.stats import difference_interval, wilson_interval

RESULT_FILES = ("results.json", "eval.json")
"""What an evaluation folder may hold: ``robosteer eval``'s and ``robosteer pretrain``'s results."""


@dataclass(frozen=True)
class Cell:
    """One (task, variation) cell of an evaluation: its counts and the episode seeds it ran."""

    task: str
    variation: str
    successes: int
    seeds: tuple[int, ...]

    @property
    def episodes(self) -> int:
        return len(self.seeds)


def load_cells(path: str | Path) -> dict[tuple[str, str], Cell]:
    """The cells of an evaluation file (or of the folder holding one), keyed by (task, variation)."""
    path = Path(path)
    if path.is_dir():
        found = [path / name for name in RESULT_FILES if (path / name).is_file()]
        if not found:
            raise RobosteerError(
                f"{path} holds neither results.json nor eval.json: give a robosteer eval or robosteer pretrain --out"
            )
        path = found[0]
    if not path.is_file():
        raise RobosteerError(f"no evaluation results at {path}: give a results.json, an eval.json or their folder")
    try:
        data = json.loads(path.read_text())
        rows = data["cells"] if isinstance(data, dict) else data
        return {(cell.task, cell.variation): cell for cell in map(_cell, rows)}
    except (ValueError, KeyError, TypeError) as err:
        raise RobosteerError(
            f"{path} is not a robosteer evaluation ({type(err).__name__}: {err}): give robosteer eval's results.json "
            "or robosteer pretrain's eval.json"
        ) from None


def _cell(row: dict) -> Cell:
    if "seeds" in row:  # robosteer eval: the seeds of its episodes
        return Cell(row["task"], row["variation"], int(row["successes"]), tuple(row["seeds"]))
    # robosteer pretrain: episode i of a task ran seed + i
    seeds = tuple(range(int(row["seed"]), int(row["seed"]) + int(row["episodes"])))
    return Cell(row["task"], row["variations"], int(row["successes"]), seeds)


def compare_cells(a: dict, b: dict, margin: float = DEFAULT_MARGIN) -> list[dict]:
    """One row per cell both evaluations ran: rates, intervals, ``a - b`` with its interval and the verdict."""
    shared = [key for key in a if key in b]
    if not shared:
        raise RobosteerError(
            f"the two evaluations share no (task, variation) cell (first: {sorted(a)}, second: {sorted(b)}): "
            "evaluate both on the same --task and --variations"
        )
    return [_row(a[key], b[key], margin) for key in shared]


def _row(a: Cell, b: Cell, margin: float) -> dict:
    if a.seeds != b.seeds:
        raise RobosteerError(
            f"{a.task}/{a.variation} ran different episodes ({_span(a.seeds)} vs {_span(b.seeds)}): "
            "evaluate both with the same --seed and --episodes"
        )
    low, high = difference_interval(a.successes, a.episodes, b.successes, b.episodes)
    effect = (a.successes - b.successes) / a.episodes
    return {
        "task": a.task,
        "variation": a.variation,
        "episodes": a.episodes,
        "a": _side(a),
        "b": _side(b),
        "effect": effect,
        "ci95": (low, high),
        "verdict": verdict(effect, low, high, margin),
        "margin": margin,
    }


def _side(cell: Cell) -> dict:
    return {
        "successes": cell.successes,
        "rate": cell.successes / cell.episodes,
        "ci95": wilson_interval(cell.successes, cell.episodes),
    }


def _span(seeds: tuple[int, ...]) -> str:
    return f"{len(seeds)} episodes from seed {seeds[0]}" if seeds else "no episodes"


def comparison_table(rows: list[dict], name_a: str, name_b: str) -> str:
    """A markdown table of :func:`compare_cells`'s rows."""
    lines = [
        f"| task | variation | episodes | {name_a} | {name_b} | {name_a} - {name_b} [95 % CI] | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        low, high = (100 * v for v in row["ci95"])
        lines.append(
            f"| {row['task']} | {row['variation']} | {row['episodes']} | {_rate(row['a'])} | {_rate(row['b'])} | "
            f"{100 * row['effect']:+.0f} points [{low:+.0f} to {high:+.0f}] | {row['verdict']} |"
        )
    return "\n".join(lines)


def _rate(side: dict) -> str:
    low, high = (100 * v for v in side["ci95"])
    return f"{100 * side['rate']:.0f} % [{low:.0f}-{high:.0f}]"
