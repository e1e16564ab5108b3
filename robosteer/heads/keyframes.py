"""Keyframes of a demonstration: gripper open/close flips, moments where the arm is nearly still, first and last.

These are the frames the authors score heads on: the decision points of a demonstration, where the action is most
informative, instead of hundreds of near-identical frames in between.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robosteer.constants import FPS, GRIPPER_MAX_WIDTH, N_ARM_JOINTS


@dataclass(frozen=True)
class KeyframeConfig:
    """Which frames of an episode count as keyframes."""

    gripper_flips: bool = True
    """Frames where the commanded gripper width crosses ``gripper_threshold`` (open <-> close)."""
    still: bool = True
    """Frames where every arm joint moves slower than ``still_velocity`` (one frame per still run, its middle)."""
    ends: bool = True
    """The first and the last frame."""
    still_velocity: float = 0.03
    """Joint speed [rad/s] below which the arm counts as still (the authors use 0.03 rad/s)."""
    gripper_threshold: float = GRIPPER_MAX_WIDTH / 2
    """Commanded gripper width [m] separating open from closed."""
    fps: float = FPS
    """Frame rate of the episodes, to turn per-frame differences into velocities."""
    max_per_episode: int = 12
    """At most this many keyframes per episode (flips and ends kept first, still frames thinned evenly)."""

    def __post_init__(self):
        if not (self.gripper_flips or self.still or self.ends):
            raise ValueError("KeyframeConfig selects nothing: enable at least one of gripper_flips, still, ends")
        if self.still_velocity <= 0 or self.fps <= 0:
            raise ValueError("still_velocity and fps must be > 0")
        if self.max_per_episode < 1:
            raise ValueError(f"max_per_episode must be >= 1, got {self.max_per_episode}")


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of every run of True."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def keyframes(state: np.ndarray, action: np.ndarray, config: KeyframeConfig = KeyframeConfig()) -> list[int]:
    """Sorted keyframe indices of one episode from its states (T, 8) and actions (T, 8)."""
    state, action = np.asarray(state, dtype=np.float64), np.asarray(action, dtype=np.float64)
    n = len(state)
    if n == 0:
        return []
    must: set[int] = set()
    if config.ends:
        must |= {0, n - 1}
    if config.gripper_flips and action.shape[1] > N_ARM_JOINTS:
        closed = action[:, N_ARM_JOINTS] < config.gripper_threshold
        must |= {int(i) + 1 for i in np.flatnonzero(closed[1:] != closed[:-1])}
    still: list[int] = []
    if config.still and n > 1:
        speed = np.abs(np.diff(state[:, :N_ARM_JOINTS], axis=0)).max(axis=1) * config.fps  # (T-1,)
        still = [int((a + b) // 2) for a, b in _runs(speed < config.still_velocity)]
        still = [i for i in still if i not in must]
    chosen = sorted(must)[: config.max_per_episode]
    room = config.max_per_episode - len(chosen)
    if room > 0 and still:
        pick = np.linspace(0, len(still) - 1, num=min(room, len(still))).round().astype(int)
        chosen += [still[i] for i in sorted(set(pick.tolist()))]
    return sorted(set(chosen))
