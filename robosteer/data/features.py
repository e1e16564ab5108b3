"""The LeRobot feature spec of a Franka demonstration dataset, and the check that an existing dataset matches it."""

from __future__ import annotations

from robosteer.constants import ACTION, CAMERAS, IMAGE_SIZE, OBS_STATE, image_key, joint_names
from robosteer.errors import RobosteerError


def robot_features(
    cameras: tuple[str, ...] | list[str] = CAMERAS,
    image_size: int | tuple[int, int] = IMAGE_SIZE,
    use_videos: bool = True,
    joint_prefix: str = "fr3_joint",
) -> dict[str, dict]:
    """LeRobot ``features`` for state (8,), action (8,) and one RGB stream per camera (video or image)."""
    height, width = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if height < 1 or width < 1:
        raise RobosteerError(f"image size {image_size} must be positive")
    names = [*joint_names(joint_prefix), "gripper_width"]
    features = {
        OBS_STATE: {"dtype": "float32", "shape": (8,), "names": names},
        ACTION: {"dtype": "float32", "shape": (8,), "names": names},
    }
    for cam in cameras:
        features[image_key(cam)] = {
            "dtype": "video" if use_videos else "image",
            "shape": (height, width, 3),
            "names": ["height", "width", "channel"],
        }
    return features


def check_features_match(existing: dict[str, dict], wanted: dict[str, dict], root) -> None:
    """Raise when a dataset's features differ from what would be recorded (keys, dtype, shape)."""
    problems = []
    for key, spec in wanted.items():
        have = existing.get(key)
        if have is None:
            problems.append(f"{key} is missing")
        elif have["dtype"] != spec["dtype"] or tuple(have["shape"]) != tuple(spec["shape"]):
            problems.append(
                f"{key} is {have['dtype']}{tuple(have['shape'])}, would record {spec['dtype']}{tuple(spec['shape'])}"
            )
    extra = [k for k, v in existing.items() if k.startswith("observation.") and k not in wanted]
    problems += [f"{k} exists but would not be recorded" for k in extra]
    if problems:
        raise RobosteerError(
            f"dataset {root} has other features than this recording ({'; '.join(problems)}); "
            "record into a new --out folder or match its cameras/image size/video setting"
        )
