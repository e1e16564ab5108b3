"""Load the arm + gripper from a user's MJCF file (e.g. menagerie's ``franka_emika_panda/panda.xml``) and attach it to
the task scene in place of the built-in model.

    env = gym.make("robosteer/PickCube-v0", robot_mjcf="~/mujoco_menagerie/franka_emika_panda/panda.xml",
                   joint_prefix="panda_joint")                    # or robot_mjcf=RobotMjcf(path, joint_prefix="joint")

:func:`check_robot_mjcf` runs when the :class:`~sim.robot.RobotSpec` is made, before any other work: the file exists
and compiles, is fixed to the world, has the 7 arm hinge joints, the two finger slide joints, position servos on the
arm joints and on the gripper (see :mod:`sim.actuation`) and an end effector (a TCP site or the hand body).
The attached elements are named ``robot/<name in the file>``; the env finds them through :class:`~sim.robot.RobotNames`.
"""

from __future__ import annotations

import re
from pathlib import Path

import mujoco

from robosteer.errors import RobosteerError
from sim.actuation import Actuation
from sim.robot import WRIST_CAMERA, RobotMjcf, RobotNames

PREFIX = "robot/"
"""Prefix of every element attached from the file (keeps its names apart from the scene's)."""


def _where(cfg: RobotMjcf) -> str:
    return f"robot MJCF {cfg.path}"


def file_joint_names(cfg: RobotMjcf, arm_joints: list[str] | tuple[str, ...]) -> list[str]:
    """The arm joint names as written in the file."""
    return list(arm_joints) if cfg.joint_prefix is None else [f"{cfg.joint_prefix}{i}" for i in range(1, 8)]


def load_robot_spec(cfg: RobotMjcf) -> mujoco.MjSpec:
    """Parse the file (keyframes dropped: they are sized for the robot alone)."""
    path = Path(cfg.path)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise RobosteerError(
            f"{_where(cfg)} {what}; pass the path of an MJCF file holding the arm and gripper, "
            "e.g. mujoco_menagerie/franka_emika_panda/panda.xml"
        )
    try:
        spec = mujoco.MjSpec.from_file(str(path))
    except ValueError as err:
        reason = " ".join(str(err).split())
        raise RobosteerError(f"{_where(cfg)} is not a readable MJCF model ({reason}); pass a MuJoCo XML file") from err
    for key in list(spec.keys):
        key.delete()  # mujoco 3.3's spec API (4.x also has spec.delete)
    spec.nkey = 0
    return spec


def _compile(spec: mujoco.MjSpec, cfg: RobotMjcf) -> mujoco.MjModel:
    try:
        return spec.compile()
    except ValueError as err:
        reason = " ".join(str(err).split())
        raise RobosteerError(f"{_where(cfg)} does not compile in MuJoCo ({reason}); fix the file") from err


def _suggest_prefix(hinges: list[str]) -> str | None:
    """A prefix p such that the file has hinge joints p1..p7, if there is exactly one."""
    prefixes = {m.group(1) for name in hinges if (m := re.fullmatch(r"(.*?)1", name))}
    found = [p for p in sorted(prefixes) if all(f"{p}{i}" in hinges for i in range(1, 8))]
    return found[0] if len(found) == 1 else None


def _check_joints(model: mujoco.MjModel, cfg: RobotMjcf, file_joints: list[str]) -> None:
    where, kinds = _where(cfg), mujoco.mjtJoint
    free = [model.joint(j).name or f"#{j}" for j in range(model.njnt) if model.jnt_type[j] == kinds.mjJNT_FREE]
    if free:
        raise RobosteerError(f"{where} has a free joint ({', '.join(free)}); the arm must be fixed: remove it")
    hinges = [model.joint(j).name for j in range(model.njnt) if model.jnt_type[j] == kinds.mjJNT_HINGE]
    missing = [j for j in file_joints if j not in hinges]
    if missing:
        guess = _suggest_prefix(hinges)
        fix = (
            f"its arm joints look like {guess}1..{guess}7: pass RobotMjcf(path, joint_prefix={guess!r}) "
            f"(--robot-mjcf-joint-prefix {guess})"
            if guess
            else "name the 7 arm joints so or set RobotMjcf.joint_prefix (--robot-mjcf-joint-prefix)"
        )
        raise RobosteerError(
            f"{where} has no arm hinge joint(s) {', '.join(missing)} (its hinge joints: {', '.join(hinges) or 'none'}); "
            + fix
        )
    slides = [model.joint(j).name for j in range(model.njnt) if model.jnt_type[j] == kinds.mjJNT_SLIDE]
    if not all(f in slides for f in cfg.finger_joints):
        raise RobosteerError(
            f"{where} has no finger slide joints {' and '.join(cfg.finger_joints)} (its slide joints: "
            f"{', '.join(slides) or 'none'}); set RobotMjcf.finger_joints to the gripper's two finger joints"
        )


