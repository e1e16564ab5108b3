"""Latency benchmark of the ROS deployment path: the sim node (two cameras) and the policy node run as separate
processes over Fast DDS on loopback, like ``ros2 launch robosteer sim.launch.py``, for ``duration_s`` seconds.

Printed and returned:
- observation-to-command latency p50/p99/max: from the header stamp of the joint state a control step acted on (the
  sim stamps it when it publishes the observation) to the publish of that step's arm command;
- control-step work time, inference (chunk) latency, missed control ticks (late or overrunning steps) and sim steps
  that got no new command.

From any process: ``from ros_nodes.bench import run_ros_benchmark; run_ros_benchmark(60)`` (it starts a child with
the ROS environment); from a shell: ``python -m ros_nodes.bench --duration 60``.

``--success`` measures deployment parity instead (:mod:`ros_nodes.parity`): ``python -m ros_nodes.bench --success
--task pick_cube --episodes 20`` runs consecutive auto-reset episodes over ROS and the same seeds in ``robosteer
eval``'s episode runner, and prints both success rates with Wilson intervals (``run_parity_benchmark`` from Python).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from robosteer.ros.env import ensure_ros_environment, ros_environment

RESULT_PREFIX = "ROS_BENCH_RESULT "


def config_dir() -> Path:
    """The nodes' parameter files: the repository's launch/config, else the colcon-installed share/robosteer/config."""
    source = Path(__file__).resolve().parents[1] / "launch" / "config"
    if source.is_dir():
        return source
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("robosteer")) / "config"
    except Exception as err:
        from robosteer.errors import RobosteerError

        raise RobosteerError(
            "launch/config/*.yaml not found: run the benchmark from a robosteer checkout or a colcon install of it"
        ) from err


def run_ros_benchmark(
    duration_s: float = 60.0,
    policy: str = "embedded",
    task: str = "pick_cube",
    image_size: int = 96,
    trigger: str = "joint_states",
    timeout_s: float | None = None,
) -> dict:
    """Run the benchmark in a child process with the ROS environment; prints its report and returns the numbers."""
    args = [
        "--duration",
        str(duration_s),
        "--policy",
        policy,
        "--task",
        task,
        "--image-size",
        str(image_size),
        "--trigger",
        trigger,
    ]
    return _run_child(args, timeout_s or duration_s + 300)


def run_parity_benchmark(
    task: str = "pick_cube",
    episodes: int = 20,
    seed: int = 0,
    policy: str = "embedded",
    with_eval: bool = True,
    timeout_s: float | None = None,
) -> dict:
    """:mod:`ros_nodes.parity` in a child process with the ROS environment; prints its report, returns the numbers."""
    args = ["--success", "--task", task, "--episodes", str(episodes), "--seed", str(seed), "--policy", policy]
    return _run_child(args + ([] if with_eval else ["--no-eval"]), timeout_s or 300 + 30 * episodes)


def run_switch_benchmark(switches: int = 20, policy: str = "embedded", timeout_s: float | None = None) -> dict:
    """:mod:`ros_nodes.switch_bench` in a child process with the ROS environment."""
    return _run_child(["--switch", str(switches), "--policy", policy], timeout_s or 300 + 2 * switches)


def _run_child(args: list[str], limit: float) -> dict:
    import random

    env = ros_environment(domain_id=random.SystemRandom().randint(1, 100), localhost_only=True)
    env.setdefault("OMP_NUM_THREADS", "1")
    cmd = [sys.executable, "-m", "ros_nodes.bench", *args]
    # A session of its own: on a timeout the whole group (the child and the sim/policy node processes it started)
    # is stopped; killing only the child would leave both nodes running and loading the machine.
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tempfile.gettempdir(),  # MuJoCo writes MUJOCO_LOG.TXT into the working directory
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        _stop_group(proc)
        stdout, stderr = proc.communicate()
        raise RuntimeError(
            f"ROS benchmark did not finish within {limit:.0f} s (stopped); last output:\n{stdout[-2000:]}{stderr[-2000:]}"
        ) from None
    except BaseException:  # Ctrl-C: don't leave the nodes behind
        _stop_group(proc)
        raise
    result = None
    for line in stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX) :])
        else:
            print(line)
    if proc.returncode != 0 or result is None:
        raise RuntimeError(f"ROS benchmark failed (exit {proc.returncode}): {stderr.strip()[-3000:]}")
    return result


def _stop_group(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM the process group of ``proc`` (the nodes shut down cleanly on it), SIGKILL whatever is left after
    ``grace_s``."""
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        proc.poll()  # reap the child so it no longer counts as a member of the group
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def _policy_path(policy: str, workdir: Path) -> tuple[str, str]:
    """The policy to load in the node and its label; a tiny SmolVLA saved to ``workdir`` when asked or when the
    embedded one is not shipped."""
    from robosteer.policies import embedded_available

    if policy == "tiny" or (policy == "embedded" and not embedded_available()):
        from robosteer.policies import make_tiny_smolvla

        path = workdir / "tiny_policy"
        make_tiny_smolvla().save(path)
        return str(path), "tiny SmolVLA (embedded policy not available)" if policy == "embedded" else "tiny SmolVLA"
    return policy, policy


