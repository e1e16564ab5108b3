"""Saved and merged robosteer checkpoints load with LeRobot's own API from any working directory, offline: their
configs name the generated VLM by a content-addressed hub id (``robosteer/smolvlm-<digest>``) registered in the hub
cache, and LeRobot's actions equal robosteer's."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

logging.getLogger("lerobot.utils.import_utils").setLevel(logging.ERROR)
torch.set_num_threads(1)
REPO_ID = re.compile(r"^robosteer/smolvlm-[0-9a-f]{12}$")
TASK = "pick up the red cube"
SEEDS = (11, 12)
HEADS = ["vlm.L1.H1", "expert.L2.H0", "expert.L2.H3"]

# Runs in a fresh interpreter with cwd = an unrelated folder: LeRobot's own loaders only, no robosteer import.
LEROBOT_SCRIPT = """
import sys

import numpy as np
import torch

from lerobot.policies.factory import make_pre_post_processors
from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy

torch.set_num_threads(1)
ckpt, obs_file, out_file = sys.argv[1:4]
policy = SmolVLAPolicy.from_pretrained(ckpt)
policy.eval()
pre, post = make_pre_post_processors(policy.config, pretrained_path=ckpt)
obs = dict(np.load(obs_file))
batch = {"task": [str(obs.pop("task"))] * len(obs.pop("seeds"))}
batch.update({key: torch.from_numpy(value) for key, value in obs.items() if key != "noise"})
with torch.no_grad():
    chunks = policy.predict_action_chunk(pre(batch), noise=torch.from_numpy(obs["noise"]))
np.save(out_file, post(chunks).numpy())
assert not any(name.startswith("robosteer") for name in sys.modules), "the LeRobot side imported robosteer"
"""


@pytest.fixture
def hub_home(tmp_path, monkeypatch):
    """An empty hub cache under HF_HOME of this test's own, offline."""
    home = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


def _observations(policy) -> list[dict]:
    """Fixed observations (uint8 images, float32 state) shaped for ``policy``."""
    rng = np.random.default_rng(0)
    observations = []
    for _ in SEEDS:
        obs = {"observation.state": rng.normal(size=policy.state_dim).astype(np.float32)}
        for key in policy.image_keys:
            _, height, width = policy.config.input_features[key].shape
            obs[key] = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
        observations.append(obs)
    return observations


def _robosteer_actions(ckpt: Path, observations: list[dict]) -> np.ndarray:
    from robosteer.policies import load_policy

    policy = load_policy(ckpt)
    generators = [torch.Generator().manual_seed(seed) for seed in SEEDS]
    return policy.predict_action_chunks(observations, [TASK] * len(SEEDS), generators)


