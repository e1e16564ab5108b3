"""Record demonstrations of a sim task into a LeRobot v3 dataset (lerobot's own writer, videos by default).

    from sim.recording import record_dataset
    root = record_dataset("pick_cube", n_episodes=10, out="demos/pick_cube")            # scripted expert
    root = record_dataset("pick_cube", 2, "demos/mine", teleop="keyboard")               # a person drives the arm

Every episode stores ``info["labels"]`` (plus seed/teleop/success) via :mod:`robosteer.data`; episodes are
finalized one by one, so killing the recorder loses only the open episode.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import sim  # noqa: F401  (registers the envs)
from robosteer.constants import CAMERAS, FPS, IMAGE_SIZE
from robosteer.data import EpisodeWriter, robot_features
from robosteer.errors import RobosteerError
from sim.experts import make_expert
from sim.registration import env_id
from sim.robot import RobotMjcf, RobotSpec
from sim.variations import parse_variations

TELEOP_MODES = ("expert", "keyboard", "spacemouse")


@dataclass(frozen=True)
class Takeover:
    """Recovery demos (DAgger-style): a driver (a policy) runs each attempt for a random number of steps, then the
    scripted expert takes over from wherever the driver left the scene, and only the expert's part is recorded.

    The expert restarts its plan from the measured state at the takeover, so the demos show the way back from states
    the policy itself reaches (a cube pushed past its zone, a hand stalled beside it), which demos that start from a
    reset never visit. An attempt the driver ends (success or time limit) before the takeover is discarded."""

    driver: Any
    """Acts before the takeover: ``reset(seed)`` before each attempt, ``act(obs, info)`` -> (8,) action each step."""
    min_steps: int = 20
    """Fewest driver steps before the takeover."""
    max_steps: int = 120
    """Most driver steps; each attempt draws its takeover step uniformly in [min_steps, max_steps] from its seed."""

    def __post_init__(self):
        if not 0 <= self.min_steps <= self.max_steps:
            raise RobosteerError(
                f"--takeover-steps {self.min_steps}:{self.max_steps} is not a range; give MIN:MAX with 0 <= MIN <= MAX"
            )

    def steps_for(self, episode_seed: int) -> int:
        return int(np.random.default_rng(episode_seed).integers(self.min_steps, self.max_steps + 1))


def record_dataset(
    task: str,
    n_episodes: int,
    out: str | Path,
    teleop: str = "expert",
    variations: str = "none",
    seed: int = 0,
    fps: int = FPS,
    image_size: int = IMAGE_SIZE,
    append: bool = False,
    use_videos: bool = True,
    cameras: tuple[str, ...] = CAMERAS,
    noise_std: float = 0.0,
    max_attempts: int | None = None,
    input_source=None,
    progress: bool = True,
    joint_prefix: str = "fr3_joint",
    robot_mjcf: str | Path | RobotMjcf | None = None,
    hold_frames: int = 0,
    takeover: Takeover | None = None,
) -> Path:
    """Record ``n_episodes`` successful episodes of ``task`` into the LeRobot dataset at ``out``; returns its path.

    ``teleop="expert"`` uses the scripted expert (failed attempts are discarded; gives up after ``max_attempts``,
    default 3 * n_episodes); ``keyboard``/``spacemouse`` open a viewer and let a person drive the arm (save/discard
    keys decide what is kept). ``input_source`` overrides the device (tests pass a scripted one). ``robot_mjcf`` loads
    the arm + gripper from an MJCF file (checked before anything is written). ``hold_frames`` keeps recording the
    expert that long after the task succeeds (see :func:`record_expert_episode`). ``takeover`` lets a policy drive
    the start of every attempt and records the expert's recovery from there (see :class:`Takeover`).
    """
    gym_id = env_id(task)
    config = parse_variations(variations)
    if teleop not in TELEOP_MODES:
        raise RobosteerError(f"unknown teleop {teleop!r}; use one of {', '.join(TELEOP_MODES)}")
    if n_episodes < 1:
        raise RobosteerError(f"--episodes must be at least 1 (got {n_episodes})")
    if noise_std < 0:
        raise RobosteerError(f"noise_std must be >= 0 (got {noise_std})")
    check_hold_frames(hold_frames)
    if hold_frames and teleop != "expert":
        raise RobosteerError(f"--hold-frames applies to the scripted expert only, not --teleop {teleop}; drop it")
    if takeover is not None and teleop != "expert":
        raise RobosteerError(f"--takeover-from hands over to the scripted expert, not --teleop {teleop}; drop one")
    robot = RobotSpec(joint_prefix=joint_prefix, mjcf=robot_mjcf)  # a bad robot file fails here, before any writing
    writer = EpisodeWriter(
        out,
        robot_features(cameras, image_size, use_videos, joint_prefix),
        fps=fps,
        append=append,
        robot_type="franka_fr3" if joint_prefix == "fr3_joint" else "franka_panda",
    )
    env = gym.make(
        gym_id,
        image_size=image_size,
        variations=config,
        cameras=cameras,
        fps=fps,
        joint_prefix=joint_prefix,
        robot_mjcf=robot.mjcf,
        **_longer_episodes(gym_id, takeover),
    )
    try:
        if teleop == "expert" and input_source is None:
            attempts = max_attempts or (3 if takeover is None else 10) * n_episodes
            _record_expert(env, writer, n_episodes, seed, noise_std, attempts, progress, hold_frames, takeover)
        else:
            from sim.teleop import make_input_source, teleop_episodes

            source = input_source or make_input_source(teleop)
            name = teleop if input_source is None else type(input_source).__name__
            teleop_episodes(env, writer, source, n_episodes, seed, progress, teleop_name=name)
    except KeyboardInterrupt:
        writer.abort()  # saved episodes stay; the open one and staging files go
        raise
    finally:
        env.close()
    return Path(out)


def _longer_episodes(gym_id: str, takeover: Takeover | None) -> dict:
    """With a takeover the expert gets the task's whole time limit after the driver's steps."""
    if takeover is None:
        return {}
    return {"max_episode_steps": gym.spec(gym_id).max_episode_steps + takeover.max_steps}


def check_hold_frames(hold_frames: int) -> None:
    if hold_frames < 0:
        raise RobosteerError(f"--hold-frames must be >= 0 (got {hold_frames}); 0 stops each episode at its success")


def record_expert_episode(
    env, writer: EpisodeWriter, expert, episode_seed: int, hold_frames: int = 0, takeover: Takeover | None = None
) -> bool:
    """One scripted attempt of any suite's env: the clean expert action is recorded, the perturbed one executed; saved
    when the env reports success (``info["is_success"]``), else discarded. Returns whether it was saved.

    The env ends an episode on its first successful step, so the demos never show the goal reached, nor the way
    back to it from just past it; ``hold_frames`` more frames of the expert holding its goal (noise still on, labels
    clean) show both. The episode stops early at the env's time limit. With ``takeover`` the driver acts first (not
    recorded) and the expert starts from where it stopped."""
    obs, info = env.reset(seed=episode_seed)
    handover: dict = {}
    if takeover is not None:
        obs, info, handover = _drive_until_takeover(env, takeover, episode_seed, obs, info)
        if handover is None:
            return False
    expert.reset()
    done = False
    while not done:
        action = expert.act(obs, info)
        writer.add_frame(obs, action, info["task"])  # the clean label ...
        obs, _, terminated, truncated, info = env.step(expert.perturb(action))  # ... the perturbed execution
        done = terminated or truncated
    if not info["is_success"]:
        writer.discard_episode()
        return False
    labels = info["labels"]
    for _ in range(hold_frames if not truncated else 0):
        action = expert.act(obs, info)
        writer.add_frame(obs, action, info["task"])
        obs, _, _, truncated, info = env.step(expert.perturb(action))
        if truncated:
            break
    writer.save_episode({**labels, **handover, "seed": episode_seed, "teleop": "expert", "success": True})
    return True


def _drive_until_takeover(env, takeover: Takeover, episode_seed: int, obs, info):
    """Let the driver act up to the takeover step; returns (obs, info, labels of the handover), the labels None when
    the driver ended the episode first. The labels give the takeover step and where the object is at the handover
    (the recorded part starts there, so that is the position the episode's frames show)."""
    steps = takeover.steps_for(episode_seed)
    takeover.driver.reset(episode_seed)
    for _ in range(steps):
        obs, _, terminated, truncated, info = env.step(takeover.driver.act(obs, info))
        if terminated or truncated:
            return obs, info, None
    handover = {"takeover_step": steps}
    task = env.unwrapped
    if task.uses_object:
        x, y = task.object_pos()[:2]
        handover.update(object_x=round(float(x), 4), object_y=round(float(y), 4))
    return obs, info, handover


def _record_expert(
    env,
    writer: EpisodeWriter,
    n_episodes: int,
    seed: int,
    noise_std: float,
    max_attempts: int,
    progress: bool,
    hold_frames: int = 0,
    takeover: Takeover | None = None,
) -> None:
    from robosteer.progress import Progress

    expert = make_expert(env, noise_std=noise_std, seed=seed)
    saved, attempt = 0, 0
    with Progress(disable=not progress, transient=False) as bar:
        job = bar.add_task(f"recording {env.unwrapped.task_name}", total=n_episodes)
        while saved < n_episodes:
            if attempt >= max_attempts:
                raise RobosteerError(_too_few_saved(saved, attempt, takeover))
            episode_seed = seed + attempt
            attempt += 1
            if record_expert_episode(env, writer, expert, episode_seed, hold_frames, takeover):
                saved += 1
                bar.advance(job)


def _too_few_saved(saved: int, attempts: int, takeover: Takeover | None) -> str:
    if takeover is None:
        return f"the expert succeeded in only {saved} of {attempts} attempts; raise max_attempts or use milder --variations"
    return (
        f"only {saved} of {attempts} attempts were saved: the driver ended the others before the takeover (success or "
        "time limit) or the expert could not recover; lower --takeover-steps"
    )
