"""HeadTrace on a tiny Hugging Face Llama: z is the real per-head attention output, edits act on single heads."""

from __future__ import annotations

import math

import pytest
import torch

from robosteer.heads.trace import ALL_TOKENS, Capture, HeadEdit, HeadTrace
from robosteer.policies.layout import layout_for_hf_decoder


@pytest.fixture(scope="module")
def tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=32,
        attn_implementation="eager",
    )
    model = LlamaForCausalLM(config).eval()
    return model, layout_for_hf_decoder(model)


def _tokens(batch=2, seq=7):
    return torch.randint(0, 64, (batch, seq), generator=torch.Generator().manual_seed(1))


def _manual_z(model, layer_idx, input_ids):
    """Recompute layer ``layer_idx``'s per-head attention output from its q/k/v weights: (B, S, H, D)."""
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    captured = {}
    layer = model.model.layers[layer_idx]
    handle = layer.input_layernorm.register_forward_hook(lambda m, a, out: captured.setdefault("x", out))
    with torch.no_grad():
        model(input_ids)
    handle.remove()
    x = captured["x"]  # (B, S, hidden)
    attn, cfg = layer.self_attn, model.config
    n_heads, n_kv = cfg.num_attention_heads, cfg.num_key_value_heads
    head_dim = cfg.hidden_size // n_heads
    batch, seq = x.shape[:2]
    with torch.no_grad():
        q = attn.q_proj(x).view(batch, seq, n_heads, head_dim).transpose(1, 2)  # (B, H, S, D)
        k = attn.k_proj(x).view(batch, seq, n_kv, head_dim).transpose(1, 2)  # (B, KV, S, D)
        v = attn.v_proj(x).view(batch, seq, n_kv, head_dim).transpose(1, 2)  # (B, KV, S, D)
        cos, sin = model.model.rotary_emb(x, torch.arange(seq)[None])
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        k = k.repeat_interleave(n_heads // n_kv, dim=1)  # (B, H, S, D)
        v = v.repeat_interleave(n_heads // n_kv, dim=1)
        scores = q @ k.transpose(-1, -2) / math.sqrt(head_dim)  # (B, H, S, S)
        scores = scores.masked_fill(torch.triu(torch.ones(seq, seq, dtype=torch.bool), 1), float("-inf"))
        z = scores.softmax(-1) @ v  # (B, H, S, D)
    return z.transpose(1, 2)  # (B, S, H, D)


def test_z_equals_manual_recomputation(tiny_llama):
    model, layout = tiny_llama
    ids = _tokens()
    with torch.no_grad(), HeadTrace(model, layout, {"decoder": Capture({"all": ALL_TOKENS, "last": -1})}) as trace:
        model(ids)
    for layer in range(2):
        expected = _manual_z(model, layer, ids)
        for head in range(4):
            got = trace.head_z(f"decoder.L{layer}.H{head}", "all")
            torch.testing.assert_close(got, expected[:, :, head], rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(trace.head_z(f"decoder.L{layer}.H{head}", "last"), expected[:, -1, head])
    assert trace.stack_z("decoder", "last").shape == (2, 8, 8)
    assert trace.call_counts == {"decoder.L0": 1, "decoder.L1": 1}


def test_per_sample_positions(tiny_llama):
    model, layout = tiny_llama
    ids = _tokens()
    positions = torch.tensor([2, 5])
    with torch.no_grad(), HeadTrace(model, layout, {"decoder": Capture({"all": ALL_TOKENS, "p": positions})}) as tr:
        model(ids)
    full = tr.head_z("decoder.L1.H2", "all")
    torch.testing.assert_close(tr.head_z("decoder.L1.H2", "p"), full[torch.arange(2), positions])


@pytest.mark.parametrize("head", [0, 3])
def test_zero_ablation_equals_zeroing_o_proj_columns(tiny_llama, head):
    model, layout = tiny_llama
    ids = _tokens()
    with torch.no_grad(), HeadTrace(model, layout, edits=[HeadEdit(f"decoder.L1.H{head}")]):
        ablated = model(ids).logits
    site = layout.site_of(f"decoder.L1.H{head}")
    o_proj = layout.module(model, site)
    saved = o_proj.weight.detach().clone()
    with torch.no_grad():
        o_proj.weight[:, site.head_slice(head)] = 0
        zeroed = model(ids).logits
        o_proj.weight.copy_(saved)
        clean = model(ids).logits
    torch.testing.assert_close(ablated, zeroed)
    assert not torch.allclose(ablated, clean)


def test_mean_ablation_equals_bias_through_o_proj(tiny_llama):
    """Mean-ablating head h = zeroing its columns and adding W_o[:, h] @ mean as a bias."""
    model, layout = tiny_llama
    ids = _tokens()
    with torch.no_grad(), HeadTrace(model, layout, record_mean=True) as trace:
        clean = model(ids).logits
    mean = trace.site_means()["decoder.L0.H1"]
    assert mean.shape == (8,)
    with torch.no_grad(), HeadTrace(model, layout, edits=[HeadEdit("decoder.L0.H1", value=mean)]):
        ablated = model(ids).logits
    site = layout.site_of("decoder.L0.H1")
    o_proj = layout.module(model, site)
    saved = o_proj.weight.detach().clone()
    with torch.no_grad():
        bias = o_proj.weight[:, site.head_slice(1)] @ mean
        o_proj.weight[:, site.head_slice(1)] = 0
        handle = o_proj.register_forward_hook(lambda m, a, out: out + bias)
        expected = model(ids).logits
        handle.remove()
        o_proj.weight.copy_(saved)
    torch.testing.assert_close(ablated, expected, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(ablated, clean)


def test_patch_from_other_run(tiny_llama):
    """Patching every head of layer 0 with z from another input reproduces that input's layer-1 z where only
    layer 0's attention output differs (the residual still carries the own embedding, so compare to a patch run)."""
    model, layout = tiny_llama
    ids_a, ids_b = _tokens(seq=5), _tokens(seq=5).flip(1)
    cap = {"decoder": Capture({"all": ALL_TOKENS})}
    with torch.no_grad(), HeadTrace(model, layout, cap) as trace_b:
        model(ids_b)
    edits = [HeadEdit(f"decoder.L0.H{h}", value=trace_b.head_z(f"decoder.L0.H{h}", "all")) for h in range(4)]
    with torch.no_grad(), HeadTrace(model, layout, cap, edits=edits) as patched:
        model(ids_a)
    # the recorded z of layer 0 is the clean one (recorded before the edit), layer 1 sees the patch
    with torch.no_grad(), HeadTrace(model, layout, cap) as clean:
        model(ids_a)
    torch.testing.assert_close(patched.head_z("decoder.L0.H0", "all"), clean.head_z("decoder.L0.H0", "all"))
    assert not torch.allclose(patched.head_z("decoder.L1.H0", "all"), clean.head_z("decoder.L1.H0", "all"))


def test_hooks_removed_after_exception(tiny_llama):
    model, layout = tiny_llama
    o_proj = layout.module(model, layout.sites[0])
    with pytest.raises(RuntimeError, match="boom"):
        with HeadTrace(model, layout, {"decoder": Capture({"last": -1})}, edits=[HeadEdit("decoder.L0.H0")]):
            assert len(o_proj._forward_pre_hooks) == 1
            raise RuntimeError("boom")
    assert len(o_proj._forward_pre_hooks) == 0


def test_stop_when_captured_cuts_the_forward(tiny_llama):
    """Only layer 0 captured: the forward stops at layer 0's o_proj, layer 1 never runs."""
    model, layout = tiny_llama
    from robosteer.policies.layout import HeadLayout

    first_only = HeadLayout(layout.architecture, layout.sites[:1])
    with (
        torch.no_grad(),
        HeadTrace(model, first_only, {"decoder": Capture({"last": -1})}, stop_when_captured=True) as trace,
    ):
        out = model(_tokens())
        pytest.fail(f"forward was not cut short: {type(out)}")
    assert trace.head_z("decoder.L0.H0", "last").shape == (2, 8)
    assert all(len(layout.module(model, s)._forward_pre_hooks) == 0 for s in layout.sites)


def test_second_call_selected():
    """Several o_proj calls per forward: Capture.call picks which one is recorded."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=32,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
        )
    ).eval()
    layout = layout_for_hf_decoder(model)
    ids_a, ids_b = _tokens(1, 4) % 32, _tokens(1, 4).flip(1) % 32

    def two_calls():
        model(ids_a)
        model(ids_b)

    with torch.no_grad(), HeadTrace(model, layout, {"decoder": Capture({"last": -1}, call=1)}) as second:
        two_calls()
    with torch.no_grad(), HeadTrace(model, layout, {"decoder": Capture({"last": -1})}) as only_b:
        model(ids_b)
    torch.testing.assert_close(second.head_z("decoder.L0.H1", "last"), only_b.head_z("decoder.L0.H1", "last"))
    assert second.call_counts["decoder.L0"] == 2
