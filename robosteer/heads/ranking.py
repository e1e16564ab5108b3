"""rank_heads: frames -> per-head features -> scores and controls -> selection -> stability -> causal check."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import torch

from robosteer.constants import N_ARM_JOINTS
from robosteer.errors import RobosteerError
from robosteer.heads import attributes, controls, scores, selection, stability
from robosteer.heads import dataset as ds
from robosteer.heads import features as feats
from robosteer.heads.causal import causal_check
from robosteer.heads.config import LINGUISTIC_LABEL_HINTS, VISUAL_LABEL_HINTS, RankConfig
from robosteer.heads.extraction import evenly_spread, extract_all
from robosteer.heads.readers import reader_for

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
    stability: dict
    """Split-half reliability: Spearman of the selection scores of two disjoint halves of the episodes, top-k
    overlap and its chance level."""
    controls: dict
    """The same protocol on the joint state, the episode phase and a random-init copy; heads beating each."""
    cv: dict
    """Cross-validated errors: per-k MSE of the selected set, mean-predictor baseline, per-head MSE."""
    causal: dict
    """Action error with the selected heads mean-ablated vs random heads, and their ratio."""
    timings: dict[str, float]
    """Seconds spent per phase (extract, score, causal, total)."""
    policy: dict
    """Policy identity: architecture, policy_fingerprint, n_heads, stacks, feature tokens."""
    dataset: dict
    """Dataset identity: name, episodes, fingerprint, frame mode and number of frames scored."""
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
            "stability": self.stability,
            "controls": self.controls,
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


def _layer(name: str) -> int:
    return Ranking._layer_head(name)[1]


def _prepare(policy, dataset_root, config: RankConfig) -> SimpleNamespace:
    """Everything fixed before the policy runs: episodes, frames, eligible heads, tokens; bad input fails here."""
    reader = reader_for(policy.model)
    steps = reader.num_steps(policy.model)
    if config.denoise_step >= steps:
        raise RobosteerError(
            f"denoise_step {config.denoise_step} does not exist: this policy runs "
            f"{steps} denoising steps (use 0..{steps - 1})"
        )
    dataset = ds.open_dataset(dataset_root)
    n_total = int(dataset.num_episodes)
    episodes = list(range(n_total if config.episodes is None else min(config.episodes, n_total)))
    if len(episodes) < 2:
        raise RobosteerError(
            f"{dataset_root} has {n_total} episode(s); ranking needs at least 2 (leave-one-"
            "episode-out); record more demonstrations"
        )
    frames, mode = ds.frame_table(dataset, episodes, config.frames)
    heads = policy.layout.heads()
    inert = set(reader.inert_heads(policy.layout))
    eligible = [i for i, h in enumerate(heads) if h not in inert and _layer(h) >= config.min_layer]
    if not eligible:
        raise RobosteerError(
            f"--min-layer {config.min_layer} leaves no selectable head: the policy's layers are "
            f"0..{max(_layer(h) for h in heads)}; choose a lower floor"
        )
    notes: list[str] = []
    if config.min_layer:
        notes.append(f"heads below layer {config.min_layer} are scored but not selectable (--min-layer)")
    top_k = min(config.top_k, len(eligible))
    if top_k < config.top_k:
        notes.append(f"top_k {config.top_k} capped at the policy's {len(eligible)} selectable heads")
    return SimpleNamespace(
        dataset=dataset,
        episodes=episodes,
        frames=frames,
        mode=mode,
        heads=heads,
        inert=inert,
        eligible=eligible,
        top_k=top_k,
        tokens=reader.feature_tokens(config.token, policy.layout.stacks()),
        call=steps if config.protocol == "release" else config.denoise_step,
        fingerprint=policy.fingerprint(),  # hashes every weight: once per ranking
        notes=notes,
    )


def _features(policy, ctx, config: RankConfig) -> tuple[dict, bool, feats.FrameLoader]:
    """Head features (and controls, swaps) from the cache or a fresh pass."""
    clean_pass = config.protocol == "release"
    key = feats.cache_key(
        policy=ctx.fingerprint,
        dataset=ds.dataset_identity(ctx.dataset, ctx.episodes),
        frames=ctx.frames.index,
        tokens=ctx.tokens,
        step=ctx.call,
        clean_pass=clean_pass,
        seed=config.seed,
        sens=config.sensitivity_frames,
        controls=config.controls,
    )
    cached = feats.load_cached(key) if config.use_cache else None
    loader = feats.FrameLoader(ctx.dataset)
    if cached is not None:
        return cached, True, loader
    options = dict(
        tokens=ctx.tokens,
        batch_size=config.batch_size,
        denoise_step=ctx.call,
        seed=config.seed,
        show_progress=config.show_progress,
        clean_pass=clean_pass,
    )
    control = controls.random_init_copy(policy, config.seed) if config.controls else None
    tensors = extract_all(policy, loader, ctx.frames, options, config, ctx.notes, control)
    if config.use_cache:
        feats.save_cached(key, tensors)
    return tensors, False, loader


def _score_context(ctx, tensors, config: RankConfig, dataset_root) -> SimpleNamespace:
    """Inputs of every score that do not depend on which frames are used."""
    frames = ctx.frames
    labels, why = ds.episode_labels(dataset_root, len(ctx.episodes))
    if labels is None:
        ctx.notes.append(f"{why}: visual/linguistic attribute decoding skipped")
    visual_keys, n1 = attributes.label_parts(frames, labels, config.visual_labels, VISUAL_LABEL_HINTS)
    ling_keys, n2 = attributes.label_parts(frames, labels, config.linguistic_labels, LINGUISTIC_LABEL_HINTS)
    ctx.notes.extend(n1 + n2)
    task_classes = ds.encode_classes(frames.task, max_classes=max(2, len(ctx.episodes) // 2))
    if task_classes is not None:
        ling_keys = {"instruction": task_classes, **ling_keys}
    return SimpleNamespace(
        features=tensors["features"],
        similarity=scores.head_similarities(tensors["features"]),
        targets=_targets(frames, config.target),
        visual_keys=visual_keys,
        ling_keys=ling_keys,
    )


def _scores_on(ctx, sc, tensors, config: RankConfig, mask: torch.Tensor) -> tuple[dict, scores.PhysicalScores]:
    """Every per-head score computed on the frames in ``mask`` only (for split halves as for the full set)."""
    idx = mask.nonzero().flatten()
    episodes = ctx.frames.episode[idx]
    similarity = sc.similarity[:, idx][:, :, idx]  # (H, n, n)
    targets = sc.targets[idx]
    physical = scores.physical_scores(similarity, targets, episodes, config.k_grid)
    residual = None
    if config.score == "residual":
        state = ctx.frames.state[idx]
        k_state = controls.control_error(state, targets, episodes, physical.k_grid)["k"]
        remainder = controls.state_residual(state, targets, episodes, k_state)
        residual = controls.residual_scores(similarity, remainder, episodes, physical.k)[0]
    out = {
        "physical": residual if residual is not None else physical.score,
        "visual": attributes.part_score(sc.features, ctx.frames.episode, sc.visual_keys, tensors, "image", mask),
        "linguistic": attributes.part_score(sc.features, ctx.frames.episode, sc.ling_keys, tensors, "task", mask),
    }
    return out, physical


def _pooled(all_scores: dict, config: RankConfig, heads: list[str]) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """(combined, the score selection uses (per-stack normalised when asked), weights used)."""
    combined, used = scores.combine(all_scores, config.weights)
    pooled = selection.normalise_per_stack(combined, heads) if config.stack_norm else combined
    return combined, pooled, used


def _choose(ctx, sc, physical, pooled, config: RankConfig) -> tuple[list[int], list | None, dict | None]:
    """The selected heads (best first), greedy errors, and the release protocol's per-k set errors."""
    heads, eligible, top_k = ctx.heads, ctx.eligible, ctx.top_k
    greedy_errors = release_errors = None
    if config.protocol == "release":
        chosen, _, release_errors = selection.release_select(
            physical.mse_by_k, physical.k_grid, sc.similarity, sc.targets, ctx.frames.episode, top_k, eligible
        )
    elif config.greedy:
        pool = scores.top_k(pooled, 4 * top_k, eligible)
        chosen, greedy_errors = scores.greedy_forward(
            sc.similarity, sc.targets, ctx.frames.episode, config.k_grid, top_k, pool
        )
    else:
        chosen = selection.top_k(pooled, top_k, eligible, heads, config.stack_quota)
    if config.select == "random":
        chosen = selection.stratified_random(chosen, eligible, heads, config.seed)
    elif config.select == "bottom":
        chosen = selection.stratified_bottom(chosen, pooled, eligible, heads)
    return chosen, greedy_errors, release_errors


