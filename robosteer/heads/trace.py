"""HeadTrace: read and edit every attention head's output ``z`` through forward pre-hooks on ``o_proj``.

A head's output ``z`` (B, S, head_dim) is a slice of the input of its layer's ``o_proj`` (see
:mod:`robosteer.policies.layout`). LeRobot's SmolVLA and pi0 call ``o_proj`` directly, and several times per
forward: SmolVLA's VLM layers run once on the prefix (images + language + state), its action-expert layers run once
per denoising step on the action tokens (the expert never sees the prefix tokens as queries). HeadTrace therefore
counts the calls of every ``o_proj`` within one traced forward and records, per stack, the call chosen in
:class:`Capture` (``call=0``: the prefix pass for ``vlm``, the first denoising step for ``expert``).

Recorded ``z`` are the head outputs as computed (before any edit of the same trace). Edits replace a head's ``z``
(mean-ablation, zeroing, patching from another run) in every call or in chosen calls. Hooks are always removed when
the ``with`` block ends, also on exceptions. With ``stop_when_captured=True`` the forward is cut short (by an
exception the context swallows) once every requested capture exists, which saves the remaining denoising steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from robosteer.policies.layout import AttentionSite, HeadId, HeadLayout

PositionSpec = int | torch.Tensor | Callable[[int], torch.Tensor] | slice
"""Where to read a head: an int (same index for every sample, negative counts from the end), a LongTensor (B,)
with one index per sample, a callable ``seq_len -> LongTensor (B,)``, or ``ALL_TOKENS`` for the whole sequence."""

ALL_TOKENS = slice(None)


class TraceComplete(Exception):
    """Raised inside the forward once all captures exist (``stop_when_captured``); swallowed by HeadTrace."""


@dataclass(frozen=True)
class Capture:
    """What to record for the heads of one stack."""

    positions: dict[str, PositionSpec]
    """Named token positions to read, e.g. ``{"state": -1}``; an index into the sequence of the chosen call."""
    call: int = 0
    """Which call of each ``o_proj`` within the traced forward (0 = first; SmolVLA expert: denoising step)."""

    def __post_init__(self):
        if self.call < 0:
            raise ValueError(f"Capture.call must be >= 0, got {self.call}")
        if not self.positions:
            raise ValueError("Capture.positions is empty: name at least one token position, e.g. {'last': -1}")


@dataclass(frozen=True)
class HeadEdit:
    """Replace one head's ``z`` during the traced forward."""

    head: str
    """Head name, e.g. ``vlm.L3.H1``."""
    value: torch.Tensor | None = None
    """Replacement, broadcastable to (B, S, head_dim): a mean vector (head_dim,) for mean-ablation, a full patch
    (B, S, head_dim) from another run; None = zero the head."""
    calls: tuple[int, ...] | None = None
    """Which calls of the layer's ``o_proj`` to edit; None = every call."""

    def __post_init__(self):
        HeadId.parse(self.head)


@dataclass
class _SiteState:
    site: AttentionSite
    calls: int = 0
    z: dict[str, torch.Tensor] = field(default_factory=dict)
    edits: list[tuple[int, HeadEdit]] = field(default_factory=list)
    z_sum: torch.Tensor | None = None
    z_count: int = 0
    call_sums: dict[int, torch.Tensor] = field(default_factory=dict)
    call_counts: dict[int, int] = field(default_factory=dict)


def _accumulate_call(state: _SiteState, call: int, z: torch.Tensor) -> None:
    """Add a call's ``z`` (B, S, H, D), summed over the batch, to that call's per-position sums."""
    batch, seq_len = z.shape[:2]
    total = z.detach().double().sum(0).reshape(seq_len, -1)  # (S, H * D)
    previous = state.call_sums.get(call)
    if previous is not None and previous.shape != total.shape:
        raise ValueError(
            f"call {call} of {state.site.stack}.L{state.site.layer} saw {seq_len} tokens after "
            f"{previous.shape[0]}: per-position means need inputs padded to one length"
        )
    state.call_sums[call] = total if previous is None else previous + total
    state.call_counts[call] = state.call_counts.get(call, 0) + batch


