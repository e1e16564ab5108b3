"""``finetune(policy, dataset_root, config)``: steer, LoRA or full finetuning with one loop, and ``apply_adapter``.

Outputs in the run folder: ``adapter/`` (steer: safetensors + JSON; LoRA: peft's files + robosteer_adapter.json),
``merged/`` (a plain LeRobot checkpoint; always for ``full``, with ``merge`` for the adapters), ``log.jsonl``,
``summary.json`` and ``checkpoints/latest`` (to resume).

Under a distributed launcher (``accelerate launch``) every process runs ``finetune`` on its shard of each global
batch (``batch_size`` samples per process) and only the main process writes into the run folder.
"""

from __future__ import annotations

import inspect
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robosteer.constants import ACTION
from robosteer.errors import RobosteerError
from robosteer.files import atomic_dir, atomic_write_text
from robosteer.tuners.checkpoint import LATEST, read_checkpoint_state
from robosteer.tuners.config import FinetuneConfig
from robosteer.tuners.head import CONFIG_FILE as STEER_CONFIG_FILE
from robosteer.tuners.head import HeadTunerConfig, HeadTunerModel
from robosteer.tuners.lora import META_FILE as LORA_META_FILE
from robosteer.tuners.lora import inject_lora, load_lora, save_lora
from robosteer.tuners.stats import load_policy_stats, save_policy_stats, set_policy_stats
from robosteer.tuners.train import is_main_process, process_shard, train_loop, wait_for_everyone


@dataclass
class FinetuneResult:
    """Where a run's artifacts are and its statistics."""

    out_dir: Path
    """The run folder."""
    adapter_dir: Path | None
    """``adapter/`` (steer, LoRA); None for full finetuning."""
    merged_dir: Path | None
    """``merged/``: a plain LeRobot checkpoint (full always; steer/LoRA with ``merge``)."""
    summary: dict
    """The content of summary.json."""


def read_heads_json(path: str | Path) -> tuple[list[str], str | None]:
    """``(selected heads, policy_fingerprint)`` from a heads.json written by ``robosteer rank``."""
    path = Path(path)
    if not path.exists():
        raise RobosteerError(f"heads file {path} does not exist; run `robosteer rank` first or fix the path")
    from robosteer.heads import load_heads_json

    try:
        data = load_heads_json(path)
    except ValueError as err:
        raise RobosteerError(f"{path}: {err}; re-run `robosteer rank`") from None
    selected = data.get("selected")
    if not selected:
        raise RobosteerError(f"{path} has no 'selected' heads; re-run `robosteer rank` with --top-k >= 1")
    return list(selected), data.get("policy_fingerprint")


def check_heads(
    policy, heads: list[str], heads_fingerprint: str | None, fingerprint: str | None, q_o_only: bool = True
) -> None:
    """Refuse heads ranked on another policy, naming heads this policy lacks, or (``q_o_only``: only query/output
    rows train) none of which can change the action."""
    if heads_fingerprint and fingerprint and heads_fingerprint != fingerprint:
        raise RobosteerError(
            f"the heads were ranked on policy {heads_fingerprint[:12]} but this policy is "
            f"{fingerprint[:12]}; rank the heads of this policy (`robosteer rank`) or pass the "
            "policy the heads.json was made for"
        )
    try:
        policy.layout.validate_heads(heads)
    except ValueError as err:
        raise RobosteerError(f"{err}; the heads.json belongs to another policy architecture") from None
    if q_o_only:
        from robosteer.validation import check_reachable

        check_reachable(heads, policy.layout.heads(), "--heads")


def _prepare_out_dir(out_dir: Path, config: FinetuneConfig, write: bool = True) -> None:
    """Refuse a file or (without --resume/--overwrite) a non-empty folder as ``out_dir``; with ``write`` (the main
    process) empty it for --overwrite and create it."""
    if out_dir.exists() and not out_dir.is_dir():
        raise RobosteerError(f"--out {out_dir} is an existing file; pass a folder for the run")
    if config.resume:
        return
    if out_dir.exists() and any(out_dir.iterdir()):
        if not config.overwrite:
            raise RobosteerError(
                f"output folder {out_dir} is not empty; pass --resume to continue that run, "
                "--overwrite to replace it, or another --out"
            )
        if write:
            shutil.rmtree(out_dir)
    if write:
        out_dir.mkdir(parents=True, exist_ok=True)


