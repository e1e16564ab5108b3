"""Progress bars that also report in logs.

rich draws nothing while its console is not a terminal (``nohup``, a CI log, a file) and tqdm redraws its bar several
times a second into the file. :class:`Progress` is rich's bar in a terminal and, elsewhere, one plain line per task at
most every ``log_every_s`` seconds and when the task finishes; :func:`tqdm_interval` slows tqdm's redraws in a log.
"""

from __future__ import annotations

import sys
import time

from rich.progress import Progress as RichProgress
from rich.progress import TaskID

LOG_EVERY_S = 30.0
"""Seconds between two plain progress lines of one task in a log."""


class Progress(RichProgress):
    """``rich.progress.Progress`` that prints plain lines ("recording: 12/80, 3 min 10 s") when not in a terminal."""

    def __init__(self, *columns, log_every_s: float = LOG_EVERY_S, **kwargs):
        super().__init__(*columns, **kwargs)
        self.log_every_s = log_every_s
        self._logged_at: dict[TaskID, float] = {}
        self._finished_logged: set[TaskID] = set()

    def update(self, task_id: TaskID, **kwargs) -> None:
        super().update(task_id, **kwargs)
        self._log_line(task_id)

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._log_line(task_id)

    def _log_line(self, task_id: TaskID) -> None:
        if self.disable or self.console.is_terminal or task_id in self._finished_logged:
            return
        task = next(t for t in self.tasks if t.id == task_id)
        now = time.monotonic()
        if not task.finished and now - self._logged_at.get(task_id, -float("inf")) < self.log_every_s:
            return
        self._logged_at[task_id] = now
        if task.finished:
            self._finished_logged.add(task_id)
        total = f"/{task.total:.0f}" if task.total is not None else ""
        elapsed = int(task.elapsed or 0)
        self.console.print(
            f"{task.description}: {task.completed:.0f}{total}, {elapsed // 60} min {elapsed % 60} s",
            markup=False,
            highlight=False,
        )


def tqdm_interval(stream=None) -> float:
    """tqdm's ``mininterval``: its default in a terminal, ``LOG_EVERY_S`` when ``stream`` (stderr) is a log."""
    stream = stream if stream is not None else sys.stderr
    return 0.1 if getattr(stream, "isatty", lambda: False)() else LOG_EVERY_S
