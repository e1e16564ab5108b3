"""As-of alignment of timestamped ROS streams onto a fixed frame tick, shared by the live recorder and bag import.

Robot streams arrive at their own rates (joint states at 30 Hz, cameras at 15-30 Hz, a teleop device at 25 Hz). A
dataset frame at tick time ``t`` takes, for every stream, the newest message stamped at or before ``t``; a stream whose
newest message is older than ``max_age_s`` makes the frame invalid (skipped and counted) instead of silently pairing
an image with a stale state. The live recorder and ``robosteer convert-bag`` feed the same :class:`FrameAligner`, so a
bag converts to the frames the live recorder would have written.

Pure Python and numpy: this module never imports rclpy (the messages are read by field name, see
:mod:`robosteer.ros.messages`), and every time comes from the caller (an injected clock).
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from robosteer.errors import RobosteerError


class LatestBuffer:
    """The newest value of one stream plus its stamp; readers get ``None`` once it is older than ``max_age_s``.

    Args:
        max_age_s: a value older than this (relative to the reader's ``now``) is treated as missing.
        clock: seconds source used when a caller gives no explicit time (monotonic by default; injected in tests).
    """

    def __init__(self, max_age_s: float, clock: Callable[[], float] = time.monotonic):
        if not max_age_s > 0:
            raise RobosteerError(f"max_age_s must be > 0 (got {max_age_s}); give the largest tolerated message age")
        self.max_age_s = float(max_age_s)
        self._clock = clock
        self._value: Any = None
        self._stamp: float | None = None
        self.count = 0

    def put(self, value: Any, stamp: float | None = None) -> None:
        """Store ``value`` stamped at ``stamp`` (default: now). Older stamps than the current one are ignored."""
        stamp = self._clock() if stamp is None else float(stamp)
        if self._stamp is not None and stamp < self._stamp:
            return
        self._value, self._stamp = value, stamp
        self.count += 1

    def age(self, now: float | None = None) -> float:
        """Seconds since the newest value (``inf`` when nothing arrived yet)."""
        if self._stamp is None:
            return float("inf")
        return (self._clock() if now is None else now) - self._stamp

    def get(self, now: float | None = None) -> Any:
        """The newest value, or ``None`` when there is none or it is older than ``max_age_s``."""
        return self._value if self.age(now) <= self.max_age_s else None

    @property
    def stamp(self) -> float | None:
        """Stamp of the newest value, ``None`` before the first."""
        return self._stamp

    def latest(self) -> Any:
        """The newest value whatever its age (``None`` before the first)."""
        return self._value


class AsOfBuffer:
    """A short history of one stream for as-of lookups: ``as_of(t)`` is the newest value stamped at or before ``t``.

    Messages may arrive slightly out of order (several publishers); they are kept sorted by stamp. History older than
    ``horizon_s`` behind the newest stamp is pruned so a long recording keeps constant memory.
    """

    def __init__(self, max_age_s: float, horizon_s: float = 2.0):
        if not max_age_s > 0:
            raise RobosteerError(f"max_age_s must be > 0 (got {max_age_s}); give the largest tolerated message age")
        self.max_age_s = float(max_age_s)
        self.horizon_s = max(float(horizon_s), self.max_age_s)
        self._stamps: list[float] = []
        self._values: list[Any] = []

    def put(self, stamp: float, value: Any) -> None:
        index = bisect.bisect_right(self._stamps, stamp)
        self._stamps.insert(index, float(stamp))
        self._values.insert(index, value)
        cut = bisect.bisect_left(self._stamps, self._stamps[-1] - self.horizon_s)
        if cut > 0:
            del self._stamps[:cut], self._values[:cut]

    def as_of(self, t: float) -> tuple[float, Any] | None:
        """``(stamp, value)`` of the newest message with stamp <= t and t - stamp <= max_age_s, else ``None``."""
        index = bisect.bisect_right(self._stamps, t) - 1
        if index < 0 or t - self._stamps[index] > self.max_age_s:
            return None
        return self._stamps[index], self._values[index]

    @property
    def first_stamp(self) -> float | None:
        return self._stamps[0] if self._stamps else None

    def __len__(self) -> int:
        return len(self._stamps)


@dataclass
class AlignmentStats:
    """Counters of one alignment run (printed by the recorder and convert-bag)."""

    frames: int = 0
    """Frames emitted."""
    skipped: int = 0
    """Ticks skipped because a stream had no message within max_age_s."""
    missing_by_stream: dict[str, int] = field(default_factory=dict)
    """For each stream, how many ticks it was the one missing."""

    def count_missing(self, stream: str) -> None:
        self.missing_by_stream[stream] = self.missing_by_stream.get(stream, 0) + 1


class FrameAligner:
    """Samples named streams as-of a fixed frame tick.

    Args:
        streams: names of the streams a frame needs (e.g. ``state``, ``action``, ``image.front``).
        fps: frame rate; ticks are ``start + k / fps``.
        max_age_s: largest tolerated age of a stream's newest message at a tick.
    """

    def __init__(self, streams: list[str], fps: float, max_age_s: float):
        if not streams:
            raise RobosteerError("no streams to align; configure at least the state and action topics")
        if not fps > 0:
            raise RobosteerError(f"fps must be > 0 (got {fps})")
        self.streams = list(streams)
        self.fps = float(fps)
        self.period = 1.0 / self.fps
        self.buffers = {name: AsOfBuffer(max_age_s, horizon_s=max(2.0, 4 * max_age_s)) for name in self.streams}
        self.stats = AlignmentStats()
        self._next_tick: float | None = None

    def add(self, stream: str, stamp: float, value: Any) -> None:
        """Record one message (already converted) of ``stream`` stamped ``stamp`` seconds."""
        buffer = self.buffers.get(stream)
        if buffer is None:
            raise RobosteerError(f"unknown stream {stream!r}; the aligner has {', '.join(self.streams)}")
        buffer.put(stamp, value)

    def sample(self, t: float) -> dict[str, Any] | None:
        """The frame at tick time ``t``: ``{stream: value}``, or ``None`` (counted) when a stream is too old."""
        frame = {}
        for name, buffer in self.buffers.items():
            hit = buffer.as_of(t)
            if hit is None:
                self.stats.skipped += 1
                self.stats.count_missing(name)
                return None
            frame[name] = hit[1]
        self.stats.frames += 1
        return frame

    def first_complete_time(self) -> float | None:
        """The earliest time at which every stream has a message (the natural first tick of a bag)."""
        firsts = [buffer.first_stamp for buffer in self.buffers.values()]
        return None if any(f is None for f in firsts) else max(firsts)

    def tick_times(self, start: float, end: float) -> list[float]:
        """Tick times ``start + k / fps`` up to and including ``end`` (k from 0), computed without drift."""
        if end < start:
            return []
        count = int((end - start) * self.fps + 1e-9) + 1
        return [start + k * self.period for k in range(count)]

    def reset(self) -> None:
        """Forget all messages and counters (a new episode)."""
        for name in self.streams:
            self.buffers[name] = AsOfBuffer(self.buffers[name].max_age_s, self.buffers[name].horizon_s)
        self.stats = AlignmentStats()
