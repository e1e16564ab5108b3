"""A tiny real LeRobot dataset on disk (random images, a learnable action rule): the tests' one synthetic dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robosteer.constants import ACTION, ACTION_DIM, CAMERAS, OBS_STATE, STATE_DIM, image_key


def write_tiny_dataset(
    root: str | Path,
    n_episodes: int = 2,
    frames: int = 12,
    image_size: int = 32,
    cameras: tuple[str, ...] = CAMERAS,
    fps: int = 15,
    seed: int = 0,
) -> Path:
    """Write a LeRobotDataset whose action is a fixed linear function of the state (so a policy can learn it)."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    features = {
        OBS_STATE: {"dtype": "float32", "shape": (STATE_DIM,), "names": None},
        ACTION: {"dtype": "float32", "shape": (ACTION_DIM,), "names": None},
    }
    for cam in cameras:
        features[image_key(cam)] = {
            "dtype": "image",
            "shape": (image_size, image_size, 3),
            "names": ["height", "width", "channels"],
        }
    root = Path(root)
    dataset = LeRobotDataset.create(f"local/{root.name}", fps, root=root, features=features, use_videos=False)
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(STATE_DIM, ACTION_DIM)).astype(np.float32) * 0.5
    for episode in range(n_episodes):
        state = rng.normal(size=STATE_DIM).astype(np.float32)
        for _ in range(frames):
            frame = {OBS_STATE: state, ACTION: state @ mixing, "task": f"task {episode % 2}"}
            for cam in cameras:
                frame[image_key(cam)] = rng.integers(0, 255, (image_size, image_size, 3), dtype=np.uint8)
            dataset.add_frame(frame)
            state = (state + 0.1 * rng.normal(size=STATE_DIM)).astype(np.float32)
        dataset.save_episode()
    dataset.finalize()
    return root
