"""Evaluation results: per-cell success with Wilson 95 % intervals, written as results.json and results.md."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robosteer.evaluation.stats import wilson_interval
from robosteer.files import atomic_write_text


@dataclass
class CellResult:
    """Success statistics of one (task, variation preset) cell."""

    task: str
    variation: str
    episodes: int
    successes: int
    success_rate: float
    ci95: tuple[float, float]
    mean_length: float
    seeds: list[int] = field(default_factory=list)
    videos: list[str] = field(default_factory=list)


def summarize_cells(records: list[dict[str, Any]], out_dir: Path | None = None) -> list[CellResult]:
    """Group episode records by (task, variation), in first-seen order. Video paths become relative to ``out_dir``."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for record in records:
        groups[(record["task"], record["variation"])].append(record)
    cells = []
    for (task, variation), group in groups.items():
        successes = sum(bool(r["success"]) for r in group)
        videos = [r["video"] for r in group if r.get("video")]
        if out_dir is not None:
            videos = [os.path.relpath(v, out_dir) for v in videos]
        cells.append(
            CellResult(
                task=task,
                variation=variation,
                episodes=len(group),
                successes=successes,
                success_rate=successes / len(group),
                ci95=wilson_interval(successes, len(group)),
                mean_length=sum(r["length"] for r in group) / len(group),
                seeds=[r["seed"] for r in group],
                videos=videos,
            )
        )
    return cells


@dataclass
class EvalResults:
    """What ``evaluate`` returns and ``robosteer eval`` writes."""

    meta: dict[str, Any]
    cells: list[CellResult]
    episodes: list[dict[str, Any]]

    def cell(self, task: str, variation: str) -> CellResult:
        for c in self.cells:
            if c.task == task and c.variation == variation:
                return c
        raise KeyError(f"no cell ({task}, {variation}) in these results")

    @property
    def overall_success(self) -> float:
        total = sum(c.episodes for c in self.cells)
        return sum(c.successes for c in self.cells) / max(total, 1)

    def to_dict(self) -> dict[str, Any]:
        cells = [{**c.__dict__, "ci95": list(c.ci95)} for c in self.cells]
        return {"meta": self.meta, "cells": cells, "episodes": self.episodes}

    def markdown(self) -> str:
        m = self.meta
        lines = [
            f"# Evaluation: {m.get('label')}",
            "",
            f"Policy `{m.get('policy')}`"
            + (f" + adapter `{m['adapter']}`" if m.get("adapter") else "")
            + f"; {m.get('episodes_per_cell')} episodes per cell, seeds {m.get('seed')}.."
            f"{m.get('seed', 0) + m.get('episodes_per_cell', 1) - 1}; wall time {m.get('wall_time_s')} s "
            f"on {m.get('workers')} worker(s).",
            "",
            "| task | variation | success | 95 % CI (Wilson) | episodes | mean length | video |",
            "|---|---|---|---|---|---|---|",
        ]
        for c in self.cells:
            video = f"[mp4]({c.videos[0]})" if c.videos else ""
            lines.append(
                f"| {c.task} | {c.variation} | {100 * c.success_rate:.0f} % ({c.successes}/{c.episodes}) | "
                f"{100 * c.ci95[0]:.0f}-{100 * c.ci95[1]:.0f} % | {c.episodes} | {c.mean_length:.1f} | "
                f"{video} |"
            )
        return "\n".join(lines) + "\n"

    def save(self, out_dir: str | Path) -> Path:
        """Write ``results.json`` and ``results.md`` into ``out_dir`` (each via a temp file and a rename)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "results.json", json.dumps(self.to_dict(), indent=2))
        atomic_write_text(out / "results.md", self.markdown())
        return out
