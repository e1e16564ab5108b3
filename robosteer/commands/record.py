"""``robosteer record sim``: record demonstrations in the MuJoCo Franka suite into a LeRobot dataset.

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
    task: str = typer.Option(..., help="Task name (pick_cube, push_cube, press_button, place_cube, pick_mug) or id."),
    episodes: int = typer.Option(10, help="Number of (successful) episodes to record."),
    out: Path = typer.Option(..., help="Dataset folder to create (or to extend with --append)."),
    teleop: str = typer.Option("expert", help="Who drives the arm: expert (scripted), keyboard or spacemouse."),
    variations: str = typer.Option(
        "none",
        help="Variation preset(s) applied to every episode; a comma list is combined into one setting (unlike eval, "
        "where each preset is its own cell): none, lighting, distractors, object_form, colour, position, camera, "
        "table, paraphrase, train, all.",
    ),
    seed: int = typer.Option(0, help="Seed of the first episode (episode i uses seed + attempt i)."),
    fps: int = typer.Option(15, help="Control and recording rate in Hz."),
    image_size: int = typer.Option(IMAGE_SIZE, help="Camera image height = width in pixels."),
    append: bool = typer.Option(False, help="Add episodes to an existing dataset with the same features."),
    videos: bool = typer.Option(True, "--videos/--images", help="Store camera streams as MP4 video or as images."),
    noise: float = typer.Option(
        0.0,
        help="Std [rad] of Gaussian noise on the executed joint targets; the clean expert target is recorded "
        "(DART-style: the demos show corrections from off-path states).",
    ),
    joint_prefix: str = typer.Option("fr3_joint", help="Joint names: fr3_joint (FR3 limits) or panda_joint."),
    robot_mjcf: Path = typer.Option(
        None, help="Arm + gripper MJCF file to use instead of the built-in model (e.g. menagerie's panda.xml)."
    ),
    robot_mjcf_joint_prefix: str = typer.Option(
        None, help="Prefix of the 7 arm joints in --robot-mjcf when it differs from --joint-prefix (menagerie: joint)."
    ),
) -> None:
    """Record demonstrations of a sim task (scripted expert or teleoperation) into a LeRobot v3 dataset."""
    from rich.console import Console

    from robosteer.validation import check_out_path, is_lerobot_dataset, validate_dataset
    from sim.recording import record_dataset
    from sim.robot import RobotMjcf

    check_out_path(out, {"--robot-mjcf": robot_mjcf})
    if append and is_lerobot_dataset(out):
        validate_dataset(out)
    root = record_dataset(
        task,
        episodes,
        out,
        teleop=teleop,
        variations=variations,
        seed=seed,
        fps=fps,
        image_size=image_size,
        append=append,
        use_videos=videos,
        noise_std=noise,
        joint_prefix=joint_prefix,
        robot_mjcf=RobotMjcf(str(robot_mjcf), joint_prefix=robot_mjcf_joint_prefix) if robot_mjcf else None,
    )
    info = json.loads((root / "meta" / "info.json").read_text())
    Console().print(f"wrote {root}: {info['total_episodes']} episodes, {info['total_frames']} frames", markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(record_app, name="record")
