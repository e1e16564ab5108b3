"""The policy node: runs a LeRobot policy (embedded, a checkpoint, or chunks from another machine) on a Franka arm or
the sim node.

Observation = the newest joint state + the newest image of every camera + the task. A worker thread computes action
chunks from observation snapshots (inference never runs on the control thread); a fixed-rate control step executes
them through :class:`~ros_nodes.chunk_queue.ActionChunkQueue` (stale actions skipped, overlaps blended) and
:class:`~ros_nodes.safety.SafetyFilter`. The node starts disabled and publishes no command until ``~/enable``
(std_srvs/SetBool) is called with true. Diagnostics (JSON counters) go to ``~/diagnostics`` (std_msgs/String);
``~/reset_diagnostics`` (std_srvs/Trigger) restarts them. Every callback is short, so the node spins on one thread
(:func:`ros_nodes.ros_io.make_executor`); the callback groups only matter to whoever spins it on a multi-threaded
executor.

Run: ``robosteer-policy-node --ros-args --params-file launch/config/policy.yaml`` (or ``python -m ros_nodes policy``)
or ``ros2 launch robosteer sim.launch.py``. Import this module only in a process started with the ROS environment
(:mod:`ros_nodes.entrypoints` takes care of it).
"""

from __future__ import annotations

import queue
import threading
import time

import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Float64, Float64MultiArray, String
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory

from robosteer.constants import ACTION_DIM, N_ARM_JOINTS, OBS_STATE, image_key
from robosteer.errors import RobosteerError
from robosteer.ros_alignment import LatestBuffer
from robosteer.ros_messages import any_image_rgb, image_kind, joint_state_arm, joint_state_gripper, stamp_to_seconds
from ros_nodes.chunk_queue import ActionChunkQueue
from ros_nodes.diagnostics import ControlDiagnostics, to_json
from ros_nodes.gripper import make_gripper
from ros_nodes.ros_io import Param, declare_all, float_array, joint_trajectory, now_seconds, spin_node
from ros_nodes.safety import FR3_LOWER, FR3_MAX_VELOCITY, FR3_UPPER, SafetyConfig, SafetyFilter, StaleInputWatchdog  # noqa: E501

NODE_NAME = "robosteer_policy"
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)

