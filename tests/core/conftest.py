from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import fixtures  # noqa: E402


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Generated test images and the arrays that made them."""
    d = tmp_path_factory.mktemp("images")
    out: dict = {"dir": d}
    out["ome_tiff"] = (d / "pyramid.ome.tif", fixtures.ome_tiff_subifd(d / "pyramid.ome.tif"))
    out["svs"] = (d / "slide.svs", fixtures.svs_like(d / "slide.svs"))
    out["flat"] = (d / "flat.tif", fixtures.flat_tiff(d / "flat.tif"))
    out["imagej"] = (d / "hyper.tif", fixtures.imagej_tiff(d / "hyper.tif"))
    out["ngff04"] = (d / "v04.ome.zarr", fixtures.ngff_image(d / "v04.ome.zarr", "0.4"))
    out["ngff05"] = (d / "v05.ome.zarr", fixtures.ngff_image(d / "v05.ome.zarr", "0.5"))
    out["plate"] = (d / "plate.ome.zarr", fixtures.ngff_plate(d / "plate.ome.zarr", "0.4"))
    return out

