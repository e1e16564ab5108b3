"""The tabletop tasks: what is on the table, how it is sampled, the instruction, and success.

Pretraining tasks: pick_cube, push_cube, press_button. Held out: place_cube. Unseen-task transfer: pick_mug.
reach_bowl (move above the bowl named by its colour) localises a goal receptacle; no shipped base trains on it yet.
``info["labels"]`` has the same keys for every task (target_x/y is the object itself for pick tasks).
"""

from __future__ import annotations

import numpy as np

from sim.env import FrankaTabletopEnv
from sim.layout import WORKSPACE_X, WORKSPACE_Y, place_free_body, sample_free_xy, set_geom_size
from sim.scene import OBJECT_HALF, TABLE_TOP_Z
from sim.variations import COLOURS, FORMS, OBJECT_COLOURS

FORM_WORDS = {
    "cube": "cube",
    "cylinder": "cylinder",
    "sphere": "ball",
    "mug": "mug",
    "button": "button",
    "bowl": "bowl",
}
NOMINAL_X, NOMINAL_Y = (0.45, 0.55), (-0.08, 0.08)
BOWL_RGBA = (0.9, 0.9, 0.95, 1.0)
"""The white of place_cube's bowl."""


def bowl_mjcf(name: str, radius: float, xy: tuple[float, float]) -> str:
    """A shallow bowl (a disc and 12 wall segments) as a mocap body, so that a reset can move it."""
    rgba = " ".join(str(c) for c in BOWL_RGBA)
    walls = "".join(
        f'<geom type="box" pos="{radius * np.cos(a):.4f} {radius * np.sin(a):.4f} 0.018"'
        f' euler="0 0 {a:.4f}" size="0.005 0.02 0.018" rgba="{rgba}"/>'
        for a in np.linspace(0, 2 * np.pi, 12, endpoint=False)
    )
    return (
        f'<body name="{name}" mocap="true" pos="{xy[0]} {xy[1]} 0"><geom type="cylinder" pos="0 0 0.003"'
        f' size="{radius} 0.003" rgba="{rgba}"/>{walls}</body>'
    )


class TabletopTask(FrankaTabletopEnv):
    """Shared sampling of the manipulated thing (colour, form, size, pose) and of the instruction."""

    canonical = "{colour} {object}"
    train_paraphrases: tuple[str, ...] = ()
    heldout_paraphrases: tuple[str, ...] = ()
    fixed_form: str | None = None
    forms: tuple[str, ...] = FORMS
    """Forms the object_form variation samples from."""

    def _sample_instruction(self, rng, colour: str, form: str) -> dict:
        cfg = self.variations.paraphrase
        templates = {
            "canonical": (self.canonical,),
            "train": self.train_paraphrases,
            "heldout": self.heldout_paraphrases,
        }[cfg]
        pid = int(rng.integers(len(templates)))
        self.instruction = templates[pid].format(colour=colour, object=FORM_WORDS[form])
        return {"paraphrase_set": cfg, "paraphrase_id": pid}

    def _sample_appearance(self, rng) -> tuple[str, str, float]:
        cfg = self.variations
        colour = OBJECT_COLOURS[int(rng.integers(len(OBJECT_COLOURS)))] if cfg.colour else "red"
        form = self.fixed_form or (self.forms[int(rng.integers(len(self.forms)))] if cfg.form else "cube")
        half = float(rng.uniform(0.017, 0.024)) if cfg.form and not self.fixed_form else OBJECT_HALF
        return colour, form, half

    def _sample_xy(self, rng, radius: float) -> np.ndarray:
        wide = self.variations.wide_positions
        xr, yr = (WORKSPACE_X, WORKSPACE_Y) if wide else (NOMINAL_X, NOMINAL_Y)
        return sample_free_xy(rng, self.occupied, radius, x_range=xr, y_range=yr)

    def _place_object(self, rng) -> dict:
        """Put the manipulated object on the table; returns its labels."""
        self.occupied = []
        colour, form, half = self._sample_appearance(rng)
        xy = self._sample_xy(rng, 0.04)
        yaw = float(rng.uniform(-np.pi / 4, np.pi / 4)) if form in ("cube", "mug") else 0.0
        self.object_name, self.object_half, self.object_form = f"obj_{form}", half, form
        if form == "mug":
            self.object_name = "mug"
        else:
            set_geom_size(self.model, self.ids.free[self.object_name].geoms[0], [half, half, half])
        self.object_rest_z = TABLE_TOP_Z + (self.mug_half_height if form == "mug" else half)
        place_free_body(self, self.object_name, xy, self.object_rest_z, yaw, COLOURS[colour])
        self.object_yaw = yaw
        self.occupied.append((xy, 0.05))
        return self._appearance_labels(colour, form, half, xy, yaw)

    def _appearance_labels(self, colour, form, half, xy, yaw) -> dict:
        bx = int(np.clip((xy[0] - WORKSPACE_X[0]) / (WORKSPACE_X[1] - WORKSPACE_X[0]) * 3, 0, 2))
        by = int(np.clip((xy[1] - WORKSPACE_Y[0]) / (WORKSPACE_Y[1] - WORKSPACE_Y[0]) * 3, 0, 2))
        return {
            "colour_id": list(COLOURS).index(colour),
            "colour_name": colour,
            "form": form,
            "object_size": round(2 * half, 4),
            "object_x": round(float(xy[0]), 4),
            "object_y": round(float(xy[1]), 4),
            "object_yaw": round(float(yaw), 4),
            "position_bin": 3 * bx + by,
        }

    def move_fixture(self, body: str, xy) -> None:
        """Move a fixture (a mocap body: static bodies are not re-posed once the model sleeps) on the table."""
        self.data.mocap_pos[self.model.body_mocapid[self.model.body(body).id], :2] = xy

    def object_pos(self) -> np.ndarray:
        return self.data.xpos[self.ids.free[self.object_name].body].copy()

    def object_xmat(self) -> np.ndarray:
        return self.data.xmat[self.ids.free[self.object_name].body].reshape(3, 3).copy()

    def gripper_width(self) -> float:
        return float(self.data.qpos[self.ids.finger_qpos].sum())