def _node_process(name: str, params: dict, params_file: Path, log: Path) -> subprocess.Popen:
    args = [sys.executable, "-m", "ros_nodes", name, "--ros-args", "--params-file", str(params_file)]
    for key, value in params.items():
        text = value if isinstance(value, str) and value else json.dumps(value)  # '' must be quoted for ROS
        args += ["-p", f"{key}:={text}"]
    return subprocess.Popen(args, stdout=log.open("w"), stderr=subprocess.STDOUT, env=dict(os.environ))


def _measure(duration_s: float, policy: str, task: str, image_size: int, trigger: str) -> dict:
    """Start a sim node and a policy node, let them warm up, and measure the policy node for ``duration_s``."""
    from ros_nodes.harness import RosHarness

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        policy_path, label = _policy_path(policy, workdir)
        sim = _node_process(
            "sim",
            {"task": task, "image_size": image_size, "auto_reset": True},
            config_dir() / "sim.yaml",
            workdir / "sim.log",
        )
        node = _node_process(
            "policy",
            {"policy": policy_path, "image_size": image_size, "control_trigger": trigger, "diagnostics_rate_hz": 2.0},
            config_dir() / "policy_sim.yaml",
            workdir / "policy.log",
        )
        try:
            with RosHarness(domain_id=int(os.environ.get("ROS_DOMAIN_ID", "0"))) as ros:
                latest: dict = {}
                probe = _subscribe_reports(ros, latest)
                _wait_until_warm(ros, probe, latest, workdir / "policy.log")
                print(f"warm: measuring {duration_s:.0f} s", flush=True)
                sim_before = dict(latest.get("sim", {}))
                time.sleep(duration_s)
                latest.pop("policy", None)
                if not ros.wait_for(lambda: "policy" in latest, timeout=10):  # a report from after the window
                    raise RuntimeError("the policy node published no diagnostics after the measured window")
                after, sim_after = dict(latest["policy"]), dict(latest.get("sim", {}))
        finally:
            _stop_nodes(node, sim)
    return _result(label, duration_s, image_size, trigger, after, sim_before, sim_after)


def _subscribe_reports(ros, latest: dict):
    """A probe node that keeps the latest policy diagnostics and sim episode report in ``latest`` ("policy",
    "sim")."""
    from rclpy.qos import DurabilityPolicy, QoSProfile
    from std_msgs.msg import String

    probe = ros.add(ros.make_node("robosteer_bench"))
    probe.create_subscription(
        String,
        "/robosteer_policy/diagnostics",
        lambda m: latest.__setitem__("policy", json.loads(m.data)),
        10,
    )
    probe.create_subscription(
        String,
        "/robosteer_sim/episode",
        lambda m: latest.__setitem__("sim", json.loads(m.data)),
        QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL),
    )
    return probe


