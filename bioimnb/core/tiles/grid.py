"""Tile grids and the storage work a request costs.

Tile ``(tx, ty)`` of a level of height ``H`` and width ``W`` covers level pixels
``[ty*T, min(H, (ty+1)*T)) x [tx*T, min(W, (tx+1)*T))`` (``T`` the tile size): edge tiles are
smaller, never padded.  :func:`tile_range` is the set of tiles a level-0 rectangle overlaps; the
browser's ``tileRange`` (``camera.ts``) computes the same and is tested against it.

:func:`chunks_touched` counts the storage chunks (zarr chunks, TIFF tiles or strips) a region
read opens, so that a request can be refused *before* it reads (:func:`check_chunks`): a file
cut into 1 x 1 chunks would otherwise make one 256 x 256 tile open 65,536 chunks (41 s), and
``limits().max_chunks_per_request`` bounds that for every tile, ``values`` and ``histogram``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..errors import BioimnbError
from ..limits import limits

__all__ = [
    "OutOfRange",
    "TooManyChunks",
    "check_chunks",
    "chunks_touched",
    "tile_bounds",
    "tile_range",
]


class OutOfRange(BioimnbError, IndexError):
    """A scene, level, plane, channel, tile or pixel index outside the image."""


class TooManyChunks(BioimnbError, ValueError):
    """A request would open more storage chunks than ``limits().max_chunks_per_request``."""


def tile_bounds(
    height: int, width: int, tile_size: int, tx: int, ty: int
) -> tuple[int, int, int, int] | None:
    """``(y0, y1, x0, x1)`` of tile ``(tx, ty)`` in level pixels, ``None`` outside the level."""
    y0, x0 = ty * tile_size, tx * tile_size
    if not (0 <= x0 < width and 0 <= y0 < height):
        return None
    return y0, min(height, y0 + tile_size), x0, min(width, x0 + tile_size)


def tile_range(
    height: int,
    width: int,
    downsample: tuple[float, float],
    tile_size: int,
    rect: tuple[float, float, float, float],
) -> tuple[int, int, int, int] | None:
    """``(tx0, tx1, ty0, ty1)`` (inclusive) of the tiles of a ``height`` x ``width`` level with
    ``downsample = (dy, dx)`` that overlap the level-0 rectangle ``rect = (x0, y0, x1, y1)``
    (corners in any order); ``None`` when it misses the level or is empty.

    ``lx0 = max(0, x0 / dx)``, ``lx1 = min(W, x1 / dx)``; ``tx0 = floor(lx0 / T)``,
    ``tx1 = ceil(lx1 / T) - 1`` (the same in Y), as the browser's ``tileRange``.
    """
    dy, dx = downsample
    xa, xb = sorted((rect[0], rect[2]))
    ya, yb = sorted((rect[1], rect[3]))
    lx0, lx1 = max(0.0, xa / dx), min(float(width), xb / dx)
    ly0, ly1 = max(0.0, ya / dy), min(float(height), yb / dy)
    if lx1 <= lx0 or ly1 <= ly0:
        return None
    ts = tile_size
    return (
        math.floor(lx0 / ts),
        math.ceil(lx1 / ts) - 1,
        math.floor(ly0 / ts),
        math.ceil(ly1 / ts) - 1,
    )


def _axis_chunks(start: int, stop: int, chunk: int, stride: int = 1) -> int:
    """Distinct chunks of edge ``chunk`` holding the indices ``start*stride, (start+1)*stride,
    ..., (stop-1)*stride``."""
    if stop <= start:
        return 0
    chunk = max(1, int(chunk))
    if stride >= chunk:
        return stop - start  # every sample in a chunk of its own
    return ((stop - 1) * stride) // chunk - (start * stride) // chunk + 1


def chunks_touched(
    chunk_shape: Sequence[int],
    ranges: Sequence[tuple[int, int]],
    strides: Sequence[int] | None = None,
) -> int:
    """How many storage chunks a region read opens: ``ranges`` are ``(start, stop)`` per axis
    (in the order of ``chunk_shape``; missing trailing axes are whole, one chunk), ``strides``
    the sampling step per axis in the stored array (virtual pyramid levels sample level 0 with
    a stride)."""
    total = 1
    for i, (start, stop) in enumerate(ranges):
        stride = strides[i] if strides is not None else 1
        total *= _axis_chunks(int(start), int(stop), int(chunk_shape[i]), int(stride))
        if total == 0:
            return 0
    return total


def check_chunks(source: object, what: str, count: int) -> None:
    """Refuse (:class:`TooManyChunks`) a request for ``what`` that would open ``count`` chunks
    when that exceeds ``limits().max_chunks_per_request``."""
    limit = limits().max_chunks_per_request
    if count > limit:
        raise TooManyChunks(
            source,
            f"{what} would read {count:,} chunks, over the limit of {limit:,}; "
            "the file's chunks are too small to preview",
        )
