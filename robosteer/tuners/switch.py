"""Several adapters over one loaded base policy, switched in place at run time (no reload of the base).

Each adapter (steer or LoRA, as ``robosteer finetune`` saved it) is merged once onto the base, the weights it changed
are kept as deltas, and the base is restored. Switching writes ``base + delta`` into the changed weights (and the
adapter's normalisation statistics, when it carries its own), so the policy then runs at base cost, exactly as
``apply_adapter(policy, adapter)`` would have left it::

    bank = AdapterBank(policy, {"pick": "runs/pick/adapter", "push": "runs/push/adapter"})
    bank.activate("pick")   # ... predict ...
    bank.activate(None)     # the base policy again

Not thread safe: switch on the thread that runs inference, between calls.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from robosteer.errors import RobosteerError


def _stats_of(policy) -> dict | None:
    from robosteer.tuners.stats import _normalisation_steps

    steps = _normalisation_steps(policy)
    return {key: dict(value) for key, value in steps[0].stats.items()} if steps and steps[0].stats else None


class AdapterBank:
    """Named adapters over ``policy`` (its model is modified in place; the base is active after construction)."""

    def __init__(self, policy, adapters: dict[str, str | Path]):
        from robosteer.tuners.finetune import apply_adapter
        from robosteer.tuners.stats import STATS_FILE

        if not adapters:
            raise RobosteerError("no adapters given: map at least one name to an adapter folder")
        self.policy = policy
        self._params = dict(policy.model.named_parameters())
        base = {name: p.detach().clone() for name, p in self._params.items()}
        self._base_stats = _stats_of(policy)
        self.deltas: dict[str, dict[str, torch.Tensor]] = {}
        self.stats: dict[str, dict | None] = {}
        for name, path in adapters.items():
            apply_adapter(policy, path, merge=True)
            self.deltas[name] = self._changes(base, path)
            self.stats[name] = _stats_of(policy) if (Path(path) / STATS_FILE).is_file() else None
            self._write({key: base[key] for key in self.deltas[name]}, self._base_stats)
        self._base = {key: base[key] for delta in self.deltas.values() for key in delta}
        self.active: str | None = None
        self.last_switch_s = 0.0
        """Seconds the last :meth:`activate` took."""

    def _changes(self, base: dict[str, torch.Tensor], path) -> dict[str, torch.Tensor]:
        params = dict(self.policy.model.named_parameters())
        if set(params) != set(base):
            raise RobosteerError(f"adapter {path} changed the model's structure; it cannot be switched at run time")
        self._params = params
        return {key: (p.detach() - base[key]).clone() for key, p in params.items() if not torch.equal(p, base[key])}

    @torch.no_grad()
    def _write(self, values: dict[str, torch.Tensor], stats: dict | None) -> None:
        for key, value in values.items():
            self._params[key].copy_(value)
        if stats is not None:
            from robosteer.tuners.stats import set_policy_stats

            set_policy_stats(self.policy, stats)

    def activate(self, name: str | None) -> None:
        """Make adapter ``name`` (None or '' = the base) the one the policy runs with."""
        name = name or None
        if name is not None and name not in self.deltas:
            raise RobosteerError(f"unknown adapter {name!r}; known: {', '.join(self.deltas)} (or '' for the base)")
        if name == self.active:
            return
        start = time.perf_counter()
        values = {key: self._base[key] for key in self.deltas.get(self.active, {})}
        for key, delta in self.deltas.get(name, {}).items():
            values[key] = self._base[key] + delta
        stats = self.stats.get(name) if name else None
        self._write(values, stats or (self._base_stats if self.active and self.stats.get(self.active) else None))
        self.active = name
        self.last_switch_s = time.perf_counter() - start

    @property
    def names(self) -> list[str]:
        return list(self.deltas)


def write_random_adapters(policy, out_dir: str | Path, scale: float = 0.05, seed: int = 0) -> dict[str, Path]:
    """A steer adapter (4 heads) and a LoRA adapter (rank 4) with small random weights for ``policy``, saved under
    ``out_dir`` like ``robosteer finetune`` saves them; ``policy`` is left as it was. For benchmarks and tests of
    switching (their behaviour is not trained)."""
    from robosteer.tuners.head import HeadTunerConfig, HeadTunerModel
    from robosteer.tuners.lora import inject_lora, save_lora

    out_dir = Path(out_dir)
    fingerprint = policy.fingerprint()
    generator = torch.Generator().manual_seed(seed)
    tuner = HeadTunerModel(policy.model, policy.layout, HeadTunerConfig(heads=policy.layout.heads()[:4]))
    _randomise(tuner.trainable_parameters(), scale, generator)
    steer = tuner.save_adapter(out_dir / "steer", fingerprint)
    tuner.unload()
    peft_model = inject_lora(policy.model, policy.layout, rank=4, seed=seed)
    _randomise([p for n, p in policy.model.named_parameters() if "lora_B" in n], scale, generator)
    lora = save_lora(peft_model, out_dir / "lora", fingerprint)
    peft_model.unload()
    for param in policy.model.parameters():
        param.requires_grad_(False)
    if policy.fingerprint() != fingerprint:
        raise RobosteerError("writing the random adapters changed the base policy")
    return {"steer": steer, "lora": lora}


@torch.no_grad()
def _randomise(params, scale: float, generator: torch.Generator) -> None:
    for param in params:
        param.copy_(torch.randn(param.shape, generator=generator) * scale)
