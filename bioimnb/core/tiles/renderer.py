""":class:`TileRenderer`: tiles, pixel values, contrast and histograms of one opened image, over a
raw-tile cache, for the notebook widget and the REST server.

The pieces it puts together live beside it: the level rule and view state in
:mod:`~bioimnb.core.tiles.view`, tile grids and the per-request chunk bound in
:mod:`~bioimnb.core.tiles.grid`, compositing and encoding in :mod:`~bioimnb.core.tiles.render`,
statistics in :mod:`~bioimnb.core.tiles.stats`, the cache in :mod:`~bioimnb.core.tiles.cache`.

Work per request is bounded: a tile, ``values`` or ``histogram`` request that would open more than
``limits().max_chunks_per_request`` storage chunks is refused before it reads
(:class:`~bioimnb.core.tiles.grid.TooManyChunks`); ``info`` lists at most
:data:`MAX_INFO_CHANNELS` channels and computes auto contrast for at most
:data:`AUTO_CONTRAST_CHANNELS`; ``histogram`` reads only its channel.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Hashable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..readers.base import VIRTUAL_BLOCK, virtual_factor
from .cache import TileCache
from .grid import OutOfRange, TooManyChunks, check_chunks, chunks_touched, tile_bounds, tile_range
from .render import (
    _as_channel_dtype,
    composite_channels,
    encode_rgba,
    identity_window,
    label_colors,
    window_scale,
)
from .stats import (
    AUTO_MAX_EDGE,
    AUTO_MAX_PLANES,
    histogram_of,
    json_number,
    percentile_window,
)
from .view import ChannelView, ViewState, level_for_zoom

if TYPE_CHECKING:  # pragma: no cover
    from ..images import MultiscaleImage

__all__ = [
    "AUTO_CONTRAST_CHANNELS",
    "DEFAULT_VISIBLE_CHANNELS",
    "MAX_INFO_CHANNELS",
    "TileRenderer",
]

DEFAULT_VISIBLE_CHANNELS = 6
"""The default view shows at most this many channels (the first ones); others start hidden."""

AUTO_CONTRAST_CHANNELS = 16
"""The default view's contrast is auto (percentiles of the coarsest level) for the first this
many channels; further channels start with the identity window of the dtype (read nothing)."""

MAX_INFO_CHANNELS = 1000
""":meth:`TileRenderer.info` lists at most this many channels (``size_c`` says how many there
are): 100,000 channels would otherwise be 11.8 MB of JSON and as many controls."""

_PALETTE = ["FF0000", "00FF00", "0000FF", "FF00FF", "00FFFF", "FFFF00", "FFFFFF"]


class TileRenderer:
    """Renders tiles of one opened image (all of its scenes), with a raw tile cache.

    Thread-safe: a server may call it from several threads at once (reads go through
    :meth:`MultiscaleImage.read`, whose readers serialise themselves where needed).
    """

    def __init__(
        self,
        image: MultiscaleImage,
        tile_size: int = 256,
        cache_bytes: int = 256 * 2**20,
        *,
        cache: TileCache | None = None,
    ) -> None:
        """``cache_bytes`` bounds this renderer's own raw tile cache; pass ``cache`` instead to
        share one :class:`TileCache` (and its bound) between renderers.  Either way the cache
        draws from the process-wide memory budget (:mod:`bioimnb.core.cache`)."""
        if tile_size < 16:
            raise ValueError(f"tile_size must be at least 16, not {tile_size}")
        self.image = image
        self.tile_size = int(tile_size)
        self.cache = cache if cache is not None else TileCache(cache_bytes)
        # Keys are (scene, level, t, z, c, tx, ty), prefixed by a token unique to this renderer
        # when the cache is shared.
        self._key_prefix: tuple[Hashable, ...] = () if cache is None else (object(),)
        self._scenes: dict[int, MultiscaleImage] = {image.scene_index: image}
        self._labels: dict[tuple[int, str], MultiscaleImage] = {}
        self._auto: dict[tuple[int, int, int | None, int], tuple[float, float]] = {}
        # Chunk shapes per image (scene or label image) this renderer reads: computing them
        # costs ~20 us, a tenth of a cached render.
        self._chunk_shapes: dict[int, tuple[MultiscaleImage, list[tuple[int, ...]]]] = {}
        self._lock = threading.Lock()

    # -- scenes and geometry -------------------------------------------------------------------

    def _error(self, reason: str) -> OutOfRange:
        return OutOfRange(self.image.source, reason)

    def scene_image(self, scene: int) -> MultiscaleImage:
        """The image of scene ``scene`` (opened once, then reused)."""
        with self._lock:
            found = self._scenes.get(scene)
        if found is not None:
            return found
        n = len(self.image.scenes)
        if not 0 <= scene < n:
            raise self._error(f"no scene {scene}; the image has {n} scene(s)")
        img = self.image.select_scene(scene)
        with self._lock:
            return self._scenes.setdefault(scene, img)

    def _label_image(self, scene: int, name: str) -> MultiscaleImage:
        key = (scene, name)
        with self._lock:
            found = self._labels.get(key)
        if found is not None:
            return found
        img = self.scene_image(scene).label(name)
        with self._lock:
            return self._labels.setdefault(key, img)

    @staticmethod
    def _is_rgb(img: MultiscaleImage) -> bool:
        return img.axes.endswith("S")

    def _check_level(self, img: MultiscaleImage, level: int) -> tuple[int, int]:
        """(height, width) of ``level``."""
        shapes = img.level_shapes
        if not 0 <= level < len(shapes):
            raise self._error(f"no level {level}; the image has {len(shapes)} level(s)")
        shape = shapes[level]
        return int(shape[3]), int(shape[4])

    def _check_plane(self, img: MultiscaleImage, t: int, z: int) -> None:
        size_t, size_z = int(img.shape[0]), int(img.shape[2])
        if not 0 <= t < size_t:
            raise self._error(f"no time point {t}; the image has {size_t}")
        if not 0 <= z < size_z:
            raise self._error(f"no z plane {z}; the image has {size_z}")

    def _check_channels(self, img: MultiscaleImage, indices: Iterable[int]) -> None:
        n_channels = int(img.shape[1])
        for c in indices:
            if not 0 <= c < n_channels:
                raise self._error(f"no channel {c}; the image has {n_channels}")

    def downsamples(self, scene: int = 0) -> list[tuple[float, float]]:
        """``(dy, dx)`` of every level: level-0 pixels per level pixel in Y and X."""
        shapes = self.scene_image(scene).level_shapes
        y0, x0 = shapes[0][3], shapes[0][4]
        return [(y0 / max(1, s[3]), x0 / max(1, s[4])) for s in shapes]

    def tile_grid(self, scene: int, level: int) -> tuple[int, int]:
        """``(columns, rows)`` of tiles of ``level``."""
        h, w = self._check_level(self.scene_image(scene), level)
        return math.ceil(w / self.tile_size), math.ceil(h / self.tile_size)

    def level_for_zoom(self, scene: int, zoom: float, pixel_ratio: float = 1.0) -> int:
        """The pyramid level to draw at ``zoom`` (screen pixels per level-0 pixel) on a screen
        of ``pixel_ratio`` device pixels per screen pixel: :func:`bioimnb.core.tiles.view.
        level_for_zoom` (the one rule, which the browser's viewer repeats) of this scene's
        downsamples in X."""
        return level_for_zoom([dx for _, dx in self.downsamples(scene)], zoom, pixel_ratio)

    def tiles_for_viewport(
        self, scene: int, level: int, x0: float, y0: float, x1: float, y1: float
    ) -> list[tuple[int, int]]:
        """``(tx, ty)`` of the tiles of ``level`` overlapping the level-0 rectangle
        ``[x0, x1) x [y0, y1)``, row by row; parts outside the image are ignored (an empty list
        when the rectangle misses the image or is empty)."""
        h, w = self._check_level(self.scene_image(scene), level)
        found = tile_range(h, w, self.downsamples(scene)[level], self.tile_size, (x0, y0, x1, y1))
        if found is None:
            return []
        tx0, tx1, ty0, ty1 = found
        return [(tx, ty) for ty in range(ty0, ty1 + 1) for tx in range(tx0, tx1 + 1)]

    def tile_bounds(self, scene: int, level: int, tx: int, ty: int) -> tuple[int, int, int, int]:
        """``(y0, y1, x0, x1)`` of tile ``(tx, ty)`` in level pixels (edge tiles are smaller)."""
        h, w = self._check_level(self.scene_image(scene), level)
        found = tile_bounds(h, w, self.tile_size, tx, ty)
        if found is None:
            cols, rows = math.ceil(w / self.tile_size), math.ceil(h / self.tile_size)
            raise self._error(
                f"no tile ({tx}, {ty}) at level {level}; it has {cols} x {rows} tiles"
            )
        return found

    # -- work bounds ---------------------------------------------------------------------------

    def chunks_for(
        self,
        img: MultiscaleImage,
        level: int,
        ranges: Sequence[tuple[int, int]],
    ) -> int:
        """Storage chunks a read of ``level`` over ``ranges`` (``(start, stop)`` for T, C, Z, Y
        and X, in that level's pixels) opens.  A virtual level (an image without a pyramid)
        reads whole blocks of ``VIRTUAL_BLOCK`` pixels sampled from level 0 with a stride."""
        ranges = list(ranges)
        if len(img.axes) == 6:
            ranges.append((0, int(img.shape[5])))
        if img.virtual_pyramid and level > 0:
            factor = virtual_factor(level)
            hl, wl = img.level_shapes[level][3], img.level_shapes[level][4]
            b = VIRTUAL_BLOCK
            (ya, yb), (xa, xb) = ranges[3], ranges[4]
            ranges[3] = ((ya // b) * b, min(hl, -(-yb // b) * b))
            ranges[4] = ((xa // b) * b, min(wl, -(-xb // b) * b))
            strides = [1, 1, 1, factor, factor] + [1] * (len(ranges) - 5)
            return chunks_touched(self._chunks_of(img)[0], ranges, strides)
        return chunks_touched(self._chunks_of(img)[level], ranges)

    def _chunks_of(self, img: MultiscaleImage) -> list[tuple[int, ...]]:
        found = self._chunk_shapes.get(id(img))
        if found is None or found[0] is not img:
            found = (img, img.chunk_shapes)
            with self._lock:
                self._chunk_shapes[id(img)] = found
        return found[1]

    def _bound(self, what: str, count: int) -> None:
        check_chunks(self.image.source, what, count)

    # -- raw reads (cached) --------------------------------------------------------------------

    def _raw_channels(
        self, scene: int, level: int, t: int, z: int, cs: Sequence[int], tx: int, ty: int
    ) -> dict[int, np.ndarray]:
        """Raw tile arrays ``(h, w)`` (``(h, w, S)`` for RGB) of channels ``cs``, cached."""
        img = self.scene_image(scene)
        out: dict[int, np.ndarray] = {}
        missing: list[int] = []
        for c in dict.fromkeys(cs):
            hit = self.cache.get((*self._key_prefix, scene, level, t, z, c, tx, ty))
            if hit is None:
                missing.append(c)
            else:
                out[c] = hit
        if not missing:
            return out
        y0, y1, x0, x1 = self.tile_bounds(scene, level, tx, ty)
        ys, xs = slice(y0, y1), slice(x0, x1)
        lo, hi = min(missing), max(missing)
        plane = [(t, t + 1), (0, 0), (z, z + 1), (y0, y1), (x0, x1)]
        if len(missing) > 1 and hi - lo + 1 <= 2 * len(missing):
            # One read for neighbouring channels (one request per chunk for chunked stores).
            plane[1] = (lo, hi + 1)
            self._bound("tile", self.chunks_for(img, level, plane))
            block = img.read(level, t=t, c=slice(lo, hi + 1), z=z, y=ys, x=xs)
            for c in missing:
                out[c] = np.ascontiguousarray(block[c - lo])
        else:
            count = 0
            for c in missing:
                plane[1] = (c, c + 1)
                count += self.chunks_for(img, level, plane)
            self._bound("tile", count)
            for c in missing:
                out[c] = np.ascontiguousarray(img.read(level, t=t, c=c, z=z, y=ys, x=xs))
        for c in missing:
            self.cache.put((*self._key_prefix, scene, level, t, z, c, tx, ty), out[c])
        return out

    def raw_tile(
        self, scene: int, level: int, t: int, z: int, tx: int, ty: int, channels: Sequence[int]
    ) -> list[np.ndarray]:
        """The raw pixels of tile ``(tx, ty)`` of ``level``, plane ``(t, z)``, one C-contiguous,
        little-endian ``(h, w)`` array per index in ``channels`` (in that order).

        The tile is the one :meth:`render_rgba` composites (same bounds, same cache).  The dtype
        is :func:`~bioimnb.core.tiles.render.channel_dtype` of the image's: uint8 and uint16 as
        stored, anything else as float32, which loses nothing that rendering uses
        (:func:`~bioimnb.core.tiles.render.composite_channels` works on float32).  For the
        notebook widget, which composites in the browser.  RGB images (axes ending in ``S``)
        have no per-channel tiles: :meth:`render_rgba` draws them.
        """
        img = self.scene_image(scene)
        self._check_level(img, level)
        self._check_plane(img, t, z)
        if self._is_rgb(img):
            raise self._error("an RGB image has no single-channel tiles; render it as RGBA")
        indices = [int(c) for c in channels]
        self._check_channels(img, indices)
        self.tile_bounds(scene, level, tx, ty)  # range check before any read
        raws = self._raw_channels(scene, level, t, z, indices, tx, ty)
        return [_as_channel_dtype(raws[c]) for c in indices]

    def _label_tile(
        self, scene: int, level: int, t: int, z: int, name: str, tx: int, ty: int
    ) -> np.ndarray:
        """Label ids ``(h, w)`` on the tile's pixels (nearest neighbour from the closest level)."""
        key = (*self._key_prefix, "label", name, scene, level, t, z, tx, ty)
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        img = self.scene_image(scene)
        lab = self._label_image(scene, name)
        y0, y1, x0, x1 = self.tile_bounds(scene, level, tx, ty)
        shapes = img.level_shapes
        hl, wl = shapes[level][3], shapes[level][4]
        dx = shapes[0][4] / max(1, wl)
        # The label level whose downsample (relative to the image's level 0) is closest.
        lshapes = lab.level_shapes
        ldx = [shapes[0][4] / max(1, s[4]) for s in lshapes]
        k = min(range(len(lshapes)), key=lambda i: (abs(math.log(ldx[i] / dx)), i))
        lh, lw = lshapes[k][3], lshapes[k][4]
        # Tile pixel (y, x) of level L -> label pixel floor((y + 0.5) * lh / hl): identity when
        # the shapes agree.
        iy = ((2 * np.arange(y0, y1) + 1) * lh) // (2 * hl)
        ix = ((2 * np.arange(x0, x1) + 1) * lw) // (2 * wl)
        iy = np.clip(iy, 0, lh - 1)
        ix = np.clip(ix, 0, lw - 1)
        lt = min(t, lab.shape[0] - 1)
        lz = min(z, lab.shape[2] - 1)
        ya, yb, xa, xb = int(iy[0]), int(iy[-1]) + 1, int(ix[0]), int(ix[-1]) + 1
        ranges = [(lt, lt + 1), (0, 1), (lz, lz + 1), (ya, yb), (xa, xb)]
        self._bound(f"label tile {name!r}", self.chunks_for(lab, k, ranges))
        region = lab.read(k, t=lt, c=0, z=lz, y=slice(ya, yb), x=slice(xa, xb))
        if region.ndim == 3:  # a label image with samples: use the first
            region = region[..., 0]
        if (yb - ya, xb - xa) == (y1 - y0, x1 - x0):
            ids = np.ascontiguousarray(region)
        else:
            ids = np.ascontiguousarray(region[np.ix_(iy - ya, ix - xa)])
        self.cache.put(key, ids)
        return ids

    # -- rendering -----------------------------------------------------------------------------

    def render_rgba(
        self,
        scene: int,
        level: int,
        t: int,
        z: int,
        tx: int,
        ty: int,
        channels: Sequence[ChannelView],
        labels: Sequence[str] = (),
        label_opacity: float = 0.5,
    ) -> np.ndarray:
        """The tile as an ``(h, w, 4)`` uint8 RGBA array.

        Multichannel images: :func:`~bioimnb.core.tiles.render.composite_channels` of the
        visible channels.  RGB images (axes ending in ``S``): samples are shown as RGB (the first
        three samples; one sample is grey); the first visible :class:`ChannelView` picks the
        channel (C index) and its ``[min, max]`` window applies to every sample; with no channel
        views, channel 0 with the identity window of the dtype (``0..255`` for uint8) is shown;
        when channel views are given but none is visible the tile is black.

        Label overlays: each named NGFF label image is resampled (nearest neighbour) onto the
        tile's pixels from the label level whose downsample is closest to the tile's level
        (normally the same one), and each non-zero label id is blended at 50 % over the tile:
        ``out = (tile + colour + 1) // 2`` per component, with ``colour = label_color(id)``;
        another ``label_opacity`` ``a`` (0..1, the notebook widget's slider) blends
        ``out = round(tile + (colour - tile) * a)``.  Id 0 is transparent.  Overlays are applied
        in the order given.
        """
        img = self.scene_image(scene)
        self._check_level(img, level)
        self._check_plane(img, t, z)
        y0, y1, x0, x1 = self.tile_bounds(scene, level, tx, ty)
        h, w = y1 - y0, x1 - x0
        self._check_channels(img, (view.index for view in channels))
        if self._is_rgb(img):
            rgb = self._render_rgb(img, scene, level, t, z, tx, ty, channels, h, w)
        else:
            rgb = self._render_composite(scene, level, t, z, tx, ty, channels, h, w)
        for name in labels:
            ids = self._label_tile(scene, level, t, z, name, tx, ty)
            mask = ids != 0
            if mask.any():
                if label_opacity == 0.5:
                    colors = label_colors(ids[mask]).astype(np.uint16)
                    rgb[mask] = ((rgb[mask].astype(np.uint16) + colors + 1) // 2).astype(np.uint8)
                else:
                    a = min(1.0, max(0.0, float(label_opacity)))
                    base = rgb[mask].astype(np.float32)
                    blend = base + (label_colors(ids[mask]).astype(np.float32) - base) * a
                    rgb[mask] = np.floor(blend + 0.5).astype(np.uint8)
        out = np.empty((h, w, 4), dtype=np.uint8)
        out[..., :3] = rgb
        out[..., 3] = 255
        return out

    def _render_composite(
        self,
        scene: int,
        level: int,
        t: int,
        z: int,
        tx: int,
        ty: int,
        channels: Sequence[ChannelView],
        h: int,
        w: int,
    ) -> np.ndarray:
        visible = [v for v in channels if v.visible]
        if not visible:
            return np.zeros((h, w, 3), dtype=np.uint8)
        raws = self._raw_channels(scene, level, t, z, [v.index for v in visible], tx, ty)
        return composite_channels([(raws[v.index], v) for v in visible], (h, w))

    def _render_rgb(
        self,
        img: MultiscaleImage,
        scene: int,
        level: int,
        t: int,
        z: int,
        tx: int,
        ty: int,
        channels: Sequence[ChannelView],
        h: int,
        w: int,
    ) -> np.ndarray:
        if channels:
            visible = [v for v in channels if v.visible]
            if not visible:
                return np.zeros((h, w, 3), dtype=np.uint8)
            c, lo, hi = visible[0].index, visible[0].min, visible[0].max
        else:
            c = 0
            lo, hi = identity_window(img.dtype)
        raw = self._raw_channels(scene, level, t, z, [c], tx, ty)[c]
        if raw.ndim == 2:
            raw = raw[..., None]
        samples = raw[..., :3] if raw.shape[-1] >= 3 else np.repeat(raw[..., :1], 3, axis=-1)
        if samples.dtype == np.uint8 and (lo, hi) == (0.0, 255.0):
            return np.array(samples, dtype=np.uint8)
        scaled = window_scale(samples, lo, hi)
        return (scaled * 255.0 + 0.5).astype(np.uint8)

    def render(
        self,
        scene: int,
        level: int,
        t: int,
        z: int,
        tx: int,
        ty: int,
        channels: Sequence[ChannelView],
        labels: Sequence[str] = (),
        fmt: str = "png",
    ) -> bytes:
        """The tile encoded as ``png`` (RGBA), ``jpeg`` (RGB) or ``raw`` (RGBA bytes, row-major)."""
        return encode_rgba(self.render_rgba(scene, level, t, z, tx, ty, channels, labels), fmt)

    # -- values, contrast, histograms ----------------------------------------------------------

    def values(self, scene: int, t: int, z: int, x: int, y: int) -> dict[str, Any]:
        """Level-0 pixel values at ``(x, y)``: ``{"x", "y", "values": [one per channel],
        "labels": {name: id}}``.  For RGB images each channel's value is its list of samples.
        NaN and infinities are ``null``.  Every label image of the scene is reported."""
        img = self.scene_image(scene)
        self._check_plane(img, t, z)
        h, w = int(img.shape[3]), int(img.shape[4])
        if not (0 <= x < w and 0 <= y < h):
            raise self._error(f"no pixel ({x}, {y}); the image is {w} x {h}")
        ranges = [(t, t + 1), (0, int(img.shape[1])), (z, z + 1), (y, y + 1), (x, x + 1)]
        self._bound("the pixel values", self.chunks_for(img, 0, ranges))
        raw = img.read(0, t=t, z=z, y=slice(y, y + 1), x=slice(x, x + 1))  # (C, 1, 1[, S])
        values = [json_number(raw[c, 0, 0]) for c in range(raw.shape[0])]
        labels: dict[str, Any] = {}
        for name in img.labels:
            lab = self._label_image(scene, name)
            lh, lw = lab.shape[3], lab.shape[4]
            iy = min(lh - 1, ((2 * y + 1) * lh) // (2 * h))
            ix = min(lw - 1, ((2 * x + 1) * lw) // (2 * w))
            lt, lz = min(t, lab.shape[0] - 1), min(z, lab.shape[2] - 1)
            px = lab.read(0, t=lt, c=0, z=lz, y=slice(iy, iy + 1), x=slice(ix, ix + 1))
            labels[name] = json_number(px.ravel()[0])
        return {"x": int(x), "y": int(y), "values": values, "labels": labels}

    def _coarsest_sample(
        self, scene: int, t: int, z: int | None, channels: Sequence[int]
    ) -> np.ndarray:
        """``(len(channels), n)`` pixels of the coarsest level: plane ``z`` (``None``: up to
        ``AUTO_MAX_PLANES`` evenly spaced planes), a centred square of at most
        ``AUTO_MAX_EDGE`` pixels a side, samples of RGB images flattened in.  Only the channels
        asked for are read (one read of the range they span when they are close together)."""
        img = self.scene_image(scene)
        level = img.n_levels - 1
        size_z = int(img.shape[2])
        self._check_plane(img, t, 0 if z is None else z)
        if z is None:
            count = min(size_z, AUTO_MAX_PLANES)
            planes = sorted({round(i * (size_z - 1) / max(1, count - 1)) for i in range(count)})
        else:
            planes = [z]
        shape = img.level_shapes[level]
        h, w = shape[3], shape[4]
        ya, xa = max(0, (h - AUTO_MAX_EDGE) // 2), max(0, (w - AUTO_MAX_EDGE) // 2)
        yb, xb = min(h, ya + AUTO_MAX_EDGE), min(w, xa + AUTO_MAX_EDGE)
        ys, xs = slice(ya, yb), slice(xa, xb)
        wanted = list(dict.fromkeys(int(c) for c in channels))
        lo, hi = min(wanted), max(wanted)
        spans = [(lo, hi + 1)] if hi - lo + 1 <= 2 * len(wanted) else [(c, c + 1) for c in wanted]
        count = sum(
            self.chunks_for(img, level, [(t, t + 1), span, (zz, zz + 1), (ya, yb), (xa, xb)])
            for span in spans
            for zz in planes
        )
        self._bound("the contrast sample", count)
        rows: dict[int, list[np.ndarray]] = {c: [] for c in wanted}
        for zz in planes:
            for c0, c1 in spans:
                part = img.read(level, t=t, c=slice(c0, c1), z=zz, y=ys, x=xs)  # (c, h, w[, S])
                for c in wanted:
                    if c0 <= c < c1:
                        rows[c].append(part[c - c0].reshape(-1))
        return np.stack([np.concatenate(rows[c]) for c in wanted])

    def auto_contrast(
        self,
        scene: int = 0,
        t: int = 0,
        z: int | None = None,
        channels: Sequence[int] | None = None,
    ) -> list[tuple[float, float]]:
        """Per channel ``(min, max)``: the 0.1 and 99.9 percentiles of the coarsest level, for
        ``channels`` (default: every channel), in that order.

        ``z=None`` pools up to ``AUTO_MAX_PLANES`` evenly spaced planes.  When both percentiles
        coincide (a flat channel) the window is widened to ``(p, p + 1)``.  Results are cached
        per channel; only channels not yet known are read.
        """
        img = self.scene_image(scene)
        n_channels = int(img.shape[1])
        wanted = list(range(n_channels)) if channels is None else [int(c) for c in channels]
        self._check_channels(img, wanted)
        with self._lock:
            missing = [c for c in dict.fromkeys(wanted) if (scene, t, z, c) not in self._auto]
        if missing:
            sample = self._coarsest_sample(scene, t, z, missing)
            found = {c: percentile_window(row) for c, row in zip(missing, sample, strict=True)}
            with self._lock:
                for c, window in found.items():
                    self._auto[(scene, t, z, c)] = window
        with self._lock:
            return [self._auto[(scene, t, z, c)] for c in wanted]

    def histogram(
        self, scene: int, channel: int, bins: int = 128, t: int = 0, z: int | None = None
    ) -> dict[str, Any]:
        """``{"edges": [bins + 1], "counts": [bins], "min", "max"}`` of one channel of the
        coarsest level (sampled as in :meth:`auto_contrast`; only that channel is read).
        Integer images with fewer distinct possible values than ``bins`` between their minimum
        and maximum get one bin per integer value."""
        img = self.scene_image(scene)
        self._check_channels(img, [channel])
        if bins < 1:
            raise ValueError(f"bins must be positive, not {bins}")
        return histogram_of(self._coarsest_sample(scene, t, z, [channel])[0], bins)

    # -- description ---------------------------------------------------------------------------

    def default_view(self, scene: int = 0) -> ViewState:
        """The view a viewer opens with: fit to view, t 0, the middle z plane, auto contrast
        (identity for uint8 RGB) of the first :data:`AUTO_CONTRAST_CHANNELS` channels (identity
        beyond, and for every channel when the sample would read more chunks than a request
        may), the first ``DEFAULT_VISIBLE_CHANNELS`` channels visible, at most
        :data:`MAX_INFO_CHANNELS` channels.  When several channels share one colour (OME's
        default white), the OMERO-like palette (red, green, blue, magenta, cyan, yellow, white)
        is used instead."""
        img = self.scene_image(scene)
        z = int(img.shape[2]) // 2
        channels = img.channels[:MAX_INFO_CHANNELS]
        n = len(channels)
        identity = identity_window(img.dtype)
        windows = [identity] * n
        if not (self._is_rgb(img) and img.dtype == np.uint8) and n:
            try:
                auto = self.auto_contrast(scene, 0, z, range(min(n, AUTO_CONTRAST_CHANNELS)))
            except TooManyChunks:
                auto = []  # tiles will say why; the view still opens
            windows[: len(auto)] = auto
        colors = [c.color for c in channels]
        if len(colors) > 1 and len(set(colors)) == 1 and not self._is_rgb(img):
            colors = [_PALETTE[i % len(_PALETTE)] for i in range(len(colors))]
        views = [
            ChannelView(i, i < DEFAULT_VISIBLE_CHANNELS, colors[i], lo, hi)
            for i, (lo, hi) in enumerate(windows)
        ]
        return ViewState(scene=scene, t=0, z=z, channels=views, labels=[])

    def info(self, scene: int = 0) -> dict[str, Any]:
        """What a viewer needs to know about a scene, as JSON: ``source``, ``format``,
        ``scenes``, ``axes``, ``dtype``, ``rgb``, ``tile_size``, ``levels`` (shape and
        downsample), ``size_t``, ``size_z``, ``size_c``, ``physical_size_um``, ``channels``
        (name and colour of at most :data:`MAX_INFO_CHANNELS`), ``labels`` and
        ``default_view``."""
        img = self.scene_image(scene)
        downsamples = self.downsamples(scene)
        return {
            "source": img.source,
            "format": img.format,
            "scenes": img.scenes,
            "scene": scene,
            "axes": img.axes,
            "dtype": str(img.dtype),
            "rgb": self._is_rgb(img),
            "tile_size": self.tile_size,
            "levels": [
                {"shape": [int(s[3]), int(s[4])], "downsample": float(d[1])}
                for s, d in zip(img.level_shapes, downsamples, strict=True)
            ],
            "size_t": int(img.shape[0]),
            "size_z": int(img.shape[2]),
            "size_c": int(img.shape[1]),
            "physical_size_um": img.physical_size.to_dict(),
            "channels": [
                {"name": c.name, "color": c.color} for c in img.channels[:MAX_INFO_CHANNELS]
            ],
            "labels": img.labels,
            "default_view": self.default_view(scene).to_dict(),
        }
