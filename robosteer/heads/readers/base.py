"""What every head reader shares: token names, captures, seeded sampling, the clean feature pass, inert heads.

A reader knows, for one architecture, how preprocessed batches become the model's inputs, where each named token
sits in the sequence each stack's ``o_proj`` sees, and how to sample an action chunk with seeded noise. Everything
that reads or edits heads (features, the causal check, the ranking's controls, ``--explain``) goes through it, so
the ranking, the steer tuner and the merge run unchanged on every architecture.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import torch

from robosteer.constants import ACTION
from robosteer.errors import RobosteerError
from robosteer.heads.trace import Capture, PositionSpec, _index_for
from robosteer.policies.layout import HeadId, HeadLayout

TOKENS: tuple[str, ...] = ("auto", "last_lang", "state", "first_action")
"""Token names a ranking may read heads at (``auto``: each stack's default)."""


@dataclass(frozen=True)
class Inputs:
    """The model's inputs for one batch."""

    args: tuple
    """Positional arguments of the inner model's ``sample_actions`` (before ``noise``)."""
    lang_masks: torch.Tensor
    """(B, L) language mask, right padded: True at real instruction tokens."""
    images: list[torch.Tensor]
    """One (B, 3, H, W) tensor per camera, as the model sees it."""

    @property
    def batch_size(self) -> int:
        return int(self.lang_masks.shape[0])


@dataclass
class AttentionMaps:
    """What :meth:`HeadReader.attention_capture` recorded: the chosen heads' attention probabilities over the keys
    of the captured call, at the captured tokens, and the values they weigh (``probs @ values`` is the head's ``z``)."""

    probs: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    """Per head, per token name: (B, S_k) probabilities over the keys (the prefix first, then the call's own)."""
    values: dict[str, torch.Tensor] = field(default_factory=dict)
    """Per head: (B, S_k, head_dim) values of the key/value head its query head reads (shared under GQA/MQA)."""
    prefix_len: int | None = None
    """Keys of the prefix pass (images, language and what follows it), the first keys of every later call."""

    def head_probs(self, head: str, token: str) -> torch.Tensor:
        """(B, S_k) attention of one head at one captured token."""
        if token not in self.probs.get(head, {}):
            raise RobosteerError(f"no attention recorded for {head} at {token!r}; capture that head's stack and call")
        return self.probs[head][token]


class AttentionRecorder:
    """Counts each attention layer's calls within one forward and keeps the chosen heads' probabilities at the
    captured call and tokens (the readers feed it from their architecture's attention code)."""

    def __init__(self, layout: HeadLayout, heads: list[str], captures: dict[str, Capture]):
        self.captures = captures
        self.wanted: dict[tuple[str, int], list[int]] = {}
        for head in layout.validate_heads(heads):
            if head.stack not in captures:
                raise RobosteerError(f"no capture for the {head.stack} stack of {head.name}; name its token and call")
            self.wanted.setdefault((head.stack, head.layer), []).append(head.head)
        self.calls: Counter = Counter()
        self.maps = AttentionMaps()

    def observe(
        self,
        stack: str,
        layer: int,
        n_keys: int,
        probs_of: Callable[[int], torch.Tensor],
        values_of: Callable[[int], torch.Tensor],
    ) -> None:
        """One attention call of ``stack``.L``layer`` over ``n_keys`` keys; ``probs_of(h)`` gives query head h's
        (B, S_q, S_k) probabilities and ``values_of(h)`` the (B, S_k, D) values it reads (asked only when kept)."""
        call = self.calls[(stack, layer)]
        self.calls[(stack, layer)] += 1
        if stack == "vlm" and call == 0 and self.maps.prefix_len is None:
            self.maps.prefix_len = n_keys
        capture = self.captures.get(stack)
        if capture is None or call != capture.call:
            return
        for h in self.wanted.get((stack, layer), []):
            name = HeadId(stack, layer, h).name
            probs = probs_of(h).detach()  # (B, S_q, S_k)
            batch, seq_len = probs.shape[:2]
            for token, spec in capture.positions.items():
                index = _index_for(spec, seq_len, batch, probs.device)
                rows = (
                    probs[:, index]
                    if isinstance(index, slice)
                    else probs[torch.arange(batch, device=probs.device), index]
                )
                self.maps.probs.setdefault(name, {})[token] = rows.clone()  # (B, S_k) or (B, S_q, S_k)
            self.maps.values[name] = values_of(h).detach().clone()  # (B, S_k, D)


class HeadReader:
    """The per-architecture part of reading heads; subclasses fill the table and the input plumbing."""

    architecture: str = ""
    stack_tokens: dict[str, tuple[str, ...]] = {}
    """Per stack, the tokens its heads can be read at (first: the stack's default)."""

    # -- architecture-specific ------------------------------------------------------------------------------------
    def model_inputs(self, model, batch: dict) -> Inputs:
        raise NotImplementedError

    def with_inputs(self, inputs: Inputs, args: tuple, lang_masks: torch.Tensor) -> Inputs:
        return Inputs(args, lang_masks, inputs.images)

    def position(self, stack: str, token: str, inputs: Inputs) -> PositionSpec:
        """Where ``token`` sits in the sequence the stack's ``o_proj`` sees."""
        raise NotImplementedError

    def num_steps(self, model) -> int:
        raise NotImplementedError

    def language_tokens(self, inputs: Inputs) -> torch.Tensor:
        """(B, L) instruction token ids."""
        raise NotImplementedError

    prefix_tokens_after_language: int = 0
    """Prefix tokens after the (padded) language (SmolVLA: its state token)."""

    def prefix_segments(self, seq_len: int, inputs: Inputs) -> dict[str, tuple[int, int]]:
        """Token ranges ``[start, end)`` of a prefix of ``seq_len`` tokens: ``image:<i>`` per camera (every camera
        has the same number of tokens) and ``language`` (padding included)."""
        lang_len = int(inputs.lang_masks.shape[1])
        lang_start = seq_len - self.prefix_tokens_after_language - lang_len
        per_camera = lang_start // max(1, len(inputs.images))
        segments = {f"image:{i}": (i * per_camera, (i + 1) * per_camera) for i in range(len(inputs.images))}
        segments["language"] = (lang_start, lang_start + lang_len)
        return segments

    def attention_capture(
        self, model, layout: HeadLayout, heads: list[str], captures: dict[str, Capture]
    ) -> AbstractContextManager[AttentionMaps]:
        """``with reader.attention_capture(model, layout, heads, captures) as maps: reader.sample_actions(...)``:
        the chosen heads' attention probabilities at the captured calls and tokens (where :class:`HeadTrace`
        reads their outputs), filled in during the forward."""
        raise RobosteerError(f"attention maps are not implemented for {self.architecture}; use smolvla, pi0 or pi05")

    def image_patches(self, model, segment: tuple[int, int]) -> tuple[int, int]:
        """The image-patch tokens ``[start, end)`` of a camera's prefix segment (no special tokens by default)."""
        return segment

    # -- shared -----------------------------------------------------------------------------------------------------
    def check_supported(self, model) -> None:
        kind = getattr(getattr(model, "config", None), "type", None)
        if kind != self.architecture:
            raise RobosteerError(f"the {self.architecture} head reader got a {kind!r} policy")

    def feature_tokens(self, token: str, stacks: list[str]) -> dict[str, str]:
        """The token each stack's heads are read at for a requested ``token`` (``auto`` = per-stack default)."""
        if token not in TOKENS:
            raise RobosteerError(f"unknown token {token!r}; use one of {', '.join(TOKENS)}")
        out = {}
        for stack in stacks:
            available = self.stack_tokens.get(stack, ())
            if not available:
                raise RobosteerError(f"no token table for stack {stack!r} (known: {', '.join(self.stack_tokens)})")
            out[stack] = token if token in available else available[0]
        return out

    def captures(self, tokens: dict[str, str], inputs: Inputs, denoise_step: int = 0) -> dict[str, Capture]:
        """Captures for :class:`HeadTrace`: the VLM at its prefix pass, the expert at ``denoise_step``."""
        return {
            stack: Capture({token: self.position(stack, token, inputs)}, call=0 if stack == "vlm" else denoise_step)
            for stack, token in tokens.items()
        }

    def pad_language(self, model, inputs: Inputs) -> Inputs:
        """The same inputs with the language right-padded (masked) to the tokenizer's maximum length, so every batch
        has one prefix length (padding is masked: outputs at real tokens do not change)."""
        lang_index = self.language_index()
        tokens, masks = inputs.args[lang_index], inputs.args[lang_index + 1]
        missing = int(model.config.tokenizer_max_length) - tokens.shape[1]
        if missing <= 0:
            return inputs
        tokens = torch.nn.functional.pad(tokens, (0, missing))  # (B, L_max)
        masks = torch.nn.functional.pad(masks, (0, missing), value=False)  # (B, L_max)
        args = (*inputs.args[:lang_index], tokens, masks, *inputs.args[lang_index + 2 :])
        return self.with_inputs(inputs, args, masks)

    def language_index(self) -> int:
        """Index of the language tokens in ``Inputs.args`` (the mask follows)."""
        return 2

    def shared_noise(self, model, batch_size: int, seed: int) -> torch.Tensor:
        """One seeded noise chunk, the same for every sample: (B, chunk_size, max_action_dim)."""
        cfg = model.config
        gen = torch.Generator().manual_seed(seed)
        noise = torch.randn(1, cfg.chunk_size, cfg.max_action_dim, generator=gen)
        return noise.expand(batch_size, -1, -1).to(next(model.parameters()).device)

    def action_dim(self, model) -> int:
        return int(model.config.output_features[ACTION].shape[0])

    @torch.no_grad()
    def sample_actions(self, model, inputs: Inputs, seed: int) -> torch.Tensor:
        """Normalised action chunk (B, chunk, action_dim) with seeded shared noise."""
        noise = self.shared_noise(model, inputs.batch_size, seed)
        actions = model.model.sample_actions(*inputs.args, noise=noise)
        return actions[:, :, : self.action_dim(model)]

    @torch.no_grad()
    def sample_with_clean_pass(self, model, inputs: Inputs, seed: int) -> torch.Tensor:
        """Sample the chunk, then run the expert once more on the policy's own clean chunk at t = 0 (the authors'
        feature pass): the expert's o_proj call ``num_steps`` is that extra pass. Returns the chunk."""
        inner = model.model
        seen: dict = {}
        original = inner.denoise_step

        def remember(**kwargs):
            seen.setdefault("kwargs", kwargs)
            return original(**kwargs)

        inner.denoise_step = remember
        try:
            clean = inner.sample_actions(*inputs.args, noise=self.shared_noise(model, inputs.batch_size, seed))
        finally:
            del inner.denoise_step  # back to the class method
        zero = torch.zeros(clean.shape[0], dtype=torch.float32, device=clean.device)
        original(**{**seen["kwargs"], "x_t": clean, "timestep": zero})
        return clean[:, :, : self.action_dim(model)]

    def inert_heads(self, layout) -> list[str]:
        """Heads whose output cannot reach the action: the expert reads only the VLM's keys/values, which every VLM
        layer computes from its input, so the query/output of the last VLM layer feed nothing the action depends
        on. They are still scored but never selected: steering them would train nothing."""
        vlm_layers = [site for site in layout.sites if site.stack == "vlm"]
        if not vlm_layers:
            return []
        last = max(vlm_layers, key=lambda site: site.layer)
        return [head.name for head in last.head_ids()]


def last_language_position(inputs: Inputs, tokens_after: int) -> PositionSpec:
    """The last real instruction token when ``tokens_after`` tokens follow the (padded) language in the sequence."""
    lang_len = inputs.lang_masks.shape[1]
    last_valid = inputs.lang_masks.long().cumsum(1).argmax(1)  # (B,) index of the last real token
    return lambda seq_len: seq_len - tokens_after - lang_len + last_valid


def demonstrated_action(batch: dict) -> torch.Tensor:
    """The (normalised) demonstrated action of each frame: (B, action_dim)."""
    action = batch[ACTION]
    return action[:, 0] if action.ndim == 3 else action
