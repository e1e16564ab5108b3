"""``robosteer convert-bag``: rosbag2 recordings (MCAP or sqlite3) -> a LeRobotDataset v3, one episode per bag."""

from __future__ import annotations

from pathlib import Path

import typer


def convert_bag(
    bag: list[Path] = typer.Option(..., "--bag", help="rosbag2 folder, .mcap or .db3 file; repeat for more episodes."),
    config: Path = typer.Option(
        ...,
        "--config",
        help="YAML topic config: state, action, cameras, fps, max_age_s, task (see launch/config/topics.yaml).",
    ),
    out: Path = typer.Option(..., "--out", help="Dataset folder to create (see --append to extend one)."),
    task: str = typer.Option("", "--task", help="Instruction for the episodes (overrides the config's task)."),
    repo_id: str = typer.Option("local/from_bags", "--repo-id", help="LeRobot repo id stored in the metadata."),
    videos: bool = typer.Option(False, "--videos/--no-videos", help="Store mp4 videos instead of PNG frames."),
    append: bool = typer.Option(
        False, "--append", help="Add the episodes to an existing dataset with the same features."
    ),
    labels: str = typer.Option(
        "",
        "--labels",
        help='JSON object stored with every episode, e.g. \'{"colour_name": "red"}\' (used by head ranking).',
    ),
) -> None:
    """Convert ROS 2 bags into a LeRobot dataset with the same as-of alignment as the live recorder."""
    from dataclasses import replace

    from rich.console import Console

    from robosteer.progress import Progress
    from robosteer.ros.bag_import import convert_bags
    from robosteer.ros.dataset import parse_labels
    from robosteer.ros.recording import RecordingConfig
    from robosteer.validation import check_out_path, is_lerobot_dataset, validate_dataset

    for path in bag:
        check_out_path(out, {"--bag": path, "--config": config})
    if append and is_lerobot_dataset(out):
        validate_dataset(out)
    episode_labels = parse_labels(labels)
    recording = RecordingConfig.from_yaml(config)
    if task:
        recording = replace(recording, task=task)
    console = Console()
    with Progress(console=console, transient=True) as bar:
        job = bar.add_task("reading bags", total=None)
        results = convert_bags(
            bag,
            recording,
            out,
            repo_id=repo_id,
            use_videos=videos,
            append=append,
            labels=episode_labels,
            progress=lambda done, total: bar.update(job, completed=done, total=total),
        )
    for result in results:
        console.print(
            f"{result.bag}: {result.frames} frames, {result.skipped} ticks skipped"
            + (f" (missing: {result.missing_by_stream})" if result.skipped else ""),
            markup=False,
        )
    console.print(f"wrote {len(results)} episode(s) to {out}", markup=False)


def register(app: typer.Typer) -> None:
    app.command(name="convert-bag")(convert_bag)