def _resume_mismatches(state: dict, config: FinetuneConfig, run_info: dict) -> list[str]:
    saved_config = state.get("config") if isinstance(state.get("config"), dict) else {}
    problems = []
    if saved_config.get("method") != config.method:
        problems.append(f"method {saved_config.get('method')!r} (now {config.method!r})")
    saved, now = state.get("policy_fingerprint"), run_info.get("policy_fingerprint")
    if saved != now and (saved or now):
        problems.append(f"base policy {str(saved)[:12]} (now {str(now)[:12]})")
    saved, now = state.get("dataset_fingerprint"), run_info.get("dataset_fingerprint")
    if saved is None or now is None:  # older checkpoints store only the dataset's path
        saved = str(Path(state["dataset"]).resolve()) if state.get("dataset") else None
        now = str(Path(run_info["dataset"]).resolve()) if run_info.get("dataset") else None
    if saved != now:
        problems.append(f"dataset {state.get('dataset')} (now {run_info.get('dataset')})")
    return problems


def check_resume(out_dir: Path, config: FinetuneConfig, run_info: dict) -> None:
    """With ``--resume``: refuse when there is no checkpoint, or when it was trained with another
    method, base policy or dataset."""
    latest = out_dir / "checkpoints" / LATEST
    if not (latest / "state.json").is_file():
        raise RobosteerError(
            f"--resume: {out_dir} holds no checkpoint to continue (no checkpoints/latest); pass the --out of the "
            "run to continue, or drop --resume to start a new run (with --overwrite to replace that folder)"
        )
    problems = _resume_mismatches(read_checkpoint_state(latest), config, run_info)
    if problems:
        raise RobosteerError(
            f"--resume: the checkpoint in {latest} was trained with another {'; '.join(problems)}; resume with the "
            "same --method, --policy and --dataset, or start a new run in another --out"
        )


def _fingerprint(policy) -> str | None:
    fingerprint = getattr(policy, "fingerprint", None)
    return fingerprint() if callable(fingerprint) else None


def finetune(
    policy,
    dataset_root: str | Path | None,
    config: FinetuneConfig,
    out_dir: str | Path | None = None,
    *,
    make_batches: Callable[[int], Iterator[dict]] | None = None,
) -> FinetuneResult:
    """Finetune ``policy`` (edited in place) on the LeRobot dataset at ``dataset_root``.

    ``make_batches`` replaces the dataset (any ``start_step -> iterator of batches`` that ``policy.loss`` accepts;
    under a distributed launcher it must give each process its own share). After the run ``policy`` holds the
    finetuned model (merged when ``config.merge``).
    """
    if out_dir is None:
        raise RobosteerError("finetune needs an output folder (--out)")
    out_dir = Path(out_dir)
    shard = process_shard(cpu=next(policy.model.parameters()).device.type == "cpu")
    fingerprint = _fingerprint(policy)
    if config.method == "steer":
        q_o_only = config.head_kv == "off" and not config.train_action_projections and config.mlp_rank is None
        check_heads(policy, config.heads, config.heads_fingerprint, fingerprint, q_o_only)
    run_info = {"policy_fingerprint": fingerprint, "dataset": str(dataset_root) if dataset_root else None}
    if make_batches is None:
        make_batches = _dataset_batches(policy, dataset_root, config, out_dir, run_info, shard)
    if config.resume:
        check_resume(out_dir, config, run_info)
    main = is_main_process()
    wait_for_everyone()  # every process has read the output folder before the main one changes it
    _prepare_out_dir(out_dir, config, write=main)
    wait_for_everyone()

    import torch

    torch.manual_seed(config.seed)
    model = policy.model
    _enable_checkpointing(policy, config)
    named, tuner, peft_model = _attach_method(policy, config)
    summary = train_loop(model, named, _loss_fn(policy, shard), make_batches, config, out_dir, run_info)
    summary.update(run_info)
    if tuner is not None:
        summary["lowest_tuned_layers"] = tuner.lowest_layers()

    adapter_dir, merged_dir = _save_outputs(policy, config, out_dir, tuner, peft_model, fingerprint, run_info, main)
    summary["adapter_dir"] = str(adapter_dir) if adapter_dir else None
    summary["merged_dir"] = str(merged_dir) if merged_dir else None
    if main:
        atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2))
    wait_for_everyone()
    return FinetuneResult(out_dir, adapter_dir, merged_dir, summary)


def _enable_checkpointing(policy, config: FinetuneConfig) -> None:
    """Turn on LeRobot's gradient checkpointing of the policy's inner model (``--gradient-checkpointing``)."""
    if not config.gradient_checkpointing:
        return
    inner = getattr(policy.model, "model", None)
    if not hasattr(inner, "gradient_checkpointing_enable"):
        raise RobosteerError(
            f"--gradient-checkpointing: LeRobot's {policy.config.type} has no gradient checkpointing "
            "(pi0 and pi05 have); drop the flag"
        )
    inner.gradient_checkpointing_enable()


