"""rank_heads and `robosteer rank` end to end: a tiny SmolVLA on a tiny real LeRobotDataset."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from robosteer.errors import RobosteerError
from robosteer.heads import KeyframeConfig, RankConfig, keyframes, load_heads_json, parse_weights, rank_heads
from robosteer.heads.bench import write_synthetic_demos as write_demo_dataset

FAST = dict(top_k=5, sensitivity_frames=8, causal_frames=8, causal_draws=2, show_progress=False)


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory):
    return write_demo_dataset(tmp_path_factory.mktemp("heads") / "demos")


@pytest.fixture(scope="module")
def tiny_policy(demo_root):
    from robosteer.policies import make_tiny_smolvla

    return make_tiny_smolvla(demo_root)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ROBOSTEER_CACHE", str(tmp_path / "cache"))


# -- keyframes -------------------------------------------------------------------------------------------------------
def test_keyframes_flips_still_ends():
    t = np.arange(30)
    state = np.zeros((30, 8))
    state[:, 0] = np.where(t < 10, t * 0.1, 1.0)  # moves, then still from frame 10 on
    state[20:, 0] = 1.0 + (t[20:] - 19) * 0.1  # moves again
    action = np.zeros((30, 8))
    action[:, 7] = np.where(t < 15, 0.08, 0.0)  # gripper closes at frame 15
    frames = keyframes(state, action)
    assert 0 in frames and 29 in frames and 15 in frames
    assert any(10 <= f < 20 and f != 15 for f in frames)  # one frame of the still run
    assert keyframes(state, action, KeyframeConfig(still=False)) == [0, 15, 29]
    assert keyframes(state, action, KeyframeConfig(max_per_episode=2)) == [0, 15]


def test_bad_config_rejected():
    with pytest.raises(RobosteerError, match="top-k"):
        RankConfig(top_k=0)
    with pytest.raises(RobosteerError, match="unknown"):
        RankConfig(weights={"physcal": 1.0})
    with pytest.raises(RobosteerError, match="NAME=VALUE"):
        parse_weights("physical=1,smell=2")
    with pytest.raises(RobosteerError, match="at least 2"):
        RankConfig(episodes=1)
    assert parse_weights("physical=1, visual=0.5") == {"physical": 1.0, "visual": 0.5, "linguistic": 0.0}


def test_too_few_episodes_and_no_keyframes(tmp_path, tiny_policy, demo_root):
    one = write_demo_dataset(tmp_path / "one", n_episodes=1, n_frames=6)
    with pytest.raises(RobosteerError, match="at least 2"):
        rank_heads(tiny_policy, one, RankConfig(**FAST))
    with pytest.raises(RobosteerError, match="denoise_step"):
        rank_heads(tiny_policy, demo_root, RankConfig(**FAST, denoise_step=99))
    from robosteer.heads.dataset import keyframe_table, open_dataset

    moving_only = KeyframeConfig(gripper_flips=False, ends=False, still=True, still_velocity=1e-12)
    with pytest.raises(RobosteerError, match="no keyframes"):
        keyframe_table(open_dataset(demo_root), [0, 1], moving_only)


# -- ranking ---------------------------------------------------------------------------------------------------------
def test_rank_writes_artifacts(tiny_policy, demo_root, tmp_path):
    ranking = rank_heads(
        tiny_policy, demo_root, RankConfig(**FAST, weights={"physical": 1, "visual": 0.5, "linguistic": 0.5})
    )
    assert len(ranking.selected) == 5 and len(set(ranking.selected)) == 5
    tiny_policy.layout.validate_heads(ranking.selected)
    n = tiny_policy.layout.n_heads_total
    for name in ("physical", "visual", "linguistic", "combined"):
        values = ranking.scores[name]
        assert values is not None and len(values) == n and all(0 <= v <= 1 for v in values), name
    combined = ranking.scores["combined"]
    chosen = [ranking.heads.index(h) for h in ranking.selected]
    inert = set(ranking.policy["inert_heads"])
    assert inert == {f"vlm.L1.H{h}" for h in range(4)} and not inert & set(ranking.selected)
    others = [c for i, c in enumerate(combined) if i not in chosen and ranking.heads[i] not in inert]
    assert min(combined[i] for i in chosen) >= max(others)
    assert ranking.best_k in [int(k) for k in ranking.cv["selected_mse_by_k"]]
    causal = ranking.causal
    assert causal["frames"] == 8 and len(causal["random_ablated_error"]) == 2 and causal["ratio"] > 0
    path = ranking.save(tmp_path / "out")
    data = load_heads_json(path)
    assert data["policy_fingerprint"] == tiny_policy.fingerprint()
    assert data["selected"] == ranking.selected and data["dataset"]["episodes"] == [0, 1, 2, 3]
    assert (tmp_path / "out" / "heads.png").read_bytes()[:4] == b"\x89PNG"
    assert (
        "linguistic" in data["dataset"]["label_keys"] and "instruction" in data["dataset"]["label_keys"]["linguistic"]
    )


def test_rank_deterministic_and_cached(tiny_policy, demo_root):
    config = RankConfig(**FAST, episodes=3)
    first = rank_heads(tiny_policy, demo_root, config)
    second = rank_heads(tiny_policy, demo_root, config)  # features from the cache
    assert second.timings["features_cached"] and not first.timings["features_cached"]
    assert first.selected == second.selected and first.scores == second.scores
    fresh = rank_heads(tiny_policy, demo_root, RankConfig(**FAST, episodes=3, use_cache=False))
    assert fresh.selected == first.selected and fresh.scores == first.scores
    assert fresh.dataset["episodes"] == [0, 1, 2]


def test_greedy_selection(tiny_policy, demo_root):
    ranking = rank_heads(tiny_policy, demo_root, RankConfig(**{**FAST, "top_k": 3}, greedy=True))
    assert len(ranking.selected) == 3 and len(ranking.cv["greedy_mse"]) == 3


def test_min_layer_keeps_low_layers_out_of_the_selection(tiny_policy, demo_root):
    """Heads below --min-layer are scored (same scores as without the floor) but never selected."""
    unrestricted = rank_heads(tiny_policy, demo_root, RankConfig(**FAST, episodes=3))
    floored = rank_heads(tiny_policy, demo_root, RankConfig(**FAST, episodes=3, min_layer=1))
    layers = [int(name.split(".")[1][1:]) for name in floored.selected]
    assert layers and min(layers) >= 1
    assert any(".L0." in name for name in unrestricted.selected)  # the floor changed the choice
    assert floored.scores == unrestricted.scores
    assert floored.config["min_layer"] == 1
    with pytest.raises(RobosteerError, match="no selectable head"):
        rank_heads(tiny_policy, demo_root, RankConfig(**FAST, episodes=3, min_layer=50))
    with pytest.raises(RobosteerError, match="min-layer"):
        RankConfig(min_layer=-1)


def test_mean_ablation_moves_actions(tiny_policy, demo_root):
    """The causal check's ablation really reaches the policy: ablating every head changes the actions."""
    from robosteer.heads import features as feats
    from robosteer.heads.dataset import keyframe_table, open_dataset
    from robosteer.heads.trace import HeadEdit

    dataset = open_dataset(demo_root)
    frames = keyframe_table(dataset, [0, 1], KeyframeConfig())
    batches = feats.model_batches(tiny_policy, feats.FrameLoader(dataset), frames, [0, 1, 2])
    clean, demo = feats.predict(tiny_policy, batches)
    assert clean.shape == demo.shape == (3, 8)
    edits = [HeadEdit(h) for h in tiny_policy.layout.heads()]
    ablated, _ = feats.predict(tiny_policy, batches, edits)
    assert not torch.allclose(clean, ablated)


