"""``robosteer demo``: registered, documented, and refuses to overwrite a folder that is not an earlier demo."""

import pytest
from typer.testing import CliRunner

from robosteer.cli import app
from robosteer.errors import RobosteerError


def test_demo_help_lists_its_options():
    result = CliRunner().invoke(app, ["demo", "--help"])
    assert result.exit_code == 0
    for option in ("--out", "--demos", "--steps", "--episodes"):
        assert option in result.output


def test_demo_refuses_a_foreign_output_folder(tmp_path):
    from robosteer.policies import embedded_available

    (tmp_path / "notes.txt").write_text("not a demo")
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path)])
    assert isinstance(result.exception, RobosteerError)
    expected = "not an earlier demo" if embedded_available() else "embedded base policy is not installed"
    assert expected in str(result.exception)
    assert (tmp_path / "notes.txt").read_text() == "not a demo"


@pytest.mark.parametrize("argv", [["bench"], ["bench", "--out", "x", "--methods", "zero,magic"]])
def test_bench_command_rejects_bad_input(argv, tmp_path):
    result = CliRunner().invoke(app, [a if a != "x" else str(tmp_path / "x") for a in argv])
    assert isinstance(result.exception, RobosteerError)
