"""Every architecture through the same code paths: tiny random-weight pi0, pi05 (LeRobot's modules at small sizes)
and SmolVLA are ranked, steered, merged, reloaded and evaluated exactly like the embedded policy."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
from helpers.architectures import KINDS, tiny_pi_spec, tiny_policy
from typer.testing import CliRunner

logging.getLogger("lerobot.utils.import_utils").setLevel(logging.ERROR)
torch.set_num_threads(1)
COMMIT = "0123456789abcdef0123456789abcdef01234567"


build, tiny_spec = tiny_policy, tiny_pi_spec


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    from robosteer.study.rank_bench import write_synthetic_demos

    return write_synthetic_demos(tmp_path_factory.mktemp("demos") / "demos")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ROBOSTEER_CACHE", str(tmp_path / "cache"))


def observation(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    obs = {"observation.state": rng.uniform(-1, 1, 8).astype(np.float32)}
    for cam in ("front", "wrist"):
        obs[f"observation.images.{cam}"] = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    return obs


def chunk(policy, seed: int = 0) -> np.ndarray:
    return policy.predict_action_chunks(
        [observation()], ["pick up the red cube"], [torch.Generator().manual_seed(seed)]
    )


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["pi0", "pi05"])
def test_tiny_pi_round_trips_through_load_policy_without_machine_paths(kind, tmp_path):
    from robosteer.policies import load_policy

    policy = build(kind)
    assert policy.layout.architecture == kind and policy.layout.stacks() == ["vlm", "expert"]
    assert policy.layout.n_heads_total == 2 * 2 * 8
    policy.save(tmp_path / "ckpt")
    loaded = load_policy(tmp_path / "ckpt")
    assert loaded.fingerprint() == policy.fingerprint()
    assert np.array_equal(chunk(loaded), chunk(policy))
    for file in (tmp_path / "ckpt").glob("*.json"):
        assert str(tmp_path) not in file.read_text() and "/root" not in file.read_text(), file.name


def _attention_inputs(module) -> dict:
    """Forward pre-hook (with kwargs) that keeps what one HF attention call was given."""
    seen: dict = {}

    def hook(mod, args, kwargs):
        if "hidden" not in seen:
            seen["hidden"] = args[0] if args else kwargs["hidden_states"]
            seen["cos_sin"] = kwargs["position_embeddings"]
            seen["mask"] = kwargs["attention_mask"]

    return seen, module.register_forward_pre_hook(hook, with_kwargs=True)


def _manual_head_outputs(attn, seen: dict) -> torch.Tensor:
    """Each head's output z (B, S, H, D) recomputed from the attention call's inputs: RoPE, scaled scores + mask,
    softmax, values; the query/key/value heads sliced by hand (one KV head shared by all query heads)."""
    from transformers.models.gemma.modeling_gemma import apply_rotary_pos_emb

    hidden = seen["hidden"]
    batch, seq_len, _ = hidden.shape
    head_dim = attn.head_dim
    q = attn.q_proj(hidden).view(batch, seq_len, -1, head_dim).transpose(1, 2)  # (B, H, S, D)
    k = attn.k_proj(hidden).view(batch, seq_len, -1, head_dim).transpose(1, 2)  # (B, KV, S, D)
    v = attn.v_proj(hidden).view(batch, seq_len, -1, head_dim).transpose(1, 2)  # (B, KV, S, D)
    q, k = apply_rotary_pos_emb(q, k, *seen["cos_sin"])
    group = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)  # (B, H, S, D)
    scores = q @ k.transpose(-1, -2) * attn.scaling + seen["mask"][:, :, :, :seq_len]  # (B, H, S, S)
    return (scores.softmax(-1) @ v).transpose(1, 2)  # (B, S, H, D)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["pi0", "pi05"])
def test_traced_vlm_heads_equal_a_manual_attention_recomputation(kind, demos):
    """The reader's last-language-token capture of a PaliGemma layer equals softmax(QK^T) V recomputed by hand at
    that token, head by head: the layout's head slices and the reader's token position are both right."""
    from robosteer.heads import features as feats
    from robosteer.heads.dataset import frame_table, open_dataset
    from robosteer.heads.keyframes import FrameConfig
    from robosteer.heads.readers import reader_for
    from robosteer.heads.trace import HeadTrace

    policy = build(kind, demos)
    reader = reader_for(policy.model)
    dataset = open_dataset(demos)
    frames, _ = frame_table(dataset, [0, 1], FrameConfig())
    (inputs, _), *_ = feats.model_batches(policy, feats.FrameLoader(dataset), frames, [0, 5, 9], 3)
    site = policy.layout.site("vlm", 1)
    attn = policy.model.get_submodule(site.module_path)
    seen, handle = _attention_inputs(attn)
    captures = reader.captures({"vlm": "last_lang"}, inputs)
    try:
        with HeadTrace(policy.model, policy.layout, captures) as trace:
            reader.sample_actions(policy.model, inputs, seed=0)
    finally:
        handle.remove()
    with torch.no_grad():
        manual = _manual_head_outputs(attn, seen)  # (B, S, H, D)
    last = inputs.lang_masks.long().cumsum(1).argmax(1) + manual.shape[1] - inputs.lang_masks.shape[1]  # (B,)
    assert bool((inputs.lang_masks.sum(1) < inputs.lang_masks.shape[1]).any()), "no padding: position not tested"
    for head in range(site.n_heads):
        traced = trace.head_z(f"vlm.L1.H{head}", "last_lang")  # (B, D)
        expected = manual[torch.arange(manual.shape[0]), last, head]  # (B, D)
        assert torch.allclose(traced, expected, atol=1e-5), f"vlm.L1.H{head}"


def _cli(*args) -> None:
    from robosteer.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_rank_steer_merge_and_eval_on_every_architecture(kind, demos, tmp_path):
    """`robosteer rank`, `finetune --method steer --merge` and `eval` on a tiny checkpoint of each architecture; the
    merged checkpoint equals base + adapter and only the chosen heads' slices moved."""
    from robosteer.policies import load_policy
    from robosteer.tuners import apply_adapter

    build(kind, demos).save(tmp_path / "base")
    _cli("rank", "--policy", tmp_path / "base", "--dataset", demos, "--out", tmp_path / "rank", "--top-k", 4,
         "--sensitivity-frames", 8, "--causal-frames", 8, "--causal-draws", 2)  # fmt: skip
    chosen = json.loads((tmp_path / "rank" / "heads.json").read_text())["selected"]
    assert len(chosen) == 4
    _cli("finetune", "--method", "steer", "--policy", tmp_path / "base", "--dataset", demos, "--heads",
         tmp_path / "rank" / "heads.json", "--steps", 3, "--batch-size", 4, "--lr", 0.05, "--merge", "--out",
         tmp_path / "run", "--quiet")  # fmt: skip
    base, merged = load_policy(tmp_path / "base"), load_policy(tmp_path / "run" / "merged")
    adapted = apply_adapter(load_policy(tmp_path / "base"), tmp_path / "run" / "adapter", merge=False)
    assert np.allclose(chunk(merged), chunk(adapted), atol=1e-4)
    assert not np.allclose(chunk(merged), chunk(base), atol=1e-6)
    changed = _changed_head_rows(base, merged)
    assert changed and changed <= set(chosen), f"weights moved outside the chosen heads: {changed - set(chosen)}"
    for name, policy_args in (
        ("merged", ("--policy", tmp_path / "run" / "merged")),
        ("adapter", ("--policy", tmp_path / "base", "--adapter", tmp_path / "run" / "adapter")),
    ):
        _cli("eval", *policy_args, "--task", "pick_cube", "--episodes", 1, "--workers", 1, "--videos", 0,
             "--max-steps", 16, "--out", tmp_path / f"eval-{name}")  # fmt: skip
        report = json.loads((tmp_path / f"eval-{name}" / "results.json").read_text())
        assert [(cell["task"], cell["episodes"]) for cell in report["cells"]] == [("pick_cube", 1)]


