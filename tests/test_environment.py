"""The process environment defaults (robosteer.environment) are set once and never override the user."""

from __future__ import annotations

import os


def test_defaults_fill_only_unset_variables(monkeypatch):
    from robosteer.environment import DEFAULTS, RENDERING, apply_env_defaults

    for name in DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    apply_env_defaults(RENDERING)
    assert os.environ["MUJOCO_GL"] == "osmesa" and os.environ["PYOPENGL_PLATFORM"] == "egl"
    assert "HF_HUB_OFFLINE" not in os.environ
    apply_env_defaults()
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TOKENIZERS_PARALLELISM"] == "false"
