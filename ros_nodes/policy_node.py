"""The policy node: runs a LeRobot policy (embedded, a checkpoint, or chunks from another machine) on a Franka arm or
the sim node.

Observation = the newest joint state + for every camera the newest image stamped at or before that state (as-of
pairing by header stamp; the pairing age is a diagnostic) + the task. A worker thread computes action chunks from
observation snapshots (inference never runs on the control thread); a fixed-rate control step executes them through
:class:`~ros_nodes.chunk_queue.ActionChunkQueue` (stale actions skipped, overlaps blended) and
:class:`~ros_nodes.safety.SafetyFilter`.

Episodes (:mod:`ros_nodes.episode`): the queued actions, the chunk being computed and the velocity clamp's anchor
belong to one episode. ``~/reset`` (std_srvs/Trigger), ``~/enable``, a new instruction, an adapter switch, a jump of
the measured state (robot reset) and a measured state that disagrees with the last command (arm moved by hand) start
a new one: the queue is cleared, a chunk still being computed is discarded when it lands, and every limit re-anchors
on the measured joint state. ``~/ready`` (std_msgs/Bool, transient local) says true once the node is enabled and has
computed its first chunk, so a sim can start its episode clock then.

The node starts disabled and publishes no command until ``~/enable`` (std_srvs/SetBool) is called with true.
Diagnostics (JSON counters) go to ``~/diagnostics`` (std_msgs/String); ``~/reset_diagnostics`` restarts them. With
``adapters`` (a YAML map instruction -> adapter folder) one base policy carries several steer/LoRA adapters, chosen
per instruction or by the ``adapter`` parameter (:mod:`ros_nodes.adapters`). Every callback is short, so the node
spins on one thread (:func:`ros_nodes.ros_io.make_executor`).

Run: ``robosteer-policy-node --ros-args --params-file launch/config/policy_fr3.yaml`` (or ``python -m ros_nodes
policy``) or ``ros2 launch robosteer sim.launch.py``. Import this module only in a process started with the ROS
environment (:mod:`ros_nodes.entrypoints` takes care of it).
"""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Bool, Float64, Float64MultiArray, String
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory

from robosteer.constants import ACTION_DIM, N_ARM_JOINTS, OBS_STATE, image_key
from robosteer.errors import RobosteerError
from robosteer.ros.alignment import AsOfBuffer, LatestBuffer
from robosteer.ros.messages import any_image_rgb, image_kind, joint_state_arm, joint_state_gripper, stamp_to_seconds
from ros_nodes.adapters import watch_adapter_parameter
from ros_nodes.chunk_queue import ActionChunkQueue
from ros_nodes.diagnostics import ControlDiagnostics, percentiles_ms, to_json
from ros_nodes.episode import EpisodeTracker
from ros_nodes.gripper import make_gripper
from ros_nodes.inference import InferenceWorker
from ros_nodes.policy_params import PARAMETERS, check_parameters, safety_config
from ros_nodes.ros_io import declare_all, float_array, joint_trajectory, now_seconds, spin_node
from ros_nodes.safety import SafetyFilter, StaleInputWatchdog

NODE_NAME = "robosteer_policy"
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
__all__ = ["NODE_NAME", "PARAMETERS", "PolicyNode", "main"]


