"""Loading the arm + gripper from a user's MJCF file (``robot_mjcf=PATH``): the file is really what runs, a
menagerie-shaped file maps onto the action interface, and bad files fail early with errors naming the fix."""

from __future__ import annotations

import json
import re
from pathlib import Path

import gymnasium as gym
import mujoco
import numpy as np
import pytest

import sim
from robosteer.constants import OBS_STATE, image_key
from robosteer.errors import RobosteerError
from sim.experts import make_expert
from sim.recording import record_dataset
from sim.robot import HOME_QPOS, RobotMjcf, RobotSpec, robot_document

GREEN = "0.1 0.8 0.2 1"
KP = (4500, 4500, 3500, 3500, 2000, 2000, 2000)


def export_builtin(folder: Path) -> Path:
    """The built-in FR3 saved by MuJoCo (mj_saveLastXML), its white links recoloured green."""
    path = folder / "fr3.xml"
    mujoco.mj_saveLastXML(str(path), mujoco.MjModel.from_xml_string(robot_document()))
    path.write_text(path.read_text().replace("0.92 0.92 0.94 1", GREEN))
    return path


def menagerie_shaped(folder: Path, drop: str = "") -> Path:
    """A file laid out like menagerie's panda.xml: joints joint1..7, <general> servos from a default class,
    actuator8 driving a 0.5/0.5 finger tendon with ctrl 0..255, no TCP site, no wrist camera, a mesh under
    meshdir="assets", a light and a 9-value keyframe. ``drop`` removes one actuator (e.g. ``actuator3``)."""
    xml = re.sub(r"panda_joint(\d)", r"joint\1", robot_document(RobotSpec("panda_joint")))
    xml = re.sub(r'<site name="tcp"[^>]*/>|<camera name="wrist"[^>]*/>|<actuator>.*</actuator>', "", xml)
    xml = xml.replace('coef="1"', 'coef="0.5"')
    acts = [
        f'<general class="panda" name="actuator{i + 1}" joint="joint{i + 1}" gainprm="{kp}" biasprm="0 -{kp} -{kp // 10}"/>'
        for i, kp in enumerate(KP)
    ]
    acts.append(
        '<general class="panda" name="actuator8" tendon="split" forcerange="-100 100" ctrlrange="0 255"'
        ' gainprm="0.01568627451 0 0" biasprm="0 -100 -10"/>'
    )
    acts = "".join(a for a in acts if f'name="{drop}"' not in a) if drop else "".join(acts)
    xml = xml.replace(
        '<compiler angle="radian" autolimits="true"/>',
        '<compiler angle="radian" meshdir="assets" autolimits="true"/>'
        '<default><default class="panda"><general dyntype="none" biastype="affine" ctrlrange="-2.8973 2.8973"'
        ' forcerange="-87 87"/></default></default><asset><mesh name="link0_0" file="link0_0.obj"/></asset>',
    )
    xml = xml.replace("<worldbody>", '<worldbody><light name="top" pos="0 0 2" mode="trackcom"/>')
    xml = xml.replace(
        '<body name="link0" pos="0 0 0">',
        f'<body name="link0" pos="0 0 0"><geom mesh="link0_0" rgba="{GREEN}" contype="0" conaffinity="0"/>',
    )
    xml = xml.replace(
        "</mujoco>",
        f'<actuator>{acts}</actuator><keyframe><key name="home" qpos="0 0 0 -1.57 0 1.57 -0.78 0.04 0.04"/>'
        "</keyframe></mujoco>",
    )
    (folder / "assets").mkdir(parents=True, exist_ok=True)
    (folder / "assets" / "link0_0.obj").write_text(
        "v -0.05 -0.05 0\nv 0.05 -0.05 0\nv 0.05 0.05 0\nv -0.05 0.05 0\nv 0 0 0.1\n"
        "f 1 3 2\nf 1 4 3\nf 1 2 5\nf 2 3 5\nf 3 4 5\nf 4 1 5\n"
    )
    path = folder / "panda.xml"
    path.write_text(xml)
    return path


def robot_rgba(model: mujoco.MjModel) -> set[tuple[float, ...]]:
    return {
        tuple(np.round(model.geom_rgba[g].astype(float), 2).tolist())
        for g in range(model.ngeom)
        if model.body(model.geom_bodyid[g]).name.startswith("robot/")
    }


def test_exported_robot_file_is_what_runs(tmp_path):
    path = export_builtin(tmp_path)
    builtin = gym.make("robosteer/PickCube-v0", cameras=("front",))
    env = gym.make("robosteer/PickCube-v0", cameras=("front",), robot_mjcf=str(path))
    u = env.unwrapped
    assert (0.1, 0.8, 0.2, 1.0) in robot_rgba(u.model)  # the file's colours, not the built-in's
    assert u.model.joint(f"robot/{RobotSpec().joints[0]}").id >= 0
    obs, info = env.reset(seed=0)
    ref, _ = builtin.reset(seed=0)
    np.testing.assert_allclose(obs[OBS_STATE], ref[OBS_STATE], atol=1e-6)
    np.testing.assert_allclose(u.tcp_pose()[0], builtin.unwrapped.tcp_pose()[0], atol=1e-6)  # same kinematics
    front, ref_front = obs[image_key("front")].astype(int), ref[image_key("front")].astype(int)
    assert (front[..., 1] - front[..., 0]).mean() > (ref_front[..., 1] - ref_front[..., 0]).mean() + 1  # green arm
    expert, done = make_expert(env), False
    while not done:
        obs, _, terminated, truncated, info = env.step(expert.act(obs, info))
        done = terminated or truncated
    assert info["is_success"]


