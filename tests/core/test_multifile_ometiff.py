"""Multi-file OME-TIFF filesets: every member (and the .companion.ome file) opens the whole set,
each plane is read from the file that holds it, and companions never lead outside the root.

Ground truth is tifffile reading each member file on its own (a member's pages are exactly its
planes), never bioimnb's own reading of the set."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

import bioimnb
from bioimnb.core.errors import BioimnbError, CorruptFile, PathEscapesRoot
from bioimnb.core.images import MultiscaleImage
from bioimnb.core.readers.tiff import companion_ome_members, open_tiff_set
from bioimnb.core.storage import resolve

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import fixtures  # noqa: E402


def member_truth(paths: list[Path]) -> np.ndarray:
    """The set's planes as tifffile reads each member directly, in member order."""
    parts = []
    for p in paths:
        with tifffile.TiffFile(p, _multifile=False) as tf:
            parts.append(np.stack([page.asarray() for page in tf.pages]))
    return np.concatenate(parts, axis=0)


def open_any(src: Path, **kw) -> MultiscaleImage:
    return bioimnb.open_image(src, **kw)


def test_open_tiff_set_opens_from_the_companion_file(tmp_path):
    made = fixtures.ome_tiff_multifile(tmp_path, files=2, companion=True)
    with MultiscaleImage(open_tiff_set(resolve(made["companion"]))) as img:
        np.testing.assert_array_equal(img.read(0, t=0, c=0), member_truth(made["paths"]))


LAYOUTS = [
    pytest.param({"files": 2, "members": "binaryonly"}, id="2-files-binaryonly"),
    pytest.param({"files": 3, "members": "binaryonly"}, id="3-files-binaryonly"),
    pytest.param({"files": 2, "members": "full"}, id="2-files-full-xml-copies"),
    pytest.param({"files": 3, "companion": True}, id="3-files-companion-ome"),
    pytest.param({"files": 3, "tile": None}, id="3-files-strips"),
]


