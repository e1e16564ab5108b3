"""Input checks every command runs before it does any work; each problem is one RobosteerError naming the file and
the fix.

- :func:`check_out_path`: an output path is never an existing file and never overlaps an input (no command can
  delete or overwrite what it reads).
- :func:`validate_dataset`: a LeRobot dataset folder has readable metadata and parquet files, finite actions and
  states, and the cameras a policy needs.
- :func:`read_strict_json`: strict JSON (no NaN/Infinity, no non-finite numbers) from a file.
- :func:`validate_heads_data`: a heads.json selects known, unique heads with finite scores.
- :func:`check_reachable`: at least one head of a steer selection can change the action.
- :func:`validate_adapter_dir`: an adapter folder's JSON and safetensors files are readable and well formed.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from robosteer.constants import ACTION, EMBEDDED_POLICIES, OBS_STATE
from robosteer.errors import RobosteerError

_HEAD_NAME = re.compile(r"^(?P<stack>[a-z_]+)\.L(?P<layer>\d+)\.H(?P<head>\d+)$")


# -- paths ------------------------------------------------------------------------------------------------------------
def _overlaps(a: Path, b: Path) -> bool:
    return a == b or a in b.parents or b in a.parents


def check_out_path(out: Path, inputs: dict[str, Path | None], out_flag: str = "--out", folder: bool = True) -> None:
    """Refuse an output path that is an existing file (when a folder is written) or that overlaps an input.

    ``inputs`` maps each input's flag (e.g. ``--dataset``) to its path; paths that are None are skipped.
    """
    out = Path(out)
    if folder and out.exists() and not out.is_dir():
        raise RobosteerError(f"{out_flag} {out} is an existing file; pass a folder path for the outputs")
    resolved = out.resolve()
    for flag, path in inputs.items():
        if path is None or str(path) in (*EMBEDDED_POLICIES, "expert") or not Path(path).exists():
            continue  # nothing on disk to overwrite
        if _overlaps(resolved, Path(path).resolve()):
            raise RobosteerError(
                f"{out_flag} {out} overlaps {flag} {path}; writing there would overwrite the input. "
                f"Pass an {out_flag} folder outside {path}"
            )


# -- strict JSON ----------------------------------------------------------------------------------------------------
def _reject_constant(name: str):
    raise ValueError(f"{name} is not allowed (strict JSON numbers must be finite)")


def _find_non_finite(value, where: str = "") -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return where or "the top level"
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _find_non_finite(item, f"{where}[{key!r}]")
        if found:
            return found
    return None


def read_strict_json(path: Path, fix: str) -> object:
    """The content of a strict JSON file (finite numbers only); a RobosteerError naming ``path`` and ``fix``."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as err:
        raise RobosteerError(f"cannot read {path} ({err.strerror or err}); {fix}") from None
    except UnicodeDecodeError:
        raise RobosteerError(f"{path} is not UTF-8 text (corrupt file); {fix}") from None
    if not text.strip():
        raise RobosteerError(f"{path} is empty; {fix}")
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as err:
        raise RobosteerError(f"{path} is not valid JSON ({_short(err)}); {fix}") from None
    where = _find_non_finite(data)
    if where:
        raise RobosteerError(f"{path} holds a non-finite number at {where}; {fix}")
    return data


def _short(err: BaseException, limit: int = 120) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _require(ok: bool, path: Path, problem: str, fix: str) -> None:
    if not ok:
        raise RobosteerError(f"{path}: {problem}; {fix}")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_str_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


# -- heads.json -----------------------------------------------------------------------------------------------------
HEADS_FIX = "re-run `robosteer rank` to write a fresh heads.json"


def _parse_head(name: str) -> tuple[str, int, int] | None:
    match = _HEAD_NAME.fullmatch(name)
    return (match["stack"], int(match["layer"]), int(match["head"])) if match else None


def unreachable_heads(selected: list[str], all_heads: list[str]) -> list[str]:
    """Selected heads whose output never reaches the action: heads of the last VLM layer in a policy with an action
    expert (the expert reads the VLM's keys and values layer by layer, never the last layer's attention output)."""
    parsed = [p for p in map(_parse_head, all_heads) if p]
    if not any(stack == "expert" for stack, _, _ in parsed):
        return []
    vlm_layers = [layer for stack, layer, _ in parsed if stack == "vlm"]
    if not vlm_layers:
        return []
    last = max(vlm_layers)
    return [h for h in selected if (p := _parse_head(h)) and p[0] == "vlm" and p[1] == last]


