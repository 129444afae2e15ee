"""The reader contract: what every format family hands to :class:`~bioimnb.core.images.MultiscaleImage`.

A reader is a :class:`Backend` for one opened source.  It names its scenes and, on demand,
builds a :class:`SceneData` per scene: pyramid levels (native arrays + axis map), physical pixel
sizes, channels and an OME model.  Nothing here reads pixels; :meth:`Level.read` and the dask
arrays read chunks when asked.
"""

from __future__ import annotations

import math
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from ..axes import AxisMap
from ..cache import ArrayCache
from ..errors import CorruptFile
from ..metadata.colors import default_colors

if TYPE_CHECKING:  # pragma: no cover
    import dask.array as da
    from ome_types import OME

__all__ = [
    "Backend",
    "Channel",
    "Level",
    "PhysicalSize",
    "SceneData",
    "VirtualLevelArray",
    "check_declared_size",
    "default_colors",
]

MAX_DECLARED_BYTES = 2**50  # 1 PiB: no single microscopy image is larger; a header saying so lies.
DASK_MIN_EDGE = 1024  # dask chunks group native tiles up to at least this edge in Y and X


@dataclass(frozen=True)
class PhysicalSize:
    """Physical pixel size in micrometres; ``None`` where the file does not say."""

    X: float | None = None
    Y: float | None = None
    Z: float | None = None

    def to_dict(self) -> dict[str, float | None]:
        return {"X": self.X, "Y": self.Y, "Z": self.Z}

    @staticmethod
    def clean(value: Any) -> float | None:
        """A usable size or None: zero, negative, NaN and non-numbers mean 'unknown'."""
        try:
            v = float(value)
        except (TypeError, ValueError):
            return None
        if not math.isfinite(v) or v <= 0:
            return None
        return v


@dataclass(frozen=True)
class Channel:
    name: str
    color: str
    """Display colour as ``RRGGBB`` hex (the file's own where it has one)."""




def check_declared_size(source: object, shape: tuple[int, ...], dtype: Any) -> None:
    if any(int(s) < 0 for s in shape):
        raise CorruptFile(source, f"negative dimension in declared shape {tuple(shape)}")
    nbytes = math.prod(int(s) for s in shape) * np.dtype(dtype).itemsize
    if nbytes > MAX_DECLARED_BYTES:
        raise CorruptFile(
            source,
            f"declares an image of {nbytes:.3g} bytes (shape {tuple(int(s) for s in shape)}), "
            "which is not plausible",
        )


def _dask_chunks(shape: tuple[int, ...], native_chunks: tuple[int, ...] | None, axes: str) -> tuple[int, ...]:
    if native_chunks is None:
        native_chunks = tuple(1 if a not in "YXS" else s for a, s in zip(axes, shape, strict=True))
    out = []
    for a, s, c in zip(axes, shape, native_chunks, strict=True):
        c = max(1, min(int(c), int(s) or 1))
        if a in "YX" and c < DASK_MIN_EDGE:
            c = min(int(s) or 1, c * math.ceil(DASK_MIN_EDGE / c))
        out.append(c)
    return tuple(out)


class Level:
    """One pyramid level: a native array-like plus the map to canonical axes.

    ``native`` needs ``shape``, ``dtype`` and ``__getitem__`` with tuples of ints and slices
    (zarr arrays, numpy memmaps, and the small adapters in the readers all qualify).
    """

    def __init__(
        self,
        native: Any,
        axis_map: AxisMap,
        *,
        chunks: tuple[int, ...] | None = None,
        dask_array: da.Array | None = None,
        name: str = "level",
        lock: Any = None,
    ) -> None:
        self.lock = lock
        """Serialises reads for readers that are not safe to call from several threads."""
        self.native = native
        self.axis_map = axis_map
        self._chunks = chunks
        self._dask = dask_array
        self._name = name

    @cached_property
    def native_chunks(self) -> tuple[int, ...] | None:
        """The native chunk shape (asked of ``native`` only when needed: a lazy native array
        builds its store on first use, which facts and shapes never need)."""
        return self._chunks if self._chunks is not None else getattr(self.native, "chunks", None)

    @cached_property
    def shape(self) -> tuple[int, ...]:
        return self.axis_map.shape(tuple(int(s) for s in self.native.shape))

    @cached_property
    def dtype(self) -> np.dtype:
        return np.dtype(self.native.dtype)

    @property
    def chunk_shape(self) -> tuple[int, ...]:
        """Native chunk (tile) shape in canonical axis order."""
        if self.native_chunks is None:
            return self.shape
        return self.axis_map.shape(tuple(int(c) for c in self.native_chunks))

    @cached_property
    def dask(self) -> da.Array:
        if self._dask is not None:
            return self._dask
        import dask.array as da  # lazily: ~0.6 s of imports (dask, pandas, xarray) that a region read never needs

        native_shape = tuple(int(s) for s in self.native.shape)
        chunks = _dask_chunks(native_shape, self.native_chunks, self.axis_map.native)
        arr = da.from_array(
            self.native,
            chunks=chunks,
            name=f"{self._name}-{uuid.uuid4().hex}",
            lock=False,
            asarray=True,
            fancy=False,
            meta=np.empty((0,) * len(native_shape), dtype=self.dtype),
        )
        return self.axis_map.to_canonical(arr)

    def read(self, key: tuple[Any, ...]) -> np.ndarray:
        """Read a region given as ints/slices over canonical axes, straight from the native store."""
        if self.lock is not None:
            with self.lock:
                return self.axis_map.read(self.native, key)
        return self.axis_map.read(self.native, key)