def _changed_head_rows(base, merged) -> set[str]:
    """Heads whose q_proj rows or o_proj columns differ between two policies of one layout."""
    changed = set()
    for site in base.layout.sites:
        for proj, axis in (("q_proj", 0), ("o_proj", 1)):
            before = base.layout.module(base.model, site, proj).weight
            after = merged.layout.module(merged.model, site, proj).weight
            for head in site.head_ids():
                rows = site.head_slice(head.head)
                delta = (after - before)[rows] if axis == 0 else (after - before)[:, rows]
                if delta.abs().max() > 0:
                    changed.add(head.name)
    return changed


@pytest.mark.slow
def test_merged_tiny_pi_reloads_with_lerobot_from_pretrained(demos, tmp_path):
    """A merged steer checkpoint of a tiny pi0 loads with LeRobot's own PI0Policy.from_pretrained (built at the
    tiny geometry its marker names) and gives robosteer's actions."""
    from lerobot.policies.pi0.modeling_pi0 import PI0Policy

    from robosteer.policies import load_policy
    from robosteer.policies.pi_builder import _vocab_size, tiny_gemma
    from robosteer.tuners.head import HeadTunerConfig, HeadTunerModel

    policy = build("pi0", demos)
    tuner = HeadTunerModel(policy.model, policy.layout, HeadTunerConfig(heads=["vlm.L0.H3", "expert.L1.H2"]))
    with torch.no_grad():
        for param in tuner.trainable_parameters():
            param.normal_(0, 0.3)
    tuner.merge_and_unload()
    policy.save(tmp_path / "merged")
    with tiny_gemma(tiny_spec("pi0"), _vocab_size(tmp_path / "merged" / "tokenizer")):
        model = PI0Policy.from_pretrained(tmp_path / "merged")
    ours = load_policy(tmp_path / "merged")
    assert {k: v.shape for k, v in model.state_dict().items()} == {
        k: v.shape for k, v in ours.model.state_dict().items()
    }
    assert all(torch.equal(v, ours.model.state_dict()[k]) for k, v in model.state_dict().items())


