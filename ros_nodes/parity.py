"""Deployment parity: N consecutive auto-reset episodes over ROS 2 (sim node and policy node as separate processes,
like ``ros2 launch robosteer sim.launch.py``) next to the same seeds in ``robosteer eval``'s episode runner.

``python -m ros_nodes.bench --success --task pick_cube --episodes 20`` prints both success rates with 95 % Wilson
intervals, the seeds that differ, and the loop's health: a loop that could not keep real time on this machine (sim
steps per second well below its rate, or many sim steps without a fresh command) says so, because its success says
nothing about the policy.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

HEALTHY_STEP_RATE = 0.8
"""A healthy loop steps the sim at >= this fraction of its rate ..."""
HEALTHY_NO_COMMAND = 0.2
"""... and <= this fraction of its steps get no new command."""


class EpisodeLog:
    """Episode outcomes from the sim node's ``~/episode`` JSON: an episode ends with ``done`` or a new seed."""

    def __init__(self):
        self.outcomes: dict[int, bool] = {}
        self.lengths: dict[int, int] = {}
        self.latest: dict = {}
        self.first_step_time: float | None = None

    def on_status(self, status: dict) -> None:
        previous, self.latest = self.latest, status
        if status.get("step", 0) > 0 and self.first_step_time is None:
            self.first_step_time = time.monotonic()
        if previous and previous["seed"] != status["seed"] and previous["seed"] not in self.outcomes:
            self._finish(previous)
        if status.get("done") and status["seed"] not in self.outcomes:
            self._finish(status)

    def _finish(self, status: dict) -> None:
        self.outcomes[status["seed"]] = bool(status["success"])
        self.lengths[status["seed"]] = int(status["step"])


def _sim_and_policy(workdir: Path, policy_path: str, task: str, seed: int, extra_policy: dict | None):
    from ros_nodes.bench import _node_process, config_dir

    sim = _node_process(
        "sim", {"task": task, "seed": seed, "auto_reset": True}, config_dir() / "sim.yaml", workdir / "sim.log"
    )
    node = _node_process(
        "policy",
        {"policy": policy_path, "diagnostics_rate_hz": 2.0, **(extra_policy or {})},
        config_dir() / "policy_sim.yaml",
        workdir / "policy.log",
    )
    return sim, node


def run_ros_episodes(
    task: str, episodes: int, seed: int, policy_path: str, workdir: Path, extra_policy: dict | None = None
) -> dict:
    """Run ``episodes`` consecutive episodes from ``seed`` over ROS; outcomes per seed plus loop health figures."""
    from rclpy.qos import DurabilityPolicy, QoSProfile
    from std_msgs.msg import String

    from ros_nodes.harness import RosHarness

    log, diag = EpisodeLog(), {}
    sim, node = _sim_and_policy(workdir, policy_path, task, seed, extra_policy)
    try:
        with RosHarness(domain_id=int(os.environ.get("ROS_DOMAIN_ID", "0"))) as ros:
            probe = ros.add(ros.make_node("robosteer_parity"))
            latched = QoSProfile(depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL)
            probe.create_subscription(
                String, "/robosteer_sim/episode", lambda m: log.on_status(json.loads(m.data)), latched
            )
            probe.create_subscription(
                String, "/robosteer_policy/diagnostics", lambda m: diag.update(json.loads(m.data)), 10
            )
            if not ros.wait_for(lambda: log.first_step_time is not None, timeout=300):
                raise RuntimeError("the sim never started stepping (policy not ready?); policy log:\n" + _tail(workdir))
            start, steps_before = log.first_step_time, log.latest.get("total_steps", 0)
            no_command_before = log.latest.get("steps_without_new_command", 0)
            finished = ros.wait_for(lambda: len(log.outcomes) >= episodes, timeout=episodes * 30 + 60)
            elapsed = time.monotonic() - start
            if not finished:
                raise RuntimeError(
                    f"only {len(log.outcomes)} of {episodes} episodes finished; policy log:\n{_tail(workdir)}"
                )
            final = dict(log.latest)
    finally:
        _stop(node, sim)
    steps = final.get("total_steps", 0) - steps_before
    no_command = final.get("steps_without_new_command", 0) - no_command_before
    outcomes = {s: log.outcomes[s] for s in sorted(log.outcomes)[:episodes]}
    return {
        "outcomes": outcomes,
        "lengths": {s: log.lengths[s] for s in outcomes},
        "elapsed_s": elapsed,
        "sim_steps": steps,
        "sim_steps_per_s": steps / elapsed if elapsed > 0 else 0.0,
        "steps_without_new_command": no_command,
        "policy_resets": final.get("policy_resets", 0),
        "policy": {k: diag.get(k) for k in ("inference_latency_ms", "pairing_age_ms", "episode", "missed_deadlines")},
    }


