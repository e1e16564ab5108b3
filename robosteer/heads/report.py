"""Ranking artifacts: heads.json, heads.png (layers x heads heatmap per score, selected marked), a short table."""

from __future__ import annotations

import json
import math
from pathlib import Path

from robosteer.errors import RobosteerError
from robosteer.files import atomic_write, atomic_write_text
from robosteer.policies.layout import HeadId
from robosteer.validation import load_heads_file

HEADS_JSON, HEADS_PNG = "heads.json", "heads.png"


def save_ranking(ranking, out_dir: str | Path) -> Path:
    """Write heads.png, then heads.json into ``out_dir``, each atomically (``robosteer.files``)."""
    out = Path(out_dir)
    text = json.dumps(finite(ranking.to_json()), indent=2, allow_nan=False) + "\n"
    atomic_write(out / HEADS_PNG, lambda tmp: plot_heatmaps(ranking, tmp))
    return atomic_write_text(out / HEADS_JSON, text)


def finite(value):
    """The same JSON-able value with every NaN/Inf float replaced by None (heads.json stays strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def load_heads_json(path: str | Path) -> dict:
    """Read a heads.json (or the folder holding one); checks the keys other parts rely on."""
    path = Path(path)
    if path.is_dir():
        path = path / HEADS_JSON
    if not path.is_file():
        raise RobosteerError(f"no head ranking at {path}; run `robosteer rank --out <dir>` first")
    try:
        data = load_heads_file(path)  # strict JSON, finite numbers, well-formed unique head names
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RobosteerError(f"{path} is not valid JSON ({err}); re-run `robosteer rank`") from err
    missing = [k for k in ("policy_fingerprint", "selected", "heads", "scores") if k not in data]
    if missing:
        raise RobosteerError(f"{path} lacks {missing}; it was not written by `robosteer rank`, re-run it")
    for name in data["selected"]:
        HeadId.parse(name)
    return data


def _grid(heads: list[str], values: list[float], stack: str):
    import numpy as np

    ids = [HeadId.parse(h) for h in heads]
    layers = 1 + max(i.layer for i in ids if i.stack == stack)
    width = 1 + max(i.head for i in ids if i.stack == stack)
    grid = np.full((layers, width), np.nan)
    for head_id, value in zip(ids, values, strict=True):
        if head_id.stack == stack:
            grid[head_id.layer, head_id.head] = value
    return grid


def plot_heatmaps(ranking, path: Path) -> None:
    """One heatmap (layers x heads) per stack and score; selected heads get a box."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    score_names = [
        n for n in ("physical", "residual", "visual", "linguistic", "selection") if ranking.scores.get(n) is not None
    ]
    stacks = list(dict.fromkeys(HeadId.parse(h).stack for h in ranking.heads))
    fig, axes = plt.subplots(
        len(stacks), len(score_names), squeeze=False, figsize=(3.2 * len(score_names), 2.6 * len(stacks))
    )
    selected = {HeadId.parse(h) for h in ranking.selected}
    for row, stack in enumerate(stacks):
        for col, name in enumerate(score_names):
            ax = axes[row][col]
            grid = _grid(ranking.heads, ranking.scores[name], stack)
            image = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto", origin="lower")
            for head_id in selected:
                if head_id.stack == stack:
                    ax.add_patch(
                        Rectangle(
                            (head_id.head - 0.5, head_id.layer - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=1.5
                        )
                    )
            ax.set_xticks(range(grid.shape[1]))
            ax.set_yticks(range(grid.shape[0]))
            ax.tick_params(labelsize=7)
            ax.set_title(f"{stack}: {name}", fontsize=9)
            ax.set_xlabel("head", fontsize=8)
            ax.set_ylabel("layer", fontsize=8)
            fig.colorbar(image, ax=ax, fraction=0.046)
    fig.suptitle(
        f"{ranking.policy['architecture']} {ranking.policy['fingerprint']}: "
        f"{len(ranking.selected)} selected heads (red); {stability_text(ranking.stability)}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


def stability_text(stability: dict) -> str:
    """One line on split-half reliability."""
    if stability.get("skipped"):
        return f"split-half stability not measured ({stability['reason']})"
    verdict = "reproducible" if stability["reproducible"] else "NOT reproducible"
    groups = ", ".join(f"{name} {rho:.2f}" for name, rho in stability.get("per_group", {}).items())
    if stability.get("constant"):
        return "split-half stability undefined: every head scores the same on a half (no head carries signal)"
    return (
        f"split-half Spearman {stability['spearman']:.2f} ({verdict}, threshold {stability['threshold']}"
        + (f"; per stack {groups}" if groups else "")
        + f"), top-{stability['top_k']} overlap {stability['top_k_overlap']} "
        f"(chance {stability['top_k_overlap_chance']})"
    )


def controls_text(controls: dict) -> str:
    """One line: how many heads beat each control."""
    n = controls["eligible_heads"]
    parts = [
        f"state {controls['state']['heads_beating']}/{n} (state error {controls['state']['mse']:.3f})",
        f"phase {controls['phase']['heads_beating']}/{n}",
    ]
    if "random_init" in controls:
        parts.append(f"best random-init head {controls['random_init']['heads_beating']}/{n}")
    parts.append(f"residual over the state > 0: {controls['residual']['heads_above_zero']}/{n}")
    return "heads beating the controls: " + ", ".join(parts) + f"; best head error {controls['best_head_mse']:.3f}"


def causal_text(causal: dict) -> str:
    """One line on the causal check."""
    if causal.get("skipped"):
        return "causal check skipped"
    low, high = causal["ratio_ci95"]
    return (
        f"causal check ({causal['frames']} frames, {causal['draws']} stratified random draws): ablating the selected "
        f"heads shifts the action chunk {causal['ratio']:.2f}x as much as random heads [95 % CI {low:.2f}-{high:.2f}]"
    )


def print_table(ranking, console=None, rows: int = 10) -> None:
    """A short table of the best selected heads, then frames, stability, controls, causal check and timings."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console(highlight=False)
    index = {h: i for i, h in enumerate(ranking.heads)}
    names = [n for n in ("physical", "residual", "visual", "linguistic", "selection") if ranking.scores.get(n)]
    table = Table(
        title=f"top {min(rows, len(ranking.selected))} of {len(ranking.selected)} selected heads "
        f"(k-NN k = {ranking.cv['head_k']})"
    )
    table.add_column("rank", justify="right")
    table.add_column("head")
    for name in names:
        table.add_column(name, justify="right")
    for rank, head in enumerate(ranking.selected[:rows], 1):
        table.add_row(str(rank), head, *(f"{ranking.scores[n][index[head]]:.3f}" for n in names))
    console.print(table)
    data = ranking.dataset
    console.print(f"frames: {data['n_frames_scored']} ({data['frame_mode']}) from {len(data['episodes'])} episodes")
    console.print(stability_text(ranking.stability), markup=False)
    console.print(controls_text(ranking.controls), markup=False)
    console.print(causal_text(ranking.causal), markup=False)
    t = ranking.timings
    console.print(f"time: extract {t['extract_s']:.1f} s, score {t['score_s']:.1f} s, causal {t['causal_s']:.1f} s")
    for note in ranking.notes:
        console.print("note: " + note, markup=False, style="yellow")
