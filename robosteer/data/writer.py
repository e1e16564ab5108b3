"""An episode writer over lerobot's own ``LeRobotDataset.create/resume`` that survives being killed.

Frames of the open episode stay in memory; ``save_episode`` opens the dataset, writes the episode with lerobot's
writer and finalizes it before returning, so a kill (even SIGKILL) loses at most the open episode and the dataset on
disk always loads. The first episode is written into a temporary folder that is renamed into place, so a killed
first recording leaves nothing behind. An existing dataset with other features is refused before any recording.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np

from robosteer.constants import ACTION, OBS_STATE, TASK
from robosteer.data.features import check_features_match
from robosteer.data.labels import write_episode_labels
from robosteer.errors import RobosteerError
from robosteer.interrupts import interrupts_deferred
from robosteer.scheduling import reset_realtime_scheduling
from robosteer.validation import is_lerobot_dataset

os.environ.setdefault("SVT_LOG", "1")  # the AV1 encoder prints its whole config per video otherwise


class EpisodeWriter:
    """Buffers one episode at a time and appends it to a LeRobot v3 dataset at ``root``."""

    def __init__(
        self,
        root: str | Path,
        features: dict[str, dict],
        fps: int,
        repo_id: str | None = None,
        use_videos: bool | None = None,
        robot_type: str = "franka",
        append: bool = False,
    ):
        self.root = Path(root)
        self.features, self.fps, self.robot_type = features, int(fps), robot_type
        self.repo_id = repo_id or f"robosteer/{self.root.name}"
        has_video = any(f["dtype"] == "video" for f in features.values())
        self.use_videos = has_video if use_videos is None else use_videos
        self.frames: list[dict] = []
        if not 1 <= self.fps <= 1000:
            raise RobosteerError(f"fps={fps} is out of range; use 1-1000")
        if is_lerobot_dataset(self.root):
            if not append:
                raise RobosteerError(
                    f"{self.root} already holds a dataset; pass append=True (--append) to add "
                    "episodes to it, or choose a new output folder"
                )
            from robosteer.validation import validate_dataset

            meta = validate_dataset(self.root)
            check_features_match(meta["features"], features, self.root)
            if int(meta["fps"]) != self.fps:
                raise RobosteerError(
                    f"{self.root} was recorded at {meta['fps']} fps, not {self.fps}; "
                    f"record with --fps {meta['fps']} or into a new folder"
                )
            self._cleanup_interrupted()
        elif self.root.exists() and any(self.root.iterdir()):
            raise RobosteerError(f"{self.root} exists and is not a LeRobot dataset; choose an empty or new folder")

    @property
    def num_episodes(self) -> int:
        info = self.root / "meta" / "info.json"
        return int(json.loads(info.read_text())["total_episodes"]) if info.exists() else 0

    def add_frame(self, observation: dict, action, task: str) -> None:
        """Buffer one frame: the observation dict (LeRobot keys), the action (8,) and the instruction."""
        frame = {key: np.asarray(observation[key]) for key in self.features if key != ACTION}
        frame[ACTION] = np.asarray(action, dtype=np.float32)
        frame[OBS_STATE] = frame[OBS_STATE].astype(np.float32)
        frame[TASK] = str(task)
        self.frames.append(frame)

    def discard_episode(self) -> None:
        self.frames = []

    def abort(self) -> None:
        """Drop the open episode and any staging files (after Ctrl-C or an error): only saved episodes remain."""
        self.frames = []
        self._cleanup_interrupted()

    def save_episode(self, labels: dict | None = None) -> int:
        """Write the buffered episode (finalized on disk when this returns); returns its episode index.

        Ctrl-C during the write is held until the episode is complete."""
        if not self.frames:
            raise RobosteerError("no frames to save; add frames with add_frame() before save_episode()")
        with interrupts_deferred():
            return self._save_episode(labels)

    def _save_episode(self, labels: dict | None) -> int:
        logging.getLogger("lerobot.utils.import_utils").setLevel(logging.ERROR)
        import datasets
        from lerobot.datasets.lerobot_dataset import LeRobotDataset

        datasets.disable_progress_bars()

        first = not is_lerobot_dataset(self.root)
        target = self.root.with_name(self.root.name + ".partial") if first else self.root
        if first:
            shutil.rmtree(target, ignore_errors=True)
            target.parent.mkdir(parents=True, exist_ok=True)
            dataset = LeRobotDataset.create(
                self.repo_id,
                fps=self.fps,
                features=self.features,
                root=target,
                robot_type=self.robot_type,
                use_videos=self.use_videos,
                metadata_buffer_size=1,
            )
        else:
            dataset = LeRobotDataset.resume(self.repo_id, root=target)
        episode_index = dataset.meta.total_episodes
        write_episode_labels(target, episode_index, labels or {})
        for frame in self.frames:
            dataset.add_frame(dict(frame))
        try:
            dataset.save_episode(parallel_encoding=False)  # no fork of a threaded process; 2 small videos
        finally:
            reset_realtime_scheduling()  # SVT-AV1 leaves this thread SCHED_FIFO 99 (robosteer.scheduling)
        dataset.finalize()
        staging = target / "images"
        if staging.exists() and not any(p.is_file() for p in staging.rglob("*")):
            shutil.rmtree(staging)
        if first:
            if self.root.exists():
                self.root.rmdir()  # an empty folder the user made
            os.replace(target, self.root)
        self.frames = []
        return episode_index

    def _cleanup_interrupted(self) -> None:
        """Remove frame images a killed recorder left behind (lerobot stages video frames there)."""
        shutil.rmtree(self.root / "images", ignore_errors=True)
        shutil.rmtree(self.root.with_name(self.root.name + ".partial"), ignore_errors=True)
