"""Thread count of inference entry points: one thread unless the caller or ROBOSTEER_TORCH_THREADS says otherwise,
with a clear error for a malformed value; a count the caller set before loading is kept."""

from __future__ import annotations

import pytest
import torch

from robosteer.errors import RobosteerError
from robosteer.policies import loading
from robosteer.policies.loading import THREADS_ENV, set_torch_threads, torch_threads


@pytest.fixture(autouse=True)
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_thread_count_comes_from_argument_then_environment_then_one(monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert torch_threads() == 1 and torch_threads(3) == 3
    monkeypatch.setenv(THREADS_ENV, "2")
    assert torch_threads() == 2 and torch_threads(1) == 1
    monkeypatch.setenv(THREADS_ENV, "many")
    with pytest.raises(RobosteerError, match=THREADS_ENV):
        torch_threads()
    with pytest.raises(RobosteerError, match=">= 0"):
        torch_threads(-1)


def test_set_torch_threads_applies_it_but_keeps_a_count_the_caller_chose(monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    monkeypatch.setattr(loading, "_TORCH_DEFAULT_THREADS", torch.get_num_threads())
    assert set_torch_threads() == 1  # from torch's start-up default to one thread
    monkeypatch.setattr(loading, "_TORCH_DEFAULT_THREADS", 8)  # as if torch had started with 8
    torch.set_num_threads(2)  # ... and the caller then chose 2 (pretrain --threads 2)
    assert set_torch_threads() == 2
    monkeypatch.setenv(THREADS_ENV, "1")
    assert set_torch_threads() == 1  # an explicit environment setting wins
