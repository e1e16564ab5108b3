"""Run a study cell by cell: shared data once (demos, ranking, matched LoRA rank), then each (arm, demos, seed).

A finished cell is ``cells/<name>/cell.json`` holding the hash of everything it was computed from (base policy,
dataset, heads, method settings, evaluation seeds) and its per-episode outcomes. Re-running the same study skips
every cell whose stored hash matches, so a study can run in parts; a changed input re-runs only what it affects.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from robosteer.files import atomic_write_text, replace_dir
from robosteer.study import stages
from robosteer.study.config import DEMO_SEED_OFFSET
from robosteer.study.plan import ARM_METHOD, RELEASE_ARMS, RELEASE_RECIPE, Cell, StudyPlan

CELL_FILE = "cell.json"


def _atomic_json(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def _hash(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


# -- shared data -----------------------------------------------------------------------------------------------------
def prepare_demos(plan: StudyPlan, out: Path, base, console) -> dict[int, dict]:
    """Per demo count: the recorded dataset, its ranking (top-k heads and the control draws' inputs) and the LoRA
    rank matching steer's trainable parameters. Reused when already on disk."""
    from robosteer.heads.dataset import dataset_identity, metadata_fingerprint, open_dataset

    shared = {}
    for n in plan.demos:
        root = out / "data" / f"demos{n}"
        if not (root / "meta" / "info.json").is_file():
            console.print(f"recording {n} expert demos of {plan.task} (noise {plan.demo_noise})", markup=False)
            _record(plan, n, root)
        ranking_dir = out / "ranking" / f"demos{n}"
        needs_ranking = any(a.startswith("steer") or a == "lora-matched" for a in plan.arms)
        if needs_ranking and not (ranking_dir / "heads.json").is_file():
            console.print(f"ranking every head on {n} demos", markup=False)
            stages.rank(base, root, ranking_dir, top_k=plan.top_k, seed=0)
        dataset = open_dataset(root)
        episodes = list(range(dataset.num_episodes))
        shared[n] = {
            "root": root,
            "fingerprint": dataset_identity(dataset, episodes)["fingerprint"],
            "metadata_fingerprint": metadata_fingerprint(root, episodes),
            "ranking": _read_json(ranking_dir / "heads.json"),
        }
    return shared


def _record(plan: StudyPlan, n: int, root: Path) -> None:
    from sim.suites import record_expert_dataset

    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".demos{n}-", dir=root.parent))  # same file system: the rename is atomic
    try:
        record_expert_dataset(
            plan.task,
            n,
            tmp / "d",
            seed=DEMO_SEED_OFFSET,
            noise_std=plan.demo_noise,
            image_size=plan.image_size,
            variations=plan.variations,
        )
        replace_dir(tmp / "d", root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


# -- heads of the steer arms -----------------------------------------------------------------------------------------
def arm_heads(arm: str, seed: int, ranking: dict) -> list[str] | None:
    """The heads an arm trains: the ranking's choice, a stratified random draw (new per training seed) or the
    bottom of the same stack x layer cells; None for arms without head slices."""
    from robosteer.heads import selection

    if not arm.startswith("steer"):
        return [] if arm in RELEASE_ARMS else None

    heads, chosen_names = ranking["heads"], ranking["selected"]
    index = {h: i for i, h in enumerate(heads)}
    chosen = [index[h] for h in chosen_names]
    inert = set(ranking["policy"].get("inert_heads", []))
    eligible = [i for i, h in enumerate(heads) if h not in inert]
    if arm in ("steer", "steer-release"):
        return list(chosen_names)
    if arm == "steer-random":
        return [heads[i] for i in selection.stratified_random(chosen, eligible, heads, 1000 + seed)]
    import torch

    score = torch.tensor([v if v is not None else 0.0 for v in ranking["scores"]["selection"]])
    return [heads[i] for i in selection.stratified_bottom(chosen, score, eligible, heads)]


def matched_lora_rank(base, heads: list[str]) -> tuple[int, dict]:
    """All-linear LoRA rank whose trainable parameters come closest to steer's on ``heads``."""
    import copy

    from robosteer.tuners.head.config import HeadTunerConfig
    from robosteer.tuners.head.model import HeadTunerModel
    from robosteer.tuners.lora import inject_lora

    steer = HeadTunerModel(copy.deepcopy(base.model), base.layout, HeadTunerConfig(heads=heads)).n_trainable()
    per_rank = sum(
        p.numel()
        for p in inject_lora(copy.deepcopy(base.model), base.layout, 1, targets="all-linear").parameters()
        if p.requires_grad
    )
    rank = max(1, round(steer / per_rank))
    return rank, {"steer_params": steer, "lora_params": rank * per_rank, "ratio": rank * per_rank / steer}


# -- one cell --------------------------------------------------------------------------------------------------------
def cell_inputs(plan: StudyPlan, cell: Cell, base_fingerprint: str, data: dict, heads, lora: dict) -> dict:
    """Everything a cell's result depends on (its hash decides whether a stored cell is still valid)."""
    trained = cell.arm != "zero"
    inputs = {
        "arm": cell.arm,
        "demos": cell.demos,
        "seed": cell.seed if trained else 0,
        "task": plan.task,
        "base": base_fingerprint,
        "dataset": data["fingerprint"] if trained else None,
        "heads": heads,
        "method": ARM_METHOD.get(cell.arm),
        "lr": plan.lr(cell.arm) if trained else None,
        "steps": plan.steps if trained else None,
        "batch_size": plan.batch_size if trained else None,
        "lora": lora if cell.arm.startswith("lora") else None,
        "eval": [plan.eval_seed, plan.episodes, plan.image_size, plan.max_steps]
        + ([plan.batch] if plan.batch > 1 else []),
        "forgetting": [list(plan.forgetting_tasks), plan.forgetting_episodes],
    }
    if cell.arm in RELEASE_ARMS:
        inputs["release"] = dict(RELEASE_RECIPE)
    if plan.variations != "none":  # only then: cells stored before the field existed keep their hash
        inputs["variations"] = plan.variations
    return inputs


def stored_cell(out: Path, cell: Cell, inputs: dict, data: dict | None = None) -> dict | None:
    """The stored result of ``cell`` if it was computed from exactly ``inputs``.

    A cell stored with the earlier, machine-dependent dataset hash (``data["metadata_fingerprint"]``) of this very
    dataset folder is recognised too, and rewritten with the portable hash so that it is reused on other machines."""
    path = out / "cells" / cell.name / CELL_FILE
    stored = _read_json(path)
    if not stored:
        return None
    if stored.get("inputs_hash") == _hash(inputs):
        return stored
    legacy = data and inputs.get("dataset") and {**inputs, "dataset": data.get("metadata_fingerprint")}
    if not legacy or stored.get("inputs_hash") != _hash(legacy):
        return None
    upgraded = {**stored, "inputs": inputs, "inputs_hash": _hash(inputs)}
    _atomic_json(path, upgraded)
    return upgraded


def run_cell(
    plan: StudyPlan, cell: Cell, inputs: dict, data: dict, out: Path, console, progress: bool = True
) -> dict[str, Any]:
    """Train (unless zero), evaluate on the held-out task and the forgetting tasks, store ``cell.json``."""
    from robosteer.policies import load_policy

    folder = out / "cells" / cell.name
    work = Path(tempfile.mkdtemp(prefix=f".{cell.name}-", dir=out))
    t0 = time.perf_counter()
    try:
        compute, policy_path = None, plan.policy
        if cell.arm != "zero":
            result = stages.finetune_method(
                load_policy(plan.policy),
                data["root"],
                work / "train",
                method=inputs["method"],
                steps=plan.steps,
                batch_size=plan.batch_size,
                seed=cell.seed,
                heads=inputs["heads"],
                heads_fingerprint=inputs["base"],
                lora_rank=(inputs["lora"] or {}).get("rank", plan.lora_rank),
                lora_targets=(inputs["lora"] or {}).get("targets", "lerobot"),
                lr=inputs["lr"],
                progress=progress,
                **(inputs.get("release") or {}),
            )
            compute, policy_path = result["compute"], result["merged"]
        outcomes = _evaluate(plan, policy_path, cell, progress)
        record = {
            "cell": cell.name,
            "inputs": inputs,
            "inputs_hash": _hash(inputs),
            "outcomes": outcomes,
            "compute": compute,
            "wall_s": round(time.perf_counter() - t0, 1),
        }
        _atomic_json(folder / CELL_FILE, record)
        return record
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _evaluate(plan: StudyPlan, policy_path: str, cell: Cell, progress: bool) -> dict[str, list[int]]:
    """Per-episode success (0/1, in seed order) on the task and on each forgetting task."""
    from robosteer.evaluation import EvalConfig, PolicySource, evaluate

    cells = [(plan.task, plan.episodes, plan.variations)]
    cells += [(t, plan.forgetting_episodes, "none") for t in plan.forgetting_tasks]
    outcomes = {}
    for task, episodes, variation in cells:
        config = EvalConfig(
            tasks=(task,),
            variations=(variation.replace(",", "+"),),
            episodes=episodes,
            seed=plan.eval_seed,
            workers=plan.workers,
            batch=plan.batch,
            videos_per_cell=0,
            image_size=plan.image_size,
            max_steps=plan.max_steps,
        )
        results = evaluate(PolicySource(policy_path), config, progress=progress, label=f"{cell.name} on {task}")
        outcomes[task] = [int(r["success"]) for r in sorted(results.episodes, key=lambda r: r["seed"])]
    return outcomes