def _wait_until_warm(ros, probe, latest: dict, policy_log: Path) -> None:
    """Wait for the policy node's first chunk (up to 240 s; its log tail in the error otherwise), let the first
    chunks settle, then reset its diagnostics so the measurement starts from zero."""
    from std_srvs.srv import Trigger

    started = ros.wait_for(lambda: latest.get("policy", {}).get("inferences", 0) >= 1, timeout=240)
    if not started:
        raise RuntimeError(
            "the policy node produced no chunk within 240 s; see its log:\n" + policy_log.read_text()[-3000:]
        )
    time.sleep(3.0)  # let the first chunks settle
    ros.call(probe, Trigger, "/robosteer_policy/reset_diagnostics", Trigger.Request())


def _stop_nodes(*procs: subprocess.Popen) -> None:
    """Terminate the node processes in order, killing any that has not exited 10 s later."""
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _result(label: str, duration_s: float, image_size: int, trigger: str, after: dict, sim_before, sim_after) -> dict:
    """The benchmark's figures from the policy node's diagnostics after the window and the sim's reports."""
    return {
        "policy": label,
        "duration_s": duration_s,
        "rate_hz": 15.0,
        "cameras": 2,
        "image_size": image_size,
        "trigger": trigger,
        "control_ticks": after["ticks"],
        "commands": after["commands"],
        "missed_ticks": after["missed_deadlines"],
        "sim_steps_without_new_command": sim_after.get("steps_without_new_command", 0)
        - sim_before.get("steps_without_new_command", 0),
        "obs_to_command_ms": after["obs_to_command_ms"],
        "tick_work_ms": after["tick_work_ms"],
        "inference_ms": after["inference_latency_ms"],
        "inferences": after["inferences"],
        "holds_no_action": after["holds_no_action"],
    }


def print_report(result: dict) -> None:
    lat, work, inf = result["obs_to_command_ms"], result["tick_work_ms"], result["inference_ms"]
    print(
        f"ROS loop ({result['policy']}, {result['cameras']} cameras {result['image_size']}px, "
        f"{result['rate_hz']:.0f} Hz, trigger={result['trigger']}, {result['duration_s']:.0f} s)"
    )
    print(
        f"  observation->command latency  p50 {lat['p50']:.1f} ms  p99 {lat['p99']:.1f} ms  max {lat['max']:.1f} ms"
        f"  (target p99 <= 30 ms)"
    )
    print(f"  control step work             p50 {work['p50']:.2f} ms  p99 {work['p99']:.2f} ms")
    print(
        f"  inference per chunk           p50 {inf['p50']:.0f} ms  p99 {inf['p99']:.0f} ms  ({result['inferences']} chunks)"
    )
    print(
        f"  control ticks {result['control_ticks']}, missed {result['missed_ticks']}, "
        f"sim steps without a new command {result['sim_steps_without_new_command']}, "
        f"holds for lack of an action {result['holds_no_action']}"
    )
    print(
        "  (counters and percentiles cover the measured window only; the policy node's diagnostics were reset after "
        "warm-up)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds (after warm-up)")
    parser.add_argument("--policy", default="embedded", help="'embedded', 'tiny' or a checkpoint folder")
    parser.add_argument("--task", default="pick_cube", help="sim task")
    parser.add_argument("--image-size", type=int, default=96, help="camera image size")
    parser.add_argument(
        "--trigger", default="joint_states", choices=["joint_states", "timer"], help="policy node control trigger"
    )
    parser.add_argument("--success", action="store_true", help="measure success over ROS next to robosteer eval")
    parser.add_argument("--episodes", type=int, default=20, help="--success: consecutive episodes")
    parser.add_argument("--seed", type=int, default=0, help="--success: seed of the first episode")
    parser.add_argument("--no-eval", action="store_true", help="--success: skip the robosteer eval episodes")
    parser.add_argument("--switch", type=int, default=0, help="toggle adapters this many times (switch latency)")
    args = parser.parse_args(argv)
    ensure_ros_environment()
    if args.switch:
        from ros_nodes.switch_bench import measure_switching, print_switching

        result = measure_switching(args.switch, args.policy)
        print_switching(result)
    elif args.success:
        from ros_nodes.parity import measure_parity, print_parity

        result = measure_parity(args.task, args.episodes, args.seed, args.policy, with_eval=not args.no_eval)
        print_parity(result)
    else:
        result = _measure(args.duration, args.policy, args.task, args.image_size, args.trigger)
        print_report(result)
    print(RESULT_PREFIX + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
