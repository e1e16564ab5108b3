"""What an evaluation runs: which policy, on which tasks and variation presets, how many seeded episodes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from robosteer.constants import EMBEDDED_POLICIES, IMAGE_SIZE
from robosteer.errors import RobosteerError

EXPERT = "expert"
"""``policy`` value that evaluates the sim suite's scripted expert (privileged state): the sanity ceiling."""
EMBEDDED = "embedded"
"""``policy`` value that evaluates the Franka suite's base policy shipped in the package (``embedded-metaworld``
is Meta-World's: every key of ``EMBEDDED_POLICIES``)."""
NAMED_POLICIES = (EXPERT, *EMBEDDED_POLICIES)
"""``policy`` values that are names, not folders."""


@dataclass(frozen=True)
class PolicySource:
    """Where a worker process gets its policy from (picklable: a path, never a live model)."""

    policy: str
    """``embedded``, ``embedded-metaworld``, ``expert``, a local LeRobot checkpoint folder (what ``save_pretrained``
    wrote) or a hub id."""
    adapter: str | None = None
    """Optional steer or LoRA adapter folder (``robosteer finetune`` output ``adapter/``) applied on the policy."""

    def __post_init__(self):
        if not self.policy:
            raise RobosteerError("empty --policy: give 'embedded', 'expert' or a checkpoint folder")
        if self.policy not in NAMED_POLICIES and not Path(self.policy).is_dir():
            if not _resolves_as_hub_id(self.policy):
                raise RobosteerError(
                    f"policy checkpoint {self.policy!r} is not a folder: give 'embedded', 'expert', the folder a "
                    "LeRobot save_pretrained / robosteer finetune --merge wrote, or a hub id (owner/name[@revision])"
                )
        if self.adapter is not None:
            if self.policy == EXPERT:
                raise RobosteerError(
                    "--adapter cannot be applied to the scripted expert: use --policy embedded or a path"
                )
            if not Path(self.adapter).is_dir():
                raise RobosteerError(
                    f"adapter {self.adapter!r} is not a folder: give the adapter/ folder robosteer finetune wrote"
                )

    @property
    def label(self) -> str:
        """Short human-readable name for tables."""
        name = self.policy if self.policy in NAMED_POLICIES else Path(self.policy).name
        return f"{name}+{Path(self.adapter).name}" if self.adapter else name


def _resolves_as_hub_id(policy: str) -> bool:
    """True for a hub id found in the hub cache (or downloadable); a missing one raises the fetch-command error here,
    before any episode runs. Not a hub id at all: False."""
    from robosteer.policies.loading import HUB_ID, resolve_policy_path

    if not HUB_ID.match(policy):
        return False
    return resolve_policy_path(policy).is_dir()


