"""ROS message contents -> robosteer arrays, read by field name so the same code serves rclpy messages (live nodes)
and rosbags' deserialised messages (bag import). Never imports rclpy.

Conventions (robosteer/constants.py): arm joints ``fr3_joint1..7`` or ``panda_joint1..7``; gripper width in metres is
the sum of the two finger joint positions (each finger travels half the opening).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from robosteer.constants import GRIPPER_MAX_WIDTH, JOINT_PREFIXES, N_ARM_JOINTS
from robosteer.errors import RobosteerError

MESSAGE_KINDS = ("joint_state", "joint_trajectory", "float64_array", "float", "float32", "image", "compressed_image")
"""How a stream's messages are read: sensor_msgs/JointState, trajectory_msgs/JointTrajectory,
std_msgs/Float64MultiArray, std_msgs/Float64, std_msgs/Float32 (e.g. GELLO's gripper), sensor_msgs/Image."""

ROS_TYPE_OF_KIND = {
    "joint_state": "sensor_msgs/msg/JointState",
    "joint_trajectory": "trajectory_msgs/msg/JointTrajectory",
    "float64_array": "std_msgs/msg/Float64MultiArray",
    "float": "std_msgs/msg/Float64",
    "float32": "std_msgs/msg/Float32",
    "image": "sensor_msgs/msg/Image",
    "compressed_image": "sensor_msgs/msg/CompressedImage",
}


def image_kind(topic: str) -> str:
    """``compressed_image`` for image_transport's ``.../compressed`` topics, else ``image``."""
    return "compressed_image" if topic.rstrip("/").endswith("/compressed") else "image"


def stamp_to_seconds(stamp) -> float:
    """builtin_interfaces/Time -> float seconds."""
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def seconds_to_stamp_parts(t: float) -> tuple[int, int]:
    """Float seconds -> (sec, nanosec) for builtin_interfaces/Time."""
    ns = int(round(t * 1e9))
    return ns // 1_000_000_000, ns % 1_000_000_000


def arm_joint_indices(names: Sequence[str]) -> list[int] | None:
    """Indices of joints 1..7 in ``names`` for the first naming scheme fully present (fr3 then panda), else None.

    Names may carry a namespace prefix (``left/fr3_joint1``); only the suffix is matched.
    """
    bare = [n.rsplit("/", 1)[-1] for n in names]
    for prefix in JOINT_PREFIXES:
        wanted = [f"{prefix}{i}" for i in range(1, N_ARM_JOINTS + 1)]
        if all(w in bare for w in wanted):
            return [bare.index(w) for w in wanted]
    return None


def finger_width(names: Sequence[str], positions: Sequence[float]) -> float | None:
    """Gripper opening in metres from ``*_finger_joint1/2`` (sum of both; one finger doubled), else None."""
    fingers = [p for n, p in zip(names, positions, strict=False) if "finger_joint" in n]
    if not fingers:
        return None
    return float(sum(fingers[:2]) if len(fingers) >= 2 else 2.0 * fingers[0])


def joint_state_arm(msg) -> np.ndarray:
    """sensor_msgs/JointState -> (7,) float64 arm joint positions in joint order 1..7."""
    names = list(msg.name)
    positions = np.asarray(msg.position, dtype=np.float64)
    if names:
        index = arm_joint_indices(names)
        if index is None:
            raise RobosteerError(
                f"joint state has no complete fr3_joint1..7 or panda_joint1..7 set (names: {names}); "
                "remap the topic or publish the arm joints"
            )
        return positions[index]
    if positions.shape[0] < N_ARM_JOINTS:
        raise RobosteerError(f"unnamed joint state has {positions.shape[0]} positions; 7 arm joints are needed")
    return positions[:N_ARM_JOINTS]


def joint_state_gripper(msg) -> float | None:
    """Gripper width [m] from a JointState's finger joints, or None when it has none."""
    return finger_width(list(msg.name), list(msg.position))


def joint_trajectory_arm(msg) -> np.ndarray:
    """trajectory_msgs/JointTrajectory -> (7,) positions of its first point, in joint order 1..7."""
    if not msg.points:
        raise RobosteerError("joint trajectory without points; the command topic must carry at least one point")
    positions = np.asarray(msg.points[0].positions, dtype=np.float64)
    index = arm_joint_indices(list(msg.joint_names))
    if index is None:
        raise RobosteerError(f"trajectory joint names {list(msg.joint_names)} lack fr3_joint1..7 / panda_joint1..7")
    return positions[index]


def float_array_values(msg) -> np.ndarray:
    """std_msgs/Float64MultiArray -> its data as float64."""
    return np.asarray(msg.data, dtype=np.float64)


def arm_from(kind: str, msg) -> np.ndarray:
    """(7,) arm joint positions of a message of ``kind`` (see :data:`MESSAGE_KINDS`)."""
    if kind == "joint_state":
        return joint_state_arm(msg)
    if kind == "joint_trajectory":
        return joint_trajectory_arm(msg)
    if kind == "float64_array":
        values = float_array_values(msg)
        if values.shape[0] < N_ARM_JOINTS:
            raise RobosteerError(f"Float64MultiArray with {values.shape[0]} values; 7 arm joint values are needed")
        return values[:N_ARM_JOINTS]
    raise RobosteerError(
        f"message kind {kind!r} carries no arm joints; use joint_state, joint_trajectory or float64_array"
    )


def gripper_from(kind: str, msg, scale: float = 1.0) -> float | None:
    """Gripper width [m] of a message of ``kind``; ``scale`` converts units (e.g. 0.0008 for a 0-100 % command).

    float64_array messages give their 8th value (a robosteer action), joint states their finger joints.
    """
    if kind in ("float", "float32"):
        value = float(msg.data)
    elif kind == "joint_state":
        width = joint_state_gripper(msg)
        if width is None:
            return None
        value = width
    elif kind == "float64_array":
        values = float_array_values(msg)
        if values.shape[0] <= N_ARM_JOINTS:
            return None
        value = float(values[N_ARM_JOINTS])
    else:
        raise RobosteerError(f"message kind {kind!r} carries no gripper width; use float, joint_state or float64_array")
    return float(np.clip(value * scale, 0.0, GRIPPER_MAX_WIDTH))


_CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1, "8uc3": 3, "8uc1": 1}


