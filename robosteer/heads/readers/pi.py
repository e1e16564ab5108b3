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

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

from robosteer.errors import RobosteerError
from robosteer.heads.readers.base import AttentionMaps, AttentionRecorder, HeadReader, Inputs, last_language_position
from robosteer.heads.trace import Capture
from robosteer.policies.layout import AttentionSite, HeadLayout


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

    @contextmanager
    def attention_capture(
        self, model, layout: HeadLayout, heads: list[str], captures: dict[str, Capture]
    ) -> Iterator[AttentionMaps]:
        """pi0/pi05 run each layer's HF ``GemmaAttention`` with the eager implementation (``sample_actions`` and
        ``denoise_step`` set it), which returns the probabilities: a forward hook on every attention module keeps
        the chosen heads' rows, and the values from the layer's cache (the expert's keys include the prefix)."""
        recorder = AttentionRecorder(layout, heads, captures)
        handles = []
        try:
            for site in layout.sites:
                module = model.get_submodule(site.module_path)
                handles.append(module.register_forward_hook(partial(_observe, recorder, site), with_kwargs=True))
            yield recorder.maps
        finally:
            for handle in handles:
                handle.remove()


def _observe(recorder: AttentionRecorder, site: AttentionSite, module, args, kwargs, output) -> None:
    """Forward hook of one ``GemmaAttention``: its (B, H, S_q, S_k) probabilities go to the recorder."""
    weights = output[1] if isinstance(output, tuple) and len(output) > 1 else None
    if weights is None:
        raise RobosteerError(
            f"{site.module_path} returned no attention probabilities; run it with _attn_implementation='eager'"
        )

    def values_of(head: int):
        cache = kwargs.get("past_key_values")
        if cache is None:
            raise RobosteerError(f"{site.module_path} ran without a key/value cache; sample through sample_actions")
        values = cache.layers[module.layer_idx].values  # (B, KV, S_k, D)
        return values[:, head // site.group_size]  # (B, S_k, D)

    recorder.observe(site.stack, site.layer, weights.shape[-1], lambda head: weights[:, head], values_of)
