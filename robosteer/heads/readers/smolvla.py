"""SmolVLA's head reader.

SmolVLA (LeRobot 0.6) at inference runs the VLM decoder once over the prefix
``[image tokens per camera] + [language tokens, right-padded] + [state token]`` (the ``vlm`` heads' o_proj call 0),
then the action expert once per denoising step over the action tokens only (the ``expert`` heads' o_proj call
``k`` = step ``k``). Hence:

* ``last_lang``: the last real language token of the prefix (``vlm`` heads),
* ``state``: the state token, the last prefix token (``vlm`` heads; openpi's "last prefix token"),
* ``first_action``: the first action token in denoising step ``denoise_step`` (``expert`` heads; the authors'
  selector uses the first action token). Step 0 sees pure (seeded, shared) noise, so its features differ between
  frames only through the observation, never through the demonstrated action.
"""

from __future__ import annotations

from robosteer.errors import RobosteerError
from robosteer.heads.readers.base import HeadReader, Inputs, last_language_position


class SmolVLAReader(HeadReader):
    architecture = "smolvla"
    stack_tokens = {"vlm": ("state", "last_lang"), "expert": ("first_action",)}
    prefix_tokens_after_language = 1  # the state token

    def check_supported(self, model) -> None:
        super().check_supported(model)
        if getattr(model.config, "prefix_length", -1) > 0:
            raise RobosteerError("SmolVLA with prefix_length > 0 pads the prefix; set prefix_length=-1 in its config")

    def model_inputs(self, model, batch: dict) -> Inputs:
        """(images, img_masks, lang_tokens, lang_masks, state) from a preprocessed batch, as SmolVLAPolicy does."""
        from lerobot.utils.constants import OBS_LANGUAGE_ATTENTION_MASK, OBS_LANGUAGE_TOKENS

        batch = model._prepare_batch(batch)
        images, img_masks = model.prepare_images(batch)
        state = model.prepare_state(batch)
        masks = batch[OBS_LANGUAGE_ATTENTION_MASK]
        return Inputs((images, img_masks, batch[OBS_LANGUAGE_TOKENS], masks, state), masks, list(images))

    def language_tokens(self, inputs: Inputs):
        return inputs.args[2]

    def position(self, stack: str, token: str, inputs: Inputs):
        if token == "state":
            return -1
        if token == "last_lang":
            return last_language_position(inputs, tokens_after=1)
        return 0  # first_action: the expert sees the action tokens only

    def num_steps(self, model) -> int:
        return int(model.config.num_steps)
