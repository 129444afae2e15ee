"""Formats read through bioio plugins: CZI, ND2, LIF, DeltaVision, PNG, JPEG.

bioio is the maintained successor of aicsimageio and knows these vendor formats well.  When
bioio-czi refuses a CZI file's metadata (for example a file with no distance scaling, which is
still a perfectly readable image), :class:`CziDirectBackend` reads the pixels with pylibCZIrw and
reports the physical size as unknown.
"""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from typing import Any

import numpy as np

from ..axes import AxisMap
from ..errors import BioimnbError, CorruptFile, UnsupportedFormat
from ..metadata.ome import check_xml, synthesize_ome
from ..storage import Resolved, storage_errors
from .base import (
    Backend,
    Channel,
    Level,
    PhysicalSize,
    SceneData,
    default_colors,
    virtual_pyramid,
)

_READERS = {
    "czi": ("bioio_czi", "bioio-czi"),
    "nd2": ("bioio_nd2", "bioio-nd2"),
    "lif": ("bioio_lif", "bioio-lif"),
    "dv": ("bioio_dv", "bioio-dv"),
    "png": ("bioio_imageio", "bioio-imageio"),
    "jpeg": ("bioio_imageio", "bioio-imageio"),
}


def _is_s3(res: Resolved) -> bool:
    protocols = res.fs.protocol if isinstance(res.fs.protocol, (tuple, list)) else (res.fs.protocol,)
    return bool({"s3", "s3a"} & set(protocols))


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def _dask_data(img: Any, order: str) -> tuple[Any, str]:
    """bioio's standard TCZYX(S) array; the reader's own array when bioio fails to standardise it
    (bioio 3.6 cannot build DeltaVision channel coordinates), with extra length-1 axes dropped."""
    try:
        return img.dask_data, order
    except ValueError:
        xr = img.reader.xarray_dask_data
        arr = xr.data
        dims = [str(d) for d in xr.dims]
        keep = [i for i, d in enumerate(dims) if d in "TCZYXS" or arr.shape[i] != 1]
        index = tuple(slice(None) if i in keep else 0 for i in range(len(dims)))
        return arr[index], "".join(dims[i] for i in keep)


class BioioBackend(Backend):
    def __init__(self, res: Resolved, family: str, format_name: str) -> None:
        super().__init__(res.url)
        import importlib

        module_name, self.reader_name = _READERS[family]
        self.reader_cls = importlib.import_module(module_name).Reader
        self.res = res
        self.format_name = format_name
        # bioio readers keep file resources that break when two threads compute separate
        # arrays at once (seen with bioio-dv: the file ends up closed); region reads take turns.
        self._read_lock = threading.RLock()
        self._first = self._open()
        self._names = [str(s) for s in self._first.scenes]

    def _open(self) -> Any:
        from bioio import BioImage

        target = self.res.path if self.res.local else self.res.url
        kwargs: dict[str, Any] = {}
        if not self.res.local and self.reader_name == "bioio-czi" and _is_s3(self.res):
            # bioio-czi reads remote files through its own HTTP client (local paths and http(s)
            # URLs only, no S3 credentials): hand it a short-lived presigned URL instead.  The
            # URL stays in this process; errors show the s3:// source (query strings dropped).
            with storage_errors(self.res.url):
                target = self.res.fs.sign(self.res.path, expiration=3600)
        elif not self.res.local:
            kwargs["fs_kwargs"] = self.res.options
        with storage_errors(self.res.url):
            try:
                return BioImage(target, reader=self.reader_cls, **kwargs)
            except BioimnbError:
                raise
            except (FileNotFoundError, PermissionError, ConnectionError):
                raise
            except Exception as exc:
                why = _first_line(exc).replace(target, self.res.url)  # never show a signed URL
                raise CorruptFile(self.res.url, f"{self.reader_name} cannot read it ({why})") from None

    @property
    def scene_names(self) -> list[str]:
        return self._names

    def _load_scene(self, index: int) -> SceneData:
        img = self._first if index == 0 else self._open()
        try:
            if index != 0:
                img.set_scene(index)
            order = img.dims.order
            levels = []
            res_levels = list(getattr(img, "resolution_levels", (0,)) or (0,))
            for r in res_levels:
                if len(res_levels) > 1:
                    img.set_resolution_level(r)
                arr, level_order = _dask_data(img, order)
                axis_map = AxisMap(level_order, self.res.url)
                levels.append(
                    Level(
                        arr,
                        axis_map,
                        chunks=arr.chunksize,
                        dask_array=axis_map.to_canonical(arr),
                        name="bioio",
                        lock=self._read_lock,
                    )
                )
            if len(res_levels) > 1:
                img.set_resolution_level(res_levels[0])
            pps = img.physical_pixel_sizes
            physical = PhysicalSize(PhysicalSize.clean(pps.X), PhysicalSize.clean(pps.Y), PhysicalSize.clean(pps.Z))
            raw_names = list(img.channel_names or [])
        except BioimnbError:
            raise
        except Exception as exc:
            raise CorruptFile(self.res.url, f"{self.reader_name} cannot read scene {index} ({_first_line(exc)})") from exc
        virtual = False
        if len(levels) == 1:
            extra = virtual_pyramid(levels[0])
            virtual = bool(extra)
            levels += extra
        nc = levels[0].shape[1]
        names = [str(n) if str(n).strip() else f"C{i}" for i, n in enumerate(raw_names[:nc])]
        names += [f"C{i}" for i in range(len(names), nc)]
        if "S" in order and nc == 1:
            names = ["RGB"]
        channels = [Channel(n, c) for n, c in zip(names, default_colors(nc), strict=True)]
        name = self._names[index]

        def build_ome() -> Any:
            try:
                ome = img.ome_metadata
                # Only an OME model that describes these pixels: bioio-czi's model of a mosaic
                # has other sizes (tile, not scene) and another scene order than its arrays.
                if ome is not None and len(ome.images) > index:
                    px = ome.images[index].pixels
                    shape = levels[0].shape
                    if (px.size_x, px.size_y, px.size_c) == (shape[4], shape[3], shape[1] if "S" not in order else px.size_c):
                        return ome
            except Exception:  # noqa: BLE001 - not every plugin can produce OME; synthesise instead
                pass
            return synthesize_ome([(name, levels[0].shape, levels[0].dtype, physical, channels)])

        return SceneData(
            name=name,
            levels=levels,
            physical_size=physical,
            channels=channels,
            ome=build_ome,
            virtual_pyramid=virtual,
        )


