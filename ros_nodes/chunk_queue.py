"""Fixed-rate execution of action chunks computed asynchronously, with blending of overlapping chunks.

A policy predicts a chunk ``(T, D)`` from the observation of control tick ``k``: action ``i`` is meant for tick
``k + i``. Inference takes time, so when a chunk arrives at tick ``now`` its actions for ticks before ``now`` are
already stale and are skipped. Where the new chunk overlaps actions still queued from the previous one, the two are
blended (``blend_old * old + (1 - blend_old) * new``) so consecutive chunks join without a jump. Pure Python/numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robosteer.errors import RobosteerError


@dataclass
class ChunkQueueStats:
    """Counters of the queue (reported on the diagnostics topic)."""

    chunks: int = 0
    """Chunks pushed."""
    stale_skipped: int = 0
    """Actions that were already in the past when their chunk arrived."""
    blended: int = 0
    """Queued actions blended with a newer chunk."""
    expired: int = 0
    """Queued actions never executed because their tick passed (e.g. while holding)."""
    executed: int = 0
    """Actions handed to the controller."""
    nonfinite: int = 0
    """Actions with NaN/Inf kept out of the queue."""


class ActionChunkQueue:
    """Actions keyed by control tick index.

    Args:
        blend_old: weight of the already-queued action where chunks overlap (0 = newest chunk wins).
        horizon: keep at most this many future ticks of a chunk (None: all).
    """

    def __init__(self, blend_old: float = 0.3, horizon: int | None = None):
        if not 0.0 <= blend_old < 1.0:
            raise RobosteerError(f"blend_old must be in [0, 1) (got {blend_old}); 0.3 keeps 30 % of the old chunk")
        if horizon is not None and horizon < 1:
            raise RobosteerError(f"horizon must be >= 1 or None (got {horizon})")
        self.blend_old = float(blend_old)
        self.horizon = horizon
        self._actions: dict[int, np.ndarray] = {}
        self.stats = ChunkQueueStats()

    def push(self, chunk: np.ndarray, start_tick: int, now_tick: int) -> int:
        """Queue ``chunk`` (T, D) whose first action belongs to ``start_tick``; returns how many actions were queued.

        Actions for ticks before ``now_tick`` are skipped as stale; an action with a non-finite value is kept out (its
        tick stays empty, so the controller holds; screen with ``SafetyFilter.screen_chunk`` to count them).
        """
        chunk = np.asarray(chunk, dtype=np.float64)
        if chunk.ndim != 2:
            raise RobosteerError(f"an action chunk must be (T, D) (got shape {chunk.shape})")
        self.stats.chunks += 1
        queued = 0
        for i, action in enumerate(chunk):
            tick = start_tick + i
            if tick < now_tick:
                self.stats.stale_skipped += 1
                continue
            if self.horizon is not None and tick >= now_tick + self.horizon:
                break
            if not np.all(np.isfinite(action)):
                self.stats.nonfinite += 1
                continue
            old = self._actions.get(tick)
            if old is not None:
                action = self.blend_old * old + (1.0 - self.blend_old) * action
                self.stats.blended += 1
            self._actions[tick] = action
            queued += 1
        return queued

    def pop(self, tick: int) -> np.ndarray | None:
        """The action for ``tick`` (None when there is none); actions of earlier ticks are discarded."""
        for old in [t for t in self._actions if t < tick]:
            del self._actions[old]
            self.stats.expired += 1
        action = self._actions.pop(tick, None)
        if action is not None:
            self.stats.executed += 1
        return action

    def remaining(self, tick: int) -> int:
        """Queued actions for ticks >= ``tick``."""
        return sum(1 for t in self._actions if t >= tick)

    def clear(self) -> None:
        """Drop everything queued (stale inputs, disable)."""
        self.stats.expired += len(self._actions)
        self._actions.clear()
