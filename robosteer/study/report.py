"""The study's results.md: success per method x cell, compute table, ranking summary, targets, artifacts."""

from __future__ import annotations

from typing import Any


def _pct(cell: dict) -> str:
    low, high = cell["ci95"]
    return f"{100 * cell['success_rate']:.0f} % [{100 * low:.0f}-{100 * high:.0f}]"


def _count(value) -> str:
    if value is None:
        return "n/a"
    if value >= 1e6:
        return f"{value / 1e6:.2f} M"
    if value >= 1e3:
        return f"{value / 1e3:.1f} k"
    return str(int(value))


def _num(value, fmt: str, scale: float = 1.0) -> str:
    return "n/a" if value is None else fmt.format(value * scale)


def _ranking_lines(ranking: dict) -> list[str]:
    """Frames, stability, controls and causal check of the study's ranking, one sentence each."""
    from robosteer.heads.report import causal_text, controls_text, stability_text

    lines = []
    if ranking.get("frames"):
        lines.append(f"Scored on {ranking['frames']['n']} frames ({ranking['frames']['mode']}).")
    if ranking.get("stability"):
        lines.append(stability_text(ranking["stability"]) + ".")
    if ranking.get("controls"):
        lines.append(controls_text(ranking["controls"]) + ".")
    if ranking.get("causal"):
        lines.append(causal_text(ranking["causal"]) + ".")
    return lines


