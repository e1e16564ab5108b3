"""Bad input never destroys data, never exits 0 and never prints a traceback: one line naming the problem, exit 2.

Every case runs the real CLI in-process (``robosteer.cli.main``) on real LeRobot datasets written to disk, then
checks that the input files are byte-for-byte unchanged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from helpers.cli import run_cli
from helpers.tiny_data import write_tiny_dataset
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robosteer.validation import _HEAD_NAME

logging.getLogger("lerobot.utils.import_utils").setLevel(logging.ERROR)
torch.set_num_threads(1)


# -- fixtures: one tiny real dataset, policy, heads.json and finetune run, shared by every case -------------------------
@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad_input")
    dataset = write_tiny_dataset(root / "demos", n_episodes=2, frames=6)
    from robosteer.policies import make_tiny_smolvla

    policy = make_tiny_smolvla(dataset, n_layers=2)
    policy.save(root / "base")
    make_tiny_smolvla(dataset, n_layers=2, seed=1).save(root / "other_base")
    heads = {
        "policy_fingerprint": policy.fingerprint(),
        "selected": ["vlm.L0.H1", "expert.L1.H0"],
        "heads": policy.layout.heads(),
        "scores": {"physical": [0.5] * len(policy.layout.heads()), "visual": None},
    }
    (root / "heads.json").write_text(json.dumps(heads))
    code, output = run_cli(
        ["finetune", "--policy", str(root / "base"), "--dataset", str(dataset), "--heads", str(root / "heads.json")]
        + ["--steps", "2", "--batch-size", "2", "--out", str(root / "run"), "--quiet"]
    )
    assert code == 0, output
    names = ("dataset", "base", "other_base", "heads", "run")
    return dict(
        zip(names, (dataset, root / "base", root / "other_base", root / "heads.json", root / "run"), strict=True)
    )


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ROBOSTEER_CACHE", str(tmp_path / "cache"))


def checksums(*paths: Path) -> dict[str, str]:
    """sha256 of every file under ``paths`` (files or folders); a missing path is recorded as missing."""
    sums = {}
    for path in paths:
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        if not path.exists():
            sums[str(path)] = "missing"
        for file in files:
            sums[str(file)] = hashlib.sha256(file.read_bytes()).hexdigest()
    return sums


def assert_refused(args: list[str], expect: str, inputs: list[Path]) -> str:
    before = checksums(*inputs)
    code, output = run_cli(args)
    assert code == 2, output
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, output
    assert expect.lower() in errors[0].lower(), output
    assert checksums(*inputs) == before, "an input changed"
    print(errors[0])
    return errors[0]


# -- broken inputs ------------------------------------------------------------------------------------------------------
def copy_dataset(world, tmp: Path, name: str = "copy") -> Path:
    return Path(shutil.copytree(world["dataset"], tmp / name))


def _rewrite_column(root: Path, key: str, change: Callable[[np.ndarray], None]) -> None:
    path = next((root / "data").rglob("*.parquet"))
    table = pq.read_table(path)
    column = table.column(key).combine_chunks()
    values = column.flatten().to_numpy().reshape(len(column), -1).copy()
    change(values)
    new = pa.FixedSizeListArray.from_arrays(pa.array(values.ravel(), pa.float32()), values.shape[1])
    if pa.types.is_list(column.type):
        new = pa.array(values.tolist(), column.type)
    table = table.set_column(table.column_names.index(key), key, new.cast(column.type))
    pq.write_table(table, path)


def nan_actions(world, tmp):
    root = copy_dataset(world, tmp)
    _rewrite_column(root, "action", lambda v: v.__setitem__((3, 2), np.nan))
    return root


def inf_states(world, tmp):
    root = copy_dataset(world, tmp)
    _rewrite_column(root, "observation.state", lambda v: v.__setitem__((1, 0), np.inf))
    return root


def truncated_parquet(world, tmp):
    root = copy_dataset(world, tmp)
    path = next((root / "data").rglob("*.parquet"))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return root


def without(name: str):
    def make(world, tmp):
        root = copy_dataset(world, tmp)
        path = root / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
        return root

    return make


def info_json(text: str):
    def make(world, tmp):
        root = copy_dataset(world, tmp)
        (root / "meta" / "info.json").write_text(text)
        return root

    return make


def no_wrist_camera(world, tmp):
    return write_tiny_dataset(tmp / "front_only", n_episodes=2, frames=6, cameras=("front",))


def heads_json(change: Callable[[dict], object]):
    def make(world, tmp):
        data = json.loads(world["heads"].read_text())
        text = change(data)
        path = tmp / "heads.json"
        path.write_text(text if isinstance(text, str) else json.dumps(data))
        return path

    return make


def _set(key, value):
    return lambda data: data.__setitem__(key, value)


def lora_adapter(config: dict):
    def make(world, tmp):
        path = tmp / "lora"
        path.mkdir()
        (path / "adapter_config.json").write_text(json.dumps(config))
        (path / "robosteer_adapter.json").write_text(json.dumps({"method": "lora", "policy_fingerprint": None}))
        return path

    return make


def adapter(change: Callable[[Path], None]):
    def make(world, tmp):
        path = Path(shutil.copytree(world["run"] / "adapter", tmp / "adapter"))
        change(path)
        return path

    return make


def _truncate(name: str):
    return lambda path: (path / name).write_bytes((path / name).read_bytes()[:40])


def _write(name: str, text: str):
    return lambda path: (path / name).write_text(text)


# -- the table ----------------------------------------------------------------------------------------------------------
@dataclass
class Case:
    name: str
    args: Callable[[dict, Path], tuple[list[str], list[Path]]]
    expect: str


def rank_on(make, out="out"):
    def args(world, tmp):
        data = make(world, tmp)
        return ["rank", "--policy", str(world["base"]), "--dataset", str(data), "--out", str(tmp / out)], [data]

    return args


def finetune_on(make, out: str | None = None, extra=()):
    def args(world, tmp):
        data = make(world, tmp)
        target = data if out == "same" else (data.parent if out == "parent" else tmp / (out or "run"))
        return [
            "finetune",
            "--method",
            "lora",
            "--policy",
            str(world["base"]),
            "--dataset",
            str(data),
            "--out",
            str(target),
            "--steps",
            "1",
            "--quiet",
            *extra,
        ], [data]

    return args


def finetune_heads(make):
    def args(world, tmp):
        heads = make(world, tmp)
        return [
            "finetune",
            "--policy",
            str(world["base"]),
            "--dataset",
            str(world["dataset"]),
            "--heads",
            str(heads),
            "--out",
            str(tmp / "run"),
            "--steps",
            "1",
            "--quiet",
        ], [heads, world["dataset"]]

    return args


def record_append(make):
    def args(world, tmp):
        data = make(world, tmp)
        return ["record", "sim", "--task", "pick_cube", "--episodes", "1", "--out", str(data), "--append"], [data]

    return args


def other_command(kind: str, make):
    def args(world, tmp):
        data = make(world, tmp)
        out = str(tmp / "out")
        commands = {
            "bench": ["bench", "--dataset", str(data), "--out", out],
            "pretrain": ["pretrain", "--data", str(data), "--out", out],
            "convert-bag": [
                "convert-bag",
                "--bag",
                str(tmp / "none.mcap"),
                "--config",
                str(Path(__file__).parent.parent / "launch" / "config" / "topics.yaml"),
            ]
            + ["--out", str(data), "--append"],
        }
        return commands[kind], [data]

    return args


def _broken_policy(world, tmp, change) -> Path:
    path = Path(shutil.copytree(world["base"], tmp / "policy"))
    change(path)
    return path


def rank_on_policy(change):
    def args(world, tmp):
        policy = _broken_policy(world, tmp, change)
        return ["rank", "--policy", str(policy), "--dataset", str(world["dataset"]), "--out", str(tmp / "o")], [policy]

    return args


def finetune_on_policy(change):
    def args(world, tmp):
        policy = _broken_policy(world, tmp, change)
        command = ["finetune", "--method", "lora", "--policy", str(policy), "--dataset", str(world["dataset"])]
        return [*command, "--out", str(tmp / "o"), "--quiet"], [policy]

    return args


def eval_on_policy(change):
    def args(world, tmp):
        policy = _broken_policy(world, tmp, change)
        return ["eval", "--policy", str(policy), "--episodes", "1", "--out", str(tmp / "o")], [policy]

    return args


def eval_adapter(make):
    def args(world, tmp):
        path = make(world, tmp)
        return [
            "eval",
            "--policy",
            str(world["base"]),
            "--adapter",
            str(path),
            "--episodes",
            "1",
            "--out",
            str(tmp / "eval"),
        ], [path]

    return args


def resume(dataset_maker, out_maker, method: str = "steer", base: str = "base"):
    def args(world, tmp):
        data = dataset_maker(world, tmp)
        out = out_maker(world, tmp)
        heads = tmp / "heads.json"
        heads.write_text(json.dumps({**json.loads(world["heads"].read_text()), "policy_fingerprint": None}))
        return [
            "finetune",
            "--method",
            method,
            "--policy",
            str(world[base]),
            "--dataset",
            str(data),
            "--heads",
            str(heads),
            "--steps",
            "3",
            "--out",
            str(out),
            "--resume",
            "--quiet",
        ], [data, out]

    return args


def same_dataset(world, tmp):
    return world["dataset"]


def other_dataset(world, tmp):
    return write_tiny_dataset(tmp / "other", n_episodes=2, frames=6, seed=1)


def copy_of_run(world, tmp):
    return Path(shutil.copytree(world["run"], tmp / "run_copy"))


def run_with(name: str, change: Callable[[Path], None]):
    def make(world, tmp):
        run = copy_of_run(world, tmp)
        change(run / "checkpoints" / "latest" / name)
        return run

    return make


def run_without_checkpoint(world, tmp):
    run = copy_of_run(world, tmp)
    shutil.rmtree(run / "checkpoints")
    return run


def out_is_file(cmd: str):
    def args(world, tmp):
        out = tmp / "taken.txt"
        out.write_text("keep me\n")
        data = world["dataset"]
        if cmd == "rank":
            return ["rank", "--policy", str(world["base"]), "--dataset", str(data), "--out", str(out)], [out, data]
        return finetune_on(lambda w, t: data, out="taken.txt")(world, tmp)[0], [out, data]

    return args


CASES = [
    # data loss: an output that overlaps an input is refused before anything is deleted
    Case("finetune out == dataset --overwrite", finetune_on(copy_dataset, "same", ["--overwrite"]), "overlaps"),
    Case("finetune out == dataset", finetune_on(copy_dataset, "same"), "overlaps"),
    Case("finetune out holds dataset --overwrite", finetune_on(copy_dataset, "parent", ["--overwrite"]), "overlaps"),
    Case("rank out inside dataset", rank_on(copy_dataset, "copy/meta"), "overlaps"),
    Case("rank out is a file", out_is_file("rank"), "existing file"),
    Case("finetune out is a file", out_is_file("finetune"), "existing file"),
    # wrong input that used to exit 0
    Case("rank NaN actions", rank_on(nan_actions), "NaN"),
    Case("finetune NaN actions", finetune_on(nan_actions), "NaN"),
    Case("finetune infinite states", finetune_on(inf_states), "infinite"),
    Case("rank without a camera the policy reads", rank_on(no_wrist_camera), "observation.images.wrist"),
    Case("finetune without a camera the policy reads", finetune_on(no_wrist_camera), "observation.images.wrist"),
    Case(
        "heads.json with NaN",
        finetune_heads(heads_json(lambda d: json.dumps(d).replace("0.5", "NaN", 1))),
        "not valid JSON",
    ),
    Case(
        "heads.json with 1e999",
        finetune_heads(heads_json(lambda d: json.dumps(d).replace("0.5", "1e999", 1))),
        "non-finite",
    ),
    Case("heads.json with null selected", finetune_heads(heads_json(_set("selected", [None]))), "no null"),
    Case("heads.json with null heads", finetune_heads(heads_json(_set("heads", None))), "'heads'"),
    Case(
        "heads.json last VLM layer only",
        finetune_heads(heads_json(_set("selected", ["vlm.L1.H0", "vlm.L1.H2"]))),
        "last VLM",
    ),
    Case("heads.json empty file", finetune_heads(heads_json(lambda d: "")), "empty"),
    Case("heads.json not JSON", finetune_heads(heads_json(lambda d: "{'selected': 1")), "not valid JSON"),
    Case("heads.json unknown head", finetune_heads(heads_json(_set("selected", ["vlm.L9.H9"]))), "not among"),
    Case("resume with another dataset", resume(other_dataset, copy_of_run), "another dataset"),
    Case("resume with nothing to resume", resume(same_dataset, run_without_checkpoint), "no checkpoint"),
    Case("resume into a new folder", resume(same_dataset, lambda w, t: t / "fresh"), "no checkpoint"),
    Case(
        "resume from a corrupt checkpoint state",
        resume(same_dataset, run_with("state.json", lambda p: p.write_text('{"step": 2,'))),
        "not valid JSON",
    ),
    Case(
        "resume from truncated checkpoint tensors",
        resume(same_dataset, run_with("trainable.safetensors", lambda p: p.write_bytes(p.read_bytes()[:30]))),
        "unreadable",
    ),
    Case("resume with another method", resume(same_dataset, copy_of_run, method="lora"), "another method"),
    Case("resume on another base policy", resume(same_dataset, copy_of_run, base="other_base"), "another base policy"),
    # tracebacks that are now one line
    Case("rank truncated parquet", rank_on(truncated_parquet), "truncated or corrupt"),
    Case("rank without tasks.parquet", rank_on(without("meta/tasks.parquet")), "meta/tasks.parquet"),
    Case("finetune without episode metadata", finetune_on(without("meta/episodes")), "meta/episodes"),
    Case("finetune truncated parquet", finetune_on(truncated_parquet), "truncated or corrupt"),
    Case("rank corrupt info.json", rank_on(info_json('{"fps": 15,')), "not valid JSON"),
    Case("rank empty info.json", rank_on(info_json("")), "empty"),
    Case("finetune corrupt info.json", finetune_on(info_json("\x00\x01garbage")), "not valid JSON"),
    Case("finetune info.json without features", finetune_on(info_json('{"codebase_version": "v3.0"}')), "fps"),
    Case("record --append corrupt info.json", record_append(info_json("[1, 2")), "not valid JSON"),
    Case("record --append empty info.json", record_append(info_json("")), "empty"),
    Case("record --append truncated parquet", record_append(truncated_parquet), "truncated or corrupt"),
    Case(
        "eval corrupt adapter safetensors", eval_adapter(adapter(_truncate("steer_adapter.safetensors"))), "safetensors"
    ),
    Case("eval corrupt adapter JSON", eval_adapter(adapter(_write("steer_config.json", "{"))), "not valid JSON"),
    Case("eval adapter JSON without config", eval_adapter(adapter(_write("steer_config.json", "{}"))), "'config'"),
    Case(
        "eval adapter JSON with null heads",
        eval_adapter(adapter(_write("steer_config.json", '{"config": {"heads": null}}'))),
        "config.heads",
    ),
    Case("demo out is a file", lambda w, t: (["demo", "--out", str(w["heads"])], [w["heads"]]), "existing file"),
    Case("bench out is a file", lambda w, t: (["bench", "--out", str(w["heads"])], [w["heads"]]), "existing file"),
    Case("eval out is a file", lambda w, t: (["eval", "--out", str(w["heads"])], [w["heads"]]), "existing file"),
    Case("bench NaN actions", other_command("bench", nan_actions), "NaN"),
    Case(
        "bench out == dataset",
        lambda w, t: (["bench", "--dataset", str(w["dataset"]), "--out", str(w["dataset"])], [w["dataset"]]),
        "overlaps",
    ),
    Case("pretrain corrupt info.json", other_command("pretrain", info_json("{")), "not valid JSON"),
    Case("convert-bag --append truncated parquet", other_command("convert-bag", truncated_parquet), "truncated"),
    Case(
        "eval LoRA adapter with rank 0",
        eval_adapter(lora_adapter({"peft_type": "LORA", "r": 0, "target_modules": ["q_proj"]})),
        "'r'",
    ),
    Case("eval LoRA adapter of another kind", eval_adapter(lora_adapter({"peft_type": "IA3", "r": 4})), "peft_type"),
    Case("rank on a corrupt checkpoint", rank_on_policy(_truncate("model.safetensors")), "model.safetensors"),
    Case("finetune on a checkpoint with corrupt config", finetune_on_policy(_write("config.json", "{")), "config.json"),
    Case("eval on a corrupt checkpoint", eval_on_policy(_truncate("model.safetensors")), "model.safetensors"),
    # cases that already worked keep working
    Case("rank missing dataset", rank_on(lambda w, t: t / "nowhere"), "does not exist"),
    Case("finetune not a dataset", finetune_on(lambda w, t: Path(t / "empty")), "does not exist"),
    Case("finetune plain folder", finetune_on(lambda w, t: (t / "plain").mkdir() or t / "plain"), "no meta/info.json"),
    Case("finetune steer without --heads", finetune_on(same_dataset, extra=["--method", "steer"]), "--heads"),
    Case("finetune non-empty out", finetune_on(same_dataset, extra=[]), "not empty"),
]


# The resume cases load a finetuning run's checkpoint (about 0.7 s each): slow, so `make test-fast` leaves them out.
@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=c.name, marks=pytest.mark.slow if c.name.startswith("resume") else ()) for c in CASES],
)
def test_bad_input_is_one_line_exit_2(case: Case, world, tmp_path):
    if case.name == "finetune non-empty out":
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "notes.txt").write_text("mine\n")
    args, inputs = case.args(world, tmp_path)
    assert_refused(args, case.expect, inputs)


def test_overlap_message_names_both_paths(world, tmp_path):
    data = copy_dataset(world, tmp_path)
    line = assert_refused(
        finetune_on(lambda w, t: data, "same", ["--overwrite"])(world, tmp_path)[0], "overlaps", [data]
    )
    assert line.count(str(data)) >= 2 and "--dataset" in line and "--out" in line
    assert "--overwrite" not in line.split(";")[-1]  # the fix is another --out, not --overwrite


def test_help_and_errors_keep_square_brackets(world, tmp_path):
    code, output = run_cli(["record", "sim", "--help"])
    assert code == 0 and "[rad]" in output
    code, output = run_cli(
        ["record", "sim", "--task", "pick_cube", "--teleop", "keyboard", "--out", str(tmp_path / "k")]
    )
    assert code == 2 and "Traceback" not in output
    assert "robosteer[teleop]" in output
    assert not (tmp_path / "k").exists()


# -- fuzz: generated contents of heads.json, the steer adapter's JSON and a dataset's info.json ---------------------------
FUZZ = settings(
    max_examples=90,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)
not_lists = st.one_of(scalars, st.dictionaries(st.text(max_size=4), scalars, max_size=2))
non_finite = st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
not_head_names = st.text(max_size=12).filter(lambda t: not _HEAD_NAME.fullmatch(t))


def _number_paths(value, path=()) -> list[tuple]:
    """Paths (keys/indices) of every number in a JSON value."""
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in _number_paths(item, (*path, key))]
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in _number_paths(item, (*path, index))]
    return [path] if isinstance(value, (int, float)) and not isinstance(value, bool) else []


def _replace_number(valid: dict, path: tuple, token: str) -> str:
    """The JSON text of ``valid`` with the number at ``path`` written as ``token`` (e.g. NaN)."""
    data = json.loads(json.dumps(valid))
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = "@@number@@"
    return json.dumps(data).replace('"@@number@@"', token)


def _mutations(valid: dict, bad_fields: dict[str, st.SearchStrategy]) -> st.SearchStrategy[str]:
    """Text that is never a valid file: cut short, another JSON shape, a field with a bad value or without it, or a
    non-finite number in place of a finite one."""
    text = json.dumps(valid)
    cut = st.integers(0, len(text) - 2).map(lambda n: text[:n])
    other_shape = json_values.filter(lambda v: not isinstance(v, dict) or not set(bad_fields) <= set(v)).map(json.dumps)
    field = st.sampled_from(sorted(bad_fields)).flatmap(
        lambda key: bad_fields[key].map(lambda value: json.dumps({**valid, key: value}))
    )
    dropped = st.sampled_from(sorted(bad_fields)).map(
        lambda key: json.dumps({k: v for k, v in valid.items() if k != key})
    )
    leaves = _number_paths(valid)
    infinite = st.tuples(st.sampled_from(leaves), non_finite).map(lambda p: _replace_number(valid, *p))
    garbage = st.binary(max_size=40).map(lambda b: b.decode("latin-1"))
    return st.one_of(cut, other_shape, field, dropped, infinite, garbage)


def _fuzz(file: Path, folder: Path, contents: st.SearchStrategy[str], args: list[str], count: list[int]) -> None:
    @FUZZ
    @given(contents)
    def run(text: str) -> None:
        file.write_text(text, encoding="latin-1" if not text.isascii() else "utf-8", errors="surrogateescape")
        before = checksums(folder)
        code, output = run_cli(args)
        assert code == 2 and "Traceback" not in output, (text, output)
        assert sum(line.startswith("error: ") for line in output.splitlines()) == 1, output
        assert checksums(folder) == before
        count.append(1)

    run()


@pytest.mark.slow
def test_fuzz_heads_adapter_and_info_json(world, tmp_path):
    count: list[int] = []
    heads = json.loads(world["heads"].read_text())
    bad_heads = {
        "selected": st.one_of(not_lists, st.just([]), st.lists(not_head_names | scalars, min_size=1, max_size=3)),
        "heads": st.one_of(not_lists, st.lists(scalars.filter(lambda v: not isinstance(v, str)), min_size=1)),
        "scores": st.one_of(not_lists, st.dictionaries(st.text(max_size=4), st.lists(st.text(max_size=3), min_size=1))),
        "policy_fingerprint": st.one_of(st.booleans(), st.integers(), st.lists(scalars, max_size=2)),
    }
    folder = tmp_path / "heads"
    folder.mkdir()
    args = ["finetune", "--policy", str(world["base"]), "--dataset", str(world["dataset"]), "--heads"]
    _fuzz(
        folder / "heads.json",
        folder,
        _mutations(heads, bad_heads),
        [*args, str(folder / "heads.json"), "--out", str(tmp_path / "run")],
        count,
    )

    adapter_dir = Path(shutil.copytree(world["run"] / "adapter", tmp_path / "adapter"))
    steer = json.loads((adapter_dir / "steer_config.json").read_text())
    bad_config = {
        "heads": st.one_of(not_lists, st.just([]), st.lists(not_head_names | scalars, min_size=1, max_size=3)),
        "kv": scalars.filter(lambda v: v not in ("off", "own", "shared")),
        "rank": st.one_of(st.integers(max_value=0), st.text(max_size=3), st.floats(), st.booleans()),
    }
    config_contents = st.sampled_from(sorted(bad_config)).flatmap(
        lambda key: bad_config[key].map(lambda v: json.dumps({**steer, "config": {**steer["config"], key: v}}))
    )
    contents = st.one_of(_mutations(steer, {"config": not_lists}), config_contents)
    eval_args = ["eval", "--policy", str(world["base"]), "--adapter", str(adapter_dir), "--out", str(tmp_path / "ev")]
    eval_args += ["--episodes", "1", "--workers", "1", "--videos", "0"]  # fails fast should a mutation be valid
    _fuzz(adapter_dir / "steer_config.json", adapter_dir, contents, eval_args, count)

    dataset = copy_dataset(world, tmp_path)
    info = json.loads((dataset / "meta" / "info.json").read_text())
    bad_info = {
        "fps": st.one_of(
            st.none(), st.booleans(), st.text(max_size=3), st.integers(max_value=0), st.floats(max_value=0)
        ),
        "total_episodes": st.one_of(st.none(), st.text(max_size=3), st.integers(max_value=-1), st.floats()),
        "features": st.one_of(
            not_lists.filter(lambda v: not isinstance(v, dict) or "action" not in v),
            st.just({**info["features"], "action": {"dtype": "float32", "shape": ["8"]}}),
        ),
        "data_path": st.one_of(st.none(), st.integers(), st.just(""), st.just("data/{nope}.parquet")),
        "codebase_version": st.one_of(st.none(), st.integers(), st.lists(scalars, max_size=2)),
    }
    rank_args = ["rank", "--policy", str(world["base"]), "--dataset", str(dataset), "--out", str(tmp_path / "rk")]
    _fuzz(dataset / "meta" / "info.json", dataset, _mutations(info, bad_info), rank_args, count)
    assert len(count) >= 200


# -- Ctrl-C leaves nothing half-written -------------------------------------------------------------------------------
class InterruptingLabels(dict):
    """Episode labels whose reading sends this process Ctrl-C: the interrupt lands while the episode is written."""

    def items(self):
        signal.raise_signal(signal.SIGINT)  # delivered to this (the main) thread, not to any thread of the process
        return super().items()


def _frames(writer, n: int = 4) -> None:
    from robosteer.constants import OBS_STATE, image_key

    rng = np.random.default_rng(0)
    for _ in range(n):
        obs = {OBS_STATE: rng.normal(size=8).astype(np.float32)}
        obs[image_key("front")] = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
        writer.add_frame(obs, rng.normal(size=8), "pick the cube")


@pytest.mark.slow
@pytest.mark.parametrize("episodes_before", [0, 1])
def test_ctrl_c_while_saving_finishes_the_episode_then_stops(tmp_path, episodes_before):

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's own Ctrl-C, whatever ran before
    try:
        _ctrl_c_while_saving(tmp_path, episodes_before)
    finally:
        signal.signal(signal.SIGINT, previous)


def _ctrl_c_while_saving(tmp_path, episodes_before) -> None:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from robosteer.data import EpisodeWriter, robot_features

    root = tmp_path / "demos"
    writer = EpisodeWriter(root, robot_features(("front",), 16, use_videos=False), fps=15)
    for _ in range(episodes_before):
        _frames(writer)
        writer.save_episode({"colour": "red"})
    _frames(writer)
    with pytest.raises(KeyboardInterrupt):
        writer.save_episode(InterruptingLabels(colour="blue"))
    dataset = LeRobotDataset("robosteer/demos", root=root)
    assert dataset.meta.total_episodes == episodes_before + 1 and len(dataset) == 4 * (episodes_before + 1)
    assert not root.with_name("demos.partial").exists() and not (root / "images").exists()
    _frames(writer)
    writer.abort()  # Ctrl-C mid-episode: the open episode and staging files go, saved episodes stay
    assert (
        writer.frames == [] and LeRobotDataset("robosteer/demos", root=root).meta.total_episodes == episodes_before + 1
    )


def test_partial_study_folders_of_dead_runs_are_removed(tmp_path):
    import subprocess
    import sys

    from robosteer.study.run import _remove_stale_partials

    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead, alive = tmp_path / f".demo.partial-{finished.stdout.strip()}", tmp_path / f".demo.partial-{os.getpid()}"
    for folder in (dead, alive):
        (folder / "demos").mkdir(parents=True)
    _remove_stale_partials(tmp_path / "demo")
    assert not dead.exists() and alive.exists()


def test_library_errors_are_recognised_as_bad_input():
    """Errors of the file-reading libraries (a corrupt file past the checks) are printed as one line with exit 2 by
    ``main``; other exceptions (bugs) keep their traceback."""
    from safetensors import SafetensorError

    from robosteer.cli import _library_error

    assert _library_error(pa.ArrowInvalid("bad")) and _library_error(json.JSONDecodeError("x", "doc", 0))
    assert _library_error(SafetensorError("header")) and not _library_error(ValueError("a bug"))


@pytest.mark.slow
def _ignores_sigint(pid: int) -> bool:
    """Whether process ``pid`` ignores SIGINT right now (Linux: the SigIgn mask in /proc/<pid>/status)."""
    try:
        status = open(f"/proc/{pid}/status").read()
    except OSError:
        return False
    mask = next((line.split()[1] for line in status.splitlines() if line.startswith("SigIgn:")), "0")
    return bool(int(mask, 16) & (1 << (signal.SIGINT - 1)))


def test_ctrl_c_during_eval_worker_start_up_is_clean(tmp_path):
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) while the fork server starts: no traceback
    from any process, no results folder, no process left behind."""
    import subprocess
    import sys
    import time

    import psutil

    out = tmp_path / "eval"
    command = [sys.executable, "-m", "robosteer.cli", "eval", "--policy", "expert", "--workers", "2"]
    command += ["--episodes", "2", "--videos", "0", "--out", str(out)]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    forkserver = None
    for _ in range(600):  # the fork server appears once evaluation starts its pool
        children = psutil.Process(proc.pid).children(recursive=True) if proc.poll() is None else []
        forkserver = next((c for c in children if "forkserver" in " ".join(c.cmdline())), None)
        if forkserver or proc.poll() is not None:
            break
        time.sleep(0.05)
    assert forkserver is not None, "the evaluation ended before its workers started"
    for _ in range(200):  # the command ignores SIGINT for the few ms it spawns the server (the server inherits that)
        if not _ignores_sigint(proc.pid):
            break
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode in (1, 130), output
    assert "Traceback" not in output, output
    assert not out.exists()
    assert not psutil.pid_exists(forkserver.pid) or forkserver.status() == psutil.STATUS_ZOMBIE


@pytest.mark.slow
def test_ctrl_c_while_the_fork_server_starts_is_held_not_lost():
    """A Ctrl-C that arrives while the fork server is being started (SIGINT ignored for it to inherit) is delivered
    to the command once the start is done, as KeyboardInterrupt, instead of being dropped. Run in a fresh process,
    as the CLI starts it. The child starts with Ctrl-C's default handler, as a terminal starts the CLI: a parent that
    ignores SIGINT (a background job of a non-interactive shell, as CI may run the suite) passes that on, and then
    there is rightly nothing to hold."""
    import subprocess
    import sys

    script = (
        "import os, signal\n"
        "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "from multiprocessing import forkserver\n"
        "from robosteer.evaluation.runner import _start_forkserver\n"
        "forkserver.ensure_running = lambda: os.kill(os.getpid(), signal.SIGINT)\n"
        "try:\n"
        "    _start_forkserver()\n"
        "    print('lost')\n"
        "except KeyboardInterrupt:\n"
        "    print('held', signal.getsignal(signal.SIGINT) is signal.default_int_handler)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "held True", done.stdout + done.stderr