def _controls(ctx, sc, tensors, physical, config: RankConfig) -> tuple[dict, dict]:
    """Controls on the full frame set, and the residual score of every head (reported whatever ``--score``)."""
    frames, eligible, ks = ctx.frames, ctx.eligible, physical.k_grid
    episodes = frames.episode
    out = {}
    for name, values in (("state", frames.state), ("phase", frames.phase[:, None])):
        result = controls.control_error(values, sc.targets, episodes, ks)
        out[name] = {**result, "heads_beating": controls.heads_beating(physical.mse, eligible, result["mse"])}
    k_state = out["state"]["k"]
    remainder = controls.state_residual(frames.state, sc.targets, episodes, k_state)
    residual, residual_mse, residual_base = controls.residual_scores(sc.similarity, remainder, episodes, physical.k)
    out["residual"] = {
        "baseline_mse": round(residual_base, 5),
        "heads_above_zero": int((residual[eligible] > 0).sum()),
        "best": round(float(residual[eligible].max()), 5),
    }
    if "random_init_features" in tensors:
        init = scores.physical_scores(
            scores.head_similarities(tensors["random_init_features"]), sc.targets, episodes, config.k_grid
        )
        best = min(eligible, key=lambda i: float(init.mse[i]))
        out["random_init"] = {
            "best_head_mse": round(float(init.mse[best]), 5),
            "best_head": ctx.heads[best],
            "median_head_mse": round(float(init.mse[eligible].median()), 5),
            "heads_beating": controls.heads_beating(physical.mse, eligible, float(init.mse[best])),
        }
    out["best_head_mse"] = round(float(physical.mse[eligible].min()), 5)
    out["mean_baseline_mse"] = round(physical.baseline_mse, 5)
    out["eligible_heads"] = len(eligible)
    return out, {"residual": residual, "residual_mse": residual_mse}


