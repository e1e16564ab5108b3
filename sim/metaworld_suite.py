"""Meta-World ML10 as gymnasium envs with the interface of robosteer's Franka envs, and its scripted experts.

    import gymnasium as gym, sim
    env = gym.make("robosteer/metaworld-drawer-open-v3", image_size=96)   # or sim.suites.make_env("metaworld/drawer-open")

The Meta-World env is built as LeRobot's ``lerobot.envs.metaworld.MetaworldEnv`` builds it (MT1 task, the ``corner2``
camera moved, per-reset randomisation of goal and objects drawn from the env's seeded generator), and the instruction
is LeRobot's task description. This env renders its own cameras at the size asked for, and only when needed.

Observation (dict, LeRobot keys):
    ``observation.state``            float32 (4,): LeRobot's ``agent_pos``: hand x, y, z [m] + gripper opening
                                     (Meta-World's normalised finger distance, 0 = closed, 1 = open)
    ``observation.images.<camera>``  uint8 (H, W, 3) per camera (default ``corner2``, upright as LeRobot shows it)
Action: float32 (4,) in [-1, 1]: Meta-World's hand xyz displacement (x 1/100 m) + gripper effort (-1 open, 1 close);
out-of-range actions are clipped and counted in ``info["n_clipped_actions"]``; NaN/Inf raise :class:`RobosteerError`.
Reward: 1.0 on the step Meta-World's own success test passes (``info["success"]``, then ``terminated``), else 0.
An episode lasts at most Meta-World's 500 steps at 80 Hz (``truncated``); ``reset(seed=s)`` draws the goal and object
positions from ``s``, so a seed gives the same scene every time.

Rendering: LeRobot's images have shadows and reflections; robosteer turns both off by default (``lerobot_lighting=
False``): on a CPU renderer that is ~5x faster per frame (115 vs 24 ms for a 96 px corner2 frame) at a mean absolute
pixel difference of ~7/255. Recording, pretraining and evaluation all use the default, so a policy sees the lighting it
was trained on; ``lerobot_lighting=True`` gives LeRobot's exact images (e.g. for a policy trained on LeRobot's renders).
"""

from __future__ import annotations

import warnings

import gymnasium as gym
import mujoco
import numpy as np

from robosteer.constants import IMAGE_SIZE, OBS_STATE, image_key
from robosteer.errors import RobosteerError
from sim import metaworld_tasks
from sim.metaworld_tasks import CAMERA_CHOICES, CAMERAS, FPS, MAX_EPISODE_STEPS
from sim.variations import VariationConfig, parse_variations

SUITE = "metaworld"
STATE_NAMES = ("hand_x", "hand_y", "hand_z", "gripper_opening")
"""The 4 entries of ``observation.state`` (LeRobot's ``agent_pos``)."""
ACTION_NAMES = ("delta_x", "delta_y", "delta_z", "gripper_effort")
"""The 4 entries of an action."""
UPSIDE_DOWN_CAMERAS = ("corner2",)
"""Cameras whose image LeRobot turns by 180 degrees (``lerobot.envs.metaworld``); done here too, to match it."""


def _build_raw_env(task: str):
    """Meta-World's env of ``task`` (plain name), built by LeRobot's wrapper; also returns LeRobot's description."""
    from lerobot.envs.metaworld import MetaworldEnv

    wrapper = MetaworldEnv(task=metaworld_tasks.versioned(task), camera_name="corner2")
    wrapper._ensure_env()  # MT1 task, corner2 camera moved, seeded per-reset randomisation
    return wrapper._env, wrapper.task_description


