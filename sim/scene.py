"""The tabletop scene around the arm: table, lights, cameras, the manipulated object (one body per form) and
distractors. Tasks add their own fixtures (button, bowl, goal zone, mug) as extra XML."""

from __future__ import annotations

import mujoco
import numpy as np

from sim.robot import RobotNames, RobotSpec, robot_mjcf
from sim.robot_file import attach_robot, compile_scene

MAX_TIMESTEP = 0.005
"""Largest physics step [s]; the env runs n = ceil(1 / (fps * MAX_TIMESTEP)) steps of 1 / (fps * n) s per action."""
TABLE_TOP_Z = 0.0
"""The arm stands on the table; its base is the world origin."""
FRONT_CAMERA_POS = np.array([1.0, 0.0, 0.5])
FRONT_CAMERA_TARGET = np.array([0.45, 0.0, 0.02])
PARK_Z = -0.5
"""Unused free bodies wait here, below the table, without collisions or gravity."""
N_DISTRACTORS = 3
OBJECT_HALF = 0.02
"""Nominal half-size of the manipulated object [m] (a 4 cm cube)."""


def lookat_xyaxes(pos: np.ndarray, target: np.ndarray) -> str:
    """MJCF ``xyaxes`` for a camera at ``pos`` looking at ``target`` with world z up."""
    z = pos - target
    z = z / np.linalg.norm(z)
    x = np.cross([0.0, 0.0, 1.0], z)
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    return " ".join(f"{v:.6f}" for v in (*x, *y))


def _free_body(name: str, geom: str, idx: int) -> str:
    return f'<body name="{name}" pos="{-0.5 + 0.15 * idx} -1 {PARK_Z}"><freejoint name="{name}_joint"/>{geom}</body>'


def object_bodies() -> str:
    """One free body per object form; the env activates one and parks the others."""
    h = OBJECT_HALF
    props = 'rgba="0.85 0.12 0.1 1" mass="0.1" friction="1.2 0.01 0.001" condim="6"'
    forms = {
        "cube": f'<geom name="obj_cube_geom" type="box" size="{h} {h} {h}" {props}/>',
        "cylinder": f'<geom name="obj_cylinder_geom" type="cylinder" size="{h} {h}" {props}/>',
        "sphere": f'<geom name="obj_sphere_geom" type="sphere" size="{h}" {props} solref="0.01 1"/>',
    }
    return "".join(_free_body(f"obj_{form}", geom, i) for i, (form, geom) in enumerate(forms.items()))


def distractor_bodies() -> str:
    shapes = (
        'type="box" size="0.02 0.02 0.02"',
        'type="cylinder" size="0.02 0.025"',
        'type="box" size="0.03 0.015 0.015"',
    )
    return "".join(
        _free_body(
            f"distractor{i}", f'<geom name="distractor{i}_geom" {shape} rgba="0.5 0.5 0.5 1" mass="0.05"/>', 5 + i
        )
        for i, shape in enumerate(shapes[:N_DISTRACTORS])
    )


def build_scene(
    task_bodies: str, robot: RobotSpec, image_size: int, with_objects: bool = True
) -> tuple[mujoco.MjModel, RobotNames]:
    """The compiled scene and the names of the robot's joints, TCP site and wrist camera in it."""
    xml = scene_mjcf(task_bodies, robot, image_size, with_objects)
    if robot.mjcf is None:
        return mujoco.MjModel.from_xml_string(xml), robot.names
    scene = mujoco.MjSpec.from_string(xml)
    names = attach_robot(scene, robot.mjcf, robot.joints)
    return compile_scene(scene, robot.mjcf), names


def scene_mjcf(task_bodies: str, robot: RobotSpec, image_size: int, with_objects: bool = True) -> str:
    """The whole MJCF: robot, table, lights, cameras, objects, distractors, plus the task's own bodies (the robot is
    left out when it comes from a file: :func:`build_scene` attaches it)."""
    arm, actuators, extra = robot_mjcf(robot) if robot.mjcf is None else ("", "", "")
    off = max(image_size, 640)
    objects = object_bodies() if with_objects else ""
    return f"""
<mujoco model="robosteer_franka_table">
  <compiler angle="radian" autolimits="true"/>
  <!-- libccd rather than MuJoCo's native CCD: with native CCD a cylinder held between the flat finger pads creeps
       out of the grip while carried (scripted expert, place_cube with cylinders, object_form, seeds 0-39: 18/40
       successes with native CCD, 40/40 with libccd) -->
  <option timestep="{MAX_TIMESTEP}" integrator="implicitfast" cone="elliptic" impratio="10">
    <flag nativeccd="disable"/>
  </option>
  <visual>
    <global offwidth="{off}" offheight="{off}"/>
    <quality shadowsize="0" offsamples="0"/>
    <headlight ambient="0.35 0.35 0.35" diffuse="0.3 0.3 0.3" specular="0 0 0"/>
    <rgba haze="0.15 0.18 0.22 1"/>
  </visual>
  <worldbody>
    <geom name="floor" type="plane" pos="0 0 -0.75" size="3 3 0.1" rgba="0.3 0.32 0.35 1" contype="0" conaffinity="0"/>
    <!-- the table is drawn as a box but collides as a plane (group 3, not rendered): objects rest on it through
         MuJoCo's dedicated plane colliders, never through CCD (libccd lets a pushed cylinder sink into a box) -->
    <geom name="table" type="box" pos="0.45 0 -0.02" size="0.6 0.75 0.02" rgba="0.62 0.5 0.38 1"
          contype="0" conaffinity="0"/>
    <geom name="table_surface" type="plane" pos="0.45 0 0" size="0.6 0.75 0.1" group="3" friction="0.8 0.01 0.001"/>
    <!-- a mocap rig keeps the camera and light re-posed every step even when the model sleeps -->
    <body name="rig" mocap="true" pos="0 0 0">
    <light name="key" directional="true" pos="0.5 0.5 2" dir="-0.3 -0.3 -1" diffuse="0.7 0.7 0.7" specular="0 0 0"
           castshadow="false"/>
    <camera name="front" pos="{" ".join(map(str, FRONT_CAMERA_POS))}"
            xyaxes="{lookat_xyaxes(FRONT_CAMERA_POS, FRONT_CAMERA_TARGET)}" fovy="55"/>
    </body>
    {arm}
    {objects}
    {distractor_bodies()}
    {task_bodies}
  </worldbody>
  {extra}
  <actuator>{actuators}</actuator>
</mujoco>
"""
