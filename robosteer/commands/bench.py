"""``robosteer bench``: the few-shot steer-vs-LoRA study, or (``--micro``) the performance micro benchmarks."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer

from robosteer.commands._options import ConfigCommand, ConfigOptions, Flag, config_options


def _method_rates(text: str) -> dict[str, float]:
    """``full=1e-4,steer=1e-3`` -> {"full": 1e-4, "steer": 1e-3}."""
    from robosteer.heads.config import parse_named_floats
    from robosteer.study import METHODS

    return parse_named_floats(text, tuple(m for m in METHODS if m != "zero"), "--lr full=1e-4,steer=1e-3")


FLAGS = {
    "task": Flag(help="Held-out sim task to adapt to and evaluate on (default: the suite's first held-out task)."),
    "suite": Flag(help="Task suite: franka (robosteer's Franka tasks) or metaworld (Meta-World ML10)."),
    "demos": Flag(help="Scripted-expert demonstrations to record (ignored with --dataset)."),
    "dataset": Flag(help="Use this LeRobot dataset instead of recording demos.", parse=Path),
    "policy": Flag(
        help="Base policy: 'embedded' (Franka), 'embedded-franka-v4' (broader Franka base), 'embedded-metaworld', a LeRobot checkpoint folder or a hub id "
        "(default: the suite's shipped base)."
    ),
    "methods": Flag(help="Methods to compare, comma separated (zero = the base policy untouched)."),
    "batch_size": Flag(help="Training batch size, identical for every method."),
    "top_k": Flag(help="Heads the ranking selects for steer."),
    "rank_weights": Flag(
        help="Ranking weights, e.g. physical=1,visual=0.5,linguistic=0.5 (default: physical only, as the paper)."
    ),
    "min_layer": Flag(help="Ranking: never select heads below this layer (0 = any layer may be chosen)."),
    "lora_rank": Flag(help="LoRA rank of the baseline (paper: 16)."),
    "head_rank": Flag(help="steer: rank of the per-head low-rank deltas (default: full per-head deltas)."),
    "lrs": Flag(
        name="--lr",
        help="Peak learning rate per method, e.g. full=1e-4,steer=1e-3 (default: robosteer finetune's per method).",
        parse=_method_rates,
    ),
    "episodes": Flag(help="Evaluation episodes per task x variation cell."),
    "variations": Flag(
        help="Variation presets evaluated on --task (default: none + the suite's robustness presets; paraphrase = "
        "held-out phrasings)."
    ),
    "unseen_tasks": Flag(
        name="--unseen",
        help="Unseen-transfer tasks evaluated with preset none, comma separated (default: the suite's unseen "
        "tasks; 'off' to skip).",
    ),
    "demo_variations": Flag(help="Variation preset of the recorded demonstrations."),
    "videos_per_cell": Flag(name="--videos", help="mp4s saved per evaluation cell and method."),
    "max_steps": Flag(help="Evaluation episode step limit (default: the task's)."),
    "overwrite": Flag(help="Replace an existing study folder at --out."),
}
"""Where the bench flags differ from StudyConfig's field names and docstrings (today's spelling is kept)."""
HIDDEN = ("out",)
"""--out is the command's own: required for the study, unused by --micro."""


@config_options("robosteer.study.config:StudyConfig", flags=FLAGS, hidden=HIDDEN)
def bench(
    options: ConfigOptions,
    out: Path = typer.Option(None, "--out", help="Study output folder (required unless --micro)."),
    micro: bool = typer.Option(False, "--micro", help="Print the performance micro benchmarks instead of a study."),
    ros_seconds: float = typer.Option(
        15.0, "--ros-seconds", help="--micro: seconds of the ROS 2 latency run (0 skips it)."
    ),
    sections: str = typer.Option(
        None,
        "--sections",
        help="--micro: only these sections, comma separated (sim, policy, eval, train, rank, tuners, scale, ros).",
    ),
    json_out: Path = typer.Option(None, "--json", help="--micro: also write every figure to this JSON file."),
) -> None:
    """Compare zero-shot / LoRA / steer / full finetuning from a few demonstrations on identical seeds."""
    from rich.console import Console

    console = Console()
    if micro:
        _micro(options["policy"], ros_seconds, sections, console, json_out)
    else:
        _study(options, out, console)