def _check_arguments(task: str, image_size: int, cameras: tuple[str, ...], variations, fps: int) -> None:
    """Refuse what this suite cannot do, each with the fix."""
    if task not in metaworld_tasks.TASKS:
        raise RobosteerError(f"unknown Meta-World task {task!r}; valid tasks: {', '.join(metaworld_tasks.TASKS)}")
    if not 16 <= int(image_size) <= 1024:
        raise RobosteerError(f"image_size={image_size} is out of range; use 16-1024 (default {IMAGE_SIZE})")
    bad = [c for c in cameras if c not in CAMERA_CHOICES]
    if bad:
        raise RobosteerError(f"unknown Meta-World camera(s) {', '.join(bad)}; valid: {', '.join(CAMERA_CHOICES)}")
    if parse_variations(variations) != VariationConfig():
        raise RobosteerError(f"Meta-World tasks have no variation presets (got {variations!r}); use variations 'none'")
    if fps != FPS:
        raise RobosteerError(f"fps={fps}: Meta-World runs at {FPS} Hz only; leave fps at {FPS}")


class MetaWorldEnv(gym.Env):
    """One Meta-World task (see the module doc); ``task`` is its plain name (``drawer-open``)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": FPS}
    suite = SUITE

    def __init__(
        self,
        task: str,
        image_size: int = IMAGE_SIZE,
        cameras: tuple[str, ...] | list[str] | None = CAMERAS,
        variations: str | VariationConfig = "none",
        render_mode: str | None = None,
        fps: int = FPS,
        lerobot_lighting: bool = False,
    ):
        cameras = tuple(cameras or ())
        _check_arguments(task, image_size, cameras, variations, fps)
        if render_mode not in (None, "rgb_array"):
            raise RobosteerError(f"render_mode={render_mode!r} is not supported; use None or 'rgb_array'")
        self.task_name, self.image_size, self.cameras, self.render_mode, self.fps = (
            task,
            int(image_size),
            cameras,
            render_mode,
            fps,
        )
        self.raw_env, self.instruction = _build_raw_env(task)
        model = self.raw_env.model
        model.vis.global_.offwidth = max(int(model.vis.global_.offwidth), self.image_size)
        model.vis.global_.offheight = max(int(model.vis.global_.offheight), self.image_size)
        self._renderer: mujoco.Renderer | None = None
        self.lerobot_lighting = bool(lerobot_lighting)
        """True: shadows and reflections as LeRobot renders them; False (default): both off, ~5x faster on a CPU."""
        self.render_images = True
        """False: ``step`` returns only ``observation.state``; :meth:`observe` renders the cameras on demand."""
        self.action_space = gym.spaces.Box(-1.0, 1.0, (4,), dtype=np.float32)
        spaces = {OBS_STATE: gym.spaces.Box(-np.inf, np.inf, (4,), dtype=np.float32)}
        for cam in self.cameras:
            spaces[image_key(cam)] = gym.spaces.Box(0, 255, (self.image_size, self.image_size, 3), dtype=np.uint8)
        self.observation_space = gym.spaces.Dict(spaces)
        self.raw_obs = np.zeros(39)
        """Meta-World's last 39-D observation (what its scripted policies read)."""
        self.labels: dict = {}
        self.step_count, self.n_clipped, self.episode_id = 0, 0, 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if options and options.get("variations", "none") not in ("none", None):
            raise RobosteerError("Meta-World tasks have no variation presets; reset with variations 'none'")
        if seed is not None:
            self.raw_env.seed(seed)  # the goal and object positions come from this generator
        self.raw_obs, _ = self.raw_env.reset(seed=seed)
        self.labels = {
            "task_name": self.task_name,
            "suite": SUITE,
            "goal": np.round(np.asarray(self.raw_env._target_pos, dtype=float), 5).tolist(),
            "object_pos": np.round(self.raw_obs[4:7], 5).tolist(),
        }
        self.step_count, self.n_clipped = 0, 0
        self.episode_id += 1
        return self._observation(), self._info(False, False)

    def step(self, action):
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != (4,):
            raise RobosteerError(
                f"action has shape {action.shape} at step {self.step_count}; expected (4,): hand xyz move + gripper"
            )
        if not np.all(np.isfinite(action)):
            raise RobosteerError(
                f"action at step {self.step_count} contains NaN/Inf: {action.tolist()}; check the policy output"
            )
        clipped = np.clip(action, -1.0, 1.0)
        was_clipped = bool(np.any(np.abs(clipped - action) > 1e-6))
        self.n_clipped += int(was_clipped)
        self.raw_obs, _reward, _, truncated, raw_info = self.raw_env.step(clipped.astype(np.float32))
        self.step_count += 1
        success = bool(raw_info.get("success", 0.0))
        truncated = bool(truncated) or self.step_count >= MAX_EPISODE_STEPS
        return self._observation(), float(success), success, truncated, self._info(success, was_clipped)

    def render(self):
        if self.render_mode == "rgb_array":
            return self._render_camera(self.cameras[0] if self.cameras else CAMERAS[0])
        return None

    def close(self):
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        self.raw_env.close()

    def state(self) -> np.ndarray:
        """``observation.state``: hand xyz + gripper opening (LeRobot's ``agent_pos``)."""
        return np.asarray(self.raw_obs[:4], dtype=np.float32)

    def observe(self) -> dict:
        """The full observation of the current state (state and every camera), whatever ``render_images`` says."""
        obs = {OBS_STATE: self.state()}
        for cam in self.cameras:
            obs[image_key(cam)] = self._render_camera(cam)
        return obs

    def _observation(self) -> dict:
        return self.observe() if self.render_images else {OBS_STATE: self.state()}

    def _render_camera(self, camera: str) -> np.ndarray:
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.raw_env.model, self.image_size, self.image_size)
            for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION):
                self._renderer.scene.flags[flag] = self.lerobot_lighting
        self._renderer.update_scene(self.raw_env.data, camera=camera)
        image = self._renderer.render()
        if camera in UPSIDE_DOWN_CAMERAS:
            image = image[::-1, ::-1]
        return np.ascontiguousarray(image)

    def _info(self, success: bool, clipped: bool) -> dict:
        return {
            "task": self.instruction,
            "task_name": self.task_name,
            "suite": SUITE,
            "labels": dict(self.labels),
            "success": bool(success),
            "is_success": bool(success),
            "action_clipped": clipped,
            "n_clipped_actions": self.n_clipped,
            "step": self.step_count,
        }


