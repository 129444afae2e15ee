"""Direct TIFF tile/strip reads: decode in the calling thread, read with ``os.pread``.

tifffile's zarr view routes every decode through zarr's single event-loop thread, so reads from
several threads (a conversion's workers, a tile server's pool) queue up behind one core, and the
zarr layer adds ~0.5 ms per tile.  For the common layouts (local file; tiled or stripped; one
sample plane or contiguous samples; no tile depth) this reader finds the segments a region
touches, reads them with ``os.pread`` (no shared file position, no lock) and decodes them with
the page's own decoder, in parallel when several threads call it.  Everything else keeps using
the zarr view.
"""

from __future__ import annotations

import itertools
import os
import threading
from typing import Any

import numpy as np

__all__ = ["DirectTiffLevel", "direct_level"]

# Compression codes whose segments decode independently with TiffPage.decode.
_SAFE_COMPRESSION = {1, 5, 7, 8, 32946, 50000, 50001, 34887, 34925, 34933, 34934}


class _FD:
    """One read-only descriptor per file, shared by its levels; closed with the backend."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDONLY)
        self.lock = threading.Lock()

    def pread(self, offset: int, count: int) -> bytes:
        return os.pread(self.fd, count, offset)

    def close(self) -> None:
        with self.lock:
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1


def direct_level(level_series: Any, fd: _FD) -> DirectTiffLevel | None:
    """A direct reader for a tifffile level, or None when its layout needs the zarr view."""
    kf = level_series.keyframe
    axes = level_series.axes
    samples = int(kf.samplesperpixel)
    try:
        if kf.imagedepth != 1 or int(kf.compression) not in _SAFE_COMPRESSION:
            return None
        if samples > 1 and (int(kf.planarconfig) != 1 or not axes.endswith("YXS")):
            return None
        if samples == 1 and not axes.endswith("YX"):
            return None
        chunks = tuple(int(c) for c in kf.chunks)
        chunked = tuple(int(c) for c in kf.chunked)
    except (AttributeError, TypeError, ValueError):
        return None
    if len(chunks) != (3 if samples > 1 else 2) or len(chunked) != len(chunks):
        return None
    lead = tuple(int(s) for s in level_series.shape[: len(axes) - (3 if samples > 1 else 2)])
    if int(np.prod(lead, dtype=np.int64)) != len(level_series.pages):
        return None
    if getattr(kf, "jpegheader", None) or getattr(kf, "is_ndpi", False):
        return None
    return DirectTiffLevel(level_series, fd, lead, chunks, chunked, samples)


class DirectTiffLevel:
    """A TIFF level as an array-like over its native axes (``lead... Y X [S]``)."""

    def __init__(self, series: Any, fd: _FD, lead: tuple[int, ...], chunks: tuple[int, ...], chunked: tuple[int, ...], samples: int) -> None:
        self.series = series
        self.fd = fd
        self.lead = lead
        self.keyframe = series.keyframe
        self.samples = samples
        self.shape = tuple(int(s) for s in series.shape)
        self.dtype = np.dtype(series.dtype)
        self.ndim = len(self.shape)
        self.tile = chunks[:2]
        self.grid = chunked[:2]
        self.chunks = (1,) * len(lead) + self.tile + ((samples,) if samples > 1 else ())
        self.jpegtables = getattr(self.keyframe, "jpegtables", None)
        self._pages = series.pages
        self._page_lock = threading.Lock()

    def _page(self, index: int) -> Any:
        with self._page_lock:  # tifffile loads frames lazily and is not thread-safe doing so
            return self._pages[index]

    def _segment(self, page: Any, index: int) -> np.ndarray:
        """Decoded tile/strip ``index`` of ``page`` as (h, w, s), cropped to the image."""
        th, tw = self.tile
        ny, nx = self.grid
        h, w = self.shape[len(self.lead)], self.shape[len(self.lead) + 1]
        r, c = divmod(index, nx)
        hh, ww = min(th, h - r * th), min(tw, w - c * tw)
        offset = int(page.dataoffsets[index])
        count = int(page.databytecounts[index])
        if count == 0 or offset == 0:
            return np.zeros((hh, ww, self.samples), self.dtype)
        data = self.fd.pread(offset, count)
        if len(data) < count:
            raise OSError(f"file ends inside image data (segment {index} of a page)")
        kwargs = {"jpegtables": self.jpegtables} if self.jpegtables else {}
        seg, _, _ = self.keyframe.decode(data, index, **kwargs)
        seg = np.asarray(seg).reshape(-1, seg.shape[-3], seg.shape[-2], seg.shape[-1])[0]
        return seg[:hh, :ww]

    def __getitem__(self, key: Any) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        key = key + (slice(None),) * (self.ndim - len(key))
        nlead = len(self.lead)
        picks: list[np.ndarray] = []
        drop: list[int] = []
        for axis, (k, n) in enumerate(zip(key, self.shape, strict=True)):
            if isinstance(k, slice):
                picks.append(np.arange(*k.indices(n)))
            else:
                i = int(k)
                i = i + n if i < 0 else i
                if not 0 <= i < n:
                    raise IndexError(f"index {k} out of range for axis of length {n}")
                picks.append(np.array([i]))
                drop.append(axis)
        ys, xs = picks[nlead], picks[nlead + 1]
        s_pick = picks[nlead + 2] if self.samples > 1 else None
        out_shape = tuple(len(p) for p in picks[: nlead + 2]) + ((self.samples,) if self.samples > 1 else (1,))
        out = np.zeros(out_shape, self.dtype)
        th, tw = self.tile
        nx = self.grid[1]
        # Selected rows/columns form arithmetic progressions, so each segment contributes a
        # contiguous block of the output and a strided block of the segment: plain slices.
        yparts = _parts(ys, th, _step(key[nlead]))
        xparts = _parts(xs, tw, _step(key[nlead + 1]))
        for lead_pos in itertools.product(*(range(len(p)) for p in picks[:nlead])):
            lead_idx = tuple(int(picks[a][i]) for a, i in enumerate(lead_pos))
            page_index = int(np.ravel_multi_index(lead_idx, self.lead)) if nlead else 0
            page = self._page(page_index)
            if page is None:
                continue
            target = out[lead_pos]
            for r, yout, yseg in yparts:
                for c, xout, xseg in xparts:
                    seg = self._segment(page, r * nx + c)
                    target[yout, xout] = seg[yseg, xseg]
        if self.samples > 1:
            assert s_pick is not None
            out = out[..., s_pick]
        else:
            out = out[..., 0]
        return out.squeeze(axis=tuple(drop)) if drop else out


def _step(k: Any) -> int:
    return int(k.step or 1) if isinstance(k, slice) else 1


def _parts(idx: np.ndarray, size: int, step: int) -> list[tuple[int, slice, slice]]:
    """For sorted, evenly spaced indices: (segment, output slice, in-segment slice) triples."""
    out: list[tuple[int, slice, slice]] = []
    if not len(idx):
        return out
    seg_of = idx // size
    bounds = np.flatnonzero(np.diff(seg_of)) + 1
    starts = np.concatenate(([0], bounds))
    ends = np.concatenate((bounds, [len(idx)]))
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        seg = int(seg_of[a])
        first = int(idx[a]) - seg * size
        out.append((seg, slice(a, b), slice(first, first + (b - a - 1) * step + 1, step)))
    return out
