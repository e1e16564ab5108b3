"""rank_heads and `robosteer rank` end to end: a tiny SmolVLA on a tiny real LeRobotDataset."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from robosteer.errors import RobosteerError
from robosteer.heads import (
    FrameConfig,
    KeyframeConfig,
    RankConfig,
    keyframes,
    load_heads_json,
    parse_weights,
    rank_heads,
)
from robosteer.study.rank_bench import write_synthetic_demos as write_demo_dataset

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
def test_keyframes_release_rule():
    """Observed gripper flips, every still frame (joint-velocity norm), first and last frame, no cap."""
    t = np.arange(30)
    state = np.zeros((30, 8))
    state[:, 0] = np.where(t < 10, t * 0.1, 0.9)  # moves, then still from frame 10 on
    state[20:, 0] = 0.9 + (t[20:] - 19) * 0.1  # moves again from frame 20
    state[:, 7] = np.where(t < 15, 0.08, 0.0)  # the observed gripper closes at frame 15
    frames = keyframes(state)
    assert frames == [0, *range(10, 20), 29]  # 10..19 still (15 is also the flip), ends
    no_still = KeyframeConfig(still=False)
    assert keyframes(state, no_still) == [0, 15, 29]
    action_only = state.copy()
    action_only[:, 7] = 0.08  # the gripper never moves: only a command would flip, and commands are not read
    assert keyframes(action_only, no_still) == [0, 29]


def test_frame_modes():
    from robosteer.heads.keyframes import choose_mode, select_frames

    moving = np.cumsum(np.full((40, 8), 0.05), axis=0)  # never still, no gripper flip
    paused = moving.copy()
    paused[5:35] = paused[5]  # a long pause: 30 still frames
    config = FrameConfig()
    assert choose_mode([moving, moving], config) == "dense"
    assert choose_mode([paused, paused], config) == "keyframes"
    assert select_frames(moving, "dense", FrameConfig(stride=4)) == [*range(0, 40, 4), 39]
    assert select_frames(moving, "all", config) == list(range(40))
    assert select_frames(moving, "keyframes", config) == [0, 39]
    with pytest.raises(ValueError, match="frame mode"):
        FrameConfig(mode="sparse")


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
    from robosteer.heads.dataset import frame_table, open_dataset

    moving_only = KeyframeConfig(gripper_flips=False, ends=False, still=True, still_velocity=1e-12)
    with pytest.raises(RobosteerError, match="no keyframes frames"):
        frame_table(open_dataset(demo_root), [0, 1], FrameConfig(mode="keyframes", keyframes=moving_only))


# -- ranking ---------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_rank_writes_artifacts(tiny_policy, demo_root, tmp_path):
    ranking = rank_heads(
        tiny_policy, demo_root, RankConfig(**FAST, weights={"physical": 1, "visual": 0.5, "linguistic": 0.5})
    )
    assert len(ranking.selected) == 5 and len(set(ranking.selected)) == 5
    tiny_policy.layout.validate_heads(ranking.selected)
    n = tiny_policy.layout.n_heads_total
    for name in ("physical", "visual", "linguistic", "combined", "selection", "residual"):
        values = ranking.scores[name]
        assert values is not None and len(values) == n and all(0 <= v <= 1 for v in values), name
    combined = ranking.scores["selection"]
    chosen = [ranking.heads.index(h) for h in ranking.selected]
    inert = set(ranking.policy["inert_heads"])
    assert inert == {f"vlm.L1.H{h}" for h in range(4)} and not inert & set(ranking.selected)
    others = [c for i, c in enumerate(combined) if i not in chosen and ranking.heads[i] not in inert]
    assert min(combined[i] for i in chosen) >= max(others)
    assert ranking.best_k in [int(k) for k in ranking.cv["selected_mse_by_k"]]
    causal = ranking.causal
    assert causal["frames"] == 8 and len(causal["random_shift"]) == 2 and causal["ratio"] > 0
    low, high = causal["ratio_ci95"]
    assert low <= high
    assert ranking.dataset["frame_mode"] in ("dense", "keyframes") and ranking.dataset["n_frames_scored"] > 8
    assert set(ranking.controls) >= {"state", "phase", "random_init", "residual"}
    assert ranking.stability["spearman"] is not None and ranking.stability["top_k_overlap_chance"] > 0
    path = ranking.save(tmp_path / "out")
    data = load_heads_json(path)
    assert data["policy_fingerprint"] == tiny_policy.fingerprint()
    assert data["selected"] == ranking.selected and data["dataset"]["episodes"] == [0, 1, 2, 3]
    assert (tmp_path / "out" / "heads.png").read_bytes()[:4] == b"\x89PNG"
    assert (
        "linguistic" in data["dataset"]["label_keys"] and "instruction" in data["dataset"]["label_keys"]["linguistic"]
    )


@pytest.mark.slow
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


@pytest.mark.slow
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
    from robosteer.heads.dataset import frame_table, open_dataset
    from robosteer.heads.trace import HeadEdit

    dataset = open_dataset(demo_root)
    frames, _ = frame_table(dataset, [0, 1], FrameConfig())
    batches = feats.model_batches(tiny_policy, feats.FrameLoader(dataset), frames, [0, 1, 2])
    clean, demo = feats.predict(tiny_policy, batches)
    assert clean.shape == demo.shape == (3, 8)
    edits = [HeadEdit(h) for h in tiny_policy.layout.heads()]
    ablated, _ = feats.predict(tiny_policy, batches, edits)
    assert not torch.allclose(clean, ablated)


# -- command line ----------------------------------------------------------------------------------------------------
@pytest.mark.slow
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
    from robosteer.heads.attributes import label_parts as _label_parts
    from robosteer.heads.config import VISUAL_LABEL_HINTS
    from robosteer.heads.features import FrameTable

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


def test_causal_means_match_a_manual_per_step_computation(tiny_policy, demo_root):
    """Mean-ablation values are each head's mean output at the same call (denoising step) and token position."""
    from robosteer.heads import features as feats
    from robosteer.heads.causal import predict_chunks
    from robosteer.heads.dataset import frame_table, open_dataset
    from robosteer.heads.readers import reader_for
    from robosteer.heads.trace import ALL_TOKENS, Capture, HeadTrace

    dataset = open_dataset(demo_root)
    frames, _ = frame_table(dataset, [0, 1, 2], FrameConfig())
    batches = feats.model_batches(tiny_policy, feats.FrameLoader(dataset), frames, list(range(10)), 4, True)
    clean, means = predict_chunks(tiny_policy, batches, seed=0, record_means=True)
    steps = tiny_policy.model.config.num_steps
    assert clean.shape[0] == 10 and sorted(means["expert.L1.H2"]) == list(range(steps))
    assert sorted(means["vlm.L0.H1"]) == [0]
    for stack, head, call in (("expert", "expert.L1.H2", steps - 1), ("vlm", "vlm.L0.H1", 0)):
        manual = []
        for inputs, _ in batches:
            capture = {stack: Capture({"all": ALL_TOKENS}, call=call)}
            with HeadTrace(tiny_policy.model, tiny_policy.layout, capture) as trace:
                reader_for(tiny_policy.model).sample_actions(tiny_policy.model, inputs, 0)
            manual.append(trace.head_z(head, "all"))  # (b, S, D)
        expected = torch.cat(manual).mean(0)  # (S, D)
        assert torch.allclose(means[head][call], expected, atol=1e-5), head


