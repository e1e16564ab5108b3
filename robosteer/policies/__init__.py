"""Policies: LeRobot VLAs behind one interface, each with a head layout (which ``o_proj`` belongs to which head)."""

from robosteer.policies.layout import AttentionSite, HeadId, HeadLayout, layout_for_hf_decoder

__all__ = ["AttentionSite", "HeadId", "HeadLayout", "layout_for_hf_decoder"]
