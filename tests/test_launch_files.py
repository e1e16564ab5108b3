"""The launch files and their parameter files, checked without launch/launch_ros (not installable here): every
robosteer Node runs an existing console script with the node name its module uses, every parameter file exists and
declares only parameters the node has, and the same YAML files configure real nodes over rclpy. Packaging files for
colcon (package.xml, setup.py data files, setup.cfg, resource marker) are consistent."""

from __future__ import annotations

import ast
import configparser
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / "launch"
CONFIG = LAUNCH / "config"
NODE_MODULES = {
    "robosteer-policy-node": "ros_nodes.policy_node",
    "robosteer-recorder-node": "ros_nodes.recorder_node",
    "robosteer-sim-node": "ros_nodes.sim_node",
}


def console_scripts() -> dict[str, str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


def launch_nodes(path: Path) -> list[dict]:
    """Every ``Node(...)`` call of a launch file: its constant keywords and the YAML files / inline parameter keys."""
    nodes = []
    for call in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(call, ast.Call) and getattr(call.func, "id", None) == "Node"):
            continue
        info = {k.arg: k.value.value for k in call.keywords if isinstance(k.value, ast.Constant)}
        info["yaml"], info["inline"] = [], []
        for keyword in call.keywords:
            if keyword.arg == "parameters":
                for element in keyword.value.elts:
                    if isinstance(element, ast.Call) and getattr(element.func, "id", None) == "config_file":
                        info["yaml"].append(element.args[0].value)
                    elif isinstance(element, ast.Dict):
                        info["inline"] += [k.value for k in element.keys]
        nodes.append(info)
    return nodes


def declared(module_name: str) -> tuple[str, set[str]]:
    import importlib

    module = importlib.import_module(module_name)
    return module.NODE_NAME, set(module.PARAMETERS)


@pytest.mark.ros
@pytest.mark.parametrize("launch_file", ["sim.launch.py", "deploy.launch.py", "record.launch.py"])
def test_launch_nodes_use_console_scripts_and_declared_parameters(launch_file):
    scripts = console_scripts()
    ours = [n for n in launch_nodes(LAUNCH / launch_file) if n.get("package") == "robosteer"]
    assert ours, f"{launch_file} starts no robosteer node"
    for node in ours:
        executable = node["executable"]
        assert executable in scripts, f"{executable} is not a console script in pyproject.toml"
        module_name = NODE_MODULES[executable]
        assert scripts[executable].startswith("ros_nodes.entrypoints:")
        node_name, parameters = declared(module_name)
        assert node["name"] == node_name
        assert set(node["inline"]) <= parameters, f"undeclared inline parameters {set(node['inline']) - parameters}"
        assert node["yaml"], f"{executable} in {launch_file} gets no parameter file"
        for yaml_name in node["yaml"]:
            data = yaml.safe_load((CONFIG / yaml_name).read_text())
            assert list(data) == [node_name], f"{yaml_name} must configure {node_name}"
            keys = set(data[node_name]["ros__parameters"])
            assert keys <= parameters, f"{yaml_name}: undeclared parameters {keys - parameters}"


def test_deploy_includes_franka_bringup_with_robot_arguments():
    text = (LAUNCH / "deploy.launch.py").read_text()
    assert '"franka_bringup"' in text and '"franka.launch.py"' in text
    for argument in ("robot_ip", "use_fake_hardware", "load_gripper"):
        assert f'"{argument}": LaunchConfiguration("{argument}")' in text


def test_convert_bag_example_config_parses():
    from robosteer.ros.recording import RecordingConfig

    config = RecordingConfig.from_yaml(CONFIG / "topics.yaml")
    assert config.action_gripper.kind == "float32" and set(config.cameras) == {"front", "wrist"}


def test_ament_packaging_files():
    manifest = ET.parse(ROOT / "package.xml").getroot()
    assert manifest.findtext("name") == "robosteer"
    assert manifest.find("export/build_type").text == "ament_python"
    assert manifest.findtext("version") == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert (ROOT / "resource" / "robosteer").is_file()
    setup_cfg = configparser.ConfigParser()
    setup_cfg.read(ROOT / "setup.cfg")
    assert setup_cfg["install"]["install_scripts"] == "$base/lib/robosteer"
    assert setup_cfg["develop"]["script_dir"] == "$base/lib/robosteer"
    setup_py = (ROOT / "setup.py").read_text()
    for target in (
        "share/ament_index/resource_index/packages",
        "launch/*.launch.py",
        "launch/config/*.yaml",
        '"package.xml"',
    ):
        assert target in setup_py


@pytest.mark.ros
def test_parameter_files_configure_real_nodes(tmp_path, ros_domain_id):
    from rclpy.parameter import Parameter

    from ros_nodes.harness import RosHarness
    from ros_nodes.policy_node import PolicyNode
    from ros_nodes.recorder_node import RecorderNode

    cases = [
        (PolicyNode, "policy_fr3.yaml", {"policy": ""}),
        (PolicyNode, "policy_sim.yaml", {"policy": ""}),
        (RecorderNode, "recorder.yaml", {"dataset_root": str(tmp_path / "demos")}),
    ]
    for node_class, yaml_name, overrides in cases:
        path = CONFIG / yaml_name
        expected = next(iter(yaml.safe_load(path.read_text()).values()))["ros__parameters"]
        with RosHarness(domain_id=ros_domain_id, args=["--ros-args", "--params-file", str(path)]) as ros:
            node = ros.add(
                node_class(
                    context=ros.context, parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()]
                )
            )
            for name, value in expected.items():
                if name not in overrides:
                    assert node.get_parameter(name).value == value, f"{yaml_name}: {name}"
