"""``open_image``: any bioimage from any storage, as a lazy multiscale image.

Opening reads headers and metadata only.  Pixels are read when a dask array is computed or a
region is requested with :meth:`MultiscaleImage.read`, and then only the chunks (TIFF tiles or
strips, zarr chunks, CZI subblocks) the request touches.
"""

from __future__ import annotations

import os
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import BioimnbError, CorruptFile, UnsupportedFormat
from .readers.base import Backend, Channel, PhysicalSize, SceneData
from .storage import Resolved, resolve, storage_errors

if TYPE_CHECKING:  # pragma: no cover
    import dask.array as da
    from ome_types import OME

    from .classify import Classified

__all__ = ["MultiscaleImage", "PhysicalSize", "Channel", "open_image"]

class MultiscaleImage:
    """One scene of an opened image, as a pyramid of lazy arrays in TCZYX(S) order.

    Attributes read no pixels.  ``levels[0]`` is full resolution; each further level is the
    file's own reduced resolution, or, for files without a pyramid, a virtual level sampled on
    demand (``virtual_pyramid`` is then True).
    """

    def __init__(self, backend: Backend, scene: int = 0, *, _data: SceneData | None = None) -> None:
        self._backend = backend
        self._scene = scene
        self._data_override = _data

    # -- where it comes from -----------------------------------------------------------
    @property
    def source(self) -> str:
        """The source as given (credentials and query strings removed)."""
        return self._backend.source

    @property
    def format(self) -> str:
        """File format, e.g. ``"OME-TIFF"``, ``"OME-Zarr"``, ``"CZI"``."""
        return self._backend.format_name

    @property
    def reader(self) -> str:
        """The library that reads the pixels, e.g. ``"tifffile"``, ``"zarr"``, ``"bioio-czi"``."""
        return self._backend.reader_name

    # -- scenes --------------------------------------------------------------------------
    @property
    def scenes(self) -> list[str]:
        return list(self._backend.scene_names)

    @property
    def scene_index(self) -> int:
        return self._scene

    @property
    def scene(self) -> str:
        return self._data.name

    def select_scene(self, scene: int | str) -> MultiscaleImage:
        """The same file, another scene (by index or by name)."""
        names = self.scenes
        if isinstance(scene, str) and not scene.lstrip("-").isdigit():
            if scene not in names:
                shown = ", ".join(repr(n) for n in names[:10]) + (" ..." if len(names) > 10 else "")
                raise BioimnbError(self.source, f"no scene named {scene!r}; scenes are {shown}")
            index = names.index(scene)
        else:
            index = int(scene)
            if index < 0:
                index += len(names)
            if not 0 <= index < len(names):
                raise BioimnbError(self.source, f"no scene {scene}; the file has {len(names)} scene(s)")
        return MultiscaleImage(self._backend, index)

    @property
    def _data(self) -> SceneData:
        if self._data_override is not None:
            return self._data_override
        return self._backend.scene(self._scene)

    # -- geometry ------------------------------------------------------------------------
    @property
    def axes(self) -> str:
        """``"TCZYX"``, or ``"TCZYXS"`` when pixels hold RGB(A) samples."""
        return self._data.levels[0].axis_map.target

    @property
    def dtype(self) -> np.dtype:
        return self._data.levels[0].dtype

    @property
    def shape(self) -> tuple[int, ...]:
        return self._data.levels[0].shape

    @property
    def level_shapes(self) -> list[tuple[int, ...]]:
        return [lv.shape for lv in self._data.levels]

    @property
    def chunk_shapes(self) -> list[tuple[int, ...]]:
        """The storage chunk (tile) of each level, in canonical axis order."""
        return [lv.chunk_shape for lv in self._data.levels]

    @property
    def levels(self) -> list[da.Array]:
        """One lazy dask array per pyramid level, level 0 = full resolution."""
        return [lv.dask for lv in self._data.levels]

    @property
    def n_levels(self) -> int:
        return len(self._data.levels)

    @property
    def virtual_pyramid(self) -> bool:
        """True when levels after 0 are sampled on demand rather than stored in the file."""
        return self._data.virtual_pyramid

    # -- physical and channel metadata ---------------------------------------------------
    @property
    def physical_size(self) -> PhysicalSize:
        """Level-0 pixel size in micrometres (``None`` per axis where the file does not say)."""
        return self._data.physical_size

    @property
    def channels(self) -> list[Channel]:
        return list(self._data.channels)

    @property
    def channel_names(self) -> list[str]:
        return [c.name for c in self._data.channels]

    @property
    def channel_colors(self) -> list[str]:
        return [c.color for c in self._data.channels]

    @cached_property
    def ome(self) -> OME:
        """The OME model (ome-types): the file's own OME-XML, or one built from what is known."""
        build = self._data.ome
        if build is None:
            from .metadata.ome import synthesize_ome

            d = self._data
            return synthesize_ome([(d.name, self.shape, self.dtype, d.physical_size, d.channels)])
        with storage_errors(self.source):
            return build()

    # -- labels (OME-Zarr) -----------------------------------------------------------------
    @property
    def labels(self) -> list[str]:
        return list(self._data.labels)

    def label(self, name: str) -> MultiscaleImage:
        """A label image of this scene (OME-Zarr ``labels/<name>``) as its own multiscale image."""
        if name not in self._data.labels:
            raise BioimnbError(self.source, f"no label image {name!r}; labels are {self.labels}")
        return MultiscaleImage(self._backend, self._scene, _data=self._data.labels[name]())

    # -- pixels --------------------------------------------------------------------------
    def read(self, level: int = 0, **selection: int | slice) -> np.ndarray:
        """Read a region of one level into memory, touching only the chunks it overlaps.

        Selection by axis letter (``t``, ``c``, ``z``, ``y``, ``x``, ``s``): an int picks one
        index and drops the axis; a slice keeps it.  Unnamed axes are read whole.

        >>> img.read(level=2, t=0, z=0, y=slice(0, 256), x=slice(0, 256))  # (C, 256, 256)
        """
        lv = self._data.levels[level]
        axes = lv.axis_map.target
        unknown = set(k.upper() for k in selection) - set(axes)
        if unknown:
            raise ValueError(f"unknown axes {sorted(unknown)}; this image has axes {axes}")
        key = tuple(selection.get(a.lower(), selection.get(a, slice(None))) for a in axes)
        with storage_errors(self.source):
            return lv.read(key)

    @property
    def associated_images(self) -> list[str]:
        """Names of the slide's associated images (``label``, ``macro``, ``thumbnail``, ...)."""
        return self._backend.associated_names()

    def associated(self, name: str) -> np.ndarray:
        """One associated image (a slide label, macro photo or thumbnail) as RGB ``(Y, X, 3)``."""
        with storage_errors(self.source):
            return self._backend.associated(name)

    @property
    def ome_xml(self) -> str | None:
        """The source's own OME-XML document as written (OME-TIFF, bioformats2raw), else None."""
        return self._backend.ome_xml()

    @property
    def scene_locations(self) -> list[str]:
        """Where each scene lives inside the source (see :meth:`Backend.scene_locations`)."""
        return list(self._backend.scene_locations())

    @property
    def files(self) -> list[str]:
        """Every file or folder this image is made of (see :meth:`Backend.files`)."""
        return list(self._backend.files())

    # -- description ---------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return dict(self._backend.status())

    def scene_info(self) -> dict[str, Any]:
        d = self._data
        info: dict[str, Any] = {
            "index": self._scene,
            "name": d.name,
            "axes": self.axes,
            "shape": list(self.shape),
            "dtype": str(self.dtype),
            "levels": [list(s) for s in self.level_shapes],
            "physical_size_um": d.physical_size.to_dict(),
            "channels": self.channel_names,
            "channel_colors": self.channel_colors,
            "virtual_pyramid": d.virtual_pyramid,
        }
        if d.labels:
            info["labels"] = list(d.labels)
        return info

    def describe(self) -> dict[str, Any]:
        """Every scene of the source, as ``bioimnb info --json`` prints it."""
        out: dict[str, Any] = {
            "source": self.source,
            "format": self.format,
            "reader": self.reader,
            "scenes": [self.select_scene(i).scene_info() for i in range(len(self.scenes))],
        }
        out.update(self.status())
        return out

    # -- lifetime ------------------------------------------------------------------------
    def close(self) -> None:
        self._backend.close()

    def __enter__(self) -> MultiscaleImage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        try:
            levels = " > ".join("x".join(map(str, s[3:5])) for s in self.level_shapes)
            px = self.physical_size
            size = f", {px.X:g} um/px" if px.X else ""
            return (
                f"<MultiscaleImage {self.format} {self.source!r} scene {self._scene} "
                f"({self.scene!r}) {self.axes} {self.shape} {self.dtype}{size}; levels {levels}>"
            )
        except Exception:  # noqa: BLE001 - repr must never raise
            return f"<MultiscaleImage {self.source!r}>"