def _loss_fn(policy, shard: tuple[int, int]):
    """``policy.loss``; with several processes, for a flow-matching policy (SmolVLA, pi0, pi05), the loss of this
    process's shard of the global batch (:class:`_ShardLoss`)."""
    if shard[1] == 1:
        return policy.loss
    takes = inspect.signature(policy.model.forward).parameters
    flow = getattr(policy.model, "model", None)
    if "reduction" not in takes or not hasattr(flow, "sample_noise") or not hasattr(flow, "sample_time"):
        return policy.loss
    return _ShardLoss(policy, *shard)


class _ShardLoss:
    """The flow-matching loss of slice ``index`` of ``count`` equal slices of the global batch, as ``(sum, count)``
    for :func:`train_loop`, which divides by the valid action steps of the whole global batch.

    The noise and time are drawn for the whole global batch with the policy's own samplers from the torch RNG (seeded
    alike and advanced alike on every process, in the order the policies' forward draws them) and this slice's rows
    are used, so every sample gets the noise and time it gets in one process with the global batch: SmolVLA's forward
    takes them as arguments; pi0/pi05 draw them inside, through their model's samplers, which are pointed at this
    slice's rows for the call. Per-sample losses (means over a sample's valid steps) are turned back into sums, so
    padded chunks at episode ends weigh as they do in one process (pi0/pi05 average over every step, padded or not).
    """

    def __init__(self, policy, index: int, count: int):
        self.policy, self.index, self.count = policy, index, count
        self.flow = policy.model.model
        self.takes_noise = {"noise", "time"} <= set(inspect.signature(policy.model.forward).parameters)
        self.masks_padding = policy.config.type not in ("pi0", "pi05")

    def __call__(self, batch: dict):
        per_process, horizon = batch[ACTION].shape[:2]  # (b, T, action_dim)
        rows = slice(self.index * per_process, (self.index + 1) * per_process)
        device = next(self.policy.model.parameters()).device
        shape = (per_process * self.count, horizon, self.policy.config.max_action_dim)
        noise = self.flow.sample_noise(shape, device)[rows]
        time = self.flow.sample_time(per_process * self.count, device)[rows]
        prepared = self.policy.prepare_batch(batch)
        per_sample = self._per_sample(prepared, noise, time)  # (b,)
        valid = self._valid_elements(batch, per_process, horizon).to(per_sample.device)
        return (per_sample * valid.clamp_min(1)).sum(), valid.sum()

    def _per_sample(self, prepared: dict, noise, time):
        if self.takes_noise:
            return self.policy.model.forward(prepared, noise=noise, time=time, reduction="none")[0]
        self.flow.sample_noise = lambda shape, device: noise
        self.flow.sample_time = lambda bsize, device: time
        try:
            return self.policy.model.forward(prepared, reduction="none")[0]
        finally:
            del self.flow.sample_noise, self.flow.sample_time  # back to the class methods

    def _valid_elements(self, batch: dict, per_process: int, horizon: int):
        """Loss elements of each sample that count: its unpadded action steps times the action size."""
        import torch

        config = self.policy.config
        action_size = min(config.action_feature.shape[0], config.max_action_dim)
        is_pad = batch.get(f"{ACTION}_is_pad") if self.masks_padding else None
        steps = (~is_pad).sum(dim=1) if is_pad is not None else torch.full((per_process,), horizon)
        return steps.float() * action_size


def _dataset_batches(
    policy, dataset_root, config: FinetuneConfig, out_dir: Path, run_info: dict, shard: tuple[int, int] = (0, 1)
):
    """``make_batches`` over the LeRobot dataset at ``dataset_root`` (this process's ``shard`` of every global batch),
    after checking the dataset and the output folder; adds the dataset's fingerprint to ``run_info`` and, with
    ``stats=dataset``, gives the policy the dataset's normalisation statistics."""
    if dataset_root is None:
        raise RobosteerError("finetune needs a dataset (--dataset DIR)")
    from robosteer.tuners.data import make_batch_stream, open_dataset
    from robosteer.validation import check_out_path, dataset_fingerprint, validate_dataset

    check_out_path(out_dir, {"--dataset": Path(dataset_root)})
    validate_dataset(dataset_root)
    run_info["dataset_fingerprint"] = dataset_fingerprint(dataset_root)

    dataset = open_dataset(policy, dataset_root)
    make_batches = make_batch_stream(
        dataset, config.batch_size, config.seed, config.steps, config.num_workers, shard=shard
    )
    if config.stats == "dataset":
        set_policy_stats(policy, dataset.meta.stats)
    return make_batches


