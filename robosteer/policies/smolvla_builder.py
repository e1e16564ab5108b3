"""Build a small LeRobot SmolVLA from scratch, with a generated local SmolVLM folder (no downloads)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from robosteer.constants import ACTION, ACTION_DIM, CAMERAS, IMAGE_SIZE, OBS_STATE, STATE_DIM, image_key
from robosteer.policies.vlm_folder import VlmSpec, spec_identity, write_vlm_folder


@dataclass(frozen=True)
class SmolVLASpec:
    """Size and decoding settings of a from-scratch SmolVLA."""

    vlm: VlmSpec = field(default_factory=VlmSpec)
    """Geometry of the generated SmolVLM (decoder = the ``vlm`` heads; the expert copies its head geometry)."""
    expert_width_multiplier: float = 0.75
    """Action-expert hidden width relative to the VLM decoder."""
    self_attn_every_n_layers: int = 2
    """Expert layers that self-attend (others cross-attend to the VLM's keys/values)."""
    chunk_size: int = 16
    """Actions predicted per model call."""
    n_action_steps: int = 8
    """Actions of each chunk executed before the model is called again."""
    num_steps: int = 5
    """Flow-matching denoising steps at inference."""
    tokenizer_max_length: int = 24
    """Maximum instruction tokens."""
    optimizer_lr: float = 3e-4
    """Peak learning rate stored in the LeRobot config (used by LeRobot's own training presets)."""

    def __post_init__(self):
        if not 1 <= self.n_action_steps <= self.chunk_size:
            raise ValueError(f"n_action_steps={self.n_action_steps} must be in [1, chunk_size={self.chunk_size}]")
        if self.num_steps < 1:
            raise ValueError("num_steps must be >= 1")


def default_features(cameras=CAMERAS, image_size: int = IMAGE_SIZE):
    """Policy features of the sim suite: state (8,), one RGB image per camera, action (8,)."""
    from lerobot.configs import FeatureType, PolicyFeature

    inputs = {OBS_STATE: PolicyFeature(type=FeatureType.STATE, shape=(STATE_DIM,))}
    for cam in cameras:
        inputs[image_key(cam)] = PolicyFeature(type=FeatureType.VISUAL, shape=(3, image_size, image_size))
    outputs = {ACTION: PolicyFeature(type=FeatureType.ACTION, shape=(ACTION_DIM,))}
    return inputs, outputs


def neutral_stats(input_features, output_features) -> dict[str, dict[str, torch.Tensor]]:
    """Mean 0 / std 1 statistics for state and action (used when no dataset is given)."""
    stats = {}
    for key, feat in {**input_features, **output_features}.items():
        if key.startswith("observation.images"):
            continue
        dim = feat.shape[0]
        stats[key] = {"mean": torch.zeros(dim), "std": torch.ones(dim), "min": -torch.ones(dim), "max": torch.ones(dim)}
    return stats


def cache_root() -> Path:
    """robosteer's cache folder: ``$ROBOSTEER_CACHE``, else ``$XDG_CACHE_HOME/robosteer`` or ``~/.cache/robosteer``."""
    return Path(
        os.environ.get("ROBOSTEER_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "robosteer"
    )


def vlm_cache_dir(spec: VlmSpec) -> Path:
    """Where the generated SmolVLM folder for ``spec`` lives (under :func:`cache_root`)."""
    digest = hashlib.sha256(spec_identity(spec).encode()).hexdigest()[:12]
    return cache_root() / f"smolvlm-{digest}"


def build_smolvla(spec: SmolVLASpec, input_features, output_features, seed: int = 0):
    """A from-scratch ``SmolVLAPolicy`` (every weight trainable except unused heads) on the CPU."""
    from lerobot.policies.smolvla.configuration_smolvla import SmolVLAConfig
    from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy

    vlm_dir = write_vlm_folder(vlm_cache_dir(spec.vlm), spec.vlm)
    side = spec.vlm.image_size
    config = SmolVLAConfig(
        input_features=dict(input_features),
        output_features=dict(output_features),
        device="cpu",
        vlm_model_name=str(vlm_dir),
        load_vlm_weights=False,
        train_expert_only=False,
        freeze_vision_encoder=False,
        num_vlm_layers=spec.vlm.text_layers,
        num_expert_layers=-1,
        self_attn_every_n_layers=spec.self_attn_every_n_layers,
        expert_width_multiplier=spec.expert_width_multiplier,
        resize_imgs_with_padding=(side, side),
        chunk_size=spec.chunk_size,
        n_action_steps=spec.n_action_steps,
        num_steps=spec.num_steps,
        tokenizer_max_length=spec.tokenizer_max_length,
        optimizer_lr=spec.optimizer_lr,
        push_to_hub=False,
    )
    torch.manual_seed(seed)
    policy = SmolVLAPolicy(config)
    unfreeze_for_scratch_training(policy)
    return policy


def unfreeze_for_scratch_training(policy) -> None:
    """LeRobot freezes the last VLM layer (its output is unused) and the LM head; keep those frozen, train the rest."""
    frozen = ("lm_head", "text_model.norm.weight")
    for name, param in policy.named_parameters():
        param.requires_grad = not any(f in name for f in frozen)
