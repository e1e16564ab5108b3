"""The base gymnasium env of the suite: a Franka on a table, absolute joint-position actions at the policy rate.

Observation (dict, LeRobot keys):
    ``observation.state``            float32 (8,): 7 joint positions [rad] + gripper width [m]
    ``observation.images.<camera>``  uint8 (H, W, 3) for each camera in ``cameras`` (``front``, ``wrist``)
Action: float32 (8,): absolute joint position targets [rad] + gripper width target [0, 0.08] m, held for one
control period (1/fps s) and tracked by position actuators; the setpoint moves towards the target no faster than
the joint velocity limits (``info["velocity_limited"]`` says when that slowed it). Out-of-limit actions are clipped and counted in
``info["n_clipped_actions"]``; NaN/Inf raise :class:`RobosteerError` naming the step.
Reward: 1.0 on the step the task succeeds (then ``terminated``), else 0. Time limits come from registration.
Robot: the built-in FR3/Panda model, or the arm + gripper of an MJCF file (``robot_mjcf=PATH`` or a
:class:`~sim.robot.RobotMjcf`, checked before any work; see :mod:`sim.robot_file`); actions keep ``joint_prefix``'s
names and datasheet limits either way.
"""

from __future__ import annotations

import os

import gymnasium as gym
import mujoco
import numpy as np

from robosteer.constants import CAMERAS, FPS, GRIPPER_MAX_WIDTH, IMAGE_SIZE, OBS_STATE, image_key
from robosteer.errors import RobosteerError
from sim import layout
from sim.actuation import Actuation
from sim.robot import HOME_QPOS, RobotMjcf, RobotSpec
from sim.scene import MAX_TIMESTEP, build_scene
from sim.variations import VariationConfig, parse_variations


