"""Read what ranking needs from a LeRobotDataset on disk: per-frame state/action/task/phase, episode labels."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from robosteer.constants import ACTION, OBS_STATE
from robosteer.errors import RobosteerError
from robosteer.heads.features import FrameTable
from robosteer.heads.keyframes import FrameConfig, choose_mode, select_frames


def open_dataset(root: str | Path):
    """A LeRobotDataset from a local folder (no hub access)."""
    from robosteer.validation import open_lerobot_dataset

    return open_lerobot_dataset(root)


def dataset_identity(dataset, episodes: list[int]) -> dict:
    """Name, size and a content hash of the demonstrations and the chosen episodes.

    The hash covers what was demonstrated (every non-video column, the task strings, the features' names, shapes and
    dtypes, fps), not how this machine encoded it: video codec details, image statistics and parquet bytes depend on
    the recording machine's libraries and renderer, so the same seeded demos re-recorded elsewhere hash the same."""
    root = Path(dataset.root)
    digest = hashlib.sha256(json.dumps(_portable_meta(dataset), sort_keys=True).encode())
    table = dataset.hf_dataset.data
    for name in sorted(table.column_names):
        if name in dataset.meta.video_keys or name in dataset.meta.image_keys:
            continue
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(column_array(table, name)).tobytes())
    digest.update(json.dumps(episodes).encode())
    return {
        "name": root.name,
        "n_episodes_total": int(dataset.num_episodes),
        "episodes": episodes,
        "n_frames_total": int(dataset.num_frames),
        "fingerprint": digest.hexdigest()[:16],
    }


def column_array(table, name: str) -> np.ndarray:
    """One column of a LeRobot dataset's arrow table as numpy: (T,) for scalars, (T, dim) for vector features."""
    import pyarrow as pa

    col = table.column(name).combine_chunks()
    if pa.types.is_fixed_size_list(col.type) or pa.types.is_list(col.type):
        return col.flatten().to_numpy(zero_copy_only=False).reshape(len(col), -1)  # (T, dim)
    return col.to_numpy(zero_copy_only=False)


def _portable_meta(dataset) -> dict:
    """The machine-independent part of the dataset's metadata: fps, tasks, and each feature's dtype/shape/names."""
    features = {
        key: {field: spec.get(field) for field in ("dtype", "shape", "names")}
        for key, spec in dataset.meta.features.items()
    }
    return {"fps": dataset.meta.fps, "tasks": _task_names(dataset), "features": features}


def metadata_fingerprint(root: str | Path, episodes: list[int]) -> str:
    """The earlier, machine-dependent dataset hash (meta/info.json, stats.json, tasks.parquet bytes): study cells
    stored with it are still recognised on the machine that recorded their dataset."""
    digest = hashlib.sha256()
    for name in ("info.json", "stats.json", "tasks.parquet"):
        path = Path(root) / "meta" / name
        if path.exists():
            digest.update(path.read_bytes())
    digest.update(json.dumps(episodes).encode())
    return digest.hexdigest()[:16]


def _task_names(dataset) -> dict[int, str]:
    tasks = dataset.meta.tasks
    return {int(row["task_index"]): str(name) for name, row in tasks.iterrows()}


def frame_table(dataset, episodes: list[int], config: FrameConfig) -> tuple[FrameTable, str]:
    """The frames of the chosen episodes that heads are scored on, and the frame mode used (``auto`` resolved).

    An episode that yields no frame is a RobosteerError."""
    table = dataset.hf_dataset.data  # the arrow table: columnar reads, no per-row decoding

    def column(name: str) -> np.ndarray:
        return column_array(table, name)

    episode_of, global_index, task_index = column("episode_index"), column("index"), column("task_index")
    state_all, action_all = column(OBS_STATE), column(ACTION)
    rows_of = {}
    for ep in episodes:
        rows = np.flatnonzero(episode_of == ep)
        rows_of[ep] = rows[np.argsort(global_index[rows])]
    mode = choose_mode([state_all[rows] for rows in rows_of.values()], config)
    names = _task_names(dataset)
    index, episode, phase, picked = [], [], [], []
    empty = []
    for ep, rows in rows_of.items():
        picks = select_frames(state_all[rows], mode, config) if len(rows) else []
        if not picks:
            empty.append(ep)
        for p in picks:
            index.append(int(global_index[rows[p]]))
            episode.append(ep)
            phase.append(p / max(1, len(rows) - 1))
            picked.append(rows[p])
    if empty:
        raise RobosteerError(
            f"episodes {empty[:10]} have no {mode} frames (empty episodes?); drop them with --episodes, "
            "re-record them, or use --frames dense"
        )
    picked = np.asarray(picked)
    return (
        FrameTable(
            index,
            torch.tensor(episode),
            torch.from_numpy(state_all[picked]).float(),
            torch.from_numpy(action_all[picked]).float(),
            [names.get(int(task_index[r]), "") for r in picked],
            torch.tensor(phase, dtype=torch.float32),
        ),
        mode,
    )


def episode_labels(root: str | Path, n_episodes: int) -> tuple[list[dict] | None, str]:
    """Per-episode labels recorded with the dataset (``robosteer.data.read_episode_labels``) and, when there are
    none, why (labels are never guessed)."""
    try:
        from robosteer.data import read_episode_labels
    except ImportError:
        return None, "robosteer.data is not installed, so no episode labels can be read"
    try:
        labels = read_episode_labels(root)
    except (FileNotFoundError, RobosteerError, ValueError) as err:
        return None, f"no episode labels beside the dataset ({err})"
    if not labels or len(labels) < n_episodes:
        return None, f"episode labels cover {len(labels or [])} of {n_episodes} episodes"
    return labels, ""


def encode_classes(values: list, max_classes: int | None = None) -> torch.Tensor | None:
    """Class ids for per-frame values (sorted by their text); None if a value is missing or not categorical
    (a non-integer number), or if there are fewer than 2 or more than ``max_classes`` classes."""
    if any(v is None or v == "" or (isinstance(v, float) and not v.is_integer()) for v in values):
        return None
    classes = sorted({str(v) for v in values})
    if len(classes) < 2 or (max_classes is not None and len(classes) > max_classes):
        return None
    lookup = {c: i for i, c in enumerate(classes)}
    return torch.tensor([lookup[str(v)] for v in values])