@pytest.mark.slow
def test_rank_finetune_and_eval_take_a_hub_id_from_the_local_cache(demos, tmp_path, monkeypatch):
    """`--policy someone/tiny-pi05` resolves through the hub cache under HF_HOME, offline, in every command."""
    from robosteer.policies import load_policy

    repo = tmp_path / "hf" / "hub" / "models--someone--tiny-pi05"
    policy = build("pi05", demos)
    policy.save(repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert load_policy("someone/tiny-pi05").fingerprint() == policy.fingerprint()
    hub_id = f"someone/tiny-pi05@{COMMIT}"
    _cli("rank", "--policy", hub_id, "--dataset", demos, "--out", tmp_path / "rank", "--top-k", 2,
         "--sensitivity-frames", 0, "--causal-frames", 0)  # fmt: skip
    _cli("finetune", "--method", "steer", "--policy", hub_id, "--dataset", demos, "--heads",
         tmp_path / "rank" / "heads.json", "--steps", 2, "--batch-size", 2, "--out", tmp_path / "run", "--quiet")  # fmt: skip
    _cli("eval", "--policy", hub_id, "--adapter", tmp_path / "run" / "adapter", "--task", "pick_cube", "--episodes",
         1, "--workers", 1, "--videos", 0, "--max-steps", 8, "--out", tmp_path / "eval")  # fmt: skip


def _plant_action_head(policy, head: str):
    """Make ``head`` output each frame's demonstrated (normalised) action: ``prepare_batch`` keeps the batch's action
    and a forward pre-hook on the head's o_proj writes it, scaled, into the head's slice at every token."""
    from robosteer.policies.layout import HeadId

    head_id = HeadId.parse(head)
    site = policy.layout.site_of(head_id)
    kept: dict = {}
    prepare = policy.prepare_batch

    def keep_action(batch):
        prepared = prepare(batch)
        action = prepared["action"]
        kept["action"] = action[:, 0] if action.ndim == 3 else action  # (B, A)
        return prepared

    def write(module, args):
        x = args[0].clone()  # (B, S, H * D)
        action = kept["action"].to(x.dtype)  # (B, A)
        slot = site.head_slice(head_id.head)
        width = min(action.shape[1], site.head_dim)
        x[:, :, slot.start : slot.start + width] = 10 * action[:, None, :width]
        return (x, *args[1:])

    policy.prepare_batch = keep_action
    return policy.layout.module(policy.model, site, "o_proj").register_forward_pre_hook(write)


PLANTED = {"pi0": "expert.L1.H5", "pi05": "vlm.L0.H6", "smolvla": "vlm.L0.H0"}


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_a_planted_head_is_ranked_first(kind, demos):
    """A head whose output carries the demonstrated action is ranked first on every architecture (the ranking reads
    the right head of the right layer through each reader); without the plant it is not first."""
    from robosteer.heads import RankConfig, rank_heads

    policy = build(kind, demos)
    config = RankConfig(
        top_k=3, target="absolute", sensitivity_frames=0, causal_frames=0, show_progress=False, use_cache=False
    )
    assert rank_heads(policy, demos, config).selected[0] != PLANTED[kind]
    handle = _plant_action_head(policy, PLANTED[kind])
    try:
        selected = rank_heads(policy, demos, config).selected
    finally:
        handle.remove()
    assert selected[0] == PLANTED[kind], selected


@pytest.mark.slow
def test_gradient_checkpointing_trains_the_same_steer_deltas(demos, tmp_path):
    """`finetune --gradient-checkpointing` (LeRobot's checkpointing of pi0) recomputes activations in the backward and
    ends with the same steer deltas; SmolVLA, which has none, is refused before any work."""
    from safetensors.torch import load_file

    from robosteer.errors import RobosteerError
    from robosteer.tuners import FinetuneConfig, finetune
    from robosteer.tuners.finetune import _enable_checkpointing

    heads = ["vlm.L0.H3", "expert.L1.H2"]
    runs = {}
    for checkpointing in (False, True):
        policy = build("pi0", demos)
        config = FinetuneConfig(
            heads=heads, steps=3, batch_size=4, lr=0.05, progress=False, gradient_checkpointing=checkpointing
        )
        out = tmp_path / f"run-{checkpointing}"
        finetune(policy, demos, config, out)
        assert policy.model.model.gradient_checkpointing_enabled is checkpointing
        runs[checkpointing] = load_file(str(out / "adapter" / "steer_adapter.safetensors"))
    for key, value in runs[False].items():
        torch.testing.assert_close(runs[True][key], value, rtol=1e-4, atol=1e-6, msg=key)
    with pytest.raises(RobosteerError, match="has no gradient checkpointing"):
        _enable_checkpointing(build("smolvla"), FinetuneConfig(heads=heads, gradient_checkpointing=True))
