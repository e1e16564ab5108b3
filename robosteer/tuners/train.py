"""One training loop for every method: same data order, schedule, optimizer, clipping, logging and checkpoints.

The loop knows nothing about the method: it gets the trainable tensors by name and a ``loss_fn(batch)``. Data come
from ``make_batches(start_step)``, an iterator that yields the batch of every step from ``start_step`` on in a fixed,
seeded order, which is what makes a resumed run identical to an uninterrupted one.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from pathlib import Path

import torch

from robosteer.errors import RobosteerError
from robosteer.tuners.checkpoint import LATEST, load_checkpoint, save_checkpoint
from robosteer.tuners.config import FinetuneConfig


def cosine_with_warmup(warmup: int, total: int, min_ratio: float) -> Callable[[int], float]:
    """LR multiplier: linear warm-up to 1, then cosine decay to ``min_ratio`` at ``total``."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


class ActivationMeter:
    """Bytes saved for backward during one step (deduplicated by storage, parameters excluded): the activation
    memory of training, measured the same way on CPU and GPU."""

    def __init__(self, params: list[torch.Tensor]):
        self.param_ptrs = {p.untyped_storage().data_ptr() for p in params}
        self.seen: set[int] = set()
        self.bytes = 0

    def _pack(self, tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in self.param_ptrs and ptr not in self.seen:
            self.seen.add(ptr)
            self.bytes += storage.nbytes()
        return tensor

    def hooks(self):
        return torch.autograd.graph.saved_tensors_hooks(self._pack, lambda tensor: tensor)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def resolve_precision(config: FinetuneConfig, device: torch.device) -> str:
    if config.mixed_precision != "auto":
        return config.mixed_precision if device.type == "cuda" else "no"
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return "bf16"
    return "no"


def train_loop(
    model: torch.nn.Module,
    named_trainable: dict[str, torch.nn.Parameter],
    loss_fn: Callable[[dict], torch.Tensor],
    make_batches: Callable[[int], Iterator[dict]],
    config: FinetuneConfig,
    out_dir: Path,
    run_info: dict | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> dict:
    """Train ``named_trainable`` (everything else frozen) and return the run's statistics.

    Writes ``<out_dir>/log.jsonl`` and ``<out_dir>/checkpoints/latest``. A non-finite loss or gradient stops the
    run before the bad update and raises :class:`RobosteerError` naming the step and the last good checkpoint.
    ``on_step(steps_done, loss)`` is called after every optimizer step (e.g. for a caller's own progress display).
    """
    accelerator, precision = _place_model(model, config)
    device = accelerator.device
    params = list(named_trainable.values())
    if not params:
        raise RobosteerError("nothing to train: the method left no trainable parameters")
    optimizer, scheduler = _optimizer_and_schedule(params, config)
    ckpt_root = out_dir / "checkpoints"
    log_path = out_dir / "log.jsonl"
    start_step = last_good = _resume_or_restart(config, ckpt_root, log_path, named_trainable, optimizer, scheduler)
    extra = {"config": config.to_dict(), **(run_info or {})}
    stepper = _Stepper(accelerator, precision, params, optimizer, scheduler, config.grad_clip)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    meter = ActivationMeter(list(model.parameters()))
    timings: list[dict] = []
    dead: list[str] = []
    progress = _progress(config, start_step)
    batches = make_batches(start_step)
    t_start = time.perf_counter()
    loss_value = float("nan")
    with log_path.open("a") as log:
        for step in range(start_step, config.steps):
            batch = next(batches)
            t0 = _synced_time(device)
            measure = step == start_step  # activations do not change between steps; step 1 is not timed
            loss = stepper.forward(loss_fn, batch, meter.hooks() if measure else nullcontext())
            t1 = _synced_time(device)
            loss_value = float(loss.detach())
            if not math.isfinite(loss_value):
                _stop_on_nan(log, step, loss_value, last_good, ckpt_root)
            stepper.backward(loss)
            t2 = _synced_time(device)
            # A tensor is dead while none of its gradients so far was non-zero (judged from the first step on).
            dead = [name for name in (named_trainable if measure else dead) if _no_gradient(named_trainable[name])]
            grad_norm = stepper.clip()
            if not math.isfinite(grad_norm):
                _stop_on_nan(log, step, grad_norm, last_good, ckpt_root, what="gradient norm")
            stepper.update()
            t3 = _synced_time(device)
            timings.append({"forward_s": t1 - t0, "backward_s": t2 - t1, "step_s": t3 - t0})
            done = step + 1
            if done % config.log_every == 0 or done == config.steps:
                _log_step(log, done, loss_value, scheduler.get_last_lr()[0], grad_norm, t3 - t0)
            _report_progress(progress, on_step, done, loss_value)
            if (config.save_every and done % config.save_every == 0) or done == config.steps:
                save_checkpoint(ckpt_root, done, named_trainable, optimizer, scheduler, extra)
                last_good = done
    if progress is not None:
        progress.close()
    wall = time.perf_counter() - t_start
    summary = _summary(
        timings, wall, precision, device, meter, named_trainable, optimizer, model, loss_value, start_step, config
    )
    _warn_dead(dead)
    summary["zero_gradient_params"] = {"count": len(dead), "names": dead[:20]}
    return summary


def _place_model(model: torch.nn.Module, config: FinetuneConfig):
    """Put ``model`` in training mode on the device its parameters already live on (its LeRobot preprocessor
    moves batches there) and return ``(accelerator, precision)`` for that device."""
    from accelerate import Accelerator

    param_device = next(model.parameters()).device
    accelerator = Accelerator(cpu=param_device.type == "cpu")
    precision = resolve_precision(config, accelerator.device)
    model.to(accelerator.device)
    model.train()
    return accelerator, precision


def _optimizer_and_schedule(params: list[torch.nn.Parameter], config: FinetuneConfig):
    """AdamW over ``params`` and its LR schedule: linear warm-up, then cosine decay (:func:`cosine_with_warmup`)."""
    optimizer = torch.optim.AdamW(params, lr=config.peak_lr, betas=config.betas, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, cosine_with_warmup(config.warmup, config.steps, config.min_lr_ratio)
    )
    return optimizer, scheduler


def _resume_or_restart(config, ckpt_root: Path, log_path: Path, named_trainable, optimizer, scheduler) -> int:
    """The step training starts from: the latest checkpoint's (state loaded, log cut back to it) when resuming
    and one exists, else 0 with any old log removed."""
    if config.resume and (ckpt_root / LATEST).is_dir():
        state = load_checkpoint(ckpt_root / LATEST, named_trainable, optimizer, scheduler)
        _truncate_log(log_path, state["step"])
        return state["step"]
    if log_path.exists():
        log_path.unlink()
    return 0


class _Stepper:
    """The phases of one optimizer step: forward under mixed precision, backward (loss-scaled for fp16),
    gradient clipping, then the optimizer and scheduler update."""

    def __init__(self, accelerator, precision: str, params, optimizer, scheduler, grad_clip: float):
        device = accelerator.device
        self.accelerator = accelerator
        self.params = params
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.max_norm = grad_clip if grad_clip > 0 else math.inf
        self.device = device
        self.autocast = (
            torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)
            if precision != "no"
            else nullcontext()
        )
        self.scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None

    def forward(self, loss_fn: Callable[[dict], torch.Tensor], batch: dict, hooks) -> torch.Tensor:
        """The batch's loss, computed under mixed precision and ``hooks`` (the activation meter's, or none)."""
        with self.autocast, hooks:
            loss = loss_fn(batch)
        _sync(self.device)
        return loss

    def backward(self, loss: torch.Tensor) -> None:
        """Gradients of ``loss`` (unscaled again when fp16 scales the loss)."""
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            self.accelerator.backward(loss)
        _sync(self.device)

    def clip(self) -> float:
        """Clip the gradients to ``grad_clip`` (no clipping when it is 0) and return their norm before clipping."""
        return float(torch.nn.utils.clip_grad_norm_(self.params, self.max_norm))

    def update(self) -> None:
        """Apply the gradients, clear them and advance the LR schedule."""
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        _sync(self.device)


def _synced_time(device: torch.device) -> float:
    """``time.perf_counter()`` once the device's queued work is done."""
    _sync(device)
    return time.perf_counter()


def _log_step(log, done: int, loss: float, lr: float, grad_norm: float, step_time_s: float) -> None:
    """One line of ``log.jsonl``."""
    record = {"step": done, "loss": loss, "lr": lr, "grad_norm": grad_norm, "step_time_s": step_time_s}
    log.write(json.dumps(record) + "\n")
    log.flush()


def _report_progress(progress, on_step: Callable[[int, float], None] | None, done: int, loss: float) -> None:
    """Advance the progress bar (when shown) and call the caller's ``on_step``."""
    if progress is not None:
        progress.set_postfix(loss=f"{loss:.4f}")
        progress.update(1)
    if on_step is not None:
        on_step(done, loss)


def _no_gradient(param: torch.Tensor) -> bool:
    return param.grad is None or not bool(param.grad.any())


def _warn_dead(dead: list[str]) -> None:
    """Trainable tensors that never got a non-zero gradient cannot reach the loss (e.g. the query/output of
    SmolVLA's last VLM layer, which the action expert never reads). Low-rank A factors get a zero gradient on the
    first step (their B starts at zero), so this is judged over the whole run."""
    if dead:
        logging.getLogger(__name__).warning(
            "%d trainable tensor(s) never got a gradient and did not train (e.g. %s)", len(dead), ", ".join(dead[:3])
        )


def _progress(config: FinetuneConfig, start_step: int):
    if not config.progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=config.steps, initial=start_step, desc=f"finetune ({config.method})", unit="step")


