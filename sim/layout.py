"""Model bookkeeping shared by the tasks: ids of joints/bodies, parking unused free bodies, placing objects, and
the scene-level variation axes (distractors, lighting, camera jitter, table colour)."""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from sim.robot import RobotNames
from sim.scene import PARK_Z, TABLE_TOP_Z
from sim.variations import COLOURS, TABLE_COLOURS

_MUTABLE_FIELDS = (
    "geom_rgba",
    "geom_size",
    "geom_rbound",
    "geom_aabb",
    "geom_contype",
    "geom_conaffinity",
    "body_gravcomp",
    "body_pos",
    "body_quat",
    "light_diffuse",
    "light_dir",
    "cam_pos",
    "cam_quat",
)
WORKSPACE_X = (0.35, 0.7)
WORKSPACE_Y = (-0.28, 0.28)


@dataclass
class FreeBody:
    body: int
    qpos: int
    dof: int
    geoms: list[int]


class SceneIds:
    """Indices into the model for the arm, the hand and every free body."""

    def __init__(self, model: mujoco.MjModel, names: RobotNames):
        self.arm_qpos = np.array([model.jnt_qposadr[model.joint(j).id] for j in names.arm_joints])
        self.arm_dof = np.array([model.jnt_dofadr[model.joint(j).id] for j in names.arm_joints])
        self.finger_qpos = np.array([model.jnt_qposadr[model.joint(f).id] for f in names.finger_joints])
        self.tcp = model.site(names.tcp_site).id
        self.cameras = {"front": "front", "wrist": names.wrist_camera}
        """Camera name in the observation -> camera name in the model."""
        self.free: dict[str, FreeBody] = {}
        for j in range(model.njnt):
            if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE:
                b = int(model.jnt_bodyid[j])
                geoms = [g for g in range(model.ngeom) if model.geom_bodyid[g] == b]
                self.free[model.body(b).name] = FreeBody(b, int(model.jnt_qposadr[j]), int(model.jnt_dofadr[j]), geoms)


def snapshot_defaults(model: mujoco.MjModel) -> dict[str, np.ndarray]:
    return {name: getattr(model, name).copy() for name in _MUTABLE_FIELDS}


def restore_defaults(model: mujoco.MjModel, defaults: dict[str, np.ndarray]) -> None:
    for name, value in defaults.items():
        getattr(model, name)[:] = value


def park_free_bodies(model: mujoco.MjModel, data: mujoco.MjData, ids: SceneIds) -> None:
    """Hide every free body below the table: no collisions, no gravity, invisible."""
    for i, fb in enumerate(ids.free.values()):
        data.qpos[fb.qpos : fb.qpos + 7] = (-0.5 + 0.15 * i, -1.0, PARK_Z, 1, 0, 0, 0)
        model.body_gravcomp[fb.body] = 1.0
        for g in fb.geoms:
            model.geom_contype[g] = model.geom_conaffinity[g] = 0
            model.geom_rgba[g, 3] = 0.0


def place_free_body(env, name: str, xy, z: float, yaw: float = 0.0, rgba=None) -> None:
    """Make a parked free body live at (x, y, z) with a yaw about world z, optionally recoloured."""
    fb = env.ids.free[name]
    quat = (np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2))
    env.data.qpos[fb.qpos : fb.qpos + 7] = (xy[0], xy[1], z, *quat)
    env.data.qvel[fb.dof : fb.dof + 6] = 0.0
    env.model.body_gravcomp[fb.body] = 0.0
    for g in fb.geoms:
        env.model.geom_contype[g] = env.model.geom_conaffinity[g] = 1
        env.model.geom_rgba[g] = (*rgba, 1.0) if rgba is not None else env.defaults["geom_rgba"][g]


def set_geom_size(model: mujoco.MjModel, geom: int, size) -> None:
    """Resize a primitive geom at run time, keeping its collision bounds consistent."""
    size = np.asarray(size, dtype=float)
    model.geom_size[geom, : len(size)] = size
    gtype, s = model.geom_type[geom], model.geom_size[geom]
    if gtype == mujoco.mjtGeom.mjGEOM_SPHERE:
        half = np.array([s[0]] * 3)
    elif gtype == mujoco.mjtGeom.mjGEOM_CYLINDER:
        half = np.array([s[0], s[0], s[1]])
    else:
        half = s.copy()
    model.geom_rbound[geom] = np.linalg.norm(half) if gtype != mujoco.mjtGeom.mjGEOM_SPHERE else s[0]
    model.geom_aabb[geom] = (0, 0, 0, *half)


def sample_free_xy(
    rng: np.random.Generator,
    occupied: list[tuple[np.ndarray, float]],
    radius: float,
    x_range=WORKSPACE_X,
    y_range=WORKSPACE_Y,
    tries: int = 200,
) -> np.ndarray:
    """A table position at least ``radius`` + the other radius away from every occupied disc."""
    for _ in range(tries):
        xy = np.array([rng.uniform(*x_range), rng.uniform(*y_range)])
        if all(np.linalg.norm(xy - o) > radius + r for o, r in occupied):
            return xy
    raise RuntimeError("could not place an object without overlap; the workspace is too crowded")


def apply_scene_variations(env, rng: np.random.Generator) -> dict:
    """Distractors, lighting, camera jitter and table colour, as the env's VariationConfig asks; returns labels."""
    cfg, model, labels = env.variations, env.model, {}
    n = int(rng.integers(0, cfg.n_distractors_max + 1)) if cfg.n_distractors_max else 0
    choices = [c for c in COLOURS if c != env.labels.get("colour_name")]
    for i in range(n):
        xy = sample_free_xy(rng, env.occupied, 0.035, x_range=(0.3, 0.72), y_range=(-0.32, 0.32))
        env.occupied.append((xy, 0.035))
        colour = choices[int(rng.integers(len(choices)))]
        half_z = model.geom_size[env.ids.free[f"distractor{i}"].geoms[0]][1 if i == 1 else 2]
        place_free_body(env, f"distractor{i}", xy, TABLE_TOP_Z + half_z, rng.uniform(-np.pi, np.pi), COLOURS[colour])
    labels["n_distractors"] = n

    key = model.light("key").id
    intensity = 0.7
    if cfg.lighting:
        intensity = float(rng.uniform(0.2, 1.2))
        tint = rng.uniform(0.7, 1.0, size=3)
        direction = np.array([rng.uniform(-0.8, 0.8), rng.uniform(-0.8, 0.8), -1.0])
        model.light_diffuse[key] = intensity * tint / tint.max()
        model.light_dir[key] = direction / np.linalg.norm(direction)
    labels["light_intensity"] = round(intensity, 4)

    labels["camera_jitter"] = int(cfg.camera_jitter)
    if cfg.camera_jitter:
        cam = model.camera("front").id
        model.cam_pos[cam] += rng.uniform(-0.04, 0.04, size=3)
        axis = rng.normal(size=3)
        angle = np.deg2rad(rng.uniform(0, 4))
        dq = np.concatenate([[np.cos(angle / 2)], np.sin(angle / 2) * axis / np.linalg.norm(axis)])
        out = np.zeros(4)
        mujoco.mju_mulQuat(out, dq, model.cam_quat[cam])
        model.cam_quat[cam] = out

    table_id = int(rng.integers(len(TABLE_COLOURS))) if cfg.table_colour else 0
    model.geom_rgba[model.geom("table").id, :3] = TABLE_COLOURS[table_id]
    labels["table_colour_id"] = table_id
    return labels
