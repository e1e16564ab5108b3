"""Scripted experts: privileged-state waypoint controllers that solve every task of the suite through IK.

    from sim.experts import make_expert
    expert = make_expert(env)           # env from gym.make("robosteer/<Task>-v0")
    expert.reset()                      # after env.reset()
    action = expert.act(obs, info)      # (8,) float32 absolute joint targets + gripper width

Each expert moves a commanded TCP point towards the current phase's goal at a capped speed, keeps the hand pointing
down with a yaw suited to the object, and converts it to joint targets with damped-least-squares IK.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robosteer.constants import GRIPPER_MAX_WIDTH
from robosteer.errors import RobosteerError
from sim.ik import DifferentialIK, top_down_rotation

OPEN, CLOSED = GRIPPER_MAX_WIDTH, 0.0
FINGER_HALF_THICKNESS = 0.0105
"""Half thickness of the closed fingers along the hand's x axis (the pushing face)."""


@dataclass
class Phase:
    name: str
    pos: np.ndarray
    gripper: float
    tolerance: float = 0.012
    wait: int = 0
    """Steps to hold once reached (e.g. while the gripper closes)."""
    speed: float = 1.0
    """Fraction of the expert's speed used in this phase."""


def _wrap(angle: float) -> float:
    return float((angle + np.pi) % (2 * np.pi) - np.pi)


class ScriptedExpert:
    """Base waypoint follower; subclasses implement ``plan(step)`` returning the current Phase."""

    def __init__(self, env, speed: float = 0.3, noise_std: float = 0.0, seed: int | None = None):
        self.env = env.unwrapped
        u = self.env
        self.ik = DifferentialIK(u.model, u.ids.arm_qpos, u.ids.arm_dof, u.ids.tcp, u.robot.limits)
        self.max_step = speed / u.fps
        self.noise_std, self.rng = noise_std, np.random.default_rng(seed)
        self.episode_id = None

    def reset(self) -> None:
        """Start a new episode (call after env.reset; act() also does it when it sees a new episode)."""
        u = self.env
        self.episode_id = u.episode_id
        self.q_cmd = u.data.qpos[u.ids.arm_qpos].copy()
        self.p_cmd, rot = u.tcp_pose()
        self.home_yaw = float(np.arctan2(-rot[0, 1], rot[1, 1]))
        self.yaw = self.yaw_cmd = self.home_yaw
        self.phase_index, self.phase_steps, self.steps, self.retries = 0, 0, 0, 0
        self.entry_tcp = self.p_cmd.copy()
        self.start()

    def start(self) -> None:
        """Called at reset: freeze per-episode choices (grasp yaw etc.)."""

    def phases(self) -> list[Phase]:
        raise NotImplementedError

    def before_step(self) -> None:
        """Hook for re-planning (retries) before the phase target is computed."""

    def closest_yaw(self, base: float, period: float) -> float:
        """The angle base + k * period nearest to the home yaw (keeps joint 7 away from its limits)."""
        k = np.round((self.home_yaw - base) / period)
        return _wrap(base + k * period)

    def act(self, obs=None, info=None) -> np.ndarray:
        """The (8,) action for the current state (obs/info are accepted for API symmetry; state is privileged)."""
        u = self.env
        if self.episode_id != u.episode_id:
            self.reset()
        self.before_step()
        phases = self.phases()
        phase = phases[min(self.phase_index, len(phases) - 1)]
        delta = phase.pos - self.p_cmd
        dist = np.linalg.norm(delta)
        max_step = self.max_step * phase.speed
        self.p_cmd = phase.pos.copy() if dist <= max_step else self.p_cmd + delta * (max_step / dist)
        self.yaw_cmd += float(np.clip(_wrap(self.yaw - self.yaw_cmd), -0.08, 0.08))
        self.q_cmd = self.ik.solve(self.q_cmd, self.p_cmd, top_down_rotation(self.yaw_cmd))
        tcp, _ = u.tcp_pose()
        self.phase_steps += 1
        reached = np.linalg.norm(tcp - phase.pos) < phase.tolerance and dist <= max_step
        if (reached and self.phase_steps > phase.wait) or self.phase_steps > 60:
            if self.phase_index < len(phases) - 1:
                self.phase_index += 1
                self.phase_steps = 0
                self.entry_tcp = tcp
        self.steps += 1
        return np.append(self.q_cmd, phase.gripper).astype(np.float32)

    def perturb(self, action: np.ndarray) -> np.ndarray:
        """``action`` with Gaussian noise (std ``noise_std`` rad) on the 7 joint targets, for execution only.

        Recording executes the perturbed action but stores the clean one (DART-style noise injection): the demos then
        show the expert's correction from states slightly off its own path, which a cloned policy will visit.
        """
        if not self.noise_std:
            return action
        noisy = action.copy()
        noisy[:7] += self.rng.normal(0, self.noise_std, 7).astype(np.float32)
        return noisy

    def restart(self) -> None:
        self.phase_index, self.phase_steps = 0, 0
        self.entry_tcp = self.env.tcp_pose()[0]
        self.retries += 1