@dataclass(frozen=True)
class EvalConfig:
    """An evaluation: every (task, variation preset) cell gets ``episodes`` episodes with seeds ``seed .. seed+n-1``.

    The same seeds are used in every cell and by every policy, so methods are compared on identical episodes.
    """

    tasks: tuple[str, ...] = ("place_cube",)
    """Sim task names of ``suite`` (``place_cube``, ``pick_mug``; Meta-World: ``drawer-open``), or ``suite/task``."""
    suite: str = "franka"
    """Task suite of bare task names: ``franka`` (robosteer's MuJoCo Franka tasks) or ``metaworld`` (Meta-World ML10);
    a task written ``suite/task`` (``metaworld/drawer-open``) names its own. Tasks of other suites than franka are
    evaluated, and written in the results, as ``suite/task``."""
    variations: tuple[str, ...] = ("none",)
    """Variation presets (``sim.VARIATION_PRESETS``): none, lighting, distractors, object_form, position, goal_position,
    paraphrase.
    Join presets with ``+`` to combine them in one cell (``lighting+distractors``)."""
    episodes: int = 50
    """Episodes per (task, variation) cell."""
    seed: int = 0
    """Seed of the first episode; episode i of every cell uses ``seed + i`` (env reset and policy noise)."""
    workers: int = 0
    """Worker processes running episodes in parallel; 0 = one per CPU core (capped by the number of episodes)."""
    start_method: str | None = None
    """Worker start method; None = ``forkserver`` (workers fork from a server that imported torch/lerobot once).
    ``fork`` hands a live policy over but hangs if this process has rendered with EGL; ``spawn`` re-imports all."""
    batch: int = 1
    """Episodes each worker steps together, with one batched policy call per action chunk and camera renders only at
    chunk boundaries (1: one episode at a time, the path every stored study cell used). Episodes keep their seeds
    but draw their policy noise differently, so compare policies evaluated with the same ``batch`` setting."""
    videos_per_cell: int = 1
    """How many of each cell's first episodes are saved as mp4 (0 = none)."""
    image_size: int = IMAGE_SIZE
    """Camera image height = width (must match what the policy was trained on)."""
    max_steps: int | None = None
    """Episode step limit; None keeps the limit the task registered."""
    extra_cells: tuple[tuple[str, str], ...] = ()
    """More (task, variation) cells beyond tasks x variations, e.g. ``(("pick_mug", "none"),)`` for unseen transfer."""
    extra_env_kwargs: dict = field(default_factory=dict)
    """Extra keyword arguments for ``gymnasium.make`` (advanced)."""

    def __post_init__(self):
        if not self.tasks:
            raise RobosteerError("no task given: pass --task, e.g. --task place_cube")
        object.__setattr__(self, "tasks", tuple(_in_suite(t, self.suite) for t in self.tasks))
        object.__setattr__(self, "extra_cells", tuple((_in_suite(t, self.suite), v) for t, v in self.extra_cells))
        if not self.variations:
            raise RobosteerError("no variation preset given: pass --variations none (or lighting,distractors,...)")
        if self.episodes < 1:
            raise RobosteerError(f"--episodes must be >= 1, got {self.episodes}")
        if self.seed < 0:
            raise RobosteerError(f"--seed must be >= 0, got {self.seed}")
        if self.workers < 0:
            raise RobosteerError(f"--workers must be >= 0 (0 = one per core), got {self.workers}")
        if self.start_method not in (None, "fork", "spawn", "forkserver"):
            raise RobosteerError(f"start_method={self.start_method!r}: use fork, spawn or forkserver")
        if self.batch < 1:
            raise RobosteerError(f"--batch must be >= 1 (1: one episode at a time), got {self.batch}")
        if self.videos_per_cell < 0:
            raise RobosteerError(f"--videos must be >= 0, got {self.videos_per_cell}")
        if self.image_size < 16:
            raise RobosteerError(f"--image-size must be >= 16 pixels, got {self.image_size}")
        if self.max_steps is not None and self.max_steps < 1:
            raise RobosteerError(f"--max-steps must be >= 1, got {self.max_steps}")

    @property
    def seeds(self) -> list[int]:
        return [self.seed + i for i in range(self.episodes)]

    @property
    def cells(self) -> list[tuple[str, str]]:
        """(task, variation) cells in evaluation order: tasks x variations, then ``extra_cells`` (no duplicates)."""
        cells = [(t, v) for t in self.tasks for v in self.variations]
        return cells + [c for c in map(tuple, self.extra_cells) if c not in cells]

    def validate_names(self) -> None:
        """Check the suite, task and preset names against the sim suites (imports ``sim``; call before any work)."""
        from sim.suites import FRANKA, SUITES, get_suite, split_task

        get_suite(self.suite)
        franka = SUITES[FRANKA]
        unknown_tasks = sorted({t for t, _ in self.cells if "/" not in t and t not in franka.tasks})
        if unknown_tasks:
            raise RobosteerError(f"unknown task(s) {', '.join(unknown_tasks)}: choose from {', '.join(franka.tasks)}")
        for task, variation in self.cells:
            suite = split_task(task)[0]
            unknown_presets = sorted(v for v in variation.split("+") if v not in suite.variation_presets)
            if unknown_presets:
                raise RobosteerError(
                    f"unknown variation preset(s) {', '.join(unknown_presets)} for {suite.name} tasks: choose from "
                    f"{', '.join(suite.variation_presets)}"
                )


def _in_suite(task: str, suite: str) -> str:
    """A bare task name of a suite other than franka as ``suite/task``; Franka names and ``x/y`` names as given."""
    if suite == "franka" or "/" in task:
        return task
    return f"{suite}/{task}"


def parse_csv(text: str) -> tuple[str, ...]:
    """``"a, b,,c"`` -> ``("a", "b", "c")``."""
    return tuple(part.strip() for part in text.split(",") if part.strip())
