"""``robosteer bench`` and ``robosteer pretrain`` take their options from StudyConfig and PretrainConfig: every field a
flag (today's names kept), ``--config FILE``, and the resolved options saved as ``OUT/options.json``."""

from __future__ import annotations

import dataclasses
import json

import pytest
from typer.testing import CliRunner

from robosteer.commands._options import SAVED_NAME, Flag


def _cli():
    from robosteer.cli import app

    return app


def _help(command: str) -> str:
    result = CliRunner().invoke(_cli(), [command, "--help"], env={"COLUMNS": "240"})
    assert result.exit_code == 0, result.output
    return result.output


def test_bench_help_lists_every_study_field():
    from robosteer.commands.bench import FLAGS, HIDDEN
    from robosteer.study import StudyConfig

    output = _help("bench")
    for field in dataclasses.fields(StudyConfig):
        if field.name not in HIDDEN:
            flag = FLAGS.get(field.name, Flag()).name or "--" + field.name.replace("_", "-")
            assert f"{flag} " in output, field.name
    for flag in ("--micro", "--ros-seconds", "--sections", "--out", "--config", "--lr", "--unseen", "--videos"):
        assert flag in output
    assert "--lrs" not in output and "--unseen-tasks" not in output and "--videos-per-cell" not in output


@pytest.mark.slow
def test_pretrain_help_lists_every_pretrain_field():
    from robosteer.commands.pretrain import HIDDEN
    from robosteer.pretrain.pipeline import PretrainConfig

    output = _help("pretrain")
    for field in dataclasses.fields(PretrainConfig):
        if field.name not in HIDDEN:
            assert f"--{field.name.replace('_', '-')} " in output, field.name
    assert "--out" in output and "--config" in output and "--spec" not in output