PARAMETERS: dict[str, Param] = {
    "policy": Param(
        "embedded", "'embedded', a LeRobot checkpoint folder, or '' to execute chunks from action_chunk_topic"
    ),
    "device": Param("cpu", "torch device for the policy (cpu, cuda)"),
    "task": Param("", "instruction; a message on task_topic replaces it"),
    "task_topic": Param("/robosteer/task", "std_msgs/String topic with the instruction"),
    "joint_states_topic": Param("/joint_states", "sensor_msgs/JointState of the arm (fr3_joint* or panda_joint*)"),
    "gripper_state_topic": Param("", "std_msgs/Float64 gripper width [m] when joint states have no finger joints"),
    "camera_names": Param(["front", "wrist"], "policy camera keys (observation.images.<name>), one per camera topic"),
    "camera_topics": Param(
        ["/camera/front/image_raw", "/camera/wrist/image_raw"],
        "sensor_msgs/Image topics (rgb8/bgr8; .../compressed: CompressedImage)",
    ),
    "image_size": Param(96, "images are resized to image_size x image_size before the policy"),
    "max_image_age_s": Param(0.5, "no new chunk is computed while a camera image is older than this"),
    "control_rate_hz": Param(15.0, "control rate; one action of a chunk per period"),
    "control_trigger": Param(
        "timer",
        "'timer' (fixed-rate timer) or 'joint_states' (a step per arriving state, "
        "decimated to the control rate; lock-step with the sim node)",
    ),
    "stale_periods": Param(2.0, "hold position when the newest joint state is older than this many periods"),
    "command_mode": Param("trajectory", "'trajectory' (JointTrajectory) or 'position_array' (Float64MultiArray)"),
    "trajectory_topic": Param("/fr3_arm_controller/joint_trajectory", "JointTrajectory command topic"),
    "position_topic": Param("/fr3_arm_controller/commands", "Float64MultiArray command topic (position controller)"),
    "joint_prefix": Param("fr3_joint", "joint names in commands: fr3_joint or panda_joint"),
    "gripper_mode": Param(
        "auto", "'auto' (franka_gripper actions if franka_msgs imports, else topic), 'action', 'topic' or 'none'"
    ),
    "gripper_topic": Param("/robosteer/gripper_width", "std_msgs/Float64 gripper width target [m] (topic mode)"),
    "gripper_action_ns": Param("/franka_gripper", "namespace of the franka_gripper move/grasp actions"),
    "gripper_speed": Param(0.1, "gripper speed [m/s] for Move/Grasp"),
    "gripper_force": Param(20.0, "grasp force [N]"),
    "gripper_grasp_below": Param(0.03, "a width target below this is sent as Grasp, otherwise Move"),
    "gripper_deadband": Param(0.01, "send a new gripper goal only when the target moved more than this [m]"),
    "joint_lower": Param(list(FR3_LOWER), "joint position lower limits [rad]"),
    "joint_upper": Param(list(FR3_UPPER), "joint position upper limits [rad]"),
    "max_joint_velocity": Param(
        [0.5 * v for v in FR3_MAX_VELOCITY], "per-joint speed limit [rad/s] for the step clamp"
    ),
    "workspace_enabled": Param(False, "keep the flange (+ tool_length) inside the workspace box"),
    "workspace_min": Param([0.15, -0.7, 0.02], "workspace box lower corner (x, y, z) [m], robot base frame"),
    "workspace_max": Param([0.9, 0.7, 1.0], "workspace box upper corner (x, y, z) [m]"),
    "tool_length": Param(0.1034, "flange to the point kept in the box [m] (Franka Hand fingertip: 0.1034)"),
    "blend_old": Param(0.3, "weight of the queued action where a new chunk overlaps (0.3 old / 0.7 new)"),
    "replan_remaining": Param(
        -1,
        "request a new chunk when at most this many actions remain queued; -1: chunk_size - n_action_steps of the "
        "policy (re-plan as often as it was trained to), 4 without a policy",
    ),
    "chunk_horizon": Param(0, "use at most this many actions of each chunk (0: all)"),
    "action_chunk_topic": Param(
        "~/action_chunk",
        "Float64MultiArray (T x 8, row-major) chunks computed elsewhere; executed from the tick they arrive",
    ),
    "diagnostics_topic": Param("~/diagnostics", "std_msgs/String JSON counters"),
    "diagnostics_rate_hz": Param(1.0, "diagnostics publish rate"),
    "start_enabled": Param(False, "start enabled (default false: publish nothing until ~/enable true)"),
    "torch_threads": Param(
        1, "torch CPU threads for inference (0: torch's default); 1 keeps latency low when the cores are shared"
    ),
}


