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
import zlib
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

import numpy as np

from ..errors import BioimnbError, CorruptFile
from ..limits import limits
from ..storage import open_confined

__all__ = ["DirectTiffLevel", "FilePool", "decode_limit_error", "direct_level"]

# Compression codes whose segments decode independently with TiffPage.decode.
_SAFE_COMPRESSION = {1, 5, 7, 8, 32946, 50000, 50001, 34887, 34925, 34933, 34934}
# Codecs a strip larger than the decode limit can still be read from, a band of rows at a time.
_ROW_STREAMABLE = {1, 8, 32946}
# ... up to this many times the decode limit (beyond, even reading the last rows once costs too
# much time to be worth it: such a strip is refused like any other).
_STREAM_FACTOR = 8


def decode_limit_error(source: object, kind: str, nbytes: int) -> CorruptFile:
    return CorruptFile(
        source, f"a {kind} of {nbytes} bytes exceeds the decode limit of {limits().max_decode_bytes} bytes"
    )


class _FD:
    """One read-only descriptor per file, shared by its levels; closed with the backend.

    Made from a file opened with :func:`~bioimnb.core.storage.open_confined` (a regular file,
    inside the root), so reads never block on a FIFO nor reach a file a link swapped in later.
    """

    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh
        self.fd = fh.fileno()
        self.size = os.fstat(self.fd).st_size
        self.lock = threading.Lock()

    @classmethod
    def open(cls, path: str, root: str | None = None, source: object = None) -> _FD:
        return cls(open_confined(path, root, source))

    def pread(self, offset: int, count: int) -> bytes:
        return os.pread(self.fd, count, offset)

    def close(self) -> None:
        with self.lock:
            if self.fd >= 0:
                self.fh.close()
                self.fd = -1


class FilePool:
    """The descriptors of every file a (multi-file) TIFF's pages live in, by tifffile parent.

    The master's pages read through ``master``; a companion member's pages through its own
    file, opened confined to ``root`` on first use (its path is the one tifffile opened, which
    the TIFF reader has already checked lies inside the root)."""

    def __init__(self, master_tif: Any, master: _FD, root: str | None, source: object) -> None:
        self.master_tif = master_tif
        self.root = root
        self.source = source
        self._fds: dict[int, _FD] = {id(master_tif): master}
        self._keep: list[Any] = [master_tif]
        self._lock = threading.Lock()

    def add(self, parent: Any, fd: _FD) -> None:
        with self._lock:
            self._fds[id(parent)] = fd
            self._keep.append(parent)

    def for_page(self, page: Any) -> _FD:
        parent = page.parent
        fd = self._fds.get(id(parent))
        if fd is not None:
            return fd
        with self._lock:
            fd = self._fds.get(id(parent))
            if fd is None:
                fd = _FD.open(parent.filehandle.path, self.root, self.source)
                self._fds[id(parent)] = fd
                self._keep.append(parent)  # keeps id(parent) unique while the pool lives
            return fd

    def close(self) -> None:
        with self._lock:
            for fd in self._fds.values():
                fd.close()


def direct_level(level_series: Any, pool: FilePool, source: object = None) -> DirectTiffLevel | None:
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
    return DirectTiffLevel(level_series, pool, lead, chunks, chunked, samples, source)


