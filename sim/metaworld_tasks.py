"""Meta-World ML10's task names, gymnasium ids and registration (no Meta-World import: that happens in the env).

Task names are Meta-World's without the version (``drawer-open``); ``drawer-open-v3`` is accepted too. The envs are
:class:`sim.metaworld_suite.MetaWorldEnv`, registered as ``robosteer/metaworld-<task>-v3``.
"""

from __future__ import annotations

import gymnasium as gym

ML10_TRAIN_TASKS = (
    "reach",
    "push",
    "pick-place",
    "door-open",
    "drawer-close",
    "button-press-topdown",
    "peg-insert-side",
    "window-open",
    "sweep",
    "basketball",
)
"""ML10's meta-training tasks."""
ML10_TEST_TASKS = ("drawer-open", "door-close", "shelf-place", "sweep-into", "lever-pull")
"""ML10's held-out (meta-test) tasks."""
VERSION = "v3"
"""The Meta-World task version of metaworld 3.x (its names and LeRobot's task descriptions end in ``-v3``)."""
TASKS: dict[str, str] = {name: f"robosteer/metaworld-{name}-{VERSION}" for name in ML10_TRAIN_TASKS + ML10_TEST_TASKS}
"""Task name -> gymnasium id."""
ALIASES: dict[str, str] = {
    **{f"{name}-{VERSION}": name for name in TASKS},
    **{gym_id: name for name, gym_id in TASKS.items()},
}
"""Meta-World's versioned names and the gymnasium ids -> task name."""
FPS = 80
"""Meta-World's control rate: 5 MuJoCo steps of 2.5 ms per action (fixed by the benchmark)."""
MAX_EPISODE_STEPS = 500
"""Meta-World's episode length (its ``max_path_length``); stepping past it is an error in Meta-World."""
CAMERAS: tuple[str, ...] = ("corner2",)
"""Default camera: LeRobot's (``corner2``, moved and turned upright as ``lerobot.envs.metaworld`` does)."""
CAMERA_CHOICES: tuple[str, ...] = ("corner2", "corner", "corner3", "topview", "behindGripper", "gripperPOV")
"""Meta-World's cameras."""


def versioned(name: str) -> str:
    """Meta-World's own name of a task (``drawer-open-v3``)."""
    return f"{name}-{VERSION}"


def register_envs() -> None:
    """Register one gymnasium id per ML10 task (Meta-World itself is imported only when an env is made)."""
    for name, gym_id in TASKS.items():
        if gym_id not in gym.registry:
            gym.register(
                id=gym_id,
                entry_point="sim.metaworld_suite:MetaWorldEnv",
                max_episode_steps=MAX_EPISODE_STEPS,
                kwargs={"task": name},
            )


def instruction_words() -> tuple[str, ...]:
    """Every word of LeRobot's Meta-World task descriptions (all 50 tasks), lower case, sorted: what a tokenizer with
    a fixed vocabulary must know to read Meta-World's instructions."""
    import re

    from lerobot.envs.metaworld import TASK_DESCRIPTIONS

    words = {w for text in TASK_DESCRIPTIONS.values() for w in re.findall(r"[a-z0-9]+", text.lower())}
    return tuple(sorted(words))
