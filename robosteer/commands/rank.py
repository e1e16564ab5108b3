"""``robosteer rank``: score every attention head of a policy on a few demonstrations and pick the top k."""

from __future__ import annotations

from pathlib import Path

import typer

from robosteer.commands._options import ConfigCommand, ConfigOptions, Flag, config_options


def _parse_weights(text: str) -> dict[str, float]:
    """``--weights physical=1,visual=0.5`` as RankConfig's ``weights``."""
    from robosteer.heads.config import parse_weights

    return parse_weights(text)


def _parse_quota(text: str) -> dict[str, int] | None:
    """``--stack-quota expert=14,vlm=6`` as RankConfig's ``stack_quota``."""
    from robosteer.heads.config import parse_quota

    return parse_quota(text)


FLAGS = {
    "top_k": Flag(help="Number of heads to select (capped at the policy's head count)."),
    "weights": Flag(
        help="Score weights, e.g. physical=1,visual=0.5,linguistic=0.5 (default physical=1: physical only "
        "reproduces the paper).",
        parse=_parse_weights,
    ),
    "episodes": Flag(help="Use only the first N episodes (default: all, >= 2)."),
    "greedy": Flag(help="Greedy forward selection on the k-NN error of the concatenated heads."),
    "min_layer": Flag(
        help="Never select heads below this layer (every stack): steer's backward stops at the lowest chosen layer."
    ),
    "token": Flag(
        help="Token to read heads at: auto (vlm: state, expert: first action), last_lang, state, first_action."
    ),
    "target": Flag(help="Action target of the physical score: delta (joint target - joint position) or absolute."),
    "score": Flag(
        help="physical (k-NN prediction of the action) or residual (what a head predicts beyond the joint state)."
    ),
    "select": Flag(
        help="top, or a control selection with the top-k's stack x layer histogram: random (seeded by --seed), bottom."
    ),
    "stack_quota": Flag(
        help="Heads per stack, e.g. expert=14,vlm=6 (one stack named = that stack only).", parse=_parse_quota
    ),
    "stack_norm": Flag(help="Normalise each stack's scores to 0-1 before pooling."),
    "protocol": Flag(
        help="robosteer (defaults here) or release: the authors' recipe (keyframes, k 10-40, per-k top-k, "
        "expert read on the policy's own clean chunk at t=0)."
    ),
    "controls": Flag(help="Also score a random-init copy of the policy (one more pass)."),
    "stability_threshold": Flag(help="Warn when the split-half Spearman correlation is below this."),
    "causal_frames": Flag(help="Frames of the ablation check (0 = skip)."),
    "causal_draws": Flag(help="Stratified random head sets in the ablation check."),
    "sensitivity_frames": Flag(help="Frames re-run with swapped image/instruction (0 = skip)."),
    "seed": Flag(help="Seed for noise, swaps and random heads (rankings are deterministic)."),
    "use_cache": Flag(name="--cache", help="Reuse features cached for this policy+dataset."),
    "visual_labels": Flag(help="Episode-label keys of the visual score, comma separated (default: by name hints)."),
    "linguistic_labels": Flag(
        help="Episode-label keys of the linguistic score, comma separated (default: by name hints)."
    ),
    "explain": Flag(
        help="Also write OUT/explain/: each chosen head's attention over the camera frames and the instruction "
        "tokens (a PNG per head, contact_sheet.png, explain.json)."
    ),
    "explain_frames": Flag(help="Frames drawn by --explain (evenly spread over the ranked frames)."),
}
"""Where the rank flags differ from RankConfig's field names and docstrings (today's spelling is kept)."""
HIDDEN = ("frames", "show_progress")
"""Set from --frames/--stride, and always on."""


@config_options("robosteer.heads.config:RankConfig", flags=FLAGS, hidden=HIDDEN)
def rank(
    options: ConfigOptions,
    policy: str = typer.Option(
        ...,
        "--policy",
        help="'embedded' (the Franka base), 'embedded-franka-v4' (broader Franka base), 'embedded-metaworld', a LeRobot checkpoint folder or a hub id (owner/name[@revision]).",
    ),
    dataset: Path = typer.Option(..., "--dataset", help="LeRobot dataset folder with the demonstrations."),
    out: Path = typer.Option(..., "--out", help="Folder for heads.json and heads.png (created if missing)."),
    frames: str = typer.Option(
        "auto",
        "--frames",
        help="Frames scored: keyframes (gripper flips, still frames, first/last), dense (every --stride-th), all, "
        "or auto (keyframes when the demos pause, else dense).",
    ),
    stride: int = typer.Option(3, "--stride", help="Step of --frames dense, in frames."),
) -> None:
    """Rank the attention heads of POLICY on the demonstrations in DATASET; write heads.json + heads.png to OUT
    (with --explain also the chosen heads' attention maps in OUT/explain/)."""
    from rich.console import Console

    from robosteer.errors import RobosteerError
    from robosteer.heads.keyframes import FrameConfig
    from robosteer.validation import check_dataset_command

    try:
        frame_config = FrameConfig(mode=frames, stride=stride)
    except ValueError as err:
        raise RobosteerError(f"--frames/--stride: {err}") from None
    config = options.build(frames=frame_config)
    check_dataset_command(dataset, policy=policy, out=out)  # before any work: paths, dataset, cameras
    n = _check_episodes(dataset, config)

    from robosteer.heads.ranking import rank_heads
    from robosteer.heads.report import print_table
    from robosteer.policies import load_policy

    console = Console(highlight=False)
    loaded = load_policy(policy)
    console.print(f"ranking {loaded.layout.n_heads_total} heads of {policy} on {n} episodes of {dataset}")
    ranking = rank_heads(loaded, dataset, config)
    path = ranking.save(out)
    options.save(config, out)
    print_table(ranking, console)
    console.print(f"wrote {path} and {path.with_name('heads.png')}")
    if config.explain:
        from robosteer.heads.explain import EXPLAIN_DIR, explain_ranking

        written = explain_ranking(loaded, dataset, ranking.to_json(), config, out / EXPLAIN_DIR)
        console.print(f"wrote the chosen heads' attention maps and {written.name} to {written.parent}")


def _check_episodes(dataset: Path, config) -> int:
    """The number of episodes ranked (>= 2); a bad dataset or frame selection fails here, before the policy loads."""
    from robosteer.errors import RobosteerError

    if not dataset.is_dir():
        raise RobosteerError(f"dataset folder {dataset} does not exist; record demonstrations first")
    from robosteer.heads.dataset import frame_table, open_dataset

    opened = open_dataset(dataset)
    n = opened.num_episodes if config.episodes is None else min(config.episodes, opened.num_episodes)
    if n < 2:
        raise RobosteerError(f"{dataset} has {opened.num_episodes} episode(s); ranking needs at least 2")
    frame_table(opened, list(range(n)), config.frames)
    return n


def register(app: typer.Typer) -> None:
    app.command("rank", cls=ConfigCommand)(rank)
