"""Label images: in-memory images converted with ``labels=``, ``add_labels`` into an existing
OME-Zarr, validated by ome-zarr-models and read back by ome-zarr-py with equal values; label
overlays of in-memory images in the tile renderer; bad label arrays refused in one line."""

from __future__ import annotations

import json

import dask.array as da
import numpy as np
import pytest
import zarr

import bioimnb
from bioimnb.core.errors import BioimnbError
from bioimnb.core.readers.memory import attach_label
from bioimnb.core.tiles import TileRenderer, label_colors


def _image_and_mask(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 4000, (2, 3, 600, 700), dtype=np.uint16)  # C, Z, Y, X
    mask = np.zeros((3, 600, 700), dtype=np.uint32)
    mask[:, 100:220, 50:300] = 3
    mask[1, 400:550, 400:690] = 70000
    mask[2, 10:20, 10:20] = 1
    return image, mask


def _ome_zarr_py_labels(path: str) -> dict[str, list[np.ndarray]]:
    """Label images as ome-zarr-py's reader finds them: name -> levels."""
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Label, Reader

    found: dict[str, list[np.ndarray]] = {}
    for node in Reader(parse_url(path))():
        if any(isinstance(spec, Label) for spec in node.specs):
            name = node.zarr.path.rstrip("/").rsplit("/", 1)[-1]
            found[name] = [np.asarray(level) for level in node.data]
    return found


@pytest.mark.parametrize("ngff", ["0.4", "0.5"])
def test_convert_in_memory_with_labels(tmp_path, ngff: str) -> None:
    image, mask = _image_and_mask()
    dest = tmp_path / "result.ome.zarr"
    report = bioimnb.convert(
        da.from_array(image, chunks=(1, 1, 256, 256)),
        dest,
        axes="CZYX",
        physical_size=(2.0, 0.4, 0.4),
        channel_names=["DAPI", "Actin"],
        labels={"nuclei": mask, "border": mask > 0},
        ngff=ngff,
    )
    assert any("level-0 checksums" in c for c in report.checks)
    assert f"ome-zarr-models v{ngff.replace('.', '')} validation of the image and its labels passed" in report.checks
    assert "label 'nuclei': 3 plane(s) equal to the array" in report.checks

    img = bioimnb.open_image(dest)
    np.testing.assert_array_equal(img.levels[0].compute()[0], image)
    assert img.channel_names == ["DAPI", "Actin"]
    assert img.physical_size.to_dict() == {"X": 0.4, "Y": 0.4, "Z": 2.0}
    assert img.labels == ["nuclei", "border"]

    # ome-zarr-py reads the same ids back, every level
    found = _ome_zarr_py_labels(str(dest))
    assert set(found) == {"nuclei", "border"}
    np.testing.assert_array_equal(found["nuclei"][0].reshape(mask.shape), mask)
    np.testing.assert_array_equal(found["border"][0].reshape(mask.shape), (mask > 0).astype(np.uint8))
    assert len(found["nuclei"]) == img.n_levels
    # coarser levels hold only ids that exist (mode, never an average)
    assert set(np.unique(found["nuclei"][-1])) <= {0, 1, 3, 70000}

    root = zarr.open_group(str(dest), mode="r")
    attrs = root["labels/nuclei"].attrs.asdict()
    meta = attrs.get("ome", attrs)
    colors = {c["label-value"]: c["rgba"] for c in meta["image-label"]["colors"]}
    assert set(colors) == {1, 3, 70000}
    want = label_colors(np.array([70000]))[0]
    assert colors[70000] == [int(want[0]), int(want[1]), int(want[2]), 255]
    assert meta["image-label"]["source"] == {"image": "../../"}
    assert attrs["bioimnb"]["status"] == "complete"
    assert attrs["bioimnb"]["provenance"]["label_dtype"] == "uint32"
    prov = root.attrs["bioimnb"]["provenance"]
    assert prov["source"] == "in-memory dask image 'dask array'" and prov["source_shape"] == [1, 2, 3, 600, 700]
    assert prov["size"] == image.nbytes


