"""Every reader passes ReaderTests; every lister passes ListingTests (tests/conformance.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import fixtures  # noqa: E402
from conformance import ListingTests, ReaderTests, local_make  # noqa: E402

# -- readers ---------------------------------------------------------------------------------------


def _tczyx(arr: np.ndarray, axes: str) -> np.ndarray:
    """A (C, Y, X) or (Y, X) array as TCZYX."""
    if axes == "CYX":
        return arr[None, :, None]
    return arr[None, None, None]


class TestOmeTiffPyramid(ReaderTests):
    @pytest.fixture
    def case(self, images: dict) -> dict[str, Any]:
        path, truth = images["ome_tiff"]
        return {"source": path, "format": "OME-TIFF", "scenes": 2, "level0": _tczyx(truth[0][0], "CYX"), "physical_x": 0.325}


class TestSvs(ReaderTests):
    @pytest.fixture
    def case(self, images: dict) -> dict[str, Any]:
        path, truth = images["svs"]
        return {"source": path, "format": "SVS", "scenes": 1, "level0": truth[0][None, None, None], "physical_x": 0.499}


class TestFlatTiff(ReaderTests):
    @pytest.fixture
    def case(self, images: dict) -> dict[str, Any]:
        path, truth = images["flat"]
        return {"source": path, "format": "TIFF", "scenes": 1, "level0": _tczyx(truth, "YX"), "physical_x": None}


class TestImageJ(ReaderTests):
    @pytest.fixture
    def case(self, images: dict) -> dict[str, Any]:
        path, _ = images["imagej"]
        return {"source": path, "format": "ImageJ TIFF", "scenes": 1, "physical_x": 0.2}


class TestNgff04(ReaderTests):
    @pytest.fixture
    def case(self, images: dict) -> dict[str, Any]:
        path, truth = images["ngff04"]
        return {"source": path, "format": "OME-Zarr", "scenes": 1, "level0": truth["image"][0][None]}


class TestNgff05(ReaderTests):
    @pytest.fixture
    def case(self, images: dict) -> dict[str, Any]:
        path, truth = images["ngff05"]
        return {"source": path, "format": "OME-Zarr", "scenes": 1, "level0": truth["image"][0][None]}


class TestNgffPlate(ReaderTests):
    @pytest.fixture
    def case(self, images: dict) -> dict[str, Any]:
        path, truth = images["plate"]
        return {"source": path, "format": "OME-Zarr plate", "scenes": len(truth)}


class TestMultiFileOmeTiff(ReaderTests):
    @pytest.fixture
    def case(self, tmp_path: Path) -> dict[str, Any]:
        made = fixtures.ome_tiff_multifile(tmp_path / "mf", files=3)
        truth = made["truth"]
        return {"source": made["paths"][1], "format": "OME-TIFF", "scenes": 1, "level0": truth[None, None], "physical_x": 0.5}


class TestPng(ReaderTests):
    @pytest.fixture
    def case(self, tmp_path: Path) -> dict[str, Any]:
        import imageio.v3 as iio

        data = (np.arange(300 * 400) % 251).astype(np.uint8).reshape(300, 400)
        path = tmp_path / "x.png"
        iio.imwrite(path, data)
        return {"source": path, "format": "PNG", "scenes": 1, "level0": data[None, None, None], "physical_x": None}


class TestCzi(ReaderTests):
    @pytest.fixture
    def case(self, shared_data: Path) -> dict[str, Any]:
        return {"source": shared_data / "czi" / "S3_1Pos_2Mosaic_T1_Z1_CH1.czi", "format": "CZI", "scenes": 3}


class TestDeltaVision(ReaderTests):
    @pytest.fixture
    def case(self, shared_data: Path) -> dict[str, Any]:
        return {"source": shared_data / "dv" / "toxo.dv", "format": "DeltaVision", "scenes": 1}


@pytest.mark.s3
class TestNgffOnS3(ReaderTests):
    @pytest.fixture
    def case(self, s3: Any, images: dict) -> dict[str, Any]:
        path, truth = images["ngff05"]
        bucket = s3.make_bucket("conf")
        s3.put(bucket, {f"x.ome.zarr/{p.relative_to(path).as_posix()}": p.read_bytes() for p in Path(path).rglob("*") if p.is_file()})
        return {"source": f"s3://{bucket}/x.ome.zarr", "options": s3.storage_options, "format": "OME-Zarr",
                "scenes": 1, "level0": truth["image"][0][None]}


class TestOmeTiffOverHttp(ReaderTests):
    @pytest.fixture
    def case(self, http_server: Any, images: dict) -> dict[str, Any]:
        path, truth = images["ome_tiff"]
        base = http_server(Path(path).parent)
        return {"source": f"{base}/{Path(path).name}", "format": "OME-TIFF", "scenes": 2, "level0": _tczyx(truth[0][0], "CYX")}


# -- listers ---------------------------------------------------------------------------------------


class TestLocalListing(ListingTests):
    @pytest.fixture
    def make(self, tmp_path: Path) -> Any:
        return local_make(tmp_path)


class TestMemoryListing(ListingTests):
    @pytest.fixture
    def make(self) -> Any:
        import uuid

        import fsspec

        fs = fsspec.filesystem("memory")
        made: list[str] = []

        def make(files: dict[str, bytes]) -> tuple[str, dict[str, Any]]:
            base = f"/conf-{uuid.uuid4().hex[:8]}"
            fs.pipe({f"{base}/{k}": v for k, v in files.items()})
            made.append(base)
            return f"memory://{base}", {}

        yield make
        for base in made:
            fs.rm(base, recursive=True)


@pytest.mark.s3
class TestS3Listing(ListingTests):
    @pytest.fixture
    def make(self, s3: Any) -> Any:
        def make(files: dict[str, bytes]) -> tuple[str, dict[str, Any]]:
            bucket = s3.make_bucket("lst")
            s3.put(bucket, {f"p/{k}": v for k, v in files.items()})
            return f"s3://{bucket}/p", s3.storage_options

        return make


class TestHttpListing(ListingTests):
    @pytest.fixture
    def make(self, tmp_path: Path, http_server: Any) -> Any:
        local = local_make(tmp_path)

        def make(files: dict[str, bytes]) -> tuple[str, dict[str, Any]]:
            root, _ = local(files)
            base = http_server(Path(root).parent)
            return f"{base}/{Path(root).name}/", {}

        return make


def test_readers_conformance_covers_every_builtin_reader():
    """Each registered reader family has at least one ReaderTests subclass here."""
    from bioimnb.core import registry

    covered = {"tifffile", "zarr", "bioio-czi", "bioio"}
    names = {r.name for r in registry.readers() if r.plugin is None}
    # OpenSlide: tests/core/test_open_image.py (MRXS needs vendor data); Bio-Formats: tests/core/test_bioformats.py
    missing = names - covered - {"openslide", "bioformats"}
    assert not missing, missing
    assert tifffile.__version__
