"""Build and load RobotPolicies: from a LeRobot checkpoint folder, the embedded base policy, or from scratch."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch

from robosteer.constants import EMBEDDED_POLICIES, EMBEDDED_POLICY_DIR
from robosteer.errors import RobosteerError
from robosteer.policies.hub_cache import cached_vlm_dir, is_robosteer_vlm_id, try_register_vlm
from robosteer.policies.layouts import SUPPORTED_POLICY_TYPES, layout_for_policy
from robosteer.policies.pi_builder import is_tiny_pi_checkpoint, load_tiny_pi
from robosteer.policies.robot_policy import VLM_SUBDIR, RobotPolicy
from robosteer.policies.smolvla_builder import (
    SmolVLASpec,
    build_smolvla,
    default_features,
    neutral_stats,
    vlm_cache_dir,
)
from robosteer.policies.vlm_folder import VlmSpec

EMBEDDED_DIR = EMBEDDED_POLICY_DIR
"""The base SmolVLA shipped with the package (``robosteer pretrain`` wrote it; see its MODEL_CARD.md)."""
_WEIGHTS = "model.safetensors"
THREADS_ENV = "ROBOSTEER_TORCH_THREADS"
"""Environment variable with the torch CPU thread count for inference (0: torch's default)."""
DEFAULT_TORCH_THREADS = 1
"""One thread: torch's default (one per core) spin-waits and collapses when other processes load the cores (measured:
3.0 vs 37.7 actions/s with the sim in the loop on 2 busy cores)."""


def torch_threads(requested: int | None = None) -> int:
    """The thread count to use: ``requested`` when given, else ``$ROBOSTEER_TORCH_THREADS``, else 1 (0: torch's
    default, one per core)."""
    if requested is None:
        text = os.environ.get(THREADS_ENV, "").strip()
        try:
            requested = int(text) if text else DEFAULT_TORCH_THREADS
        except ValueError:
            raise RobosteerError(f"{THREADS_ENV}={text!r} is not an integer; use e.g. 1 (0: torch's default)") from None
    if requested < 0:
        raise RobosteerError(f"torch thread count must be >= 0 (got {requested}); 0 keeps torch's default")
    return requested


_TORCH_DEFAULT_THREADS = torch.get_num_threads()


def set_torch_threads(requested: int | None = None) -> int:
    """Apply :func:`torch_threads` to this process (0 leaves torch's default); returns the threads torch now uses.

    With neither ``requested`` nor the environment variable, a count the caller already chose (anything but torch's
    start-up default, e.g. ``pretrain --threads 4``) is kept.
    """
    if requested is None and not os.environ.get(THREADS_ENV) and torch.get_num_threads() != _TORCH_DEFAULT_THREADS:
        return torch.get_num_threads()
    threads = torch_threads(requested)
    if threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def embedded_available(name: str = "embedded") -> bool:
    """Whether the shipped base policy ``name`` (a key of ``EMBEDDED_POLICIES``) is installed."""
    folder = EMBEDDED_POLICIES[name]
    return (folder / "config.json").is_file() and (folder / _WEIGHTS).is_file()


def load_embedded(threads: int | None = None, name: str = "embedded") -> RobotPolicy:
    """A shipped base SmolVLA (``embedded`` and ``embedded-franka-v4``: the Franka suite's; ``embedded-metaworld``:
    Meta-World ML10's), offline, a few MB; ``threads`` as in :func:`load_policy`."""
    if not embedded_available(name):
        raise RobosteerError(
            f"the embedded base policy {name!r} is not installed ({EMBEDDED_POLICIES[name]} has no checkpoint); "
            "reinstall robosteer or create one with `robosteer pretrain --out <dir>` and pass "
            "`--policy <dir>`"
        )
    return load_policy(EMBEDDED_POLICIES[name], threads=threads)


def _read_checkpoint_config(path: Path) -> dict:
    if not path.exists():
        raise RobosteerError(
            f"policy checkpoint {path} does not exist; pass a folder written by save_pretrained "
            "(config.json + model.safetensors) or 'embedded'"
        )
    if not path.is_dir():
        raise RobosteerError(
            f"policy checkpoint {path} is a file; pass the checkpoint folder that holds "
            "config.json and model.safetensors"
        )
    config_file = path / "config.json"
    if not config_file.is_file():
        raise RobosteerError(
            f"{path} is not a LeRobot checkpoint: no config.json; pass the folder written by "
            "save_pretrained (for lerobot-train outputs: <run>/checkpoints/last/pretrained_model)"
        )
    try:
        config = json.loads(config_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RobosteerError(
            f"corrupt checkpoint {path}: config.json is not valid JSON ({err}); re-save or re-download the checkpoint"
        ) from err
    kind = config.get("type") if isinstance(config, dict) else None
    if kind not in SUPPORTED_POLICY_TYPES:
        raise RobosteerError(
            f"unsupported policy type {kind!r} in {config_file}; robosteer supports "
            f"{', '.join(SUPPORTED_POLICY_TYPES)} (LeRobot VLAs with attention heads)"
        )
    weights = path / _WEIGHTS
    if not weights.is_file():
        raise RobosteerError(f"checkpoint {path} has no {_WEIGHTS}; pass a complete save_pretrained folder")
    try:
        from safetensors import safe_open

        with safe_open(str(weights), framework="pt") as handle:
            names = list(handle.keys())
            if names:
                handle.get_slice(names[-1])
    except Exception as err:
        raise RobosteerError(
            f"corrupt checkpoint {path}: {_WEIGHTS} cannot be read ({err}); re-save or re-download it"
        ) from err
    return config


def load_policy(policy: str | Path, device: str = "cpu", threads: int | None = None) -> RobotPolicy:
    """Load ``'embedded'`` or a LeRobot checkpoint folder (smolvla, pi0, pi05) with its processors and layout.

    Sets this process's torch CPU threads (:func:`set_torch_threads`: ``threads``, else ``$ROBOSTEER_TORCH_THREADS``,
    else 1) so inference does not collapse when other processes share the cores.
    """
    set_torch_threads(threads)
    if str(policy) in EMBEDDED_POLICIES:
        return load_embedded(threads=threads, name=str(policy))
    path = resolve_policy_path(policy)
    raw_config = _read_checkpoint_config(path)
    if is_tiny_pi_checkpoint(path):
        return load_tiny_pi(path, device)

    from lerobot.configs import PreTrainedConfig
    from lerobot.policies.factory import get_policy_class, make_pre_post_processors

    config = PreTrainedConfig.from_pretrained(path)
    config.device = device
    vlm_dir = _local_vlm_dir(path, config)
    overrides: dict = {"device_processor": {"device": device}}
    if vlm_dir is not None:
        config.vlm_model_name = str(vlm_dir)
        overrides["tokenizer_processor"] = {"tokenizer_name": str(vlm_dir)}
    elif raw_config.get("type") == "smolvla" and not Path(config.vlm_model_name).is_dir():
        _require_cached_hub_model(config.vlm_model_name, path)
    try:
        model = get_policy_class(config.type).from_pretrained(path, config=config)
        preprocessor, postprocessor = make_pre_post_processors(
            config,
            pretrained_path=str(path),
            preprocessor_overrides=overrides,
            postprocessor_overrides={"device_processor": {"device": "cpu"}},
        )
    except RobosteerError:
        raise
    except Exception as err:
        raise RobosteerError(
            f"could not load the {config.type} checkpoint {path}: {type(err).__name__}: {err}. "
            "Check that it was written by LeRobot 0.6 save_pretrained with its processor files "
            "(policy_preprocessor.json, policy_postprocessor.json)"
        ) from err
    model.eval()
    return RobotPolicy(model, preprocessor, postprocessor, layout_for_policy(model), vlm_dir=vlm_dir)


def _local_vlm_dir(path: Path, config) -> Path | None:
    """The checkpoint's ``vlm/`` folder (registered in the hub cache on the way, so LeRobot's own loader finds the
    repo id its config names), else the cached snapshot of the robosteer VLM its config names, else None."""
    vlm_dir = path / VLM_SUBDIR
    if (vlm_dir / "config.json").is_file():
        try_register_vlm(vlm_dir)
        return vlm_dir
    name = str(getattr(config, "vlm_model_name", ""))
    return cached_vlm_dir(name) if is_robosteer_vlm_id(name) else None


HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(@[\w./-]+)?$")
"""A Hugging Face hub model id, optionally pinned: ``lerobot/pi05_base`` or ``lerobot/pi05_base@<revision>``."""


def resolve_policy_path(policy: str | Path) -> Path:
    """The checkpoint folder ``policy`` names: a local folder as is, else a hub id (``owner/name[@revision]``)
    resolved through huggingface_hub's cache (downloaded only when downloads are on: ``HF_HUB_OFFLINE=0``)."""
    if str(policy) in EMBEDDED_POLICIES:
        return EMBEDDED_POLICIES[str(policy)]
    path = Path(policy).expanduser()
    if path.exists() or not HUB_ID.match(str(policy)):
        return path
    repo_id, _, revision = str(policy).partition("@")
    return _hub_snapshot(repo_id, revision or None)


def _hub_snapshot(repo_id: str, revision: str | None) -> Path:
    from huggingface_hub import snapshot_download

    offline = os.environ.get("HF_HUB_OFFLINE", "0").strip().lower() in ("1", "true", "yes", "on")
    pinned = f"{repo_id}@{revision}" if revision else repo_id
    try:
        folder = snapshot_download(repo_id, revision=revision, cache_dir=_hub_cache_dir(), local_files_only=offline)
    except Exception as err:  # not cached, not reachable, unknown repo or revision: one message with the fix
        where = (
            "is not in the Hugging Face cache and downloads are off (HF_HUB_OFFLINE=1)"
            if offline
            else (f"could not be downloaded ({type(err).__name__})")
        )
        raise RobosteerError(
            f"no local folder {repo_id!r} and the hub model {pinned} {where}; fetch it once with "
            f"`HF_HUB_OFFLINE=0 hf download {repo_id}{f' --revision {revision}' if revision else ''}` "
            "(or pass a local LeRobot checkpoint folder)"
        ) from None
    return Path(folder)


def _hub_cache_dir() -> str | None:
    """The hub cache as the environment names it now (``HF_HUB_CACHE``, else ``$HF_HOME/hub``; None: the default)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return str(Path(os.environ["HF_HOME"]) / "hub")
    return None


def _require_cached_hub_model(repo_id: str, ckpt: Path) -> None:
    from huggingface_hub import try_to_load_from_cache

    if not isinstance(try_to_load_from_cache(repo_id, "config.json"), str):
        raise RobosteerError(
            f"checkpoint {ckpt} needs the VLM {repo_id!r}, which is neither a local folder nor in "
            f"the Hugging Face cache; downloads are off. Put its config/tokenizer/processor in "
            f"{ckpt / VLM_SUBDIR}"
        )


def dataset_features_and_stats(dataset_root: str | Path):
    """Policy features + normalisation stats (tensors) of a LeRobot dataset on disk."""
    from robosteer.validation import open_lerobot_metadata

    return _features_from_meta(open_lerobot_metadata(dataset_root))


def _features_from_meta(meta):
    from lerobot.configs import FeatureType
    from lerobot.utils.feature_utils import dataset_to_policy_features

    features = dataset_to_policy_features(meta.features)
    inputs = {k: f for k, f in features.items() if f.type in (FeatureType.STATE, FeatureType.VISUAL)}
    outputs = {k: f for k, f in features.items() if f.type == FeatureType.ACTION}
    stats = {
        key: {name: torch.as_tensor(value, dtype=torch.float32) for name, value in entry.items()}
        for key, entry in (meta.stats or {}).items()
        if key in features
    }
    return inputs, outputs, stats


def make_smolvla(spec: SmolVLASpec, dataset_root_or_meta=None, seed: int = 0) -> RobotPolicy:
    """A from-scratch SmolVLA RobotPolicy shaped by ``spec``; features/stats from a dataset when given."""
    from lerobot.policies.smolvla.processor_smolvla import make_smolvla_pre_post_processors

    if dataset_root_or_meta is None:
        inputs, outputs = default_features()
        stats = neutral_stats(inputs, outputs)
    elif isinstance(dataset_root_or_meta, (str, Path)):
        inputs, outputs, stats = dataset_features_and_stats(dataset_root_or_meta)
    else:
        inputs, outputs, stats = _features_from_meta(dataset_root_or_meta)
    model = build_smolvla(spec, inputs, outputs, seed=seed)
    preprocessor, postprocessor = make_smolvla_pre_post_processors(model.config, dataset_stats=stats)
    return RobotPolicy(model, preprocessor, postprocessor, layout_for_policy(model), vlm_dir=vlm_cache_dir(spec.vlm))


def tiny_spec(n_layers: int = 2, n_heads: int = 4) -> SmolVLASpec:
    """A SmolVLA small enough for tests: ``n_layers`` x ``n_heads`` heads of 16 features, 32 px images."""
    vlm = VlmSpec(
        text_hidden_size=16 * n_heads,
        text_layers=n_layers,
        text_heads=n_heads,
        text_kv_heads=max(1, n_heads // 2),
        head_dim=16,
        text_intermediate_size=32 * n_heads,
        vision_hidden_size=32,
        vision_layers=1,
        vision_heads=2,
        image_size=32,
        patch_size=8,
        scale_factor=2,
    )
    return SmolVLASpec(vlm=vlm, chunk_size=8, n_action_steps=4, num_steps=2, tokenizer_max_length=16)


def make_tiny_smolvla(dataset_root_or_meta=None, n_layers: int = 2, n_heads: int = 4, seed: int = 0) -> RobotPolicy:
    """A tiny from-scratch SmolVLA (``n_layers`` x ``n_heads`` in both stacks) for tests; builds in seconds."""
    return make_smolvla(tiny_spec(n_layers, n_heads), dataset_root_or_meta, seed=seed)
