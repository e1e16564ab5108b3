"""robosteer's task suites: its MuJoCo Franka tasks and Meta-World ML10 (``sim.suites`` names both). ``import sim``
registers the envs with gymnasium.

import gymnasium as gym, sim
env = gym.make("robosteer/PickCube-v0", image_size=96, variations="none")
env = gym.make("robosteer/PickCube-v0", robot_mjcf=sim.RobotMjcf("panda.xml", joint_prefix="joint"))  # your MJCF arm
"""

from __future__ import annotations

from robosteer.environment import RENDERING, apply_env_defaults

apply_env_defaults(RENDERING)

from sim.registration import (  # noqa: E402
    ENV_IDS,
    EXTRA_TASKS,
    HELDOUT_TASKS,
    PRETRAIN_TASKS,
    TASKS,
    UNSEEN_TASKS,
    env_id,
    make_env,
    register_envs,
)
from sim.robot import RobotMjcf  # noqa: E402
from sim.variations import VARIATION_PRESETS, VariationConfig, parse_variations  # noqa: E402

register_envs()

__all__ = [
    "ENV_IDS",
    "EXTRA_TASKS",
    "HELDOUT_TASKS",
    "PRETRAIN_TASKS",
    "RobotMjcf",
    "TASKS",
    "UNSEEN_TASKS",
    "VARIATION_PRESETS",
    "VariationConfig",
    "env_id",
    "make_env",
    "parse_variations",
    "register_envs",
]