class DirectTiffLevel:
    """A TIFF level as an array-like over its native axes (``lead... Y X [S]``).

    Each page is read from the file it lives in (multi-file OME-TIFF members included).  A tile
    or strip is decoded only if its declared decoded size is within
    :func:`~bioimnb.core.limits.limits` ``.max_decode_bytes``, into a buffer of that size (the
    codecs get ``out=``), so a stream that lies about its length cannot grow past it.  Larger
    uncompressed or deflate strips (up to ``_STREAM_FACTOR`` times the limit) are read as a
    stream keeping only the rows asked for; anything else is refused with a one-line error.
    """

    def __init__(
        self,
        series: Any,
        pool: FilePool | _FD,
        lead: tuple[int, ...],
        chunks: tuple[int, ...],
        chunked: tuple[int, ...],
        samples: int,
        source: object = None,
    ) -> None:
        self.series = series
        self._fd_for: Callable[[Any], _FD] = pool.for_page if isinstance(pool, FilePool) else (lambda page: pool)
        self.source = source
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
        kf = self.keyframe
        self.kind = "tile" if kf.is_tiled else "strip"
        self.segment_bytes = int(self.tile[0]) * int(self.tile[1]) * samples * self.dtype.itemsize
        self.file_dtype = self.dtype.newbyteorder(kf.parent.byteorder) if self.dtype.itemsize > 1 else self.dtype
        self.streamable = (
            not kf.is_tiled
            and int(kf.compression) in _ROW_STREAMABLE
            and int(kf.fillorder) == 1
            and (int(kf.predictor) == 1 or (int(kf.predictor) == 2 and self.dtype.kind in "iu"))
            and int(kf.bitspersample) == 8 * self.dtype.itemsize
        )
        self._pages = series.pages
        self._page_lock = threading.Lock()

    def _page(self, index: int) -> Any:
        with self._page_lock:  # tifffile loads frames lazily and is not thread-safe doing so
            try:
                return self._pages[index]
            except Exception as exc:  # noqa: BLE001 - a damaged IFD fails in many ways
                raise CorruptFile(self.source, f"cannot read page {index} ({type(exc).__name__}: {exc})") from exc

    def _truncated(self, fd: _FD, end: int) -> CorruptFile:
        return CorruptFile(
            self.source, f"truncated: a {self.kind} runs to byte {end} but its file has {fd.size} bytes"
        )

    def _segment(self, page: Any, index: int, rows: slice) -> np.ndarray:
        """Rows ``rows`` of decoded tile/strip ``index`` of ``page`` as (n, w, s), cropped to the image."""
        th, tw = self.tile
        ny, nx = self.grid
        h, w = self.shape[len(self.lead)], self.shape[len(self.lead) + 1]
        r, c = divmod(index, nx)
        hh, ww = min(th, h - r * th), min(tw, w - c * tw)
        wanted = range(*rows.indices(hh))
        offsets, counts = page.dataoffsets, page.databytecounts
        if index >= len(offsets) or index >= len(counts):
            raise CorruptFile(
                self.source, f"a page lists {min(len(offsets), len(counts))} {self.kind}s where its size needs {ny * nx}"
            )
        offset = int(offsets[index])
        count = int(counts[index])
        if count == 0 or offset == 0:
            return np.zeros((len(wanted), ww, self.samples), self.dtype)
        fd = self._fd_for(page)
        if offset < 0 or count < 0 or offset + count > fd.size:
            raise self._truncated(fd, offset + count)
        cap = limits().max_decode_bytes
        if self.segment_bytes > cap or count > cap:
            if (
                self.streamable
                and ww * self.samples * self.dtype.itemsize <= cap
                and max(self.segment_bytes, count) <= _STREAM_FACTOR * cap
            ):
                return self._rows(fd, offset, count, wanted, ww)
            raise decode_limit_error(self.source, self.kind, max(self.segment_bytes, count))
        data = fd.pread(offset, count)
        if len(data) < count:
            raise self._truncated(fd, offset + count)
        kwargs = {"jpegtables": self.jpegtables} if self.jpegtables else {}
        try:
            seg, _, _ = self.keyframe.decode(data, index, **kwargs)
            seg = np.asarray(seg).reshape(-1, seg.shape[-3], seg.shape[-2], seg.shape[-1])[0]
        except Exception as exc:  # noqa: BLE001 - every codec has its own error types
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise CorruptFile(self.source, f"cannot decode a {self.kind} ({type(exc).__name__}: {first[:200]})") from exc
        return seg[:hh, :ww][rows]

    def _rows(self, fd: _FD, offset: int, count: int, wanted: range, width: int) -> np.ndarray:
        """Selected rows of a strip too large to decode whole: read (uncompressed) or inflated
        (deflate) as a stream, keeping only the rows asked for; memory follows the output."""
        rowbytes = width * self.samples * self.dtype.itemsize
        out = np.empty((len(wanted), width, self.samples), self.file_dtype)
        flat = out.reshape(len(wanted), rowbytes // self.dtype.itemsize).view(np.uint8)
        if not len(wanted):
            return out.astype(self.dtype)
        compression = int(self.keyframe.compression)
        if compression == 1:
            for i, row in enumerate(wanted):
                start = offset + row * rowbytes
                data = fd.pread(start, rowbytes) if row * rowbytes + rowbytes <= count else b""
                if len(data) < rowbytes:
                    raise self._truncated(fd, start + rowbytes)
                flat[i] = np.frombuffer(data, np.uint8)
        else:
            self._inflate_rows(fd, offset, count, wanted, rowbytes, flat)
        result = out.astype(self.dtype, copy=False)
        if int(self.keyframe.predictor) == 2:
            np.cumsum(result, axis=1, dtype=self.dtype, out=result)
        return result

    def _inflate_rows(self, fd: _FD, offset: int, count: int, wanted: range, rowbytes: int, flat: np.ndarray) -> None:
        def decoded() -> Iterator[bytes]:
            inflater = zlib.decompressobj()
            src, end = offset, offset + count
            while not inflater.eof:
                if inflater.unconsumed_tail:
                    chunk = inflater.unconsumed_tail
                elif src < end:
                    chunk = fd.pread(src, min(1 << 20, end - src))
                    if not chunk:
                        raise self._truncated(fd, end)
                    src += len(chunk)
                else:
                    return
                try:
                    yield inflater.decompress(chunk, 1 << 22)
                except zlib.error as exc:
                    raise CorruptFile(self.source, f"cannot decode a {self.kind} (zlib: {exc})") from exc

        stream = decoded()
        window = bytearray()
        pos = 0  # position of window[0] in the decoded stream
        for i, row in enumerate(wanted):
            lo, hi = row * rowbytes, (row + 1) * rowbytes
            while pos + len(window) < hi:
                piece = next(stream, None)
                if piece is None:
                    raise CorruptFile(self.source, f"a {self.kind} decodes to fewer bytes than it declares")
                window += piece
                cut = min(len(window), lo - pos)  # rows before the wanted one are not kept
                if cut > 0:
                    del window[:cut]
                    pos += cut
            cut = lo - pos
            if cut > 0:
                del window[:cut]
                pos += cut
            flat[i] = np.frombuffer(window, np.uint8, count=rowbytes)

    def __getitem__(self, key: Any) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        key = key + (slice(None),) * (self.ndim - len(key))
        nlead = len(self.lead)
        ranges: list[range] = []
        drop: list[int] = []
        for axis, (k, n) in enumerate(zip(key, self.shape, strict=True)):
            if isinstance(k, slice):
                ranges.append(range(*k.indices(n)))
            else:
                i = int(k)
                i = i + n if i < 0 else i
                if not 0 <= i < n:
                    raise IndexError(f"index {k} out of range for axis of length {n}")
                ranges.append(range(i, i + 1))
                drop.append(axis)
        out_shape = tuple(len(r) for r in ranges[: nlead + 2]) + ((self.samples,) if self.samples > 1 else (1,))
        try:  # allocate the answer before anything else, so a request too large fails at once
            out = np.zeros(out_shape, self.dtype)
        except MemoryError:
            nbytes = int(np.prod(out_shape, dtype=np.float64)) * self.dtype.itemsize
            raise BioimnbError(self.source, f"a region of {nbytes} bytes does not fit in memory; read a smaller one") from None
        picks = [np.arange(r.start, r.stop, r.step) for r in ranges]
        ys, xs = picks[nlead], picks[nlead + 1]
        s_pick = picks[nlead + 2] if self.samples > 1 else None
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
                    seg = self._segment(page, r * nx + c, yseg)
                    target[yout, xout] = seg[:, xseg]
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
