"""Task names, gymnasium ids, time limits and registration."""

from __future__ import annotations

import gymnasium as gym

from robosteer.errors import RobosteerError
from sim import metaworld_tasks

_ENTRY = {
    "pick_cube": ("robosteer/PickCube-v0", "sim.tasks:PickCube", 120),
    "push_cube": ("robosteer/PushCube-v0", "sim.tasks:PushCube", 150),
    "press_button": ("robosteer/PressButton-v0", "sim.tasks:PressButton", 100),
    "place_cube": ("robosteer/PlaceCube-v0", "sim.tasks:PlaceCube", 180),
    "pick_mug": ("robosteer/PickMug-v0", "sim.tasks:PickMug", 120),
    "reach_bowl": ("robosteer/ReachBowl-v0", "sim.tasks:ReachBowl", 100),
}
TASKS: dict[str, str] = {name: entry[0] for name, entry in _ENTRY.items()}
"""Task name -> gymnasium id."""
ENV_IDS: dict[str, str] = {entry[0]: name for name, entry in _ENTRY.items()}
"""Gymnasium id -> task name."""
MAX_EPISODE_STEPS: dict[str, int] = {name: entry[2] for name, entry in _ENTRY.items()}
"""Time limit per task in steps at 15 Hz."""
PRETRAIN_TASKS = ("pick_cube", "push_cube", "press_button")
HELDOUT_TASKS = ("place_cube",)
UNSEEN_TASKS = ("pick_mug",)
EXTRA_TASKS = ("reach_bowl",)
"""Tasks in none of the roles above: reach_bowl localises a goal receptacle, for pretraining a broader base."""


def env_id(task: str) -> str:
    """The gymnasium id of a task given by name (``pick_cube``) or id (``robosteer/PickCube-v0``)."""
    if task in TASKS:
        return TASKS[task]
    if task in ENV_IDS:
        return task
    raise RobosteerError(f"unknown task {task!r}; valid tasks: {', '.join(TASKS)} (or their ids {', '.join(ENV_IDS)})")


def task_name(task: str) -> str:
    return ENV_IDS[env_id(task)]


def register_envs() -> None:
    """Register the Franka tasks and the Meta-World ML10 tasks (:mod:`sim.metaworld_tasks`) with gymnasium."""
    for gym_id, entry_point, steps in _ENTRY.values():
        if gym_id not in gym.registry:
            gym.register(id=gym_id, entry_point=entry_point, max_episode_steps=steps)
    metaworld_tasks.register_envs()


def make_env(task: str, **kwargs) -> gym.Env:
    """``gym.make`` by task name or id, with a clear error for unknown names."""
    return gym.make(env_id(task), **kwargs)
