"""The reader registry and the one classification: what a path is, decided in one place that
open_image, the listers, the scan and the server all ask."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bioimnb
from bioimnb.core import registry
from bioimnb.core.axes import AxisMap
from bioimnb.core.classify import classify, file_kind, zarr_metadata
from bioimnb.core.errors import CorruptFile, UnsupportedFormat
from bioimnb.core.locations import browse
from bioimnb.core.readers.base import Backend, Channel, Level, PhysicalSize, SceneData

REPO = Path(__file__).resolve().parents[2]

OME_V3 = {"zarr_format": 3, "node_type": "group", "attributes": {"ome": {"version": "0.5", "multiscales": [{"datasets": [{"path": "0"}]}]}}}


# -- a toy format: 'TOY1' + uint8 width + uint8 height + pixels --------------------------------


class ToyBackend(Backend):
    format_name = "Toy"
    reader_name = "toy-reader"

    def __init__(self, path: str) -> None:
        super().__init__(path)
        with open(path, "rb") as fh:
            raw = fh.read()
        w, h = raw[4], raw[5]
        self.pixels = np.frombuffer(raw[6 : 6 + w * h], dtype=np.uint8).reshape(h, w)

    @property
    def scene_names(self) -> list[str]:
        return ["toy"]

    def _load_scene(self, index: int) -> SceneData:
        level = Level(self.pixels, AxisMap("YX"))
        return SceneData("toy", [level], PhysicalSize(), [Channel("c0", "FFFFFF")])


TOY = registry.ReaderRecord(
    "toy-reader",
    (registry.Format("Toy", (".toy",), lambda head: head.startswith(b"TOY1")),),
    lambda res, fmt, size: ToyBackend(res.path),
)


@pytest.fixture
def toy(tmp_path: Path):
    registry.register(TOY)
    path = tmp_path / "a.toy"
    data = np.arange(12, dtype=np.uint8).reshape(3, 4)
    path.write_bytes(b"TOY1" + bytes([4, 3]) + data.tobytes())
    yield path, data
    registry.unregister("toy-reader")


def test_a_registered_reader_is_seen_by_open_info_ls_and_the_type_list(toy):
    path, data = toy
    img = bioimnb.open_image(path)
    assert (img.format, img.reader) == ("Toy", "toy-reader")
    np.testing.assert_array_equal(img.read(t=0, c=0, z=0), data)
    assert img.describe()["scenes"][0]["shape"] == [1, 1, 1, 3, 4]
    entry = next(e for e in browse(path.parent).list().entries if e.name == "a.toy")
    assert (entry.kind, entry.format, entry.error) == ("image", "Toy", None)
    assert any(ft["extensions"] == [".toy"] for ft in registry.lab_file_types())
    assert any(r.name == "toy-reader" for r in registry.readers())
    # Content decides: a toy file named .tif is a toy, a text file named .toy is not.
    renamed = path.parent / "toy-named.tif"
    renamed.write_bytes(path.read_bytes())
    assert bioimnb.open_image(renamed).format == "Toy"
    (path.parent / "fake.toy").write_text("hello")
    with pytest.raises(CorruptFile, match="not a Toy file: the content is text"):
        bioimnb.open_image(path.parent / "fake.toy")


def test_an_entry_point_plugin_is_loaded(tmp_path: Path):
    """A third-party package declares its reader in the ``bioimnb.readers`` group."""
    pkg = tmp_path / "site"
    (pkg / "toyplug").mkdir(parents=True)
    (pkg / "toyplug" / "__init__.py").write_text(
        "from bioimnb.core.registry import Format, ReaderRecord\n"
        "def _open(res, fmt, size):\n    raise RuntimeError('not needed')\n"
        "READER = ReaderRecord('plug', (Format('Plug', ('.plug',), lambda h: h.startswith(b'PLUG')),), _open)\n"
    )
    dist = pkg / "toyplug-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toyplug\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[bioimnb.readers]\nplug = toyplug:READER\n")
    code = (
        "from bioimnb.core import registry\n"
        "r = [x for x in registry.readers() if x.name == 'plug'][0]\n"
        "print(r.plugin, registry.format_for_name('x.plug').name)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(pkg), str(REPO)])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["toyplug:READER", "Plug"]


def test_the_lab_extension_file_types_are_generated_from_the_registry():
    """labextension/src/filetypes.json is the registry's output, never a hand-kept copy."""
    committed = json.loads((REPO / "labextension" / "src" / "filetypes.json").read_text())
    assert committed == registry.lab_file_types()


