"""Whole-slide formats that only OpenSlide reads (MRXS, VMS, BIF, and any slide OpenSlide
recognises that tifffile does not).  TIFF-based slides (SVS, NDPI, SCN) go through tifffile,
which reads their tiles without the RGBA round trip and works on remote storage too.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from ..axes import AxisMap
from ..errors import BioimnbError, CorruptFile, PathEscapesRoot, UnsupportedFormat
from ..metadata.ome import synthesize_ome
from ..storage import Resolved, inside
from .base import Backend, Channel, Level, PhysicalSize, SceneData


class _OpenSlideLevel:
    """A level as a ``YXS`` uint8 array-like; transparent (unscanned) areas read as white."""

    def __init__(self, slide: Any, level: int, lock: threading.Lock) -> None:
        self.slide = slide
        self.level = level
        self.lock = lock
        w, h = slide.level_dimensions[level]
        self.shape = (h, w, 3)
        self.dtype = np.dtype("uint8")
        self.ndim = 3
        self.chunks = (min(512, h), min(512, w), 3)
        self.downsample = float(slide.level_downsamples[level])

    def __getitem__(self, key: Any) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        key = key + (slice(None),) * (3 - len(key))
        ky, kx, ks = key
        ys = ky if isinstance(ky, slice) else slice(int(ky), int(ky) + 1)
        xs = kx if isinstance(kx, slice) else slice(int(kx), int(kx) + 1)
        y0, y1, ystep = ys.indices(self.shape[0])
        x0, x1, xstep = xs.indices(self.shape[1])
        h, w = max(0, y1 - y0), max(0, x1 - x0)
        if h == 0 or w == 0:
            out = np.zeros((h, w, 3), np.uint8)
        else:
            ds = self.downsample
            with self.lock:
                region = self.slide.read_region((int(round(x0 * ds)), int(round(y0 * ds))), self.level, (w, h))
            rgba = np.asarray(region)
            out = rgba[..., :3].copy()
            out[rgba[..., 3] == 0] = 255
        out = out[::ystep, ::xstep]
        if not isinstance(ky, slice):
            out = out[0]
            if not isinstance(kx, slice):
                return out[0][ks]
            return out[:, ks]
        if not isinstance(kx, slice):
            return out[:, 0][:, ks]
        return out[:, :, ks]


def _check_data_folder(res: Resolved) -> None:
    """OpenSlide opens an MRXS slide's data files itself, by name: before it does, every entry
    of the data folder must be a regular file (a FIFO would hang it) lying inside the root,
    links resolved; the folder itself too."""
    import os
    import stat

    folder = res.path[: -len(".mrxs")]
    if not os.path.lexists(folder):
        return
    entries = [folder]
    if os.path.isdir(folder):
        entries += [os.path.join(folder, name) for name in sorted(os.listdir(folder))]
    for path in entries:
        real = os.path.realpath(path)
        shown = os.path.relpath(path, os.path.dirname(folder))
        if res.root is not None and not inside(real, res.root):
            raise PathEscapesRoot(res.url, f"data file {shown!r} lies outside the root")
        try:
            mode = os.stat(real).st_mode
        except OSError:
            continue  # a dangling entry: OpenSlide reports what it needs
        if path != folder and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise CorruptFile(res.url, f"data file {shown!r} is not a regular file")


class OpenSlideBackend(Backend):
    reader_name = "openslide"

    def __init__(self, res: Resolved, format_name: str) -> None:
        super().__init__(res.url)
        if not res.local:
            raise UnsupportedFormat(res.url, f"{format_name} slides can only be read from local storage (OpenSlide)")
        import openslide

        if res.path.lower().endswith(".mrxs"):
            _check_data_folder(res)
        try:
            self.slide = openslide.OpenSlide(res.path)
        except openslide.OpenSlideUnsupportedFormatError as exc:
            raise UnsupportedFormat(res.url, f"OpenSlide does not recognise this {format_name} file") from exc
        except openslide.OpenSlideError as exc:
            raise CorruptFile(res.url, f"OpenSlide cannot read this slide ({exc})") from exc
        self.format_name = format_name
        self.lock = threading.Lock()
        self.res = res

    @property
    def scene_names(self) -> list[str]:
        return [self.res.name]

    def _load_scene(self, index: int) -> SceneData:
        levels = []
        for k in range(self.slide.level_count):
            arr = _OpenSlideLevel(self.slide, k, self.lock)
            levels.append(Level(arr, AxisMap("YXS"), chunks=arr.chunks, name="openslide"))
        props = self.slide.properties
        mpp_x = PhysicalSize.clean(props.get("openslide.mpp-x"))
        mpp_y = PhysicalSize.clean(props.get("openslide.mpp-y"))
        physical = PhysicalSize(mpp_x, mpp_y, None)
        channels = [Channel("RGB", "FFFFFF")]
        name = self.scene_names[index]
        return SceneData(
            name=name,
            levels=levels,
            physical_size=physical,
            channels=channels,
            ome=lambda: synthesize_ome([(name, levels[0].shape, levels[0].dtype, physical, channels)]),
        )

    def status(self) -> dict[str, Any]:
        names = self.associated_names()
        return {"associated": names} if names else {}

    def associated_names(self) -> list[str]:
        """Names of the slide's associated images (label, macro, thumbnail, ...)."""
        return sorted(self.slide.associated_images)

    def associated(self, name: str) -> np.ndarray:
        """An associated image as a (Y, X, 3) uint8 RGB array."""
        from ..limits import limits

        if name not in self.slide.associated_images:
            shown = ", ".join(repr(n) for n in self.associated_names()) or "none"
            raise BioimnbError(self.source, f"no associated image {name!r}; associated images: {shown}")
        props = self.slide.properties
        try:
            nbytes = int(props[f"openslide.associated.{name}.width"]) * int(props[f"openslide.associated.{name}.height"]) * 4
        except (KeyError, ValueError):
            nbytes = 0
        cap = limits().max_decode_bytes
        if nbytes > cap:
            raise CorruptFile(self.source, f"associated image {name!r} of {nbytes} bytes exceeds the decode limit of {cap} bytes")
        with self.lock:
            image = self.slide.associated_images[name]
        return np.ascontiguousarray(np.asarray(image.convert("RGB")))

    def files(self) -> list[str]:
        """The slide file and, for MRXS, every file of its data folder (same stem, no suffix)."""
        import os

        out = [self.source]
        if self.res.path.lower().endswith(".mrxs"):
            folder = self.res.path[: -len(".mrxs")]
            if os.path.isdir(folder):
                out.append(folder)
                for dirpath, dirnames, filenames in os.walk(folder):
                    dirnames.sort()
                    out.extend(os.path.join(dirpath, name) for name in sorted(filenames))
        return out

    def close(self) -> None:
        self.slide.close()