# -- command line ----------------------------------------------------------------------------------------------------
def test_cli_rank(tiny_policy, demo_root, tmp_path):
    from typer.testing import CliRunner

    from robosteer.cli import app

    ckpt = tiny_policy.save(tmp_path / "ckpt")
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "rank",
            "--policy",
            str(ckpt),
            "--dataset",
            str(demo_root),
            "--out",
            str(tmp_path / "rank"),
            "--top-k",
            "4",
            "--weights",
            "physical=1,visual=0.5",
            "--causal-frames",
            "4",
            "--sensitivity-frames",
            "4",
        ],
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    data = json.loads((tmp_path / "rank" / "heads.json").read_text())
    assert len(data["selected"]) == 4 and data["config"]["weights"]["visual"] == 0.5
    assert "selected heads" in result.output

    # bad input fails before any policy is loaded (the policy path does not even exist)
    for args, message in (
        (["--top-k", "0"], "top-k"),
        (["--weights", "vision=1"], "NAME=VALUE"),
        (["--episodes", "1"], "at least 2"),
    ):
        bad = runner.invoke(
            app,
            [
                "rank",
                "--policy",
                str(tmp_path / "missing"),
                "--dataset",
                str(demo_root),
                "--out",
                str(tmp_path / "bad"),
                *args,
            ],
        )
        assert isinstance(bad.exception, RobosteerError) and message in str(bad.exception), args
    assert not (tmp_path / "bad").exists()


def test_label_keys_used_only_when_categorical():
    """Episode labels are decoded only where they are real categories; nothing is invented for missing ones."""
    from robosteer.heads.config import VISUAL_LABEL_HINTS
    from robosteer.heads.features import FrameTable
    from robosteer.heads.ranking import _label_parts

    episodes = torch.arange(6).repeat_interleave(2)
    frames = FrameTable(list(range(12)), episodes, torch.zeros(12, 8), torch.zeros(12, 8), ["t"] * 12)
    labels = [
        {
            "color_name": ["red", "blue"][e % 2],
            "object_x": 0.1 * e + 0.05,
            "form": "cube",
            "position_bin": e % 3,
            "distractors": 2,
        }
        for e in range(6)
    ]
    labels[5].pop("position_bin")
    parts, notes = _label_parts(frames, labels, None, VISUAL_LABEL_HINTS)
    assert list(parts) == ["color_name"]
    assert parts["color_name"].tolist() == [1, 1, 0, 0] * 3
    assert len(notes) == 1 and all(k in notes[0] for k in ("object_x", "form", "position_bin"))
    assert _label_parts(frames, None, None, VISUAL_LABEL_HINTS) == ({}, [])
