"""Episode-by-episode writing of ROS recordings (live recorder and bag import) through :mod:`robosteer.data`.

:class:`robosteer.data.EpisodeWriter` keeps the open episode in memory and finalises every saved episode on disk at
once, so a recorder that is killed loses at most the episode it had open. Never imports rclpy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from robosteer.constants import ACTION, TASK
from robosteer.errors import RobosteerError


def parse_labels(text: str) -> dict:
    """Episode labels from a JSON object string ('' -> {}), e.g. '{"colour_name": "red"}'."""
    if not text or not text.strip():
        return {}
    try:
        labels = json.loads(text)
    except json.JSONDecodeError as err:
        raise RobosteerError(
            f'episode labels must be a JSON object, e.g. \'{{"colour_name": "red"}}\' ({err})'
        ) from err
    if not isinstance(labels, dict):
        raise RobosteerError("episode labels must be a JSON object (a mapping of label name to value)")
    return labels


class EpisodeSink:
    """Appends episodes of ``observation.state``, ``action``, one image per camera and the task to ``root``.

    Args:
        root: dataset folder (created on the first saved episode).
        repo_id: LeRobot repo id stored in the metadata (e.g. ``local/franka_demos``).
        fps: frame rate (an integer: LeRobot datasets need one).
        cameras: camera names (``observation.images.<name>``).
        image_size: image height = width.
        use_videos: store mp4 videos instead of PNG frames.
        append: add to an existing dataset with the same features (else an existing dataset is refused).
    """

    def __init__(
        self,
        root: str | Path,
        repo_id: str,
        fps: float,
        cameras: list[str],
        image_size: int,
        use_videos: bool = False,
        append: bool = True,
    ):
        from robosteer.data import EpisodeWriter, robot_features

        if int(fps) != fps:
            raise RobosteerError(f"LeRobot datasets need an integer fps (got {fps}); use e.g. 15")
        self.root = Path(root).expanduser()
        self.writer = EpisodeWriter(
            self.root,
            robot_features(cameras, image_size, use_videos=use_videos),
            int(fps),
            repo_id=repo_id,
            use_videos=use_videos,
            append=append,
        )

    @property
    def frames_in_episode(self) -> int:
        return len(self.writer.frames)

    @property
    def saved_episodes(self) -> int:
        return self.writer.num_episodes

    def add(self, frame: dict[str, Any]) -> None:
        """Append one frame (``observation.state``, ``action``, images, ``task``) to the open episode."""
        if not frame.get(TASK):
            raise RobosteerError("every frame needs a task instruction; set the recorder's task parameter")
        self.writer.add_frame(frame, frame[ACTION], frame[TASK])

    def save(self, labels: dict | None = None) -> int:
        """Write the open episode (finalised on disk when this returns); returns how many frames it had."""
        frames = self.frames_in_episode
        if frames == 0:
            raise RobosteerError("no frames in the open episode; start recording and wait for frames before saving")
        self.writer.save_episode(labels=labels)
        return frames

    def discard(self) -> int:
        """Drop the open episode; returns how many frames were dropped."""
        frames = self.frames_in_episode
        self.writer.discard_episode()
        return frames
