"""rank_heads: keyframes -> per-head features -> physical/visual/linguistic scores -> selection -> causal check."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from robosteer.constants import N_ARM_JOINTS, OBS_IMAGES_PREFIX, TASK
from robosteer.errors import RobosteerError
from robosteer.heads import dataset as ds
from robosteer.heads import features as feats
from robosteer.heads import scores, smolvla
from robosteer.heads.config import LINGUISTIC_LABEL_HINTS, VISUAL_LABEL_HINTS, RankConfig
from robosteer.heads.trace import HeadEdit

log = logging.getLogger(__name__)


@dataclass
class Ranking:
    """The result of a head ranking; ``save(out_dir)`` writes heads.json + heads.png."""

    heads: list[str]
    """Every head of the policy, in layout order."""
    scores: dict[str, list[float] | None]
    """Per score name (physical, visual, linguistic, combined): one value per head in [0, 1], None if skipped."""
    selected: list[str]
    """The chosen heads, best first."""
    best_k: int
    """k of the k-NN regression with the lowest error on the concatenated selected features."""
    cv: dict
    """Cross-validated errors: per-k MSE of the selected set, mean-predictor baseline, per-head MSE."""
    causal: dict
    """Action error with the selected heads mean-ablated vs random heads, and their ratio."""
    timings: dict[str, float]
    """Seconds spent per phase (extract, score, causal, total)."""
    policy: dict
    """Policy identity: architecture, policy_fingerprint, n_heads, stacks, feature tokens."""
    dataset: dict
    """Dataset identity: name, episodes, fingerprint, keyframes used."""
    config: dict
    """The settings used."""
    notes: list[str] = field(default_factory=list)
    """Warnings, e.g. scores skipped for lack of labels."""

    def to_json(self) -> dict:
        return {
            "version": 1,
            "policy_fingerprint": self.policy["fingerprint"],
            "selected": self.selected,
            "selected_indices": [self._layer_head(h) for h in self.selected],
            "best_k": self.best_k,
            "policy": self.policy,
            "dataset": self.dataset,
            "heads": self.heads,
            "scores": self.scores,
            "cv": self.cv,
            "causal": self.causal,
            "timings": self.timings,
            "config": self.config,
            "notes": self.notes,
        }

    @staticmethod
    def _layer_head(name: str) -> list:
        stack, layer, head = name.split(".")
        return [stack, int(layer[1:]), int(head[1:])]

    def save(self, out_dir: str | Path) -> Path:
        from robosteer.heads.report import save_ranking

        return save_ranking(self, out_dir)


def _targets(frames: feats.FrameTable, target: str) -> torch.Tensor:
    if target == "absolute":
        return frames.action
    delta = frames.action.clone()
    delta[:, :N_ARM_JOINTS] -= frames.state[:, :N_ARM_JOINTS]
    return delta


def _subset(n: int, count: int) -> list[int]:
    """``count`` evenly spread positions out of ``n`` (all when count >= n)."""
    if count >= n:
        return list(range(n))
    return torch.linspace(0, n - 1, count).round().long().unique().tolist()


def _partners(frames: feats.FrameTable, positions: list[int], seed: int, same_task: bool) -> dict[int, int]:
    """For each position, a frame of another episode (same instruction if ``same_task`` and one exists)."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for p in positions:
        others = [q for q in range(len(frames)) if frames.episode[q] != frames.episode[p]]
        if same_task:
            same = [q for q in others if frames.task[q] == frames.task[p]]
            others = same or others
        else:
            others = [q for q in others if frames.task[q] != frames.task[p]]
        if others:
            out[p] = others[int(torch.randint(len(others), (1,), generator=gen))]
    return out


