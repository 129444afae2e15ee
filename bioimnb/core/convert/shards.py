"""Whole-block reads and writes for the zarr arrays that ``convert`` creates.

Why not ``array[...] = block``: zarr-python encodes the inner chunks of a shard one by one on its
asyncio event loop (one thread per process), copies each chunk into a shard buffer, compares it
with the fill value and combines the buffers; for a 4096 x 4096 block that is 64 round trips
through the loop and several full copies.  A conversion task owns exactly one shard (the plan
aligns blocks with shards), so it can encode the shard itself: each inner chunk is compressed in
the worker thread (the codecs release the GIL, so workers really run in parallel), the shard
index is built as the zarr v3 sharding specification describes (``[offset, nbytes]`` uint64
pairs in C order of the inner chunks, ``2**64 - 1`` for an absent chunk, then its CRC32C), and
the bytes go to storage in one write.  Reading back for verification uses the same layout in
reverse, so it checks what is actually stored, not a cached copy.

``convert`` feeds a shard one chunk row at a time (:meth:`ShardCodec.stream`): each chunk is
encoded as its row arrives and, on a local disk with the index at the end, written straight to
the shard file, so a task holds one chunk row, not the shard; the bytes equal :meth:`ShardCodec.encode`
of the whole block.  Verification reads the index, then one chunk row per ranged read
(:meth:`ShardCodec.read_rows`).

Zarr v2 arrays (NGFF 0.4) get the same treatment without the index: each chunk of the block is
encoded in the worker thread and written as its own object (:class:`ChunkFiles`).

Only the layouts ``convert`` writes are handled (bytes + one of zstd/gzip/blosc/none inside,
bytes + crc32c for the index, chunks and shards of one (t, c, z) plane; v2 with "/" keys and
one compressor, no filters); :func:`block_codec` returns None for anything else and callers fall
back to zarr.  The output is a plain zarr array: zarr-python and any NGFF reader read it (tested).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..storage import Resolved

__all__ = ["ChunkFiles", "ChunkRowsWriter", "ShardCodec", "ShardWriter", "block_codec", "shard_codec"]

_EMPTY = np.uint64(2**64 - 1)


def _compressor(codec: Any) -> tuple[Any, Any] | None:
    """(encode, decode) callables for one zarr v3 bytes-to-bytes codec, or None if unknown."""
    from zarr.codecs import BloscCodec, GzipCodec, ZstdCodec

    if isinstance(codec, ZstdCodec):
        if codec.checksum:
            return None
        level = int(codec.level)
        try:
            import imagecodecs

            # imagecodecs' zstd is ~10 % faster than numcodecs' here; both write standard frames.
            return (lambda b: imagecodecs.zstd_encode(b, level=level)), imagecodecs.zstd_decode
        except ImportError:  # pragma: no cover - imagecodecs is a dependency
            import numcodecs

            z = numcodecs.Zstd(level=level)
            return z.encode, z.decode
    if isinstance(codec, GzipCodec):
        import numcodecs

        g = numcodecs.GZip(level=int(codec.level))
        return g.encode, g.decode
    if isinstance(codec, BloscCodec):
        import numcodecs

        shuffle = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}[getattr(codec.shuffle, "value", str(codec.shuffle))]
        if codec.typesize is None:
            return None
        b = numcodecs.Blosc(
            cname=getattr(codec.cname, "value", str(codec.cname)),
            clevel=int(codec.clevel),
            shuffle=shuffle,
            blocksize=int(codec.blocksize or 0),
        )
        # numcodecs takes the type size from the buffer it is given: hand it a typed array.
        return b.encode, b.decode
    return None


def _numcodecs_pair(codec: Any) -> tuple[Any, Any] | None:
    """(encode, decode) for a zarr v2 compressor (a numcodecs codec), or None if unknown."""
    import numcodecs

    if isinstance(codec, numcodecs.Zstd):
        from zarr.codecs import ZstdCodec

        if getattr(codec, "checksum", False):
            return None
        return _compressor(ZstdCodec(level=int(codec.level)))
    if isinstance(codec, (numcodecs.Zlib, numcodecs.GZip, numcodecs.Blosc)):
        return codec.encode, codec.decode
    return None


def _encode_chunk(encode_fn: Any, chunk: np.ndarray) -> bytes:
    encoded = encode_fn(chunk) if encode_fn is not None else chunk.tobytes()
    return encoded if isinstance(encoded, bytes) else bytes(encoded)


def _decode_chunk(decode_fn: Any, piece: Any, dtype: np.dtype, shape: tuple[int, int], where: str) -> np.ndarray:
    try:
        decoded = decode_fn(piece) if decode_fn is not None else piece
    except Exception as exc:  # noqa: BLE001 - codec libraries raise their own types
        raise ValueError(f"chunk {where} does not decode: {exc}") from exc
    arr = np.frombuffer(decoded, dtype=dtype)
    if arr.size != shape[0] * shape[1]:
        raise ValueError(f"chunk {where} decodes to {arr.size} values, expected {shape[0] * shape[1]}")
    return arr.reshape(shape)


def _chunks_of(data: np.ndarray, cy: int, cx: int, dtype: np.dtype, fill: Any) -> Any:
    """(iy, ix, full-size chunk in stored byte order) for every chunk a 2-D block touches."""
    h, w = data.shape
    tile = np.empty((cy, cx), dtype=dtype)
    for iy in range(-(-h // cy)):
        for ix in range(-(-w // cx)):
            piece = data[iy * cy : (iy + 1) * cy, ix * cx : (ix + 1) * cx]
            if piece.shape == (cy, cx) and piece.dtype == dtype and piece.flags.c_contiguous:
                yield iy, ix, piece
                continue
            # an edge chunk (padded with the fill value) or a view to copy in stored byte order
            if piece.shape != (cy, cx):
                tile.fill(fill)
            tile[: piece.shape[0], : piece.shape[1]] = piece
            yield iy, ix, tile


class _Objects:
    """Writes and reads whole objects under one array folder, locally or on any fsspec store."""

    res: Resolved

    def _path(self, key: str) -> str:
        return self.res.path.rstrip("/") + "/" + key

    def write(self, key: str, blob: bytes) -> None:
        path = self._path(key)
        if self.res.local:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(blob)
        else:
            self.res.fs.pipe_file(path, blob)

    def read(self, key: str) -> bytes:
        path = self._path(key)
        if self.res.local:
            with open(path, "rb") as fh:
                return fh.read()
        return bytes(self.res.fs.cat_file(path))

    def size(self, key: str) -> int:
        path = self._path(key)
        if self.res.local:
            return os.path.getsize(path)
        return int(self.res.fs.size(path))

    def read_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``start:end`` of one object (one ranged read; never the whole object)."""
        if end <= start:
            return b""
        path = self._path(key)
        if self.res.local:
            with open(path, "rb") as fh:
                data = os.pread(fh.fileno(), end - start, start)
        else:
            data = bytes(self.res.fs.cat_file(path, start=start, end=end))
        if len(data) != end - start:
            raise ValueError(f"object {key} is shorter than its index says ({start + len(data)} < {end} bytes)")
        return data


