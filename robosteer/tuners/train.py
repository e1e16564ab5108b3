"""One training loop for every method: same data order, schedule, optimizer, clipping, logging and checkpoints.

The loop knows nothing about the method: it gets the trainable tensors by name and a ``loss_fn(batch)``. Data come
from ``make_batches(start_step)``, an iterator that yields the batch of every step from ``start_step`` on in a fixed,
seeded order, which is what makes a resumed run identical to an uninterrupted one.

Started by a distributed launcher (``accelerate launch``, ``torchrun``) the loop is data-parallel: every process
trains on its own shard of each step's batch, the gradients of the trainable tensors are averaged over the processes
with accelerate before clipping, so every process applies the same update, and only the main process writes the log,
the checkpoints and the progress bar. A plain process trains exactly as before.
"""

from __future__ import annotations

import json
import logging
import math
import os
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


def launched() -> bool:
    """Whether a distributed launcher started more than one process (the variables accelerate reads)."""
    from accelerate.utils import get_int_from_env

    return get_int_from_env(["WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"], 1) > 1


def process_state(cpu: bool):
    """accelerate's state of this process (starts the process group: NCCL on GPUs, gloo with ``cpu``)."""
    from accelerate import PartialState

    return PartialState(cpu=cpu)


def process_shard(cpu: bool) -> tuple[int, int]:
    """``(index, count)``: this process's index among the launched processes and their number; ``(0, 1)`` in a plain
    process (nothing of accelerate is started then)."""
    if not launched():
        return 0, 1
    state = process_state(cpu)
    return state.process_index, state.num_processes


def is_main_process() -> bool:
    """Whether this process writes the run's files: rank 0 (always in a plain process)."""
    from accelerate.utils import get_int_from_env

    ranks = ["RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK"]
    return not launched() or get_int_from_env(ranks, 0) == 0


