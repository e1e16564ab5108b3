"""A Franka FR3/Panda arm + Franka Hand in MJCF, built from primitive geoms with Franka's published kinematics.

Kinematic chain (Craig's modified DH, as published by Franka): d1=0.333, d3=0.316, a4=0.0825, a5=-0.0825, d5=0.384,
a7=0.088, flange d=0.107; hand rotated -45 deg about the flange axis, TCP 0.1034 m from the flange. The body frames
below are that chain written as MuJoCo bodies (the same frames menagerie's panda uses), so joint angles mean the same
thing as on the real robot. Link shapes are capsules (visual only); the hand and fingers collide.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robosteer.constants import GRIPPER_MAX_WIDTH, joint_names

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


@dataclass(frozen=True)
class RobotSpec:
    """Which Franka variant to build."""

    joint_prefix: str = "fr3_joint"
    """Joint naming scheme: ``fr3_joint`` (FR3 limits) or ``panda_joint`` (Panda limits)."""

    def __post_init__(self):
        joint_names(self.joint_prefix)  # raises with the valid prefixes

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


def _cap(fromto: str, r: float = 0.055, rgba: str = "0.92 0.92 0.94 1") -> str:
    return (
        f'<geom type="capsule" fromto="{fromto}" size="{r}" rgba="{rgba}" contype="0" conaffinity="0" density="600"/>'
    )


def robot_mjcf(spec: RobotSpec = RobotSpec()) -> tuple[str, str, str]:
    """(worldbody xml, actuator xml, extra xml for tendon/equality/contact) of the arm + hand at the origin."""
    j, lim = spec.joints, spec.limits
    dark = "0.25 0.25 0.27 1"
    finger = (
        '<geom type="box" pos="0 {y} 0.0265" size="0.0105 0.006 0.0265" rgba="0.2 0.2 0.2 1" friction="1.5 0.02 0.002"'
        ' condim="6" solref="0.01 1" priority="1" mass="0.02"/>'
    )
    hand = (
        '<body name="hand" pos="0 0 0.107" quat="0.9238795 0 0 -0.3826834">'
        '<geom type="box" pos="0 0 0.03" size="0.025 0.1 0.028" rgba="0.92 0.92 0.94 1" mass="0.6"/>'
        '<site name="tcp" pos="0 0 0.1034" size="0.005" rgba="1 0 0 0" group="4"/>'
        '<camera name="wrist" pos="0.06 0 0.045" quat="0 0.9914449 0 -0.1305262" fovy="75"/>'
        '<body name="left_finger" pos="0 0 0.0584">'
        '<joint name="finger_joint1" type="slide" axis="0 1 0" range="0 0.04" damping="10" armature="0.1"/>'
        + finger.format(y=0.006)
        + "</body>"
        '<body name="right_finger" pos="0 0 0.0584" quat="0 0 0 1">'
        '<joint name="finger_joint2" type="slide" axis="0 1 0" range="0 0.04" damping="10" armature="0.1"/>'
        + finger.format(y=0.006)
        + "</body></body>"
    )
    link7 = _link("link7", "0.088 0 0", "1 1 0 0", j[6], lim[6], _cap("0 0 -0.02 0 0 0.09", 0.045, dark), hand)
    link6 = _link(
        "link6",
        "0 0 0",
        "1 1 0 0",
        j[5],
        lim[5],
        _cap("0 0 -0.06 0 0 0.03", 0.05) + _cap("0 0 0 0.088 0 0", 0.045),
        link7,
    )
    link5 = _link(
        "link5",
        "-0.0825 0.384 0",
        "1 -1 0 0",
        j[4],
        lim[4],
        _cap("0 0 -0.26 0 0 0", 0.05) + _cap("0 0 -0.1 0 0.06 -0.1", 0.04),
        link6,
    )
    link4 = _link(
        "link4",
        "0.0825 0 0",
        "1 1 0 0",
        j[3],
        lim[3],
        _cap("0 0 -0.06 0 0 0.06", 0.055) + _cap("0 0 0 -0.0825 0.1 0", 0.05),
        link5,
    )
    link3 = _link(
        "link3",
        "0 -0.316 0",
        "1 1 0 0",
        j[2],
        lim[2],
        _cap("0 0 -0.12 0 0 0", 0.055) + _cap("0 0 0 0.0825 0 0", 0.05),
        link4,
    )
    link2 = _link(
        "link2",
        "0 0 0",
        "1 -1 0 0",
        j[1],
        lim[1],
        _cap("0 0 -0.06 0 0 0.06", 0.06) + _cap("0 0 0 0 -0.2 0", 0.055),
        link3,
    )
    link1 = _link("link1", "0 0 0.333", "1 0 0 0", j[0], lim[0], _cap("0 0 -0.19 0 0 -0.03", 0.06), link2)
    body = (
        '<body name="link0" pos="0 0 0">'
        '<geom type="cylinder" fromto="0 0 0 0 0 0.15" size="0.07" rgba="0.92 0.92 0.94 1" contype="0" conaffinity="0"/>'
        f"{link1}</body>"
    )
    acts = "".join(
        f'<position name="act{i + 1}" joint="{j[i]}" kp="{_KP[i]}" kv="{_KV[i]}" ctrlrange="{lim[i][0]} {lim[i][1]}"'
        f' forcerange="-{_TORQUE[i]} {_TORQUE[i]}"/>'
        for i in range(7)
    )
    acts += (
        f'<position name="gripper" tendon="split" kp="1500" kv="40" ctrlrange="0 {GRIPPER_MAX_WIDTH}"'
        ' forcerange="-20 20"/>'
    )
    extra = (
        '<tendon><fixed name="split"><joint joint="finger_joint1" coef="1"/><joint joint="finger_joint2" coef="1"/>'
        "</fixed></tendon>"
        '<equality><joint joint1="finger_joint1" joint2="finger_joint2" solref="0.01 1"/></equality>'
        '<contact><exclude body1="left_finger" body2="right_finger"/></contact>'
    )
    return body, acts, extra
