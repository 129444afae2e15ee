"""Work units that run where the executor puts them (threads here, or dask workers).

Everything a block task needs travels as plain, picklable data (:class:`Job`, :class:`Block`);
each process opens the source image and destination arrays once and keeps them in a small
cache, so a distributed worker pays the header parsing once, not per block.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..storage import resolve
from .downsample import reduce_block
from .plan import Block
from .shards import ChunkFiles, ShardCodec, block_codec

__all__ = ["Job", "block_digest", "open_dest_array", "run_block", "source_digest", "verify_block"]

_LOCK = threading.Lock()
_SOURCES: dict[str, Any] = {}
_ARRAYS: dict[str, Any] = {}
_CODECS: dict[str, Any] = {}


@dataclass(frozen=True)
class Job:
    source: str
    source_options: str
    """JSON of the source storage options (may hold credentials; never shown)."""
    scene: int
    samples: int
    dest: str
    dest_options: str
    array_path: str
    prev_path: str | None
    factors: tuple[int, int, int]
    method: str
    fused_paths: tuple[str, ...] = ()
    """Arrays of levels 1..k built in memory from a level-0 block in the same task."""
    source_version: str = ""
    """A digest of the source's identity (sizes, mtimes or ETags of its files) when the run
    started: a worker reopens a source whose version changed instead of reading through an old
    handle (a file replaced on disk would otherwise be read as it was)."""


def _source(job: Job) -> Any:
    base = job.source + "\0" + job.source_options + "\0"
    key = base + job.source_version
    with _LOCK:
        img = _SOURCES.get(key)
        if img is None:
            from ..images import open_image

            img = open_image(job.source, **json.loads(job.source_options))
            # Older versions are dropped, not closed: a task still reading one keeps it alive.
            for old in [k for k in _SOURCES if k.startswith(base)]:
                del _SOURCES[old]
            _SOURCES[key] = img
    return img.select_scene(job.scene)


def open_dest_array(dest: str, dest_options: str, path: str) -> Any:
    key = "\0".join((dest, dest_options, path))
    with _LOCK:
        arr = _ARRAYS.get(key)
        if arr is None:
            import zarr

            from .stores import open_store

            # Every block holds image data: skip zarr's per-chunk "is it all fill value?" scan.
            arr = zarr.open_array(
                open_store(dest, json.loads(dest_options)), path=path, mode="r+", config={"write_empty_chunks": True}
            )
            _ARRAYS[key] = arr
    return arr


def dest_codec(dest: str, dest_options: str, path: str) -> ShardCodec | ChunkFiles | None:
    """The whole-block codec of a destination array, or None when zarr must do the writing."""
    key = "\0".join((dest, dest_options, path))
    with _LOCK:
        if key in _CODECS:
            return _CODECS[key]  # type: ignore[no-any-return]
    arr = open_dest_array(dest, dest_options, path)
    codec = block_codec(arr, resolve(dest, **json.loads(dest_options)))
    with _LOCK:
        _CODECS[key] = codec
    return codec


def forget(dest: str) -> None:
    """Drop cached handles of a destination (after it was deleted or rewritten)."""
    with _LOCK:
        for cache in (_ARRAYS, _CODECS):
            for key in [k for k in cache if k.startswith(dest + "\0")]:
                del cache[key]


class Digest:
    """SHA-256 of a block's pixels fed row band by row band: equals :func:`block_digest` of the
    whole block (its header names the whole block's dtype and shape; C order is row order)."""

    def __init__(self, dtype: np.dtype, shape: tuple[int, int]) -> None:
        dtype = np.dtype(dtype)
        if dtype.byteorder == ">" or (dtype.byteorder == "=" and not np.little_endian):
            dtype = dtype.newbyteorder("<")
        self.dtype = dtype
        self.h = hashlib.sha256()
        self.h.update(str(dtype.str).encode() + str(tuple(shape)).encode())

    def update(self, rows: np.ndarray) -> None:
        a = np.ascontiguousarray(rows)
        if a.dtype != self.dtype:
            a = a.astype(self.dtype)
        self.h.update(a.data.cast("B"))

    def hexdigest(self) -> str:
        return self.h.hexdigest()


def block_digest(data: np.ndarray) -> str:
    """Checksum of a block's pixels, independent of memory layout and byte order."""
    # SHA-256: a standard checksum for provenance, and hardware-accelerated on current CPUs
    # (about twice blake2b's speed here).
    d = Digest(data.dtype, data.shape)  # type: ignore[arg-type]
    d.update(data)
    return d.hexdigest()


def _band_rows(job: Job, block: Block) -> int:
    """Rows of one band: one chunk row of the level (so each band is whole chunks)."""
    out = open_dest_array(job.dest, job.dest_options, job.array_path)
    return max(1, int(out.chunks[3]))


def verify_block(job: Job, block: Block) -> tuple[str, str]:
    """Re-read one written level-0 block from the output, chunk row by chunk row; returns
    (block key, digest), or (block key, "unreadable: <why>") when the stored bytes do not decode."""
    codec = dest_codec(job.dest, job.dest_options, job.array_path)
    h, w = block.y1 - block.y0, block.x1 - block.x0
    if codec is not None and codec.aligned(block.y0, block.y1, block.x0, block.x1):
        arr = open_dest_array(job.dest, job.dest_options, job.array_path)
        digest = Digest(arr.dtype, (h, w))
        try:
            for rows in codec.read_rows(block.t, block.c, block.z, block.y0, block.x0, h, w):
                digest.update(rows)
                del rows
        except Exception as exc:  # noqa: BLE001 - any failure to read back is a failed check
            return block.key, f"unreadable: {exc}"
        return block.key, digest.hexdigest()
    arr = open_dest_array(job.dest, job.dest_options, job.array_path)
    data = np.asarray(arr[block.t, block.c, block.z, block.y0 : block.y1, block.x0 : block.x1])
    return block.key, block_digest(data)


def _read_source(job: Job, block: Block, y0: int, y1: int) -> np.ndarray:
    img = _source(job)
    ys, xs = slice(y0, y1), slice(block.x0, block.x1)
    if job.samples > 1:
        c, s = divmod(block.c, job.samples)
        return img.read(0, t=block.t, c=c, z=block.z, y=ys, x=xs, s=s)
    return img.read(0, t=block.t, c=block.c, z=block.z, y=ys, x=xs)


def read_source_block(job: Job, block: Block) -> np.ndarray:
    return _read_source(job, block, block.y0, block.y1)


def _source_bands(job: Job, block: Block, dtype: np.dtype, band: int) -> Any:
    expected_w = block.x1 - block.x0
    for y0 in range(block.y0, block.y1, band):
        y1 = min(block.y1, y0 + band)
        data = np.asarray(_read_source(job, block, y0, y1), dtype=dtype)
        if data.shape != (y1 - y0, expected_w):
            raise ValueError(f"block {block.key}: got shape {data.shape} for rows {y0}-{y1}, expected {(y1 - y0, expected_w)}")
        yield data
        del data  # one band alive at a time: not this one while the next is read


def source_digest(job: Job, block: Block) -> str:
    """Digest of one level-0 block as the source reads now (resume and verification checks),
    read one chunk row at a time."""
    out = open_dest_array(job.dest, job.dest_options, job.array_path)
    digest = Digest(out.dtype, (block.y1 - block.y0, block.x1 - block.x0))
    for data in _source_bands(job, block, np.dtype(out.dtype), _band_rows(job, block)):
        digest.update(data)
        del data
    return digest.hexdigest()


class _WholeBlock:
    """Fallback writer for layouts the fast path does not handle: collects the block, zarr writes it."""

    def __init__(self, job: Job, path: str, t: int, c: int, z: int, y0: int, x0: int) -> None:
        self.args = (job, path, t, c, z, y0, x0)
        self.rows: list[np.ndarray] = []

    def add(self, rows: np.ndarray) -> None:
        self.rows.append(np.array(rows))

    def finish(self) -> None:
        job, path, t, c, z, y0, x0 = self.args
        data = np.concatenate(self.rows) if len(self.rows) > 1 else self.rows[0]
        self.rows = []
        out = open_dest_array(job.dest, job.dest_options, path)
        out[t, c, z, y0 : y0 + data.shape[0], x0 : x0 + data.shape[1]] = data

    def abort(self) -> None:
        self.rows = []


def _writer(job: Job, path: str, t: int, c: int, z: int, y0: int, x0: int, h: int, w: int) -> Any:
    codec = dest_codec(job.dest, job.dest_options, path)
    if codec is not None and codec.aligned(y0, y0 + h, x0, x0 + w):
        return codec.stream(t, c, z, y0, x0)
    return _WholeBlock(job, path, t, c, z, y0, x0)


class _Cascade:
    """Level 0 and the fused levels of one block, built as row bands flow through: each level
    fills one chunk row buffer; a full chunk row is written and its 2 x 2 reduction (computed in
    strips, so its temporaries stay small) handed to the next level.  Reducing in even-height
    pieces equals reducing the whole block (2 x 2 windows never straddle two pieces)."""

    STRIP = 256
    """Rows reduced at a time (even)."""

    def __init__(self, job: Job, block: Block) -> None:
        self.job = job
        self.writers: list[Any] = []
        self.chunk_rows: list[int] = []
        self.widths: list[int] = []
        self.bufs: list[np.ndarray | None] = []
        self.filled: list[int] = []
        h, w = block.y1 - block.y0, block.x1 - block.x0
        for k, path in enumerate((job.array_path, *job.fused_paths)):
            arr = open_dest_array(job.dest, job.dest_options, path)
            self.writers.append(_writer(job, path, block.t, block.c, block.z, block.y0 >> k, block.x0 >> k, h, w))
            self.chunk_rows.append(max(1, int(arr.chunks[3])))
            self.widths.append(w)
            self.bufs.append(None)
            self.filled.append(0)
            h, w = -(-h // 2), -(-w // 2)

    def _reduce(self, rows: np.ndarray) -> np.ndarray:
        h, w = rows.shape
        out = np.empty((-(-h // 2), -(-w // 2)), dtype=rows.dtype)
        for r in range(0, h, self.STRIP):
            part = reduce_block(rows[None, r : r + self.STRIP], (1, 2, 2), self.job.method)[0]
            out[r // 2 : r // 2 + part.shape[0]] = part
        return out

    def _emit(self, k: int, rows: np.ndarray) -> None:
        self.writers[k].add(rows)
        if k + 1 < len(self.writers):
            self._take(k + 1, self._reduce(rows))

    def _take(self, k: int, rows: np.ndarray) -> None:
        cy = self.chunk_rows[k]
        while rows.shape[0]:
            if self.filled[k] == 0 and rows.shape[0] >= cy:
                self._emit(k, rows[:cy])
                rows = rows[cy:]
                continue
            buf = self.bufs[k]
            if buf is None:
                buf = self.bufs[k] = np.empty((cy, self.widths[k]), dtype=rows.dtype)
            n = min(cy - self.filled[k], rows.shape[0])
            buf[self.filled[k] : self.filled[k] + n] = rows[:n]
            self.filled[k] += n
            rows = rows[n:]
            if self.filled[k] == cy:
                self.filled[k] = 0
                self._emit(k, buf)

    def push(self, rows: np.ndarray) -> None:
        self._take(0, rows)

    def finish(self) -> None:
        for k in range(len(self.writers)):
            buf = self.bufs[k]
            if self.filled[k] and buf is not None:
                n, self.filled[k] = self.filled[k], 0
                self._emit(k, buf[:n])
        for wr in self.writers:
            wr.finish()

    def abort(self) -> None:
        for wr in self.writers:
            wr.abort()


def run_block(job: Job, block: Block) -> tuple[str, str, int]:
    """Write one block of one level; returns (block key, level-0 digest or "", raw bytes).

    Level-0 blocks stream: the source is read one chunk row at a time, each row is hashed,
    encoded into the level-0 shard and reduced into the fused levels as it comes, so a task
    holds about one chunk row per level instead of the whole shard (see BENCHMARKS.md)."""
    out = open_dest_array(job.dest, job.dest_options, job.array_path)
    h, w = block.y1 - block.y0, block.x1 - block.x0
    if job.prev_path is None:
        digest = Digest(out.dtype, (h, w)) if block.level == 0 else None
        cascade = _Cascade(job, block)
        try:
            for rows in _source_bands(job, block, np.dtype(out.dtype), _band_rows(job, block)):
                if digest is not None:
                    digest.update(rows)
                cascade.push(rows)
                del rows
            cascade.finish()
        except BaseException:
            cascade.abort()
            raise
        return block.key, digest.hexdigest() if digest is not None else "", h * w * np.dtype(out.dtype).itemsize
    # A level built from the previous one (beyond the fused levels): read the previous level
    # two chunk rows at a time, reduce, and stream into this level's shard.
    prev = open_dest_array(job.dest, job.dest_options, job.prev_path)
    fz, fy, fx = job.factors
    pz, py, px = prev.shape[2], prev.shape[3], prev.shape[4]
    band = _band_rows(job, block)
    writer = _writer(job, job.array_path, block.t, block.c, block.z, block.y0, block.x0, h, w)
    try:
        for y0 in range(block.y0, block.y1, band):
            y1 = min(block.y1, y0 + band)
            region = prev[
                block.t,
                block.c,
                block.z * fz : min(pz, (block.z + 1) * fz),
                y0 * fy : min(py, y1 * fy),
                block.x0 * fx : min(px, block.x1 * fx),
            ]
            data = np.asarray(reduce_block(np.asarray(region), (fz, fy, fx), job.method)[0], dtype=out.dtype)
            del region
            if data.shape != (y1 - y0, w):
                raise ValueError(f"block {block.key}: got shape {data.shape} for rows {y0}-{y1}, expected {(y1 - y0, w)}")
            writer.add(data)
            del data
        writer.finish()
    except BaseException:
        writer.abort()
        raise
    return block.key, "", h * w * np.dtype(out.dtype).itemsize