def wait_for_everyone() -> None:
    """Wait until every launched process gets here (after :func:`process_shard`; nothing in a plain process)."""
    if launched():
        from accelerate import PartialState

        PartialState().wait_for_everyone()


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

    ``loss_fn(batch)`` returns the loss (a scalar tensor), or ``(sum, count)``: the sum of the per-element losses of
    this process's batch and their number, so that the loss is the mean over the batches of every process (exact
    when the processes hold different numbers of valid elements). Writes ``<out_dir>/log.jsonl`` and
    ``<out_dir>/checkpoints/latest`` (main process only). A non-finite loss or gradient stops the run before the bad
    update and raises :class:`RobosteerError` naming the step and the last good checkpoint. ``on_step(steps_done,
    loss)`` is called after every optimizer step (e.g. for a caller's own progress display), with the loss averaged
    over the processes.
    """
    accelerator, precision = _place_model(model, config)
    device = accelerator.device
    main = accelerator.is_main_process
    params = list(named_trainable.values())
    if not params:
        raise RobosteerError("nothing to train: the method left no trainable parameters")
    optimizer, scheduler = _optimizer_and_schedule(params, config)
    ckpt_root = out_dir / "checkpoints"
    log_path = out_dir / "log.jsonl"
    start_step = last_good = _resume_or_restart(
        config, ckpt_root, log_path, named_trainable, optimizer, scheduler, main
    )
    _start_equal(accelerator, params)
    extra = {"config": config.to_dict(), **(run_info or {})}
    stepper = _Stepper(accelerator, precision, params, optimizer, scheduler, config.grad_clip)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    meter = ActivationMeter(list(model.parameters()))
    timings: list[dict] = []
    dead: list[str] = []
    progress = _progress(config, start_step) if main else None
    batches = make_batches(start_step)
    t_start = time.perf_counter()
    loss_value = float("nan")
    with _log_file(log_path, main) as log:
        for step in range(start_step, config.steps):
            batch = next(batches)
            t0 = _synced_time(device)
            measure = step == start_step  # activations do not change between steps; step 1 is not timed
            loss = stepper.forward(loss_fn, batch, meter.hooks() if measure else nullcontext())
            t1 = _synced_time(device)
            loss_value = stepper.mean_loss(loss)
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
                if main:
                    save_checkpoint(ckpt_root, done, named_trainable, optimizer, scheduler, extra)
                accelerator.wait_for_everyone()
                last_good = done
    if progress is not None:
        progress.close()
    wall = time.perf_counter() - t_start
    summary = _summary(
        timings, wall, precision, device, meter, named_trainable, optimizer, model, loss_value, start_step, config
    )
    if main:
        _warn_dead(dead)
    summary["zero_gradient_params"] = {"count": len(dead), "names": dead[:20]}
    summary["num_processes"] = accelerator.num_processes
    return summary


def _place_model(model: torch.nn.Module, config: FinetuneConfig):
    """Put ``model`` in training mode on the device its parameters already live on (its LeRobot preprocessor
    moves batches there; a launched process's own GPU) and return ``(accelerator, precision)`` for that device."""
    param_device = next(model.parameters()).device
    precision = resolve_precision(config, param_device)
    accelerator = _accelerator(param_device.type == "cpu", precision)
    model.to(accelerator.device)
    model.train()
    return accelerator, precision


def _accelerator(cpu: bool, precision: str):
    """An ``Accelerator`` with this mixed precision (``no``, ``bf16`` or ``fp16``)."""
    from accelerate import Accelerator

    if not launched():
        from accelerate.state import AcceleratorState

        # accelerate keeps one state per process; a plain process may train several runs on other devices/precisions
        AcceleratorState._reset_state(reset_partial_state=True)
    return Accelerator(cpu=cpu, mixed_precision=precision)


@torch.no_grad()
def _start_equal(accelerator, params: list[torch.nn.Parameter]) -> None:
    """Give every process the main process's trainable tensors (they start equal and stay so)."""
    if accelerator.num_processes > 1:
        from accelerate.utils import broadcast

        for param in params:
            broadcast(param.data, from_process=0)


def _log_file(log_path: Path, main: bool):
    """``log.jsonl`` opened for appending on the main process; a sink elsewhere."""
    return log_path.open("a") if main else open(os.devnull, "w")


def _optimizer_and_schedule(params: list[torch.nn.Parameter], config: FinetuneConfig):
    """AdamW over ``params`` and its LR schedule: linear warm-up, then cosine decay (:func:`cosine_with_warmup`)."""
    optimizer = torch.optim.AdamW(params, lr=config.peak_lr, betas=config.betas, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, cosine_with_warmup(config.warmup, config.steps, config.min_lr_ratio)
    )
    return optimizer, scheduler


def _resume_or_restart(
    config, ckpt_root: Path, log_path: Path, named_trainable, optimizer, scheduler, main: bool = True
) -> int:
    """The step training starts from: the latest checkpoint's (state loaded, log cut back to it) when resuming
    and one exists, else 0 with any old log removed. Every process loads the checkpoint; only ``main`` edits the log."""
    if config.resume and (ckpt_root / LATEST).is_dir():
        state = load_checkpoint(ckpt_root / LATEST, named_trainable, optimizer, scheduler)
        if main:
            _truncate_log(log_path, state["step"])
        return state["step"]
    if main and log_path.exists():
        log_path.unlink()
    return 0


class _Stepper:
    """The phases of one optimizer step: forward under accelerate's mixed precision, backward (loss-scaled for
    fp16) with the gradients averaged over the processes, gradient clipping, then the optimizer and scheduler
    update."""

    def __init__(self, accelerator, precision: str, params, optimizer, scheduler, grad_clip: float):
        self.accelerator = accelerator
        self.params = params
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.max_norm = grad_clip if grad_clip > 0 else math.inf
        self.device = accelerator.device
        self.scaler = accelerator.scaler if precision == "fp16" else None

    def forward(self, loss_fn: Callable, batch: dict, hooks) -> torch.Tensor:
        """The batch's loss, computed under mixed precision and ``hooks`` (the activation meter's, or none); a
        ``(sum, count)`` result becomes ``sum * processes / count over all processes``, whose gradients averaged
        over the processes are those of the mean over every process's batch."""
        with self.accelerator.autocast(), hooks:
            loss = loss_fn(batch)
        if isinstance(loss, tuple):
            total, count = loss
            count = self.accelerator.reduce(count.detach().to(total.device, torch.float32), "sum")
            loss = total * self.accelerator.num_processes / count.clamp_min(1)
        _sync(self.device)
        return loss

    def mean_loss(self, loss: torch.Tensor) -> float:
        """The loss averaged over the processes (the same value on every process)."""
        if self.accelerator.num_processes > 1:
            loss = self.accelerator.reduce(loss.detach(), "mean")
        return float(loss.detach())

    def backward(self, loss: torch.Tensor) -> None:
        """Gradients of ``loss``, averaged over the processes (unscaled again when fp16 scales the loss)."""
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            _average_gradients(self.accelerator, self.params)
            self.scaler.unscale_(self.optimizer)
        else:
            self.accelerator.backward(loss)
            _average_gradients(self.accelerator, self.params)
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


@torch.no_grad()
def _average_gradients(accelerator, params: list[torch.nn.Parameter], bucket_numel: int = 1 << 25) -> None:
    """Average the gradients of ``params`` over the processes (one all-reduce per bucket of ``bucket_numel``
    elements); a tensor that got no gradient on any process keeps none. Nothing to do in one process."""
    if accelerator.num_processes == 1:
        return
    for bucket in _buckets(params, bucket_numel):
        device = bucket[0].device
        parts = [
            p.grad.reshape(-1).float() if p.grad is not None else torch.zeros(p.numel(), device=device) for p in bucket
        ]
        has_grad = torch.tensor([float(p.grad is not None) for p in bucket], device=device)
        summed = accelerator.reduce(torch.cat([*parts, has_grad]), "sum")
        present = summed[-len(bucket) :].tolist()
        offset = 0
        for param, seen in zip(bucket, present, strict=True):
            mean = summed[offset : offset + param.numel()].view_as(param) / accelerator.num_processes
            param.grad = mean.to(param.dtype) if seen else None
            offset += param.numel()


def _buckets(params: list[torch.nn.Parameter], limit: int) -> Iterator[list[torch.nn.Parameter]]:
    """Consecutive groups of ``params`` of at most ``limit`` elements (or one tensor when it is larger)."""
    bucket: list[torch.nn.Parameter] = []
    size = 0
    for param in params:
        if bucket and size + param.numel() > limit:
            yield bucket
            bucket, size = [], 0
        bucket.append(param)
        size += param.numel()
    if bucket:
        yield bucket


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

    from robosteer.progress import tqdm_interval

    return tqdm(
        total=config.steps,
        initial=start_step,
        desc=f"finetune ({config.method})",
        unit="step",
        mininterval=tqdm_interval(),
    )


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