@pytest.mark.slow
def test_release_protocol_quota_and_control_selections(tiny_policy, demo_root, tmp_path):
    release = rank_heads(tiny_policy, demo_root, RankConfig(**FAST, protocol="release"))
    assert release.policy["clean_pass"] and release.policy["expert_call"] == tiny_policy.model.config.num_steps
    assert release.dataset["frame_mode"] == "keyframes" and release.config["k_grid"] == [10, 20, 30, 40]
    assert release.cv["release_set_mse_by_k"] and len(release.selected) == 5
    quota = rank_heads(tiny_policy, demo_root, RankConfig(**FAST, stack_quota={"expert": 3, "vlm": 1}))
    assert sorted(h.split(".")[0] for h in quota.selected) == ["expert"] * 3 + ["vlm"]
    expert_only = rank_heads(tiny_policy, demo_root, RankConfig(**FAST, stack_quota={"expert": 4}))
    assert all(h.startswith("expert.") for h in expert_only.selected)
    top = rank_heads(tiny_policy, demo_root, RankConfig(**FAST))
    from robosteer.heads.selection import cell

    for mode in ("random", "bottom"):
        control = rank_heads(tiny_policy, demo_root, RankConfig(**FAST, select=mode))
        assert sorted(map(cell, control.selected)) == sorted(map(cell, top.selected)), mode
        assert control.selected != top.selected and control.config["select"] == mode
        assert load_heads_json(control.save(tmp_path / mode))["selected"] == control.selected
    residual = rank_heads(tiny_policy, demo_root, RankConfig(**FAST, score="residual"))
    assert residual.scores["physical"] == residual.scores["residual"]
