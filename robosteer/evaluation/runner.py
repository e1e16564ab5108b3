"""Run an evaluation: every (task, variation) cell x seeded episodes, in parallel worker processes.

Parallelism is a process pool: each worker holds one copy of the policy with one torch thread and its own MuJoCo envs,
and runs whole episodes; this keeps the policy's own per-episode action-chunk queue untouched, which a batched
vector-env call would have to re-implement. Workers start from a fork server that has imported torch, lerobot and the
sim suite once (plain ``fork`` deadlocks once the parent has opened an EGL context, e.g. after recording demos;
``spawn`` re-imports lerobot in every worker, ~15-20 s each on a busy 2-core machine).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Any

from robosteer.errors import RobosteerError
from robosteer.evaluation.batched import BatchedEpisodeRunner, policy_batches
from robosteer.evaluation.config import EvalConfig, PolicySource
from robosteer.evaluation.report import EvalResults, summarize_cells
from robosteer.evaluation.rollout import (
    EpisodeJob,
    EpisodeRunner,
    init_worker,
    load_policy_from_source,
    run_job_in_worker,
    run_jobs_batched_in_worker,
)
from robosteer.interrupts import interrupts_deferred

FORKSERVER_PRELOAD = (
    "torch",
    "sim",
    "lerobot.policies.smolvla.modeling_smolvla",
    "robosteer.policies.loading",
    "robosteer.evaluation.rollout",
)
"""Imported once by the fork server; every worker forked from it starts with these already loaded (~15 s saved)."""


def plan_jobs(config: EvalConfig, out_dir: Path | None) -> list[EpisodeJob]:
    """All episodes of an evaluation, cell by cell; the first ``videos_per_cell`` of each cell get a video path."""
    jobs = []
    for task, variation in config.cells:
        for index, seed in enumerate(config.seeds):
            video = None
            if out_dir is not None and index < config.videos_per_cell:
                video = str(out_dir / "videos" / f"{task}__{variation}__seed{seed}.mp4")
            jobs.append(EpisodeJob(task, variation, seed, video))
    return jobs


def resolve_workers(config: EvalConfig, n_jobs: int) -> int:
    cores = os.cpu_count() or 1
    wanted = config.workers or cores
    return max(1, min(wanted, n_jobs))


def evaluate(
    policy: PolicySource | Any,
    config: EvalConfig,
    out_dir: str | Path | None = None,
    *,
    progress: bool = True,
    label: str | None = None,
) -> EvalResults:
    """Evaluate ``policy`` on every cell of ``config``; with ``out_dir`` also write results.json/.md and videos.

    ``policy`` is a :class:`PolicySource` (``embedded``/``expert``/checkpoint path [+ adapter]) or a live
    RobotPolicy. Episodes run in ``config.workers`` processes; a live policy reaches them only under ``fork``.
    Like any multiprocessing code, a script calling this with workers > 1 needs ``if __name__ == "__main__":``.
    """
    out_path, source = _check_inputs(policy, config, out_dir)
    jobs = plan_jobs(config, out_path)
    runner_kwargs = dict(image_size=config.image_size, max_steps=config.max_steps, env_kwargs=config.extra_env_kwargs)
    n_workers, start_method = _workers_and_start_method(config, len(jobs), live_policy=source is None)

    t0 = time.perf_counter()
    # Load once here, so a bad checkpoint or adapter fails before any episode (fork workers also inherit it).
    live = policy if source is None else load_policy_from_source(source)
    batch = config.batch if policy_batches(live) else 1
    if n_workers == 1:
        records = _run_in_process(live, jobs, batch, runner_kwargs, progress, label)
    else:
        handed = live if start_method == "fork" else source
        records = _run_in_pool(handed, jobs, n_workers, batch, start_method, runner_kwargs, progress, label)
    wall = time.perf_counter() - t0

    order = {cell: i for i, cell in enumerate(config.cells)}
    records.sort(key=lambda r: (order[(r["task"], r["variation"])], r["seed"]))
    meta = _results_meta(policy, source, live, config, label, n_workers, batch, start_method, wall)
    results = EvalResults(meta=meta, cells=summarize_cells(records, out_path), episodes=records)
    if out_path is not None:
        results.save(out_path)
    return results


def _check_inputs(policy, config: EvalConfig, out_dir: str | Path | None) -> tuple[Path | None, PolicySource | None]:
    """Refuse unknown cells, an ``out_dir`` that is a file and a policy that is neither a source nor a live policy;
    returns the output folder (or None) and the policy's source (None for a live policy)."""
    config.validate_names()
    out_path = Path(out_dir) if out_dir is not None else None
    if out_path is not None and out_path.exists() and not out_path.is_dir():
        raise RobosteerError(f"--out {out_path} is a file: give a folder for results.json, results.md and videos/")
    source = policy if isinstance(policy, PolicySource) else None
    if source is None and not hasattr(policy, "select_action"):
        raise RobosteerError(f"cannot evaluate {type(policy).__name__}: give a PolicySource or a RobotPolicy")
    return out_path, source


