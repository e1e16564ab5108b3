"""``robosteer rank``: score every attention head of a policy on a few demonstrations and pick the top k."""

from __future__ import annotations

from pathlib import Path

import typer


def rank(
    policy: str = typer.Option(..., "--policy", help="Policy checkpoint folder, or 'embedded' for the base policy."),
    dataset: Path = typer.Option(..., "--dataset", help="LeRobot dataset folder with the demonstrations."),
    out: Path = typer.Option(..., "--out", help="Folder for heads.json and heads.png (created if missing)."),
    episodes: int = typer.Option(None, "--episodes", help="Use only the first N episodes (default: all, >= 2)."),
    top_k: int = typer.Option(20, "--top-k", help="Number of heads to select (capped at the policy's head count)."),
    weights: str = typer.Option(
        "physical=1",
        "--weights",
        help="Score weights, e.g. physical=1,visual=0.5,linguistic=0.5 (physical only reproduces the paper).",
    ),
    greedy: bool = typer.Option(
        False, "--greedy/--no-greedy", help="Greedy forward selection on the k-NN error of the concatenated heads."
    ),
    min_layer: int = typer.Option(
        0,
        "--min-layer",
        help="Never select heads below this layer (every stack): steer's backward stops at the lowest chosen layer.",
    ),
    token: str = typer.Option(
        "auto",
        "--token",
        help="Token to read heads at: auto (vlm: state, expert: first action), last_lang, state, first_action.",
    ),
    target: str = typer.Option(
        "delta",
        "--target",
        help="Action target of the physical score: delta (joint target - joint position) or absolute.",
    ),
    frames: str = typer.Option(
        "auto",
        "--frames",
        help="Frames scored: keyframes (gripper flips, still frames, first/last), dense (every --stride-th), all, "
        "or auto (keyframes when the demos pause, else dense).",
    ),
    stride: int = typer.Option(3, "--stride", help="Step of --frames dense, in frames."),
    score: str = typer.Option(
        "physical",
        "--score",
        help="physical (k-NN prediction of the action) or residual (what a head predicts beyond the joint state).",
    ),
    select: str = typer.Option(
        "top",
        "--select",
        help="top, or a control selection with the top-k's stack x layer histogram: random (seeded by --seed), bottom.",
    ),
    stack_quota: str = typer.Option(
        None, "--stack-quota", help="Heads per stack, e.g. expert=14,vlm=6 (one stack named = that stack only)."
    ),
    stack_norm: bool = typer.Option(
        True, "--stack-norm/--no-stack-norm", help="Normalise each stack's scores to 0-1 before pooling."
    ),
    protocol: str = typer.Option(
        "robosteer",
        "--protocol",
        help="robosteer (defaults here) or release: the authors' recipe (keyframes, k 10-40, per-k top-k, "
        "expert read on the policy's own clean chunk at t=0).",
    ),
    controls: bool = typer.Option(
        True, "--controls/--no-controls", help="Also score a random-init copy of the policy (one more pass)."
    ),
    stability_threshold: float = typer.Option(
        0.7, "--stability-threshold", help="Warn when the split-half Spearman correlation is below this."
    ),
    causal_frames: int = typer.Option(200, "--causal-frames", help="Frames of the ablation check (0 = skip)."),
    causal_draws: int = typer.Option(20, "--causal-draws", help="Stratified random head sets in the ablation check."),
    sensitivity_frames: int = typer.Option(
        32, "--sensitivity-frames", help="Frames re-run with swapped image/instruction (0 = skip)."
    ),
    batch_size: int = typer.Option(16, "--batch-size", help="Frames per forward pass."),
    seed: int = typer.Option(0, "--seed", help="Seed for noise, swaps and random heads (rankings are deterministic)."),
    cache: bool = typer.Option(True, "--cache/--no-cache", help="Reuse features cached for this policy+dataset."),
) -> None:
    """Rank the attention heads of POLICY on the demonstrations in DATASET; write heads.json + heads.png to OUT."""
    from rich.console import Console

    from robosteer.errors import RobosteerError
    from robosteer.heads.config import RankConfig, parse_quota, parse_weights
    from robosteer.heads.keyframes import FrameConfig
    from robosteer.validation import check_dataset_command

    try:
        frame_config = FrameConfig(mode=frames, stride=stride)
    except ValueError as err:
        raise RobosteerError(f"--frames/--stride: {err}") from None
    config = RankConfig(
        top_k=top_k,
        weights=parse_weights(weights),
        episodes=episodes,
        greedy=greedy,
        min_layer=min_layer,
        token=token,
        target=target,
        frames=frame_config,
        score=score,
        select=select,
        stack_quota=parse_quota(stack_quota),
        stack_norm=stack_norm,
        protocol=protocol,
        controls=controls,
        stability_threshold=stability_threshold,
        causal_frames=causal_frames,
        causal_draws=causal_draws,
        sensitivity_frames=sensitivity_frames,
        batch_size=batch_size,
        seed=seed,
        use_cache=cache,
    )
    check_dataset_command(dataset, policy=policy, out=out)  # before any work: paths, dataset, cameras
    if not dataset.is_dir():
        raise RobosteerError(f"dataset folder {dataset} does not exist; record demonstrations first")
    from robosteer.heads.dataset import frame_table, open_dataset

    opened = open_dataset(dataset)  # bad datasets fail here, before the policy is loaded
    n = opened.num_episodes if episodes is None else min(episodes, opened.num_episodes)
    if n < 2:
        raise RobosteerError(f"{dataset} has {opened.num_episodes} episode(s); ranking needs at least 2")
    frame_table(opened, list(range(n)), config.frames)

    from robosteer.heads.ranking import rank_heads
    from robosteer.heads.report import print_table
    from robosteer.policies import load_policy

    console = Console(highlight=False)
    loaded = load_policy(policy)
    console.print(f"ranking {loaded.layout.n_heads_total} heads of {policy} on {n} episodes of {dataset}")
    ranking = rank_heads(loaded, dataset, config)
    path = ranking.save(out)
    print_table(ranking, console)
    console.print(f"wrote {path} and {path.with_name('heads.png')}")


def register(app: typer.Typer) -> None:
    app.command("rank")(rank)
