"""Progress bars report in logs: plain lines when the console is not a terminal, rich's bar when it is."""

from __future__ import annotations

import io

from rich.console import Console

from robosteer.progress import Progress, tqdm_interval


def _run(console: Console, log_every_s: float) -> str:
    with Progress(console=console, log_every_s=log_every_s) as bar:
        job = bar.add_task("recording demos", total=4)
        for _ in range(4):
            bar.advance(job)
    return console.file.getvalue()


def test_a_log_gets_plain_lines_and_the_finished_line_once():
    out = _run(Console(file=io.StringIO(), force_terminal=False), log_every_s=0.0)
    lines = [line for line in out.splitlines() if line.startswith("recording demos: ")]
    assert [line.split(",")[0] for line in lines] == [f"recording demos: {k}/4" for k in (1, 2, 3, 4)]
    assert "min" in lines[-1] and "\x1b" not in "".join(lines)


def test_a_log_is_rate_limited_but_always_gets_the_end():
    out = _run(Console(file=io.StringIO(), force_terminal=False), log_every_s=3600.0)
    lines = [line.split(",")[0] for line in out.splitlines() if line.startswith("recording demos: ")]
    assert lines == ["recording demos: 1/4", "recording demos: 4/4"]


def test_a_terminal_gets_no_plain_lines():
    out = _run(Console(file=io.StringIO(), force_terminal=True, width=80), log_every_s=0.0)
    assert "recording demos: 1/4" not in out


def test_tqdm_redraws_slowly_in_a_log():
    assert tqdm_interval(io.StringIO()) > 1.0
