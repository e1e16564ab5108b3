"""Generated SmolVLM folders in the local Hugging Face hub cache, under a content-addressed robosteer repo id.

LeRobot's SmolVLA names its VLM by hub id (``vlm_model_name``) and transformers finds that id in the hub cache
offline. :func:`register_vlm` gives a generated VLM folder the id ``robosteer/smolvlm-<12 hex of its files' digest>``
and writes its files where huggingface_hub looks (``models--robosteer--smolvlm-.../snapshots/<commit>/`` plus
``refs/main``), so a checkpoint that names that id loads with LeRobot's own ``from_pretrained`` from any working
directory. Same files -> same id and commit; registering again changes nothing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path

from robosteer.files import atomic_dir, atomic_write_text

REPO_OWNER = "robosteer"
"""Owner part of every generated VLM's repo id."""
REPO_PREFIX = "smolvlm-"
"""Name prefix of every generated VLM's repo id; the rest is the first 12 hex of :func:`vlm_digest`."""
_DIGEST_HEX = 12
_COMMIT_HEX = 40

log = logging.getLogger(__name__)


def _vlm_files(folder: Path) -> list[Path]:
    """The folder's files (recursive, hidden names left out), sorted by their relative POSIX path."""
    files = [p for p in folder.rglob("*") if p.is_file()]
    files = [p for p in files if not any(part.startswith(".") for part in p.relative_to(folder).parts)]
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


def vlm_digest(folder: str | Path) -> str:
    """SHA-256 (hex) over the relative names and bytes of the folder's files."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for file in _vlm_files(folder):
        data = file.read_bytes()
        digest.update(f"{file.relative_to(folder).as_posix()}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def vlm_repo_id(folder: str | Path) -> str:
    """``robosteer/smolvlm-<12 hex>``: the hub id that names this VLM folder's content."""
    return f"{REPO_OWNER}/{REPO_PREFIX}{vlm_digest(folder)[:_DIGEST_HEX]}"


def is_robosteer_vlm_id(name: str) -> bool:
    """Whether ``name`` is a repo id :func:`vlm_repo_id` makes."""
    owner, _, repo = str(name).partition("/")
    digest = repo.removeprefix(REPO_PREFIX)
    return (
        owner == REPO_OWNER
        and repo.startswith(REPO_PREFIX)
        and len(digest) == _DIGEST_HEX
        and all(c in "0123456789abcdef" for c in digest)
    )


def hub_cache_dir() -> Path:
    """The hub cache as the environment names it now: ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else
    huggingface_hub's own default."""
    from huggingface_hub import constants

    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return Path(constants.HF_HUB_CACHE)


def repo_cache_dir(repo_id: str) -> Path:
    """``<hub cache>/models--owner--name``: where huggingface_hub keeps ``repo_id``."""
    from huggingface_hub.file_download import repo_folder_name

    return hub_cache_dir() / repo_folder_name(repo_id=repo_id, repo_type="model")


def cached_vlm_dir(repo_id: str) -> Path | None:
    """The snapshot folder ``refs/main`` of ``repo_id`` points at in the hub cache, or None when not cached."""
    repo = repo_cache_dir(repo_id)
    ref = repo / "refs" / "main"
    if not ref.is_file():
        return None
    snapshot = repo / "snapshots" / ref.read_text().strip()
    return snapshot if (snapshot / "config.json").is_file() else None


def register_vlm(folder: str | Path) -> str:
    """Copy the VLM folder's files into the hub cache under :func:`vlm_repo_id` (atomically, once); returns the id.

    Raises ``OSError`` when the cache cannot be written (see :func:`try_register_vlm`).
    """
    folder = Path(folder)
    digest = vlm_digest(folder)
    repo_id = f"{REPO_OWNER}/{REPO_PREFIX}{digest[:_DIGEST_HEX]}"
    commit = digest[:_COMMIT_HEX]
    repo = repo_cache_dir(repo_id)
    snapshot = repo / "snapshots" / commit
    if not snapshot.is_dir():
        _write_snapshot(folder, snapshot)
    ref = repo / "refs" / "main"
    if not ref.is_file() or ref.read_text().strip() != commit:
        atomic_write_text(ref, commit)
    return repo_id


def _write_snapshot(folder: Path, snapshot: Path) -> None:
    """Copy ``folder``'s files to ``snapshot``; another process that wrote the same snapshot first wins."""

    def copy(tmp: Path) -> None:
        for file in _vlm_files(folder):
            target = tmp / file.relative_to(folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, target)

    try:
        atomic_dir(snapshot, copy)
    except OSError:
        if not snapshot.is_dir():
            raise


def try_register_vlm(folder: str | Path) -> str | None:
    """:func:`register_vlm`, but a cache that cannot be written (read-only, full) only logs a warning -> None."""
    try:
        return register_vlm(folder)
    except OSError as err:
        log.warning(
            "could not register the VLM folder %s in the Hugging Face hub cache %s (%s); robosteer still loads the "
            "checkpoint, LeRobot's own from_pretrained needs a writable HF_HUB_CACHE or HF_HOME",
            folder,
            hub_cache_dir(),
            err,
        )
        return None
