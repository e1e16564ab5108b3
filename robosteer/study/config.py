"""The steer-vs-LoRA study: one configuration for demos, ranking, finetuning budget and evaluation cells."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from robosteer.constants import EMBEDDED_POLICIES, IMAGE_SIZE, LORA_RANK, TOP_K
from robosteer.errors import RobosteerError

METHODS = ("zero", "lora", "steer", "full")
"""``zero`` = the base policy untouched (zero-shot); the others are robosteer finetune methods."""
DEMO_SEED_OFFSET = 100_000
"""Demonstrations are recorded with seeds ``seed + DEMO_SEED_OFFSET + i``: never the seeds evaluation uses."""


@dataclass(frozen=True)
class StudyConfig:
    """Few-shot adaptation study on one held-out task: every method gets the same demos, budget and eval seeds."""

    out: Path
    """Output folder (results.md, results.json, plots/, ranking/, methods/, eval/)."""
    task: str | None = None
    """Held-out sim task the demonstrations come from and success is measured on (None = the suite's first held-out
    task: place_cube, metaworld/drawer-open)."""
    suite: str = "franka"
    """Suite of a bare task name and of the defaults below (franka or metaworld)."""
    demos: int = 10
    """Demonstrations recorded by the scripted expert (ignored with ``dataset``)."""
    dataset: Path | None = None
    """Use this LeRobot dataset instead of recording demonstrations."""
    policy: str | None = None
    """Base policy: a shipped base by name (``embedded``, ``embedded-franka-v4``, ``embedded-metaworld``) or a LeRobot
    checkpoint folder; None = the suite's shipped base."""
    methods: tuple[str, ...] = METHODS
    """Methods to compare (subset of zero, lora, steer, full)."""
    steps: int = 300
    """Training steps, identical for every finetuned method."""
    batch_size: int = 16
    """Training batch size, identical for every finetuned method."""
    top_k: int = TOP_K
    """Heads the ranking selects for ``steer``."""
    rank_weights: str | None = None
    """Ranking score weights, e.g. ``physical=1,visual=0.5,linguistic=0.5``; None = physical only (the paper)."""
    min_layer: int = 0
    """Ranking: never select heads below this layer (robosteer rank --min-layer); 0 = every layer."""
    lora_rank: int = LORA_RANK
    """LoRA rank (the paper's baseline uses 16)."""
    head_rank: int | None = None
    """steer: rank of the per-head low-rank deltas; None = full per-head deltas (``robosteer finetune``'s default)."""
    lrs: dict[str, float] | None = None
    """Peak learning rate per finetuned method, e.g. ``{"full": 1e-4}``; a method not named uses
    ``robosteer finetune``'s default for it (steer/lora 1e-3, full 1e-5)."""
    episodes: int = 50
    """Evaluation episodes per (task, variation) cell, identical seeds for every method."""
    variations: tuple[str, ...] | None = None
    """Variation presets evaluated on ``task`` (None = ``none`` + the suite's robustness presets: Franka lighting,
    distractors, object_form, paraphrase; Meta-World has only ``none``)."""
    unseen_tasks: tuple[str, ...] | None = None
    """Unseen-transfer tasks evaluated with preset ``none``; None = the suite's (Franka: pick_mug); () = skip."""
    demo_variations: str = "none"
    """Variation preset of the recorded demonstrations."""
    seed: int = 0
    """Seed of training, ranking and of the first evaluation episode."""
    workers: int = 0
    """Evaluation worker processes (0 = one per CPU core)."""
    videos_per_cell: int = 1
    """mp4s saved per evaluation cell."""
    image_size: int = IMAGE_SIZE
    """Camera image size (must match the base policy)."""
    max_steps: int | None = None
    """Evaluation episode step limit (None = the task's own)."""
    overwrite: bool = False
    """Replace an existing non-empty ``out`` folder (it is only replaced once the new study has finished)."""

    def __post_init__(self):
        self._resolve_suite_defaults()
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or not self.methods:
            raise RobosteerError(
                f"unknown method(s) {', '.join(unknown) or '(none given)'}: choose from {', '.join(METHODS)}"
            )
        if len(set(self.methods)) != len(self.methods):
            raise RobosteerError(f"--methods lists a method twice: {','.join(self.methods)}")
        if self.dataset is None and self.demos < 2:
            raise RobosteerError(f"--demos must be >= 2 (ranking needs two episodes), got {self.demos}")
        if self.dataset is not None and not Path(self.dataset).is_dir():
            raise RobosteerError(
                f"--dataset {self.dataset} is not a folder: give a LeRobot dataset root or drop "
                "--dataset to record demonstrations"
            )
        for name, value in (
            ("--steps", self.steps),
            ("--batch-size", self.batch_size),
            ("--top-k", self.top_k),
            ("--episodes", self.episodes),
            ("--lora-rank", self.lora_rank),
            ("--head-rank", self.head_rank or 1),
        ):
            if value < 1:
                raise RobosteerError(f"{name} must be >= 1, got {value}")
        if self.min_layer < 0:
            raise RobosteerError(f"--min-layer must be >= 0 (0 = any layer may be selected), got {self.min_layer}")
        bad_lr = {m: lr for m, lr in (self.lrs or {}).items() if m not in METHODS[1:] or not lr > 0}
        if bad_lr:
            raise RobosteerError(
                f"--lr {bad_lr}: give positive rates for finetuned methods ({', '.join(METHODS[1:])}), e.g. full=1e-4"
            )
        if not self.variations:
            raise RobosteerError("--variations is empty: give at least 'none'")
        if self.rank_weights:
            from robosteer.heads import parse_weights

            parse_weights(self.rank_weights)  # raises a RobosteerError naming the bad weight
        if self.policy not in EMBEDDED_POLICIES and not Path(self.policy).is_dir():
            raise RobosteerError(
                f"--policy {self.policy!r} is neither a shipped base ({', '.join(EMBEDDED_POLICIES)}) nor a checkpoint folder"
            )
        out = Path(self.out)
        if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not self.overwrite)):
            raise RobosteerError(
                f"--out {out} already exists and is not empty: choose a new folder or pass --overwrite"
            )

    def _resolve_suite_defaults(self) -> None:
        """Fill the None fields from the suite and name the task with its suite (``metaworld/drawer-open``)."""
        from sim.suites import get_suite, qualified_task

        suite = get_suite(self.suite)
        defaults = {
            "task": qualified_task(self.task or suite.heldout_tasks[0], suite.name),
            "policy": self.policy or suite.base_policy,
            "variations": self.variations or ("none", *suite.robustness_presets),
            "unseen_tasks": suite.unseen_tasks if self.unseen_tasks is None else self.unseen_tasks,
        }
        for name, value in defaults.items():
            object.__setattr__(self, name, tuple(value) if isinstance(value, list) else value)

    @property
    def finetuned_methods(self) -> tuple[str, ...]:
        return tuple(m for m in self.methods if m != "zero")

    def to_dict(self) -> dict:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__}
        data["out"] = str(self.out)
        data["dataset"] = str(self.dataset) if self.dataset else None
        return data