class PolicyNode(Node):
    def __init__(self, policy=None, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        self.p = p = declare_all(self, PARAMETERS)
        if len(p["camera_names"]) != len(p["camera_topics"]):
            raise RobosteerError("camera_names and camera_topics must have the same length (one name per topic)")
        if p["command_mode"] not in ("trajectory", "position_array"):
            raise RobosteerError(f"command_mode {p['command_mode']!r}: use trajectory or position_array")
        if p["control_trigger"] not in ("timer", "joint_states"):
            raise RobosteerError(f"control_trigger {p['control_trigger']!r}: use timer or joint_states")
        if not (p["control_rate_hz"] > 0 and p["diagnostics_rate_hz"] > 0):
            raise RobosteerError("control_rate_hz and diagnostics_rate_hz must be > 0 (e.g. 15.0 and 1.0)")
        self.period = 1.0 / float(p["control_rate_hz"])
        self.safety = SafetyFilter(
            SafetyConfig(
                lower=tuple(p["joint_lower"]),
                upper=tuple(p["joint_upper"]),
                max_velocity=tuple(p["max_joint_velocity"]),
                period_s=self.period,
                workspace_min=tuple(p["workspace_min"]) if p["workspace_enabled"] else (),
                workspace_max=tuple(p["workspace_max"]) if p["workspace_enabled"] else (),
                tool_length=p["tool_length"],
            )
        )
        self.watchdog = StaleInputWatchdog(self.period, p["stale_periods"])
        self.queue = ActionChunkQueue(p["blend_old"], horizon=p["chunk_horizon"] or None)
        self.diag = ControlDiagnostics()
        self.lock = threading.Lock()
        self.enabled = bool(p["start_enabled"])
        self.task = p["task"]
        self.last_command: np.ndarray | None = None
        self.origin = time.monotonic()
        self.last_tick: int | None = None
        self.last_tick_time: float | None = None

        self.joint_buffer = LatestBuffer(max_age_s=self.period * p["stale_periods"], clock=time.monotonic)
        self.gripper_width: float | None = None
        self.images = {name: LatestBuffer(p["max_image_age_s"], clock=time.monotonic) for name in p["camera_names"]}

        if p["torch_threads"] > 0:
            import torch

            torch.set_num_threads(int(p["torch_threads"]))
        self.policy = policy
        if self.policy is None and p["policy"]:
            from robosteer.policies import load_policy

            self.get_logger().info(f"loading policy {p['policy']} on {p['device']}")
            self.policy = load_policy(p["policy"], device=p["device"])
        if self.policy is not None:
            missing = [k for k in self.policy.image_keys if k not in {image_key(n) for n in p["camera_names"]}]
            if missing:
                raise RobosteerError(f"the policy needs cameras {missing}; add them to camera_names/camera_topics")

        self.replan_remaining = int(p["replan_remaining"])
        if self.replan_remaining < 0:
            config = getattr(self.policy, "config", None)
            chunk, steps = getattr(config, "chunk_size", None), getattr(config, "n_action_steps", None)
            self.replan_remaining = int(chunk - steps) if chunk and steps else 4

        inputs = ReentrantCallbackGroup()
        self.create_subscription(JointState, p["joint_states_topic"], self._on_joint_state, 10, callback_group=inputs)
        if p["gripper_state_topic"]:
            self.create_subscription(
                Float64, p["gripper_state_topic"], self._on_gripper_width, 10, callback_group=inputs
            )
        for name, topic in zip(p["camera_names"], p["camera_topics"], strict=True):
            msg_type = CompressedImage if image_kind(topic) == "compressed_image" else Image
            self.create_subscription(
                msg_type, topic, lambda msg, n=name: self._on_image(n, msg), 2, callback_group=inputs
            )
        self.create_subscription(String, p["task_topic"], self._on_task, LATCHED, callback_group=inputs)
        self.create_subscription(
            Float64MultiArray, p["action_chunk_topic"], self._on_external_chunk, 10, callback_group=inputs
        )
        if p["command_mode"] == "trajectory":
            self.arm_pub = self.create_publisher(JointTrajectory, p["trajectory_topic"], 10)
        else:
            self.arm_pub = self.create_publisher(Float64MultiArray, p["position_topic"], 10)
        self.gripper = make_gripper(
            self,
            p["gripper_mode"],
            p["gripper_topic"],
            p["gripper_action_ns"],
            p["gripper_speed"],
            p["gripper_force"],
            p["gripper_grasp_below"],
            p["gripper_deadband"],
        )
        self.diag_pub = self.create_publisher(String, p["diagnostics_topic"], 10)
        self.create_service(SetBool, "~/enable", self._on_enable, callback_group=inputs)
        self.create_service(Trigger, "~/reset_diagnostics", self._on_reset_diagnostics, callback_group=inputs)
        self.control_group = MutuallyExclusiveCallbackGroup()
        if p["control_trigger"] == "timer":
            self.create_timer(self.period, self._control_step, callback_group=self.control_group)
        self.create_timer(1.0 / p["diagnostics_rate_hz"], self._publish_diagnostics, callback_group=inputs)

        self._requests: queue.Queue = queue.Queue(maxsize=1)
        self._inflight = False
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._inference_loop, name="robosteer-inference", daemon=True)
        self._worker.start()
        self.get_logger().info(f"ready ({'enabled' if self.enabled else 'disabled: call ~/enable true'})")

    # -- inputs ---------------------------------------------------------------------------------------------------
    def _on_joint_state(self, msg: JointState) -> None:
        try:
            arm = joint_state_arm(msg)
        except RobosteerError as err:  # e.g. a gripper-only JointState on the same topic: ignore it
            self.get_logger().warn(str(err), throttle_duration_sec=5.0)
            return
        width = joint_state_gripper(msg)
        now = time.monotonic()
        stamp = stamp_to_seconds(msg.header.stamp)
        obs_time = stamp if stamp > 0 else now_seconds(self)
        with self.lock:
            if width is not None:
                self.gripper_width = width
            self.joint_buffer.put((arm, obs_time), now)
        if self.p["control_trigger"] == "joint_states":
            self._control_step()

    def _on_gripper_width(self, msg: Float64) -> None:
        with self.lock:
            self.gripper_width = float(msg.data)

    def _on_image(self, name: str, msg: Image) -> None:
        try:
            self.images[name].put(any_image_rgb(msg, self.p["image_size"]), time.monotonic())
        except RobosteerError as err:
            self.get_logger().warn(f"camera {name}: {err}", throttle_duration_sec=5.0)

    def _on_task(self, msg: String) -> None:
        if msg.data.strip() and msg.data != self.task:
            self.task = msg.data
            self.get_logger().info(f"task: {self.task}")

    def _on_external_chunk(self, msg: Float64MultiArray) -> None:
        values = np.asarray(msg.data, dtype=np.float64)
        if values.size == 0 or values.size % ACTION_DIM:
            self.get_logger().warn(f"chunk of {values.size} values is not T x {ACTION_DIM}; ignored")
            return
        with self.lock:
            tick = self._tick_index(time.monotonic())
            if self.last_tick is not None and tick <= self.last_tick:
                tick = self.last_tick + 1  # this tick's command is already out: the chunk starts at the next one
            self._queue_chunk(values.reshape(-1, ACTION_DIM), start_tick=tick, now_tick=tick)  # (T, 8)
            self.diag.inferences += 1

    def _queue_chunk(self, chunk: np.ndarray, start_tick: int, now_tick: int) -> None:
        """Queue a (T, 8) chunk (lock held); NaN/Inf actions are counted by the safety filter and kept out."""
        self.safety.screen_chunk(chunk)
        self.queue.push(chunk, start_tick=start_tick, now_tick=now_tick)

    def _on_reset_diagnostics(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        """Start the counters and latency windows afresh (e.g. after a warm-up)."""
        with self.lock:
            self.diag = ControlDiagnostics()
        response.success, response.message = True, "diagnostics reset"
        return response

    def _on_enable(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        with self.lock:
            self.enabled = bool(request.data)
            self.queue.clear()
            self.last_command = None
        response.success, response.message = True, "enabled" if request.data else "disabled"
        self.get_logger().info(response.message)
        return response

    # -- control --------------------------------------------------------------------------------------------------
    def _tick_index(self, t: float) -> int:
        """Control tick at monotonic time ``t`` (call with the lock held).

        Timer: ticks of a fixed grid. joint_states: the tick advances with each arriving state (by the number of
        periods elapsed, so lost states still count), and states closer than half a period share a tick (decimation);
        a grid would map jittery arrivals near a half-period boundary onto the same tick or skip one.
        """
        if self.p["control_trigger"] == "timer" or self.last_tick is None:
            return int(round((t - self.origin) / self.period))
        elapsed = (t - self.last_tick_time) / self.period
        return self.last_tick + (max(1, int(round(elapsed))) if elapsed >= 0.5 else 0)

    def _control_step(self) -> None:
        start = time.monotonic()
        with self.lock:
            tick = self._tick_index(start)
            if tick == self.last_tick or not self.enabled:
                return
            if self.last_tick_time is not None and start - self.last_tick_time > 1.5 * self.period:
                self.diag.missed_deadlines += 1
            self.last_tick, self.last_tick_time = tick, start
            self.diag.ticks += 1
            command, obs_time = self._next_command(tick, start)
        if command is None:
            return
        if self.p["command_mode"] == "trajectory":
            self.arm_pub.publish(joint_trajectory(command, self.p["joint_prefix"], self.period))
        else:
            self.arm_pub.publish(float_array(command[:N_ARM_JOINTS]))
        if self.gripper is not None:
            self.gripper.command(float(command[N_ARM_JOINTS]))
        done = time.monotonic()
        with self.lock:
            self.diag.commands += 1
            if obs_time is not None:
                self.diag.obs_to_command_s.append(now_seconds(self) - obs_time)
            self.diag.tick_work_s.append(done - start)
            if done - start > self.period:
                self.diag.missed_deadlines += 1

    def _next_command(self, tick: int, now: float) -> tuple[np.ndarray | None, float | None]:
        """Called with the lock held: the command for this tick (None = publish nothing) and its observation time."""
        newest = self.joint_buffer.latest()
        if self.watchdog.is_stale(self.joint_buffer.stamp, now):
            self.diag.holds_stale_input += 1
            self.queue.clear()
            return self.last_command, None  # hold the last command; never invent a pose
        arm, obs_time = newest
        width = self.gripper_width
        if width is None:
            self.get_logger().warn(
                "no gripper width: the joint states have no finger joints and gripper_state_topic "
                "is empty; the policy sees a closed gripper",
                throttle_duration_sec=10.0,
            )
            width = 0.0
        measured = np.concatenate([arm, [width]])
        previous = self.last_command if self.last_command is not None else measured
        if self.queue.remaining(tick) <= self.replan_remaining:
            self._request_inference(tick, measured)
        action = self.queue.pop(tick)
        command = None if action is None else self.safety.apply(action, previous)
        if command is None:
            self.diag.holds_no_action += 1
            command = previous
        self.last_command = command
        return command, obs_time

    def _request_inference(self, tick: int, state: np.ndarray) -> None:
        if self.policy is None or self._inflight or not self.task:
            return
        obs = {OBS_STATE: state.astype(np.float32)}
        for name, buffer in self.images.items():
            image = buffer.get()
            if image is None:
                return
            obs[image_key(name)] = image
        self._inflight = True
        self._requests.put_nowait((tick, obs, self.task, time.monotonic()))

    def _inference_loop(self) -> None:
        while not self._stop.is_set():
            try:
                tick, obs, task, t_obs = self._requests.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                chunk = self.policy.predict_action_chunk(obs, task)  # (T, 8)
            except Exception as err:  # keep the node alive; the control step holds position meanwhile
                self.get_logger().error(f"inference failed: {type(err).__name__}: {err}")
                with self.lock:
                    self.diag.inference_errors += 1
                    self._inflight = False
                continue
            now = time.monotonic()
            with self.lock:
                self._queue_chunk(chunk, start_tick=tick, now_tick=self._tick_index(now))
                self.diag.inferences += 1
                self.diag.inference_latency_s.append(now - t_obs)
                self._inflight = False

    def diagnostics(self) -> dict:
        with self.lock:
            return self.diag.to_dict(
                {
                    "enabled": self.enabled,
                    "task": self.task,
                    "safety": self.safety.stats,
                    "queue": self.queue.stats,
                    "stale": self.watchdog.holding,
                }
            )

    def _publish_diagnostics(self) -> None:
        self.diag_pub.publish(String(data=to_json(self.diagnostics())))

    def destroy_node(self):
        """Stop and join the inference worker (it may be inside a chunk), then destroy the ROS entities."""
        self._stop.set()
        self._worker.join(timeout=10.0)
        if self._worker.is_alive():
            self.get_logger().warn("the inference worker did not stop within 10 s")
        return super().destroy_node()


def main(args=None) -> None:
    spin_node(PolicyNode, args)
