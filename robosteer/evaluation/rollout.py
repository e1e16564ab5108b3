"""Seeded episodes of one actor (a policy or the scripted expert) in one sim env (of any suite: ``sim.suites``).

Everything here also runs inside worker processes: the worker keeps one policy and one env per
(task, variation) and runs the episodes it is given. Each episode seeds the env reset *and* torch/numpy (the policy's
flow-matching noise), so an episode's outcome depends only on its seed, not on which worker ran it.
"""

from __future__ import annotations

import contextlib
import io
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from robosteer.constants import OBS_STATE
from robosteer.evaluation.config import EXPERT, PolicySource
from robosteer.evaluation.video import frame_of, write_mp4


class Actor(Protocol):
    """Anything that acts in the env: ``reset()`` before an episode, ``act(obs, info)`` every step."""

    def reset(self) -> None: ...

    def act(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray: ...


class PolicyActor:
    """A :class:`robosteer.policies.RobotPolicy` (``select_action(obs, task)``) as an actor."""

    def __init__(self, policy):
        self.policy = policy

    def reset(self) -> None:
        self.policy.reset()

    def act(self, obs, info):
        return self.policy.select_action(obs, info["task"])


class PolicyDriver(PolicyActor):
    """A policy driving the start of a recording attempt (``sim.recording.Takeover``): each attempt seeded like an
    evaluation episode, inference without gradients."""

    def reset(self, seed: int) -> None:
        seed_episode(seed)
        super().reset()

    def act(self, obs, info):
        import torch

        with torch.inference_mode():
            return np.asarray(super().act(obs, info), dtype=np.float32)


def seed_episode(seed: int) -> None:
    """Seed python, numpy and torch (the policy's flow-matching noise) for one episode."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class ExpertActor:
    """The env's suite's scripted expert (privileged state) as an actor: the sanity ceiling of an evaluation."""

    def __init__(self, env):
        from sim.suites import make_expert

        self.expert = make_expert(env)

    def reset(self) -> None:
        self.expert.reset()

    def act(self, obs, info):
        return self.expert.act(obs, info)


@dataclass(frozen=True)
class EpisodeJob:
    """One episode to run: which cell, which seed, and where to put its video (None = no video)."""

    task: str
    variation: str
    seed: int
    video_path: str | None = None


def load_policy_from_source(source: PolicySource):
    """The RobotPolicy a source names (``embedded`` or a checkpoint path), with its adapter applied; None for the expert."""
    if source.policy == EXPERT:
        return None
    from robosteer.policies import load_policy

    with contextlib.redirect_stdout(io.StringIO()):  # lerobot prints a few lines per load; one per worker is noise
        policy = load_policy(source.policy)
        if source.adapter:
            from robosteer.tuners import apply_adapter

            policy = apply_adapter(policy, source.adapter)
    if hasattr(policy, "model"):
        policy.model.eval()
    return policy


class EpisodeRunner:
    """Holds one policy (or the expert) and one env per (task, variation); runs :class:`EpisodeJob` s."""

    def __init__(
        self, policy, *, image_size: int, max_steps: int | None, env_kwargs: dict | None = None, video_fps: int = 15
    ):
        self.policy = policy  # None = scripted expert
        self.image_size = image_size
        self.max_steps = max_steps
        self.env_kwargs = dict(env_kwargs or {})
        self.video_fps = video_fps
        self._envs: dict[tuple[str, str], Any] = {}
        self._actors: dict[tuple[str, str], Actor] = {}

    def _env_and_actor(self, task: str, variation: str):
        key = (task, variation)
        if key not in self._envs:
            from sim.suites import make_env

            kwargs = dict(image_size=self.image_size, variations=variation.replace("+", ","), **self.env_kwargs)
            if self.max_steps is not None:
                kwargs["max_episode_steps"] = self.max_steps
            env = make_env(task, **kwargs)  # a Franka task name or suite/task (metaworld/drawer-open)
            self._envs[key] = env
            self._actors[key] = ExpertActor(env) if self.policy is None else PolicyActor(self.policy)
        return self._envs[key], self._actors[key]

    def run(self, job: EpisodeJob) -> dict[str, Any]:
        """Run one episode; returns a JSON-ready record (success, length, instruction, labels, video)."""
        import torch

        env, actor = self._env_and_actor(job.task, job.variation)
        seed_episode(job.seed)
        obs, info = env.reset(seed=job.seed)
        instruction = info["task"]
        labels = dict(info.get("labels", {}))
        actor.reset()
        frames = [frame_of(obs)] if job.video_path else None
        length, success = 0, False
        with torch.inference_mode():
            while True:
                action = np.asarray(actor.act(obs, {**info, "task": instruction}), dtype=np.float32)
                obs, _reward, terminated, truncated, info = env.step(action)
                length += 1
                if frames is not None:
                    frames.append(frame_of(obs))
                if terminated or truncated:
                    success = bool(info.get("is_success", terminated))
                    break
        if frames is not None:
            write_mp4(frames, Path(job.video_path), fps=self._video_fps(env))
        return episode_record(job, success, length, instruction, labels, obs)

    def _video_fps(self, env) -> int:
        """``video_fps`` for Franka tasks; the env's own control rate for other suites (Meta-World: 80 Hz)."""
        from sim.suites import FRANKA, suite_of_env

        return self.video_fps if suite_of_env(env) == FRANKA else int(env.unwrapped.fps)

    def close(self) -> None:
        for env in self._envs.values():
            env.close()
        self._envs.clear()
        self._actors.clear()


def episode_record(job: EpisodeJob, success: bool, length: int, instruction: str, labels: dict, obs: dict) -> dict:
    """An episode's JSON-ready record (success, length, instruction, labels, final state, video)."""
    return {
        "task": job.task,
        "variation": job.variation,
        "seed": job.seed,
        "success": success,
        "length": length,
        "instruction": instruction,
        "labels": {k: _jsonable(v) for k, v in labels.items()},
        "final_state": [round(float(x), 6) for x in np.asarray(obs[OBS_STATE]).ravel()],
        "video": job.video_path,
    }


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


# ---- worker-process side (ProcessPoolExecutor with the spawn start method) ----
_WORKER: dict[str, EpisodeRunner] = {}


def init_worker(policy_or_source, runner_kwargs: dict, torch_threads: int) -> None:
    """Pool initializer: one torch thread per worker (the workers are the parallelism).

    Under the ``fork`` start method the parent's already-loaded policy arrives as is (copy-on-write, no pickling);
    under ``spawn`` a :class:`PolicySource` arrives and the worker loads the policy itself.
    """
    from robosteer.environment import apply_env_defaults

    apply_env_defaults()
    import torch

    if torch_threads > 0:  # 0: torch's default
        torch.set_num_threads(torch_threads)
    policy = (
        load_policy_from_source(policy_or_source) if isinstance(policy_or_source, PolicySource) else policy_or_source
    )
    _WORKER["runner"] = EpisodeRunner(policy, **runner_kwargs)


def run_job_in_worker(job: EpisodeJob) -> dict[str, Any]:
    return _WORKER["runner"].run(job)


def run_jobs_batched_in_worker(jobs: list[EpisodeJob], batch: int) -> list[dict[str, Any]]:
    """A group of episodes stepped ``batch`` at a time by this worker's policy (see ``evaluation.batched``)."""
    from robosteer.evaluation.batched import BatchedEpisodeRunner

    runner = _WORKER["runner"]
    if "batched" not in _WORKER:
        _WORKER["batched"] = BatchedEpisodeRunner(
            runner.policy,
            batch=batch,
            image_size=runner.image_size,
            max_steps=runner.max_steps,
            env_kwargs=runner.env_kwargs,
            video_fps=runner.video_fps,
        )
    return _WORKER["batched"].run_many(jobs)
