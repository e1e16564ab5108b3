"""Head scores, vectorised over all heads at once. Every score is in [0, 1], higher = more relevant.

Inputs are per-keyframe features ``features`` (N, H, D): N keyframes, H heads (zero-padded to a common D, which
leaves cosine similarities unchanged), with ``episodes`` (N,) giving each keyframe's episode. All cross-validation
leaves one *episode* out, so frames of the same demonstration never predict each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

_EPS = 1e-6


def unit(features: torch.Tensor) -> torch.Tensor:
    """L2-normalise the last dim (zero vectors stay zero)."""
    return features / features.norm(dim=-1, keepdim=True).clamp_min(_EPS)


def head_similarities(features: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of every pair of keyframes, per head: (N, H, D) -> (H, N, N)."""
    z = unit(features.float()).transpose(0, 1)  # (H, N, D)
    return z @ z.transpose(1, 2)  # (H, N, N)


def standardise(targets: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit variance per target dim (constant dims become 0), so every action dim weighs the same."""
    targets = targets.double()
    return (targets - targets.mean(0)) / targets.std(0, unbiased=False).clamp_min(_EPS)


def loeo_mean_mse(targets: torch.Tensor, episodes: torch.Tensor) -> float:
    """MSE of predicting each held-out episode's targets by the mean of the other episodes' targets."""
    errors = []
    for episode in episodes.unique():
        held = episodes == episode
        errors.append(((targets[held] - targets[~held].mean(0)) ** 2).sum(0))
    return float(torch.stack(errors).sum(0).sum() / (targets.shape[0] * targets.shape[1]))


def usable_k_grid(k_grid: tuple[int, ...], episodes: torch.Tensor) -> list[int]:
    """Keep the ks that fit the neighbours every frame has (frames outside its own episode); at least one k."""
    largest_episode = int(torch.bincount(episodes).max())
    cap = int(episodes.numel()) - largest_episode
    if cap < 1:
        raise ValueError("k-NN needs at least 2 episodes")
    ks = sorted({k for k in k_grid if k <= cap})
    return ks or [cap]


def distance_similarity(values: torch.Tensor) -> torch.Tensor:
    """A "similarity" ``1 - euclidean distance`` of low-dimensional features (N, d) -> (1, N, N), so that the k-NN
    below (which weighs neighbours by ``1 / (1 - similarity)``) uses Euclidean distance on them. For controls such
    as the joint state or the episode phase, where cosine similarity would discard magnitude."""
    values = standardise(values.reshape(values.shape[0], -1))
    return (1.0 - torch.cdist(values, values)).float()[None]  # (1, N, N)


def knn_predictions(
    similarity: torch.Tensor, targets: torch.Tensor, episodes: torch.Tensor, k_grid: list[int]
) -> torch.Tensor:
    """Leave-one-episode-out k-NN predictions: (h, N, N) similarities -> (h, K, N, A) predicted targets.

    Neighbours come only from other episodes; prediction = inverse-distance (``1 - similarity``) weighted mean of
    the k nearest targets."""
    same_episode = episodes[:, None] == episodes[None, :]  # (N, N)
    targets = targets.double()
    sim = similarity.double().masked_fill(same_episode, -torch.inf)  # (h, N, N)
    top_sim, top_idx = sim.topk(max(k_grid), dim=-1)  # (h, N, k_max), nearest first
    weights = 1.0 / ((1.0 - top_sim).clamp_min(0) + _EPS)  # inverse distance
    neighbour_targets = targets[top_idx]  # (h, N, k_max, A)
    per_k = []
    for k in k_grid:
        w = weights[..., :k, None]  # (h, N, k, 1)
        per_k.append((w * neighbour_targets[..., :k, :]).sum(-2) / w.sum(-2))  # (h, N, A)
    return torch.stack(per_k, dim=1)  # (h, K, N, A)


def knn_episode_errors(
    similarity: torch.Tensor, targets: torch.Tensor, episodes: torch.Tensor, k_grid: list[int], chunk: int = 16
) -> torch.Tensor:
    """Leave-one-episode-out k-NN squared error summed per held-out episode: (H, N, N) -> (H, K, E), E = the
    episodes in ``episodes.unique()`` order; each frame's error is the mean over target dims."""
    targets = targets.double()
    episode_ids = torch.unique(episodes, return_inverse=True)[1]  # (N,) 0..E-1
    one_hot = torch.nn.functional.one_hot(episode_ids).double()  # (N, E)
    out = []
    for start in range(0, similarity.shape[0], chunk):
        prediction = knn_predictions(similarity[start : start + chunk], targets, episodes, k_grid)  # (h, K, N, A)
        frame_error = ((prediction - targets) ** 2).mean(dim=-1)  # (h, K, N)
        out.append(frame_error @ one_hot)  # (h, K, E)
    return torch.cat(out)


def knn_mse(
    similarity: torch.Tensor, targets: torch.Tensor, episodes: torch.Tensor, k_grid: list[int], chunk: int = 16
) -> torch.Tensor:
    """Leave-one-episode-out k-NN regression error for every head and k: (H, N, N) -> (H, len(k_grid)).

    Error = MSE over all held-out frames and target dims (targets are expected standardised)."""
    return (knn_episode_errors(similarity, targets, episodes, k_grid, chunk).sum(-1) / episodes.numel()).float()


def cross_validated_k(errors: torch.Tensor, n_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-head MSE with k chosen without looking at the held-out episode: (H, K, E) -> (mse (H,), k index (H, E)).

    For each held-out episode, each head uses the k with the lowest error on the *other* episodes, so a head's
    score carries no optimism from picking its own best k on the errors it is ranked by."""
    others = errors.sum(-1, keepdim=True) - errors  # (H, K, E) error of every k on all other episodes
    k_index = others.argmin(dim=1)  # (H, E)
    held_out = errors.gather(1, k_index[:, None, :])[:, 0]  # (H, E)
    return (held_out.sum(-1) / n_frames).float(), k_index


@dataclass
class PhysicalScores:
    """k-NN regression of the demonstrated action, per head."""

    score: torch.Tensor
    """(H,) in [0, 1]: ``max(0, 1 - mse / baseline_mse)``."""
    mse: torch.Tensor
    """(H,) cross-validated MSE (standardised action units); k chosen per held-out episode on the other episodes."""
    k: int
    """The k chosen most often (over heads and held-out episodes); used where one k is needed."""
    mse_by_k: torch.Tensor
    """(H, K) error for every k of ``k_grid``."""
    k_grid: list[int]
    """The ks actually tried (the requested grid capped by the data)."""
    baseline_mse: float
    """Error of predicting the mean target of the other episodes."""


def physical_scores(
    similarity: torch.Tensor, targets: torch.Tensor, episodes: torch.Tensor, k_grid: tuple[int, ...]
) -> PhysicalScores:
    """Score every head by LOEO k-NN regression of ``targets`` (standardised here) from its features."""
    targets = standardise(targets)
    ks = usable_k_grid(k_grid, episodes)
    errors = knn_episode_errors(similarity, targets, episodes, ks)  # (H, K, E)
    mse, k_index = cross_validated_k(errors, episodes.numel())
    baseline = loeo_mean_mse(targets, episodes)
    score = (1.0 - mse / max(baseline, _EPS)).clamp(0.0, 1.0)
    common = int(torch.bincount(k_index.flatten(), minlength=len(ks)).argmax())
    mse_by_k = (errors.sum(-1) / episodes.numel()).float()
    return PhysicalScores(score, mse, ks[common], mse_by_k, ks, baseline)


def centroid_accuracy(features: torch.Tensor, labels: torch.Tensor, episodes: torch.Tensor) -> torch.Tensor:
    """Leave-one-episode-out nearest-centroid (cosine) accuracy of decoding ``labels`` (N,) ints, per head: (H,)."""
    z = unit(features.float())  # (N, H, D)
    n_classes = int(labels.max()) + 1
    one_hot = torch.nn.functional.one_hot(labels, n_classes).float()  # (N, C)
    class_sums = torch.einsum("nc,nhd->hcd", one_hot, z)  # (H, C, D)
    class_counts = one_hot.sum(0)  # (C,)
    correct = torch.zeros(z.shape[1])
    for episode in episodes.unique():
        held = episodes == episode
        sums = class_sums - torch.einsum("nc,nhd->hcd", one_hot[held], z[held])  # (H, C, D)
        counts = class_counts - one_hot[held].sum(0)  # (C,)
        centroids = unit(sums / counts.clamp_min(1)[None, :, None])  # (H, C, D)
        sims = torch.einsum("nhd,hcd->hnc", z[held], centroids)  # (H, n_held, C)
        sims = sims.masked_fill(counts[None, None, :] == 0, -torch.inf)
        correct += (sims.argmax(-1) == labels[held][None, :]).float().sum(-1)
    return correct / labels.numel()


def decoding_score(features: torch.Tensor, labels: torch.Tensor, episodes: torch.Tensor) -> torch.Tensor:
    """Chance-corrected decoding accuracy in [0, 1]: 0 = no better than always guessing the majority class."""
    accuracy = centroid_accuracy(features, labels, episodes)
    majority = float(torch.bincount(labels).max()) / labels.numel()
    return ((accuracy - majority) / max(1.0 - majority, _EPS)).clamp(0.0, 1.0)


def sensitivity_score(base: torch.Tensor, changed: torch.Tensor) -> torch.Tensor:
    """How far each head's output moves under an input change, (N, H, D) x2 -> (H,) in [0, 1].

    Relative change ``mean ||z' - z|| / mean ||z||`` per head, divided by the largest over heads.
    """
    moved = (changed.float() - base.float()).norm(dim=-1).mean(0)  # (H,)
    relative = moved / base.float().norm(dim=-1).mean(0).clamp_min(_EPS)
    return relative / relative.max().clamp_min(_EPS)


def mean_of_parts(parts: list[torch.Tensor]) -> torch.Tensor | None:
    """Average of available score parts (each (H,)), or None when there are none."""
    return torch.stack(parts).mean(0) if parts else None


def combine(scores: dict[str, torch.Tensor | None], weights: dict[str, float]) -> tuple[torch.Tensor, dict]:
    """Weighted mean of the available scores; returns (combined (H,), the weights actually used)."""
    used = {name: w for name, w in weights.items() if w > 0 and scores.get(name) is not None}
    if not used:
        raise ValueError(
            f"no score with a positive weight is available (weights {weights}, "
            f"available {[n for n, s in scores.items() if s is not None]})"
        )
    total = sum(used.values())
    combined = sum(scores[name] * (w / total) for name, w in used.items())
    return combined, used


def top_k(combined: torch.Tensor, k: int, eligible: list[int] | None = None) -> list[int]:
    """Indices of the k best (eligible) heads, best first; ties broken by head order (deterministic)."""
    candidates = range(combined.numel()) if eligible is None else eligible
    order = sorted(candidates, key=lambda i: (-float(combined[i]), i))
    return order[:k]


def concat_similarity(similarity: torch.Tensor, heads: list[int]) -> torch.Tensor:
    """Cosine similarity of the concatenation of unit-normalised head features = mean of their similarities."""
    return similarity[heads].mean(0, keepdim=True)  # (1, N, N)


def greedy_forward(
    similarity: torch.Tensor,
    targets: torch.Tensor,
    episodes: torch.Tensor,
    k_grid: tuple[int, ...],
    k: int,
    candidates: list[int],
) -> tuple[list[int], list[float]]:
    """Greedy forward selection: add, one at a time, the candidate whose concatenation with the chosen heads has
    the lowest cross-validated k-NN error (best k of the grid). Returns (chosen heads, error after each step)."""
    targets = standardise(targets)
    ks = usable_k_grid(k_grid, episodes)
    chosen: list[int] = []
    errors: list[float] = []
    chosen_sum = torch.zeros_like(similarity[0])
    pool = list(candidates)
    for step in range(min(k, len(pool))):
        trial = (chosen_sum[None] + similarity[pool]) / (step + 1)  # (P, N, N)
        errs = knn_mse(trial, targets, episodes, ks).min(-1).values  # (P,)
        best = int(errs.argmin())
        head = pool.pop(best)
        chosen.append(head)
        errors.append(float(errs[best]))
        chosen_sum += similarity[head]
    return chosen, errors
