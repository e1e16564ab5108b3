"""``robosteer record sim``: record demonstrations in a sim suite (Franka, Meta-World ML10) into a LeRobot dataset.

``record`` is a sub-app: other command modules may add their own recorders with
``from robosteer.commands.record import record_app; record_app.command("name")(fn)``.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from robosteer.constants import IMAGE_SIZE

record_app = typer.Typer(help="Record demonstrations into a LeRobot dataset.", no_args_is_help=True)


@record_app.command("sim")
def record_sim(
    task: str = typer.Option(
        ...,
        help="Task name (pick_cube, push_cube, press_button, place_cube, pick_mug, reach_bowl) or id; with --suite metaworld a "
        "Meta-World ML10 task (e.g. drawer-open); metaworld/drawer-open names its suite itself.",
    ),
    suite: str = typer.Option(
        "franka",
        help="Suite of --task: franka (robosteer's MuJoCo Franka tasks) or metaworld (Meta-World ML10, scripted "
        "experts only, 80 Hz, state = hand xyz + gripper, action = xyz move + gripper, camera corner2).",
    ),
    episodes: int = typer.Option(10, help="Number of (successful) episodes to record."),
    out: Path = typer.Option(..., help="Dataset folder to create (or to extend with --append)."),
    teleop: str = typer.Option("expert", help="Who drives the arm: expert (scripted), keyboard or spacemouse."),
    variations: str = typer.Option(
        "none",
        help="Variation preset(s) applied to every episode; a comma list is combined into one setting (unlike eval, "
        "where each preset is its own cell): none, lighting, distractors, object_form, colour, position, "
        "goal_position (only the goal wide), camera, "
        "table, paraphrase, train, all.",
    ),
    seed: int = typer.Option(0, help="Seed of the first episode (episode i uses seed + attempt i)."),
    fps: int = typer.Option(None, help="Control and recording rate in Hz (default: 15; metaworld: its fixed 80)."),
    image_size: int = typer.Option(IMAGE_SIZE, help="Camera image height = width in pixels."),
    append: bool = typer.Option(False, help="Add episodes to an existing dataset with the same features."),
    videos: bool = typer.Option(True, "--videos/--images", help="Store camera streams as MP4 video or as images."),
    noise: float = typer.Option(
        0.0,
        help="Std [rad] of Gaussian noise on the executed joint targets (metaworld: on the executed xyz move, in "
        "action units of 1 cm); the clean expert target is recorded (DART-style: the demos show corrections from "
        "off-path states).",
    ),
    hold_frames: int = typer.Option(
        0,
        help="Scripted expert: frames recorded after each success, the goal held (0 = stop at success, where the "
        "env ends the episode); the demos then show the goal reached and the way back to it.",
    ),
    joint_prefix: str = typer.Option("fr3_joint", help="Joint names: fr3_joint (FR3 limits) or panda_joint."),
    robot_mjcf: Path = typer.Option(
        None, help="Arm + gripper MJCF file to use instead of the built-in model (e.g. menagerie's panda.xml)."
    ),
    robot_mjcf_joint_prefix: str = typer.Option(
        None, help="Prefix of the 7 arm joints in --robot-mjcf when it differs from --joint-prefix (menagerie: joint)."
    ),
    takeover_from: str = typer.Option(
        None,
        help="Recovery demos (DAgger-style): this policy ('embedded', a checkpoint folder or a hub id) drives each "
        "attempt first, then the scripted expert takes over from wherever it left the scene; only the expert's part "
        "is recorded (attempts the policy ends before the takeover are discarded). Franka tasks.",
    ),
    takeover_steps: str = typer.Option(
        "20:120", help="MIN:MAX policy steps before the takeover, drawn uniformly per attempt from its seed."
    ),
) -> None:
    """Record demonstrations of a sim task (scripted expert or teleoperation) into a LeRobot v3 dataset."""
    from robosteer.constants import FPS
    from robosteer.validation import check_out_path, is_lerobot_dataset, validate_dataset
    from sim.recording import record_dataset
    from sim.robot import RobotMjcf
    from sim.suites import FRANKA, split_task

    check_out_path(out, {"--robot-mjcf": robot_mjcf})
    if append and is_lerobot_dataset(out):
        validate_dataset(out)
    owner, name = split_task(task, suite)
    if owner.name != FRANKA:
        franka_only = {"--teleop": teleop != "expert", "--variations": variations != "none"}
        franka_only |= {"--joint-prefix": joint_prefix != "fr3_joint", "--robot-mjcf": robot_mjcf is not None}
        franka_only |= {"--takeover-from": takeover_from is not None}
        root = _record_other_suite(
            task, suite, episodes, out, seed, fps, image_size, append, videos, noise, hold_frames, franka_only
        )
        _print_summary(root)
        return
    root = record_dataset(
        name,
        episodes,
        out,
        teleop=teleop,
        variations=variations,
        seed=seed,
        fps=FPS if fps is None else fps,
        image_size=image_size,
        append=append,
        use_videos=videos,
        noise_std=noise,
        hold_frames=hold_frames,
        joint_prefix=joint_prefix,
        robot_mjcf=RobotMjcf(str(robot_mjcf), joint_prefix=robot_mjcf_joint_prefix) if robot_mjcf else None,
        takeover=_takeover(takeover_from, takeover_steps) if takeover_from else None,
    )
    _print_summary(root)


def _takeover(policy: str, steps: str):
    """The Takeover of --takeover-from/--takeover-steps, checked (range, policy source) before the policy loads."""
    from dataclasses import replace

    from robosteer.errors import RobosteerError
    from robosteer.evaluation.config import EXPERT, PolicySource
    from robosteer.evaluation.rollout import PolicyDriver, load_policy_from_source
    from sim.recording import Takeover

    low, sep, high = steps.partition(":")
    if not (sep and low.strip().isdigit() and high.strip().isdigit()):
        raise RobosteerError(f"--takeover-steps {steps!r}: give MIN:MAX policy steps, e.g. 20:120")
    takeover = Takeover(driver=None, min_steps=int(low), max_steps=int(high))  # a bad range fails before the load
    if policy == EXPERT:
        raise RobosteerError("--takeover-from expert: the expert records anyway; give a policy to take over from")
    import torch

    torch.set_num_threads(1)  # recorders run one process per core (tools/record-chunks.sh runs two)
    return replace(takeover, driver=PolicyDriver(load_policy_from_source(PolicySource(policy))))


def _record_other_suite(
    task, suite, episodes, out, seed, fps, image_size, append, videos, noise, hold_frames, franka_only
) -> Path:
    """Record a Meta-World task with its scripted expert; the Franka-only options must keep their defaults."""
    from robosteer.errors import RobosteerError
    from sim.metaworld_recording import record_metaworld_dataset
    from sim.metaworld_tasks import FPS as METAWORLD_FPS
    from sim.suites import split_task

    owner, name = split_task(task, suite)
    given = [flag for flag, changed in franka_only.items() if changed]
    if given:
        raise RobosteerError(f"{', '.join(given)} apply to franka tasks only, not {owner.name}; drop them")
    if fps not in (None, METAWORLD_FPS):
        raise RobosteerError(f"--fps {fps}: {owner.name} runs at {METAWORLD_FPS} Hz only; drop --fps")
    return record_metaworld_dataset(
        name, episodes, out, seed=seed, image_size=image_size, append=append, use_videos=videos, noise_std=noise,
        hold_frames=hold_frames,
    )  # fmt: skip


def _print_summary(root: Path) -> None:
    """One line: where the dataset is and how many episodes and frames it holds."""
    from rich.console import Console

    info = json.loads((root / "meta" / "info.json").read_text())
    Console().print(f"wrote {root}: {info['total_episodes']} episodes, {info['total_frames']} frames", markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(record_app, name="record")
