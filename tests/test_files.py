"""Atomic writes (robosteer.files): the new version replaces the old whole, a failed write leaves the old one."""

from __future__ import annotations

import pytest

from robosteer.files import atomic_dir, atomic_write, atomic_write_text, replace_dir


def test_atomic_write_replaces_the_file_and_keeps_its_suffix(tmp_path):
    path = tmp_path / "sub" / "heads.png"
    seen = []
    atomic_write(path, lambda tmp: (seen.append(tmp), tmp.write_text("new")))
    assert path.read_text() == "new" and seen[0].suffix == ".png" and seen[0].parent == path.parent
    atomic_write_text(path, "newer")
    assert path.read_text() == "newer" and [p.name for p in path.parent.iterdir()] == ["heads.png"]


def test_a_failed_write_leaves_the_old_file_or_folder_and_no_temp(tmp_path):
    def fail(tmp):
        (tmp / "part").write_text("half") if tmp.is_dir() else tmp.write_text("half")
        raise KeyboardInterrupt

    atomic_write_text(tmp_path / "a.json", "old")
    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "a.json", fail)
    atomic_dir(tmp_path / "d", lambda tmp: (tmp / "x").write_text("old"))
    with pytest.raises(KeyboardInterrupt):
        atomic_dir(tmp_path / "d", fail)
    assert (tmp_path / "a.json").read_text() == "old" and (tmp_path / "d" / "x").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "d"]


def test_atomic_dir_and_replace_dir_replace_a_whole_folder(tmp_path):
    atomic_dir(tmp_path / "d", lambda tmp: (tmp / "old").write_text("1"))
    atomic_dir(tmp_path / "d", lambda tmp: (tmp / "new").write_text("2"))
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["new"]
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "newest").write_text("3")
    replace_dir(tmp_path / "src", tmp_path / "d")
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["newest"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]
