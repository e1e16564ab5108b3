"""``robosteer eval``: seeded sim rollouts of a policy, success with Wilson 95 % intervals, results files, videos."""

from __future__ import annotations

from pathlib import Path

import typer


def eval_command(
    policy: str = typer.Option(
        "embedded", "--policy", help="'embedded', 'expert' (scripted sanity ceiling) or a LeRobot checkpoint folder."
    ),
    adapter: Path = typer.Option(
        None, "--adapter", help="Steer or LoRA adapter folder (robosteer finetune's adapter/) to apply on --policy."
    ),
    task: str = typer.Option("place_cube", "--task", help="Sim task(s), comma separated, e.g. place_cube,pick_mug."),
    variations: str = typer.Option(
        "none",
        "--variations",
        help="Variation presets, comma separated; each preset is its own evaluation cell (join presets with + to "
        "combine them in one cell, e.g. lighting+distractors): none, lighting, distractors, object_form, colour, "
        "position, camera, table, paraphrase, train, all.",
    ),
    episodes: int = typer.Option(50, "--episodes", help="Episodes per task x variation cell."),
    seed: int = typer.Option(0, "--seed", help="Seed of the first episode (episode i uses seed+i in every cell)."),
    workers: int = typer.Option(0, "--workers", help="Parallel worker processes (0 = one per CPU core)."),
    batch: int = typer.Option(
        1,
        "--batch",
        help="Episodes each worker steps together, one batched policy call per action chunk (8: ~5x the episodes/s "
        "of 1, see make bench). Noise is drawn per episode either way; compare policies at the same --batch.",
    ),
    videos: int = typer.Option(1, "--videos", help="Save an mp4 of the first N episodes of each cell."),
    image_size: int = typer.Option(96, "--image-size", help="Camera image size the policy expects."),
    max_steps: int = typer.Option(None, "--max-steps", help="Episode step limit (default: the task's own)."),
    out: Path = typer.Option(..., "--out", help="Folder for results.json, results.md and videos/."),
    robot_mjcf: Path = typer.Option(
        None, "--robot-mjcf", help="Arm + gripper MJCF file to use instead of the built-in model (e.g. panda.xml)."
    ),
    robot_mjcf_joint_prefix: str = typer.Option(
        None, "--robot-mjcf-joint-prefix", help="Prefix of the 7 arm joints in --robot-mjcf if not fr3_joint."
    ),
) -> None:
    """Evaluate a policy in the MuJoCo suite: success rate (Wilson 95 % CI) and mean length per task x variation."""
    from rich.console import Console

    from robosteer.evaluation import EvalConfig, PolicySource, evaluate, parse_csv
    from robosteer.validation import check_out_path, check_policy_dir, validate_adapter_dir

    check_out_path(out, {"--policy": policy, "--adapter": adapter, "--robot-mjcf": robot_mjcf})
    check_policy_dir(policy)
    if adapter is not None:
        validate_adapter_dir(adapter)
    source = PolicySource(policy, str(adapter) if adapter else None)
    env_kwargs = {}
    if robot_mjcf is not None:
        from sim.robot import RobotMjcf, RobotSpec

        mjcf = RobotMjcf(str(robot_mjcf), joint_prefix=robot_mjcf_joint_prefix)
        RobotSpec(mjcf=mjcf)  # a bad file fails here, before any worker starts
        env_kwargs["robot_mjcf"] = mjcf
    config = EvalConfig(
        tasks=parse_csv(task),
        variations=parse_csv(variations),
        episodes=episodes,
        seed=seed,
        workers=workers,
        batch=batch,
        videos_per_cell=videos,
        image_size=image_size,
        max_steps=max_steps,
        extra_env_kwargs=env_kwargs,
    )
    results = evaluate(source, config, out)
    console = Console()
    print(results.markdown())
    console.print(f"results: {out / 'results.md'}, {out / 'results.json'}; videos: {out / 'videos'}", markup=False)


def register(app: typer.Typer) -> None:
    app.command(name="eval")(eval_command)
