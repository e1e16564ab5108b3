"""The shared training loop on a tiny real Llama: every method learns, LoRA reloads with peft, runs resume exactly,
NaN stops the run, bad heads/outputs are refused."""

from __future__ import annotations

import json

import pytest
import torch
from helpers.toy import DecoderPolicy, pattern_sequences, sequence_batches

from robosteer.errors import RobosteerError
from robosteer.tuners import FinetuneConfig, apply_adapter, finetune

torch.set_num_threads(1)
HEADS = ["decoder.L1.H2", "decoder.L2.H0", "decoder.L2.H3"]
SEQS = pattern_sequences()


def _config(method: str, **kwargs) -> FinetuneConfig:
    defaults = {
        "steps": 20,
        "batch_size": 4,
        "progress": False,
        "heads": HEADS if method == "steer" else [],
        "lr": 1e-2 if method != "full" else 3e-3,
        "warmup_steps": 2,
    }
    return FinetuneConfig(method=method, **{**defaults, **kwargs})


def _eval_loss(policy: DecoderPolicy) -> float:
    with torch.no_grad():
        return float(policy.loss({"input_ids": SEQS}))


def _run(policy, config, out):
    return finetune(
        policy, None, config, out, make_batches=sequence_batches(SEQS, config.batch_size, config.seed, config.steps)
    )


@pytest.mark.parametrize("method", ["steer", "lora", "full"])
def test_each_method_reduces_the_loss_and_writes_artifacts(method, tmp_path):
    policy = DecoderPolicy()
    before = _eval_loss(policy)
    result = _run(policy, _config(method, merge=True), tmp_path / "run")
    after = _eval_loss(policy)  # the policy now holds the merged, finetuned model
    assert after < before - 0.05, f"{method}: loss {before:.3f} -> {after:.3f}"
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    for key in ("trainable_params", "total_params", "mean_step_time_s", "peak_memory_bytes", "wall_time_s"):
        assert summary[key] > 0, key
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 21))
    assert (tmp_path / "run" / "merged" / "config.json").is_file()
    if method == "full":
        assert summary["trainable_params"] == summary["total_params"]
        assert result.adapter_dir is None
    else:
        assert summary["trainable_params"] < summary["total_params"] / 4
        assert result.adapter_dir.is_dir()


def test_steer_adapter_and_merged_checkpoint_agree(tmp_path):
    policy = DecoderPolicy()
    fingerprint = policy.fingerprint()
    result = _run(policy, _config("steer", merge=True, head_rank=2), tmp_path / "run")
    merged_out = policy.logits(SEQS)
    from transformers import LlamaForCausalLM

    reloaded = LlamaForCausalLM.from_pretrained(str(result.merged_dir))
    assert torch.allclose(reloaded(input_ids=SEQS).logits, merged_out, atol=1e-5)
    base = DecoderPolicy()
    assert base.fingerprint() == fingerprint
    apply_adapter(base, result.adapter_dir, merge=False)
    assert torch.allclose(base.logits(SEQS), merged_out, atol=1e-5)
    with pytest.raises(RobosteerError, match="trained on policy"):
        apply_adapter(DecoderPolicy(seed=3), result.adapter_dir)


def test_lora_adapter_reloads_with_peft(tmp_path):
    from peft import PeftModel

    policy = DecoderPolicy()
    result = _run(policy, _config("lora", steps=5, lora_targets="all-linear", lora_rank=4), tmp_path / "run")
    want = policy.logits(SEQS).detach()
    assert (result.adapter_dir / "adapter_config.json").is_file()
    peft_model = PeftModel.from_pretrained(DecoderPolicy().model, str(result.adapter_dir))
    assert torch.allclose(peft_model(input_ids=SEQS).logits, want, atol=1e-5)
    base = apply_adapter(DecoderPolicy(), result.adapter_dir)
    assert torch.allclose(base.logits(SEQS), want, atol=1e-5)


class _Interrupt(Exception):
    pass


def test_resume_continues_exactly(tmp_path):
    config = _config("steer", steps=8, save_every=3)
    straight = DecoderPolicy()
    _run(straight, config, tmp_path / "straight")
    want = straight.logits(SEQS)

    interrupted = DecoderPolicy()
    full_stream = sequence_batches(SEQS, config.batch_size, config.seed, config.steps)

    def crashing(start_step):
        for step, batch in enumerate(full_stream(start_step), start=start_step):
            if step == 4:
                raise _Interrupt
            yield batch

    with pytest.raises(_Interrupt):
        finetune(interrupted, None, config, tmp_path / "resumed", make_batches=crashing)
    with pytest.raises(RobosteerError, match="--resume"):
        _run(DecoderPolicy(), config, tmp_path / "resumed")
    resumed = DecoderPolicy()
    result = _run(resumed, _config("steer", steps=8, save_every=3, resume=True), tmp_path / "resumed")
    assert result.summary["resumed_from_step"] == 3
    assert torch.allclose(resumed.logits(SEQS), want, atol=1e-6)
    steps = [json.loads(line)["step"] for line in (tmp_path / "resumed" / "log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 9))


class _PoisonedPolicy(DecoderPolicy):
    """A real tiny Llama whose loss turns NaN on batches marked ``poison`` (as a corrupt sample would)."""

    def loss(self, batch):
        loss = super().loss(batch)
        return loss * float("nan") if batch.get("poison") else loss


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    config = _config("steer", steps=10, save_every=2)
    stream = sequence_batches(SEQS, config.batch_size, config.seed, config.steps)

    def poisoned(start_step):
        for step, batch in enumerate(stream(start_step), start=start_step):
            yield {**batch, "poison": step == 4}

    with pytest.raises(RobosteerError, match=r"at step 5.*step 4"):
        finetune(_PoisonedPolicy(), None, config, tmp_path / "run", make_batches=poisoned)
    state = json.loads((tmp_path / "run" / "checkpoints" / "latest" / "state.json").read_text())
    assert state["step"] == 4
    last = json.loads((tmp_path / "run" / "log.jsonl").read_text().splitlines()[-1])
    assert last["step"] == 5 and last["loss"] is None


def test_bad_heads_are_refused_before_work(tmp_path):
    policy = DecoderPolicy()
    with pytest.raises(RobosteerError, match="not in this"):
        _run(policy, _config("steer", heads=["decoder.L7.H0"]), tmp_path / "a")
    with pytest.raises(RobosteerError, match="ranked on policy"):
        _run(policy, _config("steer", heads_fingerprint="0" * 16), tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    with pytest.raises(RobosteerError, match="needs heads"):
        FinetuneConfig(method="steer")
    with pytest.raises(RobosteerError, match="unknown method"):
        FinetuneConfig(method="prefix")
