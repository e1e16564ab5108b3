"""The head-selective tuner: trainable deltas on the chosen heads' q rows and o columns (config / layer / model)."""

from robosteer.tuners.head.config import HeadTunerConfig
from robosteer.tuners.head.layer import HeadDeltaLinear
from robosteer.tuners.head.model import CONFIG_FILE, WEIGHTS_FILE, HeadTunerModel, read_adapter_config

__all__ = ["CONFIG_FILE", "WEIGHTS_FILE", "HeadDeltaLinear", "HeadTunerConfig", "HeadTunerModel", "read_adapter_config"]
