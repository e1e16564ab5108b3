"""Checks that the installed stack really works here: MuJoCo renders, LeRobot writes and reads a dataset,
rclpy talks over DDS. Used by ``robosteer doctor`` and the foundation tests."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

_PROBE_MJCF = """
<mujoco>
  <visual><quality shadowsize="0"/></visual>
  <worldbody>
    <light pos="0 0 2" dir="0 0 -1"/>
    <geom type="plane" size="1 1 0.1" rgba="0.8 0.8 0.8 1"/>
    <body pos="0 0 0.1"><freejoint/><geom type="box" size="0.05 0.05 0.05" rgba="0.9 0.1 0.1 1"/></body>
    <camera name="front" pos="0 -0.6 0.4" xyaxes="1 0 0 0 0.6 0.8"/>
  </worldbody>
</mujoco>
"""


def render_probe_frame(size: int = 96) -> np.ndarray:
    """Render one RGB frame of a red box offscreen; returns (size, size, 3) uint8."""
    from robosteer.environment import RENDERING, apply_env_defaults

    apply_env_defaults(RENDERING)
    import mujoco

    model = mujoco.MjModel.from_xml_string(_PROBE_MJCF)
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    with mujoco.Renderer(model, size, size) as renderer:
        renderer.update_scene(data, camera="front")
        return renderer.render().copy()


def write_probe_dataset(root: Path, n_episodes: int = 2, n_frames: int = 6, fps: int = 15):
    """Write a tiny LeRobotDataset v3 (state, action, one image) with lerobot's own writer; returns the dataset."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    features = {
        "observation.state": {"dtype": "float32", "shape": (8,), "names": None},
        "action": {"dtype": "float32", "shape": (8,), "names": None},
        "observation.images.front": {"dtype": "image", "shape": (16, 16, 3), "names": ["height", "width", "channel"]},
    }
    dataset = LeRobotDataset.create("robosteer/probe", fps=fps, features=features, root=root, use_videos=False)
    rng = np.random.default_rng(0)
    for ep in range(n_episodes):
        for t in range(n_frames):
            dataset.add_frame(
                {
                    "observation.state": np.full(8, ep * 100 + t, dtype=np.float32),
                    "action": rng.standard_normal(8).astype(np.float32),
                    "observation.images.front": rng.integers(0, 255, (16, 16, 3), dtype=np.uint8),
                    "task": f"probe task {ep}",
                }
            )
        dataset.save_episode()
    dataset.finalize()
    return dataset


ROS_PUBLISHER = textwrap.dedent("""
    import sys, time, rclpy
    from sensor_msgs.msg import JointState
    rclpy.init()
    node = rclpy.create_node("robosteer_probe_pub")
    pub = node.create_publisher(JointState, "/robosteer_probe/joint_states", 10)
    end = time.monotonic() + float(sys.argv[1])
    while time.monotonic() < end:
        msg = JointState(name=[f"fr3_joint{i}" for i in range(1, 8)], position=[0.1 * i for i in range(7)])
        msg.header.stamp = node.get_clock().now().to_msg()
        pub.publish(msg)
        rclpy.spin_once(node, timeout_sec=0.05)
    rclpy.shutdown()
""")

ROS_SUBSCRIBER = textwrap.dedent("""
    import sys, time, rclpy
    from sensor_msgs.msg import JointState
    rclpy.init()
    node = rclpy.create_node("robosteer_probe_sub")
    got = []
    node.create_subscription(JointState, "/robosteer_probe/joint_states", got.append, 10)
    end = time.monotonic() + float(sys.argv[1])
    while time.monotonic() < end and not got:
        rclpy.spin_once(node, timeout_sec=0.1)
    rclpy.shutdown()
    if not got:
        sys.exit("no JointState received")
    print(",".join(got[0].name), ",".join(f"{p:.1f}" for p in got[0].position))
""")


def ros_pubsub_roundtrip(timeout_s: float = 20.0, domain_id: int | None = None) -> str:
    """Run a JointState publisher and a subscriber as two processes over Fast DDS on loopback.

    Returns what the subscriber printed (joint names and positions); raises RuntimeError when nothing arrived.
    """
    from robosteer.ros.env import ros_environment

    env = ros_environment(domain_id=domain_id, localhost_only=True)
    with tempfile.TemporaryDirectory() as tmp:
        pub_py, sub_py = Path(tmp, "pub.py"), Path(tmp, "sub.py")
        pub_py.write_text(ROS_PUBLISHER)
        sub_py.write_text(ROS_SUBSCRIBER)
        pub = subprocess.Popen(
            [sys.executable, str(pub_py), str(timeout_s)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            sub = subprocess.run(
                [sys.executable, str(sub_py), str(timeout_s)],
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout_s + 30,
            )
        finally:
            pub.kill()
            pub.wait()
    if sub.returncode != 0:
        raise RuntimeError(f"ROS 2 pub/sub failed: {sub.stderr.strip()[-2000:]}")
    return sub.stdout.strip()
