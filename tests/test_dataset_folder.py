"""Every reader of a LeRobot dataset folder refuses a folder without meta/info.json with the same message."""

from __future__ import annotations

import re

import pytest

from robosteer.errors import RobosteerError

MESSAGE = "is not a LeRobot dataset (no meta/info.json); record one with `robosteer record` or pass the dataset folder"


def _refused_by_all(folder, readers) -> None:
    for read in readers:
        with pytest.raises(RobosteerError, match=re.escape(f"{folder} {MESSAGE}")):
            read(folder)


def test_the_check_and_its_one_message(tmp_path):
    from robosteer.data import read_episode_labels
    from robosteer.validation import is_lerobot_dataset, read_dataset_info, require_lerobot_dataset

    plain = tmp_path / "plain"
    plain.mkdir()
    assert not is_lerobot_dataset(plain)
    _refused_by_all(plain, (require_lerobot_dataset, read_dataset_info, read_episode_labels))
    (plain / "meta").mkdir()
    (plain / "meta" / "info.json").write_text("{}")
    assert is_lerobot_dataset(plain) and require_lerobot_dataset(str(plain)) == plain


@pytest.mark.slow
def test_the_dataset_openers_give_the_same_message(tmp_path):
    from robosteer.heads.dataset import open_dataset
    from robosteer.policies.loading import dataset_features_and_stats
    from robosteer.pretrain.data import load_demos
    from robosteer.validation import open_lerobot_dataset, open_lerobot_metadata

    plain = tmp_path / "plain"
    plain.mkdir()
    readers = (open_lerobot_dataset, open_lerobot_metadata, open_dataset, dataset_features_and_stats)
    _refused_by_all(plain, (*readers, lambda root: load_demos(root, 32, [])))
