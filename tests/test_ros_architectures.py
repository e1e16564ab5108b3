"""The ROS 2 policy node deploys every architecture: a tiny random-weight pi0 or pi05 checkpoint is loaded by the node
itself (its ``policy`` parameter) with a steer or a LoRA adapter from the YAML map, or as a merged checkpoint, and runs
with exactly the weights ``apply_adapter`` gives. Real rclpy over Fast DDS."""

from __future__ import annotations

import pytest
import yaml

pytestmark = [pytest.mark.ros, pytest.mark.slow]

pytest.importorskip("rclpy")

from rclpy.parameter import Parameter  # noqa: E402

from ros_nodes.harness import RosHarness  # noqa: E402


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ROBOSTEER_CACHE", str(tmp_path / "cache"))


def _checkpoints(kind: str, root) -> tuple:
    """Base checkpoint, adapters.yaml, and the fingerprint of base + each adapter (and of the merged steer)."""
    from robosteer.policies import load_policy
    from robosteer.policies.pi_builder import PiSpec, make_tiny_pi
    from robosteer.tuners import apply_adapter
    from robosteer.tuners.switch import write_random_adapters

    base = root / "base"
    make_tiny_pi(PiSpec(kind=kind, tokenizer_max_length=64)).save(base)
    paths = write_random_adapters(load_policy(base), root / "adapters", scale=0.2)
    expected = {name: apply_adapter(load_policy(base), path).fingerprint() for name, path in paths.items()}
    apply_adapter(load_policy(base), paths["steer"]).save(root / "merged")
    config = root / "adapters.yaml"
    config.write_text(yaml.safe_dump({"adapters": {k: str(v) for k, v in paths.items()}, "default": ""}))
    return base, config, expected


def _run_node(ros_domain_id, **params):
    """Start the policy node with ``params``, feed it state and images until it has run inference; its policy."""
    from helpers.ros_robot import Robot

    from ros_nodes.policy_node import PolicyNode

    cameras = ["front", "wrist"]
    values = {
        "start_enabled": True,
        "camera_names": cameras,
        "camera_topics": [f"/camera/{c}/image_raw" for c in cameras],
        "stale_periods": 30.0,
        "task": "pick up the red cube",
        **params,
    }
    with RosHarness(domain_id=ros_domain_id) as ros:
        node = ros.add(
            PolicyNode(context=ros.context, parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])
        )
        robot = Robot(ros, cameras)
        assert ros.wait_for(lambda: node.diag.inferences > 1 and robot.commands > 2, timeout=60), node.diagnostics()
        return node.policy


@pytest.mark.parametrize("kind", ["pi0", "pi05"])
def test_node_deploys_base_plus_adapter_and_merged_checkpoints(kind, ros_domain_id, tmp_path):
    base, config, expected = _checkpoints(kind, tmp_path)
    for name in ("steer", "lora"):
        policy = _run_node(ros_domain_id, policy=str(base), adapters=str(config), adapter=name)
        assert policy.layout.architecture == kind
        assert policy.fingerprint() == expected[name], f"{kind} + {name} must run with apply_adapter's weights"
    merged = _run_node(ros_domain_id, policy=str(tmp_path / "merged"))
    assert merged.fingerprint() == expected["steer"], "the merged checkpoint runs base + steer's weights"