class PickCube(TabletopTask):
    """Pick up the object and lift it 6 cm."""

    task_name = "pick_cube"
    canonical = "pick up the {colour} {object}"
    train_paraphrases = (
        "grab the {colour} {object} and lift it",
        "lift the {colour} {object} off the table",
        "pick the {colour} {object} up",
        "take the {colour} {object} and raise it",
    )
    heldout_paraphrases = (
        "raise the {colour} {object} into the air",
        "get hold of the {colour} {object} and hold it up",
    )
    lift_height = 0.06

    def _sample_task(self, rng):
        labels = self._place_object(rng)
        self.target_xy = np.array([labels["object_x"], labels["object_y"]])
        labels.update(target_x=labels["object_x"], target_y=labels["object_y"])
        return {**labels, **self._sample_instruction(rng, labels["colour_name"], labels["form"])}

    def _is_success(self):
        return bool(self.object_pos()[2] > self.object_rest_z + self.lift_height)


class PickMug(PickCube):
    """Unseen-task transfer: pick up a mug (a cylinder with a handle) and lift it 6 cm."""

    task_name = "pick_mug"
    fixed_form = "mug"
    mug_half_height = 0.045
    canonical = "pick up the {colour} mug"
    train_paraphrases = ("lift the {colour} mug", "grab the {colour} mug and raise it", "take the {colour} mug")
    heldout_paraphrases = ("raise the {colour} cup off the table", "get hold of the {colour} mug and hold it up")

    def task_bodies(self):
        rgba = 'rgba="0.85 0.12 0.1 1"'
        return (
            '<body name="mug" pos="0 -1.5 -0.5"><freejoint name="mug_joint"/>'
            f'<geom name="mug_body" type="cylinder" size="0.03 {self.mug_half_height}" {rgba} mass="0.08"'
            ' friction="1.2 0.01 0.001" condim="6"/>'
            f'<geom name="mug_handle" type="box" pos="0.042 0 0.005" size="0.012 0.006 0.025" {rgba} mass="0.01"/>'
            "</body>"
        )


