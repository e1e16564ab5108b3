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

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from robosteer.errors import RobosteerError
from robosteer.heads.readers.base import AttentionMaps, AttentionRecorder, HeadReader, Inputs, last_language_position
from robosteer.heads.trace import Capture
from robosteer.policies.layout import HeadLayout

Query = tuple[str, int, int, int]
"""One stack's queries in an attention call: (stack, layer in that stack, first row, end row)."""


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

    # -- attention maps ---------------------------------------------------------------------------------------------
    @contextmanager
    def attention_capture(
        self, model, layout: HeadLayout, heads: list[str], captures: dict[str, Capture]
    ) -> Iterator[AttentionMaps]:
        """SmolVLA computes attention in ``SmolVLMWithExpertModel.eager_attention_forward`` (probabilities not
        returned): the layer methods are wrapped to know whose queries the next call holds, and the chosen heads'
        probabilities are recomputed from that call's queries, keys and mask exactly as it computes them."""
        recorder = AttentionRecorder(layout, heads, captures)
        inner = model.model.vlm_with_expert
        expert_of = _expert_layer_of(inner)
        pending: list[list[Query]] = []
        originals = {name: getattr(inner, name) for name in _WRAPPED}

        def self_attn_layer(model_layers, inputs_embeds, layer_idx, *args, **kwargs):
            pending[:] = [_queries(model_layers, inputs_embeds, layer_idx, expert_of)]
            return originals["forward_attn_layer"](model_layers, inputs_embeds, layer_idx, *args, **kwargs)

        def cross_attn_layer(model_layers, inputs_embeds, layer_idx, *args, **kwargs):
            pending[:] = _cross_queries(model_layers, inputs_embeds, layer_idx, expert_of, kwargs)
            return originals["forward_cross_attn_layer"](model_layers, inputs_embeds, layer_idx, *args, **kwargs)

        def attention(attention_mask, batch_size, head_dim, query_states, key_states, value_states):
            for query in pending.pop(0) if pending else []:
                _observe(recorder, query, attention_mask, head_dim, query_states, key_states, value_states)
            return originals["eager_attention_forward"](
                attention_mask, batch_size, head_dim, query_states, key_states, value_states
            )

        wrappers = (self_attn_layer, cross_attn_layer, attention)
        for name, wrapper in zip(_WRAPPED, wrappers, strict=True):
            setattr(inner, name, wrapper)
        try:
            yield recorder.maps
        finally:
            for name in _WRAPPED:
                delattr(inner, name)  # back to the class methods

    def image_patches(self, model, segment: tuple[int, int]) -> tuple[int, int]:
        """Without the image start/end tokens SmolVLA may put around each camera's patches."""
        inner = model.model
        if not getattr(inner, "add_image_special_tokens", False):
            return segment
        start = segment[0] + int(inner.global_image_start_token.numel())
        return start, segment[1] - int(inner.image_end_token.numel())


_WRAPPED = ("forward_attn_layer", "forward_cross_attn_layer", "eager_attention_forward")
"""The SmolVLMWithExpertModel methods the attention capture wraps (instance attributes, removed afterwards)."""


def _expert_layer_of(inner) -> dict[int, int]:
    """Index of the expert layer that runs at each VLM layer index (the expert may have fewer layers)."""
    text_model = inner.get_vlm_model().text_model
    experts = inner.get_model_layers([text_model, inner.lm_expert])[1]
    index = {id(layer): i for i, layer in enumerate(inner.lm_expert.layers)}
    return {i: index[id(layer)] for i, layer in enumerate(experts) if layer is not None}


def _queries(model_layers, inputs_embeds, layer_idx: int, expert_of: dict[int, int]) -> list[Query]:
    """The query rows of a self-attention call: every present stack's tokens, concatenated in stack order."""
    queries, start = [], 0
    for i, (stack, hidden) in enumerate(zip(("vlm", "expert"), inputs_embeds, strict=False)):
        if hidden is None or model_layers[i][layer_idx] is None:
            continue
        layer = layer_idx if stack == "vlm" else expert_of[layer_idx]
        queries.append((stack, layer, start, start + hidden.shape[1]))
        start += hidden.shape[1]
    return queries


def _cross_queries(model_layers, inputs_embeds, layer_idx: int, expert_of: dict[int, int], kwargs) -> list:
    """The attention calls of a cross-attention layer: the VLM over the prefix (only without a cache), then the
    expert over the prefix's keys."""
    calls = []
    if len(inputs_embeds) == 2 and not kwargs.get("past_key_values"):
        calls.append([("vlm", layer_idx, 0, inputs_embeds[0].shape[1])])
    if model_layers[1][layer_idx] is not None:
        calls.append([("expert", expert_of[layer_idx], 0, inputs_embeds[1].shape[1])])
    return calls


def _observe(recorder, query: Query, mask, head_dim, query_states, key_states, value_states) -> None:
    """Hand one stack's share of an attention call to the recorder."""
    stack, layer, start, end = query
    group = query_states.shape[2] // key_states.shape[2]  # query heads per key/value head

    def probs_of(head: int) -> torch.Tensor:
        q = query_states[:, start:end, head].float()  # (B, S_q, D)
        k = key_states[:, :, head // group].float()  # (B, S_k, D)
        scores = q @ k.transpose(1, 2) * head_dim**-0.5  # (B, S_q, S_k)
        scores = torch.where(mask[:, start:end], scores, torch.finfo(scores.dtype).min)
        return scores.softmax(-1)

    def values_of(head: int) -> torch.Tensor:
        return value_states[:, :, head // group]  # (B, S_k, D)

    recorder.observe(stack, layer, key_states.shape[1], probs_of, values_of)
