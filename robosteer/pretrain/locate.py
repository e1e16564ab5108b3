"""Auxiliary localisation for pretraining: read each episode's object and target positions off the image tokens.

The flow-matching loss teaches the vision encoder only what the action chunks need, and a from-scratch encoder learns
slowly from it where a goal is. With ``--locate-weight W`` pretraining adds ``W *`` the mean squared error of a linear
head that predicts, from the tokens the VLM decoder receives (the connector's output, every camera), the episode's
object and target table positions (from the recording's labels, normalised per coordinate). The head is dropped after
pretraining: the saved policy is a plain SmolVLA.
"""

from __future__ import annotations

import torch

from robosteer.errors import RobosteerError

POSITIONS = "robosteer.positions"
"""Batch key of each frame's (object x, object y, target x, target y) [m]."""
POSITION_LABELS = ("object_x", "object_y", "target_x", "target_y")
"""Episode labels the head predicts."""
NEEDS_POSITIONS = (
    "--locate-weight needs every episode's object/target positions (meta/robosteer_episode_labels.jsonl, written by "
    "robosteer record and pretrain for scripted demos)"
)


class LocateLoss:
    """``loss(batch)`` = the policy's flow-matching loss + ``weight`` * the position head's MSE (normalised units)."""

    def __init__(self, policy, positions: torch.Tensor, weight: float):
        vlm_with_expert = getattr(getattr(policy.model, "model", None), "vlm_with_expert", None)
        if vlm_with_expert is None:
            raise RobosteerError("--locate-weight needs a SmolVLA policy (its connector's tokens are what is read)")
        self.policy = policy
        self.weight = weight
        self.connector = vlm_with_expert.get_vlm_model().connector
        self.mean = positions.mean(0)  # (4,)
        self.std = positions.std(0).clamp_min(1e-3)  # (4,)
        side = policy.config.resize_imgs_with_padding[0]
        with torch.no_grad():
            tokens = vlm_with_expert.embed_image(torch.zeros(1, 3, side, side))  # (1, T, H)
        self.head = torch.nn.Linear(len(policy.image_keys) * tokens[0].numel(), len(POSITION_LABELS))
        torch.nn.init.zeros_(self.head.weight)  # deterministic, and no pull on the encoder before the head learns
        torch.nn.init.zeros_(self.head.bias)

    def named_parameters(self) -> dict[str, torch.nn.Parameter]:
        return {f"locate_head.{name}": p for name, p in self.head.named_parameters()}

    def __call__(self, batch: dict) -> torch.Tensor:
        positions = batch.pop(POSITIONS)  # (B, 4)
        captured: list[torch.Tensor] = []
        handle = self.connector.register_forward_hook(lambda module, args, out: captured.append(out))
        try:
            flow = self.policy.loss(batch)
        finally:
            handle.remove()
        if len(captured) != len(self.policy.image_keys):
            raise RobosteerError(f"expected one image embedding per camera, got {len(captured)}")
        tokens = torch.cat([t.flatten(1) for t in captured], dim=1)  # (B, cameras * T * H)
        target = (positions.to(tokens) - self.mean) / self.std  # (B, 4)
        return flow + self.weight * ((self.head(tokens) - target) ** 2).mean()


def episode_positions(labels: list[dict]) -> torch.Tensor | None:
    """(episodes, 4) object and target positions from per-episode labels; None if any episode lacks them."""
    if not labels or any(any(key not in lab for key in POSITION_LABELS) for lab in labels):
        return None
    return torch.tensor([[float(lab[key]) for key in POSITION_LABELS] for lab in labels])


def require_positions(root) -> None:
    """Refuse, before any work, a dataset whose episodes do not all carry object/target positions."""
    from robosteer.data.labels import read_episode_labels

    if episode_positions(read_episode_labels(root)) is None:
        raise RobosteerError(f"{NEEDS_POSITIONS}; {root} lacks them: drop --locate-weight or re-record")