def _label_parts(frames, labels, keys, hints) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Per-frame class ids of each usable label key; plus a note on the keys skipped."""
    notes, out, partitions, skipped = [], {}, {}, []
    if labels is None:
        return out, notes
    available = sorted({k for row in labels for k in row})
    wanted = keys if keys is not None else [k for k in available if any(h in k.lower() for h in hints)]
    for key in wanted:
        values = [labels[int(e)].get(key) if int(e) < len(labels) else None for e in frames.episode]
        n_episodes = int(frames.episode.unique().numel())
        classes = ds.encode_classes(values, max_classes=max(2, n_episodes // 2))
        if classes is None:
            skipped.append(key)
            continue
        first_seen = {c: i for i, c in reversed(list(enumerate(classes.tolist())))}
        partition = tuple(first_seen[c] for c in classes.tolist())  # the same grouping under any class names
        if partition in partitions:
            notes.append(f"label {key!r} groups the episodes exactly like {partitions[partition]!r}; counted once")
            continue
        partitions[partition] = key
        out[key] = classes
    if skipped:
        notes.append(
            f"labels {skipped} not decoded (missing for some episodes, continuous, a single class, or more "
            f"classes than half the episodes)"
        )
    return out, notes


def rank_heads(policy, dataset_root: str | Path, config: RankConfig | None = None) -> Ranking:
    """Rank every head of ``policy`` on the keyframes of the LeRobotDataset at ``dataset_root``."""
    config = config or RankConfig()
    t_start = time.perf_counter()
    smolvla.check_supported(policy.model)
    if config.denoise_step >= policy.model.config.num_steps:
        raise RobosteerError(
            f"denoise_step {config.denoise_step} does not exist: this policy runs "
            f"{policy.model.config.num_steps} denoising steps (use 0..{policy.model.config.num_steps - 1})"
        )
    dataset = ds.open_dataset(dataset_root)
    n_total = int(dataset.num_episodes)
    episodes = list(range(n_total if config.episodes is None else min(config.episodes, n_total)))
    if len(episodes) < 2:
        raise RobosteerError(
            f"{dataset_root} has {n_total} episode(s); ranking needs at least 2 (leave-one-"
            "episode-out); record more demonstrations"
        )
    frames = ds.keyframe_table(dataset, episodes, config.keyframes)
    heads = policy.layout.heads()
    inert = set(smolvla.inert_heads(policy.layout))
    eligible = [i for i, h in enumerate(heads) if h not in inert and Ranking._layer_head(h)[1] >= config.min_layer]
    if not eligible:
        raise RobosteerError(
            f"--min-layer {config.min_layer} leaves no selectable head: the policy's layers are "
            f"0..{max(Ranking._layer_head(h)[1] for h in heads)}; choose a lower floor"
        )
    top_k = min(config.top_k, len(eligible))
    tokens = smolvla.feature_tokens(config.token, policy.layout.stacks())
    notes: list[str] = []
    if config.min_layer:
        notes.append(f"heads below layer {config.min_layer} are scored but not selectable (--min-layer)")
    if top_k < config.top_k:
        notes.append(f"top_k {config.top_k} capped at the policy's {len(eligible)} selectable heads")

    # -- extract ---------------------------------------------------------------------------------------------
    fingerprint = policy.fingerprint()
    identity = ds.dataset_identity(dataset, episodes)
    key = feats.cache_key(
        policy=fingerprint,
        dataset=identity,
        frames=frames.index,
        tokens=tokens,
        step=config.denoise_step,
        seed=config.seed,
        sens=config.sensitivity_frames,
    )
    cached = feats.load_cached(key) if config.use_cache else None
    t_prepare = time.perf_counter() - t_start
    t0 = time.perf_counter()
    loader = feats.FrameLoader(dataset)
    tensors = cached or _extract_all(policy, loader, frames, tokens, config, notes)
    if cached is None and config.use_cache:
        feats.save_cached(key, tensors)
    t_extract = time.perf_counter() - t0

    # -- score -----------------------------------------------------------------------------------------------
    t0 = time.perf_counter()
    features = tensors["features"]
    similarity = scores.head_similarities(features)
    targets = _targets(frames, config.target)
    physical = scores.physical_scores(similarity, targets, frames.episode, config.k_grid)
    labels, why = ds.episode_labels(dataset_root, len(episodes))
    if labels is None:
        notes.append(f"{why}: visual/linguistic attribute decoding skipped")
    visual_keys, n1 = _label_parts(frames, labels, config.visual_labels, VISUAL_LABEL_HINTS)
    ling_keys, n2 = _label_parts(frames, labels, config.linguistic_labels, LINGUISTIC_LABEL_HINTS)
    notes += n1 + n2
    task_classes = ds.encode_classes(frames.task, max_classes=max(2, len(episodes) // 2))
    if task_classes is not None:
        ling_keys = {"instruction": task_classes, **ling_keys}
    visual = _part_score(features, frames, visual_keys, tensors, "image", "visual", notes)
    linguistic = _part_score(features, frames, ling_keys, tensors, "task", "linguistic", notes)
    all_scores = {"physical": physical.score, "visual": visual, "linguistic": linguistic}
    for name, weight in config.weights.items():
        if weight > 0 and all_scores[name] is None:
            notes.append(f"weight {name}={weight} ignored: that score could not be computed")
    combined, used = scores.combine(all_scores, config.weights)
    if config.greedy:
        pool = scores.top_k(combined, 4 * top_k, eligible)
        chosen, greedy_errors = scores.greedy_forward(similarity, targets, frames.episode, config.k_grid, top_k, pool)
    else:
        chosen, greedy_errors = scores.top_k(combined, top_k, eligible), None
    standard = scores.standardise(targets)
    ks = scores.usable_k_grid(config.k_grid, frames.episode)
    set_mse = scores.knn_mse(scores.concat_similarity(similarity, chosen), standard, frames.episode, ks)[0]
    best_k = ks[int(set_mse.argmin())]
    t_score = time.perf_counter() - t0

    # -- causal check ----------------------------------------------------------------------------------------
    t0 = time.perf_counter()
    causal = _causal_check(policy, loader, frames, heads, chosen, eligible, tensors["means"], config)
    t_causal = time.perf_counter() - t0
    if notes:
        log.warning("head ranking notes:\n  %s", "\n  ".join(notes))
    return Ranking(
        heads=heads,
        scores={
            name: (None if s is None else [round(float(v), 5) for v in s])
            for name, s in {**all_scores, "combined": combined}.items()
        },
        selected=[heads[i] for i in chosen],
        best_k=best_k,
        cv={
            "selected_mse_by_k": {str(k): float(v) for k, v in zip(ks, set_mse, strict=True)},
            "selected_mse": float(set_mse.min()),
            "mean_baseline_mse": physical.baseline_mse,
            "head_mse": [round(float(v), 5) for v in physical.mse],
            "head_best_k": physical.best_k.tolist(),
            "greedy_mse": greedy_errors,
            "units": "standardised action (per-dim z-score) MSE",
        },
        causal=causal,
        timings={
            "prepare_s": round(t_prepare, 3),
            "extract_s": round(t_extract, 3),
            "score_s": round(t_score, 3),
            "causal_s": round(t_causal, 3),
            "total_s": round(time.perf_counter() - t_start, 3),
            "features_cached": cached is not None,
        },
        policy={
            "architecture": policy.layout.architecture,
            "fingerprint": fingerprint,
            "n_heads": len(heads),
            "stacks": policy.layout.stacks(),
            "inert_heads": sorted(inert),
            "feature_tokens": tokens,
            "denoise_step": config.denoise_step,
        },
        dataset={
            **identity,
            "n_keyframes": len(frames),
            "label_keys": {"visual": sorted(visual_keys), "linguistic": sorted(ling_keys)},
        },
        config={
            "top_k": top_k,
            "min_layer": config.min_layer,
            "weights": config.weights,
            "weights_used": used,
            "greedy": config.greedy,
            "k_grid": list(config.k_grid),
            "target": config.target,
            "seed": config.seed,
        },
        notes=notes,
    )


def _part_score(features, frames, label_keys, tensors, swap, name, notes):
    parts = []
    if label_keys:
        parts.append(
            torch.stack([scores.decoding_score(features, c, frames.episode) for c in label_keys.values()]).mean(0)
        )
    if f"swap_{swap}" in tensors:
        parts.append(scores.sensitivity_score(tensors[f"sens_base_{swap}"], tensors[f"swap_{swap}"]))
    if not parts:
        notes.append(f"{name} score skipped: no labels to decode and no {swap} swap possible")
    return scores.mean_of_parts(parts)


def _extract_all(policy, loader, frames, tokens, config: RankConfig, notes: list[str]) -> dict:
    common = dict(
        tokens=tokens,
        batch_size=config.batch_size,
        denoise_step=config.denoise_step,
        seed=config.seed,
        show_progress=config.show_progress,
    )
    everything = list(range(len(frames)))
    out = feats.extract(policy, loader, frames, everything, record_mean=True, description="head features", **common)
    if config.sensitivity_frames == 0:
        return out
    subset = _subset(len(frames), config.sensitivity_frames)
    for swap, same_task in (("image", True), ("task", False)):
        partner = _partners(frames, subset, config.seed, same_task)
        if not partner:
            notes.append(f"no {swap} swap possible (all frames share one instruction or one episode)")
            continue
        positions = [p for p in subset if p in partner]

        def edit(raw, pos, partner=partner, swap=swap):
            if swap == "task":
                raw[TASK] = [frames.task[partner[p]] for p in pos]
                return raw
            other = feats.load_batch(loader, frames, [partner[p] for p in pos])
            raw.update({k: v for k, v in other.items() if k.startswith(OBS_IMAGES_PREFIX)})
            return raw

        out[f"swap_{swap}"] = feats.extract(
            policy, loader, frames, positions, edit=edit, description=f"{swap} swap", **common
        )["features"]
        out[f"sens_base_{swap}"] = out["features"][positions]
    return out


def _causal_check(policy, loader, frames, heads, chosen, eligible, means, config: RankConfig) -> dict:
    if config.causal_frames == 0:
        return {"skipped": True}
    positions = _subset(len(frames), config.causal_frames)
    batches = feats.model_batches(policy, loader, frames, positions, config.batch_size)
    gen = torch.Generator().manual_seed(config.seed)

    def edits(indices):
        site_dim = {h: policy.layout.site_of(h).head_dim for h in heads}
        return [HeadEdit(heads[i], value=means[i, : site_dim[heads[i]]]) for i in indices]

    def error(indices):
        pred, demo = feats.predict(policy, batches, edits(indices), config.seed)
        return pred, float(((pred - demo) ** 2).mean())

    base_pred, base = error([])
    sel_pred, selected = error(chosen)
    random_errors, random_shifts = [], []
    for _ in range(config.causal_draws):
        draw = [eligible[i] for i in torch.randperm(len(eligible), generator=gen)[: len(chosen)].tolist()]
        pred, err = error(draw)
        random_errors.append(err)
        random_shifts.append(float(((pred - base_pred) ** 2).mean()))
    random_mean = sum(random_errors) / len(random_errors)
    sel_shift = float(((sel_pred - base_pred) ** 2).mean())
    shift_mean = sum(random_shifts) / len(random_shifts)
    return {
        "frames": len(positions),
        "draws": config.causal_draws,
        "base_error": base,
        "selected_ablated_error": selected,
        "random_ablated_error": random_errors,
        "ratio": selected / max(random_mean, 1e-12),
        "selected_action_shift": sel_shift,
        "random_action_shift": random_shifts,
        "shift_ratio": sel_shift / max(shift_mean, 1e-12),
        "units": "MSE of the first predicted action vs the demonstrated one, normalised action space",
        "reading": "ratio > 1: ablating the selected heads hurts more than ablating as many random heads",
    }
