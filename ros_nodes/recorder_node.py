"""The demonstration recorder: cameras + joint states + the commanded action (a teleop topic such as GELLO's
``gello/joint_states`` or the controller's command topic) + the gripper, sampled at a fixed fps with as-of alignment
and a maximum age (:class:`robosteer.ros.recording.RecordingSession`, the same code ``robosteer convert-bag`` uses),
written episode by episode into a LeRobotDataset v3.

Services (std_srvs/Trigger): ``~/start`` opens an episode, ``~/save`` writes it to disk (finalised: a killed recorder
loses at most the open episode), ``~/discard`` drops it. The instruction is the ``task`` parameter or the newest
message on ``task_topic``. Status (JSON) on ``~/status``.

Import this module only in a process started with the ROS environment (:mod:`ros_nodes.entrypoints`).
"""

from __future__ import annotations

import json

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Float32, Float64, Float64MultiArray, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from robosteer.errors import RobosteerError
from robosteer.ros.dataset import EpisodeSink, parse_labels
from robosteer.ros.recording import RecordingConfig, RecordingSession, TopicSpec
from ros_nodes.ros_io import Param, declare_all, now_seconds, spin_node

NODE_NAME = "robosteer_recorder"

MESSAGE_TYPES = {
    "joint_state": JointState,
    "joint_trajectory": JointTrajectory,
    "float64_array": Float64MultiArray,
    "float": Float64,
    "float32": Float32,
    "image": Image,
    "compressed_image": CompressedImage,
}

PARAMETERS: dict[str, Param] = {
    "dataset_root": Param("", "dataset folder (created, or resumed when it holds a dataset with the same features)"),
    "repo_id": Param("local/robosteer_demos", "LeRobot repo id stored in the dataset metadata"),
    "task": Param("", "instruction stored with each episode; a message on task_topic replaces it"),
    "task_topic": Param("/robosteer/task", "std_msgs/String instruction topic"),
    "fps": Param(15.0, "dataset frame rate"),
    "max_age_s": Param(0.2, "a frame is skipped when a stream's newest message is older than this"),
    "sample_delay_s": Param(0.05, "sample each tick this long in the past so messages in flight arrive first"),
    "image_size": Param(96, "images are resized to image_size x image_size"),
    "use_videos": Param(False, "store mp4 videos instead of PNG frames"),
    "use_header_stamp": Param(True, "align on header stamps (else on receive time)"),
    "state_topic": Param("/joint_states", "measured arm joints"),
    "state_kind": Param("joint_state", "joint_state | joint_trajectory | float64_array"),
    "action_topic": Param("/gello/joint_states", "commanded arm joints (teleop device or controller command)"),
    "action_kind": Param("joint_state", "joint_state | joint_trajectory | float64_array"),
    "gripper_state_topic": Param("", "measured gripper width when the state has no finger joints ('' = none)"),
    "gripper_state_kind": Param("float", "float (Float64) | float32 | joint_state"),
    "gripper_state_scale": Param(1.0, "multiplier to metres"),
    "action_gripper_topic": Param("", "commanded gripper width ('' = from the action topic, else the measured one)"),
    "action_gripper_kind": Param("float", "float (Float64) | float32 | joint_state | float64_array"),
    "action_gripper_scale": Param(1.0, "multiplier to metres (0.0008 for a 0-100 % command)"),
    "camera_names": Param(["front", "wrist"], "camera names (observation.images.<name>), one per topic"),
    "camera_topics": Param(
        ["/camera/front/image_raw", "/camera/wrist/image_raw"],
        "sensor_msgs/Image topics (.../compressed: CompressedImage)",
    ),
    "episode_labels": Param(
        "",
        'JSON object stored with each saved episode (e.g. \'{"colour_name": "red"}\'); '
        "read at save time, so `ros2 param set` it between episodes",
    ),
    "status_topic": Param("~/status", "std_msgs/String JSON: recording, frames, episodes, skipped"),
}


def config_from_parameters(p: dict) -> RecordingConfig:
    """The node's parameters as the :class:`RecordingConfig` convert-bag reads from YAML."""
    if len(p["camera_names"]) != len(p["camera_topics"]):
        raise RobosteerError("camera_names and camera_topics must have the same length")

    def optional(prefix: str) -> TopicSpec | None:
        topic = p[f"{prefix}_topic"]
        return TopicSpec(topic, p[f"{prefix}_kind"], p[f"{prefix}_scale"]) if topic else None

    return RecordingConfig(
        state=TopicSpec(p["state_topic"], p["state_kind"]),
        action=TopicSpec(p["action_topic"], p["action_kind"]),
        gripper_state=optional("gripper_state"),
        action_gripper=optional("action_gripper"),
        cameras=dict(zip(p["camera_names"], p["camera_topics"], strict=True)),
        fps=p["fps"],
        max_age_s=p["max_age_s"],
        image_size=p["image_size"],
        task=p["task"],
        use_header_stamp=p["use_header_stamp"],
    )