class MetaWorldExpert:
    """Meta-World's scripted policy of the env's task (``metaworld.policies``, reading the raw 39-D observation).

    ``perturb`` adds Gaussian noise of std ``noise_std`` (action units: 1 = 1 cm of hand motion) to the executed xyz
    move; a recording stores the clean action, so the demos show the expert's corrections from off-path states.
    """

    def __init__(self, env, noise_std: float = 0.0, seed: int | None = None):
        from lerobot.envs.metaworld import TASK_POLICY_MAPPING

        if noise_std < 0:
            raise RobosteerError(f"noise_std must be >= 0 (got {noise_std})")
        self.env = env.unwrapped
        if getattr(self.env, "suite", None) != SUITE:
            raise RobosteerError(f"no Meta-World expert for env {env!r}; make it with sim.suites.make_expert")
        self.policy = TASK_POLICY_MAPPING[metaworld_tasks.versioned(self.env.task_name)]()
        self.noise_std, self.rng = noise_std, np.random.default_rng(seed)

    def reset(self) -> None:
        """Start a new episode (the scripted policies keep no state; kept for the expert interface)."""

    def act(self, obs=None, info=None) -> np.ndarray:
        """The (4,) action for the current state (from the env's raw observation; ``obs``/``info`` are unused)."""
        with warnings.catch_warnings():  # the policies' own note that the env clips to [-1, 1], as done here
            warnings.filterwarnings("ignore", message="Constant", category=UserWarning)
            action = self.policy.get_action(self.env.raw_obs)
        return np.clip(np.asarray(action, dtype=np.float32), -1.0, 1.0)

    def perturb(self, action: np.ndarray) -> np.ndarray:
        """``action`` with Gaussian noise on the xyz move (clipped to [-1, 1]), for execution only."""
        if not self.noise_std:
            return action
        noisy = np.array(action, dtype=np.float32)
        noisy[:3] += self.rng.normal(0, self.noise_std, 3).astype(np.float32)
        return np.clip(noisy, -1.0, 1.0)