class PushCube(TabletopTask):
    """Push the object into a circular target zone (success when its centre is within 4 cm of the zone centre)."""

    task_name = "push_cube"
    canonical = "push the {colour} {object} into the target zone"
    train_paraphrases = (
        "slide the {colour} {object} to the marked zone",
        "shove the {colour} {object} onto the target",
        "push the {colour} {object} to the circle",
    )
    heldout_paraphrases = (
        "nudge the {colour} {object} until it sits on the target patch",
        "move the {colour} {object} into the zone by pushing it",
    )
    zone_radius = 0.04

    def task_bodies(self):
        return (
            '<body name="goal" mocap="true" pos="0.5 0.15 0.0005"><geom name="goal_geom" type="cylinder" size="0.05 0.0005"'
            ' rgba="0.2 0.8 0.3 0.6" contype="0" conaffinity="0"/></body>'
        )

    def _sample_task(self, rng):
        labels = self._place_object(rng)
        xy = np.array([labels["object_x"], labels["object_y"]])
        for _ in range(100):
            angle = rng.uniform(-np.pi, np.pi)
            goal = xy + rng.uniform(0.12, 0.18) * np.array([np.cos(angle), np.sin(angle)])
            if WORKSPACE_X[0] - 0.03 <= goal[0] <= WORKSPACE_X[1] and abs(goal[1]) <= WORKSPACE_Y[1]:
                break
        self.target_xy = goal
        self.move_fixture("goal", goal)
        self.occupied.append((goal, 0.05))
        labels.update(target_x=round(float(goal[0]), 4), target_y=round(float(goal[1]), 4))
        return {**labels, **self._sample_instruction(rng, labels["colour_name"], labels["form"])}

    def _is_success(self):
        return bool(np.linalg.norm(self.object_pos()[:2] - self.target_xy) < self.zone_radius)


class PressButton(TabletopTask):
    """Press a spring-loaded button down by at least 8 mm."""

    task_name = "press_button"
    uses_object = False
    fixed_form = "button"
    canonical = "press the {colour} button"
    train_paraphrases = (
        "push the {colour} button down",
        "hit the {colour} button",
        "press down on the {colour} button",
    )
    heldout_paraphrases = ("activate the {colour} button", "give the {colour} button a press")
    button_top = 0.045

    def task_bodies(self):
        return (
            '<body name="button_base" mocap="true" pos="0.5 0 0.015"><geom type="box" size="0.04 0.04 0.015" rgba="0.3 0.3 0.3 1" contype="2" conaffinity="1"/>'
            '<body name="button_cap" pos="0 0 0.022"><joint name="button_joint" type="slide" axis="0 0 1"'
            ' range="-0.016 0" stiffness="200" damping="4" springref="0"/>'
            '<geom name="button_geom" type="cylinder" size="0.025 0.008" rgba="0.85 0.12 0.1 1" mass="0.02"'
            ' contype="4" conaffinity="1"/>'
            "</body></body>"
        )

    def _sample_task(self, rng):
        self.occupied = []
        colour, _, _ = self._sample_appearance(rng)
        xy = self._sample_xy(rng, 0.06)
        self.occupied.append((xy, 0.06))
        self.move_fixture("button_base", xy)
        self.model.geom_rgba[self.model.geom("button_geom").id] = (*COLOURS[colour], 1.0)
        self.target_xy, self.object_half, self.object_yaw = xy, 0.025, 0.0
        labels = self._appearance_labels(colour, "button", 0.025, xy, 0.0)
        labels.update(target_x=labels["object_x"], target_y=labels["object_y"])
        return {**labels, **self._sample_instruction(rng, colour, "button")}

    def button_depth(self) -> float:
        return float(-self.data.qpos[self.model.jnt_qposadr[self.model.joint("button_joint").id]])

    def _is_success(self):
        return self.button_depth() > 0.008


