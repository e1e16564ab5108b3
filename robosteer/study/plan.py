"""A study that can decide: arms, training seeds, demo counts and evaluation episodes, declared before it runs.

A :class:`StudyPlan` is written as a YAML/JSON file or given as flags; it expands into *cells* (arm x demos x
training seed), each run and stored on its own, so a study runs in parts across sittings and a re-run only does
what is missing. The contrasts are declared here, before any result exists.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from robosteer.constants import IMAGE_SIZE, LORA_RANK, TOP_K
from robosteer.errors import RobosteerError
from robosteer.evaluation.paired import Contrast

ARMS: tuple[str, ...] = (
    "zero",
    "full",
    "lora",
    "lora-matched",
    "steer",
    "steer-random",
    "steer-bottom",
    "steer-release",
    "release-noheads",
)
"""zero: the base untouched; full: every weight; lora: LoRA at LeRobot's targets (rank 16); lora-matched: LoRA on
every linear layer with the rank that matches steer's trainable parameters; steer: the ranked top-k heads;
steer-random: a stratified random draw of heads (a new draw per training seed, same stack x layer histogram);
steer-bottom: the lowest-ranked heads of the same cells; steer-release: the released Robotic Steering recipe (rank-16
deltas on the ranked heads' q/o slices, rank-16 LoRA on every VLM MLP linear, the action projections in full);
release-noheads: the same recipe without the head slices."""
ARM_METHOD = {"full": "full", "lora": "lora", "lora-matched": "lora"} | {a: "steer" for a in ARMS[4:]}
ARM_LR = {"full": 3e-4} | {arm: 1e-3 for arm in ARMS[2:]}
"""Peak learning rates per arm (override with ``lrs``); full finetuning of the small base needs ~3e-4."""
RELEASE_ARMS = {"steer-release": True, "release-noheads": False}
"""The release-recipe arms and whether they train head slices."""
RELEASE_RECIPE = {"head_rank": 16, "mlp_rank": 16, "train_action_projections": True}
"""The released recipe's settings (both release arms)."""
CONTRASTS: tuple[Contrast, ...] = (
    Contrast("steer", "steer-random", "does choosing the heads by their ranking matter?"),
    Contrast("steer", "lora-matched", "at equal trainable parameters, do head slices beat LoRA?"),
    Contrast("steer", "lora", "does steer beat LoRA at LeRobot's default targets?"),
    Contrast("steer", "steer-bottom", "do the best-ranked heads beat the worst-ranked of the same layers?"),
    Contrast("steer-release", "release-noheads", "does the head part of the released recipe add anything?"),
    Contrast("full", "zero", "is the held-out task learnable from these demos?"),
)
"""Pre-declared contrasts (a contrast is reported when both of its arms are in the plan)."""
GATE = {"zero_max": 0.10, "full_min": 0.70, "demos": 20, "episodes": 50}
"""A held-out task enters a study only if zero-shot <= 10 % and full finetuning from 20 demos >= 70 % (50 episodes)."""


@dataclass(frozen=True)
class Cell:
    """One unit of work: an arm trained on ``demos`` demonstrations with one training seed, then evaluated."""

    arm: str
    demos: int
    seed: int

    @property
    def name(self) -> str:
        return f"{self.arm}__demos{self.demos}__seed{self.seed}"


@dataclass(frozen=True)
class StudyPlan:
    """Everything a study runs; every arm gets the same demos, budget, training seeds and evaluation episodes."""

    task: str = "place_cube"
    """Held-out sim task."""
    variations: str = "none"
    """Variation preset of the held-out task's demos and evaluation (e.g. ``goal_position``: place_cube's bowl
    anywhere); forgetting tasks are evaluated under ``none``. Meta-World tasks have only ``none``."""
    arms: tuple[str, ...] = ARMS
    """Arms to compare (see :data:`ARMS`)."""
    train_seeds: int = 6
    """Training seeds per arm and demo count (``zero`` is deterministic and runs once)."""
    demos: tuple[int, ...] = (10,)
    """Demo counts; the demos of a smaller count are the first ones of a larger count."""
    episodes: int = 40
    """Evaluation episodes per cell (seeds ``eval_seed .. eval_seed + episodes - 1``, the same for every arm)."""
    eval_seed: int = 0
    """First evaluation seed."""
    steps: int = 1000
    """Training steps, the same for every arm."""
    batch_size: int = 16
    """Training batch size, the same for every arm."""
    top_k: int = TOP_K
    """Heads of the steer arms."""
    lrs: dict[str, float] = field(default_factory=dict)
    """Peak learning rate per arm, overriding :data:`ARM_LR` (choose them with a small sweep, on success)."""
    lora_rank: int = LORA_RANK
    """Rank of the ``lora`` arm."""
    demo_noise: float | None = None
    """Std of the execution noise the demos are recorded with (None = the task's suite's: what its base was
    pretrained with, 0.01 rad for Franka, 0.3 action units for Meta-World)."""
    forgetting_tasks: tuple[str, ...] | None = None
    """Pretraining tasks re-evaluated after adaptation (None = the task's suite's pretraining tasks; () skips)."""
    forgetting_episodes: int = 20
    """Episodes per forgetting task."""
    policy: str | None = None
    """Base policy: a shipped base by name (``embedded``, ``embedded-franka-v4``, ``embedded-metaworld``), a LeRobot
    checkpoint folder or a hub id (``owner/name[@revision]``); None = the task's suite's shipped base."""
    workers: int = 0
    """Evaluation worker processes (0 = one per CPU core)."""
    batch: int = 1
    """Evaluation episodes stepped together per worker (``robosteer eval --batch``: cameras rendered only when the
    policy reads them, several times faster on Meta-World; its episodes draw their noise from another stream than
    ``batch 1``, so cells of one study must share it)."""
    image_size: int = IMAGE_SIZE
    """Camera image size (must match the base policy)."""
    max_steps: int | None = None
    """Evaluation episode step limit (None = the task's own; smoke tests shorten it)."""

    def __post_init__(self):
        from sim.suites import split_task

        suite = split_task(self.task)[0]  # an unknown task fails here, naming the valid ones
        if self.demo_noise is None:
            object.__setattr__(self, "demo_noise", suite.demo_noise)
        if self.forgetting_tasks is None:
            object.__setattr__(self, "forgetting_tasks", tuple(suite.pretrain_tasks))
        if self.policy is None:
            object.__setattr__(self, "policy", suite.base_policy)
        unknown = [a for a in self.arms if a not in ARMS]
        if unknown or not self.arms or len(set(self.arms)) != len(self.arms):
            raise RobosteerError(f"arms {list(self.arms)}: give distinct arms from {', '.join(ARMS)}")
        if not self.demos or min(self.demos) < 2:
            raise RobosteerError(f"demos {list(self.demos)}: every demo count must be >= 2, e.g. 5,10,20")
        for name in ("train_seeds", "episodes", "steps", "batch_size", "top_k", "lora_rank", "batch"):
            if getattr(self, name) < 1:
                raise RobosteerError(f"{name} must be >= 1, got {getattr(self, name)}")
        bad = {a: lr for a, lr in self.lrs.items() if a not in ARM_LR or not lr > 0}
        if bad:
            raise RobosteerError(f"lrs {bad}: give positive rates for trained arms ({', '.join(ARM_LR)})")
        if self.demo_noise < 0:
            raise RobosteerError(f"demo_noise must be >= 0, got {self.demo_noise}")
        unknown = [name for name in self.variations.split(",") if name.strip() not in suite.variation_presets]
        if unknown:
            raise RobosteerError(
                f"variations {self.variations!r}: {self.task}'s presets are {', '.join(suite.variation_presets)}"
            )

    # -- construction ---------------------------------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | Path, **overrides) -> StudyPlan:
        """A plan from a YAML or JSON file; ``overrides`` (not None) replace its values."""
        path = Path(path)
        if not path.is_file():
            raise RobosteerError(f"no study file at {path}; write one (see `robosteer study --help`) or use flags")
        text = path.read_text()
        try:
            import yaml

            data = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
        except Exception as err:  # yaml and json raise different types; both mean a bad file
            raise RobosteerError(f"{path} is not valid {path.suffix[1:].upper()} ({err}); fix the file") from None
        if not isinstance(data, dict):
            raise RobosteerError(f"{path} must hold a mapping of plan fields, e.g. 'arms: [zero, full, steer]'")
        return cls.from_dict({**data, **{k: v for k, v in overrides.items() if v is not None}})

    @classmethod
    def from_dict(cls, data: dict) -> StudyPlan:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RobosteerError(f"unknown study field(s) {unknown}; known: {', '.join(sorted(known))}")
        data = dict(data)
        for name in ("arms", "demos", "forgetting_tasks"):
            if name in data:
                value = data[name]
                data[name] = tuple(value.split(",") if isinstance(value, str) else value)
        if "demos" in data:
            data["demos"] = tuple(int(n) for n in data["demos"])
        return cls(**data)

    def to_dict(self) -> dict:
        return asdict(self)

    def with_gate(self) -> StudyPlan:
        """The gate's plan: zero-shot and full finetuning from 20 demos, one seed, 50 episodes, no forgetting."""
        return StudyPlan.from_dict(
            {
                **self.to_dict(),
                "arms": ("zero", "full"),
                "train_seeds": 1,
                "demos": (GATE["demos"],),
                "episodes": GATE["episodes"],
                "forgetting_tasks": (),
            }
        )

    # -- what it runs ---------------------------------------------------------------------------------------------
    def lr(self, arm: str) -> float:
        return float(self.lrs.get(arm, ARM_LR[arm]))

    def cells(self) -> list[Cell]:
        """Every cell, the cheapest questions first (zero, then seed 0 of every arm, then further seeds)."""
        out = [Cell("zero", n, 0) for n in self.demos if "zero" in self.arms]
        trained = [a for a in self.arms if a != "zero"]
        out += [Cell(a, n, s) for s in range(self.train_seeds) for n in self.demos for a in trained]
        return out

    def contrasts(self) -> list[Contrast]:
        return [c for c in CONTRASTS if c.a in self.arms and c.b in self.arms]

    def estimate_seconds(
        self, cells: list[Cell] | None = None, step_s: float = 0.15, episode_s: float = 4.0, cores: int = 2
    ) -> float:
        """Rough wall time of ``cells`` (default: all) on ``cores`` CPU cores (steps at ``step_s``, episodes at
        ``episode_s`` each, in parallel over the cores)."""
        episodes_per_cell = self.episodes + len(self.forgetting_tasks) * self.forgetting_episodes
        total = 0.0
        for cell in self.cells() if cells is None else cells:
            total += 0 if cell.arm == "zero" else self.steps * step_s
            total += episodes_per_cell * episode_s / cores
        return total