def rank_heads(policy, dataset_root: str | Path, config: RankConfig | None = None) -> Ranking:
    """Rank every head of ``policy`` on the demonstrations of the LeRobotDataset at ``dataset_root``."""
    config = config or RankConfig()
    t_start = time.perf_counter()
    ctx = _prepare(policy, dataset_root, config)
    t_prepare = time.perf_counter() - t_start

    t0 = time.perf_counter()
    tensors, cached, loader = _features(policy, ctx, config)
    t_extract = time.perf_counter() - t0

    t0 = time.perf_counter()
    scored = _score_and_select(ctx, tensors, config, dataset_root)
    t_score = time.perf_counter() - t0

    t0 = time.perf_counter()
    causal = {"skipped": True}
    if config.causal_frames:
        positions = evenly_spread(len(ctx.frames), config.causal_frames)
        causal = causal_check(policy, loader, ctx.frames, ctx.heads, scored.chosen, ctx.eligible, positions, config)
    t_causal = time.perf_counter() - t0
    if ctx.notes:
        log.info("head ranking notes:\n  %s", "\n  ".join(ctx.notes))
    timings = {
        "prepare_s": round(t_prepare, 3),
        "extract_s": round(t_extract, 3),
        "score_s": round(t_score, 3),
        "causal_s": round(t_causal, 3),
        "total_s": round(time.perf_counter() - t_start, 3),
        "features_cached": cached,
    }
    return _ranking(policy, ctx, scored, causal, timings, config)


def _score_and_select(ctx, tensors, config: RankConfig, dataset_root) -> SimpleNamespace:
    """Score every head on all frames, select the top heads, run the controls, the selected set's cross-validated
    error and the split-half stability; notes about ignored weights or a flat score go to ``ctx.notes``."""
    sc = _score_context(ctx, tensors, config, dataset_root)
    everything = torch.ones(len(ctx.frames), dtype=torch.bool)
    all_scores, physical = _scores_on(ctx, sc, tensors, config, everything)
    for name, weight in config.weights.items():
        if weight > 0 and all_scores[name] is None:
            ctx.notes.append(f"weight {name}={weight} ignored: that score could not be computed")
    combined, pooled, used = _pooled(all_scores, config, ctx.heads)  # combined, pooled: (H,)
    chosen, greedy_errors, release_errors = _choose(ctx, sc, physical, pooled, config)
    if float(pooled[ctx.eligible].std()) == 0:
        ctx.notes.append("every selectable head has the same score: the selection is arbitrary (head order)")
    control_report, extra = _controls(ctx, sc, tensors, physical, config)
    standard = scores.standardise(sc.targets)  # (n_frames, target_dim), per-dim z-score
    set_mse = scores.knn_mse(
        scores.concat_similarity(sc.similarity, chosen), standard, ctx.frames.episode, physical.k_grid
    )[0]  # (1, N, N) set similarity -> (len(k_grid),): the set's error per k
    return SimpleNamespace(
        sc=sc,
        all_scores=all_scores,
        physical=physical,
        combined=combined,
        pooled=pooled,
        used=used,
        chosen=chosen,
        greedy_errors=greedy_errors,
        release_errors=release_errors,
        control_report=control_report,
        extra=extra,
        set_mse=set_mse,
        reliability=_stability(ctx, sc, tensors, config),
    )