class PickExpert(ScriptedExpert):
    """Above the object, down, close, lift; retries when the grasp missed."""

    grasp_depth = 0.0

    def start(self):
        u = self.env
        if u.object_form == "cube":
            self.yaw = self.closest_yaw(u.object_yaw, np.pi / 2)
        elif u.object_form == "mug":
            self.yaw = self.closest_yaw(u.object_yaw, np.pi)
        self.lift_xy = None

    def grasp_point(self) -> np.ndarray:
        u = self.env
        pos = u.object_pos()
        if u.object_form == "mug":
            return np.array([pos[0], pos[1], pos[2] + u.mug_half_height - 0.03])
        return pos - np.array([0.0, 0.0, self.grasp_depth])

    def pick_phases(self) -> list[Phase]:
        grasp = self.grasp_point()
        above = grasp + np.array([0.0, 0.0, 0.1])
        lift = np.append(grasp[:2], 0.2)
        return [
            Phase("above", above, OPEN, 0.02),
            Phase("descend", grasp, OPEN, 0.008),
            Phase("close", grasp, CLOSED, 1.0, wait=6),
            Phase("lift", lift, CLOSED, 0.02),
        ]

    def phases(self):
        return self.pick_phases()

    def before_step(self):
        u = self.env
        lifting = self.phase_index >= 3
        if lifting and self.phase_steps > 8 and u.gripper_width() < 2 * u.object_half * 0.6 and self.retries < 3:
            self.restart()  # closed on nothing: the object slipped or was missed


class PlaceExpert(PickExpert):
    """Pick, carry above the bowl, lower, release, retreat."""

    def phases(self):
        u = self.env
        pick = self.pick_phases()[:3]
        bowl = np.append(u.target_xy, 0.006 + u.object_half + 0.012)
        carry = np.append(u.target_xy, 0.2)
        return pick + [
            Phase("lift", np.append(pick[2].pos[:2], 0.18), CLOSED, 0.03),
            Phase("carry", carry, CLOSED, 0.02),
            Phase("lower", bowl, CLOSED, 0.01),
            Phase("release", bowl, OPEN, 1.0, wait=5),
            Phase("retreat", carry, OPEN, 0.02),
        ]


class PushExpert(ScriptedExpert):
    """Closed fingers behind the object, then a slow closed-loop push that keeps aiming through its centre at the
    goal; when the object slips sideways or the hand gets ahead of it, lift and approach again."""

    def start(self):
        self.aim()

    def aim(self):
        u = self.env
        direction = u.target_xy - u.object_pos()[:2]
        self.yaw = self.closest_yaw(float(np.arctan2(direction[1], direction[0])), np.pi)

    def geometry(self):
        u = self.env
        obj = u.object_pos()[:2]
        to_goal = u.target_xy - obj
        direction = to_goal / max(np.linalg.norm(to_goal), 1e-6)
        return obj, to_goal, direction, u.object_half + FINGER_HALF_THICKNESS

    def phases(self):
        obj, to_goal, direction, standoff = self.geometry()
        behind = obj - direction * (standoff + 0.03)
        contact = obj - direction * standoff
        push_to = contact + direction * min(0.03, np.linalg.norm(to_goal))
        up = np.append(self.entry_tcp[:2], max(self.entry_tcp[2], 0.1))
        z = max(self.env.object_half + 0.004, 0.018)  # fingertips 8 mm below the TCP, clear of the table
        return [
            Phase("up", up, CLOSED, 0.03),
            Phase("above", np.append(behind, 0.1), CLOSED, 0.02),
            Phase("down", np.append(behind, z), CLOSED, 0.008),
            Phase("push", np.append(push_to, z), CLOSED, 0.0, speed=0.3),
        ]

    def before_step(self):
        if self.phase_index == 3 and self.retries < 4:
            obj, _, direction, standoff = self.geometry()
            offset = self.env.tcp_pose()[0][:2] - obj
            lateral = abs(offset[0] * direction[1] - offset[1] * direction[0])
            if lateral > 0.015 or offset @ direction > -0.5 * standoff:
                self.restart()
                self.aim()


class PressExpert(ScriptedExpert):
    """Closed fingers above the button, press down 14 mm, hold."""

    def phases(self):
        u = self.env
        xy = u.target_xy
        top = u.button_top
        return [
            Phase("above", np.append(xy, top + 0.1), CLOSED, 0.02),
            Phase("press", np.append(xy, top - 0.006), CLOSED, 0.0),
        ]


class HoverExpert(ScriptedExpert):
    """Open hand to 10 cm above the named bowl's centre, then hold."""

    def phases(self):
        xy = self.env.target_xy
        return [Phase("above", np.append(xy, 0.10), OPEN, 0.012)]


EXPERTS = {
    "pick_cube": PickExpert,
    "pick_mug": PickExpert,
    "place_cube": PlaceExpert,
    "push_cube": PushExpert,
    "press_button": PressExpert,
    "reach_bowl": HoverExpert,
}


def make_expert(env, speed: float = 0.3, noise_std: float = 0.0, seed: int | None = None) -> ScriptedExpert:
    """The scripted expert for an env of the suite (call ``reset()`` after each ``env.reset``)."""
    name = getattr(env.unwrapped, "task_name", None)
    if name not in EXPERTS:
        raise RobosteerError(f"no scripted expert for env {env!r}; experts exist for {', '.join(EXPERTS)}")
    return EXPERTS[name](env, speed=speed, noise_std=noise_std, seed=seed)
