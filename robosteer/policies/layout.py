"""Head layouts: where every attention head of a model lives.

A *head* is one query head of one attention layer, named ``<stack>.L<layer>.H<head>`` (``vlm.L3.H1``). Its output
``z`` (B, S, head_dim) is the slice ``[h * head_dim, (h + 1) * head_dim)`` of the input of that layer's ``o_proj``;
its query weights are the same rows of ``q_proj``; under grouped-query attention (GQA/MQA) its key/value weights are
the rows of KV group ``h // (n_heads // n_kv_heads)`` of ``k_proj``/``v_proj``, shared with the other heads of
the group. A layout is a list of :class:`AttentionSite` (one per attention module), built from a small table per
architecture, like pyvene's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from torch import nn

_HEAD_NAME = re.compile(r"^(?P<stack>[A-Za-z_][A-Za-z0-9_]*)\.L(?P<layer>\d+)\.H(?P<head>\d+)$")


@dataclass(frozen=True, order=True)
class HeadId:
    """One attention head: ``stack`` (``vlm``, ``expert``, ``decoder``), layer index, query-head index."""

    stack: str
    layer: int
    head: int

    @property
    def name(self) -> str:
        return f"{self.stack}.L{self.layer}.H{self.head}"

    @classmethod
    def parse(cls, name: str) -> HeadId:
        match = _HEAD_NAME.match(name)
        if not match:
            raise ValueError(f"bad head name {name!r}: expected '<stack>.L<layer>.H<head>', e.g. 'vlm.L3.H1'")
        return cls(match["stack"], int(match["layer"]), int(match["head"]))

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class AttentionSite:
    """One attention module and its head geometry.

    Attributes:
        stack: which transformer stack the layer belongs to (``vlm``, ``expert``, ``decoder``).
        layer: layer index within the stack (0-based, as in the model's ``layers`` list).
        module_path: dotted path, from the root model, of the module holding ``q_proj/k_proj/v_proj/o_proj``.
        n_heads: number of query heads.
        n_kv_heads: number of key/value heads (== n_heads without GQA; 1 for MQA).
        head_dim: features per head.
    """

    stack: str
    layer: int
    module_path: str
    n_heads: int
    n_kv_heads: int
    head_dim: int

    def __post_init__(self):
        if self.n_heads % self.n_kv_heads:
            raise ValueError(
                f"{self.module_path}: n_heads={self.n_heads} is not a multiple of n_kv_heads={self.n_kv_heads}"
            )

    @property
    def group_size(self) -> int:
        """Query heads per KV head."""
        return self.n_heads // self.n_kv_heads

    def head_slice(self, head: int) -> slice:
        """Columns of ``o_proj`` (= rows of ``q_proj``) that belong to query head ``head``."""
        if not 0 <= head < self.n_heads:
            raise IndexError(f"head {head} out of range for {self.stack}.L{self.layer} ({self.n_heads} heads)")
        return slice(head * self.head_dim, (head + 1) * self.head_dim)

    def kv_slice(self, head: int) -> slice:
        """Rows of ``k_proj``/``v_proj`` of the KV head that query head ``head`` reads (shared under GQA)."""
        group = head // self.group_size
        return slice(group * self.head_dim, (group + 1) * self.head_dim)

    def head_ids(self) -> list[HeadId]:
        return [HeadId(self.stack, self.layer, h) for h in range(self.n_heads)]


@dataclass
class HeadLayout:
    """Every attention site of a model, in a fixed order (stack order as given, then layer).

    ``architecture`` names the table entry the layout came from (``smolvla``, ``pi0``, ``llama``, ...).
    """

    architecture: str
    sites: list[AttentionSite]

    def __post_init__(self):
        seen = set()
        for site in self.sites:
            key = (site.stack, site.layer)
            if key in seen:
                raise ValueError(f"duplicate attention site {site.stack}.L{site.layer}")
            seen.add(key)
        self._by_key = {(s.stack, s.layer): s for s in self.sites}

    # -- enumeration -------------------------------------------------------------------------------------------
    def head_ids(self) -> list[HeadId]:
        return [h for site in self.sites for h in site.head_ids()]

    def heads(self) -> list[str]:
        """All head names, e.g. ``['vlm.L0.H0', 'vlm.L0.H1', ...]``."""
        return [h.name for h in self.head_ids()]

    @property
    def n_heads_total(self) -> int:
        return sum(site.n_heads for site in self.sites)

    def stacks(self) -> list[str]:
        return list(dict.fromkeys(site.stack for site in self.sites))

    def __iter__(self) -> Iterator[AttentionSite]:
        return iter(self.sites)

    # -- lookup ------------------------------------------------------------------------------------------------
    def site(self, stack: str, layer: int) -> AttentionSite:
        try:
            return self._by_key[(stack, layer)]
        except KeyError:
            raise KeyError(
                f"no attention layer {stack}.L{layer} in this {self.architecture} layout "
                f"(stacks: {', '.join(self.stacks())})"
            ) from None

    def site_of(self, head: HeadId | str) -> AttentionSite:
        head = HeadId.parse(head) if isinstance(head, str) else head
        site = self.site(head.stack, head.layer)
        site.head_slice(head.head)  # validates the head index
        return site

    def validate_heads(self, names: list[str]) -> list[HeadId]:
        """Parse head names and check each exists here; the error lists the first unknown ones."""
        unknown, ids = [], []
        for name in names:
            try:
                head = HeadId.parse(name)
                self.site_of(head)
                ids.append(head)
            except (ValueError, KeyError, IndexError):
                unknown.append(name)
        if unknown:
            raise ValueError(
                f"{len(unknown)} head(s) not in this {self.architecture} policy: {unknown[:5]}; "
                f"it has {self.n_heads_total} heads in stacks {self.stacks()}"
            )
        return ids

    def module(self, model: nn.Module, site: AttentionSite, proj: str = "o_proj") -> nn.Linear:
        """The ``q_proj``/``k_proj``/``v_proj``/``o_proj`` linear of ``site`` inside ``model``."""
        attn = model.get_submodule(site.module_path)
        return getattr(attn, proj)


def _decoder_geometry(config) -> tuple[int, int, int]:
    n_heads = config.num_attention_heads
    n_kv = getattr(config, "num_key_value_heads", None) or n_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // n_heads
    return n_heads, n_kv, head_dim


def layout_for_hf_decoder(model: nn.Module, stack: str = "decoder", prefix: str = "") -> HeadLayout:
    """Layout of a plain Hugging Face decoder (Llama, Gemma, Qwen2, Mistral, ...).

    Finds ``<...>.layers.<i>.self_attn`` modules below ``prefix``; the geometry comes from ``model.config``.
    """
    root = model.get_submodule(prefix) if prefix else model
    config = getattr(root, "config", None) or getattr(model, "config", None)
    if config is None:
        raise ValueError("layout_for_hf_decoder needs a model with a .config (a transformers PreTrainedModel)")
    n_heads, n_kv, head_dim = _decoder_geometry(getattr(config, "text_config", config))
    pattern = re.compile(r"(^|\.)layers\.(\d+)\.self_attn$")
    sites = []
    for name, module in root.named_modules():
        match = pattern.search(name)
        if match and hasattr(module, "o_proj"):
            path = f"{prefix}.{name}" if prefix else name
            sites.append(AttentionSite(stack, int(match.group(2)), path, n_heads, n_kv, head_dim))
    if not sites:
        raise ValueError(f"no '<...>.layers.<i>.self_attn' modules with an o_proj found under {prefix or 'the model'}")
    arch = getattr(config, "model_type", "decoder")
    return HeadLayout(arch, sorted(sites, key=lambda s: s.layer))
