"""Atomic writes: a file or folder is written under a temp name in its own folder, then ``os.replace``d into place.

A crash, Ctrl-C or error while writing never leaves a half-written file or folder under the final name: readers see
the old version or the new one. The temp name starts with a dot and is removed when the write fails.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """``write(tmp)`` writes the file ``tmp`` (same folder and suffix as ``path``), which then replaces ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def atomic_dir(target: str | Path, write: Callable[[Path], object]) -> Path:
    """``write(tmp)`` fills the empty folder ``tmp`` (next to ``target``), which then replaces ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        write(tmp)
        replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def replace_dir(src: str | Path, target: str | Path) -> Path:
    """Move the folder ``src`` to ``target`` (same file system), replacing an existing ``target``: the old folder
    is first renamed aside, so ``target`` is at every moment either the whole old folder or the whole new one."""
    src, target = Path(src), Path(target)
    if not target.exists():
        os.replace(src, target)
        return target
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}-old-", dir=target.parent))
    os.replace(target, old / target.name)
    os.replace(src, target)
    shutil.rmtree(old)
    return target
