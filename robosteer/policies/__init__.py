"""Policies: LeRobot VLAs behind one interface, each with a head layout (which ``o_proj`` belongs to which head).

Heavy imports (torch, lerobot, transformers) happen when a policy is built or loaded, not at package import.
"""

from robosteer.policies.layout import AttentionSite, HeadId, HeadLayout, layout_for_hf_decoder

__all__ = [
    "AttentionSite",
    "HeadId",
    "HeadLayout",
    "RobotPolicy",
    "SmolVLASpec",
    "VlmSpec",
    "embedded_available",
    "layout_for_hf_decoder",
    "layout_for_policy",
    "load_embedded",
    "load_policy",
    "make_smolvla",
    "make_tiny_smolvla",
]

_LAZY = {
    "RobotPolicy": "robosteer.policies.robot_policy",
    "SmolVLASpec": "robosteer.policies.smolvla_builder",
    "VlmSpec": "robosteer.policies.vlm_folder",
    "embedded_available": "robosteer.policies.loading",
    "layout_for_policy": "robosteer.policies.layouts",
    "load_embedded": "robosteer.policies.loading",
    "load_policy": "robosteer.policies.loading",
    "make_smolvla": "robosteer.policies.loading",
    "make_tiny_smolvla": "robosteer.policies.loading",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'robosteer.policies' has no attribute {name!r}")
