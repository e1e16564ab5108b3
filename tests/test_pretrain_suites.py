"""`robosteer pretrain --suite metaworld`: the suite's tasks, presets and instruction words by default, and a
pretraining run end to end on Meta-World (recording with the scripted policies, training, seeded evaluation, card)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from robosteer.errors import RobosteerError


def test_each_suite_brings_its_tasks_presets_and_words(tmp_path):
    from robosteer.pretrain.pipeline import PretrainConfig

    franka = PretrainConfig(out=tmp_path)
    assert franka.tasks == ("pick_cube", "push_cube", "press_button")
    assert franka.variations == ("none", "none", "colour") and franka.spec.vlm.extra_words == ()
    metaworld = PretrainConfig(out=tmp_path, suite="metaworld")
    assert len(metaworld.tasks) == 10 and metaworld.tasks[0] == "metaworld/reach"
    assert "metaworld/drawer-open" not in metaworld.tasks  # ML10's held-out tasks stay out of pretraining
    assert metaworld.variations == ("none",)
    assert {"puck", "sweep", "basketball"} <= set(metaworld.spec.vlm.extra_words)
    assert PretrainConfig(out=tmp_path, suite="metaworld", tasks=("drawer-close",)).tasks == ("metaworld/drawer-close",)
    with pytest.raises(RobosteerError, match="do not exist in the metaworld suite"):
        PretrainConfig(out=tmp_path, suite="metaworld", variations=("colour",))
    with pytest.raises(RobosteerError, match="unknown task 'fly'"):
        PretrainConfig(out=tmp_path, suite="metaworld", tasks=("fly",))


@pytest.mark.slow
def test_pretrain_on_metaworld_end_to_end(tmp_path, monkeypatch):
    from robosteer.cli import app
    from robosteer.policies import load_policy

    monkeypatch.setenv("ROBOSTEER_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    args = ["pretrain", "--suite", "metaworld", "--tasks", "reach", "--episodes-per-task", "1", "--steps", "2",
            "--batch-size", "2", "--eval-episodes", "1", "--heldout-eval-episodes", "0", "--eval-max-steps", "8",
            "--workers", "1", "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    policy = load_policy(out / "policy")
    assert (policy.state_dim, policy.action_dim) == (4, 4)
    assert policy.image_keys == ["observation.images.corner2"]
    tokens = policy.preprocessor.steps  # the tokenizer step knows Meta-World's words
    tokenizer = next(step for step in tokens if hasattr(step, "input_tokenizer")).input_tokenizer
    assert tokenizer.unk_token_id not in tokenizer("Sweep a puck into a hole")["input_ids"]
    results = json.loads((out / "eval.json").read_text())
    assert [(r["task"], r["episodes"]) for r in results] == [("metaworld/reach", 1)]
    card = (out / "policy" / "MODEL_CARD.md").read_text()
    assert "Meta-World" in card and "80 Hz" in card and "corner2" in card
