"""Causal check of a selection: how far does the predicted action chunk move when the chosen heads are
mean-ablated, compared with as many random heads from the same (stack, layer) cells?

* Metric: the shift of the whole predicted action chunk (normalised action space) from the clean prediction on the
  same frames and noise. It needs no demonstration the base policy can reproduce.
* Mean-ablation replaces a head's output by its mean over the check's frames *at the same call and token
  position* (per denoising step for the expert, per prefix position for the VLM), so an ablated head looks like an
  average input, not like one from another step.
* Baseline: ``draws`` stratified random head sets; the ratio (selected shift / mean random shift) comes with a
  bootstrap 95 % interval over frames and draws, and the share of draws whose shift reaches the selected one's.
"""

from __future__ import annotations

import torch

from robosteer.heads import features as feats
from robosteer.heads.readers import reader_for
from robosteer.heads.selection import stratified_random
from robosteer.heads.trace import HeadEdit, HeadTrace


@torch.no_grad()
def predict_chunks(policy, batches, seed: int, edits=None, record_means: bool = False):
    """Predicted normalised action chunks (F, chunk, A) over prepared batches, with optional head edits; with
    ``record_means`` also each head's per-call, per-position mean output ``{head: {call: (S, D)}}``."""
    model, layout = policy.model, policy.layout
    reader = reader_for(model)
    model.eval()
    chunks = []
    with HeadTrace(model, layout, edits=edits or [], record_call_means=record_means) as trace:
        for inputs, _ in batches:
            trace.new_forward()
            chunks.append(reader.sample_actions(model, inputs, seed).float().cpu())  # (b, chunk, A)
    means = trace.call_position_means() if record_means else None
    return torch.cat(chunks), means


def mean_edits(names: list[str], means: dict[str, dict[int, torch.Tensor]]) -> list[HeadEdit]:
    """Mean-ablation of ``names``: one edit per head and call, each with that call's per-position mean."""
    return [HeadEdit(name, value=mean, calls=(call,)) for name in names for call, mean in means[name].items()]


def bootstrap_ratio(selected: torch.Tensor, random: torch.Tensor, n_boot: int = 2000, seed: int = 0) -> list:
    """95 % interval of ``mean(selected) / mean(random)``, resampling frames (F,) and draws (R, F) jointly."""
    gen = torch.Generator().manual_seed(seed)
    n_frames, n_draws = selected.numel(), random.shape[0]
    frames = torch.randint(n_frames, (n_boot, n_frames), generator=gen)  # (n_boot, F)
    draws = torch.randint(n_draws, (n_boot, n_draws), generator=gen)  # (n_boot, R)
    sel = selected[frames].mean(1)  # (n_boot,)
    rand = torch.stack([random[draws[b]][:, frames[b]].mean() for b in range(n_boot)])  # (n_boot,)
    ratios = sel / rand.clamp_min(1e-12)
    low, high = torch.quantile(ratios.double(), torch.tensor([0.025, 0.975], dtype=torch.double)).tolist()
    return [round(low, 4), round(high, 4)]


def causal_check(policy, loader, frames, heads, chosen, eligible, positions, config) -> dict:
    """Chunk shift under mean-ablation of ``chosen`` vs ``config.causal_draws`` stratified random sets."""
    batches = feats.model_batches(policy, loader, frames, positions, config.batch_size, pad_language=True)
    progress, task = feats.progress_bar(2 + config.causal_draws, "causal check (ablation passes)", config.show_progress)
    with progress:
        clean, means = predict_chunks(policy, batches, config.seed, record_means=True)
        progress.advance(task)

        def shift(indices: list[int]) -> torch.Tensor:
            ablated, _ = predict_chunks(policy, batches, config.seed, mean_edits([heads[i] for i in indices], means))
            progress.advance(task)
            return ((ablated - clean) ** 2).mean(dim=(1, 2))  # (F,)

        selected = shift(chosen)
        draws = [stratified_random(chosen, eligible, heads, config.seed + 1 + d) for d in range(config.causal_draws)]
        random = torch.stack([shift(d) for d in draws])  # (R, F)
    demo = torch.cat([demo for _, demo in batches])  # (F, A)
    random_means = random.mean(1)  # (R,)
    return {
        "frames": len(positions),
        "draws": config.causal_draws,
        "selected_shift": round(float(selected.mean()), 6),
        "random_shift": [round(float(v), 6) for v in random_means],
        "ratio": round(float(selected.mean() / random.mean().clamp_min(1e-12)), 4),
        "ratio_ci95": bootstrap_ratio(selected, random, seed=config.seed),
        "share_of_draws_reaching_selected": round(float((random_means >= selected.mean()).float().mean()), 4),
        "base_error": round(float(((clean[:, 0] - demo) ** 2).mean()), 6),
        "units": "mean squared shift of the predicted action chunk (normalised actions) from the clean prediction",
        "reading": "ratio > 1 (interval above 1): ablating the selected heads moves the actions more than ablating "
        "as many random heads from the same stack x layer cells",
    }
