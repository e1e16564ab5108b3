"""Record the pretraining demonstrations: one job per (task, variation preset), in parallel worker processes.

Each job writes its own LeRobot dataset; LeRobot's ``aggregate_datasets`` joins them in job order into one dataset,
and the robosteer episode labels are joined with the same episode offsets. With one worker the jobs append to one
dataset directly. The result is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from robosteer.data.labels import read_episode_labels, write_episode_labels
from robosteer.files import replace_dir


@dataclass(frozen=True)
class RecordingJob:
    """``episodes`` scripted-expert episodes of ``task`` (``metaworld/<task>`` for Meta-World) under one variation
    preset, env seeds from ``seed``."""

    task: str
    preset: str
    episodes: int
    seed: int
    noise_std: float = 0.0
    hold_frames: int = 0


def recording_jobs(
    tasks: tuple[str, ...],
    counts: tuple[int, ...],
    presets: tuple[str, ...],
    seed: int,
    noise_std: float,
    hold_frames: int = 0,
) -> list[RecordingJob]:
    """Each task's episodes split evenly over the presets (the first preset takes the remainder)."""
    jobs = []
    for t_index, (task, episodes) in enumerate(zip(tasks, counts, strict=True)):
        share = [episodes // len(presets)] * len(presets)
        share[0] += episodes - sum(share)
        for v_index, (preset, n) in enumerate(zip(presets, share, strict=True)):
            if n:
                job_seed = seed * 1_000_003 + t_index * 10_007 + v_index * 1_009
                jobs.append(RecordingJob(task, preset, n, job_seed, noise_std, hold_frames))
    return jobs


def _record(job: RecordingJob, root: Path, append: bool) -> Path:
    from sim.suites import record_expert_dataset  # the Franka writer resets the scheduler after every saved episode

    return record_expert_dataset(
        job.task, job.episodes, root, seed=job.seed, noise_std=job.noise_std, variations=job.preset, append=append,
        use_videos=False, progress=False, hold_frames=job.hold_frames,
    )  # fmt: skip


def record_jobs(jobs: list[RecordingJob], root: str | Path, workers: int = 1, on_done=None) -> Path:
    """Record every job into the LeRobot dataset ``root`` (replaced); ``on_done(job)`` is called as each finishes."""
    root = Path(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    try:
        if workers <= 1:
            for i, job in enumerate(jobs):
                _record(job, scratch / "dataset", append=i > 0)
                if on_done:
                    on_done(job)
        else:
            parts = [scratch / f"part-{i:03d}" for i in range(len(jobs))]
            with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
                futures = [pool.submit(_record, job, part, False) for job, part in zip(jobs, parts, strict=True)]
                for job, future in zip(jobs, futures, strict=True):
                    future.result()
                    if on_done:
                        on_done(job)
            _join(parts, scratch / "dataset")
        replace_dir(scratch / "dataset", root)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return root


def _join(parts: list[Path], out: Path) -> None:
    """LeRobot's aggregate_datasets over ``parts`` (in order), then the episode labels with matching offsets."""
    from lerobot.datasets.aggregate import aggregate_datasets

    # concatenate_data=False: one parquet per part. Packing re-reads and re-embeds the growing destination for every
    # part (quadratic); with image features that took over 15 min for 300 episodes, longer than recording them.
    aggregate_datasets(
        [f"local/{p.name}" for p in parts],
        f"local/{out.name}",
        roots=parts,
        aggr_root=out,
        concatenate_data=False,
    )
    offset = 0
    for part in parts:
        labels = read_episode_labels(part)
        for index, episode_labels in enumerate(labels):
            if episode_labels:
                write_episode_labels(out, offset + index, episode_labels)
        offset += len(labels)