def _lerobot_actions(ckpt: Path, observations: list[dict], policy, tmp_path: Path) -> np.ndarray:
    """The same chunks through LeRobot's own loaders in a subprocess (cwd elsewhere, offline, this HF_HOME)."""
    shape = (policy.config.chunk_size, policy.config.max_action_dim)
    noise = torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(seed)) for seed in SEEDS])
    arrays = {"task": np.array(TASK), "seeds": np.array(SEEDS), "noise": noise.numpy()}
    for key in observations[0]:
        stacked = np.stack([obs[key] for obs in observations])
        arrays[key] = stacked.transpose(0, 3, 1, 2).astype(np.float32) / 255.0 if stacked.dtype == np.uint8 else stacked
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    np.savez(elsewhere / "obs.npz", **arrays)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("HF_HUB_CACHE", None)
    result = subprocess.run(
        [sys.executable, "-c", LEROBOT_SCRIPT, str(ckpt.resolve()), "obs.npz", "out.npy"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return np.load(elsewhere / "out.npy")


def _assert_lerobot_matches_robosteer(ckpt: Path, tmp_path: Path) -> None:
    from robosteer.policies import load_policy

    policy = load_policy(ckpt)
    observations = _observations(policy)
    ours = _robosteer_actions(ckpt, observations)
    theirs = _lerobot_actions(ckpt, observations, policy, tmp_path)
    assert theirs.shape == ours.shape == (len(SEEDS), policy.config.chunk_size, policy.action_dim)
    np.testing.assert_allclose(theirs, ours, rtol=1e-4, atol=1e-5)


def _json_strings(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from _json_strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _json_strings(value)
    elif isinstance(node, str):
        yield node


@pytest.mark.slow
def test_saved_checkpoint_names_its_vlm_by_a_registered_hub_id(hub_home, tmp_path):
    from robosteer.policies import make_tiny_smolvla
    from robosteer.policies.hub_cache import cached_vlm_dir, vlm_repo_id

    ckpt = make_tiny_smolvla(seed=0).save(tmp_path / "ckpt")
    repo_id = json.loads((ckpt / "config.json").read_text())["vlm_model_name"]
    assert REPO_ID.match(repo_id) and repo_id == vlm_repo_id(ckpt / "vlm")
    steps = json.loads((ckpt / "policy_preprocessor.json").read_text())["steps"]
    assert [s["config"]["tokenizer_name"] for s in steps if s["registry_name"] == "tokenizer_processor"] == [repo_id]
    for file in ckpt.glob("*.json"):  # the files LeRobot reads: no machine path, no name relative to the cwd
        for text in _json_strings(json.loads(file.read_text())):
            assert text != "vlm" and not text.startswith(("/", "~")), f"{file.name} holds {text!r}"
    for file in ckpt.rglob("*.json"):
        assert str(tmp_path) not in file.read_text() and str(Path.home()) not in file.read_text(), file
    snapshot = cached_vlm_dir(repo_id)
    assert snapshot is not None and snapshot.is_relative_to(hub_home / "hub")
    assert sorted(p.name for p in snapshot.iterdir()) == sorted(p.name for p in (ckpt / "vlm").iterdir())


@pytest.mark.slow
def test_lerobot_loads_a_saved_policy_from_any_cwd_offline(hub_home, tmp_path):
    from robosteer.policies import make_tiny_smolvla

    ckpt = make_tiny_smolvla(seed=0).save(tmp_path / "ckpt")
    _assert_lerobot_matches_robosteer(ckpt, tmp_path)


@pytest.mark.slow
def test_lerobot_loads_a_merged_steer_checkpoint(hub_home, tmp_path):
    from robosteer.policies import load_policy, make_tiny_smolvla
    from robosteer.tuners.finetune import apply_adapter
    from robosteer.tuners.head import HeadTunerConfig, HeadTunerModel

    base = make_tiny_smolvla(n_layers=3, seed=0)
    base_fingerprint = base.fingerprint()
    base_dir = base.save(tmp_path / "base")
    tuner = HeadTunerModel(base.model, base.layout, HeadTunerConfig(heads=HEADS, rank=4, mlp_rank=4))
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for param in tuner.trainable_parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.3)
    tuner.save_adapter(tmp_path / "adapter", base_fingerprint)
    merged = apply_adapter(load_policy(base_dir), tmp_path / "adapter", merge=True)
    assert merged.fingerprint() != base_fingerprint
    merged_dir = merged.save(tmp_path / "merged")
    assert REPO_ID.match(json.loads((merged_dir / "config.json").read_text())["vlm_model_name"])
    _assert_lerobot_matches_robosteer(merged_dir, tmp_path)


@pytest.mark.slow
def test_copied_and_old_checkpoints_register_their_vlm_when_robosteer_loads_them(hub_home, tmp_path, monkeypatch):
    """A checkpoint copied to a machine with an empty hub cache, and one whose configs still say ``vlm``."""
    from robosteer.policies import load_policy, make_tiny_smolvla
    from robosteer.policies.hub_cache import cached_vlm_dir

    policy = make_tiny_smolvla(seed=0)
    ckpt = policy.save(tmp_path / "ckpt")
    repo_id = json.loads((ckpt / "config.json").read_text())["vlm_model_name"]
    monkeypatch.setenv("HF_HOME", str(tmp_path / "new-machine"))
    assert cached_vlm_dir(repo_id) is None
    assert load_policy(ckpt).fingerprint() == policy.fingerprint()
    assert cached_vlm_dir(repo_id) is not None
    for name in ("config.json", "policy_preprocessor.json"):
        file = ckpt / name
        file.write_text(file.read_text().replace(f'"{repo_id}"', '"vlm"'))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "third-machine"))
    old = load_policy(ckpt)
    assert old.fingerprint() == policy.fingerprint() and cached_vlm_dir(repo_id) is not None
    resaved = old.save(tmp_path / "resaved")
    assert json.loads((resaved / "config.json").read_text())["vlm_model_name"] == repo_id