def _attach_method(policy, config: FinetuneConfig) -> tuple[dict, HeadTunerModel | None, Any]:
    """Make the method's tensors the trainable ones: the selected heads' adapters (``steer``), LoRA adapters
    (``lora``) or every weight (``full``); returns them by name, with the head tuner or the PEFT model (or None)."""
    model = policy.model
    tuner = peft_model = None
    if config.method == "steer":
        tuner = HeadTunerModel(
            model,
            policy.layout,
            HeadTunerConfig(
                heads=config.heads,
                kv=config.head_kv,
                rank=config.head_rank,
                train_action_projections=config.train_action_projections,
                mlp_rank=config.mlp_rank,
                init_seed=config.seed,
            ),
        )
        named = tuner.adapter_state_dict()
    elif config.method == "lora":
        peft_model = inject_lora(
            model, policy.layout, config.lora_rank, config.lora_alpha, config.lora_targets, config.seed
        )
        named = {n: p for n, p in model.named_parameters() if p.requires_grad}
    else:
        model.requires_grad_(True)
        named = dict(model.named_parameters())
    return named, tuner, peft_model


def _save_outputs(
    policy, config: FinetuneConfig, out_dir: Path, tuner, peft_model, fingerprint, run_info: dict, main: bool = True
):
    """Write ``<out_dir>/adapter`` (steer or LoRA, with the dataset's statistics when used) and, for ``full`` or
    with ``merge``, ``<out_dir>/merged`` (adapters merged into the policy); returns both folders (or None). Only
    ``main`` writes; every process merges its policy."""
    adapter_dir = merged_dir = None
    extra = {"steps": config.steps, "dataset": run_info["dataset"]}
    extra["stats"] = config.stats
    if tuner is not None or peft_model is not None:
        adapter_dir = out_dir / "adapter"
    if main and tuner is not None:
        tuner.save_adapter(adapter_dir, fingerprint, extra)
    elif main and peft_model is not None:
        atomic_dir(adapter_dir, lambda tmp: save_lora(peft_model, tmp, fingerprint, extra))
    if main and adapter_dir is not None and config.stats == "dataset":
        save_policy_stats(policy, adapter_dir)
    if config.method == "full" or config.merge:
        if tuner is not None:
            tuner.merge_and_unload()
        elif peft_model is not None:
            peft_model.merge_and_unload()
        merged_dir = out_dir / "merged"
        if main:
            atomic_dir(merged_dir, lambda tmp: policy.save(tmp))
    return adapter_dir, merged_dir


def adapter_kind(adapter_dir: str | Path) -> str:
    """``steer`` or ``lora`` from the files in ``adapter_dir``."""
    adapter_dir = Path(adapter_dir)
    if (adapter_dir / STEER_CONFIG_FILE).is_file():
        return "steer"
    if (adapter_dir / "adapter_config.json").is_file() or (adapter_dir / LORA_META_FILE).is_file():
        return "lora"
    if (adapter_dir / "adapter").is_dir():
        return adapter_kind(adapter_dir / "adapter")
    if (adapter_dir / "config.json").is_file():
        raise RobosteerError(
            f"{adapter_dir} is a full policy checkpoint, not an adapter; load it as the policy (--policy PATH) instead"
        )
    raise RobosteerError(
        f"{adapter_dir} holds no steer or LoRA adapter; pass the adapter/ folder of a `robosteer finetune` run"
    )


def apply_adapter(policy, adapter_dir: str | Path, merge: bool = True):
    """Load a steer or LoRA adapter onto the base ``policy`` (refused if trained on another policy).

    With ``merge`` (default) the adapter is folded into the weights: the policy runs at base cost. Returns ``policy``.
    """
    from robosteer.validation import validate_adapter_dir

    adapter_dir = Path(adapter_dir)
    kind = adapter_kind(adapter_dir)
    adapter_dir = validate_adapter_dir(adapter_dir)
    try:
        _load_adapter(policy, adapter_dir, kind, merge)
    except (KeyError, TypeError, ValueError) as err:  # well-formed files that do not fit this policy
        raise RobosteerError(
            f"adapter {adapter_dir} does not fit this policy ({type(err).__name__}: {err}); pass the adapter "
            "trained on this --policy, or re-run `robosteer finetune`"
        ) from None
    load_policy_stats(policy, adapter_dir)
    policy.model.eval()
    return policy


def _load_adapter(policy, adapter_dir: Path, kind: str, merge: bool) -> None:
    fingerprint = _fingerprint(policy)
    if kind == "steer":
        tuner = HeadTunerModel.from_adapter(policy.model, policy.layout, adapter_dir, fingerprint)
        if merge:
            tuner.merge_and_unload()
    else:
        peft_model = load_lora(policy.model, adapter_dir, fingerprint)
        if merge:
            peft_model.merge_and_unload()
