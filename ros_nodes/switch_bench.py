"""Adapter switching over ROS 2 while the loop runs: the sim node and the policy node (base policy plus a steer and a
LoRA adapter with random weights) as separate processes; the adapter parameter is toggled ``switches`` times, once a
second. Printed: the weight swap time, the time from a request to its swap (the swap waits for the chunk being
computed), and what the control loop did meanwhile (missed ticks, sim steps without a new command).

``python -m ros_nodes.bench --switch 20`` (from Python: ``run_switch_benchmark``).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import yaml


def _write_adapters(policy_path: str, workdir: Path) -> Path:
    from robosteer.policies import load_policy
    from robosteer.tuners.switch import write_random_adapters

    paths = write_random_adapters(load_policy(policy_path), workdir / "adapters")
    config = workdir / "adapters.yaml"
    config.write_text(yaml.safe_dump({"adapters": {name: str(path) for name, path in paths.items()}}))
    return config


def measure_switching(switches: int, policy: str, task: str = "press_button") -> dict:
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter
    from std_msgs.msg import String
    from std_srvs.srv import Trigger

    from ros_nodes.bench import _policy_path
    from ros_nodes.harness import RosHarness
    from ros_nodes.parity import _sim_and_policy, _stop

    diag: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        policy_path, label = _policy_path(policy, workdir)
        adapters = _write_adapters(policy_path, workdir)
        sim, node = _sim_and_policy(workdir, policy_path, task, 0, {"adapters": str(adapters)})
        try:
            with RosHarness(domain_id=int(os.environ.get("ROS_DOMAIN_ID", "0"))) as ros:
                probe = ros.add(ros.make_node("robosteer_switch_bench"))
                probe.create_subscription(
                    String, "/robosteer_policy/diagnostics", lambda m: diag.update(json.loads(m.data)), 10
                )
                if not ros.wait_for(lambda: diag.get("ready"), timeout=300):
                    raise RuntimeError("the policy node never became ready")
                ros.call(probe, Trigger, "/robosteer_policy/reset_diagnostics", Trigger.Request())
                refused = 0
                for i in range(switches):
                    name = ("steer", "lora", "")[i % 3]
                    request = SetParameters.Request(parameters=[Parameter("adapter", value=name).to_parameter_msg()])
                    result = ros.call(probe, SetParameters, "/robosteer_policy/set_parameters", request)
                    refused += not result.results[0].successful
                    time.sleep(1.0)
                diag.clear()
                ros.wait_for(lambda: "adapter" in diag, timeout=10)
                after = dict(diag)
        finally:
            _stop(node, sim)
    return {
        "policy": label,
        "switches_requested": switches,
        "refused": refused,
        "adapter": after.get("adapter"),
        "ticks": after.get("ticks"),
        "missed_ticks": after.get("missed_deadlines"),
        "holds_no_action": after.get("holds_no_action"),
        "inference_ms": after.get("inference_latency_ms"),
    }


def print_switching(result: dict) -> None:
    adapter = result["adapter"] or {}
    swap, wait = adapter.get("switch_ms") or {}, adapter.get("request_to_switch_ms") or {}
    print(f"Adapter switching over ROS 2 ({result['policy']} + steer + LoRA adapters, sim in the loop)")
    print(
        f"  {adapter.get('switches')} switches ({result['refused']} refused): weight swap p50 {swap.get('p50', 0):.2f} "
        f"ms max {swap.get('max', 0):.2f} ms; request -> swap p50 {wait.get('p50', 0):.1f} ms max "
        f"{wait.get('max', 0):.1f} ms (waits for the chunk being computed)"
    )
    print(
        f"  control loop meanwhile: {result['ticks']} ticks, {result['missed_ticks']} missed, "
        f"{result['holds_no_action']} held for lack of an action (each switch starts an episode: one inference "
        f"without a plan), inference p50 {(result['inference_ms'] or {}).get('p50', float('nan')):.0f} ms"
    )
