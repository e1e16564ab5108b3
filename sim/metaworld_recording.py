"""Record Meta-World's scripted experts into a LeRobot v3 dataset (lerobot's own writer through :mod:`robosteer.data`).

    from sim.metaworld_recording import record_metaworld_dataset
    root = record_metaworld_dataset("drawer-open", n_episodes=10, out="demos/drawer_open")

Frames are recorded at Meta-World's 80 Hz: ``observation.state`` (4,), one RGB stream per camera, the clean expert
action (4,) and LeRobot's task description as the task. Failed attempts are discarded; each saved episode stores its
labels (goal, object position, seed) like the Franka recorder does.
"""

from __future__ import annotations

from pathlib import Path

import sim  # noqa: F401  (registers the envs)
from robosteer.constants import ACTION, IMAGE_SIZE, OBS_STATE, image_key
from robosteer.data import EpisodeWriter
from robosteer.errors import RobosteerError
from sim.metaworld_suite import ACTION_NAMES, STATE_NAMES, MetaWorldExpert
from sim.metaworld_tasks import CAMERAS, FPS
from sim.recording import check_hold_frames, record_expert_episode
from sim.suites import METAWORLD, make_env, split_task

ROBOT_TYPE = "sawyer"
"""LeRobot's ``robot_type`` of a Meta-World dataset."""


def metaworld_features(
    cameras: tuple[str, ...] = CAMERAS, image_size: int = IMAGE_SIZE, use_videos: bool = True
) -> dict[str, dict]:
    """LeRobot ``features``: state (4,), action (4,) and one RGB stream per camera (video or image)."""
    features = {
        OBS_STATE: {"dtype": "float32", "shape": (4,), "names": list(STATE_NAMES)},
        ACTION: {"dtype": "float32", "shape": (4,), "names": list(ACTION_NAMES)},
    }
    for cam in cameras:
        features[image_key(cam)] = {
            "dtype": "video" if use_videos else "image",
            "shape": (image_size, image_size, 3),
            "names": ["height", "width", "channel"],
        }
    return features


def record_metaworld_dataset(
    task: str,
    n_episodes: int,
    out: str | Path,
    seed: int = 0,
    image_size: int = IMAGE_SIZE,
    append: bool = False,
    use_videos: bool = True,
    cameras: tuple[str, ...] = CAMERAS,
    noise_std: float = 0.0,
    max_attempts: int | None = None,
    progress: bool = True,
    hold_frames: int = 0,
) -> Path:
    """Record ``n_episodes`` successful scripted episodes of a Meta-World task into the dataset at ``out``.

    ``task`` is ``drawer-open`` or ``metaworld/drawer-open``; attempt i resets with ``seed + i``; gives up after
    ``max_attempts`` (default 3 * n_episodes). ``noise_std`` perturbs the executed xyz move (see
    :class:`~sim.metaworld_suite.MetaWorldExpert`); the clean action is recorded. ``hold_frames``: frames recorded
    after success (see :func:`sim.recording.record_expert_episode`).
    """
    _, name = split_task(task, METAWORLD)
    if n_episodes < 1:
        raise RobosteerError(f"--episodes must be at least 1 (got {n_episodes})")
    if noise_std < 0:
        raise RobosteerError(f"noise_std must be >= 0 (got {noise_std})")
    check_hold_frames(hold_frames)
    features = metaworld_features(cameras, image_size, use_videos)
    writer = EpisodeWriter(out, features, fps=FPS, append=append, robot_type=ROBOT_TYPE)  # refuses a bad --out first
    env = make_env(name, METAWORLD, image_size=image_size, cameras=cameras)
    try:
        expert = MetaWorldExpert(env, noise_std=noise_std, seed=seed)
        _record(env, writer, expert, n_episodes, seed, max_attempts or 3 * n_episodes, progress, hold_frames)
    finally:
        env.close()
    return Path(out)


def _record(
    env, writer: EpisodeWriter, expert: MetaWorldExpert, n_episodes, seed, max_attempts, progress, hold
) -> None:
    """Attempts with seeds ``seed, seed + 1, ...`` until ``n_episodes`` succeeded; Ctrl-C keeps the saved ones."""
    from robosteer.progress import Progress

    saved, attempt = 0, 0
    try:
        with Progress(disable=not progress, transient=False) as bar:
            job = bar.add_task(f"recording {METAWORLD}/{env.unwrapped.task_name}", total=n_episodes)
            while saved < n_episodes:
                if attempt >= max_attempts:
                    raise RobosteerError(
                        f"the expert succeeded in only {saved} of {attempt} attempts; raise max_attempts or lower --noise"
                    )
                saved += record_expert_episode(env, writer, expert, seed + attempt, hold)
                attempt += 1
                bar.update(job, completed=saved)
    except KeyboardInterrupt:
        writer.abort()  # saved episodes stay; the open one and staging files go
        raise