_CZI_DTYPES = {
    "Gray8": ("uint8", 1),
    "Gray16": ("uint16", 1),
    "Gray32Float": ("float32", 1),
    "Gray32": ("uint32", 1),
    "Bgr24": ("uint8", 3),
    "Bgr48": ("uint16", 3),
    "Bgra32": ("uint8", 4),
}


class _CziArray:
    """One CZI scene as a TCZYX(S) array-like; regions come from pylibCZIrw's ROI reads."""

    def __init__(self, doc: Any, rect: tuple[int, int, int, int], sizes: dict[str, int], dtype: str, samples: int, lock: threading.Lock) -> None:
        self.doc = doc
        self.rect = rect
        self.lock = lock
        self.samples = samples
        x, y, w, h = rect
        self.shape: tuple[int, ...] = (sizes["T"], sizes["C"], sizes["Z"], h, w) + ((samples,) if samples > 1 else ())
        self.dtype = np.dtype(dtype)
        self.ndim = len(self.shape)
        self.chunks = (1, 1, 1, min(h, 1024), min(w, 1024)) + ((samples,) if samples > 1 else ())

    def __getitem__(self, key: Any) -> np.ndarray:
        key = tuple(key) + (slice(None),) * (self.ndim - len(tuple(key)))
        idx = []
        for k, n in zip(key[:5], self.shape[:5], strict=True):
            if isinstance(k, slice):
                idx.append((range(*k.indices(n)), True))
            else:
                idx.append((range(int(k), int(k) + 1), False))
        (ts, _), (cs, _), (zs, _), (ys, _), (xs, _) = idx
        out = np.zeros((len(ts), len(cs), len(zs), len(ys), len(xs), self.samples), self.dtype)
        if len(ys) and len(xs):
            y0, y1 = ys.start, ys[-1] + 1
            x0, x1 = xs.start, xs[-1] + 1
            rx, ry = self.rect[0], self.rect[1]
            for a, t in enumerate(ts):
                for b, c in enumerate(cs):
                    for d, z in enumerate(zs):
                        with self.lock:
                            plane = self.doc.read(plane={"T": t, "C": c, "Z": z}, roi=(rx + x0, ry + y0, x1 - x0, y1 - y0))
                        plane = plane[:: ys.step, :: xs.step]
                        if self.samples >= 3:
                            plane = plane[..., ::-1][..., : self.samples] if self.samples == 3 else plane
                        out[a, b, d] = plane.reshape(out.shape[3:])
        out = out[..., 0] if self.samples == 1 else out[..., key[5]]
        squeeze = tuple(i for i, (_, keep) in enumerate(idx) if not keep)
        return out.squeeze(axis=squeeze) if squeeze else out