class PlaceCube(TabletopTask):
    """Held out: put the object into a bowl (inside the rim, resting, released)."""

    task_name = "place_cube"
    canonical = "put the {colour} {object} in the bowl"
    train_paraphrases = (
        "place the {colour} {object} into the bowl",
        "drop the {colour} {object} in the bowl",
        "move the {colour} {object} into the bowl",
    )
    heldout_paraphrases = (
        "transfer the {colour} {object} to the bowl",
        "set the {colour} {object} down inside the bowl",
    )
    bowl_radius = 0.07
    nominal_bowl_x = (0.45, 0.55)
    """Bowl centre range [m] without the ``position`` variation: 10 x 6 cm beside the object's nominal region."""
    nominal_bowl_y = (0.20, 0.26)

    def task_bodies(self):
        return bowl_mjcf("bowl", self.bowl_radius, (0.5, 0.15))

    def _sample_task(self, rng):
        labels = self._place_object(rng)
        if self.variations.wide_positions or self.variations.wide_goals:
            goal = sample_free_xy(rng, self.occupied, 0.09, x_range=WORKSPACE_X, y_range=(-0.25, 0.25))
        else:  # a nominal region, like every pretraining object: wide goals belong to the `position` variation
            goal = sample_free_xy(rng, self.occupied, 0.07, x_range=self.nominal_bowl_x, y_range=self.nominal_bowl_y)
        self.target_xy = goal
        self.move_fixture("bowl", goal)
        self.occupied.append((goal, 0.09))
        labels.update(target_x=round(float(goal[0]), 4), target_y=round(float(goal[1]), 4))
        return {**labels, **self._sample_instruction(rng, labels["colour_name"], labels["form"])}

    def _is_success(self):
        pos = self.object_pos()
        inside = np.linalg.norm(pos[:2] - self.target_xy) < self.bowl_radius - 0.015
        resting = pos[2] < 0.006 + self.object_half + 0.01
        released = self.gripper_width() > 2 * self.object_half + 0.01
        return bool(inside and resting and released)


class ReachBowl(TabletopTask):
    """Move the open hand above the bowl the instruction names by colour (another bowl is on the table too)."""

    task_name = "reach_bowl"
    uses_object = False
    canonical = "move above the {colour} bowl"
    train_paraphrases = (
        "go to the {colour} bowl",
        "hold the gripper over the {colour} bowl",
        "move the hand above the {colour} bowl",
        "reach over the {colour} bowl",
    )
    heldout_paraphrases = ("put the gripper above the {colour} bowl", "bring the gripper over the {colour} bowl")
    bowl_radius = PlaceCube.bowl_radius
    bowl_colours = ("white", *OBJECT_COLOURS)
    """Colours a bowl may take; without the ``colour`` variation the named bowl is white, like place_cube's."""
    hover_z = (0.04, 0.16)
    """Heights [m] above the table at which the hand counts as above a bowl."""
    hover_radius = 0.03
    """Horizontal distance [m] from the named bowl's centre within which the hand counts as above it."""
    bowl_y = (-0.25, 0.25)

    def task_bodies(self):
        return bowl_mjcf("bowl", self.bowl_radius, (0.5, 0.15)) + bowl_mjcf(
            "other_bowl", self.bowl_radius, (0.5, -0.15)
        )

    def _sample_task(self, rng):
        self.occupied = []
        colours = self.bowl_colours if self.variations.colour else self.bowl_colours[:1]
        colour = colours[int(rng.integers(len(colours)))]
        others = [c for c in self.bowl_colours if c != colour]
        other = others[int(rng.integers(len(others)))]
        bowl_xy = {}
        for body, name in (("bowl", colour), ("other_bowl", other)):
            bowl_xy[body] = sample_free_xy(rng, self.occupied, 0.09, x_range=WORKSPACE_X, y_range=self.bowl_y)
            self.move_fixture(body, bowl_xy[body])
            self._paint_body(body, name)
            self.occupied.append((bowl_xy[body], 0.09))
        self.target_xy, self.object_half, self.object_yaw = bowl_xy["bowl"], self.bowl_radius, 0.0
        labels = self._appearance_labels(colour, "bowl", self.bowl_radius, self.target_xy, 0.0)
        labels.update(target_x=labels["object_x"], target_y=labels["object_y"])
        return {**labels, **self._sample_instruction(rng, colour, "bowl")}

    def _paint_body(self, body: str, colour: str) -> None:
        rgba = BOWL_RGBA if colour == "white" else (*COLOURS[colour], 1.0)
        body_id = self.model.body(body).id
        self.model.geom_rgba[self.model.geom_bodyid == body_id] = rgba

    def _is_success(self):
        tcp = self.tcp_pose()[0]
        above = np.linalg.norm(tcp[:2] - self.target_xy) < self.hover_radius
        return bool(above and self.hover_z[0] < tcp[2] - TABLE_TOP_Z < self.hover_z[1])
