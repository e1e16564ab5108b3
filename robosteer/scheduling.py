"""Undo the real-time scheduling that video encoding leaves on the calling thread.

Encoding a video with SVT-AV1 (PyAV's libsvtav1, lerobot's default video codec) as root switches the *calling* thread
to SCHED_FIFO priority 99, and it stays so after the encoder closes. Every thread and process started from that thread
afterwards inherits it: a recorder, an evaluation or a test run that encoded a video would then starve everything
else on the machine (measured with /proc/<pid>/task/*/stat: the ROS spin, sim and inference threads of the closed-loop
test ran real-time while the llvmpipe render threads started earlier did not).
"""

from __future__ import annotations

import os


def reset_realtime_scheduling() -> bool:
    """Put the calling thread back on the normal time-sharing scheduler; True when it was not on it."""
    try:
        if os.sched_getscheduler(0) == os.SCHED_OTHER:
            return False
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        return True
    except (AttributeError, OSError):  # not Linux, or not allowed: nothing to undo
        return False
