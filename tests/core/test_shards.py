"""Whole-shard encoding (bioimnb.core.convert.shards) against zarr-python, both directions."""

from __future__ import annotations

import os

import numpy as np
import pytest
import zarr
from zarr.codecs import BloscCodec, GzipCodec, ZstdCodec

from bioimnb.core.convert.shards import shard_codec
from bioimnb.core.errors import CorruptFile
from bioimnb.core.storage import resolve

COMPRESSORS = {
    "zstd": ZstdCodec(level=3),
    "gzip": GzipCodec(level=5),
    "blosc": BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"),
    "none": None,
}


def _array(root, name, shape, dtype, compressor, shards=(1, 1, 1, 256, 256)):
    group = zarr.open_group(str(root), mode="a", zarr_format=3)
    return group.create_array(
        name,
        shape=shape,
        dtype=dtype,
        chunks=(1, 1, 1, 64, 64),
        shards=shards,
        compressors=compressor,
        fill_value=0,
        config={"write_empty_chunks": True},
    )


def _data(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    if info is None:
        return rng.normal(size=shape).astype(dtype)
    return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)


@pytest.mark.parametrize("name", sorted(COMPRESSORS))
@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_shards_written_here_read_by_zarr(tmp_path, name, dtype):
    """Every shard of an array whose edges do not fall on shard or chunk boundaries."""
    shape = (1, 2, 1, 600, 333)
    arr = _array(tmp_path / "out.zarr", "0", shape, dtype, COMPRESSORS[name])
    codec = shard_codec(arr, resolve(str(tmp_path / "out.zarr")))
    assert codec is not None
    data = _data(shape, dtype)
    for c in range(2):
        for y0 in range(0, 600, 256):
            for x0 in range(0, 333, 256):
                y1, x1 = min(600, y0 + 256), min(333, x0 + 256)
                assert codec.aligned(y0, y1, x0, x1)
                block = data[0, c, 0, y0:y1, x0:x1]
                blob = codec.encode(block)
                codec.write(codec.key(0, c, 0, y0, x0), blob)
                np.testing.assert_array_equal(codec.decode(codec.read(codec.key(0, c, 0, y0, x0)), y1 - y0, x1 - x0), block)
    again = zarr.open_array(str(tmp_path / "out.zarr"), path="0", mode="r")
    np.testing.assert_array_equal(again[...], data)
    assert not codec.aligned(0, 100, 0, 256) and not codec.aligned(64, 320, 0, 256)


@pytest.mark.parametrize("name", sorted(COMPRESSORS))
def test_shards_written_by_zarr_decoded_here(tmp_path, name):
    shape = (1, 1, 1, 300, 520)
    arr = _array(tmp_path / "z.zarr", "0", shape, "uint16", COMPRESSORS[name])
    data = _data(shape, "uint16", seed=1)
    arr[...] = data
    codec = shard_codec(arr, resolve(str(tmp_path / "z.zarr")))
    assert codec is not None
    got = codec.decode(codec.read(codec.key(0, 0, 0, 256, 512)), 300 - 256, 520 - 512)
    np.testing.assert_array_equal(got, data[0, 0, 0, 256:, 512:])


def test_damaged_shards_are_refused(tmp_path):
    arr = _array(tmp_path / "d.zarr", "0", (1, 1, 1, 256, 256), "uint16", ZstdCodec(level=1))
    codec = shard_codec(arr, resolve(str(tmp_path / "d.zarr")))
    assert codec is not None
    blob = codec.encode(_data((256, 256), "uint16"))
    broken = bytearray(blob)
    broken[-10] ^= 0xFF  # inside the index: its CRC32C no longer matches
    with pytest.raises(ValueError, match="checksum"):
        codec.decode(bytes(broken), 256, 256)
    with pytest.raises(ValueError, match="shorter than its index"):
        codec.decode(blob[:100], 256, 256)
    with pytest.raises(ValueError):
        codec.decode(blob[200:], 256, 256)  # offsets now point past the end / garbage chunks