def _micro(policy: str, ros_seconds: float, sections: str | None, console, json_out: Path | None = None) -> None:
    """``--micro``: the performance micro benchmarks (the study options but --policy are unused); with ``json_out``
    every section's figures are also written there."""
    from robosteer.evaluation import parse_csv
    from robosteer.study.micro import run_micro

    results = run_micro(
        policy=None if policy in (None, "embedded") else policy,
        ros_seconds=ros_seconds,
        sections=parse_csv(sections) if sections else None,
        console=console,
    )
    if json_out is not None:
        import json

        json_out.write_text(json.dumps(results, indent=2, default=str) + "\n")
        console.print(f"figures: {json_out}", markup=False)


def _study(options: ConfigOptions, out: Path | None, console) -> None:
    """The study into ``out``: inputs checked before any work, the comparison printed, the options saved."""
    from robosteer.errors import RobosteerError

    if out is None:
        raise RobosteerError("robosteer bench needs --out DIR for the study (or --micro for the micro benchmarks)")
    from robosteer.validation import check_out_path, check_policy_dir, validate_dataset

    dataset, policy = options["dataset"], options["policy"]
    check_out_path(out, {"--dataset": dataset, "--policy": policy})
    check_policy_dir(policy)
    if dataset is not None:
        validate_dataset(dataset, policy)
    from robosteer.study import run_study

    unseen = options["unseen_tasks"]
    config = options.build(out=out, unseen_tasks=() if unseen == ("off",) else unseen)
    summary = run_study(config, console=console, command="robosteer " + shlex.join(sys.argv[1:]))
    options.save(config, out)
    print_study_summary(summary, out, console)


def print_study_summary(summary: dict, out: Path, console) -> None:
    """The comparison table and where the artifacts are."""
    from rich.table import Table

    methods = summary["methods"]
    names = list(methods)
    table = Table(
        title=f"success on {summary['config']['task']} ({summary['config']['episodes']} episodes per cell, "
        "Wilson 95 % CI)"
    )
    table.add_column("task / variation")
    for name in names:
        table.add_column(name, justify="right")
    for i, cell in enumerate(methods[names[0]]["eval"]["cells"]):
        row = []
        for name in names:
            c = methods[name]["eval"]["cells"][i]
            row.append(f"{100 * c['success_rate']:.0f} % [{100 * c['ci95'][0]:.0f}-{100 * c['ci95'][1]:.0f}]")
        table.add_row(f"{cell['task']} / {cell['variation']}", *row)
    console.print(table)
    compute = Table(title="compute (same steps, batch, schedule)")
    for column in ("method", "trainable params", "ms/step", "peak memory MiB", "train wall s"):
        compute.add_column(column, justify="right" if column != "method" else "left")
    for name in names:
        c = methods[name].get("compute")
        if c:
            compute.add_row(
                name,
                f"{c['trainable_params']:,}",
                f"{1000 * (c['step_time_s'] or 0):.0f}",
                f"{c['peak_memory_mb'] or 0:.0f}",
                f"{c['train_wall_s']:.0f}",
            )
    console.print(compute)
    params = {n: (methods.get(n, {}).get("compute") or {}).get("trainable_params") for n in ("steer", "lora")}
    if None not in params.values() and params["steer"] > params["lora"]:
        console.print(
            "why steer trains more parameters than LoRA here: on a small model one head's query rows and output "
            "columns are a large share of a layer (embedded base: head_dim 16, width 128); at full pi0 scale 20 heads with rank-16 "
            "deltas train 1/23 of all-linear LoRA's parameters (`robosteer bench --micro`, --head-rank)",
            markup=False,
        )
    console.print(
        f"report: {out / 'results.md'}  plots: {out / 'plots'}  videos: {out / 'eval'}/<method>/videos  "
        f"(total {summary['timings_s']['total']:.0f} s)",
        markup=False,
    )


def register(app: typer.Typer) -> None:
    app.command(name="bench", cls=ConfigCommand)(bench)
