"""Inference speed of a RobotPolicy on the CPU (actions/s with action chunking), quiet and with competing CPU load.
Prints; never asserts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import contextmanager

import numpy as np

from robosteer.constants import OBS_STATE


def benchmark_inference(
    policy=None,
    n_actions: int = 160,
    task: str = "pick up the red cube",
    threads: int | None = None,
    image_size: int = 96,
    print_fn=print,
) -> dict:
    """Time ``select_action`` over ``n_actions`` steps (one model call per ``n_action_steps`` actions).

    ``policy`` defaults to the embedded base policy; ``threads`` as in ``load_policy`` (None: $ROBOSTEER_TORCH_THREADS,
    else 1; 0: torch's default). Returns and prints actions/s, chunk latency and per-step cost.
    """
    import torch

    from robosteer.policies.loading import load_embedded, set_torch_threads

    policy = policy if policy is not None else load_embedded()
    set_torch_threads(threads)
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


@contextmanager
def competing_load(processes: int | None = None):
    """``processes`` busy-looping Python processes (default: one per core) while the block runs."""
    count = processes or os.cpu_count() or 1
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        time.sleep(0.5)  # let them reach the cores
        yield count
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()


def benchmark_contention(policy=None, n_actions: int = 80, threads: int | None = None, print_fn=print) -> dict:
    """actions/s quiet, then with one busy process per core, at the configured thread count and at torch's default.

    Why the default is one thread: torch's own default (one per core) spin-waits in OpenMP and collapses when other
    processes (a sim, ROS nodes, other users) load the cores.
    """
    import torch

    from robosteer.policies.loading import load_embedded, torch_threads

    policy = policy if policy is not None else load_embedded()
    chosen = torch_threads(threads) or os.cpu_count() or 1
    default = os.cpu_count() or 1
    quiet = benchmark_inference(policy, n_actions, threads=chosen, print_fn=lambda _: None)
    out = {"threads": chosen, "quiet_actions_per_s": quiet["actions_per_s"]}
    with competing_load() as busy:
        out["loaded_actions_per_s"] = benchmark_inference(policy, n_actions, threads=chosen, print_fn=lambda _: None)[
            "actions_per_s"
        ]
        if default != chosen:
            out["loaded_default_threads_actions_per_s"] = benchmark_inference(
                policy, n_actions, threads=default, print_fn=lambda _: None
            )["actions_per_s"]
    torch.set_num_threads(chosen)
    line = (
        f"actions/s with {chosen} thread(s): quiet {out['quiet_actions_per_s']:.1f}, with {busy} busy processes "
        f"{out['loaded_actions_per_s']:.1f}"
    )
    if "loaded_default_threads_actions_per_s" in out:
        loaded_default = out["loaded_default_threads_actions_per_s"]
        line += f" (torch's default {default} threads under the same load: {loaded_default:.1f})"
    print_fn(line)
    return out


if __name__ == "__main__":
    benchmark_inference()
    benchmark_contention()
