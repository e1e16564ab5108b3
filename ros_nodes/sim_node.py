"""The MuJoCo Franka suite as a ROS 2 robot.

Steps a ``robosteer/<Task>-v0`` env at ``rate_hz`` towards the newest arm command (JointTrajectory on the FR3 arm
controller topic or Float64MultiArray on a position topic, like the real controllers) and gripper width command
(std_msgs/Float64), and publishes ``/joint_states`` (arm + finger joints), one sensor_msgs/Image per camera, the
episode's instruction (transient local, so late subscribers get it) and episode success (std_msgs/Bool every step).
``~/reset`` (std_srvs/Trigger) starts a new episode. Non-finite commands are ignored.

Episodes and the policy: an episode's clock (its first step) starts only once the policy node says it is ready on
``start_when_ready_topic`` (std_msgs/Bool; true after its first chunk while enabled), so a slow first inference costs
no steps; until then the sim publishes the episode's first observation at ``rate_hz`` without stepping. At the start
of every episode the sim calls the policy node's reset service (``policy_reset_service``, std_srvs/Trigger) and waits
for the answer, so no action planned in the previous episode reaches this one.

All MuJoCo work (stepping, offscreen rendering with its EGL context) happens on one dedicated thread that keeps the
step schedule, so the node behaves the same under any executor.

Import this module only in a process started with the ROS environment (:mod:`ros_nodes.entrypoints`).
"""

from __future__ import annotations

import json
import threading
import time

import numpy as np
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, Float64, Float64MultiArray, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from robosteer.constants import N_ARM_JOINTS, OBS_STATE, image_key
from robosteer.errors import RobosteerError
from robosteer.ros.messages import arm_joint_indices
from ros_nodes.ros_io import Param, declare_all, image_message, joint_state, now_seconds, spin_node

NODE_NAME = "robosteer_sim"

LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
"""QoS of the task topic: a subscriber that joins later still gets the current instruction."""

PARAMETERS: dict[str, Param] = {
    "task": Param(
        "pick_cube", "sim task name (pick_cube, push_cube, press_button, place_cube, pick_mug, reach_bowl) or env id"
    ),
    "variations": Param("none", "variation preset(s) of the sim suite, e.g. none, lighting, distractors"),
    "seed": Param(0, "seed of the first episode; each reset adds 1"),
    "image_size": Param(96, "rendered image height = width"),
    "camera_names": Param(["front", "wrist"], "sim cameras to render and publish"),
    "camera_topics": Param(["/camera/front/image_raw", "/camera/wrist/image_raw"], "one Image topic per camera"),
    "rate_hz": Param(15.0, "env steps per second (the sim's control rate)"),
    "joint_prefix": Param("fr3_joint", "joint names published: fr3_joint or panda_joint"),
    "joint_states_topic": Param("/joint_states", "sensor_msgs/JointState output"),
    "trajectory_topic": Param("/fr3_arm_controller/joint_trajectory", "JointTrajectory arm command input"),
    "position_topic": Param("/fr3_arm_controller/commands", "Float64MultiArray arm command input (7 or 8 values)"),
    "gripper_topic": Param("/robosteer/gripper_width", "std_msgs/Float64 gripper width command input [m]"),
    "task_topic": Param("/robosteer/task", "std_msgs/String instruction of the episode (transient local)"),
    "success_topic": Param("/robosteer/episode_success", "std_msgs/Bool success flag, every step"),
    "episode_topic": Param("~/episode", "std_msgs/String JSON every step: step, success, done, task, counters"),
    "auto_reset": Param(False, "start a new episode after success or the time limit"),
    "start_when_ready_topic": Param(
        "", "std_msgs/Bool of the policy node; episodes start stepping only once it said true ('' = at once)"
    ),
    "policy_reset_service": Param(
        "/robosteer_policy/reset", "std_srvs/Trigger called at the start of every episode ('' = none)"
    ),
    "policy_reset_timeout_s": Param(1.0, "longest wait for the policy node's reset answer [s]"),
}