VIRTUAL_BLOCK = 512
"""Virtual levels are sampled and cached in blocks of this many output pixels a side."""
VIRTUAL_CACHE_BYTES = 64 * 2**20
"""Each scene's virtual-level cache holds at most this much; all of them together, and every
other cache of the process, at most ``limits().memory_budget`` (:mod:`bioimnb.core.cache`)."""


def virtual_factor(level: int) -> int:
    """The sampling stride of virtual level ``level`` of :func:`virtual_pyramid` (``2**level``):
    level-0 pixels per virtual-level pixel, in Y and X."""
    return 2**level


class VirtualLevelArray:
    """A downsampled view of level 0 for images that have no pyramid of their own.

    Pixels are sampled with stride ``factor`` (nearest neighbour), in blocks of ``block`` x
    ``block`` output pixels cached in a bounded LRU (an :class:`ArrayCache`, so within the
    process-wide memory budget).  Reading the coarsest level of a 20k x 20k flat image touches
    only the rows and tiles that hold sampled pixels, never a full-resolution copy
    (strip-organised and uncompressed files then read a fraction of the image).
    """

    def __init__(
        self, source: Level, factor: int, cache: ArrayCache, block: int = VIRTUAL_BLOCK
    ) -> None:
        self.source = source
        self.factor = factor
        self.cache = cache
        self.block = block
        self.axes = source.axis_map.target
        shp = list(source.shape)
        yi, xi = self.axes.index("Y"), self.axes.index("X")
        shp[yi] = -(-shp[yi] // factor)
        shp[xi] = -(-shp[xi] // factor)
        self.shape = tuple(shp)
        self.dtype = source.dtype
        self.ndim = len(self.shape)
        self.chunks = tuple(
            min(block, s) if a in "YX" else (s if a == "S" else 1)
            for a, s in zip(self.axes, self.shape, strict=True)
        )

    def _block(self, lead: tuple[int, ...], by: int, bx: int) -> np.ndarray:
        key = (id(self), lead, by, bx)
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        f, b = self.factor, self.block
        ny, nx = self.shape[3], self.shape[4]
        y0, y1 = by * b, min(ny, (by + 1) * b)
        x0, x1 = bx * b, min(nx, (bx + 1) * b)
        src_key: tuple[Any, ...] = (*lead, slice(y0 * f, y1 * f, f), slice(x0 * f, x1 * f, f))
        if "S" in self.axes:
            src_key = (*src_key, slice(None))
        data = np.ascontiguousarray(self.source.read(src_key))
        self.cache.put(key, data)
        return data

    def __getitem__(self, key: Any) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        key = key + (slice(None),) * (self.ndim - len(key))
        ranges = []
        for k, n in zip(key, self.shape, strict=True):
            if isinstance(k, slice):
                start, stop, step = k.indices(n)
                if step != 1:
                    raise IndexError("virtual levels support step-1 slices only")
                ranges.append((start, stop, True))
            else:
                i = int(k) + (n if int(k) < 0 else 0)
                ranges.append((i, i + 1, False))
        (t0, t1, _), (c0, c1, _), (z0, z1, _), (y0, y1, _), (x0, x1, _) = ranges[:5]
        out_shape = [r[1] - r[0] for r in ranges[:5]] + list(self.shape[5:])
        out = np.empty(out_shape, dtype=self.dtype)
        b = self.block
        for t in range(t0, t1):
            for c in range(c0, c1):
                for z in range(z0, z1):
                    for by in range(y0 // b, -(-y1 // b)):
                        for bx in range(x0 // b, -(-x1 // b)):
                            blk = self._block((t, c, z), by, bx)
                            ya, yb = max(y0, by * b), min(y1, (by + 1) * b)
                            xa, xb = max(x0, bx * b), min(x1, (bx + 1) * b)
                            out[t - t0, c - c0, z - z0, ya - y0 : yb - y0, xa - x0 : xb - x0] = blk[
                                ya - by * b : yb - by * b, xa - bx * b : xb - bx * b
                            ]
        if self.ndim == 6:
            out = out[..., key[5]]
            if not isinstance(key[5], slice):
                ranges = ranges[:5]
        squeeze = tuple(i for i, r in enumerate(ranges[:5]) if not r[2])
        return out.squeeze(axis=squeeze) if squeeze else out


def virtual_pyramid(level0: Level, tile: int = 256, cache: ArrayCache | None = None) -> list[Level]:
    """Levels 1..n for a single-level image: halve Y and X until both fit ``tile`` pixels.
    Level ``i`` samples level 0 with stride :func:`virtual_factor` ``(i)``.  The sampled blocks
    go to ``cache``, by default one of :data:`VIRTUAL_CACHE_BYTES` per call (per scene), which
    draws from the process-wide memory budget like every core cache."""
    cache = cache if cache is not None else ArrayCache(VIRTUAL_CACHE_BYTES)
    levels: list[Level] = []
    ny, nx = level0.shape[3], level0.shape[4]
    index = 0
    while max(-(-ny // virtual_factor(index)), -(-nx // virtual_factor(index))) > tile:
        index += 1
        arr = VirtualLevelArray(level0, virtual_factor(index), cache)
        levels.append(Level(arr, AxisMap(arr.axes), chunks=arr.chunks, name="virtual"))
    return levels


@dataclass
class SceneData:
    name: str
    levels: list[Level]
    physical_size: PhysicalSize
    channels: list[Channel]
    ome: Callable[[], OME] | None = None
    """Builds the OME model for this scene (the file's own, or one synthesised from the facts)."""
    labels: dict[str, Callable[[], SceneData]] = field(default_factory=dict)
    virtual_pyramid: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class Backend(ABC):
    """One opened source.  Subclasses fill ``format_name`` and ``reader_name``."""

    format_name: str = "unknown"
    reader_name: str = "unknown"

    def __init__(self, source: str) -> None:
        self.source = source
        self._scenes: dict[int, SceneData] = {}
        self._lock = threading.Lock()

    @property
    @abstractmethod
    def scene_names(self) -> list[str]: ...

    @abstractmethod
    def _load_scene(self, index: int) -> SceneData: ...

    def scene(self, index: int) -> SceneData:
        with self._lock:
            if index not in self._scenes:
                self._scenes[index] = self._load_scene(index)
            return self._scenes[index]

    def ome_xml(self) -> str | None:
        """The file's own OME-XML, when it carries one."""
        return None

    def scene_locations(self) -> list[str]:
        """Where each scene lives inside the source: a group path in a hierarchy (an OME-Zarr
        plate's fields, bioformats2raw series), ``""`` when the source itself is the scene."""
        return [""] * len(self.scene_names)

    def status(self) -> dict[str, Any]:
        """Extra facts for ``info`` (for example an incomplete conversion)."""
        return {}

    def associated_names(self) -> list[str]:
        """Names of associated images (a slide's label, macro, thumbnail): not levels, not scenes."""
        return []

    def associated(self, name: str) -> np.ndarray:
        """An associated image as a (Y, X, 3) uint8 RGB array."""
        from ..errors import BioimnbError

        raise BioimnbError(self.source, f"no associated image {name!r}; this image has none")

    def files(self) -> list[str]:
        """Every file or folder the image is made of (its file set), as paths on its storage:
        the file itself, plus companions (multi-file OME-TIFF members and ``.companion.ome``,
        MRXS data folders), or a zarr store's root folder.  Used by overwrite guards and scans."""
        return [self.source]

    def close(self) -> None:  # noqa: B027 - optional hook
        pass
