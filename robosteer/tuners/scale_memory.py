"""Training-memory estimate of a full-size VLA built on the meta device: weights, gradients, AdamW, activations.

Weights, gradients and optimizer state are counted from the parameters (their real dtypes; AdamW keeps two float32
moments per trainable parameter). Activations are measured, not derived from a formula: one training forward and
backward of the policy's flow-matching loss runs on meta tensors (shapes and dtypes, no data) under a dispatch mode
that adds the bytes of every storage an op creates and subtracts them when the storage is freed. The peak of that
running sum is the activation memory: tensors saved for backward, the temporaries of each op (attention scores),
and, with gradient checkpointing, the layers recomputed during backward. Gradients of the trainable parameters are
taken out of it (counted once, in full, under gradients). Frozen weights keep autograd from recording anything below
the lowest trainable layer, so a method that trains only upper layers saves less; with checkpointing, LeRobot's
pi0/pi05 still keep every checkpointed block's inputs.
"""

from __future__ import annotations

import weakref
from dataclasses import asdict, dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

ADAMW_BYTES_PER_PARAM = 8
"""Two float32 moments (exp_avg, exp_avg_sq) per trainable parameter."""


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes one training step at ``batch_size`` needs (the sum of the parts; allocator overhead not included)."""

    batch_size: int
    """Training batch size the activations were measured at."""
    weights: int
    """Every parameter, frozen and trainable, at its own dtype."""
    gradients: int
    """One gradient per trainable parameter, at the parameter's dtype."""
    optimizer: int
    """AdamW state: ``ADAMW_BYTES_PER_PARAM`` per trainable parameter."""
    activations: int
    """Measured peak of the forward + backward's own tensors, without gradient checkpointing."""
    activations_checkpointed: int | None
    """The same with the policy's gradient checkpointing on (None: LeRobot has none for this policy)."""

    @property
    def total(self) -> int:
        """Weights + gradients + optimizer + activations without checkpointing."""
        return self.weights + self.gradients + self.optimizer + self.activations

    @property
    def total_checkpointed(self) -> int | None:
        """The total with gradient checkpointing (None where the policy has none)."""
        if self.activations_checkpointed is None:
            return None
        return self.weights + self.gradients + self.optimizer + self.activations_checkpointed

    def as_dict(self) -> dict:
        return {**asdict(self), "total": self.total, "total_checkpointed": self.total_checkpointed}


