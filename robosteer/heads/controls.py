"""Controls that say what a head adds: the same LOEO k-NN protocol on inputs that need no trained head.

* ``state``: the raw proprioceptive state (joint positions + gripper width), standardised, Euclidean k-NN;
* ``phase``: where the frame lies in its episode (0 = first frame, 1 = last), Euclidean k-NN;
* ``random_init``: every head of a randomly initialised copy of the policy (same architecture, same inputs).

A head whose error is no lower than the state's tells us nothing the robot's joint encoders do not. The *residual*
score asks the sharper question: how much does the head predict of what the state's own k-NN prediction misses?
"""

from __future__ import annotations

import copy

import torch

from robosteer.heads import scores

CONTROL_NAMES: tuple[str, ...] = ("state", "phase", "random_init")


def control_error(values: torch.Tensor, targets: torch.Tensor, episodes: torch.Tensor, ks: list[int]) -> dict:
    """LOEO k-NN error of predicting the standardised ``targets`` from low-dim ``values`` (N, d), at the best k
    (the best k favours the control, which makes "a head beats the control" the harder claim)."""
    standard = scores.standardise(targets)
    mse_by_k = scores.knn_mse(scores.distance_similarity(values), standard, episodes, ks)[0]  # (K,)
    best = int(mse_by_k.argmin())
    baseline = scores.loeo_mean_mse(standard, episodes)
    return {
        "mse": float(mse_by_k[best]),
        "k": ks[best],
        "score": max(0.0, 1.0 - float(mse_by_k[best]) / max(baseline, 1e-6)),
    }


def state_residual(state: torch.Tensor, targets: torch.Tensor, episodes: torch.Tensor, k: int) -> torch.Tensor:
    """What the state's own LOEO k-NN prediction misses: standardised targets minus that prediction, (N, A)."""
    standard = scores.standardise(targets)
    prediction = scores.knn_predictions(scores.distance_similarity(state), standard, episodes, [k])[0, 0]  # (N, A)
    return standard - prediction


def residual_scores(
    similarity: torch.Tensor, residual: torch.Tensor, episodes: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Per head: LOEO k-NN prediction of the state residual (N, A) from the head's features.

    Returns (score (H,) in [0, 1] = ``max(0, 1 - mse / mean_baseline)``, mse (H,), mean_baseline): a head that
    carries only joint-state information predicts the residual no better than its mean, score ~0."""
    mse = scores.knn_mse(similarity, residual, episodes, [k])[:, 0]  # (H,)
    baseline = scores.loeo_mean_mse(residual, episodes)
    return (1.0 - mse / max(baseline, 1e-9)).clamp(0.0, 1.0), mse, baseline


def random_init_copy(policy, seed: int):
    """A copy of ``policy`` whose weights are re-drawn from their initialisers (normalisation statistics and the
    processors are kept, so it sees exactly the same inputs)."""
    clone = copy.copy(policy)
    clone.model = copy.deepcopy(policy.model)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        for module in clone.model.modules():
            if hasattr(module, "reset_parameters") and module is not clone.model:
                module.reset_parameters()
            elif type(module).__name__.endswith("RMSNorm") and getattr(module, "weight", None) is not None:
                torch.nn.init.ones_(module.weight)
    finally:
        torch.random.set_rng_state(generator_state)
    clone.model.eval()
    return clone


def heads_beating(head_mse: torch.Tensor, eligible: list[int], control_mse: float) -> int:
    """How many eligible heads have a lower LOEO error than a control."""
    return int((head_mse[eligible] < control_mse).sum())
