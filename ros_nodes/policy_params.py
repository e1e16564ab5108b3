"""The declared parameters of the policy node (``ros2 param describe /robosteer_policy <name>`` shows each) and
their checks."""

from __future__ import annotations

from robosteer.errors import RobosteerError
from ros_nodes.ros_io import Param
from ros_nodes.safety import FR3_LOWER, FR3_MAX_VELOCITY, FR3_UPPER, SafetyConfig

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
    "gripper_result_timeout_s": Param(
        5.0, "a franka_gripper goal without a result after this many seconds is canceled and counted as a timeout"
    ),
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
        1,
        "torch CPU threads for inference (0: torch's default, -1: $ROBOSTEER_TORCH_THREADS or 1); 1 keeps latency "
        "low when the cores are shared",
    ),
    "anchor_tolerance": Param(
        0.2,
        "largest |last command - measured| [rad] on any arm joint; beyond it (arm moved by hand, blocked) the plan is "
        "dropped and every limit re-anchors on the measured state",
    ),
    "reset_jump_velocity": Param(
        list(FR3_MAX_VELOCITY),
        "per-joint speed [rad/s]; a measured state moving faster than this between two joint states (over at least "
        "one control period) starts a new episode (robot reset)",
    ),
    "ready_topic": Param("~/ready", "std_msgs/Bool (transient local): true once enabled and the first chunk exists"),
    "adapters": Param(
        "",
        "YAML file mapping instruction -> adapter folder (and optional 'default'); the adapters are loaded once onto "
        "the base policy and switched per instruction",
    ),
    "adapter": Param(
        "",
        "adapter to run ('' = the one the adapters map gives the instruction); `ros2 param set` switches at run time",
    ),
}


def check_parameters(p: dict) -> None:
    if len(p["camera_names"]) != len(p["camera_topics"]):
        raise RobosteerError("camera_names and camera_topics must have the same length (one name per topic)")
    if p["command_mode"] not in ("trajectory", "position_array"):
        raise RobosteerError(f"command_mode {p['command_mode']!r}: use trajectory or position_array")
    if p["control_trigger"] not in ("timer", "joint_states"):
        raise RobosteerError(f"control_trigger {p['control_trigger']!r}: use timer or joint_states")
    if not (p["control_rate_hz"] > 0 and p["diagnostics_rate_hz"] > 0):
        raise RobosteerError("control_rate_hz and diagnostics_rate_hz must be > 0 (e.g. 15.0 and 1.0)")


def safety_config(p: dict, period: float) -> SafetyConfig:
    return SafetyConfig(
        lower=tuple(p["joint_lower"]),
        upper=tuple(p["joint_upper"]),
        max_velocity=tuple(p["max_joint_velocity"]),
        period_s=period,
        workspace_min=tuple(p["workspace_min"]) if p["workspace_enabled"] else (),
        workspace_max=tuple(p["workspace_max"]) if p["workspace_enabled"] else (),
        tool_length=p["tool_length"],
    )