class FrankaTabletopEnv(gym.Env):
    """Base class; a task subclass sets ``task_name``, ``task_bodies()``, ``_sample_task()``, ``_is_success()``."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": FPS}
    task_name = "base"
    uses_object = True

    def __init__(
        self,
        image_size: int = IMAGE_SIZE,
        variations: str | VariationConfig = "none",
        cameras: tuple[str, ...] | list[str] | None = CAMERAS,
        render_mode: str | None = None,
        joint_prefix: str = "fr3_joint",
        fps: int = FPS,
        robot_mjcf: str | os.PathLike | RobotMjcf | None = None,
    ):
        if render_mode not in (None, "rgb_array"):
            raise RobosteerError(f"render_mode={render_mode!r} is not supported; use None or 'rgb_array'")
        if not 16 <= int(image_size) <= 1024:
            raise RobosteerError(f"image_size={image_size} is out of range; use 16-1024 (default {IMAGE_SIZE})")
        cameras = tuple(cameras or ())
        bad = [c for c in cameras if c not in CAMERAS]
        if bad:
            raise RobosteerError(f"unknown camera(s) {', '.join(bad)}; valid cameras: {', '.join(CAMERAS)}")
        if not 1 <= fps <= 100:
            raise RobosteerError(f"fps={fps} is out of range; use 1-100 (default {FPS})")
        self.variations = parse_variations(variations)
        self.robot = RobotSpec(joint_prefix=joint_prefix, mjcf=robot_mjcf)  # checks a robot file before any work
        self.image_size, self.cameras, self.render_mode, self.fps = int(image_size), cameras, render_mode, fps
        self.model, names = build_scene(self.task_bodies(), self.robot, self.image_size, with_objects=self.uses_object)
        self.data = mujoco.MjData(self.model)
        self.n_substeps = int(np.ceil(1.0 / (fps * MAX_TIMESTEP)))
        self.model.opt.timestep = 1.0 / (fps * self.n_substeps)
        if hasattr(mujoco.mjtEnableBit, "mjENBL_SLEEP"):  # MuJoCo >= 3.3: resting and parked bodies cost nothing
            self.model.opt.enableflags |= mujoco.mjtEnableBit.mjENBL_SLEEP
        self.ids = layout.SceneIds(self.model, names)
        self.actuation = Actuation.from_model(self.model, names)
        self.setpoint = np.array(HOME_QPOS)
        self.defaults = layout.snapshot_defaults(self.model)
        self._renderer: mujoco.Renderer | None = None
        self.render_images = True
        """False: ``step`` returns only ``observation.state`` (no camera render); a chunked policy that reads images
        once per chunk calls :meth:`observe` at chunk boundaries instead (rendering is most of a step's cost)."""

        limits = self.robot.limits
        act_low = np.append(limits[:, 0], 0.0).astype(np.float32)
        act_high = np.append(limits[:, 1], GRIPPER_MAX_WIDTH).astype(np.float32)
        self.action_space = gym.spaces.Box(act_low, act_high, dtype=np.float32)
        margin = np.full(8, 0.2, dtype=np.float32)
        margin[7] = 0.01
        spaces = {OBS_STATE: gym.spaces.Box(act_low - margin, act_high + margin, dtype=np.float32)}
        for cam in self.cameras:
            spaces[image_key(cam)] = gym.spaces.Box(0, 255, (self.image_size, self.image_size, 3), dtype=np.uint8)
        self.observation_space = gym.spaces.Dict(spaces)

        self.instruction, self.labels, self.occupied = "", {}, []
        self.step_count, self.n_clipped, self.episode_id = 0, 0, 0
        self.velocity_limited = False

    # ---- task hooks ---------------------------------------------------------------------------------------------
    def task_bodies(self) -> str:
        return ""

    def _sample_task(self, rng: np.random.Generator) -> dict:
        raise NotImplementedError

    def _is_success(self) -> bool:
        raise NotImplementedError

    # ---- gym API ------------------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if options and "variations" in options:
            self.variations = parse_variations(options["variations"])
        mujoco.mj_resetData(self.model, self.data)
        layout.restore_defaults(self.model, self.defaults)
        self.data.qpos[self.ids.arm_qpos] = HOME_QPOS
        self.data.qpos[self.ids.finger_qpos] = GRIPPER_MAX_WIDTH / 2
        self.setpoint = np.array(HOME_QPOS)
        self.data.ctrl[self.actuation.arm] = self.actuation.arm_ctrl(self.setpoint)
        self.data.ctrl[self.actuation.gripper] = self.actuation.gripper_ctrl(GRIPPER_MAX_WIDTH)
        layout.park_free_bodies(self.model, self.data, self.ids)
        rng = self.np_random
        self.labels = {"task_name": self.task_name, **self._sample_task(rng)}
        self.labels.update(layout.apply_scene_variations(self, rng))
        mujoco.mj_forward(self.model, self.data)
        self.step_count, self.n_clipped, self.velocity_limited = 0, 0, False
        self.episode_id += 1
        return self._observation(), self._info(False, False)

    def step(self, action):
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != (8,):
            raise RobosteerError(
                f"action has shape {action.shape} at step {self.step_count}; expected (8,): "
                "7 joint targets [rad] + gripper width [m]"
            )
        if not np.all(np.isfinite(action)):
            raise RobosteerError(
                f"action at step {self.step_count} contains NaN/Inf: {action.tolist()}; check the policy output"
            )
        clipped = np.clip(action, self.action_space.low, self.action_space.high)
        was_clipped = bool(np.any(np.abs(clipped - action) > 1e-6))
        self.n_clipped += int(was_clipped)
        # the arm's setpoint moves towards the target no faster than Franka's joint velocity limits
        max_move = self.robot.velocity_limits / self.fps
        step = np.clip(clipped[:7] - self.setpoint, -max_move, max_move)
        self.velocity_limited = bool(np.any(np.abs(step) < np.abs(clipped[:7] - self.setpoint) - 1e-9))
        self.setpoint += step
        self.data.ctrl[self.actuation.arm] = self.actuation.arm_ctrl(self.setpoint)
        self.data.ctrl[self.actuation.gripper] = self.actuation.gripper_ctrl(clipped[7])
        mujoco.mj_step(self.model, self.data, nstep=self.n_substeps)
        self.step_count += 1
        success = self._is_success()
        return self._observation(), float(success), success, False, self._info(success, was_clipped)

    def render(self):
        if self.render_mode == "rgb_array":
            return self._render_camera("front")
        return None

    def close(self):
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    # ---- helpers ------------------------------------------------------------------------------------------------
    def state(self) -> np.ndarray:
        q = self.data.qpos[self.ids.arm_qpos]
        width = self.data.qpos[self.ids.finger_qpos].sum()
        return np.append(q, width).astype(np.float32)

    def _render_camera(self, camera: str) -> np.ndarray:
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.model, self.image_size, self.image_size)
            self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
            self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
            self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SKYBOX] = False
        self._renderer.update_scene(self.data, camera=self.ids.cameras[camera])
        return self._renderer.render().copy()

    def observe(self) -> dict:
        """The full observation of the current state (state and every camera), whatever ``render_images`` says."""
        obs = {OBS_STATE: self.state()}
        for cam in self.cameras:
            obs[image_key(cam)] = self._render_camera(cam)
        return obs

    def _observation(self) -> dict:
        if self.render_images:
            return self.observe()
        return {OBS_STATE: self.state()}

    def _info(self, success: bool, clipped: bool) -> dict:
        return {
            "task": self.instruction,
            "task_name": self.task_name,
            "labels": dict(self.labels),
            "is_success": bool(success),
            "action_clipped": clipped,
            "n_clipped_actions": self.n_clipped,
            "velocity_limited": self.velocity_limited,
            "step": self.step_count,
        }

    def tcp_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Position (3,) and rotation matrix (3, 3) of the tool centre point."""
        return self.data.site_xpos[self.ids.tcp].copy(), self.data.site_xmat[self.ids.tcp].reshape(3, 3).copy()
