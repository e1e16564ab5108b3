"""What a ROS recording is made of: which topics feed which part of a LeRobot frame, and the code that turns
timestamped messages into frames. The live recorder node and ``robosteer convert-bag`` both use
:class:`RecordingSession`, so a bag converts to exactly the frames the live recorder would write.

Never imports rclpy: messages are read by field name (:mod:`robosteer.ros.messages`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from robosteer.constants import ACTION, CAMERAS, FPS, IMAGE_SIZE, OBS_STATE, TASK, image_key
from robosteer.errors import RobosteerError
from robosteer.ros.alignment import FrameAligner
from robosteer.ros.messages import MESSAGE_KINDS, any_image_rgb, arm_from, gripper_from, image_kind, stamp_to_seconds


@dataclass
class TopicSpec:
    """One input topic."""

    topic: str
    """Topic name, e.g. ``/joint_states``."""
    kind: str = "joint_state"
    """How to read it: joint_state, joint_trajectory, float64_array, float or image."""
    scale: float = 1.0
    """Multiplier for gripper values (e.g. 0.0008 turns a 0-100 % command into metres)."""

    def __post_init__(self):
        if not self.topic or not self.topic.strip():
            raise RobosteerError("a topic name is empty; give the full topic, e.g. /joint_states")
        if self.kind not in MESSAGE_KINDS:
            raise RobosteerError(f"unknown message kind {self.kind!r}; use one of {', '.join(MESSAGE_KINDS)}")

    @classmethod
    def parse(cls, value: Any, default_kind: str) -> TopicSpec | None:
        """From a topic string or a ``{topic, kind, scale}`` mapping; empty -> None."""
        if value in (None, "", {}):
            return None
        if isinstance(value, str):
            return cls(topic=value, kind=default_kind)
        if isinstance(value, dict):
            unknown = set(value) - {"topic", "kind", "scale"}
            if unknown:
                raise RobosteerError(f"unknown topic keys {sorted(unknown)}; use topic, kind, scale")
            return cls(
                topic=value.get("topic", ""), kind=value.get("kind", default_kind), scale=float(value.get("scale", 1.0))
            )
        raise RobosteerError(f"cannot read a topic from {value!r}; give a string or {{topic: ..., kind: ...}}")


@dataclass
class RecordingConfig:
    """Topics and sampling of a recording (YAML for convert-bag, ROS parameters for the recorder node)."""

    state: TopicSpec = field(default_factory=lambda: TopicSpec("/joint_states", "joint_state"))
    """Measured arm joints (and the gripper width when it carries finger joints)."""
    action: TopicSpec = field(default_factory=lambda: TopicSpec("/gello/joint_states", "joint_state"))
    """Commanded arm joints: a teleop device (GELLO's gello/joint_states) or the controller's command topic."""
    gripper_state: TopicSpec | None = None
    """Measured gripper width when the state topic has no finger joints (kind float or joint_state)."""
    action_gripper: TopicSpec | None = None
    """Commanded gripper width; when absent, the action topic's gripper value, else the measured width."""
    cameras: dict[str, str] = field(default_factory=lambda: {c: f"/camera/{c}/image_raw" for c in CAMERAS})
    """Camera name -> sensor_msgs/Image topic (``.../compressed``: CompressedImage); keys ``observation.images.<name>``."""
    fps: float = FPS
    """Frame rate of the dataset."""
    max_age_s: float = 0.2
    """A frame is skipped when any stream's newest message is older than this at the tick."""
    image_size: int = IMAGE_SIZE
    """Images are resized to image_size x image_size."""
    task: str = ""
    """Instruction stored with every frame of an episode."""
    use_header_stamp: bool = True
    """Align on header stamps (falls back to receive/log time for messages without a header or a zero stamp)."""

    def __post_init__(self):
        if not self.fps > 0:
            raise RobosteerError(f"fps must be > 0 (got {self.fps})")
        if not self.max_age_s > 0:
            raise RobosteerError(f"max_age_s must be > 0 (got {self.max_age_s}); try 2/fps")
        if self.image_size < 8:
            raise RobosteerError(f"image_size {self.image_size} is too small; use e.g. 96")
        for name, spec in (("state", self.state), ("action", self.action)):
            if spec.kind not in ("joint_state", "joint_trajectory", "float64_array"):
                raise RobosteerError(
                    f"{name} topic kind {spec.kind!r} carries no arm joints; use joint_state, "
                    "joint_trajectory or float64_array"
                )
        for cam in self.cameras:
            if not cam.isidentifier():
                raise RobosteerError(f"camera name {cam!r} must be a plain identifier (e.g. front, wrist)")

    @classmethod
    def from_dict(cls, data: dict) -> RecordingConfig:
        known = {
            "state",
            "action",
            "gripper_state",
            "action_gripper",
            "cameras",
            "fps",
            "max_age_s",
            "image_size",
            "task",
            "use_header_stamp",
        }
        unknown = set(data) - known
        if unknown:
            raise RobosteerError(f"unknown recording keys {sorted(unknown)}; known: {', '.join(sorted(known))}")
        kwargs: dict[str, Any] = {
            k: data[k] for k in ("fps", "max_age_s", "image_size", "task", "use_header_stamp") if k in data
        }
        for key, kind in (
            ("state", "joint_state"),
            ("action", "joint_state"),
            ("gripper_state", "float"),
            ("action_gripper", "float"),
        ):
            if key in data:
                kwargs[key] = TopicSpec.parse(data[key], kind)
        if "cameras" in data:
            cameras = data["cameras"] or {}
            if not isinstance(cameras, dict):
                raise RobosteerError("cameras must map a camera name to a topic, e.g. {front: /camera/front/image_raw}")
            kwargs["cameras"] = {str(k): str(v) for k, v in cameras.items()}
        return cls(**kwargs)

    @classmethod
    def from_yaml(cls, path: str | Path) -> RecordingConfig:
        path = Path(path)
        if not path.is_file():
            raise RobosteerError(f"topic config {path} does not exist; write a YAML file with state/action/cameras")
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise RobosteerError(f"{path} must hold a YAML mapping (state:, action:, cameras:, fps:, ...)")
        return cls.from_dict(data)

    def topics(self) -> dict[str, str]:
        """Every subscribed topic -> its message kind."""
        out = {self.state.topic: self.state.kind, self.action.topic: self.action.kind}
        for spec in (self.gripper_state, self.action_gripper):
            if spec is not None:
                out[spec.topic] = spec.kind
        out.update({topic: image_kind(topic) for topic in self.cameras.values()})
        return out


class RecordingSession:
    """Routes ROS messages of the configured topics into a :class:`FrameAligner` and assembles LeRobot frames.

    ``on_message(topic, msg, receive_time)`` for every message (live callback or bag entry), then
    ``frame_at(t)`` on the frame tick -> a dict with ``observation.state``, ``action``, images and ``task``, or None.
    """

    def __init__(self, config: RecordingConfig):
        self.config = config
        self._routes: dict[str, list[str]] = {}
        self._add_route(config.state.topic, "state")
        self._add_route(config.action.topic, "action")
        if config.gripper_state is not None:
            self._add_route(config.gripper_state.topic, "gripper_state")
        if config.action_gripper is not None:
            self._add_route(config.action_gripper.topic, "action_gripper")
        for cam, topic in config.cameras.items():
            self._add_route(topic, f"image.{cam}")
        streams = [s for names in self._routes.values() for s in names]
        self.aligner = FrameAligner(streams, config.fps, config.max_age_s)

    def _add_route(self, topic: str, stream: str) -> None:
        self._routes.setdefault(topic, []).append(stream)

    def _convert(self, stream: str, msg) -> Any:
        cfg = self.config
        if stream == "state":
            return arm_from(cfg.state.kind, msg), _gripper_or_none(cfg.state.kind, msg, cfg.state.scale)
        if stream == "action":
            return arm_from(cfg.action.kind, msg), _gripper_or_none(cfg.action.kind, msg, cfg.action.scale)
        if stream == "gripper_state":
            return gripper_from(cfg.gripper_state.kind, msg, cfg.gripper_state.scale)
        if stream == "action_gripper":
            return gripper_from(cfg.action_gripper.kind, msg, cfg.action_gripper.scale)
        return any_image_rgb(msg, cfg.image_size)

    def message_time(self, msg, receive_time: float) -> float:
        """Header stamp in seconds when configured and non-zero, else the receive (or bag log) time."""
        header = getattr(msg, "header", None)
        if self.config.use_header_stamp and header is not None:
            t = stamp_to_seconds(header.stamp)
            if t > 0:
                return t
        return float(receive_time)

    def on_message(self, topic: str, msg, receive_time: float) -> None:
        streams = self._routes.get(topic)
        if not streams:
            return
        stamp = self.message_time(msg, receive_time)
        for stream in streams:
            self.aligner.add(stream, stamp, self._convert(stream, msg))

    def frame_at(self, t: float) -> dict[str, Any] | None:
        sample = self.aligner.sample(t)
        if sample is None:
            return None
        arm, gripper = sample["state"]
        if "gripper_state" in sample:
            gripper = sample["gripper_state"]
        if gripper is None:
            raise RobosteerError(
                f"the state topic {self.config.state.topic} has no finger joints; set gripper_state "
                "to the gripper width topic"
            )
        action_arm, action_gripper = sample["action"]
        if "action_gripper" in sample:
            action_gripper = sample["action_gripper"]
        if action_gripper is None:
            action_gripper = gripper
        frame: dict[str, Any] = {
            OBS_STATE: np.concatenate([arm, [gripper]]).astype(np.float32),
            ACTION: np.concatenate([action_arm, [action_gripper]]).astype(np.float32),
            TASK: self.config.task,
        }
        for cam in self.config.cameras:
            frame[image_key(cam)] = sample[f"image.{cam}"]
        return frame

    def reset(self) -> None:
        self.aligner.reset()


def _gripper_or_none(kind: str, msg, scale: float) -> float | None:
    if kind == "joint_trajectory":
        return None
    return gripper_from(kind, msg, scale)
