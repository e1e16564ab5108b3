"""The ROS 2 process environment, in one place.

rclpy from the ROS 2 Jazzy PyPI wheels keeps its shared libraries in ``<venv>/lib``; the dynamic loader reads
``LD_LIBRARY_PATH`` only when a process starts, so a process that will import rclpy must be *started* with it set.
:func:`ensure_ros_environment` re-executes the current process once with the right variables, so console scripts and
the test suite work without the user exporting anything. With a system ROS 2 (``source /opt/ros/jazzy/setup.bash``)
nothing needs to change and nothing is changed.

This module never imports rclpy.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_REEXEC_MARKER = "ROBOSTEER_ROS_ENV"
DEFAULT_RMW = "rmw_fastrtps_cpp"


def wheel_library_dir() -> Path | None:
    """``<venv>/lib`` when it holds the ROS 2 wheels' libraries, else None (system ROS or no ROS)."""
    lib = Path(sys.prefix) / "lib"
    if any(lib.glob("librcl.so*")) or any(lib.glob("librmw_fastrtps_cpp.so*")):
        return lib
    return None


def ros_environment(
    base: dict[str, str] | None = None, domain_id: int | None = None, localhost_only: bool = False
) -> dict[str, str]:
    """A copy of ``base`` (default ``os.environ``) ready to start a process that imports rclpy.

    Args:
        domain_id: sets ``ROS_DOMAIN_ID`` (tests give every run its own so parallel runs don't cross-talk).
        localhost_only: keeps DDS discovery on loopback (``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``).
    """
    env = dict(os.environ if base is None else base)
    lib = wheel_library_dir()
    if lib is not None:
        paths = [p for p in env.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]
        if str(lib) not in paths:
            env["LD_LIBRARY_PATH"] = os.pathsep.join([str(lib), *paths])
    env.setdefault("RMW_IMPLEMENTATION", DEFAULT_RMW)
    if domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(domain_id)
    if localhost_only:
        env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    return env


def environment_is_ready(env: dict[str, str] | None = None) -> bool:
    """True when a process started with ``env`` can load the wheels' rclpy (or there is nothing to fix)."""
    env = dict(os.environ if env is None else env)
    lib = wheel_library_dir()
    if lib is not None and str(lib) not in env.get("LD_LIBRARY_PATH", "").split(os.pathsep):
        return False
    return "RMW_IMPLEMENTATION" in env


def ensure_ros_environment(**kwargs) -> None:
    """Re-execute this process once with :func:`ros_environment` if it was started without it.

    Call it first thing in a ``main()`` that will import rclpy. Keyword arguments go to :func:`ros_environment`.
    """
    if environment_is_ready() and not kwargs:
        return
    if os.environ.get(_REEXEC_MARKER) == "1":
        return  # already re-executed once: never loop
    env = ros_environment(**kwargs)
    env[_REEXEC_MARKER] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, list(sys.orig_argv), env)