def _workers_and_start_method(config: EvalConfig, n_jobs: int, *, live_policy: bool) -> tuple[int, str]:
    """How many worker processes run the episodes and how they start (``forkserver`` where the platform has it);
    a live policy only reaches workers by ``fork``, so with any other start method it runs in this process."""
    n_workers = resolve_workers(config, n_jobs)
    start_method = config.start_method or ("forkserver" if "forkserver" in get_all_start_methods() else "spawn")
    if live_policy and start_method != "fork":
        n_workers = 1  # a live policy only reaches workers by fork
    return n_workers, start_method


def _run_in_process(live, jobs: list[EpisodeJob], batch: int, runner_kwargs: dict, progress: bool, label):
    """Every episode in this process: ``batch`` episodes side by side when the policy batches, else one by one."""
    if batch > 1:
        runner = BatchedEpisodeRunner(live, batch=batch, **runner_kwargs)
        try:
            return _run_batched(runner, jobs, progress, label)
        finally:
            runner.close()
    runner = EpisodeRunner(live, **runner_kwargs)
    try:
        return _run_all(jobs, runner.run, progress, label)
    finally:
        runner.close()


def _run_in_pool(handed, jobs, n_workers: int, batch: int, start_method: str, runner_kwargs: dict, progress, label):
    """Every episode in ``n_workers`` worker processes, each initialised with ``handed`` (the live policy under
    ``fork``, else its source); with ``batch > 1`` workers run groups of episodes batched. Ctrl-C or a failed
    episode stops the workers at once."""
    from robosteer.policies.loading import torch_threads  # imports torch: not at this module's import

    pool = None
    try:
        with interrupts_deferred():  # a pool is started whole (every worker tracked) or not at all
            pool = ProcessPoolExecutor(
                n_workers,
                mp_context=_context(start_method),
                initializer=_quiet_worker,
                initargs=(handed, runner_kwargs, torch_threads()),  # 1 unless ROBOSTEER_TORCH_THREADS says
            )
            if batch > 1:
                groups = _job_groups(jobs, n_workers, batch)
                futures = [pool.submit(run_jobs_batched_in_worker, group, batch) for group in groups]
            else:
                futures = [pool.submit(run_job_in_worker, job) for job in jobs]
        records = _run_all(futures, None, progress, label, total=len(jobs))
    except BaseException:  # Ctrl-C or a failed episode: stop the workers now, write nothing
        if pool is not None:
            _stop_pool(pool)
        raise
    pool.shutdown()
    return records


def _results_meta(policy, source, live, config: EvalConfig, label, n_workers, batch, start_method, wall) -> dict:
    """The ``meta`` section of results.json: what was evaluated, on which cells and seeds, how, and on what."""
    return {
        "policy": source.policy if source else getattr(policy, "name", type(policy).__name__),
        "adapter": source.adapter if source else None,
        "label": label or (source.label if source else "in-memory policy"),
        "fingerprint": _fingerprint(live),
        "seed": config.seed,
        "episodes_per_cell": config.episodes,
        "cells": [list(c) for c in config.cells],
        "image_size": config.image_size,
        "max_steps": config.max_steps,
        "env_kwargs": {key: str(value) for key, value in config.extra_env_kwargs.items()},
        "workers": n_workers,
        "batch": batch,
        "start_method": start_method if n_workers > 1 else None,
        "wall_time_s": round(wall, 2),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
        },
    }


