"""robosteer.policies: tiny SmolVLA through RobotPolicy, save/load, bad input, offline guarantee."""

from __future__ import annotations

import json
import shutil
import socket

import numpy as np
import pytest
import torch

from robosteer.constants import CAMERAS, OBS_STATE, image_key
from robosteer.errors import RobosteerError


@pytest.fixture(scope="module")
def tiny():
    from robosteer.policies import make_tiny_smolvla

    return make_tiny_smolvla(n_layers=2, n_heads=4, seed=0)


def _obs(seed: int = 0, size: int = 96) -> dict:
    rng = np.random.default_rng(seed)
    obs = {OBS_STATE: rng.normal(size=8).astype(np.float32)}
    for cam in CAMERAS:
        obs[image_key(cam)] = rng.integers(0, 255, size=(size, size, 3), dtype=np.uint8)
    return obs


def _raw_batch(policy, batch_size: int = 3) -> dict:
    chunk = policy.config.chunk_size
    batch = {
        OBS_STATE: torch.randn(batch_size, 8),
        "action": torch.randn(batch_size, chunk, 8),
        "action_is_pad": torch.zeros(batch_size, chunk, dtype=torch.bool),
        "task": ["pick up the red cube"] * batch_size,
    }
    for cam in CAMERAS:
        batch[image_key(cam)] = torch.rand(batch_size, 3, 96, 96)
    return batch


def test_tiny_smolvla_acts_like_an_env_policy(tiny):
    tiny.reset()
    action = tiny.select_action(_obs(), "pick up the red cube")
    assert action.shape == (8,) and action.dtype == np.float32 and np.isfinite(action).all()
    chunk = tiny.predict_action_chunk(_obs(), "pick up the red cube")
    assert chunk.shape == (tiny.config.chunk_size, 8) and np.isfinite(chunk).all()
    # the queue serves n_action_steps actions per model call
    calls = []
    tiny.model.model.sample_actions = _count(tiny.model.model.sample_actions, calls)
    try:
        tiny.reset()
        for _ in range(tiny.config.n_action_steps * 2):
            tiny.select_action(_obs(), "pick up the red cube")
    finally:
        del tiny.model.model.sample_actions
    assert len(calls) == 2


def _count(fn, calls):
    def wrapper(*args, **kwargs):
        calls.append(1)
        return fn(*args, **kwargs)

    return wrapper


def test_loss_is_finite_and_trains_every_stack(tiny):
    tiny.model.train()
    tiny.model.zero_grad()
    loss = tiny.loss(_raw_batch(tiny))
    loss.backward()
    tiny.model.eval()
    assert loss.ndim == 0 and torch.isfinite(loss)
    for stack in tiny.layout.stacks():
        site = tiny.layout.site(stack, 0)
        grad = tiny.layout.module(tiny.model, site, "q_proj").weight.grad
        assert grad is not None and grad.abs().sum() > 0, stack
    tiny.model.zero_grad()


def test_prepare_batch_normalises_and_tokenises(tiny):
    prepared = tiny.prepare_batch(_raw_batch(tiny))
    assert "observation.language.tokens" in prepared
    assert prepared["observation.language.tokens"].shape[0] == 3


def test_save_load_round_trip_preserves_outputs(tiny, tmp_path):
    from robosteer.policies import load_policy

    saved = tiny.save(tmp_path / "ckpt")
    config = json.loads((saved / "config.json").read_text())
    assert config["vlm_model_name"].startswith("robosteer/smolvlm-"), "the VLM is named by a hub id, not a path"
    loaded = load_policy(saved)
    assert loaded.fingerprint() == tiny.fingerprint()
    assert loaded.layout.heads() == tiny.layout.heads()
    outputs = []
    for policy in (tiny, loaded):
        torch.manual_seed(7)
        outputs.append(policy.predict_action_chunk(_obs(1), "push the red cube into the target zone"))
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-5, atol=1e-6)


def test_observation_errors_name_the_problem(tiny):
    obs = _obs()
    del obs[image_key("wrist")]
    with pytest.raises(RobosteerError, match="observation.images.wrist"):
        tiny.select_action(obs, "pick up the red cube")
    obs = _obs()
    obs[OBS_STATE] = np.zeros(7, np.float32)
    with pytest.raises(RobosteerError, match=r"expected \(8,\)"):
        tiny.select_action(obs, "pick up the red cube")
    with pytest.raises(RobosteerError, match="non-empty string"):
        tiny.select_action(_obs(), "")


def test_checkpoint_errors_name_the_problem(tiny, tmp_path):
    from robosteer.policies import load_policy

    with pytest.raises(RobosteerError, match="does not exist"):
        load_policy(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RobosteerError, match="no config.json"):
        load_policy(tmp_path / "empty")
    good = tiny.save(tmp_path / "good")
    bad_json = shutil.copytree(good, tmp_path / "bad_json")
    (bad_json / "config.json").write_text("{not json")
    with pytest.raises(RobosteerError, match="corrupt checkpoint.*config.json"):
        load_policy(bad_json)
    truncated = shutil.copytree(good, tmp_path / "truncated")
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(RobosteerError, match="corrupt checkpoint.*model.safetensors"):
        load_policy(truncated)
    other = shutil.copytree(good, tmp_path / "act")
    config = json.loads((other / "config.json").read_text())
    config["type"] = "act"
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(RobosteerError, match="unsupported policy type 'act'"):
        load_policy(other)


def test_hub_is_never_contacted(tmp_path, monkeypatch):
    """Building and loading a SmolVLA opens no network connection (everything is generated locally)."""
    from robosteer.policies import load_policy, make_tiny_smolvla

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setenv("ROBOSTEER_CACHE", str(tmp_path / "cache"))  # force a fresh VLM folder
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    policy = make_tiny_smolvla(n_layers=1, n_heads=2, seed=1)
    loaded = load_policy(policy.save(tmp_path / "ckpt"))
    assert loaded.fingerprint() == policy.fingerprint()


def test_vlm_folder_is_deterministic(tmp_path):
    from robosteer.policies.vlm_folder import VlmSpec, write_vlm_folder

    spec = VlmSpec(
        text_hidden_size=32,
        text_layers=1,
        text_heads=2,
        text_kv_heads=1,
        head_dim=16,
        vision_hidden_size=16,
        vision_layers=1,
        vision_heads=2,
        image_size=16,
        patch_size=4,
    )
    first, second = write_vlm_folder(tmp_path / "a", spec), write_vlm_folder(tmp_path / "b", spec)
    names = sorted(p.name for p in first.iterdir())
    assert "tokenizer.json" in names and "config.json" in names and "processor_config.json" in names
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