def _tail(workdir: Path) -> str:
    path = workdir / "policy.log"
    return path.read_text()[-3000:] if path.exists() else "(no log)"


def _stop(*procs) -> None:
    import subprocess

    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def run_eval_episodes(policy_path: str, task: str, episodes: int, seed: int) -> dict[int, bool]:
    """The same seeds with ``robosteer eval``'s episode runner (env reset and policy noise seeded per episode)."""
    from robosteer.evaluation.rollout import EpisodeJob, EpisodeRunner
    from robosteer.policies import load_policy

    runner = EpisodeRunner(load_policy(policy_path), image_size=96, max_steps=None)
    try:
        return {s: runner.run(EpisodeJob(task, "none", s))["success"] for s in range(seed, seed + episodes)}
    finally:
        runner.close()


def measure_parity(task: str, episodes: int, seed: int, policy: str, with_eval: bool = True) -> dict:
    from ros_nodes.bench import _policy_path

    with tempfile.TemporaryDirectory() as tmp:
        policy_path, label = _policy_path(policy, Path(tmp))
        ros = run_ros_episodes(task, episodes, seed, policy_path, Path(tmp))
        evaluated = run_eval_episodes(policy_path, task, episodes, seed) if with_eval else None
    rate = ros["sim_steps_per_s"]
    healthy = rate >= HEALTHY_STEP_RATE * 15.0 and ros["steps_without_new_command"] <= HEALTHY_NO_COMMAND * max(
        1, ros["sim_steps"]
    )
    return {
        "policy": label,
        "task": task,
        "seed": seed,
        "episodes": episodes,
        "ros": ros,
        "eval": evaluated,
        "healthy": healthy,
    }


def _rate_line(name: str, outcomes: dict) -> str:
    from robosteer.evaluation.stats import wilson_interval

    n, k = len(outcomes), sum(outcomes.values())
    low, high = wilson_interval(k, n)
    return f"  {name:<16} {k:>3}/{n} = {100 * k / max(n, 1):5.1f} %  (95 % Wilson {100 * low:.0f}-{100 * high:.0f} %)"


def print_parity(result: dict) -> None:
    ros, evaluated = result["ros"], result["eval"]
    seeds = list(ros["outcomes"])
    print(
        f"Parity over ROS 2 ({result['policy']}, {result['task']}, seeds {seeds[0]}-{seeds[-1]}, consecutive "
        "auto-reset episodes, sim and policy nodes as separate processes)"
    )
    print(_rate_line("over ROS", ros["outcomes"]))
    if evaluated is not None:
        print(_rate_line("robosteer eval", evaluated))
        ros_only = [s for s in seeds if ros["outcomes"][s] and not evaluated[s]]
        eval_only = [s for s in seeds if evaluated[s] and not ros["outcomes"][s]]
        print(f"  seeds solved only over ROS: {ros_only or 'none'}; only in eval: {eval_only or 'none'}")
    pol = ros["policy"]
    print(
        f"  loop: {ros['sim_steps']} sim steps in {ros['elapsed_s']:.0f} s ({ros['sim_steps_per_s']:.1f}/s of 15), "
        f"{ros['steps_without_new_command']} without a new command, policy resets answered {ros['policy_resets']}, "
        f"episode resets {((pol.get('episode') or {}).get('resets'))}"
    )
    inference, pairing = pol.get("inference_latency_ms") or {}, pol.get("pairing_age_ms") or {}
    print(
        f"  inference p50 {inference.get('p50', float('nan')):.0f} ms, image-state pairing age p50 "
        f"{pairing.get('p50', float('nan')):.1f} ms max {pairing.get('max', float('nan')):.1f} ms; loop "
        + ("healthy" if result["healthy"] else "NOT real time on this machine: success here says little")
    )
