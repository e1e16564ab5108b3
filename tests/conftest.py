"""Shared fixtures. The environment (ROS library path, ROS domain, offline hub, EGL) is set by the
``robosteer.testing.pytest_env`` plugin before pytest starts capturing (see pyproject's addopts)."""

from __future__ import annotations

import itertools
import os

import pytest

_domain_ids = itertools.count()


@pytest.fixture
def ros_domain_id() -> int:
    """A ROS_DOMAIN_ID of this test's own: the run's base id plus a per-test offset (kept within 0-101)."""
    base = int(os.environ.get("ROS_DOMAIN_ID", "1"))
    return (base + next(_domain_ids)) % 100 + 1
