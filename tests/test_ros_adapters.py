"""Adapters at run time over ROS 2: the policy node loads the base once with a steer and a LoRA adapter, picks one per
instruction (YAML map) or by ``ros2 param set ... adapter``, and then runs with exactly the weights ``apply_adapter``
gives (same fingerprint), without reloading the base; a switch starts a new episode, an unknown name is refused.

Real rclpy over Fast DDS, the embedded base policy (a tiny random SmolVLA without it) and adapters with small random
weights written the way ``robosteer finetune`` writes them."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

pytestmark = [pytest.mark.ros, pytest.mark.slow]

pytest.importorskip("rclpy")

from helpers.ros_robot import Robot  # noqa: E402
from rcl_interfaces.srv import SetParameters  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from ros_nodes.harness import RosHarness  # noqa: E402

HOME = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])


def load_base():
    from robosteer.policies import embedded_available, load_embedded, make_tiny_smolvla

    return load_embedded() if embedded_available() else make_tiny_smolvla()


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    """Adapter folders, the YAML map, and the fingerprint apply_adapter gives each (on a fresh base)."""
    from robosteer.tuners import apply_adapter
    from robosteer.tuners.switch import write_random_adapters

    root = tmp_path_factory.mktemp("adapters")
    base = load_base()
    paths = write_random_adapters(base, root)
    expected = {"": base.fingerprint()}
    for name, path in paths.items():
        expected[name] = apply_adapter(load_base(), path).fingerprint()
    config = root / "adapters.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "adapters": {"steer": "steer", "lora": str(paths["lora"])},  # relative and absolute folders
                "instructions": {"task a": "steer", "task b": "lora"},
                "default": "",
            }
        )
    )
    return config, expected


def set_adapter(ros: RosHarness, robot: Robot, name: str):
    request = SetParameters.Request(parameters=[Parameter("adapter", value=name).to_parameter_msg()])
    return ros.call(robot.node, SetParameters, "/robosteer_policy/set_parameters", request).results[0]


def test_adapters_switch_per_instruction_and_by_parameter(ros_domain_id, adapters):
    from ros_nodes.policy_node import PolicyNode

    config, expected = adapters
    policy = load_base()
    cameras = [key.rsplit(".", 1)[-1] for key in policy.image_keys]
    params = {
        "policy": "",
        "adapters": str(config),
        "start_enabled": True,
        "camera_names": cameras,
        "camera_topics": [f"/camera/{c}/image_raw" for c in cameras],
        "stale_periods": 30.0,
    }
    with RosHarness(domain_id=ros_domain_id) as ros:
        node = ros.add(
            PolicyNode(
                policy=policy,
                context=ros.context,
                parameter_overrides=[Parameter(k, value=v) for k, v in params.items()],
            )
        )
        robot = Robot(ros, cameras)

        def runs_with(name: str, after: int) -> bool:
            return node.adapters.bank.active == (name or None) and node.diag.inferences > after

        for task, name in (("task a", "steer"), ("task b", "lora"), ("something else", "")):
            before, commands = node.diag.inferences, robot.commands
            robot.task_pub.publish(String(data=task))
            assert ros.wait_for(lambda n=name, b=before: runs_with(n, b), timeout=30), node.diagnostics()
            assert policy.fingerprint() == expected[name], f"{task!r} must run exactly with adapter {name or 'base'}"
            assert ros.wait_for(lambda c=commands: robot.commands > c + 5, timeout=10), "the control loop kept going"
        assert node.policy is policy, "the base is never reloaded"

        before = node.diag.inferences
        resets = node.episodes.reasons["adapter"]
        assert set_adapter(ros, robot, "steer").successful
        assert ros.wait_for(lambda: runs_with("steer", before), timeout=30)
        assert policy.fingerprint() == expected["steer"] and node.episodes.reasons["adapter"] == resets + 1
        refused = set_adapter(ros, robot, "nope")
        assert not refused.successful and "unknown adapter" in refused.reason
        assert node.adapters.bank.active == "steer"
        assert node.diagnostics()["adapter"]["switches"] == 4