def _index_for(spec: PositionSpec, seq_len: int, batch: int, device) -> torch.Tensor | slice:
    if isinstance(spec, slice):
        return spec
    if callable(spec) and not isinstance(spec, torch.Tensor):
        spec = spec(seq_len)
    if isinstance(spec, int):
        index = spec % seq_len if -seq_len <= spec < seq_len else None
        if index is None:
            raise IndexError(f"token position {spec} outside a sequence of {seq_len}")
        return torch.full((batch,), index, dtype=torch.long, device=device)
    spec = torch.as_tensor(spec, dtype=torch.long, device=device)
    if spec.shape != (batch,):
        raise ValueError(f"per-sample token positions must have shape ({batch},), got {tuple(spec.shape)}")
    return spec % seq_len


class HeadTrace:
    """Context manager: ``with HeadTrace(model, layout, captures={...}) as trace: model(...)``.

    Args:
        model: the module the layout's paths are relative to.
        layout: where the attention sites are.
        captures: per stack, which call and which token positions to record (stacks not named: nothing recorded).
        edits: head edits applied during the forward.
        stop_when_captured: cut the forward short once every capture exists.
        record_mean: accumulate each site's mean ``z`` over all calls, samples and tokens (for mean-ablation).
        record_call_means: accumulate each site's mean ``z`` per call and per token position, over samples (for
            mean-ablation that replaces a head by its average at the same denoising step and position; every
            batch must then have the same sequence length per call).
    """

    def __init__(
        self,
        model: nn.Module,
        layout: HeadLayout,
        captures: dict[str, Capture] | None = None,
        edits: list[HeadEdit] | None = None,
        stop_when_captured: bool = False,
        record_mean: bool = False,
        record_call_means: bool = False,
    ):
        self.model, self.layout = model, layout
        self.record_call_means = record_call_means
        self.captures = dict(captures or {})
        unknown = set(self.captures) - set(layout.stacks())
        if unknown:
            raise ValueError(f"captures name stacks {sorted(unknown)} not in the layout ({layout.stacks()})")
        self.stop_when_captured = stop_when_captured and bool(self.captures)
        self.record_mean = record_mean
        self._states = {(s.stack, s.layer): _SiteState(s) for s in layout.sites}
        for edit in edits or []:
            head = HeadId.parse(edit.head)
            site = layout.site_of(head)
            self._states[(site.stack, site.layer)].edits.append((head.head, edit))
        self._handles: list = []

    # -- context -------------------------------------------------------------------------------------------------
    def __enter__(self) -> HeadTrace:
        try:
            for key, state in self._states.items():
                if state.edits or key[0] in self.captures or self.record_mean or self.record_call_means:
                    module = self.layout.module(self.model, state.site, "o_proj")
                    self._handles.append(module.register_forward_pre_hook(self._make_hook(state)))
        except BaseException:
            self._remove()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self._remove()
        return exc_type is TraceComplete

    def _remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    # -- hook ----------------------------------------------------------------------------------------------------
    def _make_hook(self, state: _SiteState):
        site = state.site
        capture = self.captures.get(site.stack)

        def hook(module, args):
            x = args[0]  # (B, S, H * D) or (B, H * D)
            call = state.calls
            state.calls += 1
            squeeze = x.dim() == 2
            z = x.unsqueeze(1) if squeeze else x  # (B, S, H * D)
            batch, seq_len = z.shape[:2]
            z = z.view(batch, seq_len, site.n_heads, site.head_dim)  # (B, S, H, D)
            if capture is not None and call == capture.call:
                for name, spec in capture.positions.items():
                    index = _index_for(spec, seq_len, batch, z.device)
                    if isinstance(index, slice):
                        state.z[name] = z[:, index].detach().clone()  # (B, S, H, D)
                    else:
                        state.z[name] = z[torch.arange(batch, device=z.device), index].detach().clone()  # (B, H, D)
            if self.record_mean:
                flat = z.detach().reshape(-1, site.n_heads * site.head_dim).double()  # (B*S, H*D)
                total = flat.sum(0)
                state.z_sum = total if state.z_sum is None else state.z_sum + total
                state.z_count += flat.shape[0]
            if self.record_call_means:
                _accumulate_call(state, call, z)
            edits = [(h, e) for h, e in state.edits if e.calls is None or call in e.calls]
            if edits:
                z = z.clone()
                for head, edit in edits:
                    if edit.value is None:
                        z[:, :, head] = 0
                    else:
                        z[:, :, head] = edit.value.to(z.dtype).to(z.device).expand(batch, seq_len, site.head_dim)
            if self.stop_when_captured and self._all_captured():
                raise TraceComplete()
            if not edits:
                return None
            new_x = z.reshape(batch, seq_len, site.n_heads * site.head_dim)  # (B, S, H * D)
            return (new_x.squeeze(1) if squeeze else new_x, *args[1:])

        return hook

    def new_forward(self) -> None:
        """Start counting ``o_proj`` calls from 0 again (one trace over several batches; sums are kept)."""
        for state in self._states.values():
            state.calls = 0

    def _all_captured(self) -> bool:
        return all(state.z for key, state in self._states.items() if key[0] in self.captures)

    # -- results -------------------------------------------------------------------------------------------------
    @property
    def call_counts(self) -> dict[str, int]:
        """How many times each hooked ``o_proj`` ran, by ``<stack>.L<layer>``."""
        return {f"{s}.L{layer}": st.calls for (s, layer), st in self._states.items()}

    def head_z(self, head: str, position: str) -> torch.Tensor:
        """Recorded ``z`` of one head: (B, D), or (B, S, D) for ``ALL_TOKENS``."""
        head_id = HeadId.parse(head)
        site = self.layout.site_of(head_id)
        state = self._states[(site.stack, site.layer)]
        if position not in state.z:
            raise KeyError(
                f"nothing recorded for {site.stack}.L{site.layer} at {position!r} "
                f"(o_proj calls seen: {state.calls}, capture: {self.captures.get(site.stack)})"
            )
        return state.z[position][..., head_id.head, :]

    def stack_z(self, stack: str, position: str) -> torch.Tensor:
        """All heads of a stack in layout order: (B, n_heads_of_stack, D) (head_dims must agree)."""
        parts = [st.z[position] for (s, _), st in self._states.items() if s == stack and position in st.z]
        if not parts:
            raise KeyError(f"nothing recorded for stack {stack!r} at {position!r}")
        return torch.cat(parts, dim=-2)

    def all_heads(self, tokens: dict[str, str], dim: int) -> torch.Tensor:
        """Every head of the layout, in layout order, read at its stack's token: (B, n_heads_total, dim).

        Heads with a smaller head_dim are zero-padded to ``dim`` (cosine similarities are unchanged).
        """
        parts = []
        for (stack, layer), st in self._states.items():
            if tokens[stack] not in st.z:
                raise KeyError(
                    f"nothing recorded for {stack}.L{layer} at {tokens[stack]!r} (o_proj calls seen: {st.calls})"
                )
            z = st.z[tokens[stack]]  # (B, H, D)
            parts.append(torch.nn.functional.pad(z, (0, dim - z.shape[-1])))
        return torch.cat(parts, dim=1)  # (B, H_total, dim)

    def call_position_means(self) -> dict[str, dict[int, torch.Tensor]]:
        """Per head name, per call: mean ``z`` (S, head_dim) at every token position (``record_call_means=True``)."""
        means: dict[str, dict[int, torch.Tensor]] = {}
        for (stack, layer), st in self._states.items():
            for call, total in st.call_sums.items():
                mean = (total / st.call_counts[call]).float()  # (S, H * D)
                mean = mean.view(mean.shape[0], st.site.n_heads, st.site.head_dim)  # (S, H, D)
                for h in range(st.site.n_heads):
                    means.setdefault(f"{stack}.L{layer}.H{h}", {})[call] = mean[:, h]
        return means

    def site_means(self) -> dict[str, torch.Tensor]:
        """Per head name: mean ``z`` (head_dim,) over everything seen (needs ``record_mean=True``)."""
        means = {}
        for (stack, layer), st in self._states.items():
            if st.z_count:
                mean = (st.z_sum / st.z_count).float().view(st.site.n_heads, st.site.head_dim)  # (H, D)
                for h in range(st.site.n_heads):
                    means[f"{stack}.L{layer}.H{h}"] = mean[h]
        return means
