"""A tiny real decoder (transformers Llama) behind the policy interface the tuners use.

Not a mock: a randomly initialised ``LlamaForCausalLM`` trained on a small, learnable token pattern. Tests use it
where a LeRobot policy is not needed: ``.model``, ``.layout``, ``.loss(batch)``, ``.save(path)``,
``.fingerprint()``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import torch

from robosteer.policies.layout import layout_for_hf_decoder


class DecoderPolicy:
    """A tiny Llama with the tuner-facing policy interface."""

    def __init__(
        self,
        n_layers: int = 3,
        n_heads: int = 4,
        n_kv_heads: int | None = None,
        hidden: int = 32,
        vocab: int = 48,
        seed: int = 0,
    ):
        from transformers import LlamaConfig, LlamaForCausalLM

        config = LlamaConfig(
            vocab_size=vocab,
            hidden_size=hidden,
            intermediate_size=2 * hidden,
            num_hidden_layers=n_layers,
            num_attention_heads=n_heads,
            num_key_value_heads=n_kv_heads or n_heads,
            max_position_embeddings=64,
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.model = LlamaForCausalLM(config)
        self.layout = layout_for_hf_decoder(self.model)

    def loss(self, batch: dict) -> torch.Tensor:
        device = next(self.model.parameters()).device
        ids = batch["input_ids"].to(device)
        return self.model(input_ids=ids, labels=ids).loss

    def logits(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=ids.to(next(self.model.parameters()).device)).logits

    def save(self, path: str | Path) -> None:
        self.model.save_pretrained(str(path), safe_serialization=True)

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for name, tensor in sorted(self.model.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
        return digest.hexdigest()


def pattern_sequences(n: int = 16, length: int = 12, vocab: int = 48, seed: int = 0) -> torch.Tensor:
    """``n`` token sequences that follow a fixed rule (next = (3 * prev + 1) mod vocab): learnable in a few steps."""
    generator = torch.Generator().manual_seed(seed)
    start = torch.randint(0, vocab, (n, 1), generator=generator)
    seqs = [start]
    for _ in range(length - 1):
        seqs.append((3 * seqs[-1] + 1) % vocab)
    return torch.cat(seqs, dim=1)  # (n, length)


def sequence_batches(sequences: torch.Tensor, batch_size: int, seed: int, steps: int):
    """``make_batches(start_step)`` over ``sequences`` in the same resumable order as the dataset path."""
    from robosteer.tuners.data import StepBatchSampler

    def make_batches(start_step: int) -> Iterator[dict]:
        for indices in StepBatchSampler(len(sequences), batch_size, seed, start_step, steps):
            yield {"input_ids": sequences[indices]}

    return make_batches
