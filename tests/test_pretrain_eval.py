"""Pretraining's success figures come from the rollouts of ``robosteer eval`` (robosteer.evaluation)."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_pretraining_evaluation_is_robosteer_eval_one_episode_at_a_time():
    from robosteer.evaluation import EvalConfig, evaluate
    from robosteer.policies.loading import make_tiny_smolvla
    from robosteer.pretrain import pipeline

    policy = make_tiny_smolvla(seed=0)
    policy.model.eval()
    records = pipeline.episode_records(policy, "press_button", 2, pipeline.EVAL_SEED, max_steps=6)
    config = EvalConfig(
        tasks=("press_button",), episodes=2, seed=pipeline.EVAL_SEED, workers=1, batch=1, videos_per_cell=0, max_steps=6
    )
    direct = evaluate(policy, config, progress=False).episodes
    assert records == direct
    assert [r["seed"] for r in records] == [pipeline.EVAL_SEED, pipeline.EVAL_SEED + 1]
    summary = pipeline.evaluate(policy, "press_button", 2, pipeline.EVAL_SEED, max_steps=6)
    assert summary == {
        "task": "press_button",
        "variations": "none",
        "episodes": 2,
        "successes": sum(r["success"] for r in direct),
        "success_rate": sum(r["success"] for r in direct) / 2,
        "mean_steps": 6.0,
        "seed": pipeline.EVAL_SEED,
    }