class PolicyNode(Node):
    def __init__(self, policy=None, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        self.p = p = declare_all(self, PARAMETERS)
        check_parameters(p)
        self.period = 1.0 / float(p["control_rate_hz"])
        self.safety = SafetyFilter(safety_config(p, self.period))
        self.episodes = EpisodeTracker(p["reset_jump_velocity"], self.period, p["anchor_tolerance"])
        self.watchdog = StaleInputWatchdog(self.period, p["stale_periods"])
        self.queue = ActionChunkQueue(p["blend_old"], horizon=p["chunk_horizon"] or None)
        self.diag = ControlDiagnostics()
        self.pairing_age_s: deque = deque(maxlen=2000)
        self.lock = threading.Lock()
        self.enabled = bool(p["start_enabled"])
        self.task = p["task"]
        self.last_command: np.ndarray | None = None
        self.origin = time.monotonic()
        self.last_tick: int | None = None
        self.last_tick_time: float | None = None
        self.joint_buffer = LatestBuffer(max_age_s=self.period * p["stale_periods"], clock=time.monotonic)
        self.gripper_width: float | None = None
        self.images = {name: AsOfBuffer(p["max_image_age_s"], horizon_s=2.0) for name in p["camera_names"]}

        self.policy = policy if policy is not None else self._load_policy()
        self.adapters = self._load_adapters()
        self.replan_remaining = self._replan_threshold()
        self._warm = self.policy is None  # True once a chunk was computed (ready)
        self._ready_sent: bool | None = None
        self.worker = None
        if self.policy is not None:
            before = self.adapters.apply_pending if self.adapters is not None else None
            self.worker = InferenceWorker(self.policy, self._chunk_ready, self._inference_failed, before)
        self._create_interfaces()
        self._publish_ready()
        self.get_logger().info(f"ready ({'enabled' if self.enabled else 'disabled: call ~/enable true'})")

    # -- set-up ---------------------------------------------------------------------------------------------------
    def _load_policy(self):
        p = self.p
        if not p["policy"]:
            return None
        from robosteer.policies import load_policy

        self.get_logger().info(f"loading policy {p['policy']} on {p['device']}")
        threads = None if p["torch_threads"] < 0 else int(p["torch_threads"])
        return load_policy(p["policy"], device=p["device"], threads=threads)

    def _load_adapters(self):
        if not self.p["adapters"]:
            return None
        if self.policy is None:
            raise RobosteerError("adapters need a policy: set policy to 'embedded' or a checkpoint folder")
        from ros_nodes.adapters import AdapterSwitch

        switch = AdapterSwitch.from_yaml(self.policy, self.p["adapters"], log=self.get_logger().info)
        if self.p["adapter"]:
            switch.request(self.p["adapter"])
        elif self.task:
            switch.request_for_task(self.task)
        return switch

    def _replan_threshold(self) -> int:
        if self.policy is not None:
            missing = [k for k in self.policy.image_keys if k not in {image_key(n) for n in self.p["camera_names"]}]
            if missing:
                raise RobosteerError(f"the policy needs cameras {missing}; add them to camera_names/camera_topics")
        replan = int(self.p["replan_remaining"])
        if replan < 0:
            config = getattr(self.policy, "config", None)
            chunk, steps = getattr(config, "chunk_size", None), getattr(config, "n_action_steps", None)
            replan = int(chunk - steps) if chunk and steps else 4
        return replan

    def _create_interfaces(self) -> None:
        p = self.p
        inputs = ReentrantCallbackGroup()
        # cameras before the joint states: when an image and the state of the same instant are both waiting, the
        # executor takes them in creation order, so a state-triggered step already has its image to pair with
        for name, topic in zip(p["camera_names"], p["camera_topics"], strict=True):
            msg_type = CompressedImage if image_kind(topic) == "compressed_image" else Image
            self.create_subscription(
                msg_type, topic, lambda msg, n=name: self._on_image(n, msg), 2, callback_group=inputs
            )
        self.create_subscription(JointState, p["joint_states_topic"], self._on_joint_state, 10, callback_group=inputs)
        if p["gripper_state_topic"]:
            self.create_subscription(
                Float64, p["gripper_state_topic"], self._on_gripper_width, 10, callback_group=inputs
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
            p["gripper_result_timeout_s"],
        )
        self.diag_pub = self.create_publisher(String, p["diagnostics_topic"], 10)
        self.ready_pub = self.create_publisher(Bool, p["ready_topic"], LATCHED)
        self.create_service(SetBool, "~/enable", self._on_enable, callback_group=inputs)
        self.create_service(Trigger, "~/reset", self._on_reset, callback_group=inputs)
        self.create_service(Trigger, "~/reset_diagnostics", self._on_reset_diagnostics, callback_group=inputs)
        watch_adapter_parameter(self, self._on_set_adapter)
        self.control_group = MutuallyExclusiveCallbackGroup()
        if p["control_trigger"] == "timer":
            self.create_timer(self.period, self._control_step, callback_group=self.control_group)
        self.create_timer(1.0 / p["diagnostics_rate_hz"], self._publish_diagnostics, callback_group=inputs)

    # -- episodes -------------------------------------------------------------------------------------------------
    def _start_episode(self, reason: str) -> None:
        """Drop the plan (lock held): queue, in-flight chunk (discarded on arrival), clamp anchor."""
        self.episodes.new_episode(reason)
        self.queue.clear()
        self.last_command = None
        if self.worker is not None:
            self.worker.drop_waiting()  # a request not started yet belongs to the old episode

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self.lock:
            self._start_episode("service")
            generation = self.episodes.generation
        response.success, response.message = True, f"episode {generation}"
        return response

    def _on_enable(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        with self.lock:
            self.enabled = bool(request.data)
            self._start_episode("enable")
        self._publish_ready()
        response.success, response.message = True, "enabled" if request.data else "disabled"
        self.get_logger().info(response.message)
        return response

    def _on_task(self, msg: String) -> None:
        if not msg.data.strip() or msg.data == self.task:
            return
        with self.lock:
            self.task = msg.data
            self._start_episode("instruction")
            if self.adapters is not None:
                self.adapters.request_for_task(self.task)
        self.get_logger().info(f"task: {self.task}")

    def _on_set_adapter(self, name: str) -> None:
        """Queue a switch to adapter ``name`` ('' = base) for the inference thread; raises RobosteerError if unknown."""
        if self.adapters is None:
            if name:
                raise RobosteerError("no adapters loaded: set the adapters parameter (a YAML map) at start-up")
            return
        with self.lock:
            self.adapters.request(name)
            self._start_episode("adapter")
        self.get_logger().info(f"adapter {name or '(base)'} from the next chunk")

    def _publish_ready(self) -> None:
        ready = bool(self.enabled and self._warm)
        if ready != self._ready_sent:
            self._ready_sent = ready
            self.ready_pub.publish(Bool(data=ready))

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
            if self.episodes.jumped(arm, obs_time):
                self._start_episode("jump")
            self.joint_buffer.put((arm, obs_time), now)
        if self.p["control_trigger"] == "joint_states":
            self._control_step()

    def _on_gripper_width(self, msg: Float64) -> None:
        with self.lock:
            self.gripper_width = float(msg.data)

    def _on_image(self, name: str, msg: Image) -> None:
        try:
            rgb = any_image_rgb(msg, self.p["image_size"])
        except RobosteerError as err:
            self.get_logger().warn(f"camera {name}: {err}", throttle_duration_sec=5.0)
            return
        stamp = stamp_to_seconds(msg.header.stamp)
        with self.lock:
            self.images[name].put(stamp if stamp > 0 else now_seconds(self), rgb)

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
            self.pairing_age_s.clear()
        if hasattr(self.gripper, "reset_stats"):
            self.gripper.reset_stats()
        response.success, response.message = True, "diagnostics reset"
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

    def _measured(self) -> np.ndarray:
        arm, _ = self.joint_buffer.latest()
        width = self.gripper_width
        if width is None:
            self.get_logger().warn(
                "no gripper width: the joint states have no finger joints and gripper_state_topic "
                "is empty; the policy sees a closed gripper",
                throttle_duration_sec=10.0,
            )
            width = 0.0
        return np.concatenate([arm, [width]])

    def _next_command(self, tick: int, now: float) -> tuple[np.ndarray | None, float | None]:
        """Called with the lock held: the command for this tick (None = publish nothing) and its observation time."""
        if self.watchdog.is_stale(self.joint_buffer.stamp, now):
            self.diag.holds_stale_input += 1
            self.queue.clear()
            return self.last_command, None  # hold the last command; never invent a pose
        obs_time = self.joint_buffer.latest()[1]
        measured = self._measured()
        if self.last_command is not None and self.episodes.disagrees(self.last_command, measured):
            self._start_episode("disagreement")  # the arm is not where the plan left it: never pull it back
        previous = self.last_command if self.last_command is not None else measured
        if self.queue.remaining(tick) <= self.replan_remaining:
            self._request_inference(tick, measured, obs_time)
        action = self.queue.pop(tick)
        command = None if action is None else self.safety.apply(action, previous)
        if command is None:
            self.diag.holds_no_action += 1
            command = previous
        self.last_command = command
        return command, obs_time

    def _paired_images(self, obs_time: float) -> dict | None:
        """Every camera's newest image stamped at or before ``obs_time`` (lock held); None when one has none."""
        images = {}
        for name, buffer in self.images.items():
            hit = buffer.as_of(obs_time)
            if hit is None:
                self.diag.unpaired_observations += 1
                return None
            images[image_key(name)] = hit[1]
            self.pairing_age_s.append(obs_time - hit[0])
        return images

    def _request_inference(self, tick: int, state: np.ndarray, obs_time: float) -> None:
        generation = self.episodes.generation
        if self.worker is None or self.worker.busy_with(generation) or not self.task:
            return
        images = self._paired_images(obs_time)
        if images is not None:
            self.worker.submit(generation, tick, {OBS_STATE: state.astype(np.float32), **images}, self.task)

    def _inference_failed(self, generation: int, err: Exception) -> None:
        self.get_logger().error(f"inference failed: {type(err).__name__}: {err}")
        with self.lock:
            self.diag.inference_errors += 1

    def _chunk_ready(self, generation: int, tick: int, chunk: np.ndarray, t_obs: float) -> None:
        """Inference thread: queue a chunk of the current episode (T, 8), discard one of an ended episode."""
        now = time.monotonic()
        with self.lock:
            self.diag.inference_latency_s.append(now - t_obs)
            if generation != self.episodes.generation:
                self.diag.stale_chunks_dropped += 1  # computed for an episode that has ended
            else:
                self._queue_chunk(chunk, start_tick=tick, now_tick=self._tick_index(now))
                self.diag.inferences += 1
            first = not self._warm
            self._warm = True
        if first:
            self._publish_ready()

    def diagnostics(self) -> dict:
        with self.lock:
            extra = {
                "enabled": self.enabled,
                "ready": bool(self.enabled and self._warm),
                "task": self.task,
                "episode": self.episodes.stats,
                "pairing_age_ms": percentiles_ms(self.pairing_age_s),
                "safety": self.safety.stats,
                "queue": self.queue.stats,
                "stale": self.watchdog.holding,
            }
            if self.adapters is not None:
                extra["adapter"] = self.adapters.stats
            if hasattr(self.gripper, "stats"):
                extra["gripper"] = self.gripper.stats()
            return self.diag.to_dict(extra)

    def _publish_diagnostics(self) -> None:
        self.diag_pub.publish(String(data=to_json(self.diagnostics())))

    def destroy_node(self):
        """Stop and join the inference worker (it may be inside a chunk), then destroy the ROS entities."""
        if self.worker is not None and not self.worker.stop(timeout=10.0):
            self.get_logger().warn("the inference worker did not stop within 10 s")
        return super().destroy_node()


def main(args=None) -> None:
    spin_node(PolicyNode, args)
