"""Run the study: demos -> head ranking -> finetune every method (same budget) -> evaluate all on the same seeds.

Everything is built in a temporary sibling folder and renamed to ``out`` at the end, so an interrupted study never
leaves a half-written results folder behind.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from robosteer.errors import RobosteerError
from robosteer.evaluation import EvalConfig, PolicySource, evaluate
from robosteer.files import atomic_write_text, replace_dir
from robosteer.study import stages
from robosteer.study.config import DEMO_SEED_OFFSET, StudyConfig
from robosteer.study.plots import plot_compute, plot_success
from robosteer.study.report import ratios, study_markdown


def eval_config_for(config: StudyConfig) -> EvalConfig:
    """The evaluation every method gets: task x presets, plus each unseen task with preset ``none``."""
    unseen = tuple(config.unseen_tasks)
    return EvalConfig(
        tasks=(config.task,),
        variations=tuple(config.variations),
        episodes=config.episodes,
        seed=config.seed,
        workers=config.workers,
        videos_per_cell=config.videos_per_cell,
        image_size=config.image_size,
        max_steps=config.max_steps,
        extra_cells=tuple((t, "none") for t in unseen if t != config.task),
    )


def machine_description() -> str:
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU only"
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {device}, "
        f"Python {platform.python_version()}, torch {torch.__version__}"
    )


def run_study(config: StudyConfig, *, console=None, command: str | None = None) -> dict[str, Any]:
    """Run the whole study; returns the summary also written to ``<out>/results.json``."""
    from rich.console import Console

    console = console or Console()
    eval_config = eval_config_for(config)
    eval_config.validate_names()  # bad task/preset names fail here, before any work
    out = Path(config.out)
    work = out.parent / f".{out.name}.partial-{os.getpid()}"
    _remove_stale_partials(out)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    try:
        summary = _run_stages(config, eval_config, work, console, timings)
        timings["total"] = time.perf_counter() - t_start
        summary.update(command=command or "robosteer bench " + " ".join(sys.argv[2:]), timings_s=timings)
        _write_outputs(summary, work)
        _replace_folder(work, out)
    except KeyboardInterrupt:
        shutil.rmtree(work, ignore_errors=True)
        console.print(f"interrupted: removed the partial outputs; {out} is unchanged", markup=False)
        raise
    except BaseException:
        console.print(f"study failed; partial outputs kept in {work} (removed by the next run)", markup=False)
        raise
    return json.loads((out / "results.json").read_text())


def _remove_stale_partials(out: Path) -> None:
    """Remove partial folders of earlier runs into ``out`` whose process is gone (killed or failed runs)."""
    for folder in out.parent.glob(f".{out.name}.partial-*"):
        pid = folder.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _load_quietly(policy: str | Path):
    """load_policy without lerobot's per-load prints ("Loading weights from local directory", once per copy)."""
    import contextlib
    import io

    from robosteer.policies import load_policy

    with contextlib.redirect_stdout(io.StringIO()):
        return load_policy(policy)


def _run_stages(config: StudyConfig, eval_config: EvalConfig, work: Path, console, timings: dict) -> dict:
    """The four stages (record, rank, finetune, evaluate) in ``work``; returns the study's summary and adds each
    stage's wall time to ``timings``."""
    dataset_root, dataset = _record_stage(config, work, console, timings)
    base = _load_quietly(config.policy)
    fingerprint = base.fingerprint()
    # Snapshot the base weights: every method and evaluation uses exactly these, even if the source is replaced
    # meanwhile (e.g. a reinstall of the embedded policy), and the study folder documents what it measured.
    base_path = str(base.save(work / "base_policy"))
    ranking = _rank_stage(config, base, dataset_root, dataset, work, console, timings)
    methods = _finetune_stage(config, base, base_path, fingerprint, dataset_root, ranking, work, console, timings)
    del base
    results = _evaluate_stage(config, eval_config, base_path, methods, work, console, timings)
    if ranking:
        ranking = {**ranking, "heads_json": "ranking/heads.json"}
    return {
        "config": config.to_dict(),
        "dataset": dataset,
        "policy_fingerprint": fingerprint,
        "ranking": ranking,
        "methods": results,
        "ratios_steer_over_lora": ratios(results),
        "machine": {"description": machine_description(), "platform": platform.platform()},
    }


def _record_stage(config: StudyConfig, work: Path, console, timings: dict) -> tuple[Path, dict]:
    """Stage 1: the demonstrations, recorded into ``work/demos`` unless the study was given a dataset; returns
    their folder and the summary the results describe them with."""
    t0 = time.perf_counter()
    if config.dataset is not None:
        dataset_root, first_seed = Path(config.dataset), None
    else:
        first_seed = config.seed + DEMO_SEED_OFFSET
        console.print(f"[bold]1/4 record[/] {config.demos} expert demonstrations of {config.task}")
        dataset_root = stages.record_demos(
            config.task,
            config.demos,
            work / "demos",
            variations=config.demo_variations,
            seed=first_seed,
            image_size=config.image_size,
        )
    dataset = {
        **stages.dataset_summary(dataset_root),
        "first_seed": first_seed,
        "root": "demos" if config.dataset is None else str(config.dataset),
    }
    timings["record"] = time.perf_counter() - t0
    return dataset_root, dataset


