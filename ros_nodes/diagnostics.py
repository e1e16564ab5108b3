"""Counters and latency statistics of the policy node, published as JSON on its diagnostics topic. No rclpy."""

from __future__ import annotations

import json
from collections import deque
from dataclasses import asdict, dataclass, field

import numpy as np


def percentiles_ms(samples, qs=(50, 99)) -> dict[str, float]:
    """``{"p50": ms, "p99": ms, "max": ms}`` of samples in seconds (NaN when there are none)."""
    values = np.asarray(list(samples), dtype=np.float64)
    if values.size == 0:
        return {**{f"p{q}": float("nan") for q in qs}, "max": float("nan")}
    out = {f"p{q}": float(np.percentile(values, q) * 1000.0) for q in qs}
    out["max"] = float(values.max() * 1000.0)
    return out


@dataclass
class ControlDiagnostics:
    """What the control loop did. ``missed_deadlines`` counts ticks that started more than half a period late or
    whose work took longer than a period."""

    ticks: int = 0
    """Control timer callbacks while enabled."""
    commands: int = 0
    """Arm commands published."""
    missed_deadlines: int = 0
    """Ticks late by more than half a period or overrunning a period."""
    holds_stale_input: int = 0
    """Ticks that held position because the joint states were too old."""
    holds_no_action: int = 0
    """Ticks that held position because no action was queued for them."""
    inferences: int = 0
    """Chunks computed by the policy (or received on the chunk topic)."""
    inference_errors: int = 0
    """Policy calls that raised."""
    stale_chunks_dropped: int = 0
    """Chunks discarded on arrival because their episode had ended (reset while they were computed)."""
    unpaired_observations: int = 0
    """Inference requests skipped because a camera had no image within max_image_age_s at or before the state."""
    window: int = 2000
    """How many recent latency samples the percentiles cover."""
    inference_latency_s: deque = field(default_factory=lambda: deque(maxlen=2000))
    """Seconds from observation snapshot to chunk ready."""
    obs_to_command_s: deque = field(default_factory=lambda: deque(maxlen=2000))
    """Seconds from the newest joint state's stamp to the publish of the command of that tick."""
    tick_work_s: deque = field(default_factory=lambda: deque(maxlen=2000))
    """Seconds spent inside each control tick."""

    def to_dict(self, extra: dict | None = None) -> dict:
        data = {k: v for k, v in asdict(self).items() if not isinstance(v, deque) and k != "window"}
        data["inference_latency_ms"] = percentiles_ms(self.inference_latency_s)
        data["obs_to_command_ms"] = percentiles_ms(self.obs_to_command_s)
        data["tick_work_ms"] = percentiles_ms(self.tick_work_s)
        data.update(extra or {})
        return data


def to_json(data: dict) -> str:
    """JSON text of a diagnostics dict (dataclasses and numpy scalars included)."""
    return json.dumps(data, default=_jsonable, allow_nan=True)


def _jsonable(value):
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


@dataclass
class GripperDiagnostics:
    """Outcomes of the franka_gripper goals the policy node sent (``gripper`` in its diagnostics). ``status`` is ``ok``
    or the kind of the last failure (``rejected``, ``aborted``, ``timeout``) until a goal succeeds again."""

    goals_sent: int = 0
    succeeded: int = 0
    rejected: int = 0
    """Goals the action server refused."""
    aborted: int = 0
    """Accepted goals that ended without success (aborted, canceled by another client, or ``success: false``)."""
    timeouts: int = 0
    """Goals with no result within ``gripper_result_timeout_s``: canceled and given up, so the next target goes out."""
    in_flight: bool = False
    """A goal is out and neither answered nor timed out (no new goal is sent meanwhile)."""
    status: str = "ok"
    error: str = ""
    """What the last failure was (goal, width, the server's error text); empty after a success."""

    def record(self, outcome: str, error: str = "") -> bool:
        """Count a finished goal (``succeeded``, ``rejected``, ``aborted`` or ``timeout``) and set the status; True when
        the status changed, i.e. when it is worth a log line (repeats of the same failure are only counted)."""
        counter = "timeouts" if outcome == "timeout" else outcome
        setattr(self, counter, getattr(self, counter) + 1)
        self.in_flight = False
        status = "ok" if outcome == "succeeded" else outcome
        changed = status != self.status
        self.status, self.error = status, ("" if status == "ok" else error)
        return changed
