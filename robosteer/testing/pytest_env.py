"""pytest plugin (loaded with ``-p robosteer.testing.pytest_env``) that gives the test run a safe environment.

It is imported before pytest captures output, so it can re-execute the interpreter once with the ROS 2 library path
(see :mod:`robosteer.ros.env`), a ROS domain of its own and DDS discovery kept on loopback, plus offline Hugging Face
and headless MuJoCo rendering. A run started by ``make test`` or a bare ``pytest`` behaves the same.
"""

from __future__ import annotations

import logging
import os
import random

from robosteer.environment import apply_env_defaults
from robosteer.ros.env import ensure_ros_environment

apply_env_defaults()
# CI has 2 cores and tests run a sim and a policy side by side: one BLAS/OpenMP thread each avoids spin-wait
# oversubscription that made inference 10x slower (measured).
os.environ.setdefault("OMP_NUM_THREADS", "1")
logging.getLogger("lerobot.utils.import_utils").setLevel(logging.ERROR)

if os.environ.get("ROBOSTEER_ROS_ENV") != "1":
    # ROS_DOMAIN_ID 0-101 is safe for Fast DDS port arithmetic; tests pick per-test ids above this base.
    ensure_ros_environment(domain_id=random.SystemRandom().randint(1, 100), localhost_only=True)


def pytest_runtest_setup(item) -> None:
    """Every test starts on the normal scheduler, whatever an earlier test's libraries did to the main thread."""
    from robosteer.scheduling import reset_realtime_scheduling

    reset_realtime_scheduling()