class LiveBytes(TorchDispatchMode):
    """Running sum and peak of the bytes held by storages that ops create while the mode is active.

    A boolean meta scalar read by Python control flow (``mask.all()``) reads as true: every mask of
    :func:`meta_inputs` is all true. An op's output that shares storage with one of its inputs (a view, an in-place op) adds nothing, so views of
    the weights are never counted. :meth:`forget` takes a storage out of the sum (e.g. a gradient, counted apart).
    """

    def __init__(self):
        super().__init__()
        self.live = 0
        self.peak = 0
        self._sizes: dict[int, int] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.peak = max(self.peak, self.live)  # before the op: a just-accumulated gradient is already forgotten
        if func is torch.ops.aten._local_scalar_dense.default and args[0].is_meta and args[0].dtype == torch.bool:
            return True  # `if mask.all():` on a meta mask: the masks here are all true (no padding)
        out = func(*args, **(kwargs or {}))
        inputs = {_key(t) for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)}
        for tensor in tree_flatten(out)[0]:
            if isinstance(tensor, torch.Tensor) and _key(tensor) not in inputs:
                self._track(tensor)
        return out

    def __exit__(self, *exc):
        self.peak = max(self.peak, self.live)
        return super().__exit__(*exc)

    def _track(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        key = storage._cdata
        if key in self._sizes:
            return
        self._sizes[key] = storage.nbytes()
        self.live += self._sizes[key]
        weakref.finalize(storage, self._release, key)

    def _release(self, key: int) -> None:
        self.live -= self._sizes.pop(key, 0)

    def forget(self, tensor: torch.Tensor) -> None:
        """Stop counting ``tensor``'s storage (it is accounted for elsewhere)."""
        self._release(_key(tensor))

    def final_peak(self) -> int:
        return max(self.peak, self.live)


def _key(tensor: torch.Tensor) -> int:
    return tensor.untyped_storage()._cdata


def parameter_bytes(module: torch.nn.Module, trainable_only: bool = False) -> int:
    """Bytes of ``module``'s parameters (each at its own dtype)."""
    return sum(p.nbytes for p in module.parameters() if p.requires_grad or not trainable_only)


def meta_inputs(policy, batch_size: int) -> tuple:
    """Positional inputs of ``policy.model.forward`` (the loss, after LeRobot's preprocessing) as meta tensors.

    Images at the size the VLM sees, one per camera feature; the prompt padded to ``tokenizer_max_length`` as
    LeRobot's tokenizer step does; state and actions padded to ``max_state_dim``/``max_action_dim``.
    """
    config, meta = policy.config, torch.device("meta")
    side = getattr(config, "resize_imgs_with_padding", None) or config.image_resolution
    images = [torch.empty(batch_size, 3, *side, device=meta) for _ in config.image_features]
    image_masks = [torch.ones(batch_size, dtype=torch.bool, device=meta) for _ in config.image_features]
    tokens = torch.zeros(batch_size, config.tokenizer_max_length, dtype=torch.long, device=meta)
    token_masks = torch.ones(batch_size, config.tokenizer_max_length, dtype=torch.bool, device=meta)
    actions = torch.empty(batch_size, config.chunk_size, config.max_action_dim, device=meta)
    noise, time = torch.empty_like(actions), torch.empty(batch_size, device=meta)
    if config.type == "pi05":  # the state is part of the prompt
        return images, image_masks, tokens, token_masks, actions, noise, time
    state = torch.empty(batch_size, config.max_state_dim, device=meta)
    return images, image_masks, tokens, token_masks, state, actions, noise, time


def supports_checkpointing(policy) -> bool:
    """Whether LeRobot implements gradient checkpointing for this policy (pi0/pi05 do, SmolVLA does not)."""
    return callable(getattr(policy.model, "gradient_checkpointing_enable", None))


def activation_peak(policy, batch_size: int, checkpointing: bool = False) -> int:
    """Measured peak bytes of one training forward + backward on the meta device, gradients excluded.

    Only parameters with ``requires_grad`` get gradients; each gradient leaves the count the moment it is
    accumulated (and is dropped, so the parameters stay as they were).
    """
    model = policy.model
    if checkpointing:
        model.gradient_checkpointing_enable()
    mode = LiveBytes()
    trainable = [p for p in policy.parameters() if p.requires_grad]
    hooks = [p.register_post_accumulate_grad_hook(lambda p: _drop_grad(p, mode)) for p in trainable]
    was_training = model.training
    model.train()
    try:
        inputs = meta_inputs(policy, batch_size)
        with _all_nonzero(), mode:
            loss = model.forward(*inputs).mean()
            if loss.requires_grad:
                loss.backward()
            del loss
        return mode.final_peak()
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
        if checkpointing:
            model.gradient_checkpointing_disable()


def _all_nonzero():
    """Let boolean-mask indexing run on meta tensors by assuming every mask element is true (SmolVLM's vision
    embeddings index positions by the patch mask, which is all true for unpadded images)."""
    from torch.fx.experimental import _config

    return _config.patch(meta_nonzero_assume_all_nonzero=True)


def _drop_grad(param: torch.nn.Parameter, mode: LiveBytes) -> None:
    mode.forget(param.grad)
    param.grad = None


def estimate_memory(policy, batch_size: int = 32) -> MemoryEstimate:
    """Memory of one AdamW training step of ``policy`` as its ``requires_grad`` flags stand (see module doc)."""
    n_trainable = sum(p.numel() for p in policy.parameters() if p.requires_grad)
    return MemoryEstimate(
        batch_size=batch_size,
        weights=parameter_bytes(policy),
        gradients=parameter_bytes(policy, trainable_only=True),
        optimizer=ADAMW_BYTES_PER_PARAM * n_trainable,
        activations=activation_peak(policy, batch_size),
        activations_checkpointed=(
            activation_peak(policy, batch_size, checkpointing=True) if supports_checkpointing(policy) else None
        ),
    )
