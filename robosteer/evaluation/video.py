"""Episode videos: camera frames side by side, written as H.264 mp4 with PyAV (installed with lerobot)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robosteer.constants import OBS_IMAGES_PREFIX
from robosteer.files import atomic_write
from robosteer.scheduling import reset_realtime_scheduling

MIN_VIDEO_HEIGHT = 192
"""Small sim frames (96 px) are scaled up by an integer factor (nearest pixel) to at least this height."""


def frame_of(obs: dict) -> np.ndarray:
    """All camera images of an observation side by side: (H, W * n_cameras, 3) uint8, cameras in name order."""
    images = [np.asarray(obs[key]) for key in sorted(obs) if key.startswith(OBS_IMAGES_PREFIX)]
    if not images:
        raise ValueError(f"observation has no camera image (keys starting with {OBS_IMAGES_PREFIX!r})")
    height = min(img.shape[0] for img in images)
    images = [img[:height] for img in images]
    frame = np.concatenate(images, axis=1)  # (H, W * n_cameras, 3)
    if frame.dtype != np.uint8:
        frame = np.clip(frame * (255.0 if frame.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    return frame


def write_mp4(frames: list[np.ndarray], path: Path, fps: int = 15) -> Path:
    """Write RGB uint8 frames (H, W, 3) to ``path`` (temp file, then rename). Returns ``path``."""
    import av

    if not frames:
        raise ValueError("no frames to write")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scale = max(1, -(-MIN_VIDEO_HEIGHT // frames[0].shape[0]))  # ceil division
    height, width = frames[0].shape[0] * scale, frames[0].shape[1] * scale
    height, width = height + height % 2, width + width % 2  # H.264 with yuv420p needs even sizes
    previous_level = av.logging.get_level()
    av.logging.set_level(av.logging.ERROR)  # libx264 prints its encoding statistics at INFO once someone enabled it
    try:
        atomic_write(path, lambda tmp: _encode(frames, tmp, fps, scale, height, width))
    finally:
        av.logging.set_level(previous_level)
        reset_realtime_scheduling()  # some encoders leave the calling thread real-time (robosteer.scheduling)
    return path


def _encode(frames: list[np.ndarray], tmp: Path, fps: int, scale: int, height: int, width: int) -> None:
    import av

    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "23", "preset": "veryfast"}
        for frame in frames:
            big = np.repeat(np.repeat(frame, scale, axis=0), scale, axis=1)  # (H*s, W*s, 3)
            canvas = np.zeros((height, width, 3), np.uint8)
            canvas[: big.shape[0], : big.shape[1]] = big
            for packet in stream.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