def check_reachable(selected: list[str], all_heads: list[str], source) -> None:
    """Refuse a selection in which no head's query/output rows can change the action (steer without k/v rows or
    action projections would then train nothing)."""
    dead = unreachable_heads(selected, all_heads)
    if dead and len(dead) == len(selected):
        raise RobosteerError(
            f"{source}: every selected head ({', '.join(dead[:4])}{', ...' if len(dead) > 4 else ''}) is in the last "
            "VLM layer, whose output never reaches the action, so nothing would train; select heads of lower VLM "
            "layers or of the expert (re-run `robosteer rank`), or also train their k/v rows (--head-kv shared)"
        )


def _check_scores(path: Path, scores, n_heads: int) -> None:
    _require(isinstance(scores, dict), path, "'scores' must be an object of score lists", HEADS_FIX)
    for name, values in scores.items():
        if values is None:
            continue
        ok = isinstance(values, list) and len(values) == n_heads
        ok = ok and all(v is None or _is_number(v) for v in values)  # null: a head that could not be scored
        _require(ok, path, f"'scores.{name}' must be a list of {n_heads} numbers (one per head)", HEADS_FIX)


def validate_heads_data(data, path: Path) -> dict:
    """Check the content of a heads.json; returns it unchanged."""
    path = Path(path)
    _require(isinstance(data, dict), path, "the top level must be a JSON object", HEADS_FIX)
    missing = [k for k in ("policy_fingerprint", "selected", "heads", "scores") if k not in data]
    _require(not missing, path, f"lacks {missing}, it was not written by `robosteer rank`", HEADS_FIX)
    fingerprint = data["policy_fingerprint"]
    _require(fingerprint is None or isinstance(fingerprint, str), path, "'policy_fingerprint' must be text", HEADS_FIX)
    heads, selected = data["heads"], data["selected"]
    _require(_is_str_list(heads), path, "'heads' must be a list of head names", HEADS_FIX)
    _require(_is_str_list(selected), path, "'selected' must be a list of head names (no null)", HEADS_FIX)
    _require(bool(selected), path, "selects no heads", "re-run `robosteer rank` with --top-k >= 1")
    bad = [h for h in [*selected, *heads] if _parse_head(h) is None]
    _require(
        not bad, path, f"bad head name {bad[:1]} (expected '<stack>.L<layer>.H<head>', e.g. 'vlm.L3.H1')", HEADS_FIX
    )
    _require(len(set(selected)) == len(selected), path, "'selected' names a head twice", HEADS_FIX)
    unknown = [h for h in selected if heads and h not in set(heads)]
    _require(not unknown, path, f"selected head(s) {unknown[:3]} are not among its 'heads'", HEADS_FIX)
    _check_scores(path, data["scores"], len(heads))
    return data


def load_heads_file(path: Path) -> dict:
    """Read and check a heads.json (strict JSON, finite numbers, well-formed unique head names)."""
    return validate_heads_data(read_strict_json(path, HEADS_FIX), path)


# -- LeRobot datasets -----------------------------------------------------------------------------------------------
DATASET_FIX = "re-record the dataset (`robosteer record`) or restore it from a copy"


def _check_features(path: Path, features) -> None:
    _require(isinstance(features, dict) and features, path, "'features' must be a non-empty object", DATASET_FIX)
    for key, spec in features.items():
        ok = isinstance(spec, dict) and isinstance(spec.get("dtype"), str)
        ok = ok and isinstance(spec.get("shape"), list) and all(_is_int(s) and s >= 0 for s in spec["shape"])
        _require(ok, path, f"feature {key!r} needs a text 'dtype' and a 'shape' list of sizes", DATASET_FIX)
    for key in (ACTION, OBS_STATE):
        _require(key in features, path, f"has no {key!r} feature", DATASET_FIX)


def _is_template(value) -> bool:
    if not isinstance(value, str) or not value:
        return False
    try:
        value.format(chunk_index=0, file_index=0, video_key="observation.images.front", episode_chunk=0)
    except (KeyError, IndexError, ValueError, AttributeError, TypeError):
        return False
    return True


def is_lerobot_dataset(root: str | Path) -> bool:
    """True when the folder ``root`` holds a LeRobot dataset (its ``meta/info.json``)."""
    return (Path(root) / "meta" / "info.json").is_file()


