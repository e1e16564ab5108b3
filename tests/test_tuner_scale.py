"""Steer/LoRA parameter counts on full-size pi0 built on the meta device match the per-head arithmetic."""

from __future__ import annotations

import pytest

from robosteer.tuners.scale import count_at_scale


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
