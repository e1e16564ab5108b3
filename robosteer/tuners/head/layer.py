"""A frozen ``nn.Linear`` plus trainable deltas on a few head slices (rows of q/k/v, columns of o).

The delta is applied as an extra small matmul on only the chosen slices, never as a full-size weight, so a tuned
layer costs ``k * head_dim * d`` extra multiply-adds for k chosen heads, and the gradient of the frozen weight is
never formed. ``merge()`` writes the deltas into the weight (the layer then runs at base cost) and ``unmerge()``
takes them out again.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

ROWS = "rows"  # q_proj / k_proj / v_proj: a head owns output rows
COLS = "cols"  # o_proj: a head owns input columns


class HeadDeltaLinear(nn.Module):
    """``y = base(x) + delta(x)`` where the delta touches only the given head slices.

    Attributes:
        base_layer: the wrapped, frozen linear (its weight/bias keep their names under ``base_layer``).
        labels: one label per slice (head name, or ``<stack>.L<layer>.KV<group>`` for shared k/v rows).
        axis: ``rows`` (slices of the output) or ``cols`` (slices of the input).
        rank: None for a full delta per slice, else the rank r of ``B @ A``.
    """

    def __init__(
        self,
        base_layer: nn.Linear,
        labels: list[str],
        slices: list[slice],
        axis: str,
        rank: int | None = None,
        scale: float = 1.0,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if axis not in (ROWS, COLS):
            raise ValueError(f"axis must be {ROWS!r} or {COLS!r}, got {axis!r}")
        widths = {s.stop - s.start for s in slices}
        if len(widths) != 1:
            raise ValueError(f"all head slices of one layer must have the same width, got {sorted(widths)}")
        self.base_layer = base_layer
        self.labels = list(labels)
        self.axis, self.rank, self.scale = axis, rank, scale
        self.n_slices, self.slice_width = len(slices), widths.pop()
        self.merged = False
        self.disabled = False
        index = torch.cat([torch.arange(s.start, s.stop) for s in slices])
        self.register_buffer("index", index.to(base_layer.weight.device), persistent=False)
        k, width = self.n_slices, self.slice_width
        other = base_layer.in_features if axis == ROWS else base_layer.out_features
        device = base_layer.weight.device
        if rank is None:
            shape = (k * width, other) if axis == ROWS else (other, k * width)
            self.delta = nn.Parameter(torch.zeros(shape, device=device))
        else:
            a_in = other if axis == ROWS else width  # A reads the layer input (rows) or the head's slice (cols)
            b_out = width if axis == ROWS else other
            a = torch.empty(k, rank, a_in)
            bound = 1.0 / math.sqrt(a_in)
            a.uniform_(-bound, bound, generator=generator)
            self.lora_A = nn.Parameter(a.to(device))  # (k, r, a_in)
            self.lora_B = nn.Parameter(torch.zeros(k, b_out, rank, device=device))  # (k, b_out, r), zero: no change

    # -- nn.Linear look-alike (LeRobot reads .weight.dtype of projections) --------------------------------------
    @property
    def weight(self) -> torch.Tensor:
        return self.base_layer.weight

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base_layer.bias

    @property
    def in_features(self) -> int:
        return self.base_layer.in_features

    @property
    def out_features(self) -> int:
        return self.base_layer.out_features

    def delta_parameters(self) -> dict[str, nn.Parameter]:
        return {"delta": self.delta} if self.rank is None else {"lora_A": self.lora_A, "lora_B": self.lora_B}

    # -- forward -----------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base_layer(x)
        if self.merged or self.disabled:
            return y
        k, width = self.n_slices, self.slice_width
        dtype = next(iter(self.delta_parameters().values())).dtype
        if self.axis == ROWS:
            x_in = x.to(dtype)
            if self.rank is None:
                extra = F.linear(x_in, self.delta)  # (..., k*width)
            else:
                u = F.linear(x_in, self.lora_A.flatten(0, 1)).unflatten(-1, (k, self.rank))  # (..., k, r)
                extra = torch.einsum("...kr,kdr->...kd", u, self.lora_B).flatten(-2)  # (..., k*width)
            return y.index_add(-1, self.index, (extra * self.scale).to(y.dtype))
        z = x.index_select(-1, self.index).to(dtype)  # (..., k*width): the chosen heads' outputs
        if self.rank is None:
            extra = F.linear(z, self.delta)  # (..., out)
        else:
            z_heads = z.unflatten(-1, (k, width))  # (..., k, width)
            u = torch.einsum("...kd,krd->...kr", z_heads, self.lora_A).flatten(-2)  # (..., k*r)
            b = self.lora_B.permute(1, 0, 2).flatten(1)  # (out, k*r)
            extra = F.linear(u, b)  # (..., out)
        return y + (extra * self.scale).to(y.dtype)

    # -- merge -------------------------------------------------------------------------------------------------
    def delta_weight(self) -> torch.Tensor:
        """The delta as it would be added to the weight's chosen rows (k*width, in) or columns (out, k*width)."""
        if self.rank is None:
            return self.delta * self.scale
        if self.axis == ROWS:
            return torch.einsum("kdr,kri->kdi", self.lora_B, self.lora_A).flatten(0, 1) * self.scale  # (k*w, in)
        return torch.einsum("kor,krd->okd", self.lora_B, self.lora_A).flatten(1) * self.scale  # (out, k*w)

    @torch.no_grad()
    def _add_to_weight(self, sign: float) -> None:
        weight = self.base_layer.weight
        delta = (sign * self.delta_weight()).to(weight.dtype)
        weight.index_add_(0 if self.axis == ROWS else 1, self.index, delta)

    def merge(self) -> None:
        if not self.merged:
            self._add_to_weight(+1.0)
            self.merged = True

    def unmerge(self) -> None:
        if self.merged:
            self._add_to_weight(-1.0)
            self.merged = False

    def extra_repr(self) -> str:
        form = "full" if self.rank is None else f"rank={self.rank}"
        return f"axis={self.axis}, slices={self.labels}, {form}, merged={self.merged}"