@pytest.mark.parametrize(
    ("head", "name", "expected"),
    [
        (b"II*\x00" + b"\0" * 60, "x.svs", "SVS"),
        (b"II*\x00" + b"\0" * 60, "x.ome.tiff", "OME-TIFF"),
        (b"II*\x00" + b"\0" * 60, "renamed.czi", "TIFF"),  # content wins over the name
        (b"ZISRAWFILE" + b"\0" * 60, "x.tif", "CZI"),
        (b"\x89PNG\r\n\x1a\n", "x.dat", "PNG"),
        (b"II*\x00", "x.bif", "BIF"),  # OpenSlide outranks tifffile for BIF
        (b"anything", "x.mrxs", "MRXS"),  # name-only format
    ],
)
def test_format_for_content(head: bytes, name: str, expected: str):
    fmt = registry.format_for_content(head, name)
    assert fmt is not None and fmt.name == expected


@pytest.mark.parametrize(
    ("name", "size", "head", "kind", "error"),
    [
        ("a.tif", 0, b"", "image", "file is empty (0 bytes)"),
        ("a.tif", 5, b"hello", "image", "not a TIFF file: the content is text"),
        ("a.ome.tif", 9, b"\x01\x02\x03\x04\x05\x06\x07\x08\x09", "image", "not an OME-TIFF file: unrecognised content signature"),
        ("notes.txt", 5, b"hello", "file", None),
        ("a.ims", 64, b"\x89HDF\r\n\x1a\n" + b"\0" * 56, "image", None),  # Imaris: Bio-Formats reads it
        ("a.h5", 64, b"\x89HDF\r\n\x1a\n" + b"\0" * 56, "file", None),
    ],
)
def test_file_kind(name, size, head, kind, error):
    found = file_kind(name, size, head)
    assert found.kind == kind
    assert (found.error or "").startswith(error or "")
    assert (found.error is None) == (error is None)


def test_zarr_metadata_decides_by_content_not_name():
    assert zarr_metadata({}) is None
    image = zarr_metadata({"zarr.json": json.dumps(OME_V3).encode()})
    assert image is not None and (image.kind, image.format, image.ngff_version) == ("image", "OME-Zarr", "0.5")
    broken = zarr_metadata({"zarr.json": b"{bad"})
    assert broken is not None and broken.kind == "image" and "invalid JSON" in (broken.error or "")
    group = zarr_metadata({"zarr.json": b'{"zarr_format": 3, "node_type": "group"}'})
    assert group is not None and (group.kind, group.format) == ("folder", "zarr group")
    array = zarr_metadata({".zarray": b'{"zarr_format": 2, "shape": [4]}'})
    assert array is not None and (array.kind, array.format) == ("image", "Zarr array")
    state = dict(OME_V3, attributes={**OME_V3["attributes"], "bioimnb": {"status": "incomplete"}})
    assert zarr_metadata({"zarr.json": json.dumps(state).encode()}).incomplete  # type: ignore[union-attr]
    v2 = zarr_metadata({".zattrs": b'{"multiscales": [{"version": "0.4"}]}', ".zgroup": b"{}"})
    assert v2 is not None and v2.ngff_version == "0.4"


@pytest.fixture
def odd(tmp_path: Path) -> Path:
    """Everything a new user met that was listed by extension alone."""
    (tmp_path / "empty.ome.zarr").mkdir()
    (tmp_path / "broken.ome.zarr").mkdir()
    (tmp_path / "broken.ome.zarr" / "zarr.json").write_text("{not json")
    (tmp_path / "zero.tif").write_bytes(b"")
    (tmp_path / "text.tif").write_text("just some text\n")
    half = tmp_path / "half.ome.zarr"
    half.mkdir()
    attrs = {**OME_V3["attributes"], "bioimnb": {"status": "incomplete"}}
    (half / "zarr.json").write_text(json.dumps({**OME_V3, "attributes": attrs}))
    (tmp_path / "only-array").mkdir()
    (tmp_path / "only-array" / ".zarray").write_text(
        json.dumps({"zarr_format": 2, "shape": [4, 4], "chunks": [4, 4], "dtype": "|u1", "compressor": None,
                    "fill_value": 0, "order": "C", "filters": None})
    )
    (tmp_path / "only-array" / "0.0").write_bytes(bytes(range(16)))
    os.mkfifo(tmp_path / "pipe.tif")
    return tmp_path


