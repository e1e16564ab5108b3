"""Head scores on synthetic features where the answer is known (planted heads)."""

from __future__ import annotations

import torch

from robosteer.heads import scores

N_EPISODES, FRAMES, N_HEADS, DIM = 10, 8, 24, 16
PLANTED_ACTION_HEAD, PLANTED_VISUAL_HEAD = 7, 13


def _synthetic(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    n = N_EPISODES * FRAMES
    episodes = torch.arange(N_EPISODES).repeat_interleave(FRAMES)
    features = torch.randn(n, N_HEADS, DIM, generator=gen)
    # the action is a smooth function of one head's output
    mixing = torch.randn(DIM, 8, generator=gen)
    actions = torch.tanh(features[:, PLANTED_ACTION_HEAD] @ mixing / 4)
    # a per-episode visual attribute (colour, 3 classes) written into another head
    colour = torch.arange(N_EPISODES) % 3
    prototypes = torch.randn(3, DIM, generator=gen) * 3
    frame_colour = colour[episodes]
    features[:, PLANTED_VISUAL_HEAD] = prototypes[frame_colour] + torch.randn(n, DIM, generator=gen)
    return features, actions, episodes, frame_colour


def test_planted_action_head_ranked_first():
    features, actions, episodes, _ = _synthetic()
    physical = scores.physical_scores(scores.head_similarities(features), actions, episodes, (5, 10, 20, 40))
    assert physical.score.shape == (N_HEADS,)
    assert int(physical.score.argmax()) == PLANTED_ACTION_HEAD
    assert physical.score[PLANTED_ACTION_HEAD] > 0.5
    others = torch.cat([physical.score[:PLANTED_ACTION_HEAD], physical.score[PLANTED_ACTION_HEAD + 1 :]])
    assert float(others.max()) < 0.2
    assert ((physical.score >= 0) & (physical.score <= 1)).all()
    assert physical.k_grid == [5, 10, 20, 40]


def test_k_grid_capped_by_data():
    episodes = torch.tensor([0, 0, 0, 1, 1, 2])
    assert scores.usable_k_grid((5, 10, 20), episodes) == [3]
    assert scores.usable_k_grid((1, 2, 10), episodes) == [1, 2]


def test_knn_matches_a_loop():
    """The vectorised k-NN equals a plain per-frame loop for one head."""
    features, actions, episodes, _ = _synthetic()
    targets = scores.standardise(actions)
    sim = scores.head_similarities(features)[:1]
    got = float(scores.knn_mse(sim, targets, episodes, [5])[0, 0])
    z = scores.unit(features[:, 0])
    errors = []
    for i in range(len(z)):
        others = (episodes != episodes[i]).nonzero().flatten()
        cos = z[others] @ z[i]
        top = cos.topk(5)
        w = 1 / (1 - top.values.double() + 1e-6)
        pred = (w[:, None] * targets[others[top.indices]]).sum(0) / w.sum()
        errors.append(((pred - targets[i]) ** 2).mean())
    assert abs(got - float(torch.stack(errors).mean())) < 1e-4


def test_planted_visual_attribute_decoded():
    features, _, episodes, colour = _synthetic()
    visual = scores.decoding_score(features, colour, episodes)
    assert int(visual.argmax()) == PLANTED_VISUAL_HEAD
    assert visual[PLANTED_VISUAL_HEAD] > 0.9
    assert float(torch.median(visual)) < 0.2


def test_sensitivity_score():
    base = torch.randn(20, 5, 4)
    changed = base.clone()
    changed[:, 2] += torch.randn(20, 4)
    changed[:, 4] += 0.1 * torch.randn(20, 4)
    sens = scores.sensitivity_score(base, changed)
    assert float(sens[2]) == 1.0 and 0 < float(sens[4]) < 0.5 and float(sens[0]) == 0.0


def test_combine_and_top_k_deterministic():
    a, b = torch.tensor([0.1, 0.9, 0.5, 0.5]), torch.tensor([1.0, 0.0, 0.5, 0.5])
    combined, used = scores.combine(
        {"physical": a, "visual": b, "linguistic": None}, {"physical": 1.0, "visual": 1.0, "linguistic": 0.5}
    )
    assert used == {"physical": 1.0, "visual": 1.0}
    torch.testing.assert_close(combined, torch.tensor([0.55, 0.45, 0.5, 0.5]))
    assert scores.top_k(combined, 3) == [0, 2, 3]


def test_greedy_picks_planted_head_first():
    features, actions, episodes, _ = _synthetic()
    sim = scores.head_similarities(features)
    chosen, errors = scores.greedy_forward(sim, actions, episodes, (5, 10), 3, list(range(N_HEADS)))
    assert chosen[0] == PLANTED_ACTION_HEAD and len(chosen) == 3 and len(errors) == 3
    again, _ = scores.greedy_forward(sim, actions, episodes, (5, 10), 3, list(range(N_HEADS)))
    assert again == chosen
