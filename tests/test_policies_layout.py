"""Head layouts: every head of SmolVLA (tiny), pi0/pi05 (meta device) and a tiny Llama maps to its o_proj slice.

The mapping is checked behaviourally: perturbing the q_proj rows of head h changes exactly the o_proj input columns
``head_slice(h)`` (and perturbing a KV head changes exactly the columns of its query group).
"""

from __future__ import annotations

import pytest
import torch

from robosteer.policies.layout import HeadId


@pytest.fixture(scope="module")
def tiny():
    from robosteer.policies import make_tiny_smolvla

    return make_tiny_smolvla(n_layers=2, n_heads=4, seed=0)


def _first_o_proj_input(model, o_proj, run) -> torch.Tensor:
    captured = []
    handle = o_proj.register_forward_pre_hook(lambda _m, args: captured.append(args[0].detach().clone()))
    try:
        with torch.no_grad():
            run()
    finally:
        handle.remove()
    assert captured, "o_proj was never called"
    return captured[0]  # (B, S, n_heads * head_dim)


def _changed_columns(model, layout, site, proj: str, rows: slice, run) -> set[int]:
    o_proj = layout.module(model, site, "o_proj")
    before = _first_o_proj_input(model, o_proj, run)
    weight = layout.module(model, site, proj).weight
    saved = weight.data.clone()
    weight.data[rows] += 0.5 * torch.randn_like(weight.data[rows])
    try:
        after = _first_o_proj_input(model, o_proj, run)
    finally:
        weight.data.copy_(saved)
    diff = (after - before).abs().amax(dim=(0, 1))  # (n_heads * head_dim,)
    return set(torch.nonzero(diff > 1e-7).flatten().tolist())


def _columns(site, heads) -> set[int]:
    return {c for h in heads for c in range(site.head_slice(h).start, site.head_slice(h).stop)}


def _smolvla_run(policy):
    from robosteer.constants import CAMERAS, OBS_STATE, image_key

    gen = torch.Generator().manual_seed(0)
    chunk = policy.config.chunk_size
    batch = {
        OBS_STATE: torch.randn(2, 8, generator=gen),
        "action": torch.randn(2, chunk, 8, generator=gen),
        "task": ["pick up the red cube", "press the blue button"],
    }
    for cam in CAMERAS:
        batch[image_key(cam)] = torch.rand(2, 3, 64, 64, generator=gen)
    prepared = policy.prepare_batch(batch)
    noise = torch.randn(2, chunk, policy.config.max_action_dim, generator=gen)
    time = torch.full((2,), 0.5)
    return lambda: policy.model.forward(dict(prepared), noise=noise, time=time)


def test_tiny_smolvla_layout_enumerates_every_head(tiny):
    layout = tiny.layout
    assert layout.architecture == "smolvla"
    assert layout.stacks() == ["vlm", "expert"]
    assert len(layout.heads()) == 2 * 2 * 4
    assert layout.heads()[0] == "vlm.L0.H0" and layout.heads()[-1] == "expert.L1.H3"
    text = tiny.model.model.vlm_with_expert.config.text_config
    for site in layout:
        assert (site.n_heads, site.n_kv_heads, site.head_dim) == (4, text.num_key_value_heads, text.head_dim)
        assert layout.module(tiny.model, site, "o_proj").in_features == site.n_heads * site.head_dim


def test_tiny_smolvla_heads_map_to_their_o_proj_columns(tiny):
    run = _smolvla_run(tiny)
    for name in tiny.layout.heads():
        head = HeadId.parse(name)
        site = tiny.layout.site_of(head)
        changed = _changed_columns(tiny.model, tiny.layout, site, "q_proj", site.head_slice(head.head), run)
        assert changed == _columns(site, [head.head]), name


def test_tiny_smolvla_kv_heads_map_to_their_query_group(tiny):
    run = _smolvla_run(tiny)
    site = tiny.layout.site("vlm", 0)
    for head in range(0, site.n_heads, site.group_size):
        changed = _changed_columns(tiny.model, tiny.layout, site, "k_proj", site.kv_slice(head), run)
        group = range(head, head + site.group_size)
        assert changed == _columns(site, group)


def test_tiny_llama_layout_maps_heads():
    from transformers import LlamaConfig, LlamaForCausalLM

    from robosteer.policies import layout_for_hf_decoder

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=32,
    )
    model = LlamaForCausalLM(config).eval()
    layout = layout_for_hf_decoder(model)
    assert layout.heads() == [f"decoder.L{layer}.H{h}" for layer in range(2) for h in range(4)]
    ids = torch.randint(0, 64, (2, 7))
    for name in layout.heads():
        head = HeadId.parse(name)
        site = layout.site_of(head)
        changed = _changed_columns(model, layout, site, "q_proj", site.head_slice(head.head), lambda: model(ids))
        assert changed == _columns(site, [head.head]), name


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["pi0", "pi05"])
def test_pi_layouts_on_meta_device(kind):
    """pi0/pi05 only accept full-size Gemma in lerobot 0.6.1: build them on the meta device (no memory)."""
    from robosteer.policies.layouts import layout_for_policy
    from robosteer.tuners.scale import build_on_meta

    policy = build_on_meta(kind)
    layout = layout_for_policy(policy)
    assert layout.architecture == kind
    assert layout.stacks() == ["vlm", "expert"]
    assert len(layout.heads()) == 2 * 18 * 8
    for site in layout:
        assert (site.n_heads, site.n_kv_heads, site.head_dim) == (8, 1, 256)
        o_proj = layout.module(policy, site, "o_proj")
        assert o_proj.in_features == 8 * 256
        assert layout.module(policy, site, "k_proj").out_features == site.n_kv_heads * site.head_dim
        assert site.head_slice(7) == slice(1792, 2048) and site.kv_slice(7) == slice(0, 256)
    assert layout.module(policy, layout.site("expert", 0), "o_proj").out_features == 1024  # gemma_300m width
    assert layout.module(policy, layout.site("vlm", 0), "o_proj").out_features == 2048  # gemma_2b width
