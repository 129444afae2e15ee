"""Associated images (a slide's label, macro, thumbnail) are listed in info and readable from
the public API, never counted as levels or scenes."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import openslide
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import fixtures  # noqa: E402

import bioimnb  # noqa: E402
from bioimnb.core.errors import BioimnbError  # noqa: E402
from bioimnb.core.text import format_info  # noqa: E402


def test_svs_associated_images_as_openslide_sees_them(tmp_path: Path) -> None:
    made = fixtures.aperio_svs(tmp_path / "a.svs")
    img = bioimnb.open_image(tmp_path / "a.svs")
    slide = openslide.OpenSlide(str(tmp_path / "a.svs"))
    assert img.n_levels == slide.level_count
    assert sorted(img.associated_images) == sorted(slide.associated_images)
    assert img.describe()["associated"] == img.associated_images
    assert "associated images: thumbnail, label, macro" in format_info(img.describe())
    label = img.associated("label")
    assert label.dtype == np.uint8 and label.shape == made["label"].shape
    np.testing.assert_array_equal(label, made["label"])
    with pytest.raises(BioimnbError, match="no associated image 'nope'"):
        img.associated("nope")


def test_images_without_associated_images(images: dict) -> None:
    img = bioimnb.open_image(images["ome_tiff"][0])
    assert img.associated_images == []
    with pytest.raises(BioimnbError, match="no associated image .label."):
        img.associated("label")
