"""pi0's and pi05's head reader.

pi0 and pi05 (LeRobot 0.6, the openpi port) run the PaliGemma decoder once over the prefix
``[image tokens per camera] + [language tokens, padded to tokenizer_max_length]`` (the ``vlm`` heads' o_proj call
0), then the Gemma action expert once per denoising step over the suffix (call ``k`` = step ``k``). pi0's suffix is
``[state token] + [action tokens]``; pi05 writes the discretised state into the prompt (``Task: ..., State: ...;
Action:``) and its suffix is the action tokens alone (the timestep enters through adaptive RMSNorm). Hence:

* ``last_lang``: the last real prompt token, the ``vlm`` default (no state token in the prefix),
* ``first_action``: the first action token of denoising step ``denoise_step`` (suffix index 1 in pi0, 0 in pi05),
* ``state``: pi0's state token in the expert (suffix index 0).
"""

from __future__ import annotations

from robosteer.heads.readers.base import HeadReader, Inputs, last_language_position


class PiReader(HeadReader):
    """pi0: ``state_in_suffix``; pi05: the state is part of the prompt."""

    def __init__(self, architecture: str):
        self.architecture = architecture
        self.state_in_suffix = architecture == "pi0"
        expert = ("first_action", "state") if self.state_in_suffix else ("first_action",)
        self.stack_tokens = {"vlm": ("last_lang",), "expert": expert}

    def model_inputs(self, model, batch: dict) -> Inputs:
        """The inner model's inputs from a preprocessed batch, as ``PI0Policy/PI05Policy.predict_action_chunk``."""
        from lerobot.utils.constants import OBS_LANGUAGE_ATTENTION_MASK, OBS_LANGUAGE_TOKENS

        images, img_masks = model._preprocess_images(batch)
        tokens, masks = batch[OBS_LANGUAGE_TOKENS], batch[OBS_LANGUAGE_ATTENTION_MASK]
        args = (images, img_masks, tokens, masks)
        if self.state_in_suffix:
            args = (*args, model.prepare_state(batch))
        return Inputs(args, masks, list(images))

    def language_tokens(self, inputs: Inputs):
        return inputs.args[2]

    def position(self, stack: str, token: str, inputs: Inputs):
        if token == "last_lang":
            return last_language_position(inputs, tokens_after=0)
        if token == "state":
            return 0
        return 1 if self.state_in_suffix else 0  # first_action

    def num_steps(self, model) -> int:
        return int(model.config.num_inference_steps)
