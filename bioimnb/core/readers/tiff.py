"""TIFF family through tifffile: OME-TIFF (SubIFD and page pyramids, multi-scene), ImageJ,
plain TIFF, and TIFF-based whole-slide formats (SVS, NDPI, SCN, QPTIFF, generic tiled pyramids).

Why not bioio-ome-tiff: it reports a SubIFD pyramid as one level and its dask array has one
chunk per whole plane (a 256 x 256 preview tile of a 16k x 16k plane decodes the whole plane).
tifffile's zarr view reads exactly the TIFF tiles or strips a region touches.
"""

from __future__ import annotations

import logging
import os
import re
from functools import cached_property
from typing import Any

import numpy as np
import tifffile
import zarr

from ..axes import AxisMap
from ..errors import CorruptFile, UnsupportedFormat
from ..ome import OmeImageSummary, color_hex, parse_ome_xml, summarize_ome_xml, synthesize_ome
from ..storage import Resolved, storage_errors
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
from .tiff_direct import _FD, direct_level

log = logging.getLogger(__name__)

_ASSOCIATED = {"thumbnail", "label", "macro", "map", "overview"}
_UNIT_UM = {
    "micron": 1.0,
    "microns": 1.0,
    "um": 1.0,
    "µm": 1.0,
    "\u03bcm": 1.0,
    "micrometer": 1.0,
    "nm": 1e-3,
    "nanometer": 1e-3,
    "mm": 1e3,
    "millimeter": 1e3,
    "cm": 1e4,
    "m": 1e6,
}
_OME_UNIT_UM = {"µm": 1.0, "um": 1.0, "nm": 1e-3, "mm": 1e3, "cm": 1e4, "m": 1e6, "Å": 1e-4, "pm": 1e-6}


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