def _stop_on_nan(log, step: int, value: float, last_good: int | None, ckpt_root: Path, what: str = "loss"):
    log.write(json.dumps({"step": step + 1, "loss": None, "error": f"non-finite {what} ({value})"}) + "\n")
    log.flush()
    where = (
        f"the last good checkpoint is {ckpt_root / LATEST} (step {last_good})"
        if last_good
        else "no checkpoint was written before it"
    )
    raise RobosteerError(
        f"{what} became {value} at step {step + 1}; training stopped before that update, {where}. "
        "Lower --lr, check the dataset for NaN values, or resume from the checkpoint"
    )


def _truncate_log(log_path: Path, step: int) -> None:
    if not log_path.exists():
        return
    kept = [
        line
        for line in log_path.read_text().splitlines()
        if line.strip() and (json.loads(line).get("step") or 0) <= step
    ]
    log_path.write_text("".join(line + "\n" for line in kept))


def _summary(
    timings, wall, precision, device, meter, named_trainable, optimizer, model, final_loss, start_step, config
) -> dict:
    steady = timings[1:] if len(timings) > 1 else timings
    mean = (lambda key: sum(t[key] for t in steady) / len(steady)) if steady else (lambda key: float("nan"))
    trainable = sum(p.numel() for p in named_trainable.values())
    total = sum(p.numel() for p in model.parameters())
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    grad_bytes = sum(p.numel() * p.element_size() for p in named_trainable.values())
    opt_bytes = sum(
        v.numel() * v.element_size() for s in optimizer.state.values() for v in s.values() if torch.is_tensor(v)
    )
    estimate = param_bytes + grad_bytes + opt_bytes + meter.bytes
    summary = {
        "method": config.method,
        "steps": config.steps,
        "resumed_from_step": start_step,
        "peak_lr": config.peak_lr,
        "trainable_params": trainable,
        "total_params": total,
        "trainable_fraction": trainable / max(1, total),
        "mean_step_time_s": mean("step_s"),
        "mean_forward_time_s": mean("forward_s"),
        "mean_backward_time_s": mean("backward_s"),
        "wall_time_s": wall,
        "final_loss": final_loss,
        "device": str(device),
        "mixed_precision": precision,
        "activation_bytes": meter.bytes,
        "peak_memory_estimate_bytes": estimate,
        "peak_memory_bytes": torch.cuda.max_memory_allocated(device) if device.type == "cuda" else estimate,
        "peak_memory_source": (
            "torch.cuda.max_memory_allocated"
            if device.type == "cuda"
            else "estimate: parameters + gradients + optimizer state + activations saved for backward"
        ),
    }
    return summary
