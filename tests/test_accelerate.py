"""Data-parallel finetuning: N processes with batch b train exactly as one process with batch N x b.

The distributed test runs ``robosteer finetune`` as two CPU processes with ``python -m torch.distributed.run`` (the
launcher ``accelerate launch --multi_gpu`` uses; ``accelerate launch --cpu`` starts only one process unless MPI is set
up); each joins accelerate's process group (gloo) as it does under ``accelerate launch`` on GPUs.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers.tiny_data import write_tiny_dataset

from robosteer.tuners.data import StepBatchSampler

logging.getLogger("lerobot.utils.import_utils").setLevel(logging.ERROR)
torch.set_num_threads(1)
HEADS = ["vlm.L1.H1", "expert.L2.H0", "expert.L2.H3"]
PER_PROCESS = 3
"""Samples per process and step; the single process trains on 2 x this many."""


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_tiny_dataset(tmp_path_factory.mktemp("data") / "demos", n_episodes=2, frames=12)


@pytest.fixture(scope="module")
def base_dir(dataset, tmp_path_factory):
    from robosteer.policies import make_tiny_smolvla

    path = tmp_path_factory.mktemp("policy") / "base"
    make_tiny_smolvla(dataset, n_layers=3).save(path)
    return path


def _cli_args(base_dir: Path, dataset: Path, heads: Path, out: Path, batch_size: int, steps: int) -> list[str]:
    return [
        "finetune",
        *("--method", "steer", "--policy", str(base_dir), "--dataset", str(dataset), "--heads", str(heads)),
        *("--out", str(out), "--steps", str(steps), "--batch-size", str(batch_size), "--lr", "1e-2"),
        *("--device", "cpu", "--quiet"),
    ]


def _train_twice(run, base_dir: Path, dataset: Path, heads: Path, out: Path, batch_size: int) -> None:
    """``robosteer finetune`` (through ``run(args)``) for 3 steps into ``out``, then a copy of that run resumed from
    its checkpoint up to 5 steps in ``<out>-resumed``."""
    run(_cli_args(base_dir, dataset, heads, out, batch_size, 3))
    resumed = out.parent / f"{out.name}-resumed"
    shutil.copytree(out, resumed)
    run([*_cli_args(base_dir, dataset, heads, resumed, batch_size, 5), "--resume"])


def _run_in_this_process(args: list[str]) -> None:
    from typer.testing import CliRunner

    from robosteer.cli import app

    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output


def _run_as_two_processes(args: list[str]) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    command += ["--master_addr", "127.0.0.1", "--master_port", str(_free_port()), "-m", "robosteer.cli", *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def _write_heads_json(base_dir: Path, path: Path) -> Path:
    from robosteer.policies import load_policy

    base = load_policy(base_dir)
    data = {"policy_fingerprint": base.fingerprint(), "selected": HEADS, "heads": base.layout.heads(), "scores": {}}
    path.write_text(json.dumps(data))
    return path


def _deltas(run: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(run / "adapter" / "steer_adapter.safetensors"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_process_shards_make_up_the_single_process_batch():
    single = list(StepBatchSampler(10, 2 * PER_PROCESS, seed=1, start_step=2, steps=6))
    shards = [
        list(StepBatchSampler(10, PER_PROCESS, seed=1, start_step=2, steps=6, shard=(index, 2))) for index in (0, 1)
    ]
    assert [first + second for first, second in zip(*shards, strict=True)] == single


def test_shard_losses_add_up_to_the_global_batch_loss(dataset, base_dir):
    """The two halves of a batch, each with its rows of noise drawn for the whole batch, give the whole batch's
    loss; the batch has padded chunks (episode ends), so the halves hold different numbers of valid steps."""
    from robosteer.policies import load_policy
    from robosteer.tuners.data import make_batch_stream, open_dataset
    from robosteer.tuners.finetune import _ShardLoss

    policy = load_policy(base_dir)
    data = open_dataset(policy, dataset)
    batch = next(make_batch_stream(data, 2 * PER_PROCESS, seed=0, steps=1)(0))
    halves = [next(make_batch_stream(data, PER_PROCESS, 0, 1, shard=(index, 2))(0)) for index in (0, 1)]
    assert batch["action_is_pad"].any()
    with torch.no_grad():
        torch.manual_seed(5)
        want = float(policy.loss(batch))
        sums, counts = [], []
        for index, half in enumerate(halves):
            torch.manual_seed(5)
            total, count = _ShardLoss(policy, index, 2)(half)
            sums.append(float(total))
            counts.append(float(count))
    assert counts[0] != counts[1]
    assert sum(sums) / sum(counts) == pytest.approx(want, rel=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["pi0", "pi05"])
def test_pi_shard_losses_add_up_to_the_global_batch_loss(kind, dataset, tmp_path, monkeypatch):
    """pi0/pi05 draw noise and time inside their forward: the shard loss points their samplers at its rows of the
    global draws, so the halves again add up to the whole batch's loss (pi averages every step, padded or not)."""
    from robosteer.policies.pi_builder import PiSpec, make_tiny_pi
    from robosteer.tuners.data import make_batch_stream, open_dataset
    from robosteer.tuners.finetune import _ShardLoss

    monkeypatch.setenv("ROBOSTEER_CACHE", str(tmp_path / "cache"))
    policy = make_tiny_pi(PiSpec(kind=kind, tokenizer_max_length=64), dataset)
    data = open_dataset(policy, dataset)
    batch = next(make_batch_stream(data, 2 * PER_PROCESS, seed=0, steps=1)(0))
    halves = [next(make_batch_stream(data, PER_PROCESS, 0, 1, shard=(index, 2))(0)) for index in (0, 1)]
    with torch.no_grad():
        torch.manual_seed(5)
        want = float(policy.loss(batch))
        parts = []
        for index, half in enumerate(halves):
            torch.manual_seed(5)
            parts.append([float(v) for v in _ShardLoss(policy, index, 2)(half)])
    assert sum(total for total, _ in parts) / sum(count for _, count in parts) == pytest.approx(want, rel=1e-5)
    assert type(policy.model.model).sample_noise is policy.model.model.sample_noise.__func__


@pytest.mark.slow
def test_two_processes_train_as_one_process_with_the_double_batch(dataset, base_dir, tmp_path):
    """`robosteer finetune` as two gloo processes with batch 3 and as one plain process with batch 6 ends with the
    same steer deltas, also after resuming from checkpoints/latest. Exact agreement needs nothing switched off: the
    tiny SmolVLA has no dropout, the data order and the flow-matching noise/time are the same global draws in both
    settings, and the loss is normalised by the global batch's valid action steps; only float rounding differs."""
    heads = _write_heads_json(base_dir, tmp_path / "heads.json")
    _train_twice(_run_as_two_processes, base_dir, dataset, heads, tmp_path / "two", PER_PROCESS)
    _train_twice(_run_in_this_process, base_dir, dataset, heads, tmp_path / "one", 2 * PER_PROCESS)
    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert summary["num_processes"] == 2
    resumed = json.loads((tmp_path / "two-resumed" / "summary.json").read_text())
    assert resumed["resumed_from_step"] == 3
    logged = (tmp_path / "two-resumed" / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in logged] == [1, 2, 3, 4, 5]
    for name in ("", "-resumed"):
        two, one = _deltas(tmp_path / f"two{name}"), _deltas(tmp_path / f"one{name}")
        assert set(two) == set(one)
        assert any(bool(tensor.abs().max() > 1e-4) for tensor in one.values())  # the deltas start at zero
        for key in one:
            torch.testing.assert_close(two[key], one[key], rtol=1e-4, atol=1e-6, msg=key)
