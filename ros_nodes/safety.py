"""Safety filter between the policy and the arm controller. Pure numpy, no rclpy.

Order of checks on every command (7 arm joints + gripper width):
1. any NaN/Inf -> the action is dropped (the caller holds the previous command);
2. joint position limits -> clamp;
3. per-step joint velocity limit -> clamp the step from the previous command to ``max_velocity * period``;
4. optional workspace box on the flange position (forward kinematics, FR3/Panda DH) -> reject, hold previous;
5. gripper width -> clamp to [0, max width].
Plus :class:`StaleInputWatchdog`: hold the current command when the joint states stop for more than 2 periods.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from robosteer.constants import GRIPPER_MAX_WIDTH, N_ARM_JOINTS
from robosteer.errors import RobosteerError

FR3_LOWER = (-2.7437, -1.7837, -2.9007, -3.0421, -2.8065, 0.5445, -3.0159)
"""FR3 joint position lower limits [rad] (Franka datasheet)."""
FR3_UPPER = (2.7437, 1.7837, 2.9007, -0.1518, 2.8065, 4.5169, 3.0159)
"""FR3 joint position upper limits [rad]."""
FR3_MAX_VELOCITY = (2.62, 2.62, 2.62, 2.62, 5.26, 4.18, 5.26)
"""FR3 joint velocity limits [rad/s]."""

# Craig (modified) DH of the FR3/Panda arm: (a, d, alpha) per joint, then the flange.
_DH = (
    (0.0, 0.333, 0.0),
    (0.0, 0.0, -np.pi / 2),
    (0.0, 0.316, np.pi / 2),
    (0.0825, 0.0, np.pi / 2),
    (-0.0825, 0.384, -np.pi / 2),
    (0.0, 0.0, np.pi / 2),
    (0.088, 0.0, np.pi / 2),
)
_FLANGE_D = 0.107


def _dh_transform(a: float, d: float, alpha: float, theta: float) -> np.ndarray:
    """Modified DH: RotX(alpha) TransX(a) RotZ(theta) TransZ(d)."""
    ca, sa, ct, st = np.cos(alpha), np.sin(alpha), np.cos(theta), np.sin(theta)
    return np.array(
        [[ct, -st, 0.0, a], [st * ca, ct * ca, -sa, -d * sa], [st * sa, ct * sa, ca, d * ca], [0.0, 0.0, 0.0, 1.0]]
    )


def flange_pose(q: Sequence[float], tool_length: float = 0.0) -> np.ndarray:
    """(4, 4) pose of the flange (plus ``tool_length`` along its z axis) in the robot base frame."""
    pose = np.eye(4)
    for (a, d, alpha), theta in zip(_DH, q, strict=True):
        pose = pose @ _dh_transform(a, d, alpha, float(theta))
    return pose @ _dh_transform(0.0, _FLANGE_D + tool_length, 0.0, 0.0)


@dataclass
class SafetyConfig:
    """Limits applied to every command."""

    lower: tuple[float, ...] = FR3_LOWER
    """Joint position lower limits [rad] (7)."""
    upper: tuple[float, ...] = FR3_UPPER
    """Joint position upper limits [rad] (7)."""
    max_velocity: tuple[float, ...] = tuple(0.5 * v for v in FR3_MAX_VELOCITY)
    """Per-joint speed limit [rad/s] used for the per-step clamp (default: half of the FR3 maximum)."""
    period_s: float = 1.0 / 15.0
    """Control period [s]; a step may move at most max_velocity * period_s."""
    workspace_min: tuple[float, ...] = ()
    """Lower corner (x, y, z) [m] of the allowed flange box in the base frame; empty disables the box."""
    workspace_max: tuple[float, ...] = ()
    """Upper corner (x, y, z) [m] of the box."""
    tool_length: float = 0.0
    """Distance [m] from the flange to the point kept inside the box (0.1034 for the Franka Hand's fingertip)."""
    gripper_max: float = GRIPPER_MAX_WIDTH
    """Largest gripper width command [m]."""

    def __post_init__(self):
        self.lower, self.upper = tuple(map(float, self.lower)), tuple(map(float, self.upper))
        self.max_velocity = tuple(map(float, self.max_velocity))
        if len(self.max_velocity) == 1:
            self.max_velocity = self.max_velocity * N_ARM_JOINTS
        for name, values in (("lower", self.lower), ("upper", self.upper), ("max_velocity", self.max_velocity)):
            if len(values) != N_ARM_JOINTS:
                raise RobosteerError(f"safety {name} needs {N_ARM_JOINTS} values (got {len(values)})")
        if any(lo >= hi for lo, hi in zip(self.lower, self.upper, strict=True)):
            raise RobosteerError("every joint lower limit must be below its upper limit; check joint_lower/upper")
        if any(v <= 0 for v in self.max_velocity):
            raise RobosteerError("max_velocity must be > 0 for every joint")
        if not self.period_s > 0:
            raise RobosteerError(f"period_s must be > 0 (got {self.period_s})")
        self.workspace_min, self.workspace_max = tuple(self.workspace_min), tuple(self.workspace_max)
        if (self.workspace_min or self.workspace_max) and not (
            len(self.workspace_min) == 3 and len(self.workspace_max) == 3
        ):
            raise RobosteerError("workspace_min and workspace_max need 3 values each (x, y, z), or both empty")
        if self.workspace_min and any(lo >= hi for lo, hi in zip(self.workspace_min, self.workspace_max, strict=True)):
            raise RobosteerError("workspace_min must be below workspace_max on every axis")


@dataclass
class SafetyStats:
    """Counters (diagnostics)."""

    dropped_nonfinite: int = 0
    """Actions with NaN/Inf, dropped."""
    clamped_position: int = 0
    """Commands clamped to joint limits."""
    clamped_velocity: int = 0
    """Commands whose step was shortened to the velocity limit."""
    rejected_workspace: int = 0
    """Commands outside the workspace box, replaced by the previous command."""
    passed: int = 0
    """Commands let through (possibly clamped)."""
    extra: dict[str, int] = field(default_factory=dict)


class SafetyFilter:
    """Applies :class:`SafetyConfig` to a command given the previous command (or the measured position)."""

    def __init__(self, config: SafetyConfig):
        self.config = config
        self.lower, self.upper = np.array(config.lower), np.array(config.upper)
        self.max_step = np.array(config.max_velocity) * config.period_s
        self.stats = SafetyStats()

    def inside_workspace(self, q: np.ndarray) -> bool:
        cfg = self.config
        if not cfg.workspace_min:
            return True
        position = flange_pose(q, cfg.tool_length)[:3, 3]
        return bool(np.all(position >= cfg.workspace_min) and np.all(position <= cfg.workspace_max))

    def screen_chunk(self, chunk: np.ndarray) -> np.ndarray:
        """(T,) mask of the finite actions of ``chunk`` (T, D); the others are counted as dropped on arrival.

        Screening at arrival makes the count independent of timing: an action that expires unexecuted (its tick
        passed while the control loop was late) is still counted.
        """
        finite = np.all(np.isfinite(np.asarray(chunk, dtype=np.float64)), axis=1)  # (T,)
        self.stats.dropped_nonfinite += int((~finite).sum())
        return finite

    def apply(self, action: np.ndarray, previous: np.ndarray) -> np.ndarray | None:
        """Safe command (8,) from ``action`` (8,) and the ``previous`` command (8,); None when the action is dropped."""
        action = np.asarray(action, dtype=np.float64)
        previous = np.asarray(previous, dtype=np.float64)
        if action.shape != (N_ARM_JOINTS + 1,) or not np.all(np.isfinite(action)):
            self.stats.dropped_nonfinite += 1
            return None
        arm = np.clip(action[:N_ARM_JOINTS], self.lower, self.upper)
        if not np.array_equal(arm, action[:N_ARM_JOINTS]):
            self.stats.clamped_position += 1
        step = arm - previous[:N_ARM_JOINTS]
        limited = np.clip(step, -self.max_step, self.max_step)
        if not np.array_equal(limited, step):
            self.stats.clamped_velocity += 1
            arm = previous[:N_ARM_JOINTS] + limited
        if not self.inside_workspace(arm):
            self.stats.rejected_workspace += 1
            arm = previous[:N_ARM_JOINTS].copy()
        gripper = float(np.clip(action[N_ARM_JOINTS], 0.0, self.config.gripper_max))
        self.stats.passed += 1
        return np.concatenate([arm, [gripper]])


class StaleInputWatchdog:
    """Says when the robot state is too old to act on: older than ``max_periods`` control periods."""

    def __init__(self, period_s: float, max_periods: float = 2.0):
        if not max_periods > 0:
            raise RobosteerError(f"max_periods must be > 0 (got {max_periods})")
        self.max_age_s = float(period_s) * float(max_periods)
        self.holds = 0
        self.holding = False

    def is_stale(self, state_stamp: float | None, now: float) -> bool:
        """True (and counted) when no state arrived yet or the newest is older than the limit."""
        stale = state_stamp is None or now - state_stamp > self.max_age_s
        if stale:
            self.holds += 1
        self.holding = stale
        return stale
