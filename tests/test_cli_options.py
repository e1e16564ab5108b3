"""Config dataclasses are the command-line options: flags, defaults and help come from the fields, ``--config FILE``
sets them (flags win), bad files fail in one line, and a command saves the resolved options beside its outputs."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import pytest
import typer
from typer.testing import CliRunner

from robosteer.commands._options import SAVED_NAME, ConfigCommand, ConfigOptions, Flag, config_options, field_docs
from robosteer.errors import RobosteerError


@dataclass
class Toy:
    """A small config."""

    steps: int = 10
    """Optimizer steps."""
    lr: float | None = None
    """Peak learning rate."""
    name: str = "toy"
    """What to call the run."""
    merge: bool = False
    """Also merge."""
    tasks: tuple[str, ...] = ("a", "b")
    """Tasks to run."""
    betas: tuple[float, float] = (0.9, 0.95)
    """Two betas."""
    secret: int = 3
    """Not on the command line."""


def _toy_app(seen: list) -> typer.Typer:
    app = typer.Typer(add_completion=False, rich_markup_mode=None)

    @config_options(Toy, flags={"tasks": Flag(name="--task", choices=("a", "b", "c"))}, hidden=("secret",))
    def run(options: ConfigOptions, out: str = typer.Option("o", help="Output folder.")) -> None:
        """Run the toy."""
        seen.append((out, options.build()))

    app.command("run", cls=ConfigCommand)(run)
    return app


def _invoke(args: list[str]):
    seen = []
    result = CliRunner().invoke(_toy_app(seen), args, env={"COLUMNS": "200"})
    return result, seen


def test_fields_become_flags_with_defaults_and_docstring_help():
    assert field_docs(Toy)["steps"] == "Optimizer steps."
    result, _ = _invoke(["--help"])
    text = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    for expected in (
        "--steps <int> Optimizer steps. [default: 10]",
        "--lr <float> Peak learning rate.",
        "--name <str> What to call the run. [default: toy]",
        "--merge / --no-merge Also merge.",
        "--task <str> Tasks to run. One of: a, b, c. [default: a,b]",
        "--betas <str> Two betas. [default: 0.9,0.95]",
        "--out <str> Output folder.",
        "--config <path>",
    ):
        assert expected in text, expected
    assert "--secret" not in text and "--tasks" not in text


def test_flags_parse_into_the_config():
    result, seen = _invoke(["--steps", "5", "--task", "c, a", "--betas", "0.8,0.9", "--merge", "--out", "p"])
    assert result.exit_code == 0, result.output
    assert seen == [("p", Toy(steps=5, tasks=("c", "a"), betas=(0.8, 0.9), merge=True))]
    bad, _ = _invoke(["--task", "a,x"])
    assert isinstance(bad.exception, RobosteerError) and str(bad.exception) == "--task 'x': use one of a, b, c"
    bad, _ = _invoke(["--betas", "0.8"])
    assert isinstance(bad.exception, RobosteerError) and "give 2 float values" in str(bad.exception)


def test_config_file_sets_fields_and_a_flag_overrides_it(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("steps: 7\nlr: 1e-4\ntasks: [c]\nmerge: true\nname: from-file\n")
    result, seen = _invoke(["--config", str(path), "--name", "from-flag"])
    assert result.exit_code == 0, result.output
    assert seen[0][1] == Toy(steps=7, lr=1e-4, tasks=("c",), merge=True, name="from-flag")
    (tmp_path / "run.json").write_text(json.dumps({"betas": [0.5, 0.6]}))
    result, seen = _invoke(["--config", str(tmp_path / "run.json")])
    assert seen[0][1].betas == (0.5, 0.6)


@pytest.mark.parametrize(
    "text,message",
    [
        ("stepz: 7\n", "unknown config field 'stepz'; remove it or use one of betas, lr, merge, name, steps, tasks"),
        ("secret: 1\n", "unknown config field 'secret'"),
        ("steps: many\n", "steps: 'many' is not int; fix the value"),
        ("merge: 1\n", "merge: 1 is not bool"),
        ("tasks: 3\n", "tasks: 3 is not a list of str"),
        ("- steps\n", "must hold a mapping"),
        ("steps: [\n", "is not valid YAML"),
    ],
)
def test_bad_config_file_is_one_clear_error(tmp_path, text, message):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    result, seen = _invoke(["--config", str(path)])
    assert isinstance(result.exception, RobosteerError) and not seen
    assert message in str(result.exception)


def test_cli_prints_an_unknown_field_as_one_line(tmp_path, capsys):
    from robosteer.cli import main

    path = tmp_path / "eval.yaml"
    path.write_text("epsiodes: 3\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "--policy", "expert", "--config", str(path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1
    assert "unknown config field 'epsiodes'; remove it or use one of" in err and "episodes" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_finetune_help_lists_every_public_field():
    from robosteer.commands.finetune import HIDDEN
    from robosteer.tuners.config import FinetuneConfig

    result = CliRunner().invoke(_cli(), ["finetune", "--help"], env={"COLUMNS": "240"})
    assert result.exit_code == 0, result.output
    public = [f.name for f in dataclasses.fields(FinetuneConfig) if f.name not in HIDDEN]
    for name in public:
        assert f"--{name.replace('_', '-')} " in result.output, name
    for flag in ("--policy", "--dataset", "--out", "--heads", "--device", "--quiet", "--config", "--no-merge"):
        assert flag in result.output
    assert "--progress" not in result.output and "--heads-fingerprint" not in result.output


def test_study_plan_file_and_flags(tmp_path):
    from robosteer.study.plan import StudyPlan

    plan = tmp_path / "plan.yaml"
    plan.write_text("arms: [zero, full]\ndemos: 5,10\nlrs: {full: 1e-4}\ntrain_seeds: 4\n")
    result = CliRunner().invoke(
        _cli(), ["study", "--out", str(tmp_path / "s"), "--plan", str(plan), "--train-seeds", "2", "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    expected = StudyPlan(arms=("zero", "full"), demos=(5, 10), lrs={"full": 1e-4}, train_seeds=2)
    text = " ".join(result.output.split())
    assert f"{len(expected.cells())} cells" in text and "2 training seeds, demos [5, 10]" in text


@pytest.mark.slow
def test_eval_saves_the_resolved_options_beside_its_results(tmp_path):
    config = tmp_path / "eval.yaml"
    config.write_text("tasks: pick_cube\nepisodes: 3\nworkers: 1\nvideos_per_cell: 0\nimage_size: 32\n")
    out = tmp_path / "eval"
    result = CliRunner().invoke(
        _cli(), ["eval", "--policy", "expert", "--config", str(config), "--episodes", "1", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    saved = json.loads((out / SAVED_NAME).read_text())
    assert saved["tasks"] == ["pick_cube"] and saved["episodes"] == 1 and saved["image_size"] == 32
    assert json.loads((out / "results.json").read_text())["cells"][0]["episodes"] == 1
    again = tmp_path / "again"
    result = CliRunner().invoke(
        _cli(), ["eval", "--policy", "expert", "--config", str(out / SAVED_NAME), "--out", str(again)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads((again / SAVED_NAME).read_text()) == saved


def _cli() -> typer.Typer:
    from robosteer.cli import app

    return app
