"""Ctrl-C that never leaves half-written files or half-started worker pools."""

from __future__ import annotations

import contextlib
import signal
import threading


@contextlib.contextmanager
def interrupts_deferred():
    """Hold Ctrl-C (SIGINT) until the block is done, then deliver it to the handler that was in place (Python's:
    KeyboardInterrupt; a ROS node's: its shutdown): the work in the block (an episode being written, worker processes
    being started) completes first. Only the main thread can hold signals; in other threads this is a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)
        if caught:
            signal.raise_signal(signal.SIGINT)