@pytest.mark.parametrize("reader", ["direct", "zarr"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_member_opens_the_whole_set_with_each_files_own_pixels(tmp_path, monkeypatch, layout, reader):
    monkeypatch.setenv("BIOIMNB_TIFF_READER", reader)
    made = fixtures.ome_tiff_multifile(tmp_path / "set", **layout)
    truth = member_truth(made["paths"])
    np.testing.assert_array_equal(truth, made["truth"])  # the generator wrote what it says
    sources = list(made["paths"]) + ([made["companion"]] if made["companion"] else [])
    planes = truth.shape[0]
    for src in sources:
        with open_any(src) as img:
            assert img.format == "OME-TIFF"
            assert img.shape == (1, 1, planes, *truth.shape[1:]), src.name
            # one read per plane (each from a different place) and the whole stack at once
            for z in range(planes):
                np.testing.assert_array_equal(img.read(0, t=0, c=0, z=z), truth[z], err_msg=f"{src.name} z={z}")
            np.testing.assert_array_equal(img.levels[0].compute()[0, 0], truth)
            crop = img.read(0, t=0, c=0, z=slice(1, planes), y=slice(30, 90, 3), x=slice(5, 117, 2))
            np.testing.assert_array_equal(crop, truth[1:, 30:90:3, 5:117:2])
            assert (img.physical_size.X, img.physical_size.Y) == (0.5, 0.5)
            assert img.physical_size.Z is None
            assert img.channel_names == ["ch0"]
            files = {os.path.realpath(f) for f in img.files}
            expected = {os.path.realpath(p) for p in made["paths"]}
            if made["companion"]:
                expected.add(os.path.realpath(made["companion"]))
            assert files == expected, src.name
            assert img.files[0] == str(src)  # the source as given comes first


def test_sizes_nobody_wrote_are_none_from_every_member_and_the_companion(tmp_path):
    made = fixtures.ome_tiff_multifile(tmp_path, files=2, companion=True, physical_size=None)
    for src in [*made["paths"], made["companion"]]:
        with open_any(src) as img:
            assert img.physical_size.to_dict() == {"X": None, "Y": None, "Z": None}, src.name
            pixels = img.ome.images[0].pixels
            assert pixels.physical_size_x is None and pixels.physical_size_y is None


def test_ome_model_of_a_binaryonly_member_is_the_sets(tmp_path):
    made = fixtures.ome_tiff_multifile(tmp_path, files=3)
    with bioimnb.open_image(made["paths"][2]) as img:
        pixels = img.ome.images[0].pixels
        assert (pixels.size_z, pixels.size_y, pixels.size_x) == (6, 100, 120)
        assert len(pixels.tiff_data_blocks) == 3
        assert "BinaryOnly" not in img._backend.ome_xml()


def test_convert_of_a_multifile_set_writes_each_members_pixels(tmp_path):
    made = fixtures.ome_tiff_multifile(tmp_path / "set", files=3)
    truth = member_truth(made["paths"])
    out = tmp_path / "out.ome.zarr"
    bioimnb.convert(made["paths"][0], out, chunks=64)
    written = np.asarray(zarr.open_group(str(out), mode="r")["0"][:])
    np.testing.assert_array_equal(written.reshape(truth.shape), truth)


def test_companion_ome_members_lists_filenames_in_order():
    made_xml = (
        f'<OME xmlns="{fixtures.OME_NS}"><Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="XYZCT" '
        'Type="uint8" SizeX="1" SizeY="1" SizeZ="3" SizeC="1" SizeT="1">'
        '<TiffData FirstZ="0"><UUID FileName="a.ome.tif">urn:uuid:1</UUID></TiffData>'
        '<TiffData FirstZ="1"><UUID FileName="sub/b.ome.tif">urn:uuid:2</UUID></TiffData>'
        '<TiffData FirstZ="2"><UUID FileName="a.ome.tif">urn:uuid:1</UUID></TiffData>'
        "</Pixels></Image></OME>"
    )
    assert companion_ome_members(made_xml.encode()) == ["a.ome.tif", "sub/b.ome.tif"]
    assert companion_ome_members(b"not xml at all") == []
    assert companion_ome_members(b'<!DOCTYPE x [<!ENTITY a "b">]><OME/>') == []


# -- confinement ----------------------------------------------------------------------------

CANARY = 0xBEEF


def hostile_set(tmp_path: Path, how: str) -> tuple[Path, Path, Path]:
    """(root, master, outside member): a 2-file set whose second member lies outside the root,
    named by ``..`` (how="dotdot"), by an absolute path (how="absolute"), or reached through a
    symlink inside the root (how="link").  The outside member's pixels are all CANARY."""
    root = tmp_path / "root"
    outside = tmp_path / "outside" / "secret.ome.tif"
    names = {
        "dotdot": "../outside/secret.ome.tif",
        "absolute": str(outside),
        "link": "inner.ome.tif",
    }
    fixtures.ome_tiff_multifile(
        root, files=2, filenames=["mf_0.ome.tif", names[how]], paths=[root / "mf_0.ome.tif", outside]
    )
    with tifffile.TiffFile(outside) as tf:
        desc = tf.pages.first.description
    tifffile.imwrite(
        outside, np.full((2, 100, 120), CANARY, np.uint16), photometric="minisblack", metadata=None,
        description=desc, tile=(64, 64), compression="zlib",
    )
    if how == "link":
        (root / "inner.ome.tif").symlink_to(outside)
    return root, root / "mf_0.ome.tif", outside


@pytest.mark.parametrize("how", ["dotdot", "absolute", "link"])
def test_companion_outside_the_root_is_refused_and_never_read(tmp_path, how):
    root, master, outside = hostile_set(tmp_path, how)
    with pytest.raises(PathEscapesRoot) as info:
        img = bioimnb.open_image(master, root=root)
        img.read(0)  # not reached: refused at open
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(master)) and "outside the root" in message
    assert str(outside.parent) not in message or how == "absolute"  # names the FileName as written only


def test_without_a_root_companions_resolve_next_to_the_master_not_the_cwd(tmp_path, monkeypatch):
    root, master, outside = hostile_set(tmp_path, "dotdot")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with bioimnb.open_image(master) as img:
        planes = img.read(0, t=0, c=0)
    assert (planes[2:] == CANARY).all()  # the member ../outside/secret.ome.tif, relative to the master
    assert not (planes[:2] == CANARY).all(axis=(1, 2)).any()  # (random pixels may hit the value)


def test_binaryonly_metadata_file_outside_the_root_is_refused(tmp_path):
    root = tmp_path / "root"
    made = fixtures.ome_tiff_multifile(tmp_path / "outside", files=2)
    member = root / "member.ome.tif"
    root.mkdir()
    desc = (
        f'<?xml version="1.0" encoding="UTF-8"?><OME xmlns="{fixtures.OME_NS}" UUID="urn:uuid:x">'
        f'<BinaryOnly MetadataFile="../outside/{made["paths"][0].name}" UUID="urn:uuid:y"/></OME>'
    )
    tifffile.imwrite(member, np.zeros((2, 100, 120), np.uint16), metadata=None, description=desc)
    with pytest.raises(PathEscapesRoot, match="metadata file .* lies outside the root"):
        bioimnb.open_image(member, root=root)
    with bioimnb.open_image(member) as img:  # no root: the set opens, as from any member
        assert img.shape[2] == 4


def test_a_fifo_member_is_refused_without_blocking(tmp_path):
    made = fixtures.ome_tiff_multifile(tmp_path, files=2)
    made["paths"][1].unlink()
    os.mkfifo(made["paths"][1])
    with pytest.raises(CorruptFile, match="is not a regular file"):
        bioimnb.open_image(made["paths"][0], root=tmp_path)


def test_a_missing_member_reads_as_zeros_with_a_warning(tmp_path):
    made = fixtures.ome_tiff_multifile(tmp_path, files=2)
    made["paths"][1].unlink()
    with bioimnb.open_image(made["paths"][0], root=tmp_path) as img:
        data = img.read(0, t=0, c=0)
        np.testing.assert_array_equal(data[:2], made["parts"][0])
        assert not data[2:].any()
        assert any("missing" in w for w in img.status()["warnings"])


def test_companion_file_naming_only_absent_members_is_one_line(tmp_path):
    made = fixtures.ome_tiff_multifile(tmp_path, files=2, companion=True)
    for p in made["paths"]:
        p.unlink()
    with pytest.raises(BioimnbError) as info:
        open_tiff_set(resolve(made["companion"]))
    assert "\n" not in str(info.value) and "none of the TIFF files" in str(info.value)


@pytest.mark.parametrize("reader", ["direct", "zarr"])
def test_a_member_swapped_for_a_link_after_opening_is_not_followed(tmp_path, monkeypatch, reader):
    """Members are read through the descriptors opened (confined) at open time: replacing a
    member by a link to an outside file afterwards changes nothing that is read."""
    monkeypatch.setenv("BIOIMNB_TIFF_READER", reader)
    root = tmp_path / "root"
    made = fixtures.ome_tiff_multifile(root, files=2)
    canary = tmp_path / "canary.ome.tif"
    tifffile.imwrite(canary, np.full((2, 100, 120), CANARY, np.uint16), photometric="minisblack",
                     metadata=None, tile=(64, 64), compression="zlib")
    with bioimnb.open_image(made["paths"][0], root=root) as img:
        made["paths"][1].unlink()
        made["paths"][1].symlink_to(canary)
        data = img.read(0, t=0, c=0)
    np.testing.assert_array_equal(data, made["truth"])
    assert not (data == CANARY).all(axis=(1, 2)).any()


def test_a_remote_set_is_refused_in_one_line_not_read_as_zeros(tmp_path):
    import fsspec

    made = fixtures.ome_tiff_multifile(tmp_path / "set", files=2)
    fs = fsspec.filesystem("memory")
    for p in made["paths"]:
        fs.pipe(f"/mfset/{p.name}", p.read_bytes())
    single = tmp_path / "single.ome.tif"
    tifffile.imwrite(single, np.arange(64 * 64, dtype=np.uint16).reshape(64, 64), ome=True)
    fs.pipe("/mfset/single.ome.tif", single.read_bytes())
    try:
        for p in made["paths"]:
            url = f"memory://mfset/{p.name}"
            with pytest.raises(BioimnbError) as info:
                bioimnb.open_image(url)
            assert "\n" not in str(info.value) and "local storage only" in str(info.value)
        with bioimnb.open_image("memory://mfset/single.ome.tif") as img:  # one file: fine
            np.testing.assert_array_equal(img.read(0, t=0, c=0, z=0), np.arange(64 * 64).reshape(64, 64))
    finally:
        fs.rm("/mfset", recursive=True)


@pytest.mark.parametrize("reader", ["direct", "zarr"])
def test_a_member_stored_differently_is_refused_not_misread(tmp_path, monkeypatch, reader):
    """Planes are decoded with the first file's layout: a member tiled differently would read
    as garbage (uncompressed, no decoder error to notice it), so the set is refused in one line."""
    monkeypatch.setenv("BIOIMNB_TIFF_READER", reader)
    made = fixtures.ome_tiff_multifile(tmp_path, files=2)
    member = made["paths"][1]
    with tifffile.TiffFile(member) as tf:
        desc = tf.pages.first.description
    tifffile.imwrite(member, made["parts"][1], photometric="minisblack", metadata=None, description=desc, tile=(32, 32))
    with pytest.raises(CorruptFile) as info:
        bioimnb.open_image(made["paths"][0]).read(0)
    assert "\n" not in str(info.value) and "stores its planes differently" in str(info.value)


def test_members_in_subfolders_open_the_set_from_anywhere_in_it(tmp_path):
    root = tmp_path / "root"
    paths = [root / "mf_0.ome.tif", root / "sub" / "mf_1.ome.tif", root / "sub" / "deeper" / "mf_2.ome.tif"]
    names = ["mf_0.ome.tif", "sub/mf_1.ome.tif", "sub/deeper/mf_2.ome.tif"]
    made = fixtures.ome_tiff_multifile(root, files=3, filenames=names, paths=paths)
    truth = member_truth(paths)
    for src in paths:
        with bioimnb.open_image(src, root=root) as img:
            np.testing.assert_array_equal(img.read(0, t=0, c=0), truth, err_msg=src.name)
            assert sorted(map(os.path.realpath, img.files)) == sorted(map(os.path.realpath, made["paths"]))


@pytest.mark.parametrize("kind", ["loop", "folder"])
def test_a_member_that_is_a_link_loop_or_a_folder_is_one_line(tmp_path, kind):
    made = fixtures.ome_tiff_multifile(tmp_path, files=2)
    member = made["paths"][1]
    member.unlink()
    if kind == "loop":
        member.symlink_to(member)
    else:
        member.mkdir()
    with pytest.raises(BioimnbError) as info:
        bioimnb.open_image(made["paths"][0])
    assert "\n" not in str(info.value) and "mf_1.ome.tif" in str(info.value)


def test_a_missing_member_is_never_looked_for_in_the_current_directory(tmp_path, monkeypatch):
    made = fixtures.ome_tiff_multifile(tmp_path / "set", files=2)
    made["paths"][1].unlink()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    tifffile.imwrite(cwd / made["paths"][1].name, np.full((2, 100, 120), CANARY, np.uint16), photometric="minisblack",
                     metadata=None, tile=(64, 64), compression="zlib")
    monkeypatch.chdir(cwd)
    with bioimnb.open_image(made["paths"][0]) as img:
        data = img.read(0, t=0, c=0)
    np.testing.assert_array_equal(data[:2], made["parts"][0])
    assert not data[2:].any()  # missing: zeros, not the same-named file in the working directory
