"""Study plots: success with Wilson intervals per method x cell, and the compute comparison."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robosteer.files import atomic_write

METHOD_COLOURS = {"zero": "#9e9e9e", "lora": "#1f77b4", "steer": "#d62728", "full": "#2ca02c"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, bbox_inches="tight"))


def plot_success(methods: dict[str, dict], path: Path) -> Path:
    """Grouped bars: one group per (task, variation) cell, one bar per method, Wilson 95 % CI as error bars."""
    plt = _pyplot()
    names = list(methods)
    cells = [(c["task"], c["variation"]) for c in methods[names[0]]["eval"]["cells"]]
    width = 0.8 / max(len(names), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.4 * len(cells) * max(1, len(names)) / 2), 3.8))
    x = np.arange(len(cells))
    for i, name in enumerate(names):
        by_cell = {(c["task"], c["variation"]): c for c in methods[name]["eval"]["cells"]}
        rates = np.array([100 * by_cell[cell]["success_rate"] for cell in cells])
        low = np.array([100 * by_cell[cell]["ci95"][0] for cell in cells])
        high = np.array([100 * by_cell[cell]["ci95"][1] for cell in cells])
        bars = ax.bar(
            x + (i - (len(names) - 1) / 2) * width,
            rates,
            width,
            label=name,
            color=METHOD_COLOURS.get(name),
            yerr=np.stack([rates - low, high - rates]),
            capsize=3,
            error_kw={"elinewidth": 1},
        )
        ax.bar_label(bars, labels=[f"{rate:.0f}" for rate in rates], fontsize=7, padding=2)  # 0 % stays visible
    ax.set_xticks(x, [f"{task}\n{variation}" for task, variation in cells], fontsize=8)
    ax.set_ylabel("success % (Wilson 95 % CI)")
    ax.set_ylim(0, 118)  # headroom for the legend
    ax.legend(ncol=len(names), fontsize=8, loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    episodes = methods[names[0]]["eval"]["cells"][0]["episodes"]
    ax.set_title(f"Success per method and evaluation cell ({episodes} seeded episodes per cell)", fontsize=10)
    path = _save(fig, path)
    plt.close(fig)
    return path


def _compact(value: float) -> str:
    """68.6k, 1.2M: parameter counts readable at a glance."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}{suffix}"
    return f"{value:.0f}"


def plot_compute(methods: dict[str, dict], path: Path) -> Path:
    """Two panels: trainable parameters and mean training step time, per finetuned method (linear axes, so bar
    heights compare as the numbers do)."""
    plt = _pyplot()
    names = [m for m in methods if methods[m].get("compute")]
    fig, (ax_params, ax_step) = plt.subplots(1, 2, figsize=(8, 3))
    if names:
        colours = [METHOD_COLOURS.get(n) for n in names]
        params = [methods[n]["compute"].get("trainable_params") or 0 for n in names]
        steps = [1000 * (methods[n]["compute"].get("step_time_s") or 0) for n in names]
        ax_params.bar(names, params, color=colours)
        ax_params.set_title("trainable parameters", fontsize=10)
        ax_step.bar(names, steps, color=colours)
        ax_step.set_title("mean training step time (ms)", fontsize=10)
        for ax, values, fmt in ((ax_params, params, _compact), (ax_step, steps, "{:.0f}".format)):
            for i, value in enumerate(values):
                ax.annotate(fmt(value), (i, value), ha="center", va="bottom", fontsize=8)
            ax.set_ylim(0, 1.15 * max(max(values), 1e-9))
    path = _save(fig, path)
    plt.close(fig)
    return path
