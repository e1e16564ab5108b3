"""Full-size ``smolvla_base`` on the meta device, offline: its SmolVLM2-500M config built in code.

LeRobot's SmolVLA reads ``AutoConfig/AutoProcessor.from_pretrained(vlm_model_name)`` even with
``load_vlm_weights=False``, and SmolVLM2-500M-Video-Instruct's config is not available offline. This writes a local
folder with that model's geometry, built from its published numbers (not read from the hub), plus robosteer's
word-level tokenizer: the processor must load, but counting parameters and measuring memory needs no real vocabulary
(the embedding keeps the published 49,280 rows). SmolVLA then keeps the first ``num_vlm_layers`` (16) text layers and
adds an action expert 0.75 as wide, exactly as LeRobot builds ``smolvla_base``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from dataclasses import asdict
from pathlib import Path

import torch

from robosteer.policies.vlm_folder import VlmSpec, build_processor, build_smolvlm_config

CONFIG_SOURCE = "SmolVLM2-500M-Video-Instruct config built in code from its published numbers (not downloaded)"


SMOLVLM2_500M = VlmSpec(
    text_hidden_size=960,
    text_layers=32,
    text_heads=15,
    text_kv_heads=5,
    head_dim=64,
    text_intermediate_size=2560,
    vision_hidden_size=768,
    vision_layers=12,
    vision_heads=12,
    image_size=512,
    patch_size=16,
    scale_factor=4,
)
"""SmolVLM2-500M-Video-Instruct's published geometry (SmolLM2 text decoder + SigLIP vision encoder; 64 tokens per
image)."""
PUBLISHED = {
    "vocab_size": 49280,
    "pad_token_id": 2,
    "image_token_id": 49190,
    "rope_theta": 100000.0,
    "max_position_embeddings": 8192,
    "vision_intermediate_size": 3072,
}
"""The rest of its published config: vocabulary rows, special token ids, RoPE base, context, vision MLP width."""


def smolvlm_config():
    """The transformers ``SmolVLMConfig`` of SmolVLM2-500M-Video-Instruct."""
    return build_smolvlm_config(SMOLVLM2_500M, **PUBLISHED)


def smolvlm_folder() -> Path:
    """A local model folder (config + processor with robosteer's word-level tokenizer), written once."""
    from robosteer.files import atomic_dir
    from robosteer.policies.smolvla_builder import cache_root

    spec_json = json.dumps({"vlm": asdict(SMOLVLM2_500M), **PUBLISHED}, sort_keys=True)
    out = cache_root() / f"smolvlm2-500m-published-{hashlib.sha256(spec_json.encode()).hexdigest()[:12]}"
    marker = out / "robosteer_published_spec.json"
    if marker.exists() and marker.read_text() == spec_json:
        return out

    def write(tmp: Path) -> None:
        smolvlm_config().save_pretrained(tmp)
        build_processor(SMOLVLM2_500M).save_pretrained(tmp)
        (tmp / marker.name).write_text(spec_json)

    atomic_dir(out, write)
    return out


def build_smolvla_base_on_meta(vlm_dtype: torch.dtype = torch.bfloat16):
    """LeRobot's ``smolvla_base`` geometry (config defaults) on the meta device, without weights.

    ``load_vlm_weights=False`` builds the VLM in float32; LeRobot loads the pretrained VLM with
    ``torch_dtype="bfloat16"`` (the expert stays float32), so the VLM is cast to ``vlm_dtype`` to match.
    """
    from lerobot.policies.smolvla.configuration_smolvla import SmolVLAConfig
    from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy

    from robosteer.policies.smolvla_builder import default_features

    inputs, outputs = default_features()
    config = SmolVLAConfig(
        input_features=inputs,
        output_features=outputs,
        device="cpu",
        vlm_model_name=str(smolvlm_folder()),
        load_vlm_weights=False,
        push_to_hub=False,
    )
    config.device = "meta"
    with torch.device("meta"), contextlib.redirect_stdout(io.StringIO()):  # LeRobot prints the layer cut
        policy = SmolVLAPolicy(config)
    policy.model.vlm_with_expert.vlm.to(vlm_dtype)
    return policy