def test_add_labels_to_an_existing_ome_zarr_and_validate(tmp_path) -> None:
    from ome_zarr_models.v05 import Image
    from ome_zarr_models.v05.labels import Labels

    image, mask = _image_and_mask(1)
    dest = tmp_path / "cells.ome.zarr"
    bioimnb.convert(image[:, 1], dest, axes="CYX")
    out = bioimnb.add_labels(dest, "cells", mask[1])
    assert out["path"] == "labels/cells" and out["colors"] == 2
    out2 = bioimnb.add_labels(str(dest), "nuclei", mask[1] == 3)
    assert out2["levels"][0] == [1, 1, 1, 600, 700]
    root = zarr.open_group(str(dest), mode="r")
    Image.from_zarr(root)
    Labels.from_zarr(root["labels"])
    assert root["labels"].attrs["ome"]["labels"] == ["cells", "nuclei"]
    img = bioimnb.open_image(dest)
    assert img.labels == ["cells", "nuclei"]
    np.testing.assert_array_equal(img.label("cells").levels[0].compute()[0, 0, 0], mask[1])
    with pytest.raises(BioimnbError) as err:
        bioimnb.add_labels(dest, "cells", mask[1])
    assert str(err.value) == f"{dest}: already has a label image 'cells'; pass overwrite=True to replace it"
    bioimnb.add_labels(dest, "cells", mask[1] * 2, overwrite=True)
    np.testing.assert_array_equal(bioimnb.open_image(dest).label("cells").levels[0].compute()[0, 0, 0], mask[1] * 2)
    assert zarr.open_group(str(dest), mode="r")["labels"].attrs["ome"]["labels"] == ["cells", "nuclei"]


def test_add_labels_refusals(tmp_path) -> None:
    image, mask = _image_and_mask(2)
    dest = tmp_path / "img.ome.zarr"
    bioimnb.convert(image[0], dest, axes="ZYX", ngff="0.4")
    cases = [
        (mask[0], f"{dest}: label 'm' has shape (600, 700), which does not match the image (Z=3, Y=600, X=700)"),
        (mask.astype(np.float32), f"{dest}: label 'm' has dtype float32; label images hold integer ids (cast it, e.g. mask.astype('uint32'))"),
        (mask[:, :10], f"{dest}: label 'm' has shape (3, 10, 700), which does not match the image (Z=3, Y=600, X=700)"),
    ]
    for array, line in cases:
        with pytest.raises(BioimnbError) as err:
            bioimnb.add_labels(dest, "m", array)
        assert str(err.value) == line
    tif = tmp_path / "img.ome.tif"
    bioimnb.convert(image[0, 0], tif)
    with pytest.raises(BioimnbError, match="label images are written into OME-Zarr images; this is OME-TIFF"):
        bioimnb.add_labels(tif, "m", mask[0])
    with pytest.raises(BioimnbError, match="label images are written into OME-Zarr only"):
        bioimnb.convert(image[0, 0], tmp_path / "x.ome.tif", labels={"m": mask[0]})
    # a label that does not fit is refused before anything is written
    with pytest.raises(BioimnbError, match="label 'm' has shape"):
        bioimnb.convert(image[0], tmp_path / "never.ome.zarr", axes="ZYX", labels={"m": mask[0, :5]})
    assert not (tmp_path / "never.ome.zarr").exists()