class SimNode(Node):
    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        self.p = p = declare_all(self, PARAMETERS)
        if len(p["camera_names"]) != len(p["camera_topics"]):
            raise RobosteerError("camera_names and camera_topics must have the same length")
        import sim
        from sim.suites import FRANKA, SUITES, split_task

        if p["task"].partition("/")[0] in SUITES and split_task(p["task"])[0].name != FRANKA:
            raise RobosteerError(
                f"task {p['task']!r}: the ROS sim node runs the Franka suite only (it speaks joint states and joint "
                "trajectories; Meta-World's Sawyer takes Cartesian hand moves); evaluate Meta-World tasks with "
                "`robosteer eval --suite metaworld`"
            )
        sim.env_id(p["task"])  # unknown task -> RobosteerError now, not on the sim thread
        self.env = None
        self.lock = threading.Lock()
        self.seed = int(p["seed"])
        self.arm_target: np.ndarray | None = None
        self.gripper_target: float | None = None
        self.ignored_commands = 0
        self.commands_received = 0
        self.steps_without_new_command = 0
        """Steps (after the first command) at which no new arm command had arrived since the previous step."""
        self._new_command = False

        self.state_pub = self.create_publisher(JointState, p["joint_states_topic"], 10)
        self.image_pubs = {
            name: self.create_publisher(Image, topic, 2)
            for name, topic in zip(p["camera_names"], p["camera_topics"], strict=True)
        }
        self.task_pub = self.create_publisher(String, p["task_topic"], LATCHED)
        self.success_pub = self.create_publisher(Bool, p["success_topic"], 10)
        self.episode_pub = self.create_publisher(String, p["episode_topic"], LATCHED)
        self.create_subscription(JointTrajectory, p["trajectory_topic"], self._on_trajectory, 10)
        self.create_subscription(Float64MultiArray, p["position_topic"], self._on_position_array, 10)
        self.create_subscription(Float64, p["gripper_topic"], self._on_gripper, 10)
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.policy_ready = not p["start_when_ready_topic"]
        if p["start_when_ready_topic"]:
            self.create_subscription(Bool, p["start_when_ready_topic"], self._on_policy_ready, LATCHED)
        self.reset_client = (
            self.create_client(Trigger, p["policy_reset_service"]) if p["policy_reset_service"] else None
        )
        self.started = False
        """Whether the current episode's clock runs (its first step is taken once the policy is ready)."""
        self.policy_resets = 0
        """Episodes that started with an answered policy reset."""
        self.instruction, self.step_count, self.success, self.done = "", 0, False, False
        self.total_steps = 0
        """Env steps since the node started (``step_count`` restarts with every episode)."""
        self._reset_requested = threading.Event()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._start_error: Exception | None = None
        self._thread = threading.Thread(target=self._run, name="robosteer-sim", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=120.0):
            raise RobosteerError("the sim did not start within 120 s; check `robosteer doctor` (MuJoCo rendering)")
        if self._start_error is not None:
            raise RobosteerError(f"the sim did not start: {self._start_error}") from self._start_error

    # -- commands -------------------------------------------------------------------------------------------------
    def _set_arm(self, arm: np.ndarray) -> None:
        if arm.shape != (N_ARM_JOINTS,) or not np.all(np.isfinite(arm)):
            self.ignored_commands += 1
            return
        with self.lock:
            self.arm_target = arm
            self.commands_received += 1
            self._new_command = True

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        if not msg.points:
            return
        index = arm_joint_indices(list(msg.joint_names))
        if index is None:
            self.ignored_commands += 1
            return
        self._set_arm(np.asarray(msg.points[-1].positions, dtype=np.float64)[index])

    def _on_position_array(self, msg: Float64MultiArray) -> None:
        values = np.asarray(msg.data, dtype=np.float64)
        self._set_arm(values[:N_ARM_JOINTS] if values.size >= N_ARM_JOINTS else values)
        if values.size > N_ARM_JOINTS and np.isfinite(values[N_ARM_JOINTS]):
            with self.lock:
                self.gripper_target = float(values[N_ARM_JOINTS])

    def _on_gripper(self, msg: Float64) -> None:
        if np.isfinite(msg.data):
            with self.lock:
                self.gripper_target = float(msg.data)
        else:
            self.ignored_commands += 1

    def _on_policy_ready(self, msg: Bool) -> None:
        self.policy_ready = bool(msg.data)

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self._reset_requested.set()
        response.success, response.message = True, "a new episode starts at the next step"
        return response

    # -- stepping (sim thread only) -------------------------------------------------------------------------------
    def _run(self) -> None:
        import sim

        p = self.p
        try:
            self.env = sim.make_env(
                p["task"], image_size=p["image_size"], variations=p["variations"], cameras=tuple(p["camera_names"])
            )
            self._reset_episode()
        except Exception as err:  # reported by __init__ at once instead of a 120 s start timeout
            self._start_error = err
            self._ready.set()
            if self.env is not None:
                self.env.close()
            return
        self._ready.set()
        try:
            period, next_step = 1.0 / p["rate_hz"], time.monotonic()
            while not self._stop.is_set():
                next_step += period
                delay = next_step - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    break
                if delay <= 0:
                    next_step = time.monotonic()  # fell behind: don't try to catch up with a burst
                if not self.context.ok():  # shut down (SIGTERM/Ctrl-C) before destroy_node stopped this thread
                    break
                if self._reset_requested.is_set():
                    self._reset_requested.clear()
                    self.seed += 1
                    self._reset_episode()
                if not self.started:
                    self._start_or_wait()
                    continue
                self._step()
        except Exception:
            if self.context.ok() and not self._stop.is_set():
                raise
            # the context went down while this step published (shutdown races the step): nothing to report
        finally:
            self.env.close()

    def _reset_episode(self) -> None:
        with self.lock:
            obs, info = self.env.reset(seed=self.seed)
            self.arm_target, self.gripper_target = None, None
            self.obs, self.instruction = obs, info["task"]
            self.step_count, self.success, self.done = 0, False, False
            self.started = False
        self.task_pub.publish(String(data=self.instruction))

    def _start_or_wait(self) -> None:
        """Start the episode once the policy is ready (resetting the policy node first), else publish the first
        observation again without stepping."""
        if self.policy_ready:
            self._reset_policy()
            with self.lock:
                self.arm_target, self.gripper_target = None, None  # commands sent before the policy's reset
                self.started = True
        self._publish_observation()
        self._publish_episode()

    def _reset_policy(self) -> None:
        """Call the policy node's reset service and wait for the answer (skipped when no policy node offers it within
        the timeout; on busy machines the service can look unavailable for a moment)."""
        timeout = self.p["policy_reset_timeout_s"]
        if self.reset_client is None or not self.reset_client.wait_for_service(timeout_sec=timeout):
            return
        answered = threading.Event()
        future = self.reset_client.call_async(Trigger.Request())
        future.add_done_callback(lambda _: answered.set())
        if answered.wait(timeout) and future.result() is not None:
            self.policy_resets += 1
        else:
            self.get_logger().warn("the policy node did not answer its reset in time", throttle_duration_sec=5.0)

    def _step(self) -> None:
        if self.done:
            if self.p["auto_reset"]:
                self.seed += 1
                self._reset_episode()
                self._start_or_wait()
            else:
                self._publish_observation()
            return
        with self.lock:
            state = self.obs[OBS_STATE]
            arm = self.arm_target if self.arm_target is not None else state[:N_ARM_JOINTS]
            width = self.gripper_target if self.gripper_target is not None else state[N_ARM_JOINTS]
            action = np.concatenate([arm, [width]])
            if self.commands_received and not self._new_command:
                self.steps_without_new_command += 1
            self._new_command = False
            obs, _, terminated, truncated, info = self.env.step(action)
            self.obs, self.step_count, self.total_steps = obs, self.step_count + 1, self.total_steps + 1
            self.success = self.success or bool(info["is_success"])
            self.done = bool(terminated or truncated)
        self._publish_observation()
        self.success_pub.publish(Bool(data=self.success))
        self._publish_episode()
        if self.done:
            self.get_logger().info(f"episode done after {self.step_count} steps, success={self.success}")

    def _publish_observation(self) -> None:
        t = now_seconds(self)
        state = self.obs[OBS_STATE]
        # images first: a policy node stepping on joint-state arrival then finds this step's images already there
        for name, pub in self.image_pubs.items():
            pub.publish(image_message(self.obs[image_key(name)], t, frame_id=f"{name}_camera"))
        self.state_pub.publish(joint_state(state[:N_ARM_JOINTS], float(state[N_ARM_JOINTS]), self.p["joint_prefix"], t))

    def _publish_episode(self) -> None:
        status = {
            "seed": self.seed,
            "step": self.step_count,
            "success": self.success,
            "done": self.done,
            "task": self.instruction,
            "ignored_commands": self.ignored_commands,
            "commands_received": self.commands_received,
            "steps_without_new_command": self.steps_without_new_command,
            "started": self.started,
            "policy_resets": self.policy_resets,
            "total_steps": self.total_steps,
        }
        self.episode_pub.publish(String(data=json.dumps(status)))

    def destroy_node(self):
        """Stop and join the stepping thread first (it publishes), then destroy the ROS entities."""
        self._stop.set()
        self._thread.join(timeout=10.0)
        if self._thread.is_alive():
            self.get_logger().warn("the sim thread did not stop within 10 s")
        return super().destroy_node()


def main(args=None) -> None:
    spin_node(SimNode, args)