@pytest.mark.slow
def test_unwritable_hub_cache_only_warns(hub_home, tmp_path, monkeypatch, caplog):
    from robosteer.policies import load_policy, make_tiny_smolvla

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("HF_HUB_CACHE", str(blocker / "hub"))  # nothing can be created below a file
    policy = make_tiny_smolvla(seed=0)
    with caplog.at_level(logging.WARNING, logger="robosteer.policies.hub_cache"):
        ckpt = policy.save(tmp_path / "ckpt")
        assert load_policy(ckpt).fingerprint() == policy.fingerprint()
    warnings = [r.getMessage() for r in caplog.records if r.name == "robosteer.policies.hub_cache"]
    assert len(warnings) == 2 and all("HF_HUB_CACHE" in w for w in warnings)
    assert REPO_ID.match(json.loads((ckpt / "config.json").read_text())["vlm_model_name"])


@pytest.mark.slow
def test_embedded_policy_registers_its_vlm_and_loads_with_lerobot(hub_home, tmp_path):
    from robosteer.policies import embedded_available
    from robosteer.policies.hub_cache import cached_vlm_dir, vlm_repo_id
    from robosteer.policies.loading import EMBEDDED_DIR

    if not embedded_available():
        pytest.skip("no embedded checkpoint shipped")
    repo_id = json.loads((EMBEDDED_DIR / "config.json").read_text())["vlm_model_name"]
    assert repo_id == vlm_repo_id(EMBEDDED_DIR / "vlm")
    assert '"vlm"' not in (EMBEDDED_DIR / "policy_preprocessor.json").read_text()
    _assert_lerobot_matches_robosteer(EMBEDDED_DIR, tmp_path)  # robosteer loads it first: that registers the VLM
    assert cached_vlm_dir(repo_id) is not None


def test_registration_is_content_addressed_and_idempotent(hub_home, tmp_path):
    from robosteer.policies.hub_cache import cached_vlm_dir, register_vlm, repo_cache_dir, vlm_repo_id

    folder = tmp_path / ".hidden-parent" / "vlm"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "smolvlm"}')
    (folder / "tokenizer.json").write_text("{}")
    repo_id = register_vlm(folder)
    assert REPO_ID.match(repo_id) and repo_id == vlm_repo_id(folder)
    repo = repo_cache_dir(repo_id)
    assert repo == hub_home / "hub" / f"models--robosteer--{repo_id.split('/')[1]}"
    commit = (repo / "refs" / "main").read_text()
    assert re.fullmatch(r"[0-9a-f]{40}", commit) and cached_vlm_dir(repo_id) == repo / "snapshots" / commit
    before = sorted((p.relative_to(repo), p.stat().st_mtime_ns) for p in repo.rglob("*"))
    assert register_vlm(folder) == repo_id
    assert sorted((p.relative_to(repo), p.stat().st_mtime_ns) for p in repo.rglob("*")) == before
    (folder / "tokenizer.json").write_text('{"changed": true}')
    assert vlm_repo_id(folder) != repo_id
