"""How an action (7 joint targets [rad] + gripper width [m]) becomes actuator controls, for any Franka model.

The arm and the gripper must be driven by position servos: MuJoCo actuators with a fixed gain and an affine bias
``force = g * ctrl + b0 + b1 * length + b2 * velocity`` with ``b1 < 0`` (``<position>``, or ``<general>`` as
menagerie writes it). At rest such a servo holds ``length = -(g * ctrl + b0) / b1``; inverting that gives the
control for a target, whatever its units (menagerie's gripper takes 0..255 for 0..0.04 m per finger).
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from robosteer.errors import RobosteerError
from sim.robot import RobotNames

_POSITION_HINT = 'e.g. <position joint="{target}" kp="2000" kv="100"/>'


def _servo_affine(model: mujoco.MjModel, act: int, where: str) -> tuple[float, float]:
    """(scale, offset) with ctrl = scale * actuator_length + offset for a position servo; raises otherwise."""
    gain, bias = model.actuator_gainprm[act], model.actuator_biasprm[act]
    name = model.actuator(act).name or f"#{act}"
    fixed_gain = model.actuator_gaintype[act] == mujoco.mjtGain.mjGAIN_FIXED
    affine_bias = model.actuator_biastype[act] == mujoco.mjtBias.mjBIAS_AFFINE
    if not (fixed_gain and affine_bias and gain[0] > 0 and bias[1] < 0):
        raise RobosteerError(
            f"{where}: actuator {name} is not a position servo (it needs a fixed gain kp > 0 and an affine bias "
            f"with a negative position term, as <position kp=...> writes); replace it by a position actuator"
        )
    return float(-bias[1] / gain[0]), float(-bias[0] / gain[0])


def _actuators_on(model: mujoco.MjModel, trntype: mujoco.mjtTrn, target: int) -> list[int]:
    return [a for a in range(model.nu) if model.actuator_trntype[a] == trntype and model.actuator_trnid[a, 0] == target]


@dataclass(frozen=True)
class Actuation:
    """Actuator ids and the linear maps from joint targets / gripper width to their controls."""

    arm: np.ndarray
    """(7,) actuator ids, in arm joint order."""
    arm_scale: np.ndarray
    """(7,) ctrl = arm_scale * q + arm_offset."""
    arm_offset: np.ndarray
    gripper: int
    gripper_scale: float
    """ctrl = gripper_scale * width + gripper_offset."""
    gripper_offset: float

    def arm_ctrl(self, q: np.ndarray) -> np.ndarray:
        return self.arm_scale * q + self.arm_offset

    def gripper_ctrl(self, width: float) -> float:
        return self.gripper_scale * width + self.gripper_offset

    @classmethod
    def from_model(cls, model: mujoco.MjModel, names: RobotNames, where: str = "robot model") -> Actuation:
        """Find the servos of the arm joints and of the gripper; ``where`` prefixes every error (e.g. the file)."""
        arm, scale, offset = [], [], []
        for joint in names.arm_joints:
            jid = model.joint(joint).id
            acts = _actuators_on(model, mujoco.mjtTrn.mjTRN_JOINT, jid)
            if not acts:
                hint = _POSITION_HINT.format(target=joint)
                raise RobosteerError(f"{where}: no actuator drives arm joint {joint}; add a position actuator ({hint})")
            s, o = _servo_affine(model, acts[0], where)
            gear = model.actuator_gear[acts[0], 0]
            arm.append(acts[0])
            scale.append(s * gear)
            offset.append(o)
        gripper, width_to_length = cls._find_gripper(model, names, where)
        s, o = _servo_affine(model, gripper, where)
        gear = model.actuator_gear[gripper, 0]
        return cls(np.array(arm), np.array(scale), np.array(offset), gripper, s * gear * width_to_length, o)

    @staticmethod
    def _find_gripper(model: mujoco.MjModel, names: RobotNames, where: str) -> tuple[int, float]:
        """The gripper actuator and d(transmission length)/d(width) at equal finger positions."""
        fingers = [model.joint(f).id for f in names.finger_joints]
        for tendon in range(model.ntendon):
            adr, num = model.tendon_adr[tendon], model.tendon_num[tendon]
            joints = {int(model.wrap_objid[w]): float(model.wrap_prm[w]) for w in range(adr, adr + num)}
            if all(model.wrap_type[w] == mujoco.mjtWrap.mjWRAP_JOINT for w in range(adr, adr + num)) and set(
                joints
            ) == set(fingers):
                acts = _actuators_on(model, mujoco.mjtTrn.mjTRN_TENDON, tendon)
                if acts:  # each finger opens width / 2
                    return acts[0], sum(joints.values()) / 2
        for finger in fingers:
            acts = _actuators_on(model, mujoco.mjtTrn.mjTRN_JOINT, finger)
            if acts:  # one finger driven, the other coupled by an equality
                return acts[0], 0.5
        raise RobosteerError(
            f"{where}: no gripper actuator: nothing drives a fixed tendon over {' and '.join(names.finger_joints)} "
            'or one of those joints; add <tendon><fixed name="split"> over both finger joints and a position '
            'actuator on it (e.g. <position tendon="split" kp="1500" kv="40"/>), as menagerie\'s panda does'
        )
