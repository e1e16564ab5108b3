"""rosbag2 (MCAP or sqlite3) -> LeRobotDataset v3, with the alignment code of the live recorder.

Each bag becomes one episode. Messages are read in log-time order and fed to a
:class:`~robosteer.ros.recording.RecordingSession`; frame ticks start where every stream has a message
(``start + k / fps``) and tick ``t`` is sampled once the log has passed ``t + max_age_s`` (messages stamped up to
``t`` have been logged by then). Uses rosbags (pure Python), never rclpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from robosteer.errors import RobosteerError
from robosteer.ros.dataset import EpisodeSink
from robosteer.ros.recording import RecordingConfig, RecordingSession


@dataclass
class BagEpisode:
    """What one bag produced."""

    bag: str
    """Bag path."""
    frames: int
    """Frames written."""
    skipped: int
    """Ticks skipped because a stream was older than max_age_s."""
    missing_by_stream: dict[str, int] = field(default_factory=dict)
    """Which stream caused the skips."""


def bag_frames(bag: str | Path, config: RecordingConfig, progress=None):
    """Yield the frames (dicts with state, action, images, task) of one bag, in order; returns the session at the end.

    ``progress(n_messages_done, n_messages_total)`` is called now and then when given.
    """
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    bag = Path(bag).expanduser()
    if not bag.exists():
        raise RobosteerError(f"bag {bag} does not exist; give a rosbag2 folder, a .mcap or a .db3 file")
    session = RecordingSession(config)
    wanted = config.topics()
    try:
        reader = AnyReader([bag], default_typestore=get_typestore(Stores.ROS2_JAZZY))
        reader.open()
    except Exception as err:
        raise RobosteerError(
            f"cannot open bag {bag}: {err}. rosbag2 folders (sqlite3 or mcap) and single .mcap/.db3 files are supported"
        ) from err
    try:
        present = {c.topic for c in reader.connections}
        missing = sorted(set(wanted) - present)
        if missing:
            raise RobosteerError(
                f"bag {bag} has no messages on {missing}; its topics are {sorted(present)}. Fix the "
                "topic names in the config"
            )
        connections = [c for c in reader.connections if c.topic in wanted]
        total = sum(c.msgcount for c in connections)
        period, lag = 1.0 / config.fps, config.max_age_s
        start: float | None = None
        k = 0
        last_log = 0.0
        for n, (connection, log_ns, raw) in enumerate(reader.messages(connections=connections)):
            msg = reader.deserialize(raw, connection.msgtype)
            last_log = log_ns * 1e-9
            session.on_message(connection.topic, msg, last_log)
            if start is None:
                start = session.aligner.first_complete_time()
            while start is not None and start + k * period <= last_log - lag:
                frame = session.frame_at(start + k * period)
                k += 1
                if frame is not None:
                    yield frame
            if progress is not None and n % 200 == 0:
                progress(n, total)
        while start is not None and start + k * period <= last_log:
            frame = session.frame_at(start + k * period)
            k += 1
            if frame is not None:
                yield frame
    finally:
        reader.close()
    return session


def convert_bags(
    bags: list[str | Path],
    config: RecordingConfig,
    out: str | Path,
    repo_id: str = "local/from_bags",
    use_videos: bool = False,
    append: bool = False,
    labels: dict | None = None,
    progress=None,
) -> list[BagEpisode]:
    """Write one episode per bag into the dataset at ``out`` (created; with ``append``, extended when compatible).

    ``labels`` (e.g. ``{"colour_name": "red"}``) are stored with every episode for head ranking."""
    if not bags:
        raise RobosteerError("no bag given; pass --bag PATH (repeatable)")
    if not config.task:
        raise RobosteerError("the topic config has no task; add `task: <instruction>` or pass --task")
    sink = EpisodeSink(out, repo_id, config.fps, list(config.cameras), config.image_size, use_videos, append=append)
    results = []
    for bag in bags:
        frames = bag_frames(bag, config, progress)
        session = None
        try:
            while True:
                sink.add(next(frames))
        except StopIteration as stop:
            session = stop.value
        stats = session.aligner.stats
        if sink.frames_in_episode == 0:
            raise RobosteerError(
                f"bag {bag} gave no frame: every tick missed a stream ({stats.missing_by_stream}); "
                "raise max_age_s or check the topics"
            )
        sink.save(labels=labels)
        results.append(BagEpisode(str(bag), stats.frames, stats.skipped, dict(stats.missing_by_stream)))
    return results