def compressed_image_rgb(msg, size: int | None = None) -> np.ndarray:
    """sensor_msgs/CompressedImage (jpeg/png) -> (H, W, 3) uint8 RGB, resized to ``size`` x ``size``."""
    import cv2

    raw = np.frombuffer(memoryview(msg.data), dtype=np.uint8) if not isinstance(msg.data, np.ndarray) else msg.data
    bgr = cv2.imdecode(raw, cv2.IMREAD_COLOR)
    if bgr is None:
        raise RobosteerError(f"cannot decode a compressed image (format {msg.format!r}); publish jpeg or png")
    rgb = np.ascontiguousarray(bgr[..., ::-1])
    if size is not None and rgb.shape[:2] != (size, size):
        rgb = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)
    return rgb


def any_image_rgb(msg, size: int | None = None) -> np.ndarray:
    """Image or CompressedImage (told apart by the ``format`` field) -> (H, W, 3) uint8 RGB."""
    if hasattr(msg, "format") and not hasattr(msg, "encoding"):
        return compressed_image_rgb(msg, size)
    return image_rgb(msg, size)


def image_rgb(msg, size: int | None = None) -> np.ndarray:
    """sensor_msgs/Image (rgb8, bgr8, rgba8, bgra8, mono8) -> (H, W, 3) uint8 RGB, resized to ``size`` x ``size``."""
    encoding = str(msg.encoding).lower()
    channels = _CHANNELS.get(encoding)
    if channels is None:
        raise RobosteerError(f"image encoding {msg.encoding!r} is not supported; publish rgb8, bgr8, rgba8 or mono8")
    height, width, step = int(msg.height), int(msg.width), int(msg.step) or int(msg.width) * channels
    raw = np.frombuffer(memoryview(msg.data), dtype=np.uint8) if not isinstance(msg.data, np.ndarray) else msg.data
    if raw.size < height * step:
        raise RobosteerError(f"image data has {raw.size} bytes, {height * step} expected from height x step")
    pixels = raw[: height * step].reshape(height, step)[:, : width * channels].reshape(height, width, channels)
    if encoding in ("bgr8", "bgra8"):
        pixels = pixels[..., [2, 1, 0]]
    elif channels == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    rgb = np.ascontiguousarray(pixels[..., :3])
    if size is not None and (height != size or width != size):
        import cv2

        rgb = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)
    return rgb
