"""The process environment every robosteer entry point starts with: headless rendering and an offline hub.

Each value is a default: a variable the user already set is left as it is. The ``robosteer`` command line, the test
plugin and the sim suite apply these on import, before mujoco, PyOpenGL or the Hugging Face libraries read them.
"""

from __future__ import annotations

import os

RENDERING = {"MUJOCO_GL": "egl", "PYOPENGL_PLATFORM": "egl"}
"""Headless MuJoCo rendering through EGL (``MUJOCO_GL=osmesa`` where there is no EGL)."""
HUB = {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
"""Nothing is downloaded at run time; no tokenizer thread pool that a later fork would warn about."""
DEFAULTS = {**RENDERING, **HUB}
"""Every default."""


def apply_env_defaults(defaults: dict[str, str] = DEFAULTS) -> None:
    """Set each variable of ``defaults`` that is not set yet."""
    for name, value in defaults.items():
        os.environ.setdefault(name, value)
