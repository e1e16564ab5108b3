"""Turn stored cells into the study's results: per-arm rates with hierarchical intervals, the pre-declared
contrasts with verdicts, success vs demos, forgetting, compute, and the gate. Rendered from ``results.json`` alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from robosteer.evaluation.paired import arm_interval, contrast, verdict_words
from robosteer.study.cells import CELL_FILE
from robosteer.study.plan import GATE, StudyPlan


def _records(out: Path) -> dict[str, dict]:
    records = {}
    for path in sorted((out / "cells").glob(f"*/{CELL_FILE}")):
        record = json.loads(path.read_text())
        records[record["cell"]] = record
    return records


def _rows(plan: StudyPlan, records: dict, arm: str, demos: int, task: str) -> dict[int, list[int]]:
    """Per training seed that has finished: the arm's 0/1 outcomes on ``task`` (zero is deterministic: its one run
    stands for every seed)."""
    if arm == "zero":
        record = records.get(f"zero__demos{demos}__seed0")
        if record is None or task not in record["outcomes"]:
            return {}
        return {seed: record["outcomes"][task] for seed in range(plan.train_seeds)}
    rows = {}
    for seed in range(plan.train_seeds):
        record = records.get(f"{arm}__demos{demos}__seed{seed}")
        if record is not None and task in record["outcomes"]:
            rows[seed] = record["outcomes"][task]
    return rows


def _compute(records: dict, arm: str, demos: int) -> dict | None:
    figures = [r["compute"] for r in records.values() if r["inputs"]["arm"] == arm and r["inputs"]["demos"] == demos]
    figures = [f for f in figures if f]
    if not figures:
        return None
    keys = ("trainable_params", "step_time_s", "train_wall_s", "final_loss", "peak_memory_mb")
    return {k: float(np.mean([f[k] for f in figures if f.get(k) is not None] or [np.nan])) for k in keys}


def analyse(plan: StudyPlan, out: Path) -> dict:
    """results.json's content from the cells stored under ``out`` (a partial study reports the seeds it has)."""
    records = _records(out)
    by_demos = {}
    for n in plan.demos:
        arms, rows = {}, {}
        for arm in plan.arms:
            rows[arm] = _rows(plan, records, arm, n, plan.task)
            done = sum(1 for r in records.values() if r["inputs"]["arm"] == arm and r["inputs"]["demos"] == n)
            complete = len(rows[arm]) == plan.train_seeds
            arms[arm] = {"cells_done": done, "complete": complete, "compute": _compute(records, arm, n)}
            if rows[arm]:
                arms[arm].update(arm_interval(np.array(list(rows[arm].values()))), seeds_used=sorted(rows[arm]))
                arms[arm]["seed_rates"] = {str(seed): float(np.mean(o)) for seed, o in sorted(rows[arm].items())}
                arms[arm]["forgetting"] = _forgetting(plan, records, arm, n)
        by_demos[str(n)] = {"arms": arms, "contrasts": [_contrast(c, rows) for c in plan.contrasts()]}
    return {"plan": plan.to_dict(), "by_demos": by_demos, "gate": _gate(plan, by_demos), "cells": len(records)}


def _contrast(c, rows: dict) -> dict:
    """A contrast on the training seeds both arms have finished."""
    entry = {"a": c.a, "b": c.b, "question": c.question}
    common = sorted(set(rows[c.a]) & set(rows[c.b]))
    if common:
        a = np.array([rows[c.a][s] for s in common])
        b = np.array([rows[c.b][s] for s in common])
        result = contrast(a, b)
        entry.update(result, seeds_used=common, words=verdict_words(c.a, c.b, result) + f" ({len(common)} seeds)")
    return entry


def _forgetting(plan: StudyPlan, records: dict, arm: str, n: int) -> dict:
    out = {}
    for task in plan.forgetting_tasks:
        rows = _rows(plan, records, arm, n, task)
        if rows:
            out[task] = arm_interval(np.array(list(rows.values())))
    return out


def _gate(plan: StudyPlan, by_demos: dict) -> dict | None:
    """Zero-shot <= 10 % and full finetuning from 20 demos >= 70 % over >= 50 episodes, when both were measured."""
    arms = by_demos.get(str(GATE["demos"]), {}).get("arms", {})
    zero, full = arms.get("zero", {}), arms.get("full", {})
    if "rate" not in zero or "rate" not in full or plan.episodes < GATE["episodes"]:
        return None  # not a gate measurement (too few episodes): no verdict either way
    passed = zero["rate"] <= GATE["zero_max"] and full["rate"] >= GATE["full_min"]
    return {**GATE, "zero": zero["rate"], "full": full["rate"], "episodes": plan.episodes, "passed": bool(passed)}


def _num(value, fmt: str, scale: float = 1.0) -> str:
    return "-" if value is None or value != value else fmt.format(value * scale)


def _pct(value: float) -> str:
    return f"{100 * value:.0f} %"