def _rank_stage(config: StudyConfig, base, dataset_root: Path, dataset: dict, work: Path, console, timings: dict):
    """Stage 2: rank every head of the base policy on the demonstrations (only when ``steer`` is studied, which
    trains the selected heads); returns the ranking, or None."""
    if "steer" not in config.methods:
        return None
    console.print(
        f"[bold]2/4 rank[/] every head of the base policy on {dataset['episodes']} demonstrations "
        "(1-2 min on 2 CPU cores)"
    )
    t0 = time.perf_counter()
    weights = None
    if config.rank_weights:
        from robosteer.heads import parse_weights

        weights = parse_weights(config.rank_weights)
    ranking = stages.rank(
        base,
        dataset_root,
        work / "ranking",
        top_k=config.top_k,
        seed=config.seed,
        weights=weights,
        min_layer=config.min_layer,
    )
    timings["rank"] = time.perf_counter() - t0
    _print_ranking(console, ranking)
    shutil.copyfile(work / "ranking" / "heads.png", _plots(work) / "heads.png")
    return ranking


def _finetune_stage(
    config: StudyConfig, base, base_path: str, fingerprint, dataset_root: Path, ranking, work: Path, console, timings
) -> dict[str, dict]:
    """Stage 3: finetune every method on the same budget, each from a fresh copy of the base weights (the last
    one trains ``base`` itself); returns each method's outputs by name."""
    methods: dict[str, dict] = {}
    for method in config.finetuned_methods:
        console.print(f"[bold]3/4 finetune[/] {method}: {config.steps} steps, batch {config.batch_size}")
        t0 = time.perf_counter()
        policy = base if method == config.finetuned_methods[-1] else _load_quietly(base_path)
        methods[method] = stages.finetune_method(
            policy,
            dataset_root,
            work / "methods" / method,
            method=method,
            steps=config.steps,
            batch_size=config.batch_size,
            seed=config.seed,
            heads=ranking["selected"] if ranking else None,
            heads_fingerprint=fingerprint,
            lora_rank=config.lora_rank,
            head_rank=config.head_rank,
            lr=(config.lrs or {}).get(method),
        )
        timings[f"finetune_{method}"] = time.perf_counter() - t0
    return methods


def _evaluate_stage(
    config: StudyConfig, eval_config: EvalConfig, base_path: str, methods: dict, work: Path, console, timings: dict
) -> dict[str, dict]:
    """Stage 4: evaluate every method (``zero``: the base weights) on the same cells and seeds; returns each
    method's results entry by name."""
    results: dict[str, dict] = {}
    for method in config.methods:
        console.print(f"[bold]4/4 evaluate[/] {method}: {len(eval_config.cells)} cells x {config.episodes} episodes")
        source = PolicySource(base_path) if method == "zero" else PolicySource(methods[method]["merged"])
        t0 = time.perf_counter()
        evaluation = evaluate(source, eval_config, work / "eval" / method, label=method)
        timings[f"eval_{method}"] = time.perf_counter() - t0
        entry = {
            "eval": {"cells": evaluation.to_dict()["cells"], "wall_time_s": evaluation.meta["wall_time_s"]},
            "overall_success": evaluation.overall_success,
            "compute": None,
        }
        if method in methods:
            entry["compute"] = methods[method]["compute"]
            entry["checkpoint"] = os.path.relpath(methods[method]["merged"], work)
        results[method] = entry
    return results


def _plots(work: Path) -> Path:
    path = work / "plots"
    path.mkdir(exist_ok=True)
    return path


def _write_outputs(summary: dict, work: Path) -> None:
    plot_success(summary["methods"], _plots(work) / "success.png")
    plot_compute(summary["methods"], _plots(work) / "compute.png")
    atomic_write_text(work / "results.json", json.dumps(summary, indent=2, default=str))
    atomic_write_text(work / "results.md", study_markdown(summary))


def _replace_folder(work: Path, out: Path) -> None:
    if out.exists():
        if any(out.iterdir()) and not (out / "results.json").is_file():
            raise RobosteerError(
                f"refusing to replace {out}: it is not a robosteer study folder (no results.json); "
                f"the new results are in {work}"
            )
    replace_dir(work, out)


def _print_ranking(console, ranking: dict) -> None:
    """What the ranking chose and how far to trust it, in plain lines (no raw log output)."""
    from robosteer.heads.report import causal_text, controls_text, stability_text

    chosen = ranking["selected"]
    console.print(
        f"  chose {len(chosen)} heads: {', '.join(chosen[:8])}{' ...' if len(chosen) > 8 else ''}", markup=False
    )
    for line in (stability_text(ranking["stability"]), controls_text(ranking["controls"])):
        console.print("  " + line, markup=False)
    if not ranking["causal"].get("skipped"):
        console.print("  " + causal_text(ranking["causal"]), markup=False)