@dataclass(frozen=True)
class ChunkFiles(_Objects):
    """Encodes the chunks of a block of an unsharded array, one object per chunk: zarr v2
    (NGFF 0.4, keys ``t/c/z/y/x``) or zarr v3 without sharding (keys ``c/t/c/z/y/x``)."""

    res: Resolved
    shape: tuple[int, ...]
    chunk: tuple[int, ...]
    dtype: np.dtype
    fill_value: Any
    encode_fn: Any
    decode_fn: Any
    prefix: str = ""

    def aligned(self, y0: int, y1: int, x0: int, x1: int) -> bool:
        cy, cx = self.chunk[3], self.chunk[4]
        return (
            y0 % cy == 0
            and x0 % cx == 0
            and (y1 % cy == 0 or y1 == self.shape[3])
            and (x1 % cx == 0 or x1 == self.shape[4])
        )

    def _key(self, t: int, c: int, z: int, iy: int, ix: int) -> str:
        return f"{self.prefix}{t}/{c}/{z}/{iy}/{ix}"

    def write_block(self, t: int, c: int, z: int, y0: int, x0: int, data: np.ndarray) -> None:
        cy, cx = self.chunk[3], self.chunk[4]
        for iy, ix, chunk in _chunks_of(data, cy, cx, self.dtype, self.fill_value):
            self.write(self._key(t, c, z, y0 // cy + iy, x0 // cx + ix), _encode_chunk(self.encode_fn, chunk))

    def stream(self, t: int, c: int, z: int, y0: int, x0: int) -> ChunkRowsWriter:
        """A writer that takes the block chunk row by chunk row (each chunk stored at once)."""
        return ChunkRowsWriter(self, t, c, z, y0, x0)

    def read_rows(self, t: int, c: int, z: int, y0: int, x0: int, height: int, width: int) -> Iterator[np.ndarray]:
        """The block, one chunk row at a time (top to bottom)."""
        cy = self.chunk[3]
        for r0 in range(0, height, cy):
            yield self.read_block(t, c, z, y0 + r0, x0, min(cy, height - r0), width)

    def read_block(self, t: int, c: int, z: int, y0: int, x0: int, height: int, width: int) -> np.ndarray:
        cy, cx = self.chunk[3], self.chunk[4]
        out = np.empty((height, width), dtype=self.dtype.newbyteorder("="))
        for iy in range(-(-height // cy)):
            for ix in range(-(-width // cx)):
                key = self._key(t, c, z, y0 // cy + iy, x0 // cx + ix)
                arr = _decode_chunk(self.decode_fn, self.read(key), self.dtype, (cy, cx), key)
                ys = slice(iy * cy, min(height, (iy + 1) * cy))
                xs = slice(ix * cx, min(width, (ix + 1) * cx))
                out[ys, xs] = arr[: ys.stop - ys.start, : xs.stop - xs.start]
        return out


@dataclass(frozen=True)
class ShardCodec(_Objects):
    """Encodes and decodes whole shards of one sharded zarr v3 array (see the module doc)."""

    res: Resolved
    """Where the array lives (its folder: ``<dest>/<array path>``)."""
    shape: tuple[int, ...]
    shard: tuple[int, ...]
    chunk: tuple[int, ...]
    dtype: np.dtype
    """Stored dtype, with the byte order of the bytes codec."""
    fill_value: Any
    separator: str
    index_at_start: bool
    encode_fn: Any
    decode_fn: Any

    # .. geometry ..
    def _grid(self) -> tuple[int, int]:
        return self.shard[3] // self.chunk[3], self.shard[4] // self.chunk[4]

    def key(self, t: int, c: int, z: int, y0: int, x0: int) -> str:
        """Storage key of the shard whose first pixel is (t, c, z, y0, x0)."""
        coords = (t, c, z, y0 // self.shard[3], x0 // self.shard[4])
        return "c" + self.separator + self.separator.join(str(i) for i in coords)

    def aligned(self, y0: int, y1: int, x0: int, x1: int) -> bool:
        """True when the rectangle is exactly one shard (clipped to the array)."""
        sy, sx = self.shard[3], self.shard[4]
        return (
            y0 % sy == 0
            and x0 % sx == 0
            and y1 == min(self.shape[3], y0 + sy)
            and x1 == min(self.shape[4], x0 + sx)
        )

    # .. encoding ..
    def encode(self, data: np.ndarray) -> bytes:
        """The shard bytes for a 2-D block starting on a shard boundary (clipped at the edges)."""
        ny, nx = self._grid()
        index = np.full((ny, nx, 2), _EMPTY, dtype="<u8")
        parts: list[bytes] = []
        offset = 0
        for iy, ix, chunk in _chunks_of(data, self.chunk[3], self.chunk[4], self.dtype, self.fill_value):
            encoded = _encode_chunk(self.encode_fn, chunk)
            index[iy, ix] = (offset, len(encoded))
            parts.append(encoded)
            offset += len(encoded)
        return self._assemble(parts, index)

    def _assemble(self, parts: list[bytes], index: np.ndarray) -> bytes:
        import google_crc32c

        index_size = index.nbytes + 4
        if self.index_at_start:
            used = index[..., 0] != _EMPTY
            index[..., 0][used] += np.uint64(index_size)
        raw = index.tobytes()
        crc = np.uint32(google_crc32c.value(raw)).astype("<u4").tobytes()
        if self.index_at_start:
            return b"".join([raw, crc, *parts])
        return b"".join([*parts, raw, crc])

    def decode(self, blob: bytes, height: int, width: int) -> np.ndarray:
        """The top-left ``height`` x ``width`` pixels of a shard from its stored bytes."""
        import google_crc32c

        ny, nx = self._grid()
        n = ny * nx * 16
        if len(blob) < n + 4:
            raise ValueError(f"shard of {len(blob)} bytes is shorter than its index ({n + 4} bytes)")
        raw, crc = (blob[:n], blob[n : n + 4]) if self.index_at_start else (blob[-n - 4 : -4], blob[-4:])
        if np.frombuffer(crc, "<u4")[0] != np.uint32(google_crc32c.value(raw)):
            raise ValueError("shard index checksum mismatch")
        index = np.frombuffer(raw, "<u8").reshape(ny, nx, 2)
        cy, cx = self.chunk[3], self.chunk[4]
        out = np.empty((height, width), dtype=self.dtype.newbyteorder("="))
        view = memoryview(blob)
        for iy in range(-(-height // cy)):
            for ix in range(-(-width // cx)):
                off, size = index[iy, ix]
                ys = slice(iy * cy, min(height, (iy + 1) * cy))
                xs = slice(ix * cx, min(width, (ix + 1) * cx))
                if off == _EMPTY:
                    out[ys, xs] = self.fill_value
                    continue
                if int(off) + int(size) > len(blob):
                    raise ValueError(f"chunk ({iy}, {ix}) lies beyond the end of the shard")
                piece = view[int(off) : int(off) + int(size)]
                arr = _decode_chunk(self.decode_fn, piece, self.dtype, (cy, cx), f"({iy}, {ix})")
                out[ys, xs] = arr[: ys.stop - ys.start, : xs.stop - xs.start]
        return out

    # .. chunk row by chunk row ..
    def stream(self, t: int, c: int, z: int, y0: int, x0: int) -> ShardWriter:
        """A writer that takes the shard chunk row by chunk row: each chunk is encoded as it
        comes and (local disk, index at the end) written straight to the shard file, so only
        one chunk row is ever held.  The bytes equal :meth:`encode` of the whole block."""
        return ShardWriter(self, self.key(t, c, z, y0, x0))

    def read_index(self, key: str) -> tuple[np.ndarray, int]:
        """(index as (ny, nx, 2) offsets/sizes, object size) of a stored shard, CRC checked."""
        import google_crc32c

        ny, nx = self._grid()
        n = ny * nx * 16
        total = self.size(key)
        if total < n + 4:
            raise ValueError(f"shard of {total} bytes is shorter than its index ({n + 4} bytes)")
        blob = self.read_range(key, 0, n + 4) if self.index_at_start else self.read_range(key, total - n - 4, total)
        raw, crc = blob[:n], blob[n:]
        if np.frombuffer(crc, "<u4")[0] != np.uint32(google_crc32c.value(raw)):
            raise ValueError("shard index checksum mismatch")
        return np.frombuffer(raw, "<u8").reshape(ny, nx, 2), total

    def read_rows(self, t: int, c: int, z: int, y0: int, x0: int, height: int, width: int) -> Iterator[np.ndarray]:
        """The top-left ``height`` x ``width`` pixels of a stored shard, one chunk row at a time,
        each row fetched with one ranged read (what verification needs, without the whole shard)."""
        key = self.key(t, c, z, y0, x0)
        index, total = self.read_index(key)
        cy, cx = self.chunk[3], self.chunk[4]
        for iy in range(-(-height // cy)):
            rows = min(cy, height - iy * cy)
            out = np.empty((rows, width), dtype=self.dtype.newbyteorder("="))
            nx = -(-width // cx)
            used = [(int(index[iy, ix, 0]), int(index[iy, ix, 1])) for ix in range(nx) if index[iy, ix, 0] != _EMPTY]
            start = min((o for o, _ in used), default=0)
            end = max((o + n for o, n in used), default=0)
            if end > total:
                raise ValueError(f"chunk row {iy} lies beyond the end of the shard")
            view = memoryview(self.read_range(key, start, end))
            for ix in range(nx):
                off, size = int(index[iy, ix, 0]), int(index[iy, ix, 1])
                xs = slice(ix * cx, min(width, (ix + 1) * cx))
                if index[iy, ix, 0] == _EMPTY:
                    out[:, xs] = self.fill_value
                    continue
                arr = _decode_chunk(self.decode_fn, view[off - start : off - start + size], self.dtype, (cy, cx), f"({iy}, {ix})")
                out[:, xs] = arr[:rows, : xs.stop - xs.start]
            del view  # not held while the caller works on this row or the next is read
            yield out
            del out

    # .. whole blocks ..
    def write_block(self, t: int, c: int, z: int, y0: int, x0: int, data: np.ndarray) -> None:
        self.write(self.key(t, c, z, y0, x0), self.encode(data))

    def read_block(self, t: int, c: int, z: int, y0: int, x0: int, height: int, width: int) -> np.ndarray:
        return self.decode(self.read(self.key(t, c, z, y0, x0)), height, width)


class ShardWriter:
    """One shard written chunk row by chunk row (see :meth:`ShardCodec.stream`)."""

    def __init__(self, codec: ShardCodec, key: str) -> None:
        ny, nx = codec._grid()
        self.codec = codec
        self.key = key
        self.index = np.full((ny, nx, 2), _EMPTY, dtype="<u8")
        self.offset = 0
        self.row = 0
        self.parts: list[bytes] = []
        self.fh: Any = None
        if codec.res.local and not codec.index_at_start:
            path = codec._path(key)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            self.fh = open(path, "wb")  # noqa: SIM115 - closed in finish() / abort()

    def add(self, rows: np.ndarray) -> None:
        """The next rows of the shard: whole chunk rows (fewer only at the end of the block)."""
        cy, cx = self.codec.chunk[3], self.codec.chunk[4]
        for iy, ix, chunk in _chunks_of(rows, cy, cx, self.codec.dtype, self.codec.fill_value):
            encoded = _encode_chunk(self.codec.encode_fn, chunk)
            self.index[self.row + iy, ix] = (self.offset, len(encoded))
            if self.fh is not None:
                self.fh.write(encoded)
            else:
                self.parts.append(encoded)
            self.offset += len(encoded)
        self.row += -(-rows.shape[0] // cy)

    def finish(self) -> None:
        if self.fh is None:
            self.codec.write(self.key, self.codec._assemble(self.parts, self.index))
            self.parts = []
            return
        import google_crc32c

        raw = self.index.tobytes()
        self.fh.write(raw)
        self.fh.write(np.uint32(google_crc32c.value(raw)).astype("<u4").tobytes())
        self.fh.close()
        self.fh = None

    def abort(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None


class ChunkRowsWriter:
    """A block of an unsharded array written chunk row by chunk row (see :meth:`ChunkFiles.stream`)."""

    def __init__(self, files: ChunkFiles, t: int, c: int, z: int, y0: int, x0: int) -> None:
        self.files = files
        self.where = (t, c, z)
        self.iy0 = y0 // files.chunk[3]
        self.ix0 = x0 // files.chunk[4]
        self.row = 0

    def add(self, rows: np.ndarray) -> None:
        f = self.files
        cy, cx = f.chunk[3], f.chunk[4]
        t, c, z = self.where
        for iy, ix, chunk in _chunks_of(rows, cy, cx, f.dtype, f.fill_value):
            f.write(f._key(t, c, z, self.iy0 + self.row + iy, self.ix0 + ix), _encode_chunk(f.encode_fn, chunk))
        self.row += -(-rows.shape[0] // cy)

    def finish(self) -> None:
        pass

    def abort(self) -> None:
        pass


def _bytes_pipeline(codecs: list[Any], arr: Any) -> tuple[np.dtype, Any, Any] | None:
    """(stored dtype, encode, decode) for a v3 chunk pipeline ``[bytes, optional compressor]``,
    or None for anything else."""
    from zarr.codecs import BytesCodec

    if not codecs or not isinstance(codecs[0], BytesCodec) or len(codecs) > 2:
        return None
    pair: tuple[Any, Any] = (None, None)
    if len(codecs) == 2:
        found = _compressor(codecs[1])
        if found is None:
            return None
        pair = found
    dtype = np.dtype(arr.dtype)
    if dtype.itemsize > 1:
        endian = getattr(codecs[0].endian, "value", None)
        dtype = dtype.newbyteorder("<" if endian in (None, "little") else ">")
    return dtype, pair[0], pair[1]


def _fill(value: Any, dtype: np.dtype) -> Any:
    return np.asarray(value if value is not None else 0).astype(dtype).item()


def shard_codec(arr: Any, res: Resolved) -> ShardCodec | None:
    """A :class:`ShardCodec` for a zarr v3 array ``arr`` stored under ``res``, or None when its
    layout is not one this module writes (then use zarr itself)."""
    try:
        from zarr.codecs import BytesCodec, Crc32cCodec, ShardingCodec
        from zarr.core.chunk_key_encodings import DefaultChunkKeyEncoding

        meta = arr.metadata
        if getattr(meta, "zarr_format", None) != 3 or len(meta.codecs) != 1:
            return None
        sharding = meta.codecs[0]
        if not isinstance(sharding, ShardingCodec):
            return None
        if not isinstance(meta.chunk_key_encoding, DefaultChunkKeyEncoding):
            return None
        shard = tuple(int(s) for s in meta.chunk_grid.chunk_shape)
        chunk = tuple(int(s) for s in sharding.chunk_shape)
        if len(shard) != 5 or shard[:3] != (1, 1, 1) or chunk[:3] != (1, 1, 1):
            return None
        if shard[3] % chunk[3] or shard[4] % chunk[4]:
            return None
        pipeline = _bytes_pipeline(list(sharding.codecs), arr)
        if pipeline is None:
            return None
        dtype, encode_fn, decode_fn = pipeline
        index_codecs = list(sharding.index_codecs)
        if len(index_codecs) != 2 or not isinstance(index_codecs[0], BytesCodec) or not isinstance(index_codecs[1], Crc32cCodec):
            return None
        if getattr(index_codecs[0].endian, "value", "little") not in ("little", None):
            return None
        location = getattr(sharding.index_location, "value", str(sharding.index_location))
        return ShardCodec(
            res=_array_res(arr, res),
            shape=tuple(int(s) for s in meta.shape),
            shard=shard,
            chunk=chunk,
            dtype=dtype,
            fill_value=_fill(meta.fill_value, dtype),
            separator=meta.chunk_key_encoding.separator,
            index_at_start=location == "start",
            encode_fn=encode_fn,
            decode_fn=decode_fn,
        )
    except Exception:  # noqa: BLE001 - any surprise: let zarr do the work
        return None


def _array_res(arr: Any, res: Resolved) -> Resolved:
    path = res.path.rstrip("/")
    store_path = str(getattr(arr, "path", "") or "")
    if store_path:
        path = path + "/" + store_path.strip("/")
    return Resolved(res.fs, path, res.url, res.options)


def chunk_files(arr: Any, res: Resolved) -> ChunkFiles | None:
    """A :class:`ChunkFiles` for a zarr v2 array written by ``convert``, or None."""
    try:
        meta = arr.metadata
        if getattr(meta, "zarr_format", None) != 2 or meta.filters or meta.order != "C":
            return None
        if meta.dimension_separator != "/":
            return None
        chunk = tuple(int(s) for s in meta.chunks)
        if len(chunk) != 5 or chunk[:3] != (1, 1, 1):
            return None
        pair: tuple[Any, Any] = (None, None)
        if meta.compressor is not None:
            found = _numcodecs_pair(meta.compressor)
            if found is None:
                return None
            pair = found
        to_native = getattr(meta.dtype, "to_native_dtype", None)
        dtype = np.dtype(to_native() if to_native is not None else arr.dtype)  # stored byte order
        return ChunkFiles(
            res=_array_res(arr, res),
            shape=tuple(int(s) for s in meta.shape),
            chunk=chunk,
            dtype=dtype,
            fill_value=_fill(meta.fill_value, dtype),
            encode_fn=pair[0],
            decode_fn=pair[1],
        )
    except Exception:  # noqa: BLE001 - any surprise: let zarr do the work
        return None


def _v3_chunk_files(arr: Any, res: Resolved) -> ChunkFiles | None:
    """A :class:`ChunkFiles` for an unsharded zarr v3 array with "/" keys, or None."""
    try:
        from zarr.core.chunk_key_encodings import DefaultChunkKeyEncoding

        meta = arr.metadata
        if getattr(meta, "zarr_format", None) != 3 or not isinstance(meta.chunk_key_encoding, DefaultChunkKeyEncoding):
            return None
        if meta.chunk_key_encoding.separator != "/":
            return None
        chunk = tuple(int(s) for s in meta.chunk_grid.chunk_shape)
        if len(chunk) != 5 or chunk[:3] != (1, 1, 1):
            return None
        pipeline = _bytes_pipeline(list(meta.codecs), arr)
        if pipeline is None:
            return None
        dtype, encode_fn, decode_fn = pipeline
        return ChunkFiles(
            res=_array_res(arr, res),
            shape=tuple(int(s) for s in meta.shape),
            chunk=chunk,
            dtype=dtype,
            fill_value=_fill(meta.fill_value, dtype),
            encode_fn=encode_fn,
            decode_fn=decode_fn,
            prefix="c/",
        )
    except Exception:  # noqa: BLE001 - any surprise: let zarr do the work
        return None


def block_codec(arr: Any, res: Resolved) -> ShardCodec | ChunkFiles | None:
    """The fast whole-block path for a destination array, or None (then zarr writes)."""
    return shard_codec(arr, res) or chunk_files(arr, res) or _v3_chunk_files(arr, res)
