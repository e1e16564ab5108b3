"""Speed of the sim suites: Franka env steps per second with both cameras rendering and without rendering, and the
cost of a Meta-World camera frame with and without LeRobot's shadows and reflections.

python -m sim.bench     (or: python -c "import sim.bench as b; b.sim_steps_per_second(); b.metaworld_frame_ms()")
"""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np

import sim  # noqa: F401  (registers the envs)
from robosteer.constants import CAMERAS
from sim.experts import make_expert
from sim.registration import env_id


def _expert_actions(task: str, steps: int, seed: int) -> list[np.ndarray]:
    """Actions of real expert episodes (replayed in the timing, so IK is not part of the measurement)."""
    env = gym.make(env_id(task), cameras=())
    actions, episode = [], 0
    while len(actions) < steps:
        obs, info = env.reset(seed=seed + episode)
        expert, done = make_expert(env), False
        while not done and len(actions) < steps:
            action = expert.act(obs, info)
            actions.append(action)
            obs, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
        episode += 1
    return actions


def _time_steps(env, actions: list[np.ndarray], seed: int) -> tuple[float, float]:
    """(steps per wall-clock second, steps per CPU second of this process: a fair figure on a busy machine)."""
    env.reset(seed=seed)
    env.step(actions[0])  # creates the renderer outside the timing
    start, start_cpu = time.perf_counter(), time.process_time()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset(seed=seed)
    return len(actions) / (time.perf_counter() - start), len(actions) / (time.process_time() - start_cpu)


def sim_steps_per_second(
    task: str = "pick_cube", steps: int = 300, image_size: int = 96, seed: int = 0, verbose: bool = True
) -> dict[str, float]:
    """Env steps/s with both cameras at ``image_size`` and without rendering; prints one line each.

    Returns ``{label: wall-clock steps/s}`` plus ``{label + " per cpu-s": ...}`` (process CPU time, includes the
    renderer's threads), which stays meaningful when other jobs share the cores.
    """
    actions = _expert_actions(task, steps, seed)
    results = {}
    for label, cameras in ((f"render {'+'.join(CAMERAS)} {image_size}x{image_size}", CAMERAS), ("no render", ())):
        env = gym.make(env_id(task), cameras=cameras, image_size=image_size)
        results[label], results[f"{label} per cpu-s"] = _time_steps(env, actions, seed)
        env.close()
        if verbose:
            print(
                f"sim {task} {label}: {results[label]:.0f} env steps/s wall-clock, "
                f"{results[f'{label} per cpu-s']:.0f} per CPU-second"
            )
    return results


def metaworld_frame_ms(
    task: str = "metaworld/drawer-open", frames: int = 30, image_size: int = 96, verbose: bool = True
) -> dict[str, float]:
    """Milliseconds per rendered corner2 frame with LeRobot's lighting (shadows + reflections) and without it
    (robosteer's default), timed in one run so the ratio holds on a busy machine; also the mean absolute pixel
    difference of the two images of the same state (0-255)."""
    from sim.suites import make_env

    results, images = {}, {}
    for label, lerobot_lighting in (("lerobot lighting", True), ("default (no shadows/reflections)", False)):
        env = make_env(task, image_size=image_size, lerobot_lighting=lerobot_lighting, disable_env_checker=True)
        env.reset(seed=0)
        images[label] = env.unwrapped.observe()  # creates the renderer outside the timing
        start = time.perf_counter()
        for _ in range(frames):
            env.unwrapped.observe()
        results[label] = 1000 * (time.perf_counter() - start) / frames
        env.close()
    (lit, unlit), key = (
        images.values(),
        next(k for k in images[next(iter(images))] if k.startswith("observation.images")),
    )
    results["pixel difference"] = float(np.abs(lit[key].astype(int) - unlit[key].astype(int)).mean())
    if verbose:
        ms = [results[label] for label in images]
        print(
            f"sim {task} corner2 {image_size}x{image_size}: {ms[0]:.1f} ms/frame with LeRobot's lighting, "
            f"{ms[1]:.1f} without ({ms[0] / ms[1]:.1f}x); mean pixel difference {results['pixel difference']:.1f}/255"
        )
    return results


if __name__ == "__main__":
    sim_steps_per_second()
    metaworld_frame_ms()
