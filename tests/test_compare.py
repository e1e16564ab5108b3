"""robosteer compare: two evaluations' cells matched by task and episode seeds, the difference's Newcombe interval
and the margin rule; refusals name the problem before any output."""

from __future__ import annotations

import json

import pytest
from helpers.cli import run_cli

from robosteer.evaluation import difference_interval
from robosteer.evaluation.compare import compare_cells, load_cells
from robosteer.evaluation.report import EvalResults, summarize_cells
from robosteer.pretrain.pipeline import summarize


def episode_records(task: str, successes: int, episodes: int, seed: int) -> list[dict]:
    """Episode records as the rollout returns them: the first ``successes`` episodes succeed."""
    return [
        {"task": task, "variation": "none", "success": i < successes, "length": 30, "seed": seed + i}
        for i in range(episodes)
    ]


def write_eval(folder, counts: dict[str, int], episodes: int = 50, seed: int = 900000):
    """A ``robosteer eval`` results.json through the real writer."""
    records = [r for task, k in counts.items() for r in episode_records(task, k, episodes, seed)]
    EvalResults(meta={"seed": seed}, cells=summarize_cells(records), episodes=records).save(folder)
    return folder


def write_pretrain_eval(folder, counts: dict[str, int], episodes: int = 50, seed: int = 900000):
    """A ``robosteer pretrain`` eval.json through the real summariser."""
    folder.mkdir(parents=True)
    rows = [summarize(episode_records(task, k, episodes, seed), task, "none", seed) for task, k in counts.items()]
    (folder / "eval.json").write_text(json.dumps(rows))
    return folder


def test_eval_and_pretrain_results_compare_cell_by_cell(tmp_path):
    a = write_eval(tmp_path / "a", {"reach_bowl": 45, "push_cube": 30})
    b = write_pretrain_eval(tmp_path / "b", {"reach_bowl": 20, "push_cube": 29, "pick_cube": 40})
    rows = {row["task"]: row for row in compare_cells(load_cells(a), load_cells(b))}
    assert set(rows) == {"reach_bowl", "push_cube"}  # pick_cube ran on one side only
    reach = rows["reach_bowl"]
    assert reach["effect"] == pytest.approx(0.5)
    assert reach["ci95"] == pytest.approx(difference_interval(45, 50, 20, 50))
    assert reach["verdict"] == "better"
    assert rows["push_cube"]["verdict"] == "undecided"  # 1 point, interval far wider than the margin


def test_large_equal_samples_are_called_equivalent(tmp_path):
    a = write_eval(tmp_path / "a", {"press_button": 2500}, episodes=5000, seed=0)
    b = write_eval(tmp_path / "b", {"press_button": 2510}, episodes=5000, seed=0)
    (row,) = compare_cells(load_cells(a), load_cells(b))
    assert row["verdict"] == "equivalent"


def test_cli_prints_the_table_with_the_given_names(tmp_path):
    a = write_eval(tmp_path / "a", {"reach_bowl": 45})
    b = write_eval(tmp_path / "b", {"reach_bowl": 20})
    code, output = run_cli(["compare", str(a), str(b), "--names", "96px,48px"])
    assert code == 0, output
    assert "96px - 48px" in output
    assert "| reach_bowl | none | 50 | 90 % [79-96] | 40 % [28-54] | +50 points" in output
    assert "better" in output


@pytest.mark.parametrize(
    ("second", "expect"),
    [
        ({"seed": 0}, "same --seed and --episodes"),  # other episodes
        ({"episodes": 20}, "same --seed and --episodes"),
        ({"task": "push_cube"}, "share no (task, variation) cell"),
    ],
)
def test_cells_of_other_episodes_or_tasks_are_refused(tmp_path, second, expect):
    a = write_eval(tmp_path / "a", {"reach_bowl": 45})
    task = second.pop("task", "reach_bowl")
    b = write_eval(tmp_path / "b", {task: 20}, **second)
    code, output = run_cli(["compare", str(a), str(b)])
    assert code == 2
    assert expect in output
    assert len(output.strip().splitlines()) == 1


def test_a_foreign_file_or_empty_folder_is_refused_in_one_line(tmp_path):
    a = write_eval(tmp_path / "a", {"reach_bowl": 45})
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({"cells": [{"name": "x"}]}))
    (tmp_path / "empty").mkdir()
    for other, expect in ((foreign, "not a robosteer evaluation"), (tmp_path / "empty", "neither results.json")):
        code, output = run_cli(["compare", str(a), str(other)])
        assert code == 2
        assert expect in output
        assert len(output.strip().splitlines()) == 1
