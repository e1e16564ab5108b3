"""``--policy`` accepts a Hugging Face hub id (optionally ``@revision``) resolved through the local hub cache, offline;
a model that is neither cached nor reachable gets one error naming the command that fetches it."""

from __future__ import annotations

import pytest

from robosteer.errors import RobosteerError

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """A hub cache under HF_HOME holding ``someone/tiny-smolvla`` at COMMIT (the layout huggingface_hub writes)."""
    from robosteer.policies import make_tiny_smolvla

    repo = tmp_path / "hf" / "hub" / "models--someone--tiny-smolvla"
    make_tiny_smolvla(seed=0).save(repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return repo


@pytest.mark.slow
def test_hub_id_loads_from_the_cache_offline(hub_cache):
    from robosteer.policies import load_policy, make_tiny_smolvla

    expected = make_tiny_smolvla(seed=0).fingerprint()
    assert load_policy("someone/tiny-smolvla").fingerprint() == expected
    assert load_policy(f"someone/tiny-smolvla@{COMMIT}").fingerprint() == expected


def test_uncached_hub_id_names_the_fetch_command(hub_cache):
    from robosteer.policies.loading import resolve_policy_path

    with pytest.raises(RobosteerError, match=r"hf download someone/missing --revision v2") as err:
        resolve_policy_path("someone/missing@v2")
    assert "HF_HUB_OFFLINE=1" in str(err.value) and "\n" not in str(err.value)


def test_local_folders_win_over_hub_ids(tmp_path, monkeypatch):
    from robosteer.policies.loading import resolve_policy_path

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "merged").mkdir(parents=True)
    assert resolve_policy_path("runs/merged") == tmp_path / "runs" / "merged" or resolve_policy_path(
        "runs/merged"
    ).resolve() == (tmp_path / "runs" / "merged")
    assert str(resolve_policy_path("./not/there")) == "not/there"  # not a hub id: the loader's own error follows
