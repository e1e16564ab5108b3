"""Closed loop over ROS: the sim node (MuJoCo Franka as a ROS 2 robot, configured by launch/config/sim.yaml) and the
policy node (launch/config/policy_sim.yaml) exchange joint states, images, the instruction and arm/gripper commands
over Fast DDS, and the sim node reports the episode outcome on /robosteer/episode_success.

With the embedded base policy an episode of a pretraining task must succeed: press_button from seed 0, the sim
starting the next seed after a failed episode (100 steps, 6.7 s), for up to 60 s; the sim starts stepping once the
policy node reports ready. Success over many consecutive episodes (each starting with the policy node's reset) is
tested with separate processes in test_ros_parity.py. Without the embedded policy a tiny SmolVLA proves only that the
loop runs (success is not asserted: its weights are random).

All three ROS contexts live in this process, each spun on one thread (ros_nodes.ros_io.make_executor): rclpy's
MultiThreadedExecutor resubmits callbacks waiting in its pool and starved this loop to 2-8 Hz in the full suite. The
pytest plugin also puts every test back on the normal scheduler: a video encoded by an earlier test (SVT-AV1, as root)
had left the test process's main thread, and so every thread started here, on SCHED_FIFO 99."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("sim")

from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile  # noqa: E402
from std_msgs.msg import Bool, String  # noqa: E402

from ros_nodes.harness import RosHarness  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "launch" / "config"


def _params(values: dict) -> list[Parameter]:
    return [Parameter(k, value=v) for k, v in values.items()]


def run_loop(ros_domain_id: int, policy, task: str, seconds: float, until_success: bool):
    from ros_nodes.policy_node import PolicyNode
    from ros_nodes.sim_node import SimNode

    with RosHarness(domain_id=ros_domain_id) as ros:
        probe = ros.add(ros.make_node("loop_probe"))
        success: list[bool] = []
        episode: list[dict] = []
        probe.create_subscription(Bool, "/robosteer/episode_success", lambda m: success.append(m.data), 50)
        probe.create_subscription(
            String,
            "/robosteer_sim/episode",
            lambda m: episode.append(json.loads(m.data)),
            QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL),
        )
        sim_ctx = RosHarness(domain_id=ros_domain_id, args=["--ros-args", "--params-file", str(CONFIG / "sim.yaml")])
        pol_ctx = RosHarness(
            domain_id=ros_domain_id, args=["--ros-args", "--params-file", str(CONFIG / "policy_sim.yaml")]
        )
        try:
            policy_node = pol_ctx.add(PolicyNode(policy=policy, context=pol_ctx.context))
            sim_node = sim_ctx.add(  # after the policy node: the sim starts stepping at once
                SimNode(
                    context=sim_ctx.context,
                    parameter_overrides=_params({"task": task, "seed": 0, "auto_reset": True}),
                )
            )
            assert policy_node.enabled, "policy_sim.yaml starts the node enabled"
            start = time.monotonic()
            done = ros.wait_for(lambda: any(success) if until_success else False, timeout=seconds)
            elapsed = time.monotonic() - start
            # a quick success may come after a few steps: let the loop run on (the sim auto-resets) so the health
            # counters below measure more than a handful of ticks
            ros.wait_for(lambda: len(success) >= 20, timeout=10)
            diagnostics = policy_node.diagnostics()
            return {
                "success": any(success),
                "done": done,
                "elapsed_s": elapsed,
                "diag": diagnostics,
                "sim_steps": sim_node.total_steps,
                "sim_commands": sim_node.commands_received,
                "n_success_msgs": len(success),
                "episode": episode,
                "instruction": sim_node.instruction,
                "policy_task": policy_node.task,
                "ignored": sim_node.ignored_commands,
            }
        finally:
            pol_ctx.close()
            sim_ctx.close()


def test_sim_and_policy_nodes_close_the_loop(ros_domain_id):
    from robosteer.policies import embedded_available

    embedded = embedded_available()
    if embedded:
        from robosteer.policies import load_embedded

        result = run_loop(ros_domain_id, load_embedded(), "press_button", seconds=60, until_success=True)
    else:
        from robosteer.policies import make_tiny_smolvla

        result = run_loop(ros_domain_id, make_tiny_smolvla(), "pick_cube", seconds=6, until_success=False)
    diag = result["diag"]
    assert result["policy_task"] == result["instruction"], "the instruction reaches the policy over the latched topic"
    assert diag["inferences"] >= 2 and diag["inference_errors"] == 0, diag
    assert diag["commands"] >= 10 and result["sim_steps"] >= 10, result
    assert result["sim_commands"] >= 10 and result["ignored"] == 0, "the sim received finite arm commands"
    assert result["n_success_msgs"] >= 10, "the sim reports the outcome every step"
    assert result["episode"] and result["episode"][0]["task"] == result["instruction"]
    if embedded and not result["success"]:
        # Success needs the loop to run in real time (15 Hz lock-step). Should this machine be too starved for that
        # (less than half of the control ticks), say so instead of reporting a policy failure; a loop that kept real
        # time and still failed is a real failure.
        expected_ticks = int(result["elapsed_s"] * 15)
        if diag["ticks"] < 0.5 * expected_ticks:
            pytest.xfail(
                f"control loop could not keep real time here ({diag['ticks']} of {expected_ticks} ticks, inference "
                f"p50 {diag['inference_latency_ms']['p50']:.0f} ms): success over ROS not measurable on this machine"
            )
        pytest.fail(f"embedded policy did not succeed over ROS although the loop kept real time: {diag}")
