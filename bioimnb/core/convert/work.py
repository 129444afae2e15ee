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


def _source(job: Job) -> Any:
    key = job.source + "\0" + job.source_options
    with _LOCK:
        img = _SOURCES.get(key)
        if img is None:
            from ..images import open_image

            img = open_image(job.source, **json.loads(job.source_options))
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


def _write(job: Job, path: str, t: int, c: int, z: int, y0: int, x0: int, data: np.ndarray) -> None:
    """Store one block: as one encoded shard when it is exactly one, else through zarr."""
    codec = dest_codec(job.dest, job.dest_options, path)
    y1, x1 = y0 + data.shape[0], x0 + data.shape[1]
    if codec is not None and codec.aligned(y0, y1, x0, x1):
        codec.write_block(t, c, z, y0, x0, data)
        return
    out = open_dest_array(job.dest, job.dest_options, path)
    out[t, c, z, y0:y1, x0:x1] = data


def block_digest(data: np.ndarray) -> str:
    """Checksum of a block's pixels, independent of memory layout and byte order."""
    a = np.ascontiguousarray(data)
    if a.dtype.byteorder == ">" or (a.dtype.byteorder == "=" and not np.little_endian):
        a = a.astype(a.dtype.newbyteorder("<"))
    # SHA-256: a standard checksum for provenance, and hardware-accelerated on current CPUs
    # (about twice blake2b's speed here).
    h = hashlib.sha256()
    h.update(str(a.dtype.str).encode() + str(a.shape).encode())
    h.update(a.data.cast("B"))
    return h.hexdigest()


def verify_block(job: Job, block: Block) -> tuple[str, str]:
    """Re-read one written level-0 block from the output; returns (block key, digest)."""
    codec = dest_codec(job.dest, job.dest_options, job.array_path)
    if codec is not None and codec.aligned(block.y0, block.y1, block.x0, block.x1):
        try:
            data = codec.read_block(block.t, block.c, block.z, block.y0, block.x0, block.y1 - block.y0, block.x1 - block.x0)
        except Exception as exc:  # noqa: BLE001 - any failure to read back is a failed check
            return block.key, f"unreadable: {exc}"
    else:
        arr = open_dest_array(job.dest, job.dest_options, job.array_path)
        data = np.asarray(arr[block.t, block.c, block.z, block.y0 : block.y1, block.x0 : block.x1])
    return block.key, block_digest(data)


def read_source_block(job: Job, block: Block) -> np.ndarray:
    img = _source(job)
    ys, xs = slice(block.y0, block.y1), slice(block.x0, block.x1)
    if job.samples > 1:
        c, s = divmod(block.c, job.samples)
        return img.read(0, t=block.t, c=c, z=block.z, y=ys, x=xs, s=s)
    return img.read(0, t=block.t, c=block.c, z=block.z, y=ys, x=xs)


def source_digest(job: Job, block: Block) -> str:
    """Digest of one level-0 block as the source reads now (resume and verification checks)."""
    return block_digest(read_source_block(job, block))


def run_block(job: Job, block: Block) -> tuple[str, str, int]:
    """Write one block of one level; returns (block key, level-0 digest or "", raw bytes)."""
    out = open_dest_array(job.dest, job.dest_options, job.array_path)
    if job.prev_path is None:
        data = read_source_block(job, block)
    else:
        prev = open_dest_array(job.dest, job.dest_options, job.prev_path)
        fz, fy, fx = job.factors
        pz, py, px = prev.shape[2], prev.shape[3], prev.shape[4]
        region = prev[
            block.t,
            block.c,
            block.z * fz : min(pz, (block.z + 1) * fz),
            block.y0 * fy : min(py, block.y1 * fy),
            block.x0 * fx : min(px, block.x1 * fx),
        ]
        data = reduce_block(np.asarray(region), (fz, fy, fx), job.method)[0]
    data = np.asarray(data, dtype=out.dtype)
    expected = (block.y1 - block.y0, block.x1 - block.x0)
    if data.shape != expected:
        raise ValueError(f"block {block.key}: got shape {data.shape}, expected {expected}")
    _write(job, job.array_path, block.t, block.c, block.z, block.y0, block.x0, data)
    digest = block_digest(data) if block.level == 0 else ""
    current = data
    for k, path in enumerate(job.fused_paths, start=1):
        current = reduce_block(current[None], (1, 2, 2), job.method)[0]
        _write(job, path, block.t, block.c, block.z, block.y0 >> k, block.x0 >> k, current)
    return block.key, digest, int(data.nbytes)
