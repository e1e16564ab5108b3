"""Run the real ``robosteer`` command line in this process."""

from __future__ import annotations

import contextlib
import io

from robosteer.cli import main


def run_cli(args: list[str]) -> tuple[int, str]:
    """Run ``robosteer ARGS`` in this process; its exit status and everything it printed."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        try:
            main(args)
            code = 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    return code, buffer.getvalue()
