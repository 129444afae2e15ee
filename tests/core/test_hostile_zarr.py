"""Hostile OME-Zarr stores, generated here: links out of the root, FIFOs and devices where files
belong, decompression bombs, absurd metadata.  Each must end in a one-line BioimnbError within
seconds, with bounded memory, and never return a byte of the canary file outside the root;
ordinary stores must still read pixel for pixel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import asdict
from pathlib import Path

import numcodecs
import numpy as np
import pytest
import zarr
from zarr.codecs import BloscCodec, GzipCodec, ZstdCodec

import bioimnb
from bioimnb.core.errors import BioimnbError, CorruptFile, PathEscapesRoot
from bioimnb.core.limits import configure, limits

pytestmark = pytest.mark.timeout(60)

CANARY = (b"CANARY-" + bytes(range(1, 9))) * 273 + b"!"  # 4096 bytes: exactly one 64 x 64 uint8 chunk
AXES = [
    {"name": "t", "type": "time"},
    {"name": "c", "type": "channel"},
    {"name": "z", "type": "space"},
    {"name": "y", "type": "space"},
    {"name": "x", "type": "space"},
]


def ngff(path: Path, *, v: int = 3, shape=(1, 1, 1, 64, 64), chunks=(1, 1, 1, 64, 64), dtype="uint8",
         compressors=None, shards=None, write: bool = True) -> np.ndarray | None:
    """A one-level OME-Zarr image (NGFF 0.5 on zarr v3, or 0.4 on v2) written by zarr-python."""
    root = zarr.open_group(str(path), mode="w", zarr_format=v)
    kw = {"compressors": compressors} if v == 3 else {"compressor": compressors}
    arr = root.create_array("0", shape=shape, chunks=chunks, dtype=dtype, shards=shards, **kw)
    data = None
    if write:
        data = (np.arange(int(np.prod(shape))) % 251).reshape(shape).astype(dtype)
        arr[...] = data
    ms = {"axes": AXES, "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1.0] * 5}]}]}
    if v == 3:
        root.attrs["ome"] = {"version": "0.5", "multiscales": [ms]}
    else:
        root.attrs["multiscales"] = [{**ms, "version": "0.4"}]
    return data


def chunk_file(store: Path, v: int = 3) -> Path:
    """The file of chunk (0, 0, 0, 0, 0) of array 0."""
    return store / "0" / ("c/0/0/0/0/0" if v == 3 else "0.0.0.0.0")


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and text.strip() == text and text, repr(text)
    return text


@pytest.fixture
def box(tmp_path: Path) -> dict[str, Path]:
    """A root folder, and outside it a canary file and another zarr whose pixels are the canary."""
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    canary = outside / "canary.bin"
    canary.write_bytes(CANARY)
    ngff(outside / "other.ome.zarr", compressors=None)
    chunk_file(outside / "other.ome.zarr").write_bytes(CANARY)
    return {"root": root, "outside": outside, "canary": canary}


@pytest.fixture
def restore_limits():
    saved = limits()
    yield
    configure(**asdict(saved))


def plane(img: bioimnb.MultiscaleImage) -> np.ndarray:
    return np.asarray(img.read(0, t=0, c=0, z=0))


def assert_no_canary(data: np.ndarray) -> None:
    assert CANARY[:16] not in np.ascontiguousarray(data).tobytes()


# -- reading outside the root ------------------------------------------------------------------


@pytest.mark.parametrize("v", [3, 2])
def test_chunk_linked_outside_the_root_is_refused(box, v):
    store = box["root"] / "x.ome.zarr"
    ngff(store, v=v, compressors=None)
    chunk = chunk_file(store, v)
    chunk.unlink()
    chunk.symlink_to(box["canary"])
    # Without a root the link is followed (the user's own files): proof that the fixture bites.
    assert np.asarray(plane(bioimnb.open_image(store))).tobytes() == CANARY
    img = bioimnb.open_image(store, root=box["root"])  # metadata is inside: opening is fine
    for read in (lambda: plane(img), lambda: img.levels[0].compute(), lambda: img.levels[-1].compute()):
        with pytest.raises(PathEscapesRoot) as err:
            assert_no_canary(read())
        text = one_line(err.value)
        assert text.startswith(str(store)) and "0/" in text and "outside the root" in text


def test_array_folder_linked_to_a_zarr_outside_is_refused(box):
    store = box["root"] / "x.ome.zarr"
    ngff(store, compressors=None)
    import shutil

    shutil.rmtree(store / "0")
    (store / "0").symlink_to(box["outside"] / "other.ome.zarr" / "0", target_is_directory=True)
    assert plane(bioimnb.open_image(store)).tobytes() == CANARY  # followed when no root is asked for
    with pytest.raises(PathEscapesRoot) as err:
        assert_no_canary(plane(bioimnb.open_image(store, root=box["root"])))
    assert "0/zarr.json: lies outside the root" in one_line(err.value)


@pytest.mark.parametrize(("v", "name"), [(3, "0/zarr.json"), (2, "0/.zarray"), (2, "0/.zattrs")])
def test_level_metadata_linked_outside_is_refused(box, v, name):
    store = box["root"] / "x.ome.zarr"
    ngff(store, v=v, compressors=None)
    other = box["outside"] / "meta"
    other.mkdir()
    src = store / name
    (other / src.name).write_bytes(src.read_bytes())
    src.unlink()
    src.symlink_to(other / src.name)
    bioimnb.open_image(store)  # unconfined: an ordinary link
    with pytest.raises(PathEscapesRoot) as err:
        bioimnb.open_image(store, root=box["root"])
    assert f"{name}: lies outside the root" in one_line(err.value)


def test_top_level_metadata_linked_outside_is_refused(box):
    store = box["root"] / "x.ome.zarr"
    ngff(store, compressors=None)
    (store / "zarr.json").unlink()
    (store / "zarr.json").symlink_to(box["outside"] / "other.ome.zarr" / "zarr.json")
    with pytest.raises(BioimnbError) as err:
        bioimnb.open_image(store, root=box["root"])
    assert "zarr.json" in one_line(err.value) and "CANARY" not in str(err.value)


def test_links_inside_the_root_are_followed(box):
    """Confinement refuses what leaves the root, not links as such."""
    store = box["root"] / "x.ome.zarr"
    data = ngff(store, compressors=None)
    kept = box["root"] / "elsewhere.bin"
    chunk = chunk_file(store)
    kept.write_bytes(chunk.read_bytes())
    chunk.unlink()
    chunk.symlink_to(kept)
    assert data is not None
    np.testing.assert_array_equal(plane(bioimnb.open_image(store, root=box["root"])), data[0, 0, 0])


@pytest.mark.parametrize("v", [3, 2])
def test_confined_reading_matches_zarr(box, v):
    """The ordinary case under a root: every level, sharded or not, pixel for pixel."""
    store = box["root"] / "x.ome.zarr"
    kw = {"shards": (1, 1, 1, 128, 128)} if v == 3 else {}
    comp = ZstdCodec(level=3) if v == 3 else numcodecs.Blosc("zstd", 3)
    data = ngff(store, v=v, shape=(1, 2, 1, 300, 260), chunks=(1, 1, 1, 64, 64), dtype="uint16", compressors=comp, **kw)
    img = bioimnb.open_image(store, root=box["root"])
    assert img.files == [str(store)]
    np.testing.assert_array_equal(img.levels[0].compute(), data)
    np.testing.assert_array_equal(img.read(0, t=0, c=1, z=0, y=slice(70, 200), x=slice(3, 250)), data[0, 1, 0, 70:200, 3:250])
    np.testing.assert_array_equal(img.levels[1].compute(), data[..., ::2, ::2])


def test_files_is_the_store_root(box):
    store = box["root"] / "x.ome.zarr"
    ngff(store, compressors=None)
    img = bioimnb.open_image(str(store) + "/")
    assert img.files == [str(store)]


# -- FIFOs, devices, huge metadata -----------------------------------------------------------


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("v", "name"),
    [(3, "zarr.json"), (3, "0/zarr.json"), (3, "0/c/0/0/0/0/0"), (2, ".zattrs"), (2, "0/.zarray"), (2, "0/0.0.0.0.0")],
)
@pytest.mark.parametrize("rooted", [False, True])
def test_fifo_where_a_file_belongs_never_hangs(box, v, name, rooted):
    store = box["root"] / "x.ome.zarr"
    ngff(store, v=v, compressors=None)
    (store / name).unlink()
    os.mkfifo(store / name)
    t0 = time.monotonic()
    with pytest.raises(BioimnbError) as err:
        img = bioimnb.open_image(store, root=box["root"] if rooted else None)
        plane(img)
    assert time.monotonic() - t0 < 2
    text = one_line(err.value)
    assert text.startswith(str(store)) and Path(name).name in text


@pytest.mark.timeout(20)
@pytest.mark.parametrize("name", ["zarr.json", "0/zarr.json", "0/c/0/0/0/0/0"])
def test_metadata_or_chunk_from_dev_zero_is_refused(box, name):
    store = box["root"] / "x.ome.zarr"
    ngff(store, compressors=None)
    (store / name).unlink()
    (store / name).symlink_to("/dev/zero")
    t0 = time.monotonic()
    with pytest.raises(BioimnbError) as err:
        plane(bioimnb.open_image(store))
    assert time.monotonic() - t0 < 2
    assert Path(name).name in one_line(err.value)


def test_oversized_metadata_is_refused(box, restore_limits):
    store = box["root"] / "x.ome.zarr"
    ngff(store, compressors=None)
    meta = json.loads((store / "0" / "zarr.json").read_text())
    meta["attributes"] = {"padding": "x" * 4000}
    (store / "0" / "zarr.json").write_text(json.dumps(meta))
    bioimnb.open_image(store)
    configure(max_metadata_bytes=2048)
    with pytest.raises(CorruptFile) as err:
        bioimnb.open_image(store)
    assert "0/zarr.json: metadata document of" in one_line(err.value) and "exceeds the limit of 2048 bytes" in str(err.value)


@pytest.mark.timeout(20)
def test_sparse_chunk_file_larger_than_the_decode_limit_is_not_read(box):
    store = box["root"] / "x.ome.zarr"
    ngff(store, compressors=ZstdCodec())
    with open(chunk_file(store), "r+b") as fh:
        fh.truncate(limits().max_decode_bytes + 1)  # sparse: costs no disk
    with pytest.raises(CorruptFile) as err:
        plane(bioimnb.open_image(store))
    assert "0/c/0/0/0/0/0: read of" in one_line(err.value) and "exceeds the limit" in str(err.value)


# -- broken and absurd metadata ----------------------------------------------------------------


@pytest.mark.parametrize(("v", "name"), [(3, "0/zarr.json"), (2, "0/.zarray")])
def test_broken_level_metadata_is_one_line_naming_the_file(box, v, name):
    store = box["root"] / "x.ome.zarr"
    ngff(store, v=v)
    (store / name).write_text('{"shape": [1, 2,')
    with pytest.raises(CorruptFile) as err:
        bioimnb.open_image(store)
    assert one_line(err.value).startswith(f"{store}: {name}: invalid JSON (")
    # The CLI prints that line alone and exits 2.
    cli = Path(sys.executable).with_name("bioimnb")
    proc = subprocess.run([str(cli), "info", str(store)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{name}: invalid JSON" in lines[0]


def _edit_array_meta(store: Path, v: int, edit) -> None:
    path = store / "0" / ("zarr.json" if v == 3 else ".zarray")
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))


def _v3_chunks(meta: dict) -> list:
    return meta["chunk_grid"]["configuration"]["chunk_shape"]


@pytest.mark.parametrize(
    ("v", "edit", "expect"),
    [
        (3, lambda m: m["shape"].__setitem__(3, -5), "non-negative"),
        (2, lambda m: m["shape"].__setitem__(3, -5), "0: "),
        (3, lambda m: _v3_chunks(m).__setitem__(3, 0), "zero or negative size"),
        (2, lambda m: m["chunks"].__setitem__(3, 0), "zero or negative size"),
        (3, lambda m: m.__setitem__("shape", [1, 1, 1, 10**7, 10**7]) or _v3_chunks(m).__setitem__(slice(None), [1] * 5), "1e+14 chunks"),
        (2, lambda m: m.update(shape=[1, 1, 1, 10**7, 10**7], chunks=[1] * 5), "1e+14 chunks"),
        (3, lambda m: m.__setitem__("shape", [1, 1, 1, 10**5, 10**5]) or _v3_chunks(m).__setitem__(slice(3, 5), [10**5, 10**5]),
         "chunk of 10000000000 bytes exceeds the decode limit of"),
        (3, lambda m: m.__setitem__("shape", ["a", 1, 1, 64, 64]), "invalid zarr metadata"),
        (3, lambda m: m.__setitem__("data_type", "no-such-type"), "invalid zarr metadata"),
        (3, lambda m: m.__setitem__("codecs", [{"name": "bytes"}, {"name": "no-such-codec"}]), "0: "),
        (2, lambda m: m.__setitem__("dtype", 17), "invalid zarr metadata"),
    ],
)
def test_absurd_array_metadata_is_refused_at_open(box, v, edit, expect):
    store = box["root"] / "x.ome.zarr"
    ngff(store, v=v, compressors=None)
    _edit_array_meta(store, v, edit)
    t0 = time.monotonic()
    with pytest.raises(BioimnbError) as err:
        plane(bioimnb.open_image(store))
    assert time.monotonic() - t0 < 3
    text = one_line(err.value)
    assert text.startswith(str(store)) and expect in text, text


def test_open_cost_does_not_follow_the_chunk_count(box):
    """1 x 1 chunks over 20,000 x 20,000 (4e8 chunks): opening and describing stay instant."""
    store = box["root"] / "x.ome.zarr"
    ngff(store, shape=(1, 1, 1, 20000, 20000), chunks=(1, 1, 1, 1, 1), write=False)
    t0 = time.monotonic()
    img = bioimnb.open_image(store)
    img.describe()
    assert img.level_shapes[0] == (1, 1, 1, 20000, 20000)
    assert time.monotonic() - t0 < 2
    np.testing.assert_array_equal(img.read(0, t=0, c=0, z=0, y=slice(0, 4), x=slice(0, 4)), np.zeros((4, 4), np.uint8))


def test_a_hundred_thousand_channels_open_quickly(box):
    store = box["root"] / "x.ome.zarr"
    ngff(store, shape=(1, 100_000, 1, 8, 8), chunks=(1, 1, 1, 8, 8), write=False)
    t0 = time.monotonic()
    img = bioimnb.open_image(store)
    assert len(img.channel_names) == 100_000
    assert time.monotonic() - t0 < 3
    assert plane(img).shape == (8, 8)


def test_multiscales_dataset_that_is_a_group_is_refused(box):
    store = box["root"] / "x.ome.zarr"
    ngff(store)
    g = zarr.open_group(str(store), mode="r+")
    g.create_group("grp")
    attrs = g.attrs.asdict()
    attrs["ome"]["multiscales"][0]["datasets"].append({"path": "grp"})
    g.attrs.update(attrs)
    with pytest.raises(CorruptFile) as err:
        bioimnb.open_image(store)
    assert "'grp' is a group, not an array" in one_line(err.value)


# -- decompression bombs -----------------------------------------------------------------------

_BOMB_BYTES = 256 * 2**20  # what each bomb inflates to; the declared chunk is 4 KiB


def _zstd_rle_frame(total: int) -> bytes:
    """A zstd frame that states no content size, made of RLE blocks of 128 KiB (4 bytes each)."""
    frame = bytearray(b"\x28\xb5\x2f\xfd" + bytes([0x00, 0x38]))  # no size; window 128 KiB
    block = 128 * 1024
    n = -(-total // block)
    for i in range(n):
        size = min(block, total - i * block)
        frame += ((1 if i == n - 1 else 0) | (1 << 1) | (size << 3)).to_bytes(3, "little") + b"\0"
    return bytes(frame)


def test_zstd_frame_without_content_size_is_read():
    """The hand-made frame is valid zstd (so the bomb built from it is a real one)."""
    assert numcodecs.Zstd().decode(_zstd_rle_frame(300_000)) == bytes(300_000)


def _bomb(codec: str) -> tuple[int, object, bytes]:
    if codec == "zstd-unsized":
        return 3, ZstdCodec(), _zstd_rle_frame(_BOMB_BYTES)
    zeros = bytes(_BOMB_BYTES)
    if codec == "zstd":
        return 3, ZstdCodec(), numcodecs.Zstd(level=19).encode(zeros)
    if codec == "gzip":
        return 3, GzipCodec(), numcodecs.GZip(level=9).encode(zeros)
    if codec == "blosc":
        return 3, BloscCodec(cname="zstd"), numcodecs.Blosc("zstd", 9, shuffle=0, blocksize=2**20).encode(zeros)
    if codec == "zlib":
        return 2, numcodecs.Zlib(9), numcodecs.Zlib(9).encode(zeros)
    if codec == "lz4":
        return 2, numcodecs.LZ4(1), numcodecs.LZ4(1).encode(zeros)
    raise AssertionError(codec)


_PROBE = textwrap.dedent(
    """
    import json, resource, sys
    import numpy as np
    import bioimnb
    from bioimnb.core.errors import BioimnbError
    bioimnb.open_image(sys.argv[2])  # warm the imports before the baseline
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out = {}
    try:
        img = bioimnb.open_image(sys.argv[1])
        np.asarray(img.read(0, t=0, c=0, z=0))
        out["error"] = None
    except BioimnbError as exc:
        out["error"] = str(exc)
    out["grew"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    print(json.dumps(out))
    """
)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("codec", ["zstd", "zstd-unsized", "gzip", "blosc", "zlib", "lz4"])
def test_decompression_bomb_chunk_is_refused_with_bounded_memory(box, codec):
    v, compressor, bomb = _bomb(codec)
    assert len(bomb) < 2**21  # a few KB to 1 MB (lz4 inflates at most ~255x) that claim 256 MiB
    store = box["root"] / "bomb.ome.zarr"
    ngff(store, v=v, compressors=compressor)
    chunk_file(store, v).write_bytes(bomb)
    calm = box["root"] / "calm.ome.zarr"
    ngff(calm, v=v, compressors=compressor)
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, str(store), str(calm)], capture_output=True, text=True, timeout=100
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["error"] is not None and "\n" not in out["error"], out
    assert out["error"].startswith(f"{store}/0: a compressed chunk decodes to"), out
    assert "more than the 4096 bytes of a declared chunk" in out["error"]
    assert out["grew"] < 64 * 2**20, out  # decoding would have taken 256 MiB


def _crc32c(data: bytes) -> bytes:
    import google_crc32c

    return google_crc32c.value(data).to_bytes(4, "little")


@pytest.mark.timeout(120)
def test_bomb_inside_a_shard_is_refused(box):
    """An inner chunk of a shard that inflates far beyond the inner chunk size."""
    store = box["root"] / "bomb.ome.zarr"
    ngff(store, chunks=(1, 1, 1, 32, 32), shards=(1, 1, 1, 64, 64), compressors=ZstdCodec())
    bomb = numcodecs.Zstd(level=19).encode(bytes(_BOMB_BYTES))
    empty = 2**64 - 1
    index = np.array([[0, len(bomb)], [empty, empty], [empty, empty], [empty, empty]], dtype="<u8").tobytes()
    chunk_file(store).write_bytes(bomb + index + _crc32c(index))
    calm = box["root"] / "calm.ome.zarr"
    ngff(calm, chunks=(1, 1, 1, 32, 32), shards=(1, 1, 1, 64, 64), compressors=ZstdCodec())
    proc = subprocess.run([sys.executable, "-c", _PROBE, str(store), str(calm)], capture_output=True, text=True, timeout=100)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["error"] == f"{store}/0: a compressed chunk decodes to {_BOMB_BYTES} bytes, more than the 1024 bytes of a declared chunk", out
    assert out["grew"] < 64 * 2**20, out


def test_garbage_chunk_is_one_line(box):
    store = box["root"] / "x.ome.zarr"
    ngff(store, compressors=ZstdCodec())
    chunk_file(store).write_bytes(b"\x28\xb5\x2f\xfd" + os.urandom(200))
    with pytest.raises(CorruptFile) as err:
        plane(bioimnb.open_image(store))
    assert one_line(err.value).startswith(f"{store}/0: a ")


def test_chunk_smaller_than_declared_is_one_line(box):
    """A frame that inflates to less than the chunk (truncated data) is corrupt, not a traceback."""
    store = box["root"] / "x.ome.zarr"
    ngff(store, compressors=ZstdCodec())
    chunk_file(store).write_bytes(numcodecs.Zstd().encode(bytes(100)))
    with pytest.raises(CorruptFile) as err:
        plane(bioimnb.open_image(store))
    assert one_line(err.value).startswith(f"{store}/0: a chunk cannot be decoded (")


# -- remote stores: not confined by a local root, but metadata and decodes are bounded ----------


@pytest.fixture
def hostile_remote(tmp_path):
    """Three stores to upload: a broken level zarr.json, padded metadata, a zstd bomb chunk."""
    broken = tmp_path / "broken.ome.zarr"
    ngff(broken)
    (broken / "0" / "zarr.json").write_text('{"shape": [1, 2,')
    padded = tmp_path / "padded.ome.zarr"
    ngff(padded, compressors=ZstdCodec())
    _edit_array_meta(padded, 3, lambda m: m.__setitem__("attributes", {"padding": "x" * 4000}))
    bomb = tmp_path / "bomb.ome.zarr"
    ngff(bomb, compressors=ZstdCodec())
    chunk_file(bomb).write_bytes(numcodecs.Zstd(level=19).encode(bytes(64 * 2**20)))
    fat = tmp_path / "fat.ome.zarr"
    ngff(fat, compressors=ZstdCodec())
    chunk_file(fat).write_bytes(os.urandom(20000))
    return {"broken": broken, "padded": padded, "bomb": bomb, "fat": fat}


def test_s3_hostile_stores(s3, hostile_remote, restore_limits):
    bucket = s3.make_bucket("hostile")
    for path in hostile_remote.values():
        s3.fs.put(str(path), f"{bucket}/{path.name}", recursive=True)
    url = f"s3://{bucket}"
    opts = s3.storage_options
    with pytest.raises(CorruptFile) as err:
        bioimnb.open_image(f"{url}/broken.ome.zarr", **opts)
    assert one_line(err.value).startswith(f"{url}/broken.ome.zarr: 0/zarr.json: invalid JSON (")
    with pytest.raises(CorruptFile) as err:
        plane(bioimnb.open_image(f"{url}/bomb.ome.zarr", **opts))
    assert "a compressed chunk decodes to 67108864 bytes, more than the 4096 bytes" in one_line(err.value)
    img = bioimnb.open_image(f"{url}/padded.ome.zarr", **opts)  # an ordinary remote store still reads
    assert plane(img).shape == (64, 64)
    configure(max_metadata_bytes=2048)
    with pytest.raises(CorruptFile) as err:
        bioimnb.open_image(f"{url}/padded.ome.zarr", **opts)
    assert "0/zarr.json: metadata document larger than the limit of 2048 bytes" in one_line(err.value)
    with pytest.raises(CorruptFile) as err:  # a whole chunk object is fetched as a capped range
        plane(bioimnb.open_image(f"{url}/fat.ome.zarr", **opts))
    assert "a chunk cannot be decoded" in one_line(err.value)
    configure(max_decode_bytes=8192)
    with pytest.raises(CorruptFile) as err:
        plane(bioimnb.open_image(f"{url}/fat.ome.zarr", **opts))
    assert one_line(err.value) == f"{url}/fat.ome.zarr: 0/c/0/0/0/0/0: read larger than the limit of 8192 bytes"


def test_http_hostile_stores(http_server, hostile_remote):
    base = http_server(next(iter(hostile_remote.values())).parent)
    with pytest.raises(CorruptFile) as err:
        bioimnb.open_image(f"{base}/broken.ome.zarr")
    assert "0/zarr.json: invalid JSON (" in one_line(err.value)
    with pytest.raises(CorruptFile) as err:
        plane(bioimnb.open_image(f"{base}/bomb.ome.zarr"))
    assert "a compressed chunk decodes to 67108864 bytes" in one_line(err.value)


def test_guards_survive_pickling(box):
    """Arrays travel to dask workers pickled: the confinement and the decode bound go along."""
    import pickle

    store = box["root"] / "x.ome.zarr"
    ngff(store, chunks=(1, 1, 1, 32, 32), shards=(1, 1, 1, 64, 64), compressors=ZstdCodec())
    arr = bioimnb.open_image(store, root=box["root"])._data.levels[0].native
    chunk_file(store).unlink()
    chunk_file(store).symlink_to(box["canary"])
    clone = pickle.loads(pickle.dumps(arr))
    with pytest.raises(PathEscapesRoot):
        clone[0, 0, 0, :4, :4]
    bomb = numcodecs.Zstd(level=19).encode(bytes(2**24))
    empty = 2**64 - 1
    index = np.array([[0, len(bomb)]] + [[empty, empty]] * 3, dtype="<u8").tobytes()
    chunk_file(store).unlink()
    chunk_file(store).write_bytes(bomb + index + _crc32c(index))
    with pytest.raises(CorruptFile) as err:
        clone[0, 0, 0, :4, :4]
    assert one_line(err.value) == f"{store}/0: a compressed chunk decodes to {2**24} bytes, more than the 1024 bytes of a declared chunk"


@pytest.mark.parametrize(
    ("edit", "expect"),
    [
        (lambda o: o.__setitem__("multiscales", [5]), "invalid OME-Zarr metadata (AttributeError"),
        (lambda o: o.__setitem__("multiscales", {"a": 1}), "invalid OME-Zarr metadata (KeyError"),
        (lambda o: o["multiscales"][0].__setitem__("datasets", "0"), "multiscales dataset '0' is not an object"),
        (
            lambda o: o["multiscales"][0]["datasets"][0].__setitem__(
                "coordinateTransformations", [{"type": "scale", "scale": ["a"] * 5}]
            ),
            "invalid OME-Zarr metadata (ValueError",
        ),
        (lambda o: o["multiscales"][0].__setitem__("axes", 5), "invalid OME-Zarr metadata (TypeError"),
        (lambda o: o.__setitem__("omero", "x"), "invalid OME-Zarr metadata (AttributeError"),
        (lambda o: (o.pop("multiscales"), o.__setitem__("plate", {"wells": [3]})), "invalid OME-Zarr metadata (TypeError"),
    ],
)
def test_malformed_ome_attributes_are_one_line(box, edit, expect):
    store = box["root"] / "x.ome.zarr"
    ngff(store)
    meta = json.loads((store / "zarr.json").read_text())
    edit(meta["attributes"]["ome"])
    (store / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(CorruptFile) as err:
        img = bioimnb.open_image(store)
        img.describe()
    assert one_line(err.value).startswith(f"{store}: {expect}"), str(err.value)


def test_shards_beyond_the_decode_limit_are_read_by_inner_chunks(box):
    """Level chunks (tile grid, dask blocks) are whole shards only when a shard fits the decode
    limit; a 512 MiB shard is read by its inner chunks instead."""
    big = box["root"] / "big.ome.zarr"
    ngff(big, shape=(1, 1, 1, 16384, 16384), chunks=(1, 1, 1, 512, 512), shards=(1, 1, 1, 16384, 16384),
         dtype="uint16", compressors=ZstdCodec(), write=False)
    small = box["root"] / "small.ome.zarr"
    ngff(small, shape=(1, 1, 1, 16384, 16384), chunks=(1, 1, 1, 512, 512), shards=(1, 1, 1, 4096, 4096),
         dtype="uint16", compressors=ZstdCodec(), write=False)
    img = bioimnb.open_image(big, root=box["root"])
    assert img._data.levels[0].chunk_shape == (1, 1, 1, 512, 512)
    assert img.levels[0].chunksize == (1, 1, 1, 1024, 1024)
    assert bioimnb.open_image(small)._data.levels[0].chunk_shape == (1, 1, 1, 4096, 4096)
    np.testing.assert_array_equal(img.read(0, t=0, c=0, z=0, y=slice(9000, 9100), x=slice(0, 10)), 0)
