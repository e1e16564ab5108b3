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


# Slow tests in files whose tests are not marked in place; `make test-fast` (pytest -m "not slow") leaves them out.
# Node ids without parameters: every parametrisation of a listed test is slow.
SLOW_ELSEWHERE = frozenset(
    {
        "tests/test_study_cells.py::test_tiny_study_runs_every_arm_and_resumes_without_training",
        "tests/test_study_cells.py::test_lanes_run_cells_in_parallel_processes_and_resume",
        "tests/test_bench.py::test_bench_smoke_run_writes_every_artifact",
        "tests/test_eval.py::test_expert_as_policy_scores_at_least_95_percent",
        "tests/test_eval.py::test_evaluation_is_deterministic_for_a_seed",
        "tests/test_eval.py::test_batched_episodes_depend_only_on_their_seed",
        "tests/test_tuners_memory.py::test_in_memory_batches_equal_the_dataset_batches",
    }
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid.split("[", 1)[0] in SLOW_ELSEWHERE:
            item.add_marker(pytest.mark.slow)
