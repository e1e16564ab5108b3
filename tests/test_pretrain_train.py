"""Pretraining trains in the shared training loop: its log, timing and checkpoint, and its stop on a NaN loss."""

from __future__ import annotations

import json

import pytest
import torch

from robosteer.errors import RobosteerError


def _demos(policy, n: int = 24, nan: bool = False):
    """In-memory demonstrations of two tasks with random frames (NaN actions when ``nan``)."""
    from robosteer.pretrain.data import InMemoryDemos

    generator = torch.Generator().manual_seed(1)
    actions = torch.randn(n, 8, generator=generator)
    if nan:
        actions[:] = float("nan")
    half = n // 2
    return InMemoryDemos(
        states=torch.randn(n, 8, generator=generator),
        actions=actions,
        images={
            k: torch.randint(0, 255, (n, 3, 32, 32), generator=generator, dtype=torch.uint8) for k in policy.image_keys
        },
        episode_end=torch.tensor([half] * half + [n] * (n - half)),
        task_ids=torch.tensor([0] * half + [1] * (n - half)),
        tasks=["press the button", "pick the cube"],
    )


def _config(tmp_path, steps: int):
    from robosteer.pretrain.pipeline import PretrainConfig

    return PretrainConfig(out=tmp_path, steps=steps, batch_size=2, lr=1e-3)


def test_pretraining_settings_of_the_shared_loop(tmp_path):
    from robosteer.pretrain.pipeline import training_config

    config = training_config(_config(tmp_path, 3000))
    assert (config.warmup, config.min_lr_ratio, config.peak_lr, config.grad_clip) == (150, 0.1, 1e-3, 10.0)
    assert training_config(_config(tmp_path, 3)).warmup == 1


@pytest.mark.slow
def test_pretraining_writes_the_shared_loop_log_timing_and_checkpoint(tmp_path):
    from robosteer.policies.loading import make_tiny_smolvla
    from robosteer.pretrain.pipeline import train

    policy = make_tiny_smolvla(seed=0)
    losses, _ = train(policy, _demos(policy), _config(tmp_path, 3))
    assert len(losses) == 3 and all(loss > 0 for loss in losses)
    lines = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [3]  # every 50 steps and the last
    assert {"loss", "lr", "grad_norm", "step_time_s"} <= set(lines[0])
    summary = json.loads((tmp_path / "train_summary.json").read_text())
    assert summary["steps"] == 3 and summary["method"] == "full" and summary["mean_step_time_s"] > 0
    assert summary["final_loss"] == pytest.approx(losses[-1])
    assert json.loads((tmp_path / "checkpoints" / "latest" / "state.json").read_text())["step"] == 3
    assert not policy.model.training


@pytest.mark.slow
def test_a_nan_loss_stops_pretraining_like_finetuning(tmp_path):
    from robosteer.policies.loading import make_tiny_smolvla
    from robosteer.pretrain.pipeline import train

    policy = make_tiny_smolvla(seed=0)
    before = {name: p.detach().clone() for name, p in policy.model.named_parameters()}
    with pytest.raises(RobosteerError, match=r"loss became nan at step 1; training stopped before that update"):
        train(policy, _demos(policy, nan=True), _config(tmp_path, 3))
    last = json.loads((tmp_path / "log.jsonl").read_text().splitlines()[-1])
    assert last["loss"] is None and "non-finite loss" in last["error"]
    assert all(torch.equal(p, before[name]) for name, p in policy.model.named_parameters())


@pytest.mark.slow
def test_an_interrupted_pretraining_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    """Pretraining stopped after its step-2 checkpoint and continued with ``resume`` ends with the weights of an
    uninterrupted 4-step run (same schedule, optimizer state, random state and batch order)."""
    from dataclasses import replace

    import robosteer.tuners.train as train_module
    from robosteer.policies.loading import make_tiny_smolvla
    from robosteer.pretrain.pipeline import train

    def config(out, **changes):
        out.mkdir(exist_ok=True)
        return replace(_config(out, 4), save_every=2, **changes)

    straight = make_tiny_smolvla(seed=0)
    train(straight, _demos(straight), config(tmp_path / "straight"))

    save = train_module.save_checkpoint

    def save_then_stop(root, step, *args, **kwargs):
        save(root, step, *args, **kwargs)
        if step == 2:
            raise KeyboardInterrupt  # the sitting ends right after the step-2 checkpoint

    interrupted = make_tiny_smolvla(seed=0)
    monkeypatch.setattr(train_module, "save_checkpoint", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        train(interrupted, _demos(interrupted), config(tmp_path / "parts"))
    monkeypatch.setattr(train_module, "save_checkpoint", save)
    resumed = make_tiny_smolvla(seed=0)
    losses, _ = train(resumed, _demos(resumed), config(tmp_path / "parts", resume=True))
    assert len(losses) == 2, "the second sitting trains steps 3 and 4 only"
    for (name, want), got in zip(straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6, msg=name)


def test_resume_refuses_other_settings_before_any_work(tmp_path):
    from dataclasses import replace

    from robosteer.pretrain.pipeline import check_pretrain_resume

    cfg = replace(_config(tmp_path, 4), resume=True)
    with pytest.raises(RobosteerError, match="holds no finished recording"):
        check_pretrain_resume(cfg)
    (tmp_path / "dataset" / "meta").mkdir(parents=True)
    (tmp_path / "dataset" / "meta" / "info.json").write_text("{}")
    check_pretrain_resume(cfg)  # stopped after recording, before the first checkpoint: trains from step 0


def test_resume_on_given_datasets_needs_no_recording_but_checks_the_schedule(tmp_path):
    from dataclasses import replace

    from robosteer.pretrain.pipeline import check_pretrain_resume
    from robosteer.study.rank_bench import write_synthetic_demos

    data = write_synthetic_demos(tmp_path / "demos", n_episodes=1, n_frames=6)
    out = tmp_path / "out"
    cfg = replace(_config(out, 4), data=(str(data),), resume=True)
    check_pretrain_resume(cfg)  # --data gives the demonstrations: no dataset/ of its own is needed
    latest = out / "checkpoints" / "latest"
    latest.mkdir(parents=True)
    (latest / "state.json").write_text(json.dumps({"step": 2, "config": {"steps": 4, "batch_size": 2, "lr": 5e-4}}))
    with pytest.raises(RobosteerError, match="lr 0.0005"):
        check_pretrain_resume(cfg)


def test_a_resumed_runs_card_times_only_its_last_sitting(tmp_path):
    """The card of a resumed run says its training time covers the last sitting's steps, not the whole run."""
    from dataclasses import replace

    from robosteer.pretrain.pipeline import wall_time_line

    wall = {"record_s": 600.0, "decode_s": 60.0, "train_s": 1800.0, "eval_s": 120.0, "resumed_from_step": 0}
    straight = wall_time_line(_config(tmp_path, 4000), wall)
    assert straight == "recording 10.0 min, decoding 1.0 min, training\n  30.0 min, evaluation 2.0 min"
    resumed = wall_time_line(replace(_config(tmp_path, 4000), resume=True), {**wall, "resumed_from_step": 1500})
    assert "recording in the first sitting" in resumed
    assert "30.0 min in the last sitting (steps 1500-4000" in resumed