def _open_backend(res: Resolved, reader: str | None = None, found: Classified | None = None) -> Backend:
    """Ask the classification what the source is (``found``: already known, e.g. from a
    listing), then the registry's reader to open it (``reader``: that registered reader instead
    of the one the registry would pick)."""
    from .classify import classify_resolved
    from .registry import Format, format_by_name, reader_for, readers

    if found is None:
        found = classify_resolved(res)
    if reader is not None:
        chosen = next((r for r in readers() if r.name == reader), None)
        if chosen is None:
            names = ", ".join(r.name for r in readers())
            raise UnsupportedFormat(res.url, f"no reader named {reader!r}; readers are {names}")
        if found.kind == "folder" and not found.format:
            raise UnsupportedFormat(res.url, "is a folder, not an image (list it with `bioimnb ls`)")
        if found.size == 0 and not found.is_dir:
            raise CorruptFile(res.url, "file is empty (0 bytes)")
        own = format_by_name(found.format or "")
        if own is None or own.reader != chosen.name:
            own = chosen.formats[0] if chosen.formats else Format(found.format or "unknown", ())
        return chosen.open(res, own, found.size or 0)
    if found.kind == "folder":
        if found.format == "zarr group":
            raise UnsupportedFormat(
                res.url, "zarr group without OME-Zarr metadata (no multiscales, plate or bioformats2raw.layout)"
            )
        raise UnsupportedFormat(res.url, "is a folder, not an image (list it with `bioimnb ls`)")
    if found.kind == "file":
        if found.error:
            raise CorruptFile(res.url, found.error)
        raise UnsupportedFormat(res.url, f"unsupported format (bioimnb reads {_readable_formats()})")
    if found.error:
        if found.error.startswith("HDF5"):
            raise UnsupportedFormat(res.url, found.error)
        raise CorruptFile(res.url, found.error)
    fmt = format_by_name(found.format or "")
    if fmt is None and found.is_dir:
        fmt = format_by_name("OME-Zarr")
    if fmt is None:  # pragma: no cover - the classification only names registered formats
        raise UnsupportedFormat(res.url, f"no reader for {found.format}")
    return reader_for(fmt).open(res, fmt, found.size or 0)