def _quiet_worker(*args) -> None:
    """Worker initializer: Ctrl-C is the parent's to handle (it stops the pool), so workers ignore SIGINT instead of
    each printing a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    init_worker(*args)


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel pending episodes and end the worker processes without waiting for running ones."""
    processes = list((getattr(pool, "_processes", None) or {}).values())  # the executor has no public handle
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)


def _context(start_method: str):
    """A multiprocessing context; the forkserver pre-imports torch, lerobot and the sim suite once per process."""
    ctx = get_context(start_method)
    if start_method == "forkserver":
        ctx.set_forkserver_preload(list(FORKSERVER_PRELOAD))
        _start_forkserver()
    return ctx


def _start_forkserver() -> None:
    """Start the fork server with SIGINT ignored: it and every worker forked from it inherit that, so Ctrl-C during
    start-up reaches only this process (which stops the pool) instead of printing a traceback per process. This
    thread also blocks SIGINT meanwhile: a blocked signal is held even while ignored (Linux), so a Ctrl-C that arrives
    during the start is delivered here once the handler is back instead of being lost (the evaluation then ran to
    the end)."""
    from multiprocessing import forkserver

    if threading.current_thread() is not threading.main_thread():
        forkserver.ensure_running()
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        forkserver.ensure_running()
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # a held Ctrl-C arrives now


def _job_groups(jobs: list, n_workers: int, batch: int) -> list[list]:
    """Jobs dealt into groups of about two batches (enough to keep a worker's slots busy, small enough for the
    progress bar and the load balance)."""
    n_groups = max(n_workers, -(-len(jobs) // (2 * batch)))
    return [jobs[k::n_groups] for k in range(n_groups) if jobs[k::n_groups]]


def _run_all(items, run_one, progress: bool, label: str | None, total: int | None = None) -> list[dict]:
    """Run jobs (``run_one(job)``) or collect futures (``run_one is None``) with a progress bar; a job or future may
    also give a list of episode records (a batched group), counted episode by episode."""
    records: list[dict] = []
    with _progress_bar(label, total or len(items), progress) as advance:
        iterator = as_completed(items) if run_one is None else items
        for item in iterator:
            result = item.result() if run_one is None else run_one(item)
            done = result if isinstance(result, list) else [result]
            records.extend(done)
            advance(done)
    return records


def _run_batched(runner: BatchedEpisodeRunner, jobs: list[EpisodeJob], progress: bool, label: str | None):
    with _progress_bar(label, len(jobs), progress) as advance:
        return runner.run_many(jobs, on_done=lambda record: advance([record]))


@contextlib.contextmanager
def _progress_bar(label: str | None, total: int, enabled: bool):
    """A rich progress bar over episodes; yields ``advance(records)``."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    from robosteer.progress import Progress

    columns = (
        TextColumn("[bold]eval[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("success {task.fields[successes]}"),
        TimeElapsedColumn(),
    )
    successes = [0]
    with Progress(*columns, disable=not enabled, transient=False) as bar:
        task_id = bar.add_task(label or "", total=total, successes=0)

        def advance(records: list[dict]) -> None:
            successes[0] += sum(bool(r["success"]) for r in records)
            bar.update(task_id, advance=len(records), successes=successes[0])

        yield advance


def _fingerprint(live) -> str | None:
    if live is None:
        return "scripted-expert"
    try:
        return live.fingerprint()
    except Exception:  # a fingerprint is informative only
        return None


def load_results(path: str | Path) -> dict:
    """Read a ``results.json`` (or the folder holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    if not path.is_file():
        raise RobosteerError(f"no evaluation results at {path}: run robosteer eval --out <folder> first")
    return json.loads(path.read_text())
