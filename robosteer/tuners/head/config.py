"""Configuration of the head-selective tuner (Robotic Steering's finetuning step)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from robosteer.errors import RobosteerError

KV_MODES = ("off", "own", "shared")
PROJECTIONS = ("q", "k", "v", "o")
SMOLVLA_ACTION_PROJECTIONS = ("model.action_in_proj", "model.action_out_proj")
"""The embodiment-specific input/output layers of SmolVLA and pi0/pi05 (module paths from the LeRobot policy)."""


@dataclass
class HeadTunerConfig:
    """Which heads to tune and how.

    Under grouped-query attention (GQA, MQA) one key/value head serves a group of query heads, so a query head has no
    k/v rows of its own. ``kv="own"`` therefore refuses such a model; ``kv="shared"`` trains the group's k/v rows once
    (deduplicated when several chosen heads share a group), which also changes what the other heads of the group see.
    """

    heads: list[str] = field(default_factory=list)
    """Head names ``<stack>.L<layer>.H<head>`` to tune (e.g. the ``selected`` list of heads.json)."""
    kv: str = "off"
    """Key/value rows: ``off`` (default, as the paper: KV frozen), ``own`` (only where each head has its own KV
    head; refused under GQA/MQA), ``shared`` (train the KV group's rows once, shared with the group's heads)."""
    train_q: bool = True
    """Train the head's rows of ``q_proj``."""
    train_o: bool = True
    """Train the head's columns of ``o_proj``."""
    rank: int | None = None
    """None: a full delta per head slice (head_dim x d_model). An int r: a per-head low-rank delta B @ A (B zero-init)."""
    alpha: float | None = None
    """Scale of a low-rank delta is alpha / rank (default alpha = rank, i.e. scale 1). Ignored for full deltas."""
    train_action_projections: bool = False
    """Also train the action in/out projections (embodiment-specific layers) in full. Off by default: gradients then
    reach the bottom of the action expert, which costs the speed-up."""
    action_projections: tuple[str, ...] = SMOLVLA_ACTION_PROJECTIONS
    """Module paths (relative to the policy model) of the action in/out projections; missing paths are skipped."""
    mlp_rank: int | None = None
    """Also train a rank-r low-rank delta (LoRA, B zero-init) on every linear of the MLPs of ``mlp_stacks``: the
    released Robotic Steering recipe adds it to the head slices. None: off."""
    mlp_stacks: tuple[str, ...] = ("vlm",)
    """Stacks whose decoder layers' ``mlp`` linears get the ``mlp_rank`` delta."""
    init_seed: int = 0
    """Seed for the random A factor of low-rank deltas (B starts at zero so the tuned model starts identical)."""

    def __post_init__(self):
        if self.kv not in KV_MODES:
            raise RobosteerError(f"kv={self.kv!r} is not one of {KV_MODES}; use 'off' unless you want k/v rows tuned")
        if self.rank is not None and self.rank < 1:
            raise RobosteerError(f"rank={self.rank} must be >= 1, or None for full per-head deltas")
        if not (self.train_q or self.train_o or self.kv != "off"):
            raise RobosteerError("nothing to train: enable train_q, train_o or kv")
        if self.mlp_rank is not None and self.mlp_rank < 1:
            raise RobosteerError(f"mlp_rank={self.mlp_rank} must be >= 1, or None to leave the MLPs frozen")
        if len(set(self.heads)) != len(self.heads):
            raise RobosteerError(f"duplicate head names in {self.heads}; list each head once")
        self.heads = list(self.heads)
        self.action_projections = tuple(self.action_projections)
        self.mlp_stacks = tuple(self.mlp_stacks)

    @property
    def trains_beyond_heads(self) -> bool:
        """Whether anything but head slices trains (MLP deltas or the action projections)."""
        return self.mlp_rank is not None or self.train_action_projections

    @property
    def scale(self) -> float:
        if self.rank is None:
            return 1.0
        return (self.alpha if self.alpha is not None else self.rank) / self.rank

    def to_dict(self) -> dict:
        out = asdict(self)
        out["action_projections"] = list(self.action_projections)
        out["mlp_stacks"] = list(self.mlp_stacks)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> HeadTunerConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)
