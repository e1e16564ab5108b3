"""``robosteer bench --micro``: the performance figures the issues name, measured on this machine and printed.

Sections (each one independent; a failing section is reported and the others still run):
sim steps/s (with and without cameras), policy actions/s (with action chunking), evaluation episodes/s one at a
time vs batched, finetuning wall time / (step time x steps) with video decoding vs in-memory demos, head-ranking
time split
(``robosteer.study.rank_bench``), steer vs LoRA step time / parameters / memory (``robosteer.tuners.bench``), parameters
and training-memory estimates on full-size smolvla_base, pi0 and pi05 built on the meta device
(``robosteer.tuners.scale``), and the ROS 2
observation-to-command latency (``ros_nodes.bench``, when rclpy is installed).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

TARGETS = {
    "sim_steps_per_s_rendered": (">=", 150.0),
    "sim_steps_per_s_no_render": (">=", 2000.0),
    "policy_actions_per_s": (">=", 30.0),
    "eval_speedup": (">=", 4.0),
    "train_wall_over_steps_in_memory": ("<=", 1.3),
    "rank_total_s": ("<=", 20.0),
    "param_ratio": ("<=", 1 / 30),
    "step_time_ratio": ("<=", 0.6),
    "peak_memory_ratio": ("<=", 1.0),
    "ros_obs_to_command_p99_ms": ("<=", 30.0),
}
"""The issues' speed targets (2 CPU cores)."""


def bench_sim(
    task: str = "place_cube", rendered_steps: int = 300, plain_steps: int = 2000, image_size: int = 96
) -> dict[str, float]:
    """Env steps/s with both cameras at ``image_size`` and without rendering (holding the arm near its pose)."""
    import gymnasium as gym
    import numpy as np

    import sim
    from robosteer.constants import OBS_STATE

    out = {}
    for key, cameras, n_steps in (
        ("sim_steps_per_s_rendered", ("front", "wrist"), rendered_steps),
        ("sim_steps_per_s_no_render", (), plain_steps),
    ):
        env = gym.make(sim.TASKS[task], image_size=image_size, cameras=cameras, max_episode_steps=10**9)
        rng = np.random.default_rng(0)
        obs, _ = env.reset(seed=0)
        env.step(obs[OBS_STATE])  # warm-up (renderer creation)
        t0 = time.perf_counter()
        for _ in range(n_steps):
            action = obs[OBS_STATE] + rng.normal(0, 0.01, obs[OBS_STATE].shape).astype(np.float32)
            obs, *_ = env.step(action)
        out[key] = n_steps / (time.perf_counter() - t0)
        env.close()
    return out


def bench_policy(policy: str | None = None) -> dict[str, Any]:
    """``select_action`` calls per second with action chunking (``robosteer.policies.bench``), one torch thread, quiet
    and with one busy process per core competing."""
    from robosteer.policies import embedded_available, load_policy
    from robosteer.policies.bench import benchmark_contention, benchmark_inference

    if policy is None and not embedded_available():
        from robosteer.policies.loading import make_smolvla
        from robosteer.policies.smolvla_builder import SmolVLASpec

        loaded, name = make_smolvla(SmolVLASpec()), "embedded-shaped SmolVLA (embedded not shipped)"
    else:
        loaded, name = load_policy(policy or "embedded"), policy or "embedded"
    result = benchmark_inference(loaded)
    contention = benchmark_contention(loaded)  # the same policy with one busy process per core next to it
    return {
        **result,
        "policy": name,
        "policy_actions_per_s": result["actions_per_s"],
        "policy_actions_per_s_loaded": contention["loaded_actions_per_s"],
        "policy_actions_per_s_loaded_default_threads": contention.get("loaded_default_threads_actions_per_s"),
    }


def bench_eval(policy: str | None = None, task: str = "pick_cube", episodes: int = 32, batch: int = 8) -> dict:
    """Episodes/s of the same evaluation one episode at a time (the default) and batched (``--batch``), both with one
    worker per core, with each path's success count (the two draw their policy noise differently)."""
    from robosteer.evaluation import EvalConfig, PolicySource, evaluate

    out: dict[str, Any] = {"task": task, "episodes": episodes, "batch": batch}
    for name, size in (("one_at_a_time", 1), ("batched", batch)):
        config = EvalConfig(tasks=(task,), episodes=episodes, videos_per_cell=0, batch=size)
        t0 = time.perf_counter()
        results = evaluate(PolicySource(policy or "embedded"), config, progress=False)
        wall = time.perf_counter() - t0
        out[f"eval_episodes_per_s_{name}"] = episodes / wall
        out[f"eval_successes_{name}"] = sum(bool(r["success"]) for r in results.episodes)
        print(f"eval {name}: {episodes / wall:.3f} episodes/s, {out[f'eval_successes_{name}']}/{episodes} successes")
    out["eval_speedup"] = out["eval_episodes_per_s_batched"] / out["eval_episodes_per_s_one_at_a_time"]
    return out


