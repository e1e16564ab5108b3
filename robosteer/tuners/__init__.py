"""Finetuning: the head-selective tuner (Robotic Steering), LoRA (peft) and full finetuning, one training loop."""

from robosteer.tuners.config import FinetuneConfig
from robosteer.tuners.finetune import FinetuneResult, apply_adapter, finetune, read_heads_json
from robosteer.tuners.head import HeadTunerConfig, HeadTunerModel

__all__ = [
    "FinetuneConfig",
    "FinetuneResult",
    "HeadTunerConfig",
    "HeadTunerModel",
    "apply_adapter",
    "finetune",
    "read_heads_json",
]
