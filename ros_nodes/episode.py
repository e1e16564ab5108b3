"""Episodes of the policy node: when the plan it executes no longer belongs to the arm it commands. Pure numpy.

A plan (the queued actions, the chunk being computed, the anchor of the velocity clamp) is valid for one episode.
:class:`EpisodeTracker` numbers episodes (the *generation*; a chunk carries the generation it was computed for and is
discarded when that is no longer current) and says when a new one must start:

- the measured joint state jumped further than the arm can move in the time between two states (a sim reset, a
  restarted driver): :meth:`EpisodeTracker.jumped`;
- the measured state disagrees with the last command by more than ``anchor_tolerance`` (the arm was moved by hand,
  or hit something): :meth:`EpisodeTracker.disagrees`. Clamping the next step from the last *command* would then pull
  the arm back towards where the plan left it; a new episode re-anchors every limit on the measured state;
- explicitly: ``~/reset``, ``~/enable``, a new instruction, an adapter switch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from robosteer.constants import N_ARM_JOINTS
from robosteer.errors import RobosteerError


class EpisodeTracker:
    """Episode generation plus the two automatic reset rules.

    Args:
        jump_velocity: per-joint speed [rad/s] the arm cannot exceed (7 values, or 1 for all); a measured step faster
            than this over ``max(dt, period_s)`` is a jump.
        period_s: control period [s] (the shortest interval a jump is measured over).
        anchor_tolerance: largest tolerated |last command - measured| [rad] on any arm joint.
    """

    def __init__(self, jump_velocity: Sequence[float], period_s: float, anchor_tolerance: float):
        velocity = np.asarray(jump_velocity, dtype=np.float64).ravel()
        if velocity.size == 1:
            velocity = np.full(N_ARM_JOINTS, velocity.item())
        if velocity.shape != (N_ARM_JOINTS,) or np.any(velocity <= 0):
            raise RobosteerError(f"reset_jump_velocity needs {N_ARM_JOINTS} values > 0 [rad/s] (or one for all)")
        if not period_s > 0:
            raise RobosteerError(f"period_s must be > 0 (got {period_s})")
        if not anchor_tolerance > 0:
            raise RobosteerError(f"anchor_tolerance must be > 0 rad (got {anchor_tolerance}); e.g. 0.2")
        self.velocity = velocity
        self.period_s = float(period_s)
        self.anchor_tolerance = float(anchor_tolerance)
        self.generation = 0
        self.reasons: Counter[str] = Counter()
        """How many episodes started for each reason (diagnostics)."""
        self._previous: tuple[np.ndarray, float] | None = None

    def new_episode(self, reason: str) -> int:
        """Start the next episode (the caller drops its plan); returns the new generation."""
        self.generation += 1
        self.reasons[reason] += 1
        return self.generation

    def jumped(self, arm: np.ndarray, stamp: float) -> bool:
        """Whether measured ``arm`` (7,) at ``stamp`` [s] moved faster than the arm can since the previous state."""
        arm = np.asarray(arm, dtype=np.float64)[:N_ARM_JOINTS]
        previous, self._previous = self._previous, (arm.copy(), float(stamp))
        if previous is None:
            return False
        dt = max(float(stamp) - previous[1], self.period_s)
        return bool(np.any(np.abs(arm - previous[0]) > self.velocity * dt))

    def disagrees(self, last_command: np.ndarray, measured: np.ndarray) -> bool:
        """Whether the last command (8,) and the measured state (8,) differ by more than the tolerance on the arm."""
        gap = np.abs(np.asarray(last_command)[:N_ARM_JOINTS] - np.asarray(measured)[:N_ARM_JOINTS])
        return bool(np.any(gap > self.anchor_tolerance))

    @property
    def stats(self) -> dict:
        return {"generation": self.generation, "resets": dict(self.reasons)}
