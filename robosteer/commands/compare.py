"""``robosteer compare``: the difference between two evaluations of the same cells, with its interval."""

from __future__ import annotations

from pathlib import Path

import typer


def compare(
    first: Path = typer.Argument(
        ..., metavar="EVAL_A", help="robosteer eval --out folder (results.json) or pretrain --out (eval.json)."
    ),
    second: Path = typer.Argument(
        ..., metavar="EVAL_B", help="The evaluation to subtract, of the same cells and episode seeds."
    ),
    names: str = typer.Option("A,B", help="Names of the two evaluations in the table, comma separated."),
    margin: float = typer.Option(0.10, help="Smallest difference in success rate worth calling (0.10 = 10 points)."),
) -> None:
    """Compare two evaluations cell by cell: success rates (Wilson 95 % CI), their difference (Newcombe 95 % CI) and
    a verdict: better/worse when the interval excludes 0 and the difference reaches --margin, equivalent when the
    whole interval lies within +-margin, else undecided. Cells must have run the same episode seeds. One evaluation
    per side says nothing about training-seed variance: robosteer study measures that."""
    from robosteer.errors import RobosteerError
    from robosteer.evaluation.compare import compare_cells, comparison_table, load_cells

    labels = [name.strip() for name in names.split(",")]
    if len(labels) != 2 or not all(labels):
        raise RobosteerError(f"--names takes two comma-separated names, got {names!r}: e.g. --names 48px,96px")
    if not 0 < margin < 1:
        raise RobosteerError(f"--margin is a fraction of the success rate in (0, 1), got {margin}: e.g. 0.10")
    rows = compare_cells(load_cells(first), load_cells(second), margin)
    typer.echo(comparison_table(rows, *labels))


def register(app: typer.Typer) -> None:
    app.command("compare")(compare)