def _rounded(values):
    """Per-head values as a JSON list rounded to 5 decimals (None stays None)."""
    return None if values is None else [round(float(v), 5) for v in values]


def _ranking(policy, ctx, scored: SimpleNamespace, causal: dict, timings: dict, config: RankConfig) -> Ranking:
    """The :class:`Ranking` of the scored heads: scores, selection, controls, cross-validation, causal check and
    the identities of the policy and the dataset."""
    physical, set_mse, sc = scored.physical, scored.set_mse, scored.sc
    return Ranking(
        heads=ctx.heads,
        scores={
            **{name: _rounded(s) for name, s in scored.all_scores.items()},
            "combined": _rounded(scored.combined),
            "selection": _rounded(scored.pooled),
            "residual": _rounded(scored.extra["residual"]),
        },
        selected=[ctx.heads[i] for i in scored.chosen],
        best_k=physical.k_grid[int(set_mse.argmin())],
        stability=scored.reliability,
        controls=scored.control_report,
        cv={
            "selected_mse_by_k": {str(k): float(v) for k, v in zip(physical.k_grid, set_mse, strict=True)},
            "selected_mse": float(set_mse.min()),
            "mean_baseline_mse": physical.baseline_mse,
            "head_mse": _rounded(physical.mse),
            "head_k": physical.k,
            "residual_mse": _rounded(scored.extra["residual_mse"]),
            "greedy_mse": scored.greedy_errors,
            "release_set_mse_by_k": scored.release_errors,
            "units": "standardised action (per-dim z-score) MSE",
        },
        causal=causal,
        timings=timings,
        policy={
            "architecture": policy.layout.architecture,
            "fingerprint": ctx.fingerprint,
            "n_heads": len(ctx.heads),
            "stacks": policy.layout.stacks(),
            "inert_heads": sorted(ctx.inert),
            "feature_tokens": ctx.tokens,
            "expert_call": ctx.call,
            "clean_pass": config.protocol == "release",
        },
        dataset={
            **ds.dataset_identity(ctx.dataset, ctx.episodes),
            "frame_mode": ctx.mode,
            "n_frames_scored": len(ctx.frames),
            "label_keys": {"visual": sorted(sc.visual_keys), "linguistic": sorted(sc.ling_keys)},
        },
        config=_config_json(config, ctx.top_k, scored.used),
        notes=ctx.notes,
    )


def _stability(ctx, sc, tensors, config: RankConfig) -> dict:
    """Split-half reliability of the score the selection uses; adds a note when it is below the threshold."""

    def score_on(episodes: list[int]) -> torch.Tensor:
        mask = torch.isin(ctx.frames.episode, torch.tensor(episodes))
        half, physical = _scores_on(ctx, sc, tensors, config, mask)
        if config.protocol == "release":
            return physical.score
        return _pooled(half, config, ctx.heads)[1]

    stacks = {
        stack: [i for i in ctx.eligible if selection.cell(ctx.heads[i])[0] == stack]
        for stack in dict.fromkeys(selection.cell(h)[0] for h in ctx.heads)
    }
    result = stability.reliability(
        score_on, ctx.episodes, ctx.eligible, ctx.top_k, config.stability_threshold, groups=stacks
    )
    if not result.get("skipped") and not result["reproducible"]:
        ctx.notes.append(
            f"split-half correlation {result['spearman']:.2f} < {config.stability_threshold}: this ranking is not "
            "reproducible on these demos (another set of demos would pick other heads); record more demos or "
            "score more frames (--frames dense --stride 1, or --frames all)"
        )
    return result


def _config_json(config: RankConfig, top_k: int, used: dict) -> dict:
    return {
        "top_k": top_k,
        "protocol": config.protocol,
        "score": config.score,
        "select": config.select,
        "stack_quota": config.stack_quota,
        "stack_norm": config.stack_norm,
        "min_layer": config.min_layer,
        "weights": config.weights,
        "weights_used": used,
        "greedy": config.greedy,
        "k_grid": list(config.k_grid),
        "target": config.target,
        "frames": {"mode": config.frames.mode, "stride": config.frames.stride},
        "seed": config.seed,
    }
