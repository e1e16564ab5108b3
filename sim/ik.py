"""Damped-least-squares inverse kinematics on MuJoCo Jacobians (for the scripted experts and teleoperation).

Solves on a private MjData copy, so the simulated state is never touched.
"""

from __future__ import annotations

import mujoco
import numpy as np

from sim.robot import HOME_QPOS


def top_down_rotation(yaw: float) -> np.ndarray:
    """Rotation (3, 3) of a hand pointing straight down whose fingers open along (-sin yaw, cos yaw, 0)."""
    y_axis = np.array([-np.sin(yaw), np.cos(yaw), 0.0])
    z_axis = np.array([0.0, 0.0, -1.0])
    return np.column_stack([np.cross(y_axis, z_axis), y_axis, z_axis])


def rotation_error(current: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Axis-angle-like world-frame error (3,) that rotates ``current`` towards ``target`` (both (3, 3))."""
    return 0.5 * sum(np.cross(current[:, i], target[:, i]) for i in range(3))


class DifferentialIK:
    """Joint positions that put the TCP site at a target pose, by damped least squares with a posture null space."""

    def __init__(
        self,
        model: mujoco.MjModel,
        arm_qpos: np.ndarray,
        arm_dof: np.ndarray,
        site_id: int,
        limits: np.ndarray,
        damping: float = 0.03,
        posture_gain: float = 0.1,
    ):
        self.model, self.data = model, mujoco.MjData(model)
        self.arm_qpos, self.arm_dof, self.site = arm_qpos, arm_dof, site_id
        self.limits, self.damping, self.posture_gain = limits, damping, posture_gain
        self._jacp, self._jacr = np.zeros((3, model.nv)), np.zeros((3, model.nv))

    def forward(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """TCP position (3,) and rotation (3, 3) at joint positions q (7,)."""
        self.data.qpos[self.arm_qpos] = q
        mujoco.mj_kinematics(self.model, self.data)
        return self.data.site_xpos[self.site].copy(), self.data.site_xmat[self.site].reshape(3, 3).copy()

    def solve(
        self,
        q_start: np.ndarray,
        target_pos: np.ndarray,
        target_rot: np.ndarray | None = None,
        iterations: int = 20,
        tolerance: float = 1e-4,
    ) -> np.ndarray:
        """Joint positions (7,) near ``q_start`` reaching the target (orientation ignored when None)."""
        q = np.array(q_start, dtype=float)
        for _ in range(iterations):
            pos, rot = self.forward(q)
            err = target_pos - pos
            if target_rot is not None:
                err = np.concatenate([err, rotation_error(rot, target_rot)])
            if np.linalg.norm(err) < tolerance:
                break
            mujoco.mj_comPos(self.model, self.data)
            mujoco.mj_jacSite(self.model, self.data, self._jacp, self._jacr, self.site)
            jac = self._jacp[:, self.arm_dof]
            if target_rot is not None:
                jac = np.vstack([jac, self._jacr[:, self.arm_dof]])  # (6, 7)
            jjt = jac @ jac.T + self.damping**2 * np.eye(jac.shape[0])
            dq = jac.T @ np.linalg.solve(jjt, err)
            null = np.eye(7) - np.linalg.pinv(jac) @ jac
            dq += null @ (self.posture_gain * (np.asarray(HOME_QPOS) - q))
            q = np.clip(q + dq, self.limits[:, 0] + 1e-3, self.limits[:, 1] - 1e-3)
        return q
