"""robosteer: adapt LeRobot VLA policies from a few demonstrations by finetuning only the attention heads that matter.

Robotic Steering (Mitra et al., arXiv 2511.22697) in PyTorch/LeRobot. The library never imports ``rclpy``,
``sim`` or ``mujoco`` at import time; heavy modules are imported where they are used.
"""

__version__ = "0.1.0"


def _import_numpy_with_ctrl_c_blocked() -> None:
    """Import numpy with SIGINT blocked in this thread, so the helper threads its BLAS starts inherit the block: a
    Ctrl-C then always reaches the main thread, and one that arrives while the main thread holds it (the evaluation's
    fork-server start) is held there instead of being taken, and dropped, by a helper thread. It has to happen here,
    at the package's import: the helper threads are created when numpy is first imported, and a thread's signal mask
    is fixed when it is created."""
    import signal
    import sys
    import threading

    if "numpy" in sys.modules or threading.current_thread() is not threading.main_thread():
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        import numpy  # noqa: F401
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


_import_numpy_with_ctrl_c_blocked()
