"""Batched episodes: one process steps several envs on one chunk clock and calls the policy once per chunk for all.

A chunked policy (SmolVLA, pi0) reads an observation only when its action queue is empty, i.e. once every
``n_action_steps`` steps. This runner keeps every env on the same chunk clock, renders the cameras only at chunk
boundaries (rendering is most of a sim step's cost), and predicts the chunks of all running episodes in one batched
model call. An episode that ends between boundaries leaves its slot idle until the next boundary, where the next
episode starts, so the clock never splits.

Each episode seeds its env reset and draws its flow-matching noise from a generator seeded by its own seed, so its
outcome depends on its seed, not on its neighbours in the batch (up to the float rounding of a batched matmul). The
noise stream differs from the one-episode-at-a-time path, so the two paths give statistically equal, not identical,
episodes: compare policies with one path.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robosteer.evaluation.rollout import EpisodeJob, episode_record
from robosteer.evaluation.video import frame_of, write_mp4


@dataclass
class _Episode:
    """One running episode in a slot of the batch."""

    job: EpisodeJob
    env: Any
    obs: dict
    instruction: str
    labels: dict
    generator: Any
    frames: list | None
    queue: deque = field(default_factory=deque)
    length: int = 0


class BatchedEpisodeRunner:
    """Runs :class:`EpisodeJob` s ``batch`` at a time with one policy call per chunk (see the module doc)."""

    def __init__(
        self,
        policy,
        *,
        batch: int,
        image_size: int,
        max_steps: int | None,
        env_kwargs: dict | None = None,
        video_fps: int = 15,
    ):
        self.policy, self.batch = policy, batch
        self.image_size, self.max_steps = image_size, max_steps
        self.env_kwargs, self.video_fps = dict(env_kwargs or {}), video_fps
        self.n_action_steps = int(policy.config.n_action_steps)
        self._envs: dict[tuple[int, str, str], Any] = {}

    def run_many(self, jobs: list[EpisodeJob], on_done: Callable[[dict], None] | None = None) -> list[dict]:
        """Run every job; returns their records (in finishing order); ``on_done(record)`` after each episode."""
        import torch

        pending, slots, records = deque(jobs), [None] * self.batch, []
        with torch.inference_mode():
            while pending or any(slots):
                for i in range(self.batch):
                    if slots[i] is None and pending:
                        slots[i] = self._start(i, pending.popleft())
                self._predict_chunks([s for s in slots if s is not None])
                for i, episode in enumerate(slots):
                    record = self._run_chunk(episode) if episode is not None else None
                    if record is not None:
                        slots[i] = None
                        records.append(record)
                        if on_done is not None:
                            on_done(record)
        return records

    def _env(self, slot: int, task: str, variation: str):
        key = (slot, task, variation)
        if key not in self._envs:
            from sim.suites import make_env

            kwargs = dict(image_size=self.image_size, variations=variation.replace("+", ","), **self.env_kwargs)
            if self.max_steps is not None:
                kwargs["max_episode_steps"] = self.max_steps
            # the checker wants camera keys in every step's observation; this runner renders only at boundaries
            self._envs[key] = make_env(task, disable_env_checker=True, **kwargs)  # any suite (metaworld/drawer-open)
        return self._envs[key]

    def _start(self, slot: int, job: EpisodeJob) -> _Episode:
        import torch

        env = self._env(slot, job.task, job.variation)
        env.unwrapped.render_images = job.video_path is not None  # else only at chunk boundaries
        obs, info = env.reset(seed=job.seed)
        frames = [frame_of(obs)] if job.video_path else None
        generator = torch.Generator().manual_seed(job.seed)
        return _Episode(job, env, obs, info["task"], dict(info.get("labels", {})), generator, frames)

    def _predict_chunks(self, episodes: list[_Episode]) -> None:
        """One batched model call for every episode (all sit at a chunk boundary)."""
        for episode in episodes:
            if any(key not in episode.obs for key in self.policy.image_keys):
                episode.obs = episode.env.unwrapped.observe()
        chunks = self.policy.predict_action_chunks(
            [e.obs for e in episodes], [e.instruction for e in episodes], [e.generator for e in episodes]
        )  # (N, chunk_size, action_dim)
        for episode, chunk in zip(episodes, chunks, strict=True):
            episode.queue = deque(chunk[: self.n_action_steps])

    def _run_chunk(self, episode: _Episode) -> dict | None:
        """Step one chunk's actions; the episode's record if it ended (its slot then idles to the boundary)."""
        while episode.queue:
            obs, _reward, terminated, truncated, info = episode.env.step(episode.queue.popleft())
            episode.obs, episode.length = obs, episode.length + 1
            if episode.frames is not None:
                episode.frames.append(frame_of(obs))
            if terminated or truncated:
                return self._finish(episode, bool(info.get("is_success", terminated)))
        return None

    def _finish(self, episode: _Episode, success: bool) -> dict:
        if episode.frames is not None:
            write_mp4(episode.frames, Path(episode.job.video_path), fps=self.video_fps)
        return episode_record(episode.job, success, episode.length, episode.instruction, episode.labels, episode.obs)

    def close(self) -> None:
        for env in self._envs.values():
            env.close()
        self._envs.clear()


def policy_batches(policy) -> bool:
    """Whether ``policy`` can run batched episodes (a RobotPolicy with chunked inference; not the scripted expert)."""
    return policy is not None and hasattr(policy, "predict_action_chunks")
