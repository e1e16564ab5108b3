"""The image geometry of a new base (image side, patch side, pixel shuffle) is chosen on the command line, checked
before any work, and read back from the model wherever it matters (decoding demos, the model card)."""

from __future__ import annotations

import pytest

from robosteer.errors import RobosteerError


def _config(tmp_path, **geometry):
    from robosteer.pretrain.pipeline import PretrainConfig

    return PretrainConfig(out=tmp_path / "out", steps=1, **geometry)


def test_defaults_keep_the_base_geometry(tmp_path):
    from robosteer.pretrain.pipeline import BASE_SPEC

    assert _config(tmp_path).spec == BASE_SPEC


def test_geometry_flags_shape_the_new_model(tmp_path):
    from robosteer.policies.loading import make_smolvla
    from robosteer.pretrain.pipeline import image_geometry

    cfg = _config(tmp_path, image_size=96, patch_size=16, pixel_shuffle=1)
    assert (cfg.spec.vlm.image_size, cfg.spec.vlm.patch_size, cfg.spec.vlm.scale_factor) == (96, 16, 1)
    assert image_geometry(make_smolvla(cfg.spec)) == (96, 16, 1)


@pytest.mark.parametrize(
    ("geometry", "words"),
    [
        ({"image_size": 50}, "image_size=50 / patch_size=8"),
        ({"image_size": 96, "patch_size": 16, "pixel_shuffle": 4}, "divisible by scale_factor=4"),
    ],
)
def test_a_geometry_that_does_not_tile_fails_naming_a_fix(tmp_path, geometry, words):
    with pytest.raises(RobosteerError, match=words) as err:
        _config(tmp_path, **geometry)
    assert "--image-size 96 --patch-size 16 --pixel-shuffle 1" in str(err.value)


def test_geometry_flags_refuse_a_checkpoint_to_continue(tmp_path):
    with pytest.raises(RobosteerError, match="--init-from continues a checkpoint"):
        _config(tmp_path, image_size=96, init_from=tmp_path)


def test_the_shipped_base_reports_its_geometry():
    from robosteer.policies.loading import load_policy
    from robosteer.pretrain.pipeline import image_geometry

    assert image_geometry(load_policy("embedded")) == (48, 8, 2)
