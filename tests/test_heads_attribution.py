"""Attribution v2 on synthetic features where the answer is known: stability, controls, selections."""

from __future__ import annotations

import pytest
import torch

from robosteer.heads import controls, scores, selection, stability

N_EPISODES, FRAMES = 12, 10


def _episodes() -> torch.Tensor:
    return torch.arange(N_EPISODES).repeat_interleave(FRAMES)


def _physical_on(features, actions, episodes):
    def score_on(kept: list[int]) -> torch.Tensor:
        mask = torch.isin(episodes, torch.tensor(kept))
        sim = scores.head_similarities(features[mask])
        return scores.physical_scores(sim, actions[mask], episodes[mask], (5, 10, 20)).score

    return score_on


@pytest.mark.slow
def test_stability_high_for_graded_signal_and_near_zero_for_noise():
    gen = torch.Generator().manual_seed(0)
    episodes = _episodes()
    n, n_heads, dim = len(episodes), 32, 8
    latent = torch.randn(n, dim, generator=gen)
    actions = torch.tanh(latent @ torch.randn(dim, 4, generator=gen))
    strength = torch.linspace(0.0, 3.0, n_heads)  # head h carries the latent with strength h
    planted = strength[None, :, None] * latent[:, None, :] + torch.randn(n, n_heads, dim, generator=gen)
    noise = torch.randn(n, n_heads, dim, generator=gen)
    all_heads = list(range(n_heads))
    signal = stability.reliability(_physical_on(planted, actions, episodes), list(range(N_EPISODES)), all_heads, 8)
    null = stability.reliability(_physical_on(noise, actions, episodes), list(range(N_EPISODES)), all_heads, 8)
    assert signal["spearman"] > 0.8 and signal["reproducible"]
    assert signal["top_k_overlap"] > signal["top_k_overlap_chance"]
    assert abs(null["spearman"]) < 0.4 and not null["reproducible"]
    assert signal["halves"] == [list(range(0, 12, 2)), list(range(1, 12, 2))]
    assert stability.reliability(lambda e: torch.zeros(3), [0, 1, 2], [0, 1, 2], 2)["skipped"]


def test_residual_of_a_state_copy_is_zero_and_of_new_information_is_not():
    gen = torch.Generator().manual_seed(1)
    episodes = _episodes()
    n = len(episodes)
    state = torch.cumsum(torch.randn(n, 8, generator=gen) * 0.1, 0)  # a smooth joint trajectory
    hidden = torch.randn(n, 4, generator=gen)  # what the camera sees and the joints do not
    actions = torch.cat([torch.tanh(state[:, :4]), torch.tanh(hidden)], 1)  # (N, 8)
    state_copy = state[:, None, :]  # a head that copies the joint state
    sees_hidden = torch.cat([hidden, torch.zeros(n, 4)], 1)[:, None, :]  # a head with the new information
    features = torch.cat([state_copy, sees_hidden], 1)  # (N, 2, 8)
    features = features - features.mean(0)  # centred, so cosine similarity is meaningful
    sim = scores.head_similarities(features)
    k_state = controls.control_error(state, actions, episodes, [5, 10])["k"]
    remainder = controls.state_residual(state, actions, episodes, k_state)
    residual, _, _ = controls.residual_scores(sim, remainder, episodes, 5)
    plain = scores.physical_scores(sim, actions, episodes, (5, 10)).score
    assert plain[0] > 0.2  # the state copy predicts the action well ...
    assert residual[0] < 0.05  # ... but adds nothing beyond the state
    assert residual[1] > 0.3


def test_control_errors_on_a_state_that_determines_the_action():
    episodes = _episodes()
    state = torch.randn(len(episodes), 8, generator=torch.Generator().manual_seed(2))
    actions = state[:, :3] * 2
    result = controls.control_error(state[:, :3], actions, episodes, [1, 5])
    assert result["mse"] < 0.3 and result["score"] > 0.7
    assert controls.heads_beating(torch.tensor([0.1, 0.5, 0.9]), [0, 1, 2], 0.6) == 2


def _layout_names() -> list[str]:
    return [f"{stack}.L{layer}.H{head}" for stack in ("vlm", "expert") for layer in range(3) for head in range(4)]


def test_random_and_bottom_selections_keep_the_histogram():
    heads = _layout_names()
    score = torch.rand(len(heads), generator=torch.Generator().manual_seed(3))
    eligible = list(range(len(heads)))
    top = selection.top_k(score, 7, eligible, heads, None)
    wanted = selection.histogram(top, heads)
    draws = [selection.stratified_random(top, eligible, heads, seed) for seed in range(5)]
    for draw in draws:
        assert selection.histogram(draw, heads) == wanted and len(set(draw)) == 7
    assert len({tuple(sorted(d)) for d in draws}) > 1  # the draws differ
    bottom = selection.stratified_bottom(top, score, eligible, heads)
    assert selection.histogram(bottom, heads) == wanted
    for (stack, layer), count in wanted.items():
        cell = [i for i in eligible if heads[i].startswith(f"{stack}.L{layer}.")]
        lowest = sorted(cell, key=lambda i: float(score[i]))[:count]
        assert sorted(i for i in bottom if i in cell) == sorted(lowest)


def test_stack_quota_and_per_stack_normalisation():
    heads = _layout_names()
    score = torch.cat([torch.full((12,), 0.1), torch.linspace(0.5, 0.9, 12)])  # expert scores dominate
    eligible = list(range(len(heads)))
    pooled = selection.top_k(score, 4, eligible, heads, None)
    assert all(heads[i].startswith("expert") for i in pooled)
    quota = selection.top_k(score, 4, eligible, heads, {"expert": 3, "vlm": 1})
    assert sum(heads[i].startswith("vlm") for i in quota) == 1 and len(quota) == 4
    normalised = selection.normalise_per_stack(score + torch.arange(24) * 1e-3, heads)
    for stack in ("vlm", "expert"):
        values = [float(normalised[i]) for i, h in enumerate(heads) if h.startswith(stack)]
        assert min(values) == 0.0 and abs(max(values) - 1.0) < 1e-6


def test_cross_validated_k_never_looks_at_the_held_out_episode():
    """Each held-out episode is scored at the k that is best on the *other* episodes."""
    errors = torch.tensor([[[0.0, 5.0, 5.0], [9.0, 1.0, 1.0]]])  # (H=1, K=2, E=3): episode 0 alone favours k0
    mse, k_index = scores.cross_validated_k(errors, n_frames=3)
    assert k_index.tolist() == [[1, 0, 0]]  # episode 0 gets k1 (best on episodes 1, 2); they get k0 ...
    # ... because on "episodes 0 + 2" k0 sums to 5 < 10 and on "0 + 1" to 5 < 10
    assert abs(float(mse) - (9.0 + 5.0 + 5.0) / 3) < 1e-6
    optimistic = float(errors.sum(-1).min() / 3)  # k chosen on the very errors it is scored by: 10 / 3
    assert float(mse) > optimistic


def test_bootstrap_interval_contains_the_ratio():
    from robosteer.heads.causal import bootstrap_ratio

    gen = torch.Generator().manual_seed(5)
    selected = 2.0 + 0.1 * torch.rand(50, generator=gen)
    random = 1.0 + 0.1 * torch.rand(20, 50, generator=gen)
    low, high = bootstrap_ratio(selected, random)
    ratio = float(selected.mean() / random.mean())
    assert low < ratio < high and low > 1.7 and high < 2.3