def render_markdown(results: dict) -> str:
    """results.md from results.json's content alone."""
    plan = results["plan"]
    from sim.suites import FRANKA, split_task

    noise_unit = "rad" if split_task(plan["task"])[0].name == FRANKA else "action units of"
    lines = [
        f"# Study: {plan['task']}{_preset(plan)} ({results['cells']} cells stored)",
        "",
        f"Arms {', '.join(plan['arms'])}; {plan['train_seeds']} training seeds; demos {', '.join(map(str, plan['demos']))}; "
        f"{plan['episodes']} evaluation episodes per seed (seeds {plan['eval_seed']}..); {plan['steps']} steps at "
        f"batch {plan['batch_size']}; demos recorded with {plan['demo_noise']} {noise_unit} execution noise.",
        "",
    ]
    gate = results.get("gate")
    if gate:
        verdict = "passes" if gate["passed"] else "FAILS"
        lines += [
            f"**Gate:** zero-shot {_pct(gate['zero'])} (must be <= {_pct(gate['zero_max'])}), full finetuning from "
            f"{gate['demos']} demos {_pct(gate['full'])} (must be >= {_pct(gate['full_min'])}) over "
            f"{gate['episodes']} episodes: the task {verdict} the gate.",
            "",
        ]
    for n, block in results["by_demos"].items():
        lines += [
            f"## {n} demos",
            "",
            "| arm | success [95 % CI, seeds then episodes] | seeds done | trainable params | step time | "
            "training wall | peak memory (estimate) |",
            "|---|---|---|---|---|---|---|",
        ]
        for arm, info in block["arms"].items():
            rate = f"{_pct(info['rate'])} [{_pct(info['ci95'][0])}-{_pct(info['ci95'][1])}]" if "rate" in info else "-"
            c = info.get("compute") or {}
            seeds = len(info.get("seeds_used", []))
            lines.append(
                f"| {arm} | {rate} | {seeds} | {_num(c.get('trainable_params'), '{:,.0f}')} | "
                f"{_num(c.get('step_time_s'), '{:.0f} ms', 1000)} | {_num(c.get('train_wall_s'), '{:.0f} s')} | "
                f"{_num(c.get('peak_memory_mb'), '{:.0f} MB')} |"
            )
        lines += ["", "Contrasts (declared before the study ran):", ""]
        for c in block["contrasts"]:
            lines.append(f"- {c['question']} " + (c.get("words") or f"{c['a']} vs {c['b']}: not measured yet"))
        lines.append("")
        forgetting = {a: i.get("forgetting") for a, i in block["arms"].items() if i.get("forgetting")}
        if forgetting:
            tasks = list(next(iter(forgetting.values())))
            lines += ["Forgetting (success on pretraining tasks after adaptation):", ""]
            lines += ["| arm | " + " | ".join(tasks) + " |", "|---|" + "---|" * len(tasks)]
            for arm, per_task in forgetting.items():
                lines.append(
                    f"| {arm} | " + " | ".join(_pct(per_task[t]["rate"]) for t in tasks if t in per_task) + " |"
                )
            lines.append("")
    return "\n".join(lines) + "\n"


def plot_success_vs_demos(results: dict, path: Path) -> None:
    """Success against the number of demos, one line per arm (95 % intervals); with one demo count, a strip per arm
    instead: every training seed's success as a dot beside the pooled rate and its interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    demos = sorted(int(n) for n in results["by_demos"])
    fig, ax = plt.subplots(figsize=(6.5 if len(demos) == 1 else 5.5, 3.6))
    if len(demos) == 1:
        _seed_strip(ax, results["by_demos"][str(demos[0])]["arms"], results["plan"]["arms"])
        title = f"{results['plan']['task']}, {demos[0]} demos: per-seed success (dots), pooled with 95 % CI"
    else:
        _lines_over_demos(ax, results, demos)
        title = f"{results['plan']['task']}: success vs demos (95 % CI)"
    ax.set_ylabel("success [%]")
    ax.set_ylim(-2, 102)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _lines_over_demos(ax, results: dict, demos: list[int]) -> None:
    for arm in results["plan"]["arms"]:
        points = [(n, results["by_demos"][str(n)]["arms"][arm]) for n in demos]
        points = [(n, a) for n, a in points if "rate" in a]
        if not points:
            continue
        xs = [n for n, _ in points]
        ys = [100 * a["rate"] for _, a in points]
        err = [
            [100 * (a["rate"] - a["ci95"][0]) for _, a in points],
            [100 * (a["ci95"][1] - a["rate"]) for _, a in points],
        ]
        ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=arm)
    ax.set_xlabel("demonstrations")
    ax.set_xticks(demos)
    ax.legend(fontsize=7)


def _seed_strip(ax, arms: dict, order: list[str]) -> None:
    """One column per arm: per-seed rates as small dots (spread sideways by seed), the pooled rate with its
    interval beside them."""
    shown = [arm for arm in order if "rate" in arms[arm]]
    for x, arm in enumerate(shown):
        info = arms[arm]
        seed_rates = [100 * r for r in info.get("seed_rates", {}).values()]
        offsets = np.linspace(-0.25, -0.05, len(seed_rates)) if len(seed_rates) > 1 else np.array([-0.15])
        ax.scatter(x + offsets, seed_rates, s=14, color="#777777", zorder=2)
        rate, (low, high) = 100 * info["rate"], (100 * v for v in info["ci95"])
        ax.errorbar([x + 0.12], [rate], yerr=[[rate - low], [high - rate]], fmt="o", color="#d62728", capsize=3)
        ax.annotate(f"{rate:.0f}", (x + 0.2, rate), fontsize=7, va="center")
    ax.set_xticks(range(len(shown)), shown, fontsize=8, rotation=20)
    ax.set_xlim(-0.6, len(shown) - 0.4)
    ax.grid(axis="y", alpha=0.3)


def _preset(plan: dict) -> str:
    """`` (preset P)`` for a study run under a variation preset; nothing for ``none`` (and plans that predate it)."""
    preset = plan.get("variations", "none")
    return "" if preset == "none" else f" (preset {preset})"
