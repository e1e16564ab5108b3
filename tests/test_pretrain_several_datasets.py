"""Pretraining on several recorded datasets at once: frames concatenated episode by episode, normalisation from
their pooled statistics, datasets of other shapes refused before any work, and the whole command end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from robosteer.errors import RobosteerError


@pytest.fixture(scope="module")
def two_datasets(tmp_path_factory):
    from robosteer.study.rank_bench import write_synthetic_demos

    root = tmp_path_factory.mktemp("several")
    first = write_synthetic_demos(root / "first", n_episodes=2, n_frames=10, seed=0)
    second = write_synthetic_demos(root / "second", n_episodes=3, n_frames=12, seed=1)
    return first, second


def test_concatenated_demos_keep_episode_bounds_and_merge_tasks(two_datasets):
    from robosteer.pretrain.data import concat_demos, load_demos

    keys = ["observation.images.front", "observation.images.wrist"]
    parts = [load_demos(root, 32, keys) for root in two_datasets]
    demos = concat_demos(parts)
    assert len(demos) == 2 * 10 + 3 * 12
    assert sorted(set(demos.episode_end.tolist())) == [10, 20, 32, 44, 56]
    assert demos.tasks == parts[0].tasks  # the same instruction in both datasets is one task
    assert (demos.states[20:] == parts[1].states).all() and demos.images[keys[0]].shape == (56, 3, 32, 32)


def test_pooled_statistics_weigh_every_frame(two_datasets):
    from robosteer.pretrain.data import load_demos, pooled_metadata

    meta = pooled_metadata(list(two_datasets))
    frames = np.concatenate([load_demos(root, 32, []).states.numpy() for root in two_datasets])  # (N, 8)
    np.testing.assert_allclose(meta.stats["observation.state"]["mean"], frames.mean(0), atol=1e-5)
    np.testing.assert_allclose(meta.stats["observation.state"]["max"], frames.max(0), atol=1e-6)


def test_datasets_of_other_shapes_are_refused(two_datasets, tmp_path):
    from robosteer.pretrain.data import pooled_metadata
    from robosteer.study.rank_bench import write_synthetic_demos

    other = write_synthetic_demos(tmp_path / "other", n_episodes=1, n_frames=6, image_size=48)
    with pytest.raises(RobosteerError, match="other features or fps"):
        pooled_metadata([two_datasets[0], other])


@pytest.mark.slow
def test_pretrain_on_two_datasets_end_to_end(two_datasets, tmp_path, monkeypatch):
    from robosteer.cli import app

    monkeypatch.setenv("ROBOSTEER_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    args = ["pretrain", "--data", ",".join(map(str, two_datasets)), "--image-size", "32", "--patch-size", "8",
            "--pixel-shuffle", "1", "--steps", "2", "--batch-size", "2", "--eval-episodes", "0",
            "--heldout-eval-episodes", "0", "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    card = (out / "policy" / "MODEL_CARD.md").read_text()
    assert "56 frames) of 2 existing datasets" in card
    assert "recording none (`--data`)" in card
    assert "32 px images (4^2 patches of 8 px, pixel shuffle 1: 16 tokens per camera)" in card
    assert json.loads((out / "options.json").read_text())["data"] == [str(root) for root in two_datasets]
