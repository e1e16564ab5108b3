"""The per-architecture table: where the attention modules of each supported LeRobot policy live.

Module paths are relative to the LeRobot ``PreTrainedPolicy`` (``RobotPolicy.model``). Geometry (n_heads, n_kv_heads,
head_dim) is read from the config of the transformer that owns each stack, never hard-coded.

=========  =======  ==============================================================================
policy     stack    attention modules (``<prefix>.<i>.self_attn``)
=========  =======  ==============================================================================
smolvla    vlm      ``model.vlm_with_expert.vlm.model.text_model.layers``
smolvla    expert   ``model.vlm_with_expert.lm_expert.layers``
pi0/pi05   vlm      ``model.paligemma_with_expert.paligemma.model.language_model.layers``
pi0/pi05   expert   ``model.paligemma_with_expert.gemma_expert.model.layers``
=========  =======  ==============================================================================

LeRobot's SmolVLA and pi0 call each ``o_proj`` directly (once for the prefix, once per denoising step for the
suffix), never ``self_attn.forward``: hook ``o_proj`` (forward pre-hook) to read a head's ``z``.
"""

from __future__ import annotations

from torch import nn

from robosteer.errors import RobosteerError
from robosteer.policies.layout import AttentionSite, HeadLayout, _decoder_geometry, layout_for_hf_decoder

STACK_TABLE: dict[str, tuple[tuple[str, str], ...]] = {
    "smolvla": (
        ("vlm", "model.vlm_with_expert.vlm.model.text_model.layers"),
        ("expert", "model.vlm_with_expert.lm_expert.layers"),
    ),
    "pi0": (
        ("vlm", "model.paligemma_with_expert.paligemma.model.language_model.layers"),
        ("expert", "model.paligemma_with_expert.gemma_expert.model.layers"),
    ),
}
STACK_TABLE["pi05"] = STACK_TABLE["pi0"]
SUPPORTED_POLICY_TYPES: tuple[str, ...] = tuple(STACK_TABLE)


def _stack_config(policy: nn.Module, architecture: str, stack: str):
    """The HF text config that describes the attention geometry of one stack."""
    if architecture == "smolvla":
        vlm_with_expert = policy.model.vlm_with_expert
        return vlm_with_expert.config.text_config if stack == "vlm" else vlm_with_expert.lm_expert.config
    pg = policy.model.paligemma_with_expert
    return pg.paligemma.config.text_config if stack == "vlm" else pg.gemma_expert.config


def policy_type(policy: nn.Module) -> str:
    """The LeRobot policy type (``smolvla``, ``pi0``, ...) of a PreTrainedPolicy, or its class name."""
    config = getattr(policy, "config", None)
    return getattr(config, "type", None) or getattr(policy, "name", None) or type(policy).__name__


def layout_for_policy(policy: nn.Module) -> HeadLayout:
    """Head layout of a LeRobot VLA (smolvla, pi0, pi05) or, failing that, of a plain HF decoder."""
    architecture = policy_type(policy)
    if architecture not in STACK_TABLE:
        if hasattr(policy, "config") and hasattr(policy.config, "num_attention_heads"):
            return layout_for_hf_decoder(policy)
        raise RobosteerError(
            f"no head layout for policy type {architecture!r}; supported: "
            f"{', '.join(SUPPORTED_POLICY_TYPES)} and plain Hugging Face decoders "
            "(Llama, Gemma, Qwen2)"
        )
    sites: list[AttentionSite] = []
    for stack, prefix in STACK_TABLE[architecture]:
        n_heads, n_kv, head_dim = _decoder_geometry(_stack_config(policy, architecture, stack))
        layers = policy.get_submodule(prefix)
        for i, layer in enumerate(layers):
            attn = layer.self_attn
            # the modules themselves are the ground truth for the geometry (the expert may be narrower)
            q_out, o_in = attn.q_proj.out_features, attn.o_proj.in_features
            if q_out != n_heads * head_dim or o_in != n_heads * head_dim:
                raise RobosteerError(
                    f"{architecture} {stack}.L{i}: q_proj/o_proj widths {q_out}/{o_in} do not match "
                    f"{n_heads} heads x {head_dim}; the layout table is out of date for this "
                    "LeRobot version"
                )
            sites.append(AttentionSite(stack, i, f"{prefix}.{i}.self_attn", n_heads, n_kv, head_dim))
    return HeadLayout(architecture, sites)