def require_lerobot_dataset(root: str | Path) -> Path:
    """``root`` as a Path; :class:`RobosteerError` with the one "not a LeRobot dataset" message when it holds none."""
    root = Path(root)
    if not is_lerobot_dataset(root):
        raise RobosteerError(
            f"{root} is not a LeRobot dataset (no meta/info.json); record one with `robosteer record` or pass the "
            "dataset folder"
        )
    return root


def open_lerobot_dataset(root: str | Path, **kwargs):
    """The ``LeRobotDataset`` in the local folder ``root`` (never the hub); ``kwargs`` go to ``LeRobotDataset``."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    root = require_lerobot_dataset(root)
    return LeRobotDataset(repo_id=f"local/{root.name}", root=root, **kwargs)


def open_lerobot_metadata(root: str | Path):
    """The ``LeRobotDatasetMetadata`` of the LeRobot dataset in the local folder ``root``."""
    from lerobot.datasets.dataset_metadata import LeRobotDatasetMetadata

    root = require_lerobot_dataset(root)
    return LeRobotDatasetMetadata(repo_id=f"local/{root.name}", root=root)


def read_dataset_info(root: Path) -> dict:
    """``meta/info.json`` of the LeRobot dataset at ``root``, checked for the fields the readers use."""
    root = Path(root)
    if not root.is_dir():
        raise RobosteerError(f"dataset folder {root} does not exist; record demonstrations first or fix the path")
    path = require_lerobot_dataset(root) / "meta" / "info.json"
    info = read_strict_json(path, DATASET_FIX)
    _require(isinstance(info, dict), path, "the top level must be a JSON object", DATASET_FIX)
    _require(isinstance(info.get("codebase_version"), str), path, "'codebase_version' must be text", DATASET_FIX)
    fps = info.get("fps")
    _require(_is_number(fps) and fps > 0, path, "'fps' must be a positive number", DATASET_FIX)
    for key in ("total_episodes", "total_frames", "total_tasks", "chunks_size"):
        value = info.get(key)
        _require(_is_int(value) and value >= 0, path, f"{key!r} must be a non-negative integer", DATASET_FIX)
    _require(info["chunks_size"] > 0, path, "'chunks_size' must be positive", DATASET_FIX)
    _require(_is_template(info.get("data_path")), path, "'data_path' must be a path template", DATASET_FIX)
    video_path = info.get("video_path")
    ok = video_path is None or _is_template(video_path)
    _require(ok, path, "'video_path' must be a path template or null", DATASET_FIX)
    _check_features(path, info.get("features"))
    _require(info["total_episodes"] > 0, path, "holds no episodes", "record some episodes into it first")
    return info


def _read_parquet(path: Path, columns: list[str] | None = None, schema_only: bool = False):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_schema(path) if schema_only else pq.read_table(path, columns=columns)
    except (pa.ArrowException, OSError, ValueError) as err:
        raise RobosteerError(
            f"{path} is unreadable ({_short(err, 80)}): the file is truncated or corrupt; {DATASET_FIX}"
        ) from None


def _check_finite_column(path: Path, table, key: str) -> None:
    import numpy as np
    import pyarrow as pa

    column = table.column(key).combine_chunks()
    while pa.types.is_list(column.type) or pa.types.is_fixed_size_list(column.type):
        column = column.flatten()
    try:
        values = column.to_numpy(zero_copy_only=False).astype(np.float64)
    except (TypeError, ValueError, pa.ArrowException):
        raise RobosteerError(f"{path}: column {key!r} is not numeric; {DATASET_FIX}") from None
    bad = int(np.count_nonzero(~np.isfinite(values)))
    if bad:
        raise RobosteerError(
            f"{path}: {bad} {key} value(s) are NaN or infinite; fix or drop those episodes "
            "(re-record them) before ranking or training"
        )


def _check_layout(root: Path, info: dict) -> None:
    """The files a LeRobot v3 dataset needs besides info.json (lerobot would try to download missing ones)."""
    meta = root / "meta"
    missing = [] if (meta / "tasks.parquet").is_file() else ["meta/tasks.parquet"]
    if not any((meta / "episodes").rglob("*.parquet")):
        missing.append("meta/episodes/*.parquet")
    if not any((root / "data").rglob("*.parquet")):
        missing.append("data/*.parquet")
    videos = [key for key, spec in info["features"].items() if spec["dtype"] == "video"]
    missing += [f"videos/{key}/*.mp4" for key in videos if not any((root / "videos" / key).rglob("*.mp4"))]
    if missing:
        raise RobosteerError(f"dataset {root} lacks {', '.join(missing)} (an incomplete copy?); {DATASET_FIX}")


def _check_parquet_files(root: Path) -> None:
    data_files = sorted((root / "data").rglob("*.parquet"))
    for path in data_files:
        missing = [key for key in (ACTION, OBS_STATE) if key not in _read_parquet(path, schema_only=True).names]
        if missing:
            raise RobosteerError(f"{path} has no {missing} column(s); {DATASET_FIX}")
        table = _read_parquet(path, [ACTION, OBS_STATE])  # images stay on disk: only what is checked is read
        for key in (ACTION, OBS_STATE):
            _check_finite_column(path, table, key)
    for path in [root / "meta" / "tasks.parquet", *sorted((root / "meta" / "episodes").rglob("*.parquet"))]:
        if path.exists():
            _read_parquet(path)
    stats = root / "meta" / "stats.json"
    if stats.exists():
        read_strict_json(stats, DATASET_FIX)


def policy_input_features(policy: str | Path | None) -> dict | None:
    """The input features in a policy's config.json (``embedded`` or a checkpoint folder), or None when unknown."""
    if policy is None or str(policy) == "expert":
        return None
    path = EMBEDDED_POLICIES.get(str(policy), Path(policy)) / "config.json"
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # loading the policy reports its own problems
    features = config.get("input_features") if isinstance(config, dict) else None
    return features if isinstance(features, dict) else None