def bench_train(policy: str | None = None, task: str = "place_cube", demos: int = 4, steps: int = 40) -> dict:
    """Finetuning (steer on the ranked heads' shape: 20 expert heads) wall time / (mean step time x steps), reading
    the demos through LeRobot's video-decoding DataLoader (before) and decoded once into memory (after)."""
    import tempfile
    from pathlib import Path

    from robosteer.policies import load_policy
    from robosteer.tuners import FinetuneConfig, finetune
    from robosteer.tuners.data import make_batch_stream, open_dataset
    from sim.recording import record_dataset

    out: dict[str, Any] = {"demos": demos, "steps": steps}
    with tempfile.TemporaryDirectory(prefix="robosteer-train-bench-") as tmp:
        root = Path(tmp) / "demos"
        record_dataset(task, demos, root, seed=0, progress=False)
        for name, in_memory in (("decoding", False), ("in_memory", True)):
            base = load_policy(policy or "embedded")
            heads = [h for h in base.layout.heads() if h.startswith("expert.")][:20]
            config = FinetuneConfig(heads=heads, steps=steps, batch_size=16, progress=False)
            stream = make_batch_stream(open_dataset(base, root), 16, 0, steps, in_memory=in_memory)
            t0 = time.perf_counter()
            summary = finetune(base, root, config, Path(tmp) / name, make_batches=stream).summary
            wall = time.perf_counter() - t0
            ratio = wall / (summary["mean_step_time_s"] * steps)
            out[f"train_wall_over_steps_{name}"] = ratio
            out[f"train_step_s_{name}"] = summary["mean_step_time_s"]
            print(
                f"train ({name}): wall {wall:.1f} s = {ratio:.2f} x (step {summary['mean_step_time_s']:.3f} s x {steps})"
            )
    return out


def bench_rank(policy: str | None = None) -> dict[str, Any]:
    from robosteer.study.rank_bench import benchmark_rank

    result = benchmark_rank(policy=policy, n_demos=20)
    return {**result, "rank_total_s": result.get("total_s")}


def bench_tuners(policy: str | None = None) -> dict[str, Any]:
    """Steer vs both LoRA baselines on the same batch (``robosteer.tuners.bench``); ratios keyed by comparison."""
    from robosteer.tuners.bench import run_bench

    report = run_bench(policy=policy)
    out: dict[str, Any] = {"comparisons": report["comparisons"]}
    for name in ("steer/lora-lerobot", "steer/lora-all-linear", "steer-r4/lora-all-linear"):
        comparison = report["comparisons"].get(name)
        if comparison:
            out[f"{name}: param_ratio"] = comparison["trainable_ratio"]
            out[f"{name}: step_time_ratio"] = comparison["step_time_ratio"]
            out[f"{name}: peak_memory_ratio"] = comparison["peak_memory_ratio"]
    return out


def bench_scale(kinds: tuple[str, ...] = ("smolvla_base", "pi0", "pi05"), batch_size: int = 32) -> dict[str, Any]:
    """Parameters and training-memory estimates of steer, LoRA and full finetuning on full-size smolvla_base, pi0
    and pi05 built on the meta device (``robosteer.tuners.scale``); prints a table per policy."""
    from robosteer.tuners.scale import bench_scale as run_scale

    return run_scale(kinds, batch_size=batch_size)


def bench_ros(seconds: float = 15.0) -> dict[str, Any]:
    from ros_nodes.bench import run_ros_benchmark  # runs the nodes in a child process with the ROS environment

    result = run_ros_benchmark(duration_s=seconds, timeout_s=seconds + 120)
    latency = result.get("obs_to_command_ms") or {}
    return {**result, "ros_obs_to_command_p50_ms": latency.get("p50"), "ros_obs_to_command_p99_ms": latency.get("p99")}


def run_micro(
    policy: str | None = None, ros_seconds: float = 15.0, sections: tuple[str, ...] | None = None, console=None
) -> dict[str, Any]:
    """Run every section, print a summary with the targets; returns all figures (section -> dict or error)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    runs: dict[str, Callable[[], dict]] = {
        "sim": bench_sim,
        "policy": lambda: bench_policy(policy),
        "eval": lambda: bench_eval(policy),
        "train": lambda: bench_train(policy),
        "rank": lambda: bench_rank(policy),
        "tuners": lambda: bench_tuners(policy),
        "scale": bench_scale,
        "ros": lambda: bench_ros(ros_seconds),
    }
    if ros_seconds <= 0:
        runs.pop("ros")
    results: dict[str, Any] = {}
    for name, fn in runs.items():
        if sections and name not in sections:
            continue
        console.rule(f"[bold]{name}")
        t0 = time.perf_counter()
        try:
            results[name] = fn()
        except Exception as err:  # one broken part must not hide the other figures
            results[name] = {"error": f"{type(err).__name__}: {err}"}
            console.print(f"[red]{name} benchmark failed:[/] {type(err).__name__}: {err}")
        results[name]["section_wall_s"] = time.perf_counter() - t0
        if name == "sim" and "error" not in results[name]:
            console.print(", ".join(f"{k} {v:.0f}" for k, v in results[name].items() if k != "section_wall_s"))

    flat = {k: v for section in results.values() for k, v in section.items() if isinstance(v, (int, float))}
    table = Table(title="robosteer micro benchmarks (this machine)")
    for column in ("figure", "measured", "target", ""):
        table.add_column(column)
    for key, (op, target) in TARGETS.items():
        matches = {k: v for k, v in flat.items() if k == key or k.endswith(f": {key}")}
        if not matches:
            table.add_row(key, "n/a", f"{op} {target:.3g}", "not measured")
        for name, value in matches.items():
            ok = value >= target if op == ">=" else value <= target
            table.add_row(name, f"{value:.4g}", f"{op} {target:.3g}", "[green]meets[/]" if ok else "[red]misses[/]")
    for key in (
        "policy_actions_per_s_loaded",
        "policy_actions_per_s_loaded_default_threads",
        "chunk_latency_ms",
        "prepare_s",
        "extract_s",
        "score_s",
        "causal_s",
        "ros_obs_to_command_p50_ms",
    ):
        if key in flat:
            table.add_row(key, f"{flat[key]:.4g}", "", "")
    console.print(table)
    return results
