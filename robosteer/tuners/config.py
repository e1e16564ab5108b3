"""One configuration for every finetuning method (steer, LoRA, full), so the comparison is fair by construction."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from robosteer.constants import LORA_RANK
from robosteer.errors import RobosteerError

METHODS = ("steer", "lora", "full")
LORA_TARGETS = ("lerobot", "all-linear")
MIXED_PRECISION = ("auto", "no", "bf16", "fp16")
STATS = ("policy", "dataset")
DEFAULT_LR = {"steer": 1e-3, "lora": 1e-3, "full": 1e-5}
"""Peak learning rates when none is given: deltas and LoRA start at zero and need a larger step than full weights."""


@dataclass
class FinetuneConfig:
    """How to finetune a policy: the method, its options and the shared training schedule."""

    method: str = "steer"
    """``steer`` (only the chosen heads), ``lora`` (peft LoRA baseline) or ``full`` (every parameter)."""
    heads: list[str] = field(default_factory=list)
    """steer: head names to tune (normally the ``selected`` list of heads.json)."""
    heads_fingerprint: str | None = None
    """steer: the policy fingerprint recorded in heads.json; a mismatch with the policy is refused."""
    steps: int = 1000
    """Optimizer steps."""
    batch_size: int = 8
    """Samples per step in each process (data-parallel under ``accelerate launch``: N processes train on N x
    ``batch_size`` samples per step, as lerobot-train does)."""
    lr: float | None = None
    """Peak learning rate; None picks ``DEFAULT_LR[method]``."""
    warmup_steps: int | None = None
    """Linear warm-up steps; None uses 5 % of ``steps``."""
    min_lr_ratio: float = 0.1
    """The cosine schedule decays to ``lr * min_lr_ratio`` (the paper: 2.5e-5 -> 2.5e-6)."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    betas: tuple[float, float] = (0.9, 0.95)
    """AdamW betas (the paper uses b2 = 0.95)."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this value (0 disables)."""
    seed: int = 0
    """Seed for data order, adapter initialisation and dropout."""
    save_every: int = 0
    """Write a resumable checkpoint every N steps (0: only at the end)."""
    log_every: int = 1
    """Write a log.jsonl line every N steps."""
    resume: bool = False
    """Continue from ``<out>/checkpoints/latest`` if it exists."""
    overwrite: bool = False
    """Delete an existing, non-empty output folder instead of refusing it."""
    merge: bool = False
    """Also write ``merged/``: a plain LeRobot checkpoint with the adapter folded in."""
    mixed_precision: str = "auto"
    """``auto`` (bf16 on a CUDA GPU that supports it, else off), ``no``, ``bf16`` or ``fp16``; applied through
    accelerate (off on CPU)."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward instead of keeping them (LeRobot's own checkpointing; pi0/pi05 only:
    LeRobot's SmolVLA has none). Saves most activation memory at about a third more compute per step."""
    num_workers: int = 0
    """DataLoader worker processes."""
    stats: str = "policy"
    """Normalisation statistics: ``policy`` (keep the base policy's, default) or ``dataset`` (the finetuning
    dataset's, as lerobot-train does; saved with the adapter)."""
    progress: bool = True
    """Show a progress bar with the loss."""
    # -- steer options --
    head_rank: int | None = None
    """steer: None for full per-head deltas, or the rank of a per-head low-rank delta."""
    head_kv: str = "off"
    """steer: k/v rows: ``off``, ``own`` (refused under GQA/MQA) or ``shared`` (train the KV group once)."""
    train_action_projections: bool = False
    """steer: also train the action in/out projections (off by default, as it stops the backward early cut)."""
    mlp_rank: int | None = None
    """steer: also train rank-r deltas on every VLM MLP linear (with ``head_rank`` 16 and the action projections:
    the released Robotic Steering recipe); None: off."""
    # -- LoRA options --
    lora_rank: int = LORA_RANK
    """LoRA rank (the paper's baseline: 16)."""
    lora_alpha: float | None = None
    """LoRA alpha; None uses the rank (scale 1)."""
    lora_targets: str = "lerobot"
    """``lerobot`` (LeRobot's default PEFT targets: the action expert's q/v + state/action projections) or
    ``all-linear`` (every attention and MLP linear of the policy's transformer stacks)."""

    def __post_init__(self):
        if self.method not in METHODS:
            raise RobosteerError(f"unknown method {self.method!r}; use one of {', '.join(METHODS)}")
        if self.lora_targets not in LORA_TARGETS:
            raise RobosteerError(f"unknown lora_targets {self.lora_targets!r}; use one of {', '.join(LORA_TARGETS)}")
        if self.stats not in STATS:
            raise RobosteerError(f"stats must be one of {STATS}, got {self.stats!r}")
        if self.mixed_precision not in MIXED_PRECISION:
            raise RobosteerError(f"mixed_precision must be one of {MIXED_PRECISION}, got {self.mixed_precision!r}")
        for name in ("steps", "batch_size", "lora_rank", "log_every"):
            if getattr(self, name) < 1:
                raise RobosteerError(f"{name}={getattr(self, name)} must be >= 1")
        if self.save_every < 0:
            raise RobosteerError(f"save_every={self.save_every} must be >= 0 (0: only at the end)")
        if self.lr is not None and not self.lr > 0:
            raise RobosteerError(f"lr={self.lr} must be > 0")
        if not 0 <= self.min_lr_ratio <= 1:
            raise RobosteerError(f"min_lr_ratio={self.min_lr_ratio} must be within [0, 1]")
        if self.warmup_steps is not None and not 0 <= self.warmup_steps <= self.steps:
            raise RobosteerError(f"warmup_steps={self.warmup_steps} must be within [0, steps={self.steps}]")
        if self.method == "steer" and not self.heads and self.mlp_rank is None and not self.train_action_projections:
            raise RobosteerError("method 'steer' needs heads: pass --heads heads.json (from `robosteer rank`)")
        self.betas = tuple(self.betas)
        self.heads = list(self.heads)

    @property
    def peak_lr(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.method]

    @property
    def warmup(self) -> int:
        return self.warmup_steps if self.warmup_steps is not None else max(0, round(0.05 * self.steps))

    def to_dict(self) -> dict:
        out = asdict(self)
        out["betas"] = list(self.betas)
        return out
