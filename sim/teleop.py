"""Teleoperation: an input source (keyboard, SpaceMouse, or a scripted sequence) drives the TCP through IK.

Input sources implement ``poll() -> TeleopCommand`` and ``close()``. Keys (keyboard, via pynput): W/S = +x/-x,
A/D = +y/-y, R/F = up/down, Q/E = yaw, Space = open/close gripper, Enter = start an episode / save it,
Backspace = discard it, Esc = quit. SpaceMouse (via pyspacemouse): push/twist to move, left button = gripper,
right button = start/save, both buttons = discard. Speeds live in :class:`TeleopSettings` (``demos/teleop.json``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from robosteer.constants import GRIPPER_MAX_WIDTH
from robosteer.errors import RobosteerError
from sim.ik import DifferentialIK, top_down_rotation

EVENTS = ("start", "save", "discard", "quit", "save_or_start")
"""Events a source may send; ``save_or_start`` (one key/button for both) means save while recording, else start."""


@dataclass
class TeleopSettings:
    """Device speeds and the workspace the TCP is kept in."""

    linear_speed: float = 0.15
    """TCP speed at full deflection / while a key is held [m/s]."""
    yaw_speed: float = 1.0
    """Hand yaw rate at full deflection [rad/s]."""
    spacemouse_deadzone: float = 0.1
    """SpaceMouse axis values below this (of 1.0) are ignored."""
    workspace_low: tuple[float, float, float] = (0.2, -0.4, 0.01)
    """Lower corner of the box the TCP target is clamped to [m]."""
    workspace_high: tuple[float, float, float] = (0.8, 0.4, 0.5)
    """Upper corner of that box [m]."""

    def __post_init__(self):
        if self.linear_speed <= 0 or self.yaw_speed <= 0:
            raise RobosteerError("teleop speeds must be positive; fix linear_speed / yaw_speed")
        if not 0 <= self.spacemouse_deadzone < 1:
            raise RobosteerError("spacemouse_deadzone must be in [0, 1)")
        if np.any(np.asarray(self.workspace_low) >= np.asarray(self.workspace_high)):
            raise RobosteerError("workspace_low must be below workspace_high on every axis")

    @classmethod
    def from_json(cls, path: str | Path) -> TeleopSettings:
        data = json.loads(Path(path).read_text())
        unknown = set(data) - set(asdict(cls()))
        if unknown:
            raise RobosteerError(f"unknown teleop settings {sorted(unknown)} in {path}; valid: {sorted(asdict(cls()))}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


@dataclass
class TeleopCommand:
    """One poll of an input device: velocities in the robot base frame plus at most one event."""

    velocity: np.ndarray = field(default_factory=lambda: np.zeros(3))
    """TCP velocity [m/s] (x forward, y left, z up)."""
    yaw_rate: float = 0.0
    """Hand yaw rate [rad/s]."""
    toggle_gripper: bool = False
    event: str | None = None
    """One of EVENTS (or None)."""

    def __post_init__(self):
        if self.event is not None and self.event not in EVENTS:
            raise RobosteerError(f"unknown teleop event {self.event!r}; use one of {', '.join(EVENTS)}")


class ScriptedSource:
    """Replays a list of commands (one per control step) — for tests and demos without a person."""

    def __init__(self, commands: Iterable[TeleopCommand]):
        self.commands = list(commands)
        self.index = 0

    def poll(self) -> TeleopCommand:
        if self.index >= len(self.commands):
            return TeleopCommand(event="quit")
        self.index += 1
        return self.commands[self.index - 1]

    def close(self) -> None:
        pass


class KeyboardSource:
    """Keyboard through pynput (needs a display); keys held move the arm at ``linear_speed``."""

    MOVES = {"w": (0, 1), "s": (0, -1), "a": (1, 1), "d": (1, -1), "r": (2, 1), "f": (2, -1)}

    def __init__(self, settings: TeleopSettings):
        try:
            from pynput import keyboard
        except Exception as err:  # ImportError, or no X display
            raise RobosteerError(
                f"keyboard teleop needs pynput and a display ({err}); "
                "pip install 'robosteer[teleop]' or use --teleop expert"
            ) from None
        self.keyboard, self.settings = keyboard, settings
        self.held: set[str] = set()
        self.events: list[str] = []
        self.toggles = 0
        self.listener = keyboard.Listener(on_press=self._press, on_release=self._release)
        self.listener.start()

    def _name(self, key) -> str:
        return getattr(key, "char", None) or str(key).removeprefix("Key.")

    def _press(self, key):
        name = self._name(key)
        if name == "space" and name not in self.held:
            self.toggles += 1
        elif name == "enter":
            self.events.append("save_or_start")
        elif name == "backspace":
            self.events.append("discard")
        elif name == "esc":
            self.events.append("quit")
        self.held.add(name)

    def _release(self, key):
        self.held.discard(self._name(key))

    def poll(self) -> TeleopCommand:
        velocity = np.zeros(3)
        for key, (axis, sign) in self.MOVES.items():
            if key in self.held:
                velocity[axis] += sign * self.settings.linear_speed
        yaw = self.settings.yaw_speed * (("q" in self.held) - ("e" in self.held))
        toggle, self.toggles = self.toggles > 0, 0
        event = self.events.pop(0) if self.events else None
        return TeleopCommand(velocity, yaw, toggle, event)

    def close(self) -> None:
        self.listener.stop()


class SpaceMouseSource:
    """3Dconnexion SpaceMouse through pyspacemouse (needs the device and hidapi)."""

    def __init__(self, settings: TeleopSettings):
        try:
            import pyspacemouse

            self.device = pyspacemouse.open()
        except Exception as err:
            raise RobosteerError(
                f"SpaceMouse teleop needs pyspacemouse, hidapi and a connected device ({err}); "
                "pip install 'robosteer[teleop]' or use --teleop keyboard/expert"
            ) from None
        if not self.device:
            raise RobosteerError("no SpaceMouse found; plug it in or use --teleop keyboard/expert")
        self.settings, self.previous_buttons = settings, (0, 0)

    def poll(self) -> TeleopCommand:
        state = self.device.read() if hasattr(self.device, "read") else __import__("pyspacemouse").read()
        dz, s = self.settings.spacemouse_deadzone, self.settings

        def axis(v):
            return 0.0 if abs(v) < dz else float(v)

        velocity = s.linear_speed * np.array([axis(state.y), -axis(state.x), axis(state.z)])
        buttons = tuple(list(state.buttons)[:2]) + (0,) * max(0, 2 - len(state.buttons))
        pressed = [b and not p for b, p in zip(buttons, self.previous_buttons, strict=True)]
        self.previous_buttons = buttons
        event = "discard" if all(buttons) and any(pressed) else ("save_or_start" if pressed[1] else None)
        return TeleopCommand(velocity, -s.yaw_speed * axis(state.yaw), bool(pressed[0]) and event is None, event)

    def close(self) -> None:
        if hasattr(self.device, "close"):
            self.device.close()


def make_input_source(kind: str, settings: TeleopSettings | None = None):
    settings = settings or TeleopSettings()
    if kind == "keyboard":
        return KeyboardSource(settings)
    if kind == "spacemouse":
        return SpaceMouseSource(settings)
    raise RobosteerError(f"unknown input source {kind!r}; use keyboard or spacemouse")


class TeleopController:
    """Integrates velocity commands into a TCP target (top-down hand) and solves IK for joint targets."""

    def __init__(self, env, settings: TeleopSettings | None = None):
        self.env, self.settings = env.unwrapped, settings or TeleopSettings()
        u = self.env
        self.ik = DifferentialIK(u.model, u.ids.arm_qpos, u.ids.arm_dof, u.ids.tcp, u.robot.limits)

    def reset(self) -> None:
        u = self.env
        self.q = u.data.qpos[u.ids.arm_qpos].copy()
        self.position, rot = u.tcp_pose()
        self.yaw = float(np.arctan2(-rot[0, 1], rot[1, 1]))
        self.gripper = GRIPPER_MAX_WIDTH

    def action(self, command: TeleopCommand) -> np.ndarray:
        dt = 1.0 / self.env.fps
        self.position = np.clip(
            self.position + np.asarray(command.velocity) * dt, self.settings.workspace_low, self.settings.workspace_high
        )
        self.yaw += command.yaw_rate * dt
        if command.toggle_gripper:
            self.gripper = 0.0 if self.gripper > GRIPPER_MAX_WIDTH / 2 else GRIPPER_MAX_WIDTH
        self.q = self.ik.solve(self.q, self.position, top_down_rotation(self.yaw))
        return np.append(self.q, self.gripper).astype(np.float32)


def teleop_episodes(
    env,
    writer,
    source,
    n_episodes: int,
    seed: int = 0,
    progress: bool = True,
    teleop_name: str = "scripted",
    show_viewer: bool | None = None,
    settings: TeleopSettings | None = None,
) -> int:
    """Record up to ``n_episodes`` teleoperated episodes; returns how many were saved.

    Idle until a start event; while recording every poll is one control step (frame + action); save/discard end
    the episode (success or the time limit stop the arm and wait for save/discard); quit ends the session.
    A MuJoCo viewer window shows the scene for real devices (``show_viewer`` defaults to: not a ScriptedSource).
    """
    from rich.console import Console

    session = _TeleopSession(env, writer, TeleopController(env, settings), Console(quiet=not progress), seed)
    show_viewer = not isinstance(source, ScriptedSource) if show_viewer is None else show_viewer
    viewer = _open_viewer(env) if show_viewer else None
    try:
        while session.saved < n_episodes:
            tick = time.perf_counter()
            command = source.poll()
            event = command.event
            if event == "save_or_start":
                event = "save" if session.recording else "start"
            if event == "quit":
                break
            if event == "start" and not session.recording:
                session.start()
            elif event in ("save", "discard") and session.recording:
                session.end(save=event == "save", n_episodes=n_episodes, teleop_name=teleop_name)
            elif session.recording and not session.finished:
                session.step(command)
            if viewer is not None and not _show(viewer, env, tick):
                break
    finally:
        writer.discard_episode()
        source.close()
        if viewer is not None:
            viewer.close()
    return session.saved


@dataclass
class _TeleopSession:
    """The state of a teleoperation session: the episode being recorded (if any) and how many were started and
    saved."""

    env: object
    writer: object
    controller: TeleopController
    console: object
    seed: int
    saved: int = 0
    attempt: int = 0
    recording: bool = False
    finished: bool = False
    """The episode ended (success or time limit): the arm waits for save or discard."""
    obs: dict | None = None
    info: dict | None = None

    def start(self) -> None:
        """Reset the scene (seed ``seed + attempt``) and start recording an episode."""
        self.obs, self.info = self.env.reset(seed=self.seed + self.attempt)
        self.attempt += 1
        self.controller.reset()
        self.recording, self.finished = True, False
        self.console.print(f"episode {self.attempt}: {self.info['task']}")

    def end(self, *, save: bool, n_episodes: int, teleop_name: str) -> None:
        """Save the episode with its labels (when asked and it has frames), else discard it."""
        info = self.info
        if save and self.writer.frames:
            self.writer.save_episode(
                {
                    **info["labels"],
                    "seed": self.seed + self.attempt - 1,
                    "teleop": teleop_name,
                    "success": bool(info["is_success"]),
                }
            )
            self.saved += 1
            self.console.print(f"saved episode ({self.saved}/{n_episodes}, success={info['is_success']})")
        else:
            self.writer.discard_episode()
            self.console.print("discarded episode")
        self.recording = False

    def step(self, command: TeleopCommand) -> None:
        """One control step: record the frame with the command's action, then apply it."""
        action = self.controller.action(command)
        self.writer.add_frame(self.obs, action, self.info["task"])
        self.obs, _, terminated, truncated, self.info = self.env.step(action)
        self.finished = terminated or truncated


def _open_viewer(env):
    """A passive MuJoCo viewer window on the env's scene."""
    import mujoco.viewer

    return mujoco.viewer.launch_passive(env.unwrapped.model, env.unwrapped.data)


def _show(viewer, env, tick: float) -> bool:
    """Show the current scene and wait out the rest of the control period begun at ``tick``; False once the
    window is closed."""
    if not viewer.is_running():
        return False
    viewer.sync()
    time.sleep(max(0.0, 1.0 / env.unwrapped.fps - (time.perf_counter() - tick)))
    return True