class TiffBackend(Backend):
    reader_name = "tifffile"

    def __init__(self, res: Resolved, size: int) -> None:
        super().__init__(res.url)
        self.res = res
        self.size = size
        capture = _Capture()
        tlog = logging.getLogger("tifffile")
        tlog.addHandler(capture)
        try:
            with storage_errors(res.url):
                if res.local:
                    self._fh: Any = None
                    self.tif = tifffile.TiffFile(res.path)
                else:
                    self._fh = res.fs.open(res.path, "rb", block_size=2**18, cache_type="readahead")
                    self.tif = tifffile.TiffFile(self._fh, name=res.name)
                series = list(self.tif.series)
        except tifffile.TiffFileError as exc:
            raise CorruptFile(res.url, f"not a valid TIFF file ({exc})") from exc
        except (ValueError, IndexError, KeyError, struct_error()) as exc:
            raise CorruptFile(res.url, f"malformed TIFF structure ({type(exc).__name__}: {exc})") from exc
        finally:
            tlog.removeHandler(capture)
        self._log = capture.messages
        self._fd: _FD | None = None
        self._warnings: list[str] = []
        self.series = [s for s in series if (s.name or "").strip().lower() not in _ASSOCIATED or s is series[0]]
        self.associated = {
            (s.name or f"image{i}").strip().lower(): s
            for i, s in enumerate(series)
            if s not in self.series
        }
        if not self.series:
            raise CorruptFile(res.url, "TIFF holds no image data")
        self._check_integrity()
        self.format_name = self._format_name()

    # -- facts about the file -------------------------------------------------------------
    def _format_name(self) -> str:
        t = self.tif
        for flag, name in (
            ("is_ome", "OME-TIFF"),
            ("is_svs", "SVS"),
            ("is_ndpi", "NDPI"),
            ("is_scn", "SCN"),
            ("is_qpi", "QPTIFF"),
            ("is_lsm", "LSM"),
            ("is_stk", "STK"),
            ("is_imagej", "ImageJ TIFF"),
        ):
            if getattr(t, flag, False):
                return name
        return "TIFF"

    def _check_integrity(self) -> None:
        if self.size <= 0:
            return
        end = 0
        for s in self.series:
            for lvl in s.levels:
                pages = lvl.pages
                seen: set[int] = set()
                for p in (pages[0], pages[-1]) if len(pages) else ():
                    if p is None or id(p) in seen:
                        continue
                    seen.add(id(p))
                    offsets = np.asarray(getattr(p, "dataoffsets", ()) or (), dtype=np.uint64)
                    counts = np.asarray(getattr(p, "databytecounts", ()) or (), dtype=np.uint64)
                    if offsets.size and offsets.size == counts.size:
                        end = max(end, int((offsets + counts).max()))
            check_declared_size(self.res.url, tuple(s.shape), s.dtype)
        if end > self.size:
            raise CorruptFile(
                self.res.url,
                f"truncated: image data runs to byte {end} but the file has {self.size} bytes",
            )
        for message in self._log:
            low = message.lower()
            if "offset" in low and ("invalid" in low or "out of range" in low or "beyond" in low):
                raise CorruptFile(self.res.url, f"truncated or corrupt TIFF ({message.splitlines()[0]})")

    @cached_property
    def _summary(self) -> list[OmeImageSummary] | None:
        """The OME-XML's images (names, sizes, channels), or None without usable OME-XML."""
        xml = self.tif.ome_metadata if self.tif.is_ome else None
        if not xml:
            return None
        try:
            return summarize_ome_xml(xml, self.res.url)
        except CorruptFile as exc:
            log.warning("%s", exc)
            self._warnings.append(f"OME-XML not used: {exc.reason}; pixels are read, metadata is synthesised")
            return None

    @cached_property
    def _ome(self) -> Any:
        """The full ome-types model (built only when ``img.ome`` is asked for)."""
        if self._summary is None:
            return None
        try:
            return parse_ome_xml(self.tif.ome_metadata or "", self.res.url)
        except CorruptFile as exc:
            log.warning("%s", exc)
            self._warnings.append(f"OME-XML not used: {exc.reason}; metadata is synthesised")
            return None

    def status(self) -> dict[str, Any]:
        self._summary  # noqa: B018 - read now so that a refused OME-XML is reported
        return {"warnings": list(self._warnings)} if self._warnings else {}

    def ome_xml(self) -> str | None:
        return self.tif.ome_metadata if self.tif.is_ome else None

    @property
    def scene_names(self) -> list[str]:
        names = []
        for i, s in enumerate(self.series):
            name = (s.name or "").strip()
            if self.format_name in ("SVS", "NDPI") and name.lower() == "baseline":
                name = ""
            names.append(name or f"Image:{i}")
        return names

    # -- one scene -----------------------------------------------------------------------
    def _native(self, series_index: int, level: int) -> tuple[Any, tuple[int, ...] | None]:
        s = self.series[series_index]
        lv = s.levels[level]
        if (
            self.res.local
            and len(s.levels) == 1
            and lv.dataoffset is not None
            and lv.keyframe.compression == 1
            and lv.keyframe.predictor == 1
            and lv.keyframe.fillorder == 1
        ):
            # Contiguous, uncompressed: a memory map reads only the pages a region touches.
            mm = np.memmap(
                self.res.path,
                dtype=np.dtype(lv.dtype).newbyteorder(self.tif.byteorder),
                mode="r",
                offset=lv.dataoffset,
                shape=tuple(lv.shape),
            )
            return mm, None
        if self.res.local and os.environ.get("BIOIMNB_TIFF_READER", "direct") == "direct":
            if self._fd is None:
                self._fd = _FD(self.res.path)
            direct = direct_level(lv, self._fd)
            if direct is not None:
                return direct, direct.chunks
        store = self.tif.aszarr(series=series_index, level=level)
        arr = zarr.open_array(store, mode="r")
        return arr, tuple(arr.chunks)

    def _load_scene(self, index: int) -> SceneData:
        s = self.series[index]
        axis_map = AxisMap(s.axes, self.res.url)
        levels = []
        for k in range(len(s.levels)):
            with storage_errors(self.res.url):
                native, chunks = self._native(index, k)
            levels.append(Level(native, AxisMap(s.levels[k].axes, self.res.url), chunks=chunks, name="tiff"))
        virtual = False
        if len(levels) == 1:
            extra = virtual_pyramid(levels[0])
            virtual = bool(extra)
            levels += extra
        shape = levels[0].shape
        physical, channels = self._scene_metadata(index, shape, axis_map)
        name = self.scene_names[index]

        def build_ome() -> Any:
            if self._ome is not None:
                return self._ome
            return synthesize_ome([(name, shape, levels[0].dtype, physical, channels)])

        return SceneData(
            name=name,
            levels=levels,
            physical_size=physical,
            channels=channels,
            ome=build_ome,
            virtual_pyramid=virtual,
        )

    def _ome_image(self, index: int) -> OmeImageSummary | None:
        images = self._summary
        if not images:
            return None
        name = (self.series[index].name or "").strip()
        for img in images:
            if name and img.name == name:
                return img
        return images[index] if index < len(images) else None

    def _scene_metadata(
        self, index: int, shape: tuple[int, ...], axis_map: AxisMap
    ) -> tuple[PhysicalSize, list[Channel]]:
        nc = shape[1]
        rgb = "S" in axis_map.target
        names = [f"C{i}" for i in range(nc)] if not (rgb and nc == 1) else ["RGB"]
        colors = default_colors(nc)
        phys = PhysicalSize()
        img = self._ome_image(index)
        if img is not None:
            phys = PhysicalSize(_ome_len(*img.size_x), _ome_len(*img.size_y), _ome_len(*img.size_z))
            for i, (ch_name, ch_color) in enumerate(img.channels[:nc]):
                if ch_name:
                    names[i] = ch_name
                colors[i] = color_hex(ch_color) or colors[i]
        elif self.tif.is_imagej:
            phys = self._imagej_size()
        elif self.format_name == "SVS":
            phys = self._svs_size()
        else:
            phys = self._resolution_size()
        return phys, [Channel(n, c) for n, c in zip(names, colors, strict=True)]

    def _resolution_size(self, unit_override: float | None = None) -> PhysicalSize:
        page = self.tif.pages.first
        xres = page.tags.get("XResolution")
        yres = page.tags.get("YResolution")
        unit = page.tags.get("ResolutionUnit")
        if xres is None or yres is None:
            return PhysicalSize()
        per_unit_um = unit_override
        if per_unit_um is None:
            code = int(unit.value) if unit is not None else 2
            if code == 3:
                per_unit_um = 1e4
            elif code == 2:
                per_unit_um = 25400.0
            else:
                return PhysicalSize()

        def size(tag: Any) -> float | None:
            num, den = tag.value if isinstance(tag.value, tuple) else (tag.value, 1)
            if not num or not den:
                return None
            pixels_per_unit = num / den
            um = per_unit_um / pixels_per_unit
            # Inch-based values of 1200 dpi or less are display/print defaults (72, 96, 300 dpi),
            # not the sampling of a microscope.
            if unit_override is None and per_unit_um == 25400.0 and pixels_per_unit <= 1200:
                return None
            return PhysicalSize.clean(um)

        return PhysicalSize(size(xres), size(yres), None)

    def _imagej_size(self) -> PhysicalSize:
        meta = self.tif.imagej_metadata or {}
        unit = str(meta.get("unit", "")).strip().lower().replace("\\u00b5", "µ")
        factor = _UNIT_UM.get(unit)
        if factor is None:
            return PhysicalSize()
        xy = self._resolution_size(unit_override=factor)
        z = PhysicalSize.clean(meta.get("spacing"))
        return PhysicalSize(xy.X, xy.Y, z * factor if z else None)

    def _svs_size(self) -> PhysicalSize:
        desc = self.tif.pages.first.description or ""
        m = re.search(r"MPP\s*=\s*([0-9.eE+-]+)", desc)
        mpp = PhysicalSize.clean(m.group(1)) if m else None
        return PhysicalSize(mpp, mpp, None)

    def close(self) -> None:
        try:
            self.tif.close()
        finally:
            if self._fh is not None:
                self._fh.close()
            if self._fd is not None:
                self._fd.close()


def _ome_len(value: Any, unit: Any) -> float | None:
    v = PhysicalSize.clean(value)
    if v is None:
        return None
    symbol = getattr(unit, "value", unit) or "µm"
    return v * _OME_UNIT_UM.get(str(symbol), 1.0)


def struct_error() -> type[Exception]:
    import struct

    return struct.error


def open_tiff(res: Resolved, size: int) -> TiffBackend:
    if size == 0:
        raise CorruptFile(res.url, "file is empty (0 bytes)")
    try:
        return TiffBackend(res, size)
    except UnsupportedFormat:
        raise
    except MemoryError as exc:
        raise CorruptFile(res.url, "declares sizes too large to read") from exc


__all__ = ["TiffBackend", "open_tiff"]
