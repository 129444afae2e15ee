"""open_image on generated fixtures (pixel for pixel, level by level) and on the shared samples."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

import bioimnb
from bioimnb.core.errors import BioimnbError, CorruptFile, SourceNotFound, UnsupportedFormat


def canonical_levels(img: bioimnb.MultiscaleImage) -> list[np.ndarray]:
    return [np.asarray(lv.compute()) for lv in img.levels]


# -- generated fixtures ----------------------------------------------------------------------


def test_ome_tiff_subifd_pyramid_every_level_every_scene(images):
    path, truth = images["ome_tiff"]
    img = bioimnb.open_image(path)
    assert img.format == "OME-TIFF" and img.reader == "tifffile"
    assert img.scenes == ["scene-0", "scene-1"]
    for s, pyr in enumerate(truth):
        scene = img.select_scene(s)
        assert scene.axes == "TCZYX"
        assert scene.n_levels == len(pyr) and not scene.virtual_pyramid
        assert scene.channel_names == ["DAPI", "GFP"]
        assert pytest.approx(0.325) == scene.physical_size.X and scene.physical_size.Z is None
        for level, expected in zip(scene.levels, pyr, strict=True):
            assert level.shape == (1, *expected.shape[:1], 1, *expected.shape[1:])
            np.testing.assert_array_equal(level.compute()[0, :, 0], expected)
    assert img.select_scene("scene-1").scene_index == 1
    assert len(img.ome.images) == 2 and img.ome.images[0].pixels.channels[1].name == "GFP"


def test_region_read_matches_and_touches_only_tiles(images):
    path, truth = images["ome_tiff"]
    img = bioimnb.open_image(path, scene=1)
    region = img.read(1, t=0, z=0, y=slice(100, 228), x=slice(50, 178))
    np.testing.assert_array_equal(region, truth[1][1][:, 100:228, 50:178])
    assert img.chunk_shapes[0][-2:] == (128, 128)
    one = img.read(0, t=0, c=1, z=0, y=5, x=slice(0, 10))
    np.testing.assert_array_equal(one, truth[1][0][1, 5, 0:10])


def test_svs_like_slide_levels_and_mpp(images):
    path, truth = images["svs"]
    img = bioimnb.open_image(path)
    assert img.format == "SVS" and img.axes == "TCZYXS"
    assert img.scenes == ["Image:0"]  # thumbnail and label are associated images, not scenes
    assert pytest.approx(0.499) == img.physical_size.X
    assert [s[3:] for s in img.level_shapes] == [p.shape for p in truth]
    for lv, expected in zip(img.levels, truth, strict=True):
        np.testing.assert_array_equal(lv.compute()[0, 0, 0], expected)


def test_openslide_reader_agrees_with_tifffile(images):
    """The OpenSlide backend (used for MRXS & co.) reads the same pixels for a TIFF slide."""
    from bioimnb.core.images import MultiscaleImage
    from bioimnb.core.readers.slide import OpenSlideBackend
    from bioimnb.core.storage import resolve

    path, truth = images["svs"]
    img = MultiscaleImage(OpenSlideBackend(resolve(path), "SVS"))
    assert [s[3:] for s in img.level_shapes] == [p.shape for p in truth]
    assert pytest.approx(0.499) == img.physical_size.X
    region = img.read(1, t=0, c=0, z=0, y=slice(10, 300), x=slice(500, 700))
    np.testing.assert_array_equal(region, truth[1][10:300, 500:700])


def _bytes_read() -> int:
    """Bytes this process has read through read(2) so far (Linux /proc/self/io)."""
    with open("/proc/self/io") as fh:
        return int(next(line for line in fh if line.startswith("rchar:")).split()[1])


def test_flat_tiff_gets_virtual_pyramid_without_reading_everything(images):
    path, data = images["flat"]
    img = bioimnb.open_image(path)
    assert img.virtual_pyramid
    assert img.level_shapes[-1][3:] == (256, 256)
    factor = 2 ** (img.n_levels - 1)
    before = _bytes_read()
    thumb = img.levels[-1].compute()
    read = _bytes_read() - before
    np.testing.assert_array_equal(thumb[0, 0, 0], data[::factor, ::factor])
    # One strip in 16 holds sampled rows: far less than the file is read.
    assert 0 < read < os.path.getsize(path) / 4
    middle = img.read(2, t=0, c=0, z=0, y=slice(100, 400), x=slice(300, 900))
    np.testing.assert_array_equal(middle, data[::4, ::4][100:400, 300:900])


def test_uncompressed_flat_tiff_is_memory_mapped(tmp_path):
    import fixtures

    data = fixtures.flat_tiff(tmp_path / "raw.tif", shape=(3000, 2000), rowsperstrip=3000, compression=None)
    img = bioimnb.open_image(tmp_path / "raw.tif")
    assert isinstance(img._backend.scene(0).levels[0].native, np.memmap)
    np.testing.assert_array_equal(img.levels[-1].compute()[0, 0, 0], data[::16, ::16])


def test_imagej_hyperstack_axes_and_sizes(images):
    path, data = images["imagej"]
    img = bioimnb.open_image(path)
    assert img.format == "ImageJ TIFF"
    assert img.shape == (2, 2, 3, 64, 80)
    np.testing.assert_array_equal(img.levels[0].compute(), data.transpose(0, 2, 1, 3, 4))
    assert pytest.approx(0.2) == img.physical_size.X
    assert pytest.approx(1.5) == img.physical_size.Z


@pytest.mark.parametrize("key,version", [("ngff04", "0.4"), ("ngff05", "0.5")])
def test_ngff_image_levels_labels_metadata(images, key, version):
    path, truth = images[key]
    img = bioimnb.open_image(path)
    assert img.format == "OME-Zarr" and img.status()["ngff_version"] == version
    assert img.channel_names == ["DAPI", "GFP"] and img.channel_colors == ["0000FF", "00FF00"]
    assert img.physical_size.to_dict() == {"X": 0.25, "Y": 0.25, "Z": 0.5}
    for lv, expected in zip(img.levels, truth["image"], strict=True):
        np.testing.assert_array_equal(lv.compute()[0], expected)
    assert img.chunk_shapes[0][-2:] == (128, 128)
    assert img.labels == ["cells"]
    cells = img.label("cells")
    assert cells.n_levels == 2
    for lv, expected in zip(cells.levels, truth["cells"], strict=True):
        np.testing.assert_array_equal(lv.compute()[0, 0], expected)


def test_ngff_opening_reads_no_chunks(images, monkeypatch):
    from bioimnb.core.readers.zarr_ngff import (
        ConfinedLocalStore as LocalStore,  # the reader's store
    )

    keys: list[str] = []
    original = LocalStore.get

    async def spy(self, key, *args, **kwargs):
        keys.append(key)
        return await original(self, key, *args, **kwargs)

    monkeypatch.setattr(LocalStore, "get", spy)
    img = bioimnb.open_image(images["ngff05"][0])
    img.describe()
    _ = img.levels
    assert keys, "the spy saw no metadata reads"
    metadata = ("zarr.json", ".zarray", ".zattrs", ".zgroup", ".zmetadata")
    assert all(k.rsplit("/", 1)[-1] in metadata for k in keys), keys


def test_ngff_plate_fields_are_scenes(images):
    path, truth = images["plate"]
    img = bioimnb.open_image(path)
    assert img.format == "OME-Zarr plate"
    assert img.scenes == sorted(truth)
    for name, data in truth.items():
        np.testing.assert_array_equal(img.select_scene(name).levels[0].compute()[0, :, 0], data)


def test_bioformats2raw_layout(tmp_path, images):
    """Series as numbered groups, names from OME/METADATA.ome.xml."""
    root = tmp_path / "b2r.ome.zarr"
    shutil.copytree(images["ngff04"][0], root / "0")
    shutil.copytree(images["ngff04"][0], root / "1")
    (root / ".zgroup").write_text(json.dumps({"zarr_format": 2}))
    (root / ".zattrs").write_text(json.dumps({"bioformats2raw.layout": 3}))
    (root / "OME").mkdir()
    (root / "OME" / ".zgroup").write_text(json.dumps({"zarr_format": 2}))
    (root / "OME" / ".zattrs").write_text(json.dumps({"series": ["0", "1"]}))
    xml = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ome-xml" / "single-image.ome.xml"
    images_xml = (
        '<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">'
        '<Image ID="Image:0" Name="first"><Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="uint16" '
        'SizeX="400" SizeY="300" SizeZ="3" SizeC="2" SizeT="1"><MetadataOnly/></Pixels></Image>'
        '<Image ID="Image:1" Name="second"><Pixels ID="Pixels:1" DimensionOrder="XYZCT" Type="uint16" '
        'SizeX="400" SizeY="300" SizeZ="3" SizeC="2" SizeT="1"><MetadataOnly/></Pixels></Image></OME>'
    )
    del xml
    (root / "OME" / "METADATA.ome.xml").write_text(images_xml)
    img = bioimnb.open_image(root)
    assert img.scenes == ["first", "second"]
    assert img.select_scene("second").ome.images[1].name == "second"
    np.testing.assert_array_equal(img.select_scene(1).levels[0].compute()[0], images["ngff04"][1]["image"][0])


def test_png_and_jpeg(tmp_path):
    import imageio.v3 as iio

    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[..., 0] = 200
    rgb[10:20, 10:30, 1] = 255
    iio.imwrite(tmp_path / "x.png", rgb)
    iio.imwrite(tmp_path / "x.jpg", rgb, quality=95)
    png = bioimnb.open_image(tmp_path / "x.png")
    assert png.format == "PNG" and png.axes == "TCZYXS"
    np.testing.assert_array_equal(png.levels[0].compute()[0, 0, 0], rgb)
    jpg = bioimnb.open_image(tmp_path / "x.jpg")
    assert jpg.format == "JPEG"
    assert np.abs(jpg.levels[0].compute()[0, 0, 0].astype(int) - rgb).mean() < 4


def test_mislabelled_czi_named_tif_is_read_as_czi(tmp_path, shared_data):
    fake = tmp_path / "really_a_czi.tif"
    shutil.copy(shared_data / "czi" / "newCZI_compressed.czi", fake)
    img = bioimnb.open_image(fake)
    assert img.format == "CZI" and img.shape == (1, 1, 1, 512, 512)


# -- the shared samples: compared with independent readers -----------------------------------

CZI = {
    "100x100.czi": {"scenes": 1},
    "CellDivision_T3_Z5_CH2_X240_Y170_comp1.czi": {"scenes": 1, "shape": (3, 2, 5, 170, 240)},
    "DAPI_GFP.czi": {"scenes": 1, "shape": (1, 2, 1, 640, 640)},
    "S3_1Pos_2Mosaic_T1_Z1_CH1.czi": {"scenes": 3},
    "WellD6_S1.czi": {"scenes": 1},
    "newCZI_compressed.czi": {"scenes": 1},
}


@pytest.mark.parametrize("name", sorted(CZI))
def test_shared_czi_matches_pylibczirw(shared_data, name):
    from pylibCZIrw import czi as pyczi

    path = shared_data / "czi" / name
    img = bioimnb.open_image(path)
    assert img.format == "CZI"
    assert len(img.scenes) == CZI[name]["scenes"]
    if "shape" in CZI[name]:
        assert img.shape == CZI[name]["shape"]
    with pyczi.open_czi(str(path)) as doc:
        rects = doc.scenes_bounding_rectangle
        bbox = doc.total_bounding_box
        dtype = {"Gray8": np.uint8, "Gray16": np.uint16}[doc.pixel_types[0]]
        for s in range(len(img.scenes)):
            scene = img.select_scene(s)
            rect = rects[sorted(rects)[s]] if rects else None
            h = rect.h if rect else bbox["Y"][1] - bbox["Y"][0]
            w = rect.w if rect else bbox["X"][1] - bbox["X"][0]
            assert scene.shape[3:] == (h, w)
            assert scene.dtype == dtype
            last_c = scene.shape[1] - 1
            roi = (rect.x, rect.y, rect.w, rect.h) if rect else None
            plane = doc.read(plane={"C": last_c, "T": 0, "Z": 0}, roi=roi, scene=None)[..., 0]
            np.testing.assert_array_equal(scene.read(0, t=0, c=last_c, z=0), plane)


def test_dapi_gfp_czi_opens_with_unknown_physical_size(shared_data):
    img = bioimnb.open_image(shared_data / "czi" / "DAPI_GFP.czi")
    assert img.physical_size.to_dict() == {"X": None, "Y": None, "Z": None}
    assert img.dtype == np.uint8


def test_shared_mosaic_czi_scene_sizes(shared_data):
    img = bioimnb.open_image(shared_data / "czi" / "S3_1Pos_2Mosaic_T1_Z1_CH1.czi")
    assert [img.select_scene(i).shape[3:] for i in range(3)] == [(122, 295), (64, 64), (237, 352)]
    assert pytest.approx(1.6) == img.physical_size.X


def test_shared_deltavision_matches_mrc(shared_data):
    import mrc

    path = shared_data / "dv" / "toxo.dv"
    img = bioimnb.open_image(path)
    assert img.format == "DeltaVision"
    assert img.shape == (1, 2, 17, 128, 128) and img.dtype == np.uint16
    assert pytest.approx(0.13262, rel=1e-4) == img.physical_size.X
    assert pytest.approx(0.3, rel=1e-4) == img.physical_size.Z
    ref = np.asarray(mrc.imread(str(path)))  # (C, Z, Y, X) for this file
    np.testing.assert_array_equal(img.levels[0].compute()[0], ref.reshape(2, 17, 128, 128))


@pytest.mark.parametrize("name", ["FOV7_HV110_P0500510000.ome.tiff", "tiny.ome.tiff"])
def test_shared_ome_tiff_matches_tifffile(shared_data, name):
    path = shared_data / "ome-tiff" / name
    img = bioimnb.open_image(path)
    assert img.format == "OME-TIFF"
    ref = tifffile.imread(path)
    with tifffile.TiffFile(path) as tf:
        axes = tf.series[0].axes
    got = img.levels[0].compute()
    assert got.size == ref.size and got.dtype == ref.dtype
    order = [a for a in "TCZYX" if a in axes]
    np.testing.assert_array_equal(got.reshape([img.shape["TCZYX".index(a)] for a in order]), ref.transpose([axes.index(a) for a in order]))


# -- bad input -----------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(SourceNotFound, match="no such file"):
        bioimnb.open_image(tmp_path / "nope.ome.tif")


def test_empty_truncated_text_unsupported(tmp_path, images):
    (tmp_path / "empty.tif").write_bytes(b"")
    with pytest.raises(CorruptFile, match=r"empty\.tif: file is empty"):
        bioimnb.open_image(tmp_path / "empty.tif")
    data = images["ome_tiff"][0].read_bytes()
    (tmp_path / "cut.ome.tif").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFile, match="truncated"):
        bioimnb.open_image(tmp_path / "cut.ome.tif")
    (tmp_path / "notes.tif").write_text("hello, this is not an image\n")
    with pytest.raises(CorruptFile, match="not a TIFF file: the content is text"):
        bioimnb.open_image(tmp_path / "notes.tif")
    (tmp_path / "blob.xyz").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(UnsupportedFormat, match="unsupported format"):
        bioimnb.open_image(tmp_path / "blob.xyz")
    (tmp_path / "folder").mkdir()
    with pytest.raises(UnsupportedFormat, match="is a folder"):
        bioimnb.open_image(tmp_path / "folder")


def test_huge_declared_zarr_is_refused(tmp_path):
    root = zarr.open_group(str(tmp_path / "huge.ome.zarr"), mode="w", zarr_format=3)
    root.create_array("0", shape=(10**7, 10**7, 10**7), chunks=(1, 1024, 1024), dtype="uint16")
    root.attrs["ome"] = {
        "version": "0.5",
        "multiscales": [{"axes": [{"name": n, "type": "space"} for n in "zyx"], "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1, 1, 1]}]}]}],
    }
    with pytest.raises(CorruptFile, match="not plausible"):
        bioimnb.open_image(tmp_path / "huge.ome.zarr")


def test_hostile_ome_xml_is_refused_quickly():
    from bioimnb.core.metadata.ome import parse_ome_xml

    bomb = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        '<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image ID="Image:0" Name="&lol2;"/></OME>'
    )
    with pytest.raises(CorruptFile, match="DOCTYPE"):
        parse_ome_xml(bomb, "evil.ome.tif")


def test_bad_scene_selection(images):
    img = bioimnb.open_image(images["ome_tiff"][0])
    with pytest.raises(BioimnbError, match="no scene named 'nope'"):
        img.select_scene("nope")
    with pytest.raises(BioimnbError, match="has 2 scene"):
        img.select_scene(5)


def test_direct_tiff_reader_matches_tifffile_zarr_view(images, monkeypatch):
    """The pread+decode reader gives tifffile's zarr view's pixels, for any slicing, in threads."""
    from concurrent.futures import ThreadPoolExecutor

    from bioimnb.core.readers.tiff_direct import DirectTiffLevel

    for key in ("ome_tiff", "svs", "flat"):
        path = images[key][0]
        direct = bioimnb.open_image(path)
        assert isinstance(direct._backend.scene(0).levels[0].native, DirectTiffLevel)
        monkeypatch.setenv("BIOIMNB_TIFF_READER", "zarr")
        ref = bioimnb.open_image(path)
        monkeypatch.delenv("BIOIMNB_TIFF_READER")
        assert not isinstance(ref._backend.scene(0).levels[0].native, DirectTiffLevel)
        selections = [
            {"y": slice(0, 130), "x": slice(5, 333)},
            {"y": slice(17, 590, 7), "x": slice(3, 790, 13)},
            {"y": 129, "x": slice(None)},
            {"y": slice(None, None, 64), "x": 255},
        ]
        for sel in selections:
            np.testing.assert_array_equal(direct.read(0, t=0, z=0, **sel), ref.read(0, t=0, z=0, **sel))
        for lv_d, lv_r in zip(direct.levels, ref.levels, strict=True):
            np.testing.assert_array_equal(lv_d.compute(), lv_r.compute())

        def region(i: int, img: bioimnb.MultiscaleImage = direct) -> np.ndarray:
            return img.read(0, t=0, z=0, y=slice(i * 16, i * 16 + 100), x=slice(i * 8, i * 8 + 150))

        with ThreadPoolExecutor(4) as pool:
            got = list(pool.map(region, range(20)))
        for i, g in enumerate(got):
            np.testing.assert_array_equal(g, ref.read(0, t=0, z=0, y=slice(i * 16, i * 16 + 100), x=slice(i * 8, i * 8 + 150)))


def test_ome_tiff_with_entity_bomb_opens_quickly_without_expanding(tmp_path):
    """A billion-laughs OME-XML: pixels stay readable, the XML is refused, nothing hangs."""
    import time

    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10)
    )
    bomb = (
        f'<?xml version="1.0"?><!DOCTYPE lolz [{entities}]>'
        '<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image ID="Image:0" Name="&lol9;">'
        '<Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="uint8" SizeX="8" SizeY="8" SizeZ="1" SizeC="1" SizeT="1">'
        "<TiffData/></Pixels></Image></OME>"
    )
    data = np.arange(64, dtype=np.uint8).reshape(8, 8)
    tifffile.imwrite(tmp_path / "bomb.ome.tif", data, description=bomb, metadata=None)
    start = time.monotonic()
    img = bioimnb.open_image(tmp_path / "bomb.ome.tif")
    np.testing.assert_array_equal(img.levels[0].compute()[0, 0, 0], data)
    assert "lol" not in (img.ome.images[0].name or "")
    assert time.monotonic() - start < 20
    assert any("DOCTYPE" in w for w in img.describe()["warnings"])


RICH_OME = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">'
    '<Image ID="Image:0" Name="first"><Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="uint16" SizeX="4" SizeY="4" SizeZ="3" SizeC="2" SizeT="1"'
    ' PhysicalSizeX="250" PhysicalSizeXUnit="nm" PhysicalSizeY="0.25" PhysicalSizeZ="1.5" PhysicalSizeZUnit="µm">'
    '<Channel ID="Channel:0:0" Name="DAPI" Color="65535"/><Channel ID="Channel:0:1" Color="-16776961"/><TiffData IFD="0" PlaneCount="6"/></Pixels></Image>'
    '<Image ID="Image:1" Name="second"><Pixels ID="Pixels:1" DimensionOrder="XYZCT" Type="uint8" SizeX="2" SizeY="2" SizeZ="1" SizeC="1" SizeT="1"'
    ' PhysicalSizeX="2" PhysicalSizeXUnit="mm"><Channel ID="Channel:1:0" Name="BF"/></Pixels></Image>'
    "</OME>"
)


def test_ome_summary_agrees_with_ome_types():
    """The quick XML read used on open gives what the ome-types model says."""
    from bioimnb.core.metadata.ome import color_hex, parse_ome_xml, summarize_ome_xml

    model = parse_ome_xml(RICH_OME, "rich.ome.tif")
    summary = summarize_ome_xml(RICH_OME, "rich.ome.tif")
    assert [s.name for s in summary] == [im.name for im in model.images]
    for s, im in zip(summary, model.images, strict=True):
        px = im.pixels
        assert [n for n, _ in s.channels] == [c.name for c in px.channels]
        # an absent Color is None here (the reader then uses its defaults); ome-types fills in white
        assert [color_hex(c) or "FFFFFF" for _, c in s.channels] == [color_hex(c.color) for c in px.channels]
    assert summary[1].channels == [("BF", None)]
    assert summary[0].size_x == ("250", "nm") and summary[0].size_z == ("1.5", "µm")
    assert summary[1].size_x == ("2", "mm") and summary[1].size_y == (None, None)


def test_ome_summary_refuses_what_the_model_refuses():
    from bioimnb.core.metadata.ome import summarize_ome_xml

    bomb = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><OME><Image Name="&a;"/></OME>'
    with pytest.raises(CorruptFile, match="DOCTYPE"):
        summarize_ome_xml(bomb, "evil.ome.tif")
    with pytest.raises(CorruptFile, match="invalid OME-XML"):
        summarize_ome_xml("<OME><Image", "cut.ome.tif")
    with pytest.raises(CorruptFile, match="not <OME>"):
        summarize_ome_xml("<svg/>", "odd.ome.tif")


def test_ome_tiff_sizes_and_channels_from_the_xml(tmp_path):
    import tifffile

    path = tmp_path / "rich.ome.tif"
    data = np.zeros((3, 2, 4, 4), np.uint16)  # Z C Y X as the XML declares
    tifffile.imwrite(path, data, photometric="minisblack", metadata=None, description=(RICH_OME.split("<Image ID=\"Image:1\"")[0] + "</OME>").encode())
    img = bioimnb.open_image(path)
    np.testing.assert_allclose([img.physical_size.X, img.physical_size.Y, img.physical_size.Z], [0.25, 0.25, 1.5])
    assert [c.name for c in img.channels] == ["DAPI", "C1"]
    assert img.channels[0].color == "0000FF" and img.channels[1].color == "FF0000"
    assert img.ome.images[0].name == "first"  # the full model is still there when asked for


def test_open_and_read_do_not_import_ome_types_or_dask(images):
    """Opening an OME-TIFF and reading a region needs neither (~1.2 s of imports)."""
    import subprocess
    import sys

    code = (
        "import sys, bioimnb\n"
        f"img = bioimnb.open_image({str(images['ome_tiff'][0])!r})\n"
        "img.read(0, t=0, c=0, z=0); img.channels; img.physical_size\n"
        "print(sorted(m for m in ('ome_types', 'dask.array') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def test_ome_tiff_channels_without_colours_get_distinct_defaults(tmp_path):
    """As OMERO and Fiji show them: red, green, ... - not the schema default white twice."""
    import tifffile

    path = tmp_path / "nocolour.ome.tif"
    tifffile.imwrite(path, np.zeros((2, 8, 8), np.uint16), metadata={"axes": "CYX", "Channel": {"Name": ["a", "b"]}})
    img = bioimnb.open_image(path)
    assert [c.name for c in img.channels] == ["a", "b"]
    assert img.channels[0].color != img.channels[1].color
    assert "FFFFFF" not in [c.color for c in img.channels]
