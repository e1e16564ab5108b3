"""A Franka FR3/Panda arm + Franka Hand in MJCF, built from primitive geoms with Franka's published kinematics.

Kinematic chain (Craig's modified DH, as published by Franka): d1=0.333, d3=0.316, a4=0.0825, a5=-0.0825, d5=0.384,
a7=0.088, flange d=0.107; hand rotated -45 deg about the flange axis, TCP 0.1034 m from the flange. The body frames
below are that chain written as MuJoCo bodies (the same frames menagerie's panda uses), so joint angles mean the same
thing as on the real robot. Link shapes are capsules (visual only); the hand and fingers collide.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robosteer.constants import GRIPPER_MAX_WIDTH, joint_names
from robosteer.errors import RobosteerError

FR3_LIMITS = (
    (-2.7437, 2.7437),
    (-1.7837, 1.7837),
    (-2.9007, 2.9007),
    (-3.0421, -0.1518),
    (-2.8065, 2.8065),
    (0.5445, 4.5169),
    (-3.0159, 3.0159),
)
"""FR3 joint position limits [rad] (Franka datasheet)."""
FR3_VELOCITY_LIMITS = (2.62, 2.62, 2.62, 2.62, 5.26, 4.18, 5.26)
"""FR3 joint velocity limits [rad/s]."""
PANDA_LIMITS = (
    (-2.8973, 2.8973),
    (-1.7628, 1.7628),
    (-2.8973, 2.8973),
    (-3.0718, -0.0698),
    (-2.8973, 2.8973),
    (-0.0175, 3.7525),
    (-2.8973, 2.8973),
)
"""Panda joint position limits [rad] (Franka datasheet)."""
PANDA_VELOCITY_LIMITS = (2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61)
"""Panda joint velocity limits [rad/s]."""
HOME_QPOS = (0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785)
"""The usual Franka 'ready' pose (inside both FR3 and Panda limits)."""
TCP_OFFSET = 0.1034
"""Distance of the tool centre point from the flange along its z axis [m]."""

_KP = (4500, 4500, 3500, 3500, 2000, 2000, 2000)
_KV = (225, 225, 175, 175, 100, 100, 100)
_TORQUE = (87, 87, 87, 87, 12, 12, 12)


WRIST_CAMERA = {"pos": (0.06, 0.0, 0.045), "quat": (0.0, 0.9914449, 0.0, -0.1305262), "fovy": 75.0}
"""Pose of the ``wrist`` camera in the hand frame (z from the flange towards the fingertips)."""
FINGER_JOINTS = ("finger_joint1", "finger_joint2")


@dataclass(frozen=True)
class RobotMjcf:
    """An arm + gripper MJCF file used instead of the built-in model (e.g. menagerie's ``franka_emika_panda/panda.xml``).

    The task scene is built around it. Its worldbody's arm (the body tree holding the 7 arm joints) is attached at the
    world origin; its lights, floors and keyframes are left out. Checked when the env is created (see
    :func:`sim.robot_file.check_robot_mjcf`).
    """

    path: str
    """The MJCF file; meshes and includes resolve relative to it, as MuJoCo does."""
    joint_prefix: str | None = None
    """Prefix of the 7 arm hinge joints in the file, numbered 1..7 (``joint`` for menagerie's panda). None = the env's
    naming (``fr3_joint`` or ``panda_joint``)."""
    finger_joints: tuple[str, str] = FINGER_JOINTS
    """The two finger slide joints, each 0 (closed) .. 0.04 m (open); the gripper width is their sum."""
    tcp_site: str = "tcp"
    """Site at the tool centre point (z pointing out between the fingertips), used by IK and the experts."""
    hand_body: str = "hand"
    """Body that gets a TCP site (``tcp_offset`` along its z axis) when the file has no ``tcp_site``, and the
    ``wrist`` camera when the file has no camera named ``wrist``."""
    tcp_offset: float = TCP_OFFSET
    """Distance of the added TCP site from the ``hand_body`` origin along its z axis [m]."""

    def __post_init__(self):
        object.__setattr__(self, "path", str(Path(self.path).expanduser()))
        object.__setattr__(self, "finger_joints", tuple(self.finger_joints))
        if len(self.finger_joints) != 2:
            raise RobosteerError(f"finger_joints={self.finger_joints} must name exactly two slide joints")


@dataclass(frozen=True)
class RobotNames:
    """Names of what the env drives and reads in the compiled scene model."""

    arm_joints: tuple[str, ...]
    finger_joints: tuple[str, str]
    tcp_site: str
    wrist_camera: str


@dataclass(frozen=True)
class RobotSpec:
    """Which Franka variant to build, or which MJCF file to load the arm + gripper from."""

    joint_prefix: str = "fr3_joint"
    """Joint naming scheme: ``fr3_joint`` (FR3 limits) or ``panda_joint`` (Panda limits). Actions, observations and
    datasets use these names and limits, also with ``mjcf``."""
    mjcf: RobotMjcf | str | os.PathLike | None = None
    """Arm + gripper MJCF file (a path or a :class:`RobotMjcf`) instead of the built-in primitive model; None = built-in.
    Validated here, before any other work: a bad file raises :class:`RobosteerError` saying what is missing."""

    def __post_init__(self):
        joint_names(self.joint_prefix)  # raises with the valid prefixes
        if isinstance(self.mjcf, (str, os.PathLike)):
            object.__setattr__(self, "mjcf", RobotMjcf(os.fspath(self.mjcf)))
        if self.mjcf is not None:
            from sim.robot_file import check_robot_mjcf  # noqa: PLC0415  (robot_file imports this module)

            check_robot_mjcf(self.mjcf, self.joints)

    @property
    def names(self) -> RobotNames:
        """Model names of the built-in robot (a loaded file gets its names from :func:`sim.robot_file.attach_robot`)."""
        return RobotNames(tuple(self.joints), FINGER_JOINTS, "tcp", "wrist")

    @property
    def joints(self) -> list[str]:
        return joint_names(self.joint_prefix)

    @property
    def limits(self) -> np.ndarray:
        """(7, 2) joint position limits [rad]."""
        return np.array(FR3_LIMITS if self.joint_prefix == "fr3_joint" else PANDA_LIMITS)

    @property
    def velocity_limits(self) -> np.ndarray:
        return np.array(FR3_VELOCITY_LIMITS if self.joint_prefix == "fr3_joint" else PANDA_VELOCITY_LIMITS)


def _link(name: str, pos: str, quat: str, joint: str, limits, geoms: str, inner: str, armature: float = 0.2) -> str:
    lo, hi = limits
    return (
        f'<body name="{name}" pos="{pos}" quat="{quat}" gravcomp="1">'
        f'<joint name="{joint}" axis="0 0 1" range="{lo} {hi}" damping="1" armature="{armature}"/>'
        f"{geoms}{inner}</body>"
    )


def _vec(values) -> str:
    return " ".join(map(str, values))


def _cap(fromto: str, r: float = 0.055, rgba: str = "0.92 0.92 0.94 1") -> str:
    return (
        f'<geom type="capsule" fromto="{fromto}" size="{r}" rgba="{rgba}" contype="0" conaffinity="0" density="600"/>'
    )


_DARK = "0.25 0.25 0.27 1"

_ARM_LINKS = (
    # (body name, pos, quat, capsules as _cap arguments), base to flange; link i+1 turns joint i.
    ("link1", "0 0 0.333", "1 0 0 0", (("0 0 -0.19 0 0 -0.03", 0.06),)),
    ("link2", "0 0 0", "1 -1 0 0", (("0 0 -0.06 0 0 0.06", 0.06), ("0 0 0 0 -0.2 0", 0.055))),
    ("link3", "0 -0.316 0", "1 1 0 0", (("0 0 -0.12 0 0 0", 0.055), ("0 0 0 0.0825 0 0", 0.05))),
    ("link4", "0.0825 0 0", "1 1 0 0", (("0 0 -0.06 0 0 0.06", 0.055), ("0 0 0 -0.0825 0.1 0", 0.05))),
    ("link5", "-0.0825 0.384 0", "1 -1 0 0", (("0 0 -0.26 0 0 0", 0.05), ("0 0 -0.1 0 0.06 -0.1", 0.04))),
    ("link6", "0 0 0", "1 1 0 0", (("0 0 -0.06 0 0 0.03", 0.05), ("0 0 0 0.088 0 0", 0.045))),
    ("link7", "0.088 0 0", "1 1 0 0", (("0 0 -0.02 0 0 0.09", 0.045, _DARK),)),
)
"""The built-in arm's primitive geometry (Franka kinematics, capsule shells)."""


def robot_mjcf(spec: RobotSpec = RobotSpec()) -> tuple[str, str, str]:
    """(worldbody xml, actuator xml, extra xml for tendon/equality/contact) of the arm + hand at the origin."""
    return _arm_body(spec, _hand_body()), _actuators(spec), _gripper_coupling()


def _hand_body() -> str:
    """The hand: palm, TCP site, wrist camera and two slide-jointed fingers."""
    finger = (
        '<geom type="box" pos="0 {y} 0.0265" size="0.0105 0.006 0.0265" rgba="0.2 0.2 0.2 1" friction="1.5 0.02 0.002"'
        ' condim="6" solref="0.01 1" priority="1" mass="0.02"/>'
    )
    return (
        '<body name="hand" pos="0 0 0.107" quat="0.9238795 0 0 -0.3826834">'
        '<geom type="box" pos="0 0 0.03" size="0.025 0.1 0.028" rgba="0.92 0.92 0.94 1" mass="0.6"/>'
        f'<site name="tcp" pos="0 0 {TCP_OFFSET}" size="0.005" rgba="1 0 0 0" group="4"/>'
        f'<camera name="wrist" pos="{_vec(WRIST_CAMERA["pos"])}" quat="{_vec(WRIST_CAMERA["quat"])}"'
        f' fovy="{WRIST_CAMERA["fovy"]}"/>'
        '<body name="left_finger" pos="0 0 0.0584">'
        '<joint name="finger_joint1" type="slide" axis="0 1 0" range="0 0.04" damping="10" armature="0.1"/>'
        + finger.format(y=0.006)
        + "</body>"
        '<body name="right_finger" pos="0 0 0.0584" quat="0 0 0 1">'
        '<joint name="finger_joint2" type="slide" axis="0 1 0" range="0 0.04" damping="10" armature="0.1"/>'
        + finger.format(y=0.006)
        + "</body></body>"
    )


def _arm_body(spec: RobotSpec, hand: str) -> str:
    """The base (link0) and the seven links nested base to flange, ``hand`` inside the last one."""
    j, lim = spec.joints, spec.limits
    inner = hand
    for i in reversed(range(len(_ARM_LINKS))):  # build from the flange outwards: each link wraps the next
        name, pos, quat, caps = _ARM_LINKS[i]
        inner = _link(name, pos, quat, j[i], lim[i], "".join(_cap(*cap) for cap in caps), inner)
    return (
        '<body name="link0" pos="0 0 0">'
        '<geom type="cylinder" fromto="0 0 0 0 0 0.15" size="0.07" rgba="0.92 0.92 0.94 1" contype="0" conaffinity="0"/>'
        f"{inner}</body>"
    )


def _actuators(spec: RobotSpec) -> str:
    """A position servo per arm joint (gains and torque limits of the Franka) and one for the gripper's width."""
    j, lim = spec.joints, spec.limits
    acts = "".join(
        f'<position name="act{i + 1}" joint="{j[i]}" kp="{_KP[i]}" kv="{_KV[i]}" ctrlrange="{lim[i][0]} {lim[i][1]}"'
        f' forcerange="-{_TORQUE[i]} {_TORQUE[i]}"/>'
        for i in range(7)
    )
    return acts + (
        f'<position name="gripper" tendon="split" kp="1500" kv="40" ctrlrange="0 {GRIPPER_MAX_WIDTH}"'
        ' forcerange="-20 20"/>'
    )


def _gripper_coupling() -> str:
    """The fingers move together: a tendon summing them (the gripper actuator drives it), an equality keeping them
    equal, and no contact between them."""
    return (
        '<tendon><fixed name="split"><joint joint="finger_joint1" coef="1"/><joint joint="finger_joint2" coef="1"/>'
        "</fixed></tendon>"
        '<equality><joint joint1="finger_joint1" joint2="finger_joint2" solref="0.01 1"/></equality>'
        '<contact><exclude body1="left_finger" body2="right_finger"/></contact>'
    )


def robot_document(spec: RobotSpec = RobotSpec()) -> str:
    """The built-in arm + hand as a standalone MJCF document: a starting point for a model of your own (load it back
    with ``robot_mjcf=PATH``)."""
    body, actuators, extra = robot_mjcf(spec)
    return (
        f'<mujoco model="franka_{spec.joint_prefix.split("_")[0]}"><compiler angle="radian" autolimits="true"/>'
        f'<option integrator="implicitfast"/><worldbody>{body}</worldbody>{extra}<actuator>{actuators}</actuator></mujoco>'
    )
