"""Which frames of the demonstrations heads are scored on: keyframes, every n-th frame, or all frames.

The keyframe rule is the authors' released one: frames where the *observed* gripper opens or closes, every frame
where the arm is nearly still (joint-velocity norm below a threshold), and the first and last frame, with no cap.
Demonstrations that never pause (scripted experts, smooth teleoperation) give only a handful of keyframes per episode,
too few to rank ~100 heads reproducibly, so ``mode="auto"`` switches to dense sampling (every ``stride``-th frame)
when the keyframe rule finds fewer than ``min_keyframes`` frames per episode on average.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from robosteer.constants import FPS, GRIPPER_MAX_WIDTH, N_ARM_JOINTS

FRAME_MODES: tuple[str, ...] = ("auto", "keyframes", "dense", "all")


@dataclass(frozen=True)
class KeyframeConfig:
    """The released keyframe rule."""

    gripper_flips: bool = True
    """Frames where the observed gripper width (``observation.state``) crosses ``gripper_threshold``."""
    still: bool = True
    """Every frame whose joint-velocity norm is below ``still_velocity``."""
    ends: bool = True
    """The first and the last frame."""
    still_velocity: float = 0.03
    """Joint-velocity norm [rad/s] below which the arm counts as still (the authors use 0.03)."""
    gripper_threshold: float = GRIPPER_MAX_WIDTH / 2
    """Observed gripper width [m] separating open from closed."""
    fps: float = FPS
    """Frame rate of the episodes, to turn per-frame differences into velocities."""

    def __post_init__(self):
        if not (self.gripper_flips or self.still or self.ends):
            raise ValueError("KeyframeConfig selects nothing: enable at least one of gripper_flips, still, ends")
        if self.still_velocity <= 0 or self.fps <= 0:
            raise ValueError("still_velocity and fps must be > 0")


@dataclass(frozen=True)
class FrameConfig:
    """How the frames a ranking is computed on are chosen."""

    mode: str = "auto"
    """``keyframes`` (the released rule), ``dense`` (every ``stride``-th frame plus the last), ``all``, or ``auto``
    (keyframes when they are plentiful, i.e. the demos pause; dense otherwise)."""
    stride: int = 3
    """Step of dense sampling [frames]."""
    min_keyframes: float = 20.0
    """``auto`` uses keyframes only when the rule finds at least this many frames per episode on average."""
    keyframes: KeyframeConfig = field(default_factory=KeyframeConfig)
    """The keyframe rule's settings."""

    def __post_init__(self):
        if self.mode not in FRAME_MODES:
            raise ValueError(f"unknown frame mode {self.mode!r}; use one of {', '.join(FRAME_MODES)}")
        if self.stride < 1:
            raise ValueError(f"dense stride must be >= 1 frame, got {self.stride}")


def keyframes(state: np.ndarray, config: KeyframeConfig = KeyframeConfig()) -> list[int]:
    """Sorted keyframe indices of one episode from its observed states (T, 8): arm joints + gripper width."""
    state = np.asarray(state, dtype=np.float64)
    n = len(state)
    if n == 0:
        return []
    chosen: set[int] = set()
    if config.ends:
        chosen |= {0, n - 1}
    if config.gripper_flips and state.shape[1] > N_ARM_JOINTS:
        closed = state[:, N_ARM_JOINTS] < config.gripper_threshold
        chosen |= {int(i) + 1 for i in np.flatnonzero(closed[1:] != closed[:-1])}
    if config.still and n > 1:
        velocity = np.diff(state[:, :N_ARM_JOINTS], axis=0) * config.fps  # (T-1, 7)
        speed = np.linalg.norm(velocity, axis=1)  # (T-1,) joint-velocity norm entering each frame
        chosen |= {int(i) + 1 for i in np.flatnonzero(speed < config.still_velocity)}
    return sorted(chosen)


def dense_frames(n: int, stride: int) -> list[int]:
    """Every ``stride``-th frame of an episode of ``n`` frames, plus its last frame."""
    if n == 0:
        return []
    return sorted(set(range(0, n, stride)) | {n - 1})


def choose_mode(states: list[np.ndarray], config: FrameConfig) -> str:
    """The mode ``auto`` resolves to for these episodes (other modes are returned as they are)."""
    if config.mode != "auto":
        return config.mode
    found = sum(len(keyframes(s, config.keyframes)) for s in states)
    return "keyframes" if found >= config.min_keyframes * max(1, len(states)) else "dense"


def select_frames(state: np.ndarray, mode: str, config: FrameConfig) -> list[int]:
    """Frame indices of one episode under a resolved ``mode`` (not ``auto``)."""
    if mode == "keyframes":
        return keyframes(state, config.keyframes)
    if mode == "dense":
        return dense_frames(len(state), config.stride)
    if mode == "all":
        return list(range(len(state)))
    raise ValueError(f"frame mode {mode!r} must be resolved first (choose_mode)")
