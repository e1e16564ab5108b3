"""Per-episode labels (what was sampled: colour, form, position, paraphrase, ...) stored beside a LeRobot dataset.

One JSON line per saved episode in ``<root>/meta/robosteer_episode_labels.jsonl``; the last line for an episode index
wins, and lines for episodes the dataset does not hold (a recorder killed mid-save) are ignored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

LABELS_FILE = "meta/robosteer_episode_labels.jsonl"


def _plain(value):
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def write_episode_labels(root: str | Path, episode_index: int, labels: dict) -> None:
    """Append (and fsync) the labels of one episode."""
    path = Path(root) / LABELS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"episode_index": int(episode_index), "labels": {k: _plain(v) for k, v in labels.items()}})
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def _total_episodes(root: Path) -> int:
    from robosteer.validation import require_lerobot_dataset

    info = require_lerobot_dataset(root) / "meta" / "info.json"
    return int(json.loads(info.read_text())["total_episodes"])


def read_episode_labels(root: str | Path) -> list[dict]:
    """One dict per episode index of the dataset (empty dicts where no labels were stored)."""
    root = Path(root)
    total = _total_episodes(root)
    labels: list[dict] = [{} for _ in range(total)]
    path = root / LABELS_FILE
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill
            if 0 <= record["episode_index"] < total:
                labels[record["episode_index"]] = record["labels"]
    return labels