def test_listing_shows_each_for_what_it_is(odd: Path):
    entries = {e.name: e for e in browse(odd).list().entries}
    assert (entries["empty.ome.zarr"].kind, entries["empty.ome.zarr"].format) == ("folder", None)
    assert entries["broken.ome.zarr"].kind == "image" and "invalid JSON" in (entries["broken.ome.zarr"].error or "")
    assert entries["zero.tif"].error == "file is empty (0 bytes)"
    assert entries["text.tif"].error == "not a TIFF file: the content is text"
    assert entries["half.ome.zarr"].incomplete is True and entries["half.ome.zarr"].error is None
    assert (entries["only-array"].kind, entries["only-array"].format) == ("image", "Zarr array")
    assert "not a regular file" in (entries["pipe.tif"].error or "")
    assert entries["half.ome.zarr"].to_dict()["incomplete"] is True


def test_open_image_agrees_with_the_listing(odd: Path):
    with pytest.raises(UnsupportedFormat, match="is a folder, not an image"):
        bioimnb.open_image(odd / "empty.ome.zarr")
    with pytest.raises(CorruptFile, match=r"zarr\.json: invalid JSON"):
        bioimnb.open_image(odd / "broken.ome.zarr")
    with pytest.raises(CorruptFile, match=r"empty \(0 bytes\)"):
        bioimnb.open_image(odd / "zero.tif")
    with pytest.raises(CorruptFile, match="not a regular file"):
        bioimnb.open_image(odd / "pipe.tif")  # and it returns at once: a FIFO is never read
    img = bioimnb.open_image(odd / "only-array")  # listed as an image: it opens as one
    np.testing.assert_array_equal(img.read(t=0, c=0, z=0), np.arange(16, dtype=np.uint8).reshape(4, 4))
    assert classify(odd / "only-array").format == "Zarr array"


def test_incomplete_conversion_is_flagged_in_info(tmp_path: Path):
    src = tmp_path / "src.tif"
    import tifffile

    tifffile.imwrite(src, np.arange(64 * 64, dtype=np.uint16).reshape(64, 64))
    out = tmp_path / "out.ome.zarr"
    bioimnb.convert(src, out)
    meta = json.loads((out / "zarr.json").read_text())
    meta["attributes"].setdefault("bioimnb", {})["status"] = "incomplete"
    (out / "zarr.json").write_text(json.dumps(meta))
    assert classify(out).incomplete
    assert bioimnb.open_image(out).describe().get("incomplete") is True
    entry = next(e for e in browse(tmp_path).list().entries if e.name == "out.ome.zarr")
    assert entry.incomplete


def test_a_reader_can_be_chosen(toy, images):
    path, data = toy
    with pytest.raises(UnsupportedFormat, match="no reader named 'nope'"):
        bioimnb.open_image(path, reader="nope")
    tif, _ = images["flat"]
    # A chosen reader is used even where the registry would pick another one.
    forced = bioimnb.open_image(tif, reader="toy-reader")
    assert (forced.reader, forced.format) == ("toy-reader", "Toy")
    assert bioimnb.open_image(path, reader="toy-reader").reader == "toy-reader"
    assert bioimnb.open_image(tif, reader="tifffile").reader == "tifffile"


def test_every_python_reader_format_says_whether_it_is_open():
    """The registry decides what the data management plan calls open or proprietary: a format a
    Python reader adds must be listed, so it is never counted as proprietary by omission."""
    names = {fmt.name for rec in registry.readers() if rec.name != "bioformats" for fmt in rec.formats}
    assert names and all(registry.format_status(n)["listed"] for n in names), sorted(
        n for n in names if not registry.format_status(n)["listed"]
    )
    assert registry.format_status("OME-Zarr")["open"] and not registry.format_status("CZI")["open"]
    assert registry.format_status("CZI")["vendor"] == "Zeiss"
    assert registry.format_status("Some Bio-Formats format") == {
        "open": False, "media_type": None, "vendor": None, "listed": False,
    }