def _root_body(model: mujoco.MjModel, joint: str) -> int:
    body = model.jnt_bodyid[model.joint(joint).id]
    while model.body_parentid[body] != 0:
        body = model.body_parentid[body]
    return int(body)


def check_robot_mjcf(cfg: RobotMjcf, arm_joints: list[str] | tuple[str, ...]) -> None:
    """Raise :class:`RobosteerError` naming what is missing when the file cannot drive the suite's robot interface."""
    model = _compile(load_robot_spec(cfg), cfg)
    file_joints = file_joint_names(cfg, arm_joints)
    _check_joints(model, cfg, file_joints)
    has_site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, cfg.tcp_site) >= 0
    has_hand = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, cfg.hand_body) >= 0
    if not (has_site or has_hand):
        raise RobosteerError(
            f"{_where(cfg)} has neither a site {cfg.tcp_site!r} nor a body {cfg.hand_body!r} for the end effector; "
            "set RobotMjcf.tcp_site (a site at the tool centre point) or RobotMjcf.hand_body (the hand)"
        )
    root = _root_body(model, file_joints[0])
    stray = [j for j in [*file_joints, *cfg.finger_joints] if _root_body(model, j) != root]
    if stray:
        raise RobosteerError(f"{_where(cfg)}: joint(s) {', '.join(stray)} are not in the arm's body tree")
    names = RobotNames(tuple(file_joints), cfg.finger_joints, cfg.tcp_site, "wrist")
    Actuation.from_model(model, names, _where(cfg))


def attach_robot(scene: mujoco.MjSpec, cfg: RobotMjcf, arm_joints: list[str] | tuple[str, ...]) -> RobotNames:
    """Attach the file's arm body tree at the world origin of ``scene``, adding a TCP site and a wrist camera to the
    hand where the file has none; returns the model names the env uses. Call after :func:`check_robot_mjcf`."""
    robot = load_robot_spec(cfg)
    file_joints = file_joint_names(cfg, arm_joints)
    root = robot.joint(file_joints[0]).parent
    while root.parent is not None and root.parent.name != "world":
        root = root.parent
    scene.worldbody.add_frame().attach_body(root, PREFIX, "")
    site = robot.site(cfg.tcp_site)
    hand = scene.body(PREFIX + cfg.hand_body) or scene.body(PREFIX + site.parent.name)
    tcp = PREFIX + cfg.tcp_site
    if site is None:
        tcp = "tcp"
        hand.add_site(name=tcp, pos=[0.0, 0.0, cfg.tcp_offset], size=[0.005, 0.005, 0.005], group=4)
    camera = PREFIX + "wrist"
    if robot.camera("wrist") is None:
        camera = "wrist"
        hand.add_camera(name=camera, pos=WRIST_CAMERA["pos"], quat=WRIST_CAMERA["quat"], fovy=WRIST_CAMERA["fovy"])
    return RobotNames(tuple(PREFIX + j for j in file_joints), tuple(PREFIX + f for f in cfg.finger_joints), tcp, camera)


def compile_scene(scene: mujoco.MjSpec, cfg: RobotMjcf) -> mujoco.MjModel:
    try:
        return scene.compile()
    except ValueError as err:
        reason = " ".join(str(err).split())
        raise RobosteerError(f"the task scene with {_where(cfg)} does not compile ({reason})") from err