def success_table(methods: dict[str, dict]) -> list[str]:
    names = list(methods)
    cells = [(c["task"], c["variation"]) for c in methods[names[0]]["eval"]["cells"]]
    lines = ["| task | variation | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for task, variation in cells:
        row = []
        for name in names:
            by_cell = {(c["task"], c["variation"]): c for c in methods[name]["eval"]["cells"]}
            row.append(_pct(by_cell[(task, variation)]))
        lines.append(f"| {task} | {variation} | " + " | ".join(row) + " |")
    return lines


def compute_table(methods: dict[str, dict]) -> list[str]:
    sources = {(e.get("compute") or {}).get("peak_memory_source") or "" for e in methods.values()}
    memory = "peak memory (estimate)" if any(src.startswith("estimate") for src in sources) else "peak memory"
    lines = [
        f"| method | trainable params | share of total | peak lr | step time | {memory} | training wall time | "
        "final loss |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, entry in methods.items():
        c = entry.get("compute")
        if not c:
            lines.append(f"| {name} | 0 | 0 % | - | - | - | - | - |")
            continue
        share = (
            (c["trainable_params"] / c["total_params"]) if c.get("trainable_params") and c.get("total_params") else None
        )
        lines.append(
            f"| {name} | {_count(c.get('trainable_params'))} | {_num(share, '{:.3f} %', 100)} | "
            f"{_num(c.get('peak_lr'), '{:.0e}')} | "
            f"{_num(c.get('step_time_s'), '{:.0f} ms', 1000)} | {_num(c.get('peak_memory_mb'), '{:.0f} MB')} "
            f"| {_num(c.get('train_wall_s'), '{:.0f} s')} | {_num(c.get('final_loss'), '{:.4f}')} |"
        )
    return lines


def ratios(methods: dict[str, dict]) -> dict[str, float | None]:
    """steer / LoRA ratios of trainable parameters, step time and peak memory (None when a side is missing)."""
    steer, lora = (methods.get(m, {}).get("compute") or {} for m in ("steer", "lora"))
    out = {}
    for key in ("trainable_params", "step_time_s", "peak_memory_mb", "train_wall_s"):
        a, b = steer.get(key), lora.get(key)
        out[key] = (a / b) if a is not None and b else None
    return out


def target_lines(methods: dict[str, dict], task: str) -> list[str]:
    """The issue's targets: steer >= LoRA + 15 points on each cell, and steer >= 80 % on the task's nominal cell."""
    if "steer" not in methods or "lora" not in methods:
        return ["(targets need both steer and lora)"]
    steer = {(c["task"], c["variation"]): c["success_rate"] for c in methods["steer"]["eval"]["cells"]}
    lora = {(c["task"], c["variation"]): c["success_rate"] for c in methods["lora"]["eval"]["cells"]}
    lines = []
    for cell, rate in steer.items():
        diff = 100 * (rate - lora[cell])
        verdict = "met" if diff >= 15 else "not met"
        lines.append(f"- {cell[0]} / {cell[1]}: steer - LoRA = {diff:+.0f} points (target +15: {verdict})")
    nominal = steer.get((task, "none"))
    if nominal is not None:
        lines.append(
            f"- {task} / none: steer = {100 * nominal:.0f} % (target 80 %: {'met' if nominal >= 0.8 else 'not met'})"
        )
    return lines


def study_markdown(summary: dict[str, Any]) -> str:
    cfg, methods = summary["config"], summary["methods"]
    ranking = summary.get("ranking") or {}
    timing = summary.get("timings_s", {})
    if summary["dataset"].get("first_seed") is not None:
        demos = (
            f"Demonstrations: scripted expert, preset `{cfg['demo_variations']}`, seeds from "
            f"{summary['dataset']['first_seed']} (disjoint from evaluation).  "
        )
    else:
        demos = f"Demonstrations: the dataset `{cfg['dataset']}`.  "
    lines = [
        f"# robosteer study: {cfg['task']} from {summary['dataset']['episodes']} demonstrations",
        "",
        f"Command: `{summary.get('command', 'robosteer bench')}`  ",
        f"Base policy `{cfg['policy']}` (fingerprint `{summary.get('policy_fingerprint')}`); every finetuned method: "
        f"{cfg['steps']} steps, batch {cfg['batch_size']}, seed {cfg['seed']}. Evaluation: {cfg['episodes']} episodes "
        f"per cell, seeds {cfg['seed']}..{cfg['seed'] + cfg['episodes'] - 1}, identical for every method.  ",
        demos,
        f"Machine: {summary['machine']['description']}; total wall time {timing.get('total', 0):.0f} s.",
        "",
        "## Success (Wilson 95 % interval)",
        "",
        *success_table(methods),
        "",
        "![success](plots/success.png)",
        "",
        "## Compute (same data, steps, batch and schedule)",
        "",
        *compute_table(methods),
        "",
    ]
    r = ratios(methods)
    if any(v is not None for v in r.values()):
        lines += [
            f"steer / LoRA: trainable parameters x{_num(r['trainable_params'], '{:.4f}')}, step time "
            f"x{_num(r['step_time_s'], '{:.2f}')}, peak memory x{_num(r['peak_memory_mb'], '{:.2f}')}, "
            f"training wall time x{_num(r['train_wall_s'], '{:.2f}')}.",
            "",
        ]
    lines += ["![compute](plots/compute.png)", ""]
    if ranking:
        lines += [
            "## Head ranking",
            "",
            f"{len(ranking.get('selected', []))} heads selected in {ranking.get('time_s', 0):.1f} s: "
            f"{', '.join(ranking.get('selected', [])[:20])}"
            + (" ..." if len(ranking.get("selected", [])) > 20 else "")
            + ".",
            *_ranking_lines(ranking),
            "",
            "![heads](plots/heads.png)",
            "",
        ]
    lines += [
        "## Targets",
        "",
        *target_lines(methods, cfg["task"]),
        "",
        "## Artifacts",
        "",
        "- `results.json`: everything above, machine-readable",
        "- `base_policy/`: the exact base weights every method started from (LeRobot checkpoint)",
        "- `ranking/heads.json`, `plots/heads.png`: per-head scores and the heatmap",
        "- `methods/<method>/`: adapters, merged checkpoints, training logs, summary.json",
        "- `eval/<method>/results.md` and `eval/<method>/videos/*.mp4`: per-method evaluations and videos",
        "",
        "Stage times: " + ", ".join(f"{k} {v:.0f} s" for k, v in timing.items()) + ".",
    ]
    return "\n".join(lines) + "\n"
