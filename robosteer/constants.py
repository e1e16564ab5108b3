"""One observation/action convention for the whole project (LeRobot keys), defined once.

The sim suite, the ROS 2 nodes, datasets and policies all use these names.
"""

from __future__ import annotations

from pathlib import Path

OBS_STATE = "observation.state"
"""(8,) float32: 7 arm joint positions [rad] + gripper width [m] (0 = closed, 0.08 = open)."""
OBS_IMAGES_PREFIX = "observation.images."
"""RGB uint8 (H, W, 3) images live under ``observation.images.<camera>``."""
ACTION = "action"
"""(8,) float32: absolute joint position targets [rad] for the 7 arm joints + gripper width target [m]."""
TASK = "task"
"""The natural-language instruction of an episode."""

CAMERAS: tuple[str, ...] = ("front", "wrist")
"""Default camera names: a fixed scene camera and a camera on the hand."""
IMAGE_SIZE = 96
"""Default image height = width in pixels."""
TOP_K = 20
"""Default number of attention heads to select (``robosteer rank --top-k``, the study's steer arms)."""
LORA_RANK = 16
"""Default LoRA rank (the paper's LoRA baseline)."""
FPS = 15
"""Default policy/control rate in Hz."""
EMBEDDED_POLICY_DIR = Path(__file__).resolve().parent / "policies" / "embedded"
"""Where the embedded base policy's checkpoint lives (``embedded`` on the command line), defined here so that the
shared helpers can name it without importing the policy code (torch)."""
EMBEDDED_METAWORLD_POLICY_DIR = EMBEDDED_POLICY_DIR.parent / "embedded_metaworld"
"""The embedded Meta-World base policy (``embedded-metaworld``), pretrained on ML10's 10 training tasks."""
EMBEDDED_FRANKA_V4_POLICY_DIR = EMBEDDED_POLICY_DIR.parent / "embedded_franka_v4"
"""The broader Franka base (``embedded-franka-v4``): paraphrased instructions, named colours and a goal-localising
task (reach_bowl) in pretraining. ``embedded`` stays the default: the published study numbers were measured on it."""
EMBEDDED_POLICIES: dict[str, Path] = {
    "embedded": EMBEDDED_POLICY_DIR,
    "embedded-franka-v4": EMBEDDED_FRANKA_V4_POLICY_DIR,
    "embedded-metaworld": EMBEDDED_METAWORLD_POLICY_DIR,
}
"""The shipped base policies by the name ``--policy`` takes: the Franka suite's two and the Meta-World suite's."""

N_ARM_JOINTS = 7
STATE_DIM = N_ARM_JOINTS + 1
ACTION_DIM = N_ARM_JOINTS + 1
GRIPPER_MAX_WIDTH = 0.08
"""Franka Hand maximum opening in metres."""

JOINT_PREFIXES: tuple[str, ...] = ("fr3_joint", "panda_joint")
"""Joint naming schemes: FR3 (default) and Panda. Joint i (1-based) is ``<prefix><i>``."""


def image_key(camera: str) -> str:
    """``observation.images.<camera>``."""
    return f"{OBS_IMAGES_PREFIX}{camera}"


def joint_names(prefix: str = "fr3_joint") -> list[str]:
    """The 7 arm joint names for a naming scheme, e.g. ``fr3_joint1..7``."""
    if prefix not in JOINT_PREFIXES:
        raise ValueError(f"unknown joint prefix {prefix!r}; use one of {', '.join(JOINT_PREFIXES)}")
    return [f"{prefix}{i}" for i in range(1, N_ARM_JOINTS + 1)]
