"""A probe robot for policy-node tests: joint states and camera images at 30 Hz, the instruction, commands received."""

from __future__ import annotations

import threading

import numpy as np
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory

from ros_nodes.harness import RosHarness
from ros_nodes.policy_node import LATCHED
from ros_nodes.ros_io import image_message, joint_state

HOME = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])


class Robot:
    """Joint states and camera images at 30 Hz (same stamps), the instruction, and the commands received."""

    def __init__(self, ros: RosHarness, cameras: list[str]):
        self.node = ros.add(ros.make_node("adapter_robot"))
        self.commands = 0
        self.lock = threading.Lock()
        self.state_pub = self.node.create_publisher(JointState, "/joint_states", 10)
        self.image_pubs = [self.node.create_publisher(Image, f"/camera/{c}/image_raw", 2) for c in cameras]
        self.task_pub = self.node.create_publisher(String, "/robosteer/task", LATCHED)
        self.node.create_subscription(JointTrajectory, "/fr3_arm_controller/joint_trajectory", self._on_cmd, 50)
        self.node.create_timer(1 / 30, self._publish)

    def _publish(self):
        t = self.node.get_clock().now().nanoseconds * 1e-9
        for pub in self.image_pubs:
            pub.publish(image_message(np.full((96, 96, 3), 90, np.uint8), t))
        self.state_pub.publish(joint_state(HOME, 0.04, "fr3_joint", t))

    def _on_cmd(self, msg):
        with self.lock:
            self.commands += 1