class CziDirectBackend(Backend):
    """CZI through pylibCZIrw alone, for files whose metadata bioio-czi rejects."""

    format_name = "CZI"
    reader_name = "pylibCZIrw"

    def __init__(self, res: Resolved, reason: str) -> None:
        super().__init__(res.url)
        if not res.local:
            raise CorruptFile(res.url, f"bioio-czi cannot read it ({reason}) and the fallback reader needs a local file")
        from pylibCZIrw import czi as pyczi

        self.res = res
        self.lock = threading.Lock()
        try:
            self._ctx = pyczi.open_czi(res.path)
            self.doc = self._ctx.__enter__()
            bbox = self.doc.total_bounding_box
            self.rects = dict(self.doc.scenes_bounding_rectangle)
            ptypes = self.doc.pixel_types
            raw = self.doc.raw_metadata
        except Exception as exc:
            raise CorruptFile(res.url, f"not a readable CZI file ({_first_line(exc)})") from exc
        self.sizes = {a: int(bbox.get(a, (0, 1))[1] - bbox.get(a, (0, 1))[0]) for a in "TCZ"}
        if not self.rects:
            x0, x1 = bbox["X"]
            y0, y1 = bbox["Y"]
            self.rects = {0: (x0, y0, x1 - x0, y1 - y0)}
        else:
            self.rects = {k: (r.x, r.y, r.w, r.h) for k, r in self.rects.items()}
        first = next(iter(ptypes.values()))
        if first not in _CZI_DTYPES:
            raise UnsupportedFormat(res.url, f"unsupported CZI pixel type {first}")
        self.dtype, self.samples = _CZI_DTYPES[first]
        self.channel_names, self.physical = _czi_metadata(raw, res.url)

    @property
    def scene_names(self) -> list[str]:
        return [f"Scene:{k}" for k in sorted(self.rects)]

    def _load_scene(self, index: int) -> SceneData:
        key = sorted(self.rects)[index]
        arr = _CziArray(self.doc, self.rects[key], self.sizes, self.dtype, self.samples, self.lock)
        axes = "TCZYX" + ("S" if self.samples > 1 else "")
        level = Level(arr, AxisMap(axes), chunks=arr.chunks, name="czi")
        levels = [level, *virtual_pyramid(level)]
        nc = level.shape[1]
        names = (self.channel_names + [f"C{i}" for i in range(nc)])[:nc]
        names = [n or f"C{i}" for i, n in enumerate(names)]
        channels = [Channel(n, c) for n, c in zip(names, default_colors(nc), strict=True)]
        name = self.scene_names[index]
        physical = self.physical
        return SceneData(
            name=name,
            levels=levels,
            physical_size=physical,
            channels=channels,
            ome=lambda: synthesize_ome([(name, level.shape, level.dtype, physical, channels)]),
            virtual_pyramid=len(levels) > 1,
        )

    def close(self) -> None:
        self._ctx.__exit__(None, None, None)


def _czi_metadata(raw: str, source: str) -> tuple[list[str], PhysicalSize]:
    try:
        root = ET.fromstring(check_xml(raw, source))
    except (ET.ParseError, CorruptFile):
        return [], PhysicalSize()
    names = [ch.get("Name") or "" for ch in root.iterfind(".//Information/Image/Dimensions/Channels/Channel")]
    sizes: dict[str, float | None] = {}
    for dist in root.iterfind(".//Scaling/Items/Distance"):
        value = dist.findtext("Value")
        um = PhysicalSize.clean(value)
        sizes[dist.get("Id", "")] = um * 1e6 if um is not None else None
    return names, PhysicalSize(sizes.get("X"), sizes.get("Y"), sizes.get("Z"))


def open_czi(res: Resolved) -> Backend:
    """bioio-czi first (rich metadata, mosaics); pylibCZIrw alone when bioio-czi refuses the file."""
    try:
        backend = BioioBackend(res, "czi", "CZI")
        backend.scene(0)  # bioio-czi validates metadata lazily; find out now
        return backend
    except CorruptFile as exc:
        try:
            return CziDirectBackend(res, exc.reason)
        except BioimnbError:
            raise exc from None
