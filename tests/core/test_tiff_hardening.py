"""Hostile TIFFs: decompression bombs, lying and truncated streams, absurd declarations, FIFOs
and links, each answered with one line (or the right pixels, read in bounded memory), quickly;
and Aperio SVS slides counted as OpenSlide counts them.

Every hostile file is made here, by hand (``hand_tiff``) or with tifffile, in tmp_path."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from fsspec.implementations.local import LocalFileSystem

import bioimnb
from bioimnb.core.errors import BioimnbError, CorruptFile, PathEscapesRoot
from bioimnb.core.limits import configure, limits
from bioimnb.core.readers.tiff import open_tiff
from bioimnb.core.storage import Resolved

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import fixtures  # noqa: E402


def hand_tiff(
    path: Path,
    *,
    width: int,
    height: int,
    data: bytes = b"",
    compression: int = 8,
    bits: int = 8,
    rowsperstrip: int | None = None,
    predictor: int = 1,
    bytecount: int | None = None,
    offset: int | None = None,
    sampleformat: int = 1,
) -> Path:
    """A little-endian classic TIFF with one IFD and one strip holding ``data``, whatever the
    header declares (so it can lie about sizes, offsets and counts)."""
    tags = {
        256: (4, width),
        257: (4, height),
        258: (3, bits),
        259: (3, compression),
        262: (3, 1),
        273: (4, 0),
        277: (3, 1),
        278: (4, height if rowsperstrip is None else rowsperstrip),
        279: (4, len(data) if bytecount is None else bytecount),
        317: (3, predictor),
        339: (3, sampleformat),
    }
    start = 8 + 2 + 12 * len(tags) + 4
    tags[273] = (4, start if offset is None else offset)
    out = bytearray(b"II*\x00" + struct.pack("<IH", 8, len(tags)))
    for tag in sorted(tags):
        typ, value = tags[tag]
        out += struct.pack("<HHI", tag, typ, 1) + (struct.pack("<H2x", value) if typ == 3 else struct.pack("<I", value))
    out += struct.pack("<I", 0) + data
    path.write_bytes(bytes(out))
    return path


def zeros_stream(nbytes: int, level: int = 6) -> bytes:
    """zlib stream of ``nbytes`` zero bytes, made without holding them in memory."""
    comp = zlib.compressobj(level)
    block = bytes(min(nbytes, 1 << 22))
    out, left = [], nbytes
    while left:
        out.append(comp.compress(block[: min(left, len(block))]))
        left -= min(left, len(block))
    out.append(comp.flush())
    return b"".join(out)


@pytest.fixture
def small_decode_limit():
    before = limits().max_decode_bytes
    configure(max_decode_bytes=4 * 2**20)
    yield 4 * 2**20
    configure(max_decode_bytes=before)


def one_line(exc: BaseException, source: Path) -> str:
    text = str(exc)
    assert "\n" not in text and text.startswith(f"{source}: "), text
    return text


# -- decode limits --------------------------------------------------------------------------


def test_one_terabyte_zlib_declaration_is_one_line_not_memoryerror(tmp_path):
    path = hand_tiff(tmp_path / "tb.tif", width=2**20, height=2**20, data=zlib.compress(bytes(1000)))
    with bioimnb.open_image(path) as img:  # headers only: opening is fine
        assert img.shape[3:] == (2**20, 2**20)
        with pytest.raises(CorruptFile) as info:
            img.read(0, t=0, c=0, z=0, y=slice(0, 256), x=slice(0, 256))
    text = one_line(info.value, path)
    assert f"a strip of {2**40} bytes exceeds the decode limit of {limits().max_decode_bytes} bytes" in text


@pytest.mark.parametrize("reader", ["direct", "zarr"])
def test_a_tile_larger_than_the_decode_limit_is_refused_at_read_time(tmp_path, monkeypatch, small_decode_limit, reader):
    monkeypatch.setenv("BIOIMNB_TIFF_READER", reader)
    path = tmp_path / "bigtile.tif"
    tifffile.imwrite(path, np.ones((2048, 2048), np.uint16), tile=(2048, 2048), compression="zlib")  # 8 MiB tile
    with bioimnb.open_image(path) as img, pytest.raises(CorruptFile) as info:
        img.read(0, t=0, c=0, z=0, y=slice(0, 16), x=slice(0, 16))
    assert f"a tile of {2048 * 2048 * 2} bytes exceeds the decode limit of {small_decode_limit} bytes" in one_line(info.value, path)


def test_an_lzw_strip_larger_than_the_limit_is_refused(tmp_path, small_decode_limit):
    path = hand_tiff(tmp_path / "lzw.tif", width=4000, height=4000, compression=5, data=b"\x80" * 1000)
    with bioimnb.open_image(path) as img, pytest.raises(CorruptFile) as info:
        img.read(0, t=0, c=0, z=0, y=slice(0, 8), x=slice(0, 8))
    assert "a strip of 16000000 bytes exceeds the decode limit" in one_line(info.value, path)


@pytest.mark.parametrize("compression,predictor", [("zlib", None), ("zlib", "horizontal"), (None, None)])
def test_strips_above_the_limit_are_read_by_rows_with_the_right_pixels(tmp_path, small_decode_limit, compression, predictor):
    yy, xx = np.mgrid[0:1500, 0:1800]
    data = ((yy * 31 + xx * 7) % 65000).astype(np.uint16)  # one 5.4 MB strip, limit 4 MiB
    path = tmp_path / "bigstrip.tif"
    tifffile.imwrite(path, data, rowsperstrip=1500, compression=compression, predictor=predictor)
    with bioimnb.open_image(path) as img:
        np.testing.assert_array_equal(img.read(0, t=0, c=0, z=0, y=slice(1000, 1300), x=slice(17, 400)), data[1000:1300, 17:400])
        np.testing.assert_array_equal(img.read(0, t=0, c=0, z=0, y=slice(3, 1500, 97), x=slice(0, 1800, 5)), data[3::97, ::5])
        coarse = img.levels[-1].compute()[0, 0, 0]
        step = 1800 // coarse.shape[1]
        np.testing.assert_array_equal(coarse, data[::step, ::step])


def _rss_probe(code: str, env: dict[str, str]) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON line."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env={**os.environ, **env}
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


PROBE = """
import json, resource, sys, numpy as np, bioimnb
from bioimnb.core.errors import BioimnbError
def rss(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
img = bioimnb.open_image(sys.argv[0] if False else {path!r})
before = rss(); out = {{}}
try:
    v = img.read(0, t=0, c=0, z=0, y=slice({y0}, {y0} + 256), x=slice(0, 256))
    out["sum"] = int(np.asarray(v, np.int64).sum()); out["shape"] = list(v.shape)
except BioimnbError as exc:
    out["error"] = str(exc)
out["grew"] = rss() - before
print(json.dumps(out))
"""


def test_zlib_bomb_strip_is_read_in_bounded_memory(tmp_path):
    """A 150 KB zlib strip declaring 160 MB (8x a 20 MiB limit): reading its last rows streams
    through it; peak memory grows by a fraction of the declared size."""
    width, height = 10_000, 16_000
    path = hand_tiff(tmp_path / "bomb.tif", width=width, height=height, data=zeros_stream(width * height, 9))
    assert path.stat().st_size < 400_000
    out = _rss_probe(PROBE.format(path=str(path), y0=height - 256), {"BIOIMNB_MAX_DECODE_BYTES": str(20 * 2**20)})
    assert out.get("shape") == [256, 256] and out["sum"] == 0, out
    assert out["grew"] < 40 * 2**20, out  # the strip is 160 MB


def test_lying_zlib_stream_cannot_grow_past_its_declared_size(tmp_path):
    """A strip declared as 1000 x 1000 bytes whose stream inflates to 200 MB: decoded into a
    buffer of the declared size, so memory stays small and the answer is pixels or one line."""
    path = hand_tiff(tmp_path / "liar.tif", width=1000, height=1000, data=zeros_stream(200 * 2**20, 9))
    out = _rss_probe(PROBE.format(path=str(path), y0=0), {})
    assert out["grew"] < 40 * 2**20, out
    assert out.get("shape") == [256, 256] or "\n" not in out.get("error", "\n"), out


# -- truncated, absurd, malformed -------------------------------------------------------------


def test_a_tiff_shorter_than_it_declares_is_one_line(tmp_path):
    path = tmp_path / "cut.tif"
    tifffile.imwrite(path, np.random.default_rng(1).integers(0, 60000, (512, 512), dtype=np.uint16), tile=(128, 128), compression="zlib")
    path.write_bytes(path.read_bytes()[:-4000])
    with pytest.raises(CorruptFile) as info:
        bioimnb.open_image(path)
    assert "truncated" in one_line(info.value, path)
    raw = hand_tiff(tmp_path / "short.tif", width=100, height=100, compression=1, data=b"x" * 500)
    with pytest.raises(CorruptFile) as info:
        bioimnb.open_image(raw).read(0)
    assert "truncated" in one_line(info.value, raw)


def test_a_middle_page_pointing_past_the_end_is_one_line_at_read_time(tmp_path):
    path = tmp_path / "pages.tif"
    data = np.arange(3 * 64 * 64, dtype=np.uint16).reshape(3, 64, 64)
    tifffile.imwrite(path, data, compression="zlib", rowsperstrip=64, photometric="minisblack")
    with tifffile.TiffFile(path, mode="r+") as tf:
        tf.pages[1].tags["StripOffsets"].overwrite(path.stat().st_size + 10)
    with bioimnb.open_image(path) as img:  # first and last pages are fine
        axis = "tcz"[[n for n in img.shape[:3]].index(3)]
        np.testing.assert_array_equal(img.read(0, **{axis: 2}).squeeze(), data[2])
        with pytest.raises(CorruptFile) as info:
            img.read(0, **{axis: 1})
    assert "truncated" in one_line(info.value, path)


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("absurd", {"width": 0xFFFFFFFF, "height": 0xFFFFFFFF, "bits": 64, "sampleformat": 3}),
        ("zero-rows-per-strip", {"width": 100, "height": 100, "rowsperstrip": 0}),
        ("offset-past-end", {"width": 100, "height": 100, "compression": 1, "offset": 0xFFFFFFF0, "bytecount": 10000}),
        ("garbage-stream", {"width": 300, "height": 300, "data": b"\x78\x9c" + b"\xff" * 500}),
    ],
)
def test_absurd_declarations_are_one_line(tmp_path, name, kwargs):
    kwargs.setdefault("data", b"x" * 64)
    path = hand_tiff(tmp_path / f"{name}.tif", **kwargs)
    with pytest.raises(BioimnbError) as info, bioimnb.open_image(path) as img:
        img.read(0, t=0, c=0, z=0, y=slice(0, 50), x=slice(0, 50))
    one_line(info.value, path)


def test_cli_info_on_a_truncated_tiff_exits_2_with_one_line(tmp_path):
    path = tmp_path / "cut.ome.tif"
    noise = np.random.default_rng(2).integers(0, 255, (2, 256, 256), dtype=np.uint8)
    tifffile.imwrite(path, noise, tile=(64, 64), compression="zlib", ome=True, photometric="minisblack")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    done = subprocess.run([sys.executable, "-m", "bioimnb", "info", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and str(path) in done.stderr


# -- FIFOs and links --------------------------------------------------------------------------


def _within(seconds: float, fn):
    box: dict = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"still blocked after {seconds} s"
    return box


def test_the_tiff_reader_never_blocks_on_a_fifo(tmp_path):
    fifo = tmp_path / "pipe.tif"
    os.mkfifo(fifo)
    res = Resolved(LocalFileSystem(), str(fifo), str(fifo))
    box = _within(10, lambda: open_tiff(res, 1000))
    assert isinstance(box.get("error"), CorruptFile) and "not a regular file" in str(box["error"])


def test_a_link_out_of_the_root_is_refused_by_the_tiff_reader_itself(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    canary = tmp_path / "canary.tif"
    tifffile.imwrite(canary, np.full((32, 32), 0xBEEF, np.uint16))
    link = root / "inner.tif"
    link.symlink_to(canary)
    # bypass resolve()'s own check to prove the reader's open is confined too
    res = Resolved(LocalFileSystem(), str(link), str(link), root=os.path.realpath(root))
    with pytest.raises(PathEscapesRoot):
        open_tiff(res, canary.stat().st_size)


# -- Aperio SVS ------------------------------------------------------------------------------


@pytest.mark.parametrize("thumbnail", [True, False], ids=["with-thumbnail", "second-page-tiled"])
def test_svs_levels_and_associated_images_match_openslide(tmp_path, thumbnail):
    openslide = pytest.importorskip("openslide")
    path = tmp_path / "slide.svs"
    made = fixtures.aperio_svs(path, thumbnail=thumbnail)
    slide = openslide.OpenSlide(str(path))
    with bioimnb.open_image(path) as img:
        assert img.format == "SVS" and img.scenes == ["Image:0"]
        assert img.n_levels == slide.level_count == 3
        assert [s[4:2:-1] for s in img.level_shapes] == list(slide.level_dimensions)
        for k in range(slide.level_count):
            w, h = slide.level_dimensions[k]
            expected = np.asarray(slide.read_region((0, 0), k, (w, h)).convert("RGB"))
            np.testing.assert_array_equal(img.read(k, t=0, c=0, z=0), expected)
            np.testing.assert_array_equal(expected, made["levels"][k])
        assert sorted(img.status()["associated"]) == sorted(slide.associated_images)
        assert sorted(img.describe()["associated"]) == sorted(slide.associated_images)
        for name, pil in slide.associated_images.items():
            np.testing.assert_array_equal(img._backend.associated(name), np.asarray(pil.convert("RGB")))
        assert pytest.approx(0.499) == img.physical_size.X
        with pytest.raises(BioimnbError) as info:
            img._backend.associated("nope")
        one_line(info.value, path)
    slide.close()


def test_a_plain_tiff_without_resolution_has_no_physical_size(tmp_path):
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, np.zeros((64, 64), np.uint8), metadata=None)
    with bioimnb.open_image(path) as img:
        assert img.physical_size.to_dict() == {"X": None, "Y": None, "Z": None}


# -- MRXS (OpenSlide opens the data files itself, so they are checked before it does) --------


def _mrxs(root: Path) -> Path:
    slide = root / "slide.mrxs"
    slide.write_bytes(b"not a real slide")
    data = root / "slide"
    data.mkdir()
    (data / "Slidedat.ini").write_text("[GENERAL]\n")
    (data / "Data0000.dat").write_bytes(b"\0" * 64)
    return slide


def test_mrxs_data_file_linked_out_of_the_root_is_refused_before_openslide(tmp_path):
    from bioimnb.core.readers.slide import OpenSlideBackend

    root = tmp_path / "root"
    root.mkdir()
    slide = _mrxs(root)
    (tmp_path / "canary.dat").write_bytes(b"CANARY" * 10)
    (root / "slide" / "Data0001.dat").symlink_to(tmp_path / "canary.dat")
    res = Resolved(LocalFileSystem(), str(slide), str(slide), root=os.path.realpath(root))
    with pytest.raises(PathEscapesRoot) as info:
        OpenSlideBackend(res, "MRXS")
    assert "Data0001.dat" in one_line(info.value, slide) and "CANARY" not in str(info.value)


def test_mrxs_fifo_in_the_data_folder_is_refused_without_blocking(tmp_path):
    from bioimnb.core.readers.slide import OpenSlideBackend

    slide = _mrxs(tmp_path)
    os.mkfifo(tmp_path / "slide" / "Data0002.dat")
    res = Resolved(LocalFileSystem(), str(slide), str(slide))
    box = _within(10, lambda: OpenSlideBackend(res, "MRXS"))
    assert isinstance(box.get("error"), CorruptFile) and "not a regular file" in str(box["error"])


def test_mrxs_files_are_the_slide_and_its_data_folder(tmp_path):
    from bioimnb.core.readers.slide import OpenSlideBackend

    slide = _mrxs(tmp_path)
    backend = OpenSlideBackend.__new__(OpenSlideBackend)  # no OpenSlide: files() reads names only
    backend.source = str(slide)
    backend.res = Resolved(LocalFileSystem(), str(slide), str(slide))
    assert backend.files() == [
        str(slide),
        str(tmp_path / "slide"),
        str(tmp_path / "slide" / "Data0000.dat"),
        str(tmp_path / "slide" / "Slidedat.ini"),
    ]


def test_ome_xml_larger_than_the_metadata_limit_is_not_parsed(tmp_path):
    path = tmp_path / "bigxml.ome.tif"
    data = np.arange(32 * 32, dtype=np.uint16).reshape(32, 32)
    tifffile.imwrite(path, data, ome=True, metadata={"Description": "x" * 300_000})
    before = limits().max_metadata_bytes
    configure(max_metadata_bytes=100_000)
    try:
        with bioimnb.open_image(path) as img:
            assert any("larger than the 100000 byte limit" in w for w in img.status()["warnings"])
            np.testing.assert_array_equal(img.read(0, t=0, c=0, z=0), data)
    finally:
        configure(max_metadata_bytes=before)


def test_openslide_backend_lists_and_reads_associated_images(tmp_path):
    pytest.importorskip("openslide")
    from bioimnb.core.readers.slide import OpenSlideBackend

    path = tmp_path / "slide.svs"
    made = fixtures.aperio_svs(path)
    backend = OpenSlideBackend(Resolved(LocalFileSystem(), str(path), str(path)), "SVS")
    try:
        assert backend.status()["associated"] == ["label", "macro", "thumbnail"]
        np.testing.assert_array_equal(backend.associated("label"), made["label"])
        np.testing.assert_array_equal(backend.associated("macro"), made["macro"])
        with pytest.raises(BioimnbError) as info:
            backend.associated("nope")
        one_line(info.value, path)
    finally:
        backend.close()


def test_reading_a_whole_level_larger_than_memory_is_one_line(tmp_path):
    path = hand_tiff(tmp_path / "wide.tif", width=2**30, height=1024, bits=8, data=zlib.compress(bytes(4096)), rowsperstrip=1)
    with bioimnb.open_image(path) as img, pytest.raises(BioimnbError) as info:
        img.read(0)  # 1 TiB asked for at once
    one_line(info.value, path)


def _mutants(seed: int, count: int) -> list[tuple[str, bytes]]:
    import random

    rng = random.Random(seed)
    data = np.random.default_rng(seed).integers(0, 60000, (3, 100, 120), dtype=np.uint16)
    bases = {}
    for name, kwargs in {
        "tiled.ome.tif": {"tile": (64, 64), "compression": "zlib", "ome": True, "photometric": "minisblack"},
        "strips.tif": {"rowsperstrip": 16, "compression": "zlib", "predictor": True, "photometric": "minisblack"},
        "raw.tif": {"photometric": "minisblack"},
    }.items():
        buf = __import__("io").BytesIO()
        tifffile.imwrite(buf, data, **kwargs)
        bases[name] = buf.getvalue()
    out = []
    for i in range(count):
        name = rng.choice(sorted(bases))
        b = bytearray(bases[name])
        for _ in range(rng.choice([1, 2, 4, 8])):
            pos = rng.randrange(0, min(len(b), 600) if rng.random() < 0.7 else len(b))
            b[pos] = rng.randrange(256)
        if rng.random() < 0.1:
            b = b[: rng.randrange(8, len(b))]
        out.append((f"{i:03d}-{name}", bytes(b)))
    return out


def test_mutated_tiffs_give_pixels_or_one_line_never_a_traceback(tmp_path):
    """Random byte flips in the header area of three TIFF layouts (seeded, so reproducible):
    open, describe and read a corner of every level; anything that fails must fail with one line."""
    failures = []
    for name, data in _mutants(20261130, 150):
        path = tmp_path / name
        path.write_bytes(data)
        try:
            with bioimnb.open_image(path) as img:
                img.describe()
                for k in range(img.n_levels):
                    img.read(k, y=slice(0, 64), x=slice(0, 64))
        except BioimnbError as exc:
            if "\n" in str(exc) or not str(exc).startswith(str(path)):
                failures.append(f"{name}: not one line: {exc!r}")
        except Exception as exc:  # noqa: BLE001 - that is what the test looks for
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
    assert not failures, "\n".join(failures[:10])


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("rgb-predictor", {"photometric": "rgb", "predictor": True, "compression": "zlib"}),
        ("big-endian-predictor", {"byteorder": ">", "predictor": True, "compression": "zlib"}),
        ("float32", {"compression": "zlib"}),
    ],
)
def test_row_reading_of_large_strips_handles_samples_byte_order_and_floats(tmp_path, small_decode_limit, name, kwargs):
    rng = np.random.default_rng(3)
    if name.startswith("rgb"):
        data = rng.integers(0, 255, (1200, 1500, 3), dtype=np.uint8)
    elif name == "float32":
        data = rng.random((1200, 1500)).astype(np.float32)
    else:
        data = rng.integers(0, 65535, (1500, 1500), dtype=np.uint16)
    assert data.nbytes > small_decode_limit  # one strip above the limit: read by rows
    path = tmp_path / f"{name}.tif"
    tifffile.imwrite(path, data, rowsperstrip=data.shape[0], **kwargs)
    with bioimnb.open_image(path) as img:
        got = img.read(0, t=0, c=0, z=0, y=slice(100, 1150, 3), x=slice(7, 1480, 2))
    np.testing.assert_array_equal(got, data[100:1150:3, 7:1480:2])