def _check_cameras(root: Path, info: dict, policy) -> None:
    wanted = policy_input_features(policy)
    if not wanted:
        return
    missing = [key for key in wanted if "image" in key and key not in info["features"]]
    if missing:
        have = sorted(k for k in info["features"] if "image" in k)
        raise RobosteerError(
            f"dataset {root} lacks the camera(s) {missing} that policy {policy} reads (it has {have}); record the "
            "dataset with the policy's cameras, or use a policy made for these cameras"
        )


def validate_dataset(root: str | Path, policy: str | Path | None = None) -> dict:
    """Check a LeRobot dataset before any work: metadata, parquet files, finite actions/states, the policy's cameras.

    Returns the parsed ``meta/info.json``.
    """
    root = Path(root)
    info = read_dataset_info(root)
    _check_layout(root, info)
    _check_parquet_files(root)
    _check_cameras(root, info, policy)
    return info


POLICY_FIX = "re-save or re-download the checkpoint, or pass another --policy"


def check_policy_dir(policy: str | Path | None) -> None:
    """A checkpoint folder's JSON and safetensors files are readable (``embedded``, ``expert`` and names that are not
    folders are left to the policy loader)."""
    if policy is None or str(policy) in (*EMBEDDED_POLICIES, "expert") or not Path(policy).is_dir():
        return
    root = Path(policy)
    for path in sorted(root.glob("*.json")):
        try:
            data = json.loads(path.read_bytes().decode("utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as err:
            raise RobosteerError(f"{path} is not valid JSON ({_short(err)}); {POLICY_FIX}") from None
        _require(isinstance(data, dict), path, "the top level must be a JSON object", POLICY_FIX)
    for path in sorted(root.glob("*.safetensors")):
        _check_safetensors(path, POLICY_FIX)


def check_dataset_command(
    dataset: Path, policy: str | Path | None = None, out: Path | None = None, out_flag: str = "--out"
) -> dict:
    """The checks of a command that reads ``dataset`` (and ``policy``) and writes ``out``, before any work."""
    if out is not None:
        check_out_path(out, {"--dataset": dataset, "--policy": policy}, out_flag)
    info = validate_dataset(dataset, policy)
    check_policy_dir(policy)
    return info


def dataset_fingerprint(root: str | Path) -> str:
    """A content hash of a dataset's metadata (the same for copies of the folder, different for other data)."""
    import hashlib

    digest = hashlib.sha256()
    meta = Path(root) / "meta"
    for path in [meta / "info.json", meta / "stats.json", *sorted((meta / "episodes").rglob("*.parquet"))]:
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


# -- adapters -------------------------------------------------------------------------------------------------------
ADAPTER_FIX = "re-run `robosteer finetune` to write a fresh adapter"
_STEER_CONFIG_TYPES = {
    "heads": _is_str_list,
    "kv": lambda v: v in ("off", "own", "shared"),
    "train_q": lambda v: isinstance(v, bool),
    "train_o": lambda v: isinstance(v, bool),
    "rank": lambda v: v is None or (_is_int(v) and v >= 1),
    "alpha": lambda v: v is None or _is_number(v),
    "train_action_projections": lambda v: isinstance(v, bool),
    "action_projections": _is_str_list,
    "init_seed": _is_int,
}


def _check_steer_json(path: Path) -> None:
    meta = read_strict_json(path, ADAPTER_FIX)
    _require(isinstance(meta, dict), path, "the top level must be a JSON object", ADAPTER_FIX)
    fingerprint = meta.get("policy_fingerprint")
    _require(
        fingerprint is None or isinstance(fingerprint, str), path, "'policy_fingerprint' must be text", ADAPTER_FIX
    )
    config = meta.get("config")
    _require(isinstance(config, dict), path, "'config' must be an object", ADAPTER_FIX)
    for key, ok in _STEER_CONFIG_TYPES.items():
        if key in config:
            _require(ok(config[key]), path, f"'config.{key}' has a wrong value ({config[key]!r:.40})", ADAPTER_FIX)
    heads = config.get("heads")
    _require(bool(heads), path, "'config.heads' must list the tuned heads", ADAPTER_FIX)
    bad = [h for h in heads if _parse_head(h) is None]
    _require(not bad, path, f"bad head name {bad[:1]} in 'config.heads'", ADAPTER_FIX)
    _require(len(set(heads)) == len(heads), path, "'config.heads' names a head twice", ADAPTER_FIX)


def _check_lora_json(adapter_dir: Path) -> None:
    meta_path, config_path = adapter_dir / "robosteer_adapter.json", adapter_dir / "adapter_config.json"
    if meta_path.exists():
        meta = read_strict_json(meta_path, ADAPTER_FIX)
        _require(isinstance(meta, dict), meta_path, "the top level must be a JSON object", ADAPTER_FIX)
        fingerprint = meta.get("policy_fingerprint")
        ok = fingerprint is None or isinstance(fingerprint, str)
        _require(ok, meta_path, "'policy_fingerprint' must be text", ADAPTER_FIX)
    _require(config_path.is_file(), adapter_dir, "has no adapter_config.json (peft's LoRA config)", ADAPTER_FIX)
    config = read_strict_json(config_path, ADAPTER_FIX)
    _require(isinstance(config, dict), config_path, "the top level must be a JSON object", ADAPTER_FIX)
    _require(config.get("peft_type") == "LORA", config_path, "'peft_type' must be \"LORA\"", ADAPTER_FIX)
    rank = config.get("r")
    _require(_is_int(rank) and rank >= 1, config_path, "'r' (the LoRA rank) must be a positive integer", ADAPTER_FIX)
    targets = config.get("target_modules")
    ok = isinstance(targets, str) or (_is_str_list(targets) and bool(targets))
    _require(ok, config_path, "'target_modules' must be a module name pattern or a list of names", ADAPTER_FIX)


def _check_safetensors(path: Path, fix: str = ADAPTER_FIX) -> None:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), "pt") as handle:
            for key in handle.keys():
                handle.get_slice(key).get_shape()
    except (SafetensorError, OSError, ValueError) as err:
        raise RobosteerError(f"{path} is not a readable safetensors file ({_short(err, 80)}); {fix}") from None


def validate_adapter_dir(adapter_dir: str | Path) -> Path:
    """Check an adapter folder (or a run folder holding ``adapter/``) before any policy loads; returns the folder."""
    adapter_dir = Path(adapter_dir)
    if (adapter_dir / "adapter").is_dir():
        adapter_dir = adapter_dir / "adapter"
    if not adapter_dir.is_dir():
        raise RobosteerError(f"adapter folder {adapter_dir} does not exist; pass the adapter/ of a finetune run")
    if (adapter_dir / "steer_config.json").exists():
        _check_steer_json(adapter_dir / "steer_config.json")
    elif (adapter_dir / "adapter_config.json").exists() or (adapter_dir / "robosteer_adapter.json").exists():
        _check_lora_json(adapter_dir)
    for path in sorted(adapter_dir.glob("*.safetensors")):
        _check_safetensors(path)
    return adapter_dir
