"""Inference speed of a RobotPolicy on the CPU (actions/s with action chunking). Prints; never asserts."""

from __future__ import annotations

import time

import numpy as np

from robosteer.constants import OBS_STATE


def benchmark_inference(
    policy=None,
    n_actions: int = 160,
    task: str = "pick up the red cube",
    threads: int | None = 1,
    image_size: int = 96,
    print_fn=print,
) -> dict:
    """Time ``select_action`` over ``n_actions`` steps (one model call per ``n_action_steps`` actions).

    ``policy`` defaults to the embedded base policy. Returns and prints actions/s, chunk latency and per-step cost.
    """
    import torch

    from robosteer.policies.loading import load_embedded

    if threads:
        torch.set_num_threads(threads)
    policy = policy if policy is not None else load_embedded()
    rng = np.random.default_rng(0)
    obs = {OBS_STATE: rng.normal(size=policy.state_dim).astype(np.float32)}
    for key in policy.image_keys:
        obs[key] = rng.integers(0, 255, size=(image_size, image_size, 3), dtype=np.uint8)
    policy.reset()
    for _ in range(policy.config.n_action_steps):  # warm-up: one full chunk
        policy.select_action(obs, task)
    policy.reset()
    start = time.perf_counter()
    for _ in range(n_actions):
        policy.select_action(obs, task)
    elapsed = time.perf_counter() - start
    chunk_start = time.perf_counter()
    policy.predict_action_chunk(obs, task)
    chunk_s = time.perf_counter() - chunk_start
    result = {
        "actions_per_s": n_actions / elapsed,
        "chunk_latency_ms": 1000 * chunk_s,
        "n_action_steps": policy.config.n_action_steps,
        "denoising_steps": policy.config.num_steps,
        "threads": torch.get_num_threads(),
        "policy": repr(policy),
    }
    print_fn(
        f"{result['policy']}: {result['actions_per_s']:.1f} actions/s on the CPU "
        f"({result['chunk_latency_ms']:.0f} ms per chunk of {policy.config.chunk_size}, "
        f"{result['n_action_steps']} executed per call, {result['denoising_steps']} denoising steps, "
        f"{result['threads']} thread(s))"
    )
    return result


if __name__ == "__main__":
    benchmark_inference()