@pytest.mark.slow
def test_pretrain_config_file_flags_and_saved_options(tmp_path, monkeypatch):
    from robosteer.pretrain import pipeline

    seen = []

    def run_pretraining(cfg, command):
        seen.append((cfg, command))
        return cfg.out / "policy"

    monkeypatch.setattr(pipeline, "run_pretraining", run_pretraining)
    config = tmp_path / "pretrain.yaml"
    config.write_text("tasks: pick_cube,push_cube\nepisodes_per_task: 7,9\nsteps: 5\nnoise-std: 0.01\n")
    out = tmp_path / "base"
    result = CliRunner().invoke(
        _cli(),
        [
            "pretrain",
            "--config",
            str(config),
            "--steps",
            "14",
            "--init-from",
            str(tmp_path / "ckpt"),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    cfg = seen[-1][0]
    assert cfg.tasks == ("pick_cube", "push_cube") and cfg.episodes_per_task == (7, 9)
    assert cfg.steps == 14 and cfg.noise_std == 0.01 and cfg.lr == 5e-4  # the flag wins, the rest keep defaults
    assert cfg.init_from == tmp_path / "ckpt" and cfg.out == out
    saved = json.loads((out / SAVED_NAME).read_text())
    assert saved["episodes_per_task"] == [7, 9] and saved["init_from"] == str(tmp_path / "ckpt")
    assert "out" not in saved and "spec" not in saved
    again = tmp_path / "again"
    result = CliRunner().invoke(_cli(), ["pretrain", "--config", str(out / SAVED_NAME), "--out", str(again)])
    assert result.exit_code == 0, result.output
    assert dataclasses.replace(seen[-1][0], out=out) == cfg
    assert json.loads((again / SAVED_NAME).read_text()) == saved


def test_bench_flags_and_config_file_build_the_study(tmp_path, monkeypatch):
    import robosteer.study
    from robosteer.commands import bench

    seen = []
    monkeypatch.setattr(robosteer.study, "run_study", lambda config, console, command: seen.append(config) or {})
    monkeypatch.setattr(bench, "print_study_summary", lambda summary, out, console: None)
    argv = ["bench", "--task", "pick_mug", "--demos", "5", "--methods", "zero,steer,full", "--lr", "full=1e-4"]
    argv += ["--head-rank", "4", "--variations", "none,lighting", "--unseen", "off", "--videos", "0"]
    out = tmp_path / "study"
    result = CliRunner().invoke(_cli(), [*argv, "--out", str(out)])
    assert result.exit_code == 0, result.output
    config = seen[-1]
    assert (config.task, config.demos, config.methods, config.lrs) == (
        "pick_mug",
        5,
        ("zero", "steer", "full"),
        {"full": 1e-4},
    )
    assert (config.head_rank, config.variations, config.unseen_tasks, config.videos_per_cell) == (
        4,
        ("none", "lighting"),
        (),
        0,
    )
    assert config.steps == 300 and config.episodes == 50 and config.image_size == 96  # defaults as before
    saved = json.loads((out / SAVED_NAME).read_text())
    assert saved["lrs"] == {"full": 1e-4} and saved["unseen_tasks"] == [] and "out" not in saved
    again = tmp_path / "again"
    result = CliRunner().invoke(
        _cli(), ["bench", "--config", str(out / SAVED_NAME), "--steps", "7", "--out", str(again)]
    )
    assert result.exit_code == 0, result.output
    rerun = dataclasses.asdict(seen[-1])
    assert rerun == {**dataclasses.asdict(config), "out": again, "steps": 7}


def test_bench_and_study_defaults_follow_the_suite(tmp_path):
    """The suite decides a study's task, base policy, presets, unseen and forgetting tasks and demo noise; bare
    Meta-World task names are qualified; an explicit choice wins."""
    from robosteer.errors import RobosteerError
    from robosteer.study import StudyConfig
    from robosteer.study.plan import StudyPlan

    franka = StudyConfig(out=tmp_path / "a")
    assert (franka.task, franka.policy, franka.unseen_tasks) == ("place_cube", "embedded", ("pick_mug",))
    assert franka.variations == ("none", "lighting", "distractors", "object_form", "paraphrase")
    world = StudyConfig(out=tmp_path / "b", suite="metaworld")
    assert (world.task, world.policy, world.variations, world.unseen_tasks) == (
        "metaworld/drawer-open",
        "embedded-metaworld",
        ("none",),
        (),
    )
    assert StudyConfig(out=tmp_path / "c", suite="metaworld", task="lever-pull").task == "metaworld/lever-pull"
    with pytest.raises(RobosteerError, match="unknown task 'lever-pull' in suite franka"):
        StudyConfig(out=tmp_path / "d", task="lever-pull")

    plan = StudyPlan(task="metaworld/shelf-place")
    assert (plan.policy, plan.demo_noise, len(plan.forgetting_tasks)) == ("embedded-metaworld", 0.3, 10)
    assert "metaworld/reach" in plan.forgetting_tasks
    franka_plan = StudyPlan()
    assert (franka_plan.policy, franka_plan.demo_noise) == ("embedded", 0.01)
    assert franka_plan.forgetting_tasks == ("pick_cube", "push_cube", "press_button")
    assert StudyPlan(task="metaworld/shelf-place", forgetting_tasks=(), demo_noise=0.0).forgetting_tasks == ()


def test_bench_summary_prints_a_study_without_steer_or_lora(tmp_path):
    from rich.console import Console

    from robosteer.commands.bench import print_study_summary

    cell = {"task": "place_cube", "variation": "position", "success_rate": 0.02, "ci95": [0.004, 0.105]}
    compute = {"trainable_params": 2124128, "step_time_s": 0.136, "peak_memory_mb": 87.2, "train_wall_s": 138.0}
    summary = {
        "config": {"task": "place_cube", "episodes": 50},
        "methods": {"zero": {"eval": {"cells": [cell]}}, "full": {"eval": {"cells": [cell]}, "compute": compute}},
        "timings_s": {"total": 268.0},
    }
    console = Console(record=True, width=160)
    print_study_summary(summary, tmp_path, console)
    text = console.export_text()
    assert "place_cube / position" in text and "2,124,128" in text and "why steer" not in text