class RecorderNode(Node):
    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        self.p = p = declare_all(self, PARAMETERS)
        if not p["dataset_root"]:
            raise RobosteerError("set the recorder's dataset_root parameter to the dataset folder to write")
        self.config = config_from_parameters(p)
        self.session = RecordingSession(self.config)
        self.sink = EpisodeSink(
            p["dataset_root"],
            p["repo_id"],
            self.config.fps,
            list(self.config.cameras),
            self.config.image_size,
            p["use_videos"],
        )
        self.task = p["task"]
        self.recording = False
        self.last_error = ""
        for topic, kind in self.config.topics().items():
            self.create_subscription(MESSAGE_TYPES[kind], topic, lambda msg, t=topic: self._on_message(t, msg), 10)
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.create_subscription(String, p["task_topic"], self._on_task, latched)
        self.status_pub = self.create_publisher(String, p["status_topic"], 10)
        self.create_service(Trigger, "~/start", self._on_start)
        self.create_service(Trigger, "~/save", self._on_save)
        self.create_service(Trigger, "~/discard", self._on_discard)
        self.create_timer(1.0 / self.config.fps, self._on_tick)
        self.create_timer(1.0, self._publish_status)
        self.get_logger().info(f"recording into {p['dataset_root']}; call ~/start to open an episode")

    def _on_message(self, topic: str, msg) -> None:
        try:
            self.session.on_message(topic, msg, now_seconds(self))
        except RobosteerError as err:  # one bad message must not stop the recorder
            self.last_error = f"{topic}: {err}"
            self.get_logger().warn(self.last_error, throttle_duration_sec=5.0)

    def _on_task(self, msg: String) -> None:
        if msg.data.strip():
            self.task = msg.data

    def _on_tick(self) -> None:
        if not self.recording:
            return
        frame = self.session.frame_at(now_seconds(self) - self.p["sample_delay_s"])
        if frame is not None:
            frame["task"] = self.task
            self.sink.add(frame)

    def _reply(self, response: Trigger.Response, ok: bool, message: str) -> Trigger.Response:
        response.success, response.message = ok, message
        if ok:
            self.get_logger().info(message)
        else:
            self.get_logger().warn(message)
            self.last_error = message
        self._publish_status()
        return response

    def _on_start(self, request, response):
        if not self.task:
            return self._reply(response, False, "no task instruction: set the task parameter or publish on task_topic")
        if self.recording:
            return self._reply(response, False, "an episode is already open; save or discard it first")
        self.session.reset()
        self.recording = True
        return self._reply(response, True, f"episode {self.sink.saved_episodes} started: {self.task}")

    def _on_save(self, request, response):
        if not self.recording:
            return self._reply(response, False, "no open episode; call ~/start first")
        self.recording = False
        try:
            frames = self.sink.save(labels=parse_labels(self.get_parameter("episode_labels").value))
        except RobosteerError as err:
            self.sink.discard()
            return self._reply(response, False, str(err))
        return self._reply(
            response, True, f"saved episode with {frames} frames ({self.session.aligner.stats.skipped} ticks skipped)"
        )

    def _on_discard(self, request, response):
        self.recording = False
        frames = self.sink.discard()
        return self._reply(response, True, f"discarded {frames} frames")

    def status(self) -> dict:
        stats = self.session.aligner.stats
        return {
            "recording": self.recording,
            "frames": self.sink.frames_in_episode,
            "episodes": self.sink.saved_episodes,
            "skipped": stats.skipped,
            "missing_by_stream": stats.missing_by_stream,
            "task": self.task,
            "last_error": self.last_error,
        }

    def _publish_status(self) -> None:
        self.status_pub.publish(String(data=json.dumps(self.status())))

    def destroy_node(self):
        if self.recording:
            self.get_logger().warn(f"shutting down: the open episode ({self.sink.frames_in_episode} frames) is lost")
            self.sink.discard()
        return super().destroy_node()


def main(args=None) -> None:
    spin_node(RecorderNode, args)