def _readable_formats() -> str:
    from .registry import readers

    names = [f.name for r in readers() if r.priority >= 0 for f in r.formats if f.name not in ("OME-TIFF fileset",)]
    more = sum(len(r.formats) for r in readers() if r.priority < 0)
    # Fallback readers (Bio-Formats) add ~100 formats: counted, not listed, to keep one short line.
    return ", ".join(names) + (f" and {more} more formats (`bioimnb formats` lists them)" if more else "")


def open_image(
    source: Any,
    scene: int | str | None = None,
    *,
    root: str | os.PathLike[str] | None = None,
    reader: str | None = None,
    axes: str | None = None,
    physical_size: Any = None,
    channel_names: list[str] | None = None,
    name: str | None = None,
    **storage_options: Any,
) -> MultiscaleImage:
    """Open an image lazily: headers and metadata now, pixels only when asked for.

    ``source`` is a local path or any fsspec URL (``s3://bucket/x.ome.zarr``,
    ``https://host/slide.svs``, ...).  ``storage_options`` go to the filesystem (for S3:
    ``endpoint_url``, ``key``, ``secret``, ``anon``, ...); credentials otherwise come from the
    environment.  ``scene`` selects a scene by index or name (default: the first).
    ``root`` (local sources) confines every file the reader opens, chunks and companion files
    included, to that folder: a link leading outside is refused, never followed.
    ``reader`` names a registered reader to use instead of the one the registry picks
    (``bioimnb.core.registry.readers()`` lists them).

    ``source`` may also be an image in memory: a numpy, dask or zarr array, an xarray
    DataArray, or a bioio ``BioImage`` / aicsimageio ``AICSImage`` (:mod:`bioimnb.core.readers.
    memory`).  ``axes`` (e.g. ``"CZYX"``; default by dimensionality, a last axis of 3 or 4 uint8
    values is RGB), ``physical_size`` (micrometres: a number for Y and X, ``(z, y, x)`` or a
    dict) and ``channel_names`` describe it where the object does not; ``name`` is what
    messages and the viewer call it.  Nothing is computed.
    """
    if isinstance(source, MultiscaleImage):
        return source if scene is None else source.select_scene(scene)
    if not isinstance(source, (str, os.PathLike)):
        from .readers.memory import from_object

        return _open_backend_scene(from_object(source, axes, physical_size, channel_names, name), scene, source=name)
    if isinstance(source, str) and source.startswith(_MEMORY_SCHEME):
        from .readers.memory import lookup

        return _open_backend_scene(lookup(source), scene, source=source)
    given = [k for k, v in (("axes", axes), ("physical_size", physical_size), ("channel_names", channel_names), ("name", name)) if v is not None]
    if given:
        raise BioimnbError(os.fspath(source), f"{', '.join(given)} describe in-memory arrays; a file says its own (edit its metadata instead)")
    return open_resolved(resolve(source, root=root, **storage_options), scene, reader=reader)


_MEMORY_SCHEME = "bioimnb-memory:"  # bioimnb.core.readers.memory.MEMORY_SCHEME (a test checks they agree)


def _open_backend_scene(backend: Backend, scene: int | str | None, source: str | None) -> MultiscaleImage:
    image = MultiscaleImage(backend, 0)
    if scene is not None:
        image = image.select_scene(scene)
    with storage_errors(backend.source):
        image._data  # noqa: B018 - build the scene now so bad input fails at open
    return image


def open_resolved(
    res: Resolved, scene: int | str | None = None, *, reader: str | None = None, found: Classified | None = None
) -> MultiscaleImage:
    """:func:`open_image` of an already resolved source, and optionally already classified
    (the scan passes what the listing found, so nothing is read twice)."""
    backend = _open_backend(res, reader, found)
    try:
        image = MultiscaleImage(backend, 0)
        if not backend.scene_names:
            raise CorruptFile(res.url, "contains no image")
        if scene is not None:
            image = image.select_scene(scene)
        image._data  # noqa: B018 - load the scene's headers now so bad files fail at open
    except BaseException:
        backend.close()
        raise
    return image