def test_label_overlay_in_tiles_and_values() -> None:
    image, mask = _image_and_mask(3)
    img = bioimnb.open_image(image[:, 0], axes="CYX")
    attach_label(img, "nuclei", da.from_array(mask[0], chunks=256))
    assert img.labels == ["nuclei"]
    r = TileRenderer(img)
    values = r.values(0, 0, 0, 100, 150)
    assert values["labels"] == {"nuclei": 3}
    view = r.default_view().channels
    rgba = r.render_rgba(0, 0, 0, 0, 0, 0, view, ["nuclei"])
    plain = r.render_rgba(0, 0, 0, 0, 0, 0, view, [])
    colour = label_colors(np.array([3]))[0].astype(np.uint16)
    want = ((plain[150, 100, :3].astype(np.uint16) + colour + 1) // 2).astype(np.uint8)
    np.testing.assert_array_equal(rgba[150, 100, :3], want)
    np.testing.assert_array_equal(rgba[5, 5], plain[5, 5])  # id 0 is transparent
    # the coarsest level shows sampled ids, never invented ones
    coarse = img.label("nuclei").levels[-1].compute()
    assert set(np.unique(coarse)) <= {0, 3}


def test_convert_provenance_is_json_and_verifies_the_array(tmp_path) -> None:
    image, _ = _image_and_mask(4)
    dest = tmp_path / "p.ome.zarr"
    bioimnb.convert(image[0, 0], dest, name="max projection")
    meta = json.loads((dest / "zarr.json").read_text())
    prov = meta["attributes"]["bioimnb"]["provenance"]
    assert prov["source"] == "in-memory numpy image 'max projection'"
    assert meta["attributes"]["bioimnb"]["status"] == "complete"
    np.testing.assert_array_equal(bioimnb.open_image(dest).levels[0].compute()[0, 0, 0], image[0, 0])


def test_label_opacity_blend() -> None:
    image, mask = _image_and_mask(5)
    img = bioimnb.open_image(image[:, 0], axes="CYX")
    attach_label(img, "nuclei", mask[0])
    r = TileRenderer(img)
    view = r.default_view().channels
    plain = r.render_rgba(0, 0, 0, 0, 0, 0, view, [])
    colour = label_colors(np.array([3]))[0].astype(np.float64)
    for a in (0.0, 0.25, 0.8, 1.0):
        rgba = r.render_rgba(0, 0, 0, 0, 0, 0, view, ["nuclei"], label_opacity=a)
        base = plain[150, 100, :3].astype(np.float64)
        want = np.floor(base + (colour - base) * a + 0.5).astype(np.uint8)
        np.testing.assert_array_equal(rgba[150, 100, :3], want)
        np.testing.assert_array_equal(rgba[5, 5], plain[5, 5])


@pytest.mark.parametrize("shape, factors", [((1, 1, 3, 37, 53), (1, 1, 1, 2, 2)), ((2, 1, 5, 41, 30), (1, 1, 2, 2, 2))])
def test_coarse_label_levels_are_reduced_block_by_block(monkeypatch, tmp_path, shape, factors) -> None:
    """Each coarse level is computed one output block at a time (memory bounded by a block)
    and equals reducing the whole level at once, odd edges included."""
    from bioimnb.core.convert import labels as mod
    from bioimnb.core.convert.downsample import reduce_block

    monkeypatch.setattr(mod, "_BLOCK_YX", 8)  # many blocks, ragged at the edges
    rng = np.random.default_rng(3)
    prev_data = rng.integers(0, 5, shape).astype(np.uint16)
    out_shape = tuple(-(-n // f) + (1 if i == 4 else 0) for i, (n, f) in enumerate(zip(shape, factors)))  # X one wider
    root = zarr.open_group(str(tmp_path / "l.zarr"), mode="w")
    prev = root.create_array("0", shape=shape, dtype=np.uint16, chunks=(1, 1, 1, 8, 8))
    prev[...] = prev_data
    out = root.create_array("1", shape=out_shape, dtype=np.uint16, chunks=(1, 1, 1, 4, 4), fill_value=0)
    reads: list[int] = []
    original = prev.__class__.__getitem__

    def counting(self, key):
        got = original(self, key)
        reads.append(int(np.asarray(got).size))
        return got

    monkeypatch.setattr(prev.__class__, "__getitem__", counting)
    mod._reduce_level(prev, out)
    monkeypatch.undo()
    whole = mod._fit(reduce_block(prev_data, factors, "mode"), out_shape)
    np.testing.assert_array_equal(out[...], whole)
    assert len(reads) > 4 and max(reads) < prev_data.size  # never the whole level at once


def test_convert_keeps_the_source_label_images(tmp_path, images) -> None:
    """An OME-Zarr's own label images go into the converted OME-Zarr (verified like any label);
    an OME-TIFF, which cannot hold them, says so in the report's notes."""
    src, truth = images["ngff05"]
    for ngff in ("0.5", "0.4"):
        dest = tmp_path / f"copy{ngff}.ome.zarr"
        report = bioimnb.convert(src, dest, ngff=ngff)
        out = bioimnb.open_image(dest)
        assert out.labels == ["cells"] and report.notes == []
        np.testing.assert_array_equal(out.label("cells").levels[0].compute()[0, 0], truth["cells"][0])
        assert any("label 'cells'" in c and "equal to the array" in c for c in report.checks)
    # The caller's own label of the same name wins over the source's.
    mine = np.zeros(truth["cells"][0].shape, np.uint16)
    mine[0, :10, :10] = 7
    report = bioimnb.convert(src, tmp_path / "mine.ome.zarr", labels={"cells": mine})
    np.testing.assert_array_equal(bioimnb.open_image(tmp_path / "mine.ome.zarr").label("cells").levels[0].compute()[0, 0], mine)
    tiff = bioimnb.convert(src, tmp_path / "copy.ome.tif")
    assert tiff.notes == ["label image 'cells' not carried: OME-TIFF has no label images (convert to .ome.zarr to keep it)"]
    assert "note: label image 'cells' not carried" in tiff.summary()