def test_layouts_not_written_here_fall_back_to_zarr(tmp_path):
    from bioimnb.core.convert.shards import block_codec

    v2 = zarr.open_group(str(tmp_path / "v2.zarr"), mode="w", zarr_format=2).create_array(
        "0", shape=(1, 1, 1, 64, 64), dtype="uint16", chunks=(1, 1, 1, 32, 32)
    )
    assert shard_codec(v2, resolve(str(tmp_path / "v2.zarr"))) is None
    assert block_codec(v2, resolve(str(tmp_path / "v2.zarr"))) is None  # "." keys: zarr writes
    filtered = zarr.open_group(str(tmp_path / "f.zarr"), mode="w", zarr_format=2).create_array(
        "0", shape=(1, 1, 1, 64, 64), dtype="uint16", chunks=(1, 1, 1, 32, 32),
        filters=[__import__("numcodecs").Delta(dtype="uint16")], chunk_key_encoding={"name": "v2", "separator": "/"},
    )
    assert block_codec(filtered, resolve(str(tmp_path / "f.zarr"))) is None
    dotted = zarr.open_group(str(tmp_path / "v3.zarr"), mode="w", zarr_format=3).create_array(
        "0", shape=(1, 1, 1, 64, 64), dtype="uint16", chunks=(1, 1, 1, 32, 32),
        chunk_key_encoding={"name": "default", "separator": "."},
    )
    assert shard_codec(dotted, resolve(str(tmp_path / "v3.zarr"))) is None
    assert block_codec(dotted, resolve(str(tmp_path / "v3.zarr"))) is None


def test_convert_detects_a_damaged_shard_on_disk(images, tmp_path, monkeypatch):
    """Verification reads the stored bytes: one flipped byte in a level-0 shard fails the run."""
    import bioimnb
    from bioimnb.core.convert import engine

    original = engine._verify_zarr

    def damage_then_verify(run, plans, journal):
        shard_dir = tmp_path / "bad.ome.zarr" / "0" / "c"
        first = sorted(p for p in shard_dir.rglob("*") if p.is_file())[0]
        blob = bytearray(first.read_bytes())
        blob[len(blob) // 3] ^= 0x55
        first.write_bytes(bytes(blob))
        return original(run, plans, journal)

    monkeypatch.setattr(engine, "_verify_zarr", damage_then_verify)
    dest = tmp_path / "bad.ome.zarr"
    with pytest.raises(CorruptFile, match="verification failed") as info:
        bioimnb.convert(images["ome_tiff"][0], dest, scenes=[0])
    assert "block 0/" in str(info.value)
    assert bioimnb.open_image(dest).status()["incomplete"] is True
    assert os.path.isdir(dest)


V2_COMPRESSORS = ["zstd", "zlib", "blosc", "none"]


def _v2_array(root, compressor_name):
    import numcodecs

    compressor = {
        "zstd": numcodecs.Zstd(level=3),
        "zlib": numcodecs.Zlib(level=4),
        "blosc": numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE),
        "none": None,
    }[compressor_name]
    group = zarr.open_group(str(root), mode="a", zarr_format=2)
    return group.create_array(
        "0",
        shape=(1, 2, 1, 300, 190),
        dtype="uint16",
        chunks=(1, 1, 1, 64, 64),
        compressors=compressor,
        fill_value=0,
        chunk_key_encoding={"name": "v2", "separator": "/"},
    )


@pytest.mark.parametrize("name", V2_COMPRESSORS)
def test_v2_chunks_written_here_read_by_zarr_and_back(tmp_path, name):
    from bioimnb.core.convert.shards import ChunkFiles, block_codec

    arr = _v2_array(tmp_path / "v2.zarr", name)
    codec = block_codec(arr, resolve(str(tmp_path / "v2.zarr")))
    assert isinstance(codec, ChunkFiles)
    data = _data((1, 2, 1, 300, 190), "uint16", seed=3)
    for c in range(2):
        for y0 in range(0, 300, 128):
            for x0 in range(0, 190, 128):
                y1, x1 = min(300, y0 + 128), min(190, x0 + 128)
                assert codec.aligned(y0, y1, x0, x1)
                codec.write_block(0, c, 0, y0, x0, data[0, c, 0, y0:y1, x0:x1])
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "v2.zarr"), path="0", mode="r")[...], data)
    np.testing.assert_array_equal(codec.read_block(0, 1, 0, 256, 128, 44, 62), data[0, 1, 0, 256:, 128:])
    assert not codec.aligned(0, 100, 0, 128)


@pytest.mark.parametrize("name", V2_COMPRESSORS)
def test_v2_chunks_written_by_zarr_decoded_here(tmp_path, name):
    from bioimnb.core.convert.shards import block_codec

    arr = _v2_array(tmp_path / "z2.zarr", name)
    data = _data((1, 2, 1, 300, 190), "uint16", seed=4)
    arr[...] = data
    codec = block_codec(arr, resolve(str(tmp_path / "z2.zarr")))
    assert codec is not None
    np.testing.assert_array_equal(codec.read_block(0, 0, 0, 128, 64, 172, 126), data[0, 0, 0, 128:, 64:])


