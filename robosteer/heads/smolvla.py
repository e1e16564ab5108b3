"""Where SmolVLA's heads are read: token positions, o_proj calls, and the forward that reaches them.

SmolVLA (LeRobot 0.6) at inference runs the VLM decoder once over the prefix
``[image tokens per camera] + [language tokens, right-padded] + [state token]`` (the ``vlm`` heads' o_proj call 0),
then the action expert once per denoising step over the action tokens only (the ``expert`` heads' o_proj call
``k`` = step ``k``). Hence:

* ``last_lang``: the last real language token of the prefix (``vlm`` heads),
* ``state``: the state token, the last prefix token (``vlm`` heads; openpi's "last prefix token"),
* ``first_action``: the first action token in denoising step ``denoise_step`` (``expert`` heads; the authors'
  selector uses the first action token). Step 0 sees pure (seeded, shared) noise, so its features differ between
  frames only through the observation, never through the demonstrated action.

A token a stack never processes falls back to that stack's default (``vlm``: ``state``, ``expert``:
``first_action``); :func:`feature_tokens` reports what each stack actually used.
"""

from __future__ import annotations

import torch

from robosteer.constants import ACTION
from robosteer.errors import RobosteerError
from robosteer.heads.trace import Capture

TOKENS: tuple[str, ...] = ("auto", "last_lang", "state", "first_action")
STACK_TOKENS: dict[str, tuple[str, ...]] = {"vlm": ("state", "last_lang"), "expert": ("first_action",)}
"""Tokens each stack processes as queries; the first is the stack's default."""


def check_supported(model) -> None:
    kind = getattr(getattr(model, "config", None), "type", None)
    if kind != "smolvla":
        raise RobosteerError(
            f"head features are implemented for SmolVLA policies; this policy is {kind!r}. "
            "Use a SmolVLA checkpoint (or 'embedded')."
        )
    if getattr(model.config, "prefix_length", -1) > 0:
        raise RobosteerError("SmolVLA with prefix_length > 0 pads the prefix; set prefix_length=-1 in its config")


def inert_heads(layout) -> list[str]:
    """Heads whose output cannot reach the action: the expert reads only the VLM's keys/values, which every VLM
    layer computes from its input, so the query/output of the last VLM layer feed nothing the action depends on.
    They are still scored (their features are informative) but never selected: steering them would train nothing."""
    vlm_layers = [site for site in layout.sites if site.stack == "vlm"]
    if not vlm_layers:
        return []
    last = max(vlm_layers, key=lambda site: site.layer)
    return [head.name for head in last.head_ids()]


def feature_tokens(token: str, stacks: list[str]) -> dict[str, str]:
    """The token each stack's heads are read at for a requested ``token`` (``auto`` = per-stack default)."""
    if token not in TOKENS:
        raise RobosteerError(f"unknown token {token!r}; use one of {', '.join(TOKENS)}")
    out = {}
    for stack in stacks:
        available = STACK_TOKENS.get(stack, ())
        if not available:
            raise RobosteerError(f"no token table for stack {stack!r} (known: {', '.join(STACK_TOKENS)})")
        out[stack] = token if token in available else available[0]
    return out


def captures(tokens: dict[str, str], lang_masks: torch.Tensor, denoise_step: int = 0) -> dict[str, Capture]:
    """Captures for :class:`HeadTrace` given the batch's language mask (B, L) (right padded)."""
    lang_len = lang_masks.shape[1]
    last_valid = lang_masks.long().cumsum(1).argmax(1)  # (B,) index of the last real token
    out = {}
    for stack, token in tokens.items():
        if token == "state":
            out[stack] = Capture({token: -1})
        elif token == "last_lang":
            # prefix = images + L language tokens + 1 state token -> last real token at S - 1 - L + last_valid
            out[stack] = Capture({token: lambda seq_len: seq_len - 1 - lang_len + last_valid})
        else:
            out[stack] = Capture({token: 0}, call=denoise_step)
    return out


def model_inputs(model, batch: dict) -> tuple:
    """(images, img_masks, lang_tokens, lang_masks, state) from a preprocessed batch, as SmolVLAPolicy does."""
    from lerobot.utils.constants import OBS_LANGUAGE_ATTENTION_MASK, OBS_LANGUAGE_TOKENS

    batch = model._prepare_batch(batch)
    images, img_masks = model.prepare_images(batch)
    state = model.prepare_state(batch)
    return images, img_masks, batch[OBS_LANGUAGE_TOKENS], batch[OBS_LANGUAGE_ATTENTION_MASK], state


def pad_language(model, inputs: tuple) -> tuple:
    """The same inputs with the language tokens right-padded (masked) to the tokenizer's maximum length, so that
    every batch has one prefix length (padding is masked: the outputs at real tokens do not change)."""
    images, img_masks, lang_tokens, lang_masks, state = inputs
    missing = int(model.config.tokenizer_max_length) - lang_tokens.shape[1]
    if missing > 0:
        lang_tokens = torch.nn.functional.pad(lang_tokens, (0, missing))  # (B, L_max)
        lang_masks = torch.nn.functional.pad(lang_masks, (0, missing), value=False)  # (B, L_max)
    return images, img_masks, lang_tokens, lang_masks, state


def shared_noise(model, batch_size: int, seed: int) -> torch.Tensor:
    """One seeded noise chunk, the same for every sample: (B, chunk_size, max_action_dim)."""
    cfg = model.config
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(1, cfg.chunk_size, cfg.max_action_dim, generator=gen)
    return noise.expand(batch_size, -1, -1).to(next(model.parameters()).device)


@torch.no_grad()
def sample_actions(model, inputs: tuple, seed: int) -> torch.Tensor:
    """Normalised action chunk (B, chunk, action_dim) with seeded shared noise."""
    noise = shared_noise(model, inputs[-1].shape[0], seed)
    actions = model.model.sample_actions(*inputs, noise=noise)
    return actions[:, :, : model.config.action_feature.shape[0]]


@torch.no_grad()
def sample_with_clean_pass(model, inputs: tuple, seed: int) -> torch.Tensor:
    """Sample the action chunk, then run the expert once more on the policy's own clean chunk at t = 0 (the
    authors' feature pass). The expert's o_proj call ``num_steps`` is that extra pass. Returns the chunk."""
    inner = model.model
    seen = {}
    original = inner.denoise_step

    def remember(prefix_pad_masks, past_key_values, x_t, timestep):
        seen.setdefault("prefix", (prefix_pad_masks, past_key_values))
        return original(prefix_pad_masks=prefix_pad_masks, past_key_values=past_key_values, x_t=x_t, timestep=timestep)

    inner.denoise_step = remember
    try:
        noise = shared_noise(model, inputs[-1].shape[0], seed)
        clean = inner.sample_actions(*inputs, noise=noise)  # (B, chunk, max_action_dim)
    finally:
        del inner.denoise_step  # back to the class method
    prefix_pad_masks, past_key_values = seen["prefix"]
    zero = torch.zeros(clean.shape[0], dtype=torch.float32, device=clean.device)
    original(prefix_pad_masks=prefix_pad_masks, past_key_values=past_key_values, x_t=clean, timestep=zero)
    return clean[:, :, : model.config.action_feature.shape[0]]


def demonstrated_action(batch: dict) -> torch.Tensor:
    """The (normalised) demonstrated action of each frame: (B, action_dim)."""
    action = batch[ACTION]
    return action[:, 0] if action.ndim == 3 else action
