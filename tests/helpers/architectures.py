"""Tiny random-weight builds of every architecture robosteer supports, for tests."""

from __future__ import annotations

KINDS = ("pi0", "pi05", "smolvla")


def tiny_pi_spec(kind: str):
    """A tiny pi0/pi05 spec (pi05 writes the discretised state into its prompt: 64 tokens)."""
    from robosteer.policies.pi_builder import PiSpec

    return PiSpec(kind=kind, tokenizer_max_length=16 if kind == "pi0" else 64)


def tiny_policy(kind: str, dataset=None, seed: int = 0):
    """A tiny ``kind`` RobotPolicy (2 + 2 layers), shaped by ``dataset`` when given."""
    if kind == "smolvla":
        from robosteer.policies import make_tiny_smolvla

        return make_tiny_smolvla(dataset, n_layers=2, seed=seed)
    from robosteer.policies.pi_builder import make_tiny_pi

    return make_tiny_pi(tiny_pi_spec(kind), dataset, seed=seed)
