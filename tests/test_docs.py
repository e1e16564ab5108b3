"""The README's command table, variation presets and extras match what the CLI and pyproject offer; help text keeps
square brackets (no markup)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from robosteer.cli import app

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _help(*args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "240"})
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def test_readme_command_table_lists_every_command():
    listed = set(re.findall(r"^\s+([a-z][a-z-]+)\s{2,}\S", CliRunner().invoke(app, ["--help"]).output, re.M))
    assert {"rank", "finetune", "eval", "record", "demo"} <= listed
    for command in listed:
        assert f"| `robosteer {command}" in README, f"README's command table lacks `robosteer {command}`"


@pytest.mark.parametrize("command", [("eval",), ("record", "sim")])
def test_help_and_readme_name_every_variation_preset(command):
    import sim

    text = _help(*command)
    for preset in sim.VARIATION_PRESETS:
        assert re.search(rf"\b{preset}\b", text), f"{' '.join(command)} --help lacks preset {preset}"
        assert f"`{preset}`" in README, f"README lacks preset {preset}"


def test_readme_names_every_extra():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for extra in extras:
        assert f"`{extra}`" in README, f"README does not name the {extra} extra"


def test_help_text_is_not_markup():
    assert "[rad]" in _help("record", "sim")
    assert "a+b" in README and "lighting+distractors" in _help("eval")


def _table_rows() -> list[tuple[list[str], str]]:
    rows = []
    for line in README.splitlines():
        match = re.match(r"\| `robosteer ([a-z-]+)( sim)?\b", line)
        if match:
            rows.append(([match[1], *(["sim"] if match[2] else [])], line))
    return rows


@pytest.mark.parametrize("command,row", _table_rows(), ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_readme_table_options_exist(command, row):
    text = _help(*command)
    for option in set(re.findall(r"(--[a-z][a-z-]+)", row)):
        assert option in text, f"README's row for `robosteer {' '.join(command)}` names {option}, which --help lacks"


def test_cli_logging_prints_library_warnings_as_one_line():
    import logging

    from robosteer.cli import _OneLine

    record = logging.LogRecord("robosteer.heads.ranking", logging.WARNING, __file__, 1, "only %d heads", (3,), None)
    assert _OneLine().format(record) == "warning: only 3 heads"
