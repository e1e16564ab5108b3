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
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

CONFIG_SOURCE = "SmolVLM2-500M-Video-Instruct config built in code from its published numbers (not downloaded)"


@dataclass(frozen=True)
class PublishedSmolVLM:
    """SmolVLM2-500M-Video-Instruct's published geometry (SmolLM2 text decoder + SigLIP vision encoder)."""

    vocab_size: int = 49280
    """Token embedding and LM-head rows."""
    text_hidden_size: int = 960
    """Width of the Llama text decoder."""
    text_layers: int = 32
    """Decoder layers of the VLM (SmolVLA keeps the first ``num_vlm_layers``)."""
    text_heads: int = 15
    """Query heads per decoder layer."""
    text_kv_heads: int = 5
    """Key/value heads per decoder layer (grouped-query attention)."""
    head_dim: int = 64
    """Features per head."""
    text_intermediate_size: int = 2560
    """MLP width of the decoder."""
    rope_theta: float = 100000.0
    """RoPE base of the decoder."""
    vision_hidden_size: int = 768
    """Width of the SigLIP vision encoder."""
    vision_layers: int = 12
    """Vision encoder layers."""
    vision_heads: int = 12
    """Vision encoder heads."""
    vision_intermediate_size: int = 3072
    """MLP width of the vision encoder."""
    patch_size: int = 16
    """Vision patch side."""
    image_size: int = 512
    """Image side the vision encoder sees."""
    scale_factor: int = 4
    """Pixel-shuffle factor of the connector: (512 / 16 / 4) ** 2 = 64 tokens per image."""
    pad_token_id: int = 2
    """Padding token id."""
    image_token_id: int = 49190
    """Id of the ``<image>`` token."""


def smolvlm_config(spec: PublishedSmolVLM | None = None):
    """The transformers ``SmolVLMConfig`` of ``spec`` (default: SmolVLM2-500M-Video-Instruct)."""
    from transformers import LlamaConfig, SmolVLMConfig, SmolVLMVisionConfig

    spec = spec or PublishedSmolVLM()
    text = LlamaConfig(
        vocab_size=spec.vocab_size,
        hidden_size=spec.text_hidden_size,
        intermediate_size=spec.text_intermediate_size,
        num_hidden_layers=spec.text_layers,
        num_attention_heads=spec.text_heads,
        num_key_value_heads=spec.text_kv_heads,
        head_dim=spec.head_dim,
        max_position_embeddings=8192,
        rms_norm_eps=1e-5,
        rope_theta=spec.rope_theta,
        pad_token_id=spec.pad_token_id,
        tie_word_embeddings=False,
    )
    vision = SmolVLMVisionConfig(
        hidden_size=spec.vision_hidden_size,
        intermediate_size=spec.vision_intermediate_size,
        num_hidden_layers=spec.vision_layers,
        num_attention_heads=spec.vision_heads,
        image_size=spec.image_size,
        patch_size=spec.patch_size,
    )
    return SmolVLMConfig(
        text_config=text.to_dict(),
        vision_config=vision.to_dict(),
        scale_factor=spec.scale_factor,
        image_token_id=spec.image_token_id,
        pad_token_id=spec.pad_token_id,
        tie_word_embeddings=False,
    )


def smolvlm_folder(spec: PublishedSmolVLM | None = None) -> Path:
    """A local model folder (config + processor with robosteer's word-level tokenizer), written once per spec."""
    from robosteer.files import atomic_dir

    spec = spec or PublishedSmolVLM()
    spec_json = json.dumps(asdict(spec), sort_keys=True)
    root = Path(
        os.environ.get("ROBOSTEER_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "robosteer"
    )
    out = root / f"smolvlm2-500m-published-{hashlib.sha256(spec_json.encode()).hexdigest()[:12]}"
    marker = out / "robosteer_published_spec.json"
    if marker.exists() and marker.read_text() == spec_json:
        return out

    def write(tmp: Path) -> None:
        smolvlm_config(spec).save_pretrained(tmp)
        _processor(spec).save_pretrained(tmp)
        (tmp / marker.name).write_text(spec_json)

    atomic_dir(out, write)
    return out


def _processor(spec: PublishedSmolVLM):
    """A SmolVLM processor at the published image geometry over robosteer's word-level tokenizer."""
    from transformers import SmolVLMImageProcessor, SmolVLMProcessor, SmolVLMVideoProcessor

    from robosteer.policies.vlm_folder import build_tokenizer

    size = {"longest_edge": spec.image_size}
    return SmolVLMProcessor(
        image_processor=SmolVLMImageProcessor(do_resize=True, size=size, max_image_size=size, do_image_splitting=False),
        tokenizer=build_tokenizer(),
        video_processor=SmolVLMVideoProcessor(size=size, max_image_size=size),
        image_seq_len=(spec.image_size // spec.patch_size // spec.scale_factor) ** 2,
    )


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
