"""``robosteer eval``: seeded sim rollouts of a policy, success with Wilson 95 % intervals, results files, videos."""

from __future__ import annotations

from pathlib import Path

import typer

from robosteer.commands._options import ConfigCommand, ConfigOptions, Flag, config_options

FLAGS = {
    "tasks": Flag(
        name="--task",
        help="Sim task(s), comma separated, e.g. place_cube,pick_mug; with --suite metaworld Meta-World ML10 tasks, "
        "e.g. drawer-open,door-close. A task written suite/task (metaworld/drawer-open) names its own suite.",
    ),
    "suite": Flag(
        help="Suite of the --task names: franka (robosteer's MuJoCo Franka tasks) or metaworld (Meta-World ML10: "
        "reach, push, pick-place, door-open, drawer-close, button-press-topdown, peg-insert-side, window-open, sweep, "
        "basketball; held out: drawer-open, door-close, shelf-place, sweep-into, lever-pull). Meta-World tasks run "
        "at 80 Hz for up to 500 steps, with --variations none and --batch 1."
    ),
    "variations": Flag(
        help="Variation presets, comma separated; each preset is its own evaluation cell (join presets with + to "
        "combine them in one cell, e.g. lighting+distractors): none, lighting, distractors, object_form, colour, "
        "position, goal_position (only the goal wide), camera, table, paraphrase, train, all."
    ),
    "episodes": Flag(help="Episodes per task x variation cell."),
    "seed": Flag(help="Seed of the first episode (episode i uses seed+i in every cell)."),
    "workers": Flag(help="Parallel worker processes (0 = one per CPU core)."),
    "batch": Flag(
        help="Episodes each worker steps together, one batched policy call per action chunk (8: ~5x the episodes/s "
        "of 1, see make bench). Noise is drawn per episode either way; compare policies at the same --batch."
    ),
    "start_method": Flag(
        help="Worker start method: forkserver (default: workers fork from a server that imported torch once), "
        "fork (hangs if this process has rendered with EGL) or spawn (re-imports everything)."
    ),
    "videos_per_cell": Flag(name="--videos", help="Save an mp4 of the first N episodes of each cell."),
    "image_size": Flag(help="Camera image size the policy expects."),
    "max_steps": Flag(help="Episode step limit (default: the task's own)."),
}
"""Where the eval flags differ from EvalConfig's field names and docstrings (today's spelling is kept)."""
HIDDEN = ("extra_cells", "extra_env_kwargs")
"""Python-only fields (--robot-mjcf sets the environment's arm)."""


@config_options("robosteer.evaluation.config:EvalConfig", flags=FLAGS, hidden=HIDDEN)
def eval_command(
    options: ConfigOptions,
    policy: str = typer.Option(
        "embedded",
        "--policy",
        help="'embedded' (Franka base), 'embedded-franka-v4' (broader Franka base), 'embedded-metaworld', 'expert' (scripted ceiling), a checkpoint folder or a hub id.",
    ),
    adapter: Path = typer.Option(
        None, "--adapter", help="Steer or LoRA adapter folder (robosteer finetune's adapter/) to apply on --policy."
    ),
    out: Path = typer.Option(..., "--out", help="Folder for results.json, results.md and videos/."),
    robot_mjcf: Path = typer.Option(
        None, "--robot-mjcf", help="Arm + gripper MJCF file to use instead of the built-in model (e.g. panda.xml)."
    ),
    robot_mjcf_joint_prefix: str = typer.Option(
        None, "--robot-mjcf-joint-prefix", help="Prefix of the 7 arm joints in --robot-mjcf if not fr3_joint."
    ),
) -> None:
    """Evaluate a policy in a sim suite (franka or metaworld): success rate (Wilson 95 % CI) and mean length per task x
    variation."""
    from rich.console import Console

    from robosteer.evaluation import PolicySource, evaluate
    from robosteer.validation import check_out_path, check_policy_dir, validate_adapter_dir

    check_out_path(out, {"--policy": policy, "--adapter": adapter, "--robot-mjcf": robot_mjcf})
    check_policy_dir(policy)
    if adapter is not None:
        validate_adapter_dir(adapter)
    source = PolicySource(policy, str(adapter) if adapter else None)
    config = options.build(extra_env_kwargs=_robot_env_kwargs(robot_mjcf, robot_mjcf_joint_prefix))
    _check_franka_only(config, robot_mjcf)
    results = evaluate(source, config, out)
    options.save(config, out)
    print(results.markdown())
    Console().print(f"results: {out / 'results.md'}, {out / 'results.json'}; videos: {out / 'videos'}", markup=False)


def _robot_env_kwargs(robot_mjcf: Path | None, joint_prefix: str | None) -> dict:
    """The environment's ``robot_mjcf`` from --robot-mjcf (checked here, before any worker starts); {} without."""
    if robot_mjcf is None:
        return {}
    from sim.robot import RobotMjcf, RobotSpec

    mjcf = RobotMjcf(str(robot_mjcf), joint_prefix=joint_prefix)
    RobotSpec(mjcf=mjcf)  # a bad file fails here, before any worker starts
    return {"robot_mjcf": mjcf}


def _check_franka_only(config, robot_mjcf: Path | None) -> None:
    """--robot-mjcf sets the Franka envs' arm: refuse it with tasks of another suite."""
    if robot_mjcf is None:
        return
    from robosteer.errors import RobosteerError
    from sim.suites import FRANKA, split_task

    others = [task for task, _ in config.cells if split_task(task)[0].name != FRANKA]
    if others:
        raise RobosteerError(f"--robot-mjcf applies to franka tasks only, not {others[0]}; drop --robot-mjcf")


def register(app: typer.Typer) -> None:
    app.command(name="eval", cls=ConfigCommand)(eval_command)
