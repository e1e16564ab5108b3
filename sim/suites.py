"""The task suites, named in one place: robosteer's MuJoCo Franka tasks (``franka``, the default) and Meta-World
ML10 (``metaworld``).

A task is named within a suite (``place_cube`` in ``franka``, ``drawer-open`` in ``metaworld``) or together with its
suite (``metaworld/drawer-open``). Franka task names stay bare everywhere (results, videos, datasets); the tasks of
every other suite are qualified (``metaworld/drawer-open``), so a task name alone says which suite it belongs to.

    from sim.suites import make_env, make_expert
    env = make_env("metaworld/drawer-open", image_size=96)
    expert = make_expert(env)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym

from robosteer.constants import CAMERAS as FRANKA_CAMERAS
from robosteer.constants import FPS as FRANKA_FPS
from robosteer.constants import IMAGE_SIZE
from robosteer.errors import RobosteerError
from sim import metaworld_tasks
from sim.registration import HELDOUT_TASKS as FRANKA_HELDOUT_TASKS
from sim.registration import PRETRAIN_TASKS as FRANKA_PRETRAIN_TASKS
from sim.registration import TASKS as FRANKA_TASKS
from sim.registration import UNSEEN_TASKS as FRANKA_UNSEEN_TASKS
from sim.variations import VARIATION_PRESETS

FRANKA = "franka"
METAWORLD = "metaworld"
DEFAULT_SUITE = FRANKA


@dataclass(frozen=True)
class Suite:
    """One task suite: its tasks, control rate, cameras and variation presets."""

    name: str
    """Suite name on the command line (``--suite``) and in qualified task names (``metaworld/drawer-open``)."""
    description: str
    """One line for help texts."""
    tasks: dict[str, str]
    """Task name -> gymnasium id (registered by ``import sim``)."""
    aliases: dict[str, str]
    """Other spellings of task names -> task name (e.g. Meta-World's ``drawer-open-v3``, a Franka gym id)."""
    fps: int
    """Control and recording rate in Hz."""
    cameras: tuple[str, ...]
    """Default cameras (``observation.images.<camera>``)."""
    variation_presets: tuple[str, ...]
    """Variation presets its envs accept."""
    pretrain_tasks: tuple[str, ...] = ()
    """The tasks a base policy of the suite is pretrained on (qualified names)."""
    heldout_tasks: tuple[str, ...] = ()
    """The tasks kept out of pretraining: what few-shot adaptation is measured on (qualified names)."""
    pretrain_variations: tuple[str, ...] = ("none",)
    """Variation presets cycled over each pretraining task's demonstrations."""
    unseen_tasks: tuple[str, ...] = ()
    """Held-out tasks that test transfer rather than adaptation (a study evaluates them beside its task)."""
    base_policy: str = "embedded"
    """The ``--policy`` name of the suite's shipped base policy."""
    robustness_presets: tuple[str, ...] = ()
    """Variation presets a study evaluates beside ``none`` by default."""
    demo_noise: float = 0.0
    """Execution noise (std) its shipped base was pretrained with, the default for few-shot demos (Franka: rad on
    the joint targets; Meta-World: action units on the hand move, 1 = 1 cm)."""


SUITES: dict[str, Suite] = {
    FRANKA: Suite(
        name=FRANKA,
        description="robosteer's MuJoCo Franka tasks",
        tasks=dict(FRANKA_TASKS),
        aliases={gym_id: name for name, gym_id in FRANKA_TASKS.items()},
        fps=FRANKA_FPS,
        cameras=FRANKA_CAMERAS,
        variation_presets=tuple(VARIATION_PRESETS),
        pretrain_tasks=FRANKA_PRETRAIN_TASKS,
        heldout_tasks=(*FRANKA_HELDOUT_TASKS, *FRANKA_UNSEEN_TASKS),
        pretrain_variations=("none", "none", "colour"),
        unseen_tasks=FRANKA_UNSEEN_TASKS,
        robustness_presets=("lighting", "distractors", "object_form", "paraphrase"),
        demo_noise=0.01,
    ),
    METAWORLD: Suite(
        name=METAWORLD,
        description="Meta-World ML10 (Sawyer arm, LeRobot's MetaworldEnv)",
        tasks=dict(metaworld_tasks.TASKS),
        aliases=metaworld_tasks.ALIASES,
        fps=metaworld_tasks.FPS,
        cameras=metaworld_tasks.CAMERAS,
        variation_presets=("none",),
        pretrain_tasks=tuple(f"{METAWORLD}/{t}" for t in metaworld_tasks.ML10_TRAIN_TASKS),
        heldout_tasks=tuple(f"{METAWORLD}/{t}" for t in metaworld_tasks.ML10_TEST_TASKS),
        base_policy="embedded-metaworld",
        demo_noise=0.3,
    ),
}


def get_suite(name: str) -> Suite:
    """The suite called ``name``, with a clear error for unknown names."""
    if name not in SUITES:
        raise RobosteerError(f"unknown suite {name!r}; valid suites: {', '.join(SUITES)}")
    return SUITES[name]


def split_task(task: str, suite: str = DEFAULT_SUITE) -> tuple[Suite, str]:
    """The suite and plain task name of ``task`` (``suite/task`` names its own suite; a bare name is in ``suite``)."""
    prefix, _, rest = task.partition("/")
    owner = get_suite(prefix if rest and prefix in SUITES else suite)
    name = rest if rest and prefix in SUITES else task
    name = owner.aliases.get(name, name)
    if name not in owner.tasks:
        raise RobosteerError(
            f"unknown task {task!r} in suite {owner.name}; valid tasks: {', '.join(owner.tasks)} "
            f"(other suites: {', '.join(s for s in SUITES if s != owner.name)})"
        )
    return owner, name


def qualified_task(task: str, suite: str = DEFAULT_SUITE) -> str:
    """The task's name as evaluations and recordings write it: bare for Franka tasks, ``suite/task`` otherwise."""
    owner, name = split_task(task, suite)
    return name if owner.name == FRANKA else f"{owner.name}/{name}"


def env_id(task: str, suite: str = DEFAULT_SUITE) -> str:
    """The gymnasium id of a task of any suite."""
    owner, name = split_task(task, suite)
    return owner.tasks[name]


def make_env(task: str, suite: str = DEFAULT_SUITE, **kwargs) -> gym.Env:
    """``gym.make`` of a task of any suite (``place_cube``, ``metaworld/drawer-open``) with the env's keywords."""
    return gym.make(env_id(task, suite), **kwargs)


def suite_of_env(env: gym.Env) -> str:
    """The suite an env (wrapped or not) belongs to."""
    return getattr(env.unwrapped, "suite", FRANKA)


def instruction_words(suite: str) -> tuple[str, ...]:
    """Words a suite's instructions use beyond robosteer's base vocabulary (Meta-World: its task descriptions')."""
    return metaworld_tasks.instruction_words() if get_suite(suite).name == METAWORLD else ()


def make_expert(env: gym.Env, noise_std: float = 0.0, seed: int | None = None):
    """The scripted expert of an env of any suite: ``reset()`` after each ``env.reset``, ``act(obs, info)`` for the
    clean action, ``perturb(action)`` for the executed one (Gaussian noise of std ``noise_std``)."""
    if suite_of_env(env) == METAWORLD:
        from sim.metaworld_suite import MetaWorldExpert

        return MetaWorldExpert(env, noise_std=noise_std, seed=seed)
    from sim.experts import make_expert as make_franka_expert

    return make_franka_expert(env, noise_std=noise_std, seed=seed)


def record_expert_dataset(
    task: str,
    n_episodes: int,
    out: str | Path,
    *,
    seed: int = 0,
    noise_std: float = 0.0,
    image_size: int = IMAGE_SIZE,
    variations: str = "none",
    use_videos: bool = True,
    append: bool = False,
    progress: bool = True,
    hold_frames: int = 0,
) -> Path:
    """Scripted-expert demonstrations of a task of any suite into the LeRobot dataset ``out`` (failed attempts are
    discarded, labels are the clean expert actions, ``noise_std`` perturbs the executed ones, ``hold_frames`` more
    frames after each success show the goal held)."""
    owner, name = split_task(task)
    if owner.name == METAWORLD:
        from sim.metaworld_recording import record_metaworld_dataset

        if variations not in (None, "none"):
            raise RobosteerError(f"Meta-World tasks have no variation presets (got {variations!r}); use 'none'")
        return Path(
            record_metaworld_dataset(
                name, n_episodes, out, seed=seed, image_size=image_size, append=append, use_videos=use_videos,
                noise_std=noise_std, progress=progress, hold_frames=hold_frames,
            )
        )  # fmt: skip
    from sim.recording import record_dataset

    return Path(
        record_dataset(
            name, n_episodes, out, teleop="expert", variations=variations, seed=seed, image_size=image_size,
            append=append, use_videos=use_videos, noise_std=noise_std, progress=progress, hold_frames=hold_frames,
        )
    )  # fmt: skip