def test_menagerie_shaped_file_maps_onto_the_action_interface(tmp_path):
    path = menagerie_shaped(tmp_path)
    mjcf = RobotMjcf(str(path), joint_prefix="joint")
    env = gym.make("robosteer/PressButton-v0", image_size=32, joint_prefix="panda_joint", robot_mjcf=mjcf)
    u = env.unwrapped
    assert u.model.joint("robot/joint4").id >= 0 and u.model.nkey == 0  # keyframe (sized for the arm alone) dropped
    assert (0.1, 0.8, 0.2, 1.0) in robot_rgba(u.model)  # the mesh under meshdir loaded
    assert not any(u.model.light(i).name.startswith("robot/") for i in range(u.model.nlight))
    obs, _ = env.reset(seed=0)
    assert obs[image_key("wrist")].shape == (32, 32, 3) and obs[image_key("wrist")].std() > 0  # added wrist camera
    gripper = u.actuation.gripper
    assert u.data.ctrl[gripper] == pytest.approx(255.0)  # 0.08 m open = 255, menagerie's units
    # the added TCP site sits where the built-in one is (0.1034 m along the hand's z axis)
    ref = gym.make("robosteer/PressButton-v0", cameras=(), joint_prefix="panda_joint")
    ref.reset(seed=0)
    np.testing.assert_allclose(u.tcp_pose()[0], ref.unwrapped.tcp_pose()[0], atol=1e-6)
    target = np.array(HOME_QPOS) + np.array([0.3, 0.2, 0.0, 0.2, 0.0, 0.0, 0.0])
    for _ in range(30):
        obs, *_ = env.step(np.append(target, 0.02).astype(np.float32))
    assert u.data.ctrl[gripper] == pytest.approx(0.02 / 0.08 * 255, rel=1e-6)
    np.testing.assert_allclose(obs[OBS_STATE][:7], target, atol=0.02)
    assert obs[OBS_STATE][7] == pytest.approx(0.02, abs=0.003)  # two fingers at 0.01 m each


def test_bad_robot_files_say_what_is_wrong(tmp_path):
    with pytest.raises(RobosteerError, match="does not exist"):
        RobotSpec(mjcf=str(tmp_path / "nope.xml"))
    (tmp_path / "notes.xml").write_text("this is not xml")
    with pytest.raises(RobosteerError, match="not a readable MJCF"):
        RobotSpec(mjcf=str(tmp_path / "notes.xml"))
    path = menagerie_shaped(tmp_path / "m")
    with pytest.raises(RobosteerError, match=r"no arm hinge joint\(s\) fr3_joint1.*joint_prefix='joint'"):
        gym.make("robosteer/PickCube-v0", robot_mjcf=str(path))
    for drop, message in (("actuator3", "no actuator drives arm joint joint3"), ("actuator8", "no gripper actuator")):
        with pytest.raises(RobosteerError, match=message):
            RobotSpec(mjcf=RobotMjcf(str(menagerie_shaped(tmp_path / drop, drop)), joint_prefix="joint"))
    motor = tmp_path / "motor.xml"
    motor.write_text(
        re.sub(r'<position name="act2"[^>]*/>', '<motor name="act2" joint="fr3_joint2"/>', robot_document())
    )
    with pytest.raises(RobosteerError, match="actuator act2 is not a position servo"):
        RobotSpec(mjcf=str(motor))
    no_hand = tmp_path / "no_hand.xml"
    no_hand.write_text(re.sub(r'<site name="tcp"[^>]*/>', "", robot_document()).replace('name="hand"', 'name="palm"'))
    with pytest.raises(RobosteerError, match="neither a site 'tcp' nor a body 'hand'"):
        RobotSpec(mjcf=str(no_hand))


def test_record_sim_cli_with_a_robot_file(tmp_path):
    from typer.testing import CliRunner

    from robosteer.cli import app

    path = export_builtin(tmp_path)
    out = tmp_path / "demos"
    args = ["record", "sim", "--task", "press_button", "--episodes", "1", "--image-size", "32", "--images"]
    bad = CliRunner().invoke(app, [*args, "--out", str(out), "--robot-mjcf", str(tmp_path / "missing.xml")])
    assert isinstance(bad.exception, RobosteerError) and "does not exist" in str(bad.exception)
    assert not out.exists()  # checked before anything was written
    good = CliRunner().invoke(app, [*args, "--out", str(out), "--robot-mjcf", str(path)])
    assert good.exit_code == 0, good.output
    assert json.loads((out / "meta" / "info.json").read_text())["total_episodes"] == 1


def test_record_dataset_refuses_a_bad_robot_file_before_writing(tmp_path):
    with pytest.raises(RobosteerError, match="no arm hinge joint"):
        record_dataset(
            "pick_cube", 1, tmp_path / "d", robot_mjcf=str(menagerie_shaped(tmp_path)), progress=False, image_size=32
        )
    assert not (tmp_path / "d").exists()
    assert sim.TASKS  # the suite is still importable and registered