@pytest.mark.parametrize("name", sorted(COMPRESSORS))
def test_v3_unsharded_chunks_both_directions(tmp_path, name):
    from bioimnb.core.convert.shards import ChunkFiles, block_codec

    group = zarr.open_group(str(tmp_path / "u.zarr"), mode="w", zarr_format=3)
    arr = group.create_array(
        "0", shape=(1, 1, 2, 200, 150), dtype="uint16", chunks=(1, 1, 1, 64, 64), compressors=COMPRESSORS[name], fill_value=0
    )
    codec = block_codec(arr, resolve(str(tmp_path / "u.zarr")))
    assert isinstance(codec, ChunkFiles)
    data = _data((1, 1, 2, 200, 150), "uint16", seed=5)
    codec.write_block(0, 0, 1, 0, 0, data[0, 0, 1])
    arr[0, 0, 0] = data[0, 0, 0]  # written by zarr
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "u.zarr"), path="0", mode="r")[...], data)
    np.testing.assert_array_equal(codec.read_block(0, 0, 0, 64, 64, 136, 86), data[0, 0, 0, 64:, 64:])


def test_index_at_start_both_directions(tmp_path):
    """Shards whose index comes first (``index_location: start``) are also handled."""
    from zarr.codecs import BytesCodec, ShardingCodec

    group = zarr.open_group(str(tmp_path / "s.zarr"), mode="w", zarr_format=3)
    serializer = ShardingCodec(chunk_shape=(1, 1, 1, 64, 64), codecs=[BytesCodec(), ZstdCodec(level=1)], index_location="start")
    kwargs = dict(shape=(1, 1, 1, 300, 200), dtype="uint16", chunks=(1, 1, 1, 256, 256), serializer=serializer, compressors=None, fill_value=0)
    mine, theirs = group.create_array("0", **kwargs), group.create_array("1", **kwargs)
    data = _data((1, 1, 1, 300, 200), "uint16", seed=6)
    codec = shard_codec(mine, resolve(str(tmp_path / "s.zarr")))
    assert codec is not None and codec.index_at_start
    codec.write_block(0, 0, 0, 0, 0, data[0, 0, 0, :256])
    codec.write_block(0, 0, 0, 256, 0, data[0, 0, 0, 256:])
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "s.zarr"), path="0", mode="r")[...], data)
    theirs[...] = data
    other = shard_codec(theirs, resolve(str(tmp_path / "s.zarr")))
    assert other is not None
    np.testing.assert_array_equal(other.read_block(0, 0, 0, 256, 0, 44, 200), data[0, 0, 0, 256:])


def test_sharded_with_dot_separated_keys(tmp_path):
    """Keys like ``c.0.0.0.1.0`` are one object each, not nested folders."""
    group = zarr.open_group(str(tmp_path / "dot.zarr"), mode="w", zarr_format=3)
    arr = group.create_array(
        "0", shape=(1, 1, 1, 300, 200), dtype="uint16", chunks=(1, 1, 1, 64, 64), shards=(1, 1, 1, 256, 256),
        compressors=ZstdCodec(level=1), fill_value=0, chunk_key_encoding={"name": "default", "separator": "."},
    )
    codec = shard_codec(arr, resolve(str(tmp_path / "dot.zarr")))
    assert codec is not None
    data = _data((1, 1, 1, 300, 200), "uint16", seed=7)
    codec.write_block(0, 0, 0, 0, 0, data[0, 0, 0, :256])
    codec.write_block(0, 0, 0, 256, 0, data[0, 0, 0, 256:])
    assert (tmp_path / "dot.zarr" / "0" / "c.0.0.0.1.0").is_file()
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "dot.zarr"), path="0", mode="r")[...], data)


def test_convert_names_an_unreadable_shard(images, tmp_path, monkeypatch):
    """A stored shard whose index is damaged is reported with the reason, not just 'differs'."""
    import bioimnb
    from bioimnb.core.convert import engine

    original = engine._verify_zarr

    def damage_then_verify(run, plans, journal):
        first = sorted(p for p in (tmp_path / "idx.ome.zarr" / "0" / "c").rglob("*") if p.is_file())[0]
        blob = bytearray(first.read_bytes())
        blob[-6] ^= 0xFF  # inside the shard index: its CRC32C no longer matches
        first.write_bytes(bytes(blob))
        return original(run, plans, journal)

    monkeypatch.setattr(engine, "_verify_zarr", damage_then_verify)
    with pytest.raises(CorruptFile, match="unreadable: shard index checksum mismatch"):
        bioimnb.convert(images["ome_tiff"][0], tmp_path / "idx.ome.zarr", scenes=[0])
