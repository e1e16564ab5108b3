"""Full-size VLAs on the meta device: steer/LoRA parameter counts match the per-head arithmetic, smolvla_base has
SmolVLM2-500M's published geometry, and the training-memory estimate adds up and behaves (checkpointing, batch)."""

from __future__ import annotations

import pytest
import torch

from robosteer.tuners.scale import count_at_scale
from robosteer.tuners.scale_memory import ADAMW_BYTES_PER_PARAM, LiveBytes, activation_peak, estimate_memory


@pytest.mark.slow
def test_pi0_counts_on_meta_device_match_head_arithmetic():
    result = count_at_scale("pi0", n_heads=2, head_ranks=(4,), lora_rank=16)
    counts = result["counts"]
    # the first two bench heads are VLM heads (width 2048, head_dim 256): a rank-r delta on a q_proj row slice is
    # r x (2048 + 256), on an o_proj column slice r x (256 + 2048)
    assert counts["steer-r4"] == 2 * 2 * 4 * (2048 + 256)
    assert counts["total"] > 3e9  # Gemma 2B + 300M expert + SigLIP, never allocated
    assert counts["lora-all-linear-r16"] > 10 * counts["lora-lerobot-r16"] > 0
    ratio = result["pi0 steer-r4/lora-all-linear-r16: param_ratio"]
    assert ratio == counts["steer-r4"] / counts["lora-all-linear-r16"]


def test_smolvlm_config_has_the_published_numbers():
    from robosteer.tuners.scale_smolvla import smolvlm_config

    config = smolvlm_config()
    text, vision = config.text_config, config.vision_config
    assert (text.hidden_size, text.num_hidden_layers, text.num_attention_heads, text.num_key_value_heads) == (
        960,
        32,
        15,
        5,
    )
    assert (text.head_dim, text.intermediate_size, text.vocab_size) == (64, 2560, 49280)
    assert text.rope_parameters["rope_theta"] == 100000.0
    assert (vision.hidden_size, vision.num_hidden_layers, vision.num_attention_heads) == (768, 12, 12)
    assert (vision.intermediate_size, vision.patch_size, vision.image_size, config.scale_factor) == (3072, 16, 512, 4)


@pytest.fixture(scope="module")
def smolvla_base():
    from robosteer.tuners.scale import build_on_meta

    return build_on_meta("smolvla_base")


@pytest.mark.slow
def test_smolvla_base_on_meta_has_lerobots_layout(smolvla_base):
    from robosteer.policies.layouts import layout_for_policy

    layout = layout_for_policy(smolvla_base)
    vlm = [site for site in layout if site.stack == "vlm"]
    expert = [site for site in layout if site.stack == "expert"]
    assert len(vlm) == len(expert) == 16  # num_vlm_layers=16 of the 32, one expert layer each
    assert {(s.n_heads, s.head_dim) for s in vlm + expert} == {(15, 64)}
    assert smolvla_base.model.vlm_with_expert.lm_expert.config.hidden_size == int(0.75 * 960)
    assert 0.44e9 < sum(p.numel() for p in smolvla_base.parameters()) < 0.46e9  # "SmolVLA (0.45B)"
    assert all(p.is_meta for p in smolvla_base.parameters())


@pytest.mark.slow
def test_steer_counts_shrink_with_rank_on_smolvla_base():
    counts = count_at_scale("smolvla_base", n_heads=4)["counts"]
    assert 0 < counts["steer-r4"] < counts["steer-r16"] < counts["steer-full"] < counts["full"] < counts["total"]
    # the first 4 bench heads sit in VLM layers 8-11 (width 960): 64 q rows + 64 o columns of 960 each
    assert counts["steer-full"] == 4 * 2 * 64 * 960


@pytest.mark.slow
def test_memory_estimate_parts_add_up(smolvla_base):
    estimate = estimate_memory(smolvla_base, batch_size=2)
    trainable = [p for p in smolvla_base.parameters() if p.requires_grad]
    assert estimate.optimizer == ADAMW_BYTES_PER_PARAM * sum(p.numel() for p in trainable)
    assert estimate.gradients == sum(p.nbytes for p in trainable)
    assert estimate.weights == sum(p.nbytes for p in smolvla_base.parameters())
    assert estimate.activations_checkpointed is None  # LeRobot's SmolVLA has no gradient checkpointing
    assert estimate.total == estimate.weights + estimate.gradients + estimate.optimizer + estimate.activations
    assert all(p.grad is None for p in trainable)  # measuring leaves no gradients behind


@pytest.mark.slow
def test_activations_grow_linearly_with_batch(smolvla_base):
    at2, at4 = activation_peak(smolvla_base, 2), activation_peak(smolvla_base, 4)
    assert at2 > 0
    assert abs(at4 - 2 * at2) <= 0.02 * at4


@pytest.mark.slow
def test_checkpointing_lowers_measured_activations_on_pi0():
    from robosteer.tuners.scale import build_on_meta

    policy = build_on_meta("pi0")
    plain, checkpointed = activation_peak(policy, 2), activation_peak(policy, 2, checkpointing=True)
    assert 0 < checkpointed < plain / 2
    assert activation_peak(policy, 2) == plain  # checkpointing is switched off again


def test_live_bytes_counts_new_storages_not_views_and_releases_them():
    meta = torch.device("meta")
    with LiveBytes() as mode:
        a = torch.empty(1000, device=meta)  # 4000 bytes
        b = torch.empty(500, device=meta)  # 2000 bytes
        view = b.view(20, 25)  # same storage: nothing added
        del a
        c = view * 2  # a new storage of 2000 bytes
    assert mode.final_peak() == 6000
    assert mode.live == 4000
    del b, view, c
    assert mode.live == 0


def test_live_bytes_of_a_frozen_layer_are_its_input_and_output():
    """Nothing requires grad: nothing is saved for backward, and the transposed weight is a view (not counted)."""
    mode = LiveBytes()
    layer = torch.nn.Linear(64, 64, device="meta").requires_grad_(False)
    with mode:
        x = torch.empty(8, 64, device="meta")
        out = layer(x)
    assert not out.requires_grad
    assert mode.final_peak() == 8 * 64 * 4 * 2  # the input and the output, nothing else


@pytest.mark.slow
def test_scale_section_prints_where_the_smolvla_config_comes_from(capsys):
    from robosteer.tuners.scale import bench_scale, steer_at_or_below_lora

    report = bench_scale(("smolvla_base",), batch_size=2)
    printed = capsys.readouterr().out
    assert "built in code from its published numbers" in printed
    assert "no gradient checkpointing" in printed
    memory = report["smolvla_base_memory"]
    assert set(memory) == {"steer-full", "steer-r16", "steer-r4", "lora-lerobot-r16", "lora-all-linear-r16", "full"}
    # steer tunes heads in the upper half only; all-linear LoRA adapts every layer, so backward runs through all
    assert memory["steer-r16"]["activations"] < memory["lora-all-linear-r16"]["activations"]
    ratio = report["smolvla_base steer-r16/lora-all-linear-r16: memory_ratio"]
    assert ratio == memory["steer-r16"]["total"] / memory["lora-all-linear-r16"]["total"]
    assert steer_at_or_below_lora(report, "smolvla_base") == all(
        v <= 1 for k, v in report.items() if k.endswith(": memory_ratio")
    )
