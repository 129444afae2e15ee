"""In-memory images: numpy, dask and zarr arrays, xarray DataArrays and bioio / aicsimageio image
objects, as the same :class:`~bioimnb.core.readers.base.Backend` as files.

``open_image(obj, axes=None, physical_size=None, channel_names=None, name=None)`` ends here for
anything that is not a path or URL.  The object is recognised by its attributes, never by
importing the library that made it (bioio, aicsimageio and xarray are not imported here):

* a numpy array or anything with ``shape``, ``dtype``, ``ndim`` and ``__getitem__`` that is not
  an image object (numpy, dask, zarr v2/v3 arrays);
* an xarray ``DataArray`` (``dims``, ``coords``, ``data``, ``attrs``): dims give the axes, evenly
  spaced numeric coordinates of Z, Y and X give the pixel size (in the ``units`` of the
  coordinate's attrs, default micrometres), a C coordinate the channel names;
* a bioio ``BioImage`` or aicsimageio ``AICSImage`` (``dims.order``, ``scenes``,
  ``physical_pixel_sizes``, ``channel_names``, ``dask_data``): every scene, lazily.

Pixels stay where they are: level 0 is the array itself (a dask array is never computed beyond
the region asked for), and coarser levels are the same *virtual pyramid* as for flat files
(:func:`~bioimnb.core.readers.base.virtual_pyramid`: nearest-neighbour samples with stride
``2**level``, cached in blocks).  Sampling rather than averaging is deliberate: a mean of a
coarse tile would compute every level-0 pixel beneath it, a sample only the ones it shows (for a
numpy or zarr array; a dask chunk is computed whole).  Converting builds real pyramid levels
from level 0 with the converter's own downsampling rule, so the sampled levels are for viewing.

Label arrays (segmentations) are attached per scene with :meth:`MemoryBackend.set_label`; they
must have the image's Z, Y and X (and T) sizes and an integer or boolean dtype, and are shown
and written like an OME-Zarr's ``labels/``.

Converting an in-memory image runs the converter's block tasks on threads, which reopen the
source by a key (:func:`register`): ``open_image(key)`` in the same process gives the image
back.  The key lives as long as the image object.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..axes import AxisMap
from ..cache import ArrayCache
from ..errors import BioimnbError, UnsupportedFormat
from .base import (
    Backend,
    Channel,
    Level,
    PhysicalSize,
    SceneData,
    check_declared_size,
    default_colors,
    virtual_pyramid,
)

__all__ = [
    "MEMORY_SCHEME",
    "MemoryBackend",
    "attach_label",
    "detach_label",
    "from_object",
    "is_image_object",
    "is_lazy",
    "label_array",
    "lookup",
    "register",
]

MEMORY_SCHEME = "bioimnb-memory:"
"""Prefix of the keys under which in-memory images are reachable by ``open_image(key)``."""

NUMPY_CHUNK = 1024
"""Y and X edge of the dask chunks (and of the chunk count of tile requests) of numpy arrays."""

_LIVE: weakref.WeakValueDictionary[str, MemoryBackend] = weakref.WeakValueDictionary()
_LIVE_LOCK = threading.Lock()

# Dimension names of xarray and bioio, lower-cased, to bioimnb's axis letters.
_DIM_NAMES = {
    "t": "T", "time": "T", "times": "T",
    "c": "C", "ch": "C", "channel": "C", "channels": "C",
    "z": "Z", "y": "Y", "x": "X", "s": "S", "samples": "S", "sample": "S", "rgb": "S", "rgba": "S",
}  # fmt: skip


# -- recognising objects ---------------------------------------------------------------------


def _type_name(obj: Any) -> str:
    t = type(obj)
    return f"{t.__module__.split('.')[0]}.{t.__qualname__}" if t.__module__ != "builtins" else t.__qualname__


def _is_image_object(obj: Any) -> bool:
    """A bioio ``BioImage`` / aicsimageio ``AICSImage``-like object (its attributes say so)."""
    return all(hasattr(type(obj), a) or hasattr(obj, a) for a in ("dims", "scenes", "dask_data")) and not hasattr(obj, "coords")


def _is_data_array(obj: Any) -> bool:
    return all(hasattr(obj, a) for a in ("dims", "coords", "data", "attrs")) and isinstance(getattr(obj, "dims", None), tuple)


def _is_array(obj: Any) -> bool:
    return isinstance(obj, np.ndarray) or all(hasattr(obj, a) for a in ("shape", "dtype", "ndim", "__getitem__"))


def is_image_object(obj: Any) -> bool:
    """Whether :func:`from_object` takes ``obj`` (an array, a DataArray or an image object),
    rather than it being a path, a URL or something else."""
    return _is_image_object(obj) or _is_data_array(obj) or _is_array(obj)


def _is_dask(arr: Any) -> bool:
    return type(arr).__module__.startswith("dask") and hasattr(arr, "dask") and hasattr(arr, "chunks")


def _is_zarr(arr: Any) -> bool:
    return type(arr).__module__.startswith("zarr")


# -- parameters --------------------------------------------------------------------------------


def _physical(value: Any, axes: str, source: str) -> PhysicalSize:
    """``physical_size`` as given: a number (Y and X), a dict ``{"X":, "Y":, "Z":}``, a
    :class:`PhysicalSize`, or a sequence over the spatial axes, last = X (``(y, x)`` or
    ``(z, y, x)``).  Micrometres."""
    if value is None:
        return PhysicalSize()
    if isinstance(value, PhysicalSize):
        return value
    if isinstance(value, Mapping):
        keys = {str(k).upper(): v for k, v in value.items()}
        unknown = set(keys) - {"X", "Y", "Z"}
        if unknown:
            raise BioimnbError(source, f"physical_size has unknown axes {sorted(unknown)}; give X, Y and Z in micrometres")
        return PhysicalSize(*(PhysicalSize.clean(keys.get(a)) for a in "XYZ"))
    if isinstance(value, (int, float)):
        v = PhysicalSize.clean(value)
        return PhysicalSize(v, v, None)
    if isinstance(value, Sequence) and not isinstance(value, str):
        vals = [PhysicalSize.clean(v) for v in value]
        if len(vals) == 2:
            return PhysicalSize(vals[1], vals[0], None)
        if len(vals) == 3:
            return PhysicalSize(vals[2], vals[1], vals[0])
        raise BioimnbError(source, f"physical_size has {len(vals)} values; give (y, x) or (z, y, x) in micrometres")
    raise BioimnbError(source, f"physical_size must be a number, a dict or (z, y, x), not {type(value).__name__}")


def default_axes(shape: tuple[int, ...], dtype: np.dtype) -> str:
    """Axes of an array given without ``axes``: a last axis of 3 or 4 uint8 values is RGB(A)
    samples (``S``); then 2-D is ``YX``, 3-D ``ZYX``, 4-D ``CZYX``, 5-D ``TCZYX``."""
    n = len(shape)
    rgb = n >= 3 and shape[-1] in (3, 4) and np.dtype(dtype) == np.uint8
    spatial = n - 1 if rgb else n
    names = {2: "YX", 3: "ZYX", 4: "CZYX", 5: "TCZYX"}.get(spatial)
    if names is None:
        raise ValueError(spatial)
    return names + ("S" if rgb else "")


def _check_axes(axes: str | None, shape: tuple[int, ...], dtype: np.dtype, source: str) -> str:
    if len(shape) < 2:
        raise BioimnbError(source, f"a {len(shape)}-D array (shape {tuple(shape)}) is not an image; an image has at least Y and X")
    if axes is None:
        try:
            return default_axes(shape, dtype)
        except ValueError:
            raise BioimnbError(source, f"a {len(shape)}-D array (shape {tuple(shape)}) needs axes=..., e.g. 'TCZYX'") from None
    text = str(axes)
    if len(text) != len(shape):
        raise BioimnbError(source, f"axes {text!r} do not match the array's {len(shape)} dimensions (shape {tuple(shape)})")
    normal = AxisMap(text, source).native  # unknown or repeated letters, no Y or X: one line
    if "S" in normal and shape[normal.index("S")] > 4:
        raise BioimnbError(source, f"axis S holds RGB(A) samples (3 or 4), not {shape[normal.index('S')]}")
    return normal


def _channels(names: Sequence[Any] | None, n: int, rgb: bool, source: str) -> list[Channel]:
    if names is not None:
        names = [str(x) for x in names]
        if len(names) != n:
            raise BioimnbError(source, f"{len(names)} channel name(s) given for {n} channel(s)")
    elif rgb and n == 1:
        names = ["RGB"]
    else:
        names = [f"C{i}" for i in range(n)]
    return [Channel(x, c) for x, c in zip(names, default_colors(n), strict=True)]


# -- the backend -------------------------------------------------------------------------------


@dataclass
class _Scene:
    name: str
    array: Any
    axes: str
    physical: PhysicalSize
    channel_names: list[str] | None


CHUNK_CACHE_BYTES = 64 * 2**20
"""Computed dask chunks each lazy array keeps (within the process-wide memory budget)."""


def _spans(key: Any, n: int, bounds: list[int]) -> list[tuple[int, slice, slice | None]]:
    """For one axis of length ``n`` chunked at ``bounds`` (``[0, c1, c2, ..., n]``) and an
    index ``key`` (int or slice): ``(chunk, slice inside the chunk, slice of the output or None
    for an int)`` for every chunk holding a selected index."""
    if not isinstance(key, slice):
        i = int(key) + (n if int(key) < 0 else 0)
        if not 0 <= i < n:
            raise IndexError(f"index {key} out of range for length {n}")
        c = int(np.searchsorted(bounds, i, side="right")) - 1
        return [(c, slice(i - bounds[c], i - bounds[c] + 1), None)]
    start, stop, step = key.indices(n)
    if step < 1:
        raise IndexError("in-memory images are read with positive steps")
    count = max(0, -(-(stop - start) // step))
    out: list[tuple[int, slice, slice | None]] = []
    for c in range(len(bounds) - 1):
        c0, c1 = bounds[c], bounds[c + 1]
        n0 = max(0, -(-(c0 - start) // step))
        n1 = min(count, max(0, -(-(c1 - start) // step)))
        if n1 <= n0:
            continue
        first = start + n0 * step - c0
        last = start + (n1 - 1) * step - c0
        out.append((c, slice(first, last + 1, step), slice(n0, n1)))
    return out


class _ChunkedDask:
    """A dask array read region by region, computing each chunk once: computed chunks are kept
    in a bounded cache, so the tiles (and virtual-level samples) that share a chunk do not
    compute it again.  Indexing takes ints and step slices, like the readers' arrays."""

    def __init__(self, arr: Any, cache: ArrayCache) -> None:
        self.arr = arr
        self.shape = tuple(int(s) for s in arr.shape)
        self.dtype = np.dtype(arr.dtype)
        self.ndim = len(self.shape)
        self.chunks = tuple(int(c[0]) if c else 1 for c in arr.chunks)
        self._bounds = [[0, *np.cumsum(c).tolist()] for c in arr.chunks]
        self._cache = cache
        self._token = uuid.uuid4().hex
        self._locks: dict[tuple[int, ...], threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def _chunks(self, indices: list[tuple[int, ...]]) -> dict[tuple[int, ...], np.ndarray]:
        """The computed chunks ``indices``: cached ones from the cache, the others computed
        together (dask's threads: a coarse tile over many chunks uses every core), each once
        even when several tiles ask for it at the same time."""
        found: dict[tuple[int, ...], np.ndarray] = {}
        for index in indices:
            hit = self._cache.get((self._token, index))
            if hit is not None:
                found[index] = hit
        missing = sorted({i for i in indices if i not in found})  # one lock order: no deadlock
        if not missing:
            return found
        with self._locks_lock:
            locks = [self._locks.setdefault(i, threading.Lock()) for i in missing]
        for lock in locks:
            lock.acquire()
        try:
            todo = []
            for index in missing:
                hit = self._cache.get((self._token, index))
                if hit is None:
                    todo.append(index)
                else:
                    found[index] = hit
            if todo:
                import dask

                computed = dask.compute(*(self.arr.blocks[i] for i in todo))
                for index, value in zip(todo, computed, strict=True):
                    value = np.asarray(value)
                    self._cache.put((self._token, index), value)
                    found[index] = value
        finally:
            for lock in locks:
                lock.release()
            with self._locks_lock:
                for index in missing:
                    self._locks.pop(index, None)
        return found

    def __getitem__(self, key: Any) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        key = key + (slice(None),) * (self.ndim - len(key))
        spans = [_spans(k, n, b) for k, n, b in zip(key, self.shape, self._bounds, strict=True)]
        out_shape = [0 if s and s[0][2] is not None else None for s in spans]
        for i, s in enumerate(spans):
            if out_shape[i] is not None:
                out_shape[i] = sum((o.stop - o.start) for _, _, o in s if o is not None)
        out = np.empty(tuple(v for v in out_shape if v is not None), dtype=self.dtype)
        if out.size == 0:
            return out
        combos = list(itertools.product(*spans))
        # A few chunks at a time: computed in parallel, copied into the output, let go (a
        # coarse sample over a whole 20k x 20k array never holds more than a batch).
        batch = max(2, 2 * (os.cpu_count() or 1))
        for start in range(0, len(combos), batch):
            part_combos = combos[start : start + batch]
            chunks = self._chunks([tuple(c for c, _, _ in combo) for combo in part_combos])
            for combo in part_combos:
                block = chunks[tuple(c for c, _, _ in combo)]
                part = block[tuple(inner for _, inner, _ in combo)]
                part = part.reshape(tuple(p for p, (_, _, o) in zip(part.shape, combo, strict=True) if o is not None))
                out[tuple(o for _, _, o in combo if o is not None)] = part
            del chunks
        return out


def _level(arr: Any, axes: str, source: str, name: str) -> Level:
    axis_map = AxisMap(axes, source)
    shape = tuple(int(s) for s in arr.shape)
    if _is_dask(arr):
        native = _ChunkedDask(arr, ArrayCache(CHUNK_CACHE_BYTES))
        return Level(native, axis_map, chunks=native.chunks, dask_array=axis_map.to_canonical(arr), name=name)
    if _is_zarr(arr):
        return Level(arr, axis_map, chunks=tuple(int(c) for c in arr.chunks), name=name)
    # numpy (and other in-memory arrays): one dask chunk per 1024 x 1024 plane piece
    chunks = tuple(
        min(s, NUMPY_CHUNK) if a in "YX" else (s if a == "S" else 1) for a, s in zip(axis_map.native, shape, strict=True)
    )
    return Level(arr, axis_map, chunks=chunks, name=name)


class MemoryBackend(Backend):
    """Scenes held by the Python process (see the module documentation)."""

    format_name = "in-memory"

    def __init__(self, source: str, reader: str, scenes: list[Callable[[], _Scene]], names: list[str]) -> None:
        super().__init__(source)
        self.reader_name = reader
        self._loaders = scenes
        self._names = names
        self._specs: dict[int, _Scene] = {}
        self._spec_lock = threading.RLock()  # Backend._lock is held while a scene is built
        self.key = ""

    @property
    def scene_names(self) -> list[str]:
        return list(self._names)

    def spec(self, index: int) -> _Scene:
        with self._spec_lock:
            found = self._specs.get(index)
            if found is None:
                found = self._specs[index] = self._loaders[index]()
            return found

    def _load_scene(self, index: int) -> SceneData:
        s = self.spec(index)
        level0 = _level(s.array, s.axes, self.source, "memory")
        check_declared_size(self.source, level0.shape, level0.dtype)
        extra = virtual_pyramid(level0)
        channels = _channels(s.channel_names, level0.shape[1], "S" in s.axes, self.source)
        return SceneData(
            name=s.name,
            levels=[level0, *extra],
            physical_size=s.physical,
            channels=channels,
            virtual_pyramid=bool(extra),
        )

    def files(self) -> list[str]:
        return []  # nothing on storage: no file set to guard or to watch for changes


def attach_label(image: Any, name: str, array: Any) -> None:
    """Show ``array`` as label image ``name`` of ``image`` (an opened ``MultiscaleImage`` of any
    source, file or memory), as if its OME-Zarr had ``labels/<name>``: checked with
    :func:`label_array`, level 0 the array itself, coarser levels sampled (nearest neighbour,
    so no invented ids).  A label of that name is replaced."""
    name = str(name)
    canonical = label_array(array, tuple(image.shape), name, image.source)
    level0 = _level(canonical, "TCZYX", image.source, f"label-{name}")
    data = SceneData(
        name=name,
        levels=[level0, *virtual_pyramid(level0)],
        physical_size=image.physical_size,
        channels=[Channel(name, "FFFFFF")],
        virtual_pyramid=True,
    )
    image._data.labels[name] = lambda: data


def detach_label(image: Any, name: str) -> None:
    """Stop showing label image ``name`` of ``image`` (one attached with :func:`attach_label`,
    or the source's own)."""
    labels = image._data.labels
    if name not in labels:
        raise BioimnbError(image.source, f"no label image {name!r}; labels are {sorted(labels)}")
    del labels[name]


def label_array(array: Any, image_shape: tuple[int, ...], name: str, source: str) -> Any:
    """A label array as a canonical ``(T, 1, Z, Y, X)`` array of the image's T, Z, Y and X sizes.

    Accepted: numpy, dask, zarr or an xarray DataArray (its data) of an integer or boolean
    dtype (booleans become uint8), shaped like the image without its C (and S) axis, trailing
    dimensions matched: ``(Y, X)``, ``(Z, Y, X)`` or ``(T, Z, Y, X)``; leading T or Z of size 1
    may be left out.  A float array (an intensity image, or a probability map) is refused.
    """
    if _is_data_array(array):
        array = array.data
    if not _is_array(array):
        raise BioimnbError(source, f"label {name!r}: a {type(array).__name__} is not an array")
    if not isinstance(array, np.ndarray) and not (_is_dask(array) or _is_zarr(array)):
        array = np.asarray(array)
    dtype = np.dtype(array.dtype)
    if dtype == np.bool_:
        array = array.astype(np.uint8)
    elif not np.issubdtype(dtype, np.integer):
        raise BioimnbError(source, f"label {name!r} has dtype {dtype}; label images hold integer ids (cast it, e.g. mask.astype('uint32'))")
    t, _c, z, y, x = (int(v) for v in image_shape[:5])
    want = (t, z, y, x)
    shape = tuple(int(v) for v in array.shape)
    n = len(shape)
    full = ((1,) * (4 - n) + shape) if 2 <= n <= 4 else None
    if full is None or full != want:
        shown = ", ".join(f"{a}={v}" for a, v in zip("TZYX", want, strict=True) if v > 1 or a in "YX")
        raise BioimnbError(source, f"label {name!r} has shape {shape}, which does not match the image ({shown})")
    if _is_dask(array):
        return array.reshape((t, 1, z, y, x))
    if _is_zarr(array):
        return _Reshaped(array, (t, 1, z, y, x))
    return np.asarray(array).reshape((t, 1, z, y, x))


class _Reshaped:
    """A zarr array seen with extra axes of length 1 (labels stay on storage, read per region)."""

    def __init__(self, arr: Any, shape: tuple[int, ...]) -> None:
        self.arr, self.shape, self.dtype, self.ndim = arr, shape, arr.dtype, len(shape)
        self.chunks = (1,) * (len(shape) - arr.ndim) + tuple(int(c) for c in arr.chunks)

    def __getitem__(self, key: tuple[Any, ...]) -> np.ndarray:
        lead = len(self.shape) - self.arr.ndim
        out = np.asarray(self.arr[key[lead:]])
        for k in reversed(key[:lead]):
            if isinstance(k, slice):
                out = out[None]
        return out


# -- adapters ----------------------------------------------------------------------------------


def _xarray_scene(obj: Any, axes: str | None, physical: Any, channel_names: Any, name: str) -> _Scene:
    dims = [str(d) for d in obj.dims]
    if axes is None:
        letters = []
        for d in dims:
            letter = _DIM_NAMES.get(d.lower())
            if letter is None:
                raise BioimnbError(name, f"cannot tell what dimension {d!r} of the DataArray is (dims {tuple(dims)}); pass axes=..., e.g. 'CYX'")
            letters.append(letter)
        axes = "".join(letters)
    data = obj.data
    ax = _check_axes(axes, tuple(int(s) for s in data.shape), np.dtype(data.dtype), name)
    found: dict[str, float | None] = {}
    for d, a in zip(dims, ax, strict=True):
        if a not in "ZYX" or d not in obj.coords:
            continue
        coord = obj.coords[d]
        values = np.asarray(coord.values)
        if values.ndim != 1 or values.size < 2 or not np.issubdtype(values.dtype, np.number):
            continue
        steps = np.diff(values.astype(np.float64))
        step = float(steps.mean())
        if not np.allclose(steps, step, rtol=1e-3, atol=0):
            raise BioimnbError(name, f"coordinate {d!r} is not evenly spaced; a pixel size needs a regular grid")
        attrs = getattr(coord, "attrs", {}) or {}
        unit = attrs.get("units", attrs.get("unit", obj.attrs.get("units") if isinstance(obj.attrs, Mapping) else None))
        from ..metadata.units import to_micrometres

        um = to_micrometres(abs(step), unit)
        if um is None and step:
            raise BioimnbError(name, f"coordinate {d!r} has unit {unit!r}, which is not a length bioimnb knows")
        found[a] = um
    phys = _physical(physical, ax, name) if physical is not None else PhysicalSize(found.get("X"), found.get("Y"), found.get("Z"))
    names = channel_names
    if names is None and "C" in ax:
        cdim = dims[ax.index("C")]
        if cdim in obj.coords:
            values = np.asarray(obj.coords[cdim].values)
            if values.ndim == 1 and values.dtype.kind in "UOS":
                names = [str(v) for v in values]
    return _Scene(name, data, ax, phys, list(names) if names is not None else None)


def _bioio_scene(obj: Any, index: int, name: str, scene_name: str, axes: str | None, physical: Any, channel_names: Any) -> _Scene:
    """Scene ``index`` of a BioImage / AICSImage: its lazy ``dask_data``, dims, pixel sizes and
    channel names (the object's current scene is restored afterwards)."""
    try:
        current = int(getattr(obj, "current_scene_index", 0) or 0)
        if index != current:
            obj.set_scene(index)
        try:
            data = obj.dask_data
            order = str(getattr(obj.dims, "order", "") or "")
            pps = getattr(obj, "physical_pixel_sizes", None)
            raw_names = list(getattr(obj, "channel_names", None) or [])
        finally:
            if index != current:
                obj.set_scene(current)
    except BioimnbError:
        raise
    except Exception as exc:  # the object's own reader failed: one line naming it
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise BioimnbError(name, f"the image object cannot give scene {index} ({first})") from None
    if not _is_array(data) or not order:
        raise BioimnbError(name, f"a {_type_name(obj)} looks like an image object but has no pixel array with named dimensions (dask_data, dims.order)")
    if len(order) != len(data.shape):
        raise BioimnbError(name, f"the image object's dims {order!r} do not match its data's shape {tuple(data.shape)}")
    ax = _check_axes(axes or order, tuple(int(s) for s in data.shape), np.dtype(data.dtype), name)
    if physical is not None:
        phys = _physical(physical, ax, name)
    elif pps is not None:
        phys = PhysicalSize(*(PhysicalSize.clean(getattr(pps, a, None)) for a in "XYZ"))
    else:
        phys = PhysicalSize()
    names = channel_names
    if names is None and raw_names:
        nc = int(data.shape[ax.index("C")]) if "C" in ax else 1
        if len(raw_names) == nc and not ("S" in ax and nc == 1):
            names = [str(n) for n in raw_names]
    return _Scene(scene_name, data, ax, phys, list(names) if names is not None else None)


def from_object(
    obj: Any,
    axes: str | None = None,
    physical_size: Any = None,
    channel_names: Sequence[str] | None = None,
    name: str | None = None,
) -> MemoryBackend:
    """The backend of an in-memory image (see the module documentation); nothing is computed."""
    if _is_image_object(obj):
        shown = name or type(obj).__name__
        try:
            scenes = [str(s) for s in (obj.scenes or ())]
        except Exception as exc:  # noqa: BLE001 - the object's reader failed
            raise BioimnbError(shown, f"the image object cannot list its scenes ({exc})") from None
        if not scenes:
            raise BioimnbError(shown, f"a {_type_name(obj)} looks like an image object but has no scenes")
        def loader(i: int) -> Callable[[], _Scene]:
            return lambda: _bioio_scene(obj, i, shown, scenes[i], axes, physical_size, channel_names)

        backend = MemoryBackend(shown, "bioio", [loader(i) for i in range(len(scenes))], scenes)
        backend.scene(0)  # fail now for an object that only looks like an image
        return backend
    if _is_data_array(obj):
        shown = name or str(getattr(obj, "name", None) or "DataArray")
        scene = _xarray_scene(obj, axes, physical_size, channel_names, shown)
        return MemoryBackend(shown, "xarray", [lambda: scene], [shown])
    if _is_array(obj) and not isinstance(obj, (str, bytes)):
        arr = obj
        kind = "dask" if _is_dask(arr) else "zarr" if _is_zarr(arr) else "numpy"
        shown = name or ("array" if kind == "numpy" else f"{kind} array")
        try:
            shape = tuple(int(s) for s in arr.shape)
            dtype = np.dtype(arr.dtype)
        except TypeError as exc:
            raise BioimnbError(shown, f"a {_type_name(obj)} has no usable shape and dtype ({exc})") from None
        if dtype.kind not in "biuf":
            raise BioimnbError(shown, f"arrays of dtype {dtype} are not images (bioimnb shows integer, float and boolean pixels)")
        if dtype == np.bool_:
            arr = arr.astype(np.uint8)
        if kind == "numpy" and not isinstance(arr, np.ndarray):
            arr = np.asarray(arr)
        ax = _check_axes(axes, shape, dtype, shown)
        phys = _physical(physical_size, ax, shown)
        if channel_names is not None:
            nc = shape[ax.index("C")] if "C" in ax else 1
            _channels(channel_names, nc, "S" in ax, shown)  # count checked now
        scene = _Scene(shown, arr, ax, phys, list(channel_names) if channel_names is not None else None)
        return MemoryBackend(shown, kind, [lambda: scene], [shown])
    raise UnsupportedFormat(name or _type_name(obj), f"bioimnb cannot open a {_type_name(obj)}; give a path, a URL, an array, an xarray DataArray or a bioio BioImage")


# -- keys for the converter's block tasks ----------------------------------------------------------


def register(backend: MemoryBackend) -> str:
    """A key under which ``open_image(key)`` finds ``backend`` again in this process (while the
    backend lives)."""
    with _LIVE_LOCK:
        if not backend.key:
            backend.key = f"{MEMORY_SCHEME}{uuid.uuid4().hex}/{backend.source}"
            _LIVE[backend.key] = backend
        return backend.key


def lookup(key: str) -> MemoryBackend:
    with _LIVE_LOCK:
        found = _LIVE.get(key)
    if found is None:
        shown = key[len(MEMORY_SCHEME) :].split("/", 1)[-1] if key.startswith(MEMORY_SCHEME) else key
        raise BioimnbError(shown, "the in-memory image is gone (its Python object was released)")
    return found


def is_lazy(image: Any) -> bool:
    """True for an in-memory image (an opened ``MultiscaleImage`` or its backend) whose level 0
    is a dask array computed on demand (not a numpy or zarr array): every pixel shown costs
    computation, so a viewer opens it where few chunks are visible."""
    backend = getattr(image, "_backend", image)
    if not isinstance(backend, MemoryBackend):
        return False
    try:
        return _is_dask(backend.spec(0).array)
    except BioimnbError:
        return False


def level0_chunks(image: Any) -> int:
    """How many dask chunks level 0 of the first scene of an in-memory image (or its backend)
    has (1 for other arrays and for files)."""
    backend = getattr(image, "_backend", image)
    if not isinstance(backend, MemoryBackend):
        return 1
    arr = backend.spec(0).array
    if not _is_dask(arr):
        return 1
    return math.prod(len(c) for c in arr.chunks)
