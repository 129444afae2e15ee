"""Tile maths and rendering, shared by the notebook widget and the REST server.

A viewer shows one plane (scene, t, z) of a :class:`~bioimnb.core.images.MultiscaleImage` through
a viewport.  This module answers the questions a viewer asks:

* which pyramid level suits a zoom (:meth:`TileRenderer.level_for_zoom`),
* which tiles of that level cover the viewport (:meth:`TileRenderer.tiles_for_viewport`),
* what one tile looks like with the current channels, colours, contrast windows and label
  overlays (:meth:`TileRenderer.render`, :meth:`TileRenderer.render_rgba`),
* what the pixel values under the cursor are (:meth:`TileRenderer.values`),
* sensible contrast windows and histograms (:meth:`TileRenderer.auto_contrast`,
  :meth:`TileRenderer.histogram`).

Coordinates
    ``x``/``y`` and viewport rectangles are in level-0 pixels.  Tile ``(tx, ty)`` of level ``L``
    covers level-``L`` pixels ``[ty*T, min(H_L, (ty+1)*T))`` x ``[tx*T, min(W_L, (tx+1)*T))``
    where ``T`` is the tile size: edge tiles are smaller, never padded.  The downsample of a level
    is ``W_0 / W_L`` (in Y, ``H_0 / H_L``).

Rendering (multichannel images)
    Each visible channel is scaled linearly from its window ``[min, max]`` to ``[0, 1]``
    (clipped; when ``max <= min`` it is a step at ``max``), multiplied by its colour (``RRGGBB``
    / 255), and the channels are summed; the sum is clipped to ``[0, 1]`` and becomes
    ``round(255 * value)``.  Alpha is 255.  The exact float32 arithmetic is spelled out in
    :func:`composite_channels`; the notebook widget repeats it in the browser
    (``labextension/src/viewer/composite.ts``) on raw channel tiles (:meth:`TileRenderer.raw_tile`)
    so that a contrast, colour or visibility change needs no kernel round trip, and both give
    identical bytes.

Rendering (RGB images, axes ending in ``S``)
    Samples are shown as RGB (the first three samples; one sample is grey).  The first visible
    :class:`ChannelView` picks the channel (C index) and its ``[min, max]`` window applies to every
    sample; with no channel views, channel 0 with the identity window of the dtype (``0..255``
    for uint8) is shown.  When channel views are given but none is visible the tile is black.

Label overlays
    Each named NGFF label image (:meth:`MultiscaleImage.label`) is resampled (nearest neighbour)
    onto the tile's pixels from the label level whose downsample is closest to the tile's
    level (normally the same one), and each non-zero label id is blended at 50 % over the tile:
    ``out = (tile + colour + 1) // 2`` per component, with ``colour = label_color(id)``.  Id 0 is
    transparent.  Overlays are applied in the order given.

Cache
    Raw (unrendered) tile arrays are kept in a thread-safe LRU bounded in bytes, keyed by
    ``(scene, level, t, z, c, tx, ty)`` (label tiles by ``("label", name, scene, level, t, z,
    tx, ty)``), so changing a colour, window or the set of visible channels re-renders from
    memory without touching storage.  Several renderers may share one :class:`TileCache` (and
    its byte bound); their keys are then prefixed with a token per renderer.

Performance (2-channel uint16, 256 x 256 tiles, 2 cores)
    Compositing from cached raw tiles takes about 0.5 ms, PNG encoding about 2-3 ms; reading
    and decoding a zlib TIFF tile adds 1-2 ms (file in the OS page cache).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .cache import ArrayCache
from .errors import BioimnbError

if TYPE_CHECKING:  # pragma: no cover
    from .images import MultiscaleImage

__all__ = [
    "ChannelView",
    "OutOfRange",
    "TileCache",
    "TileRenderer",
    "ViewState",
    "channel_dtype",
    "composite_channels",
    "encode_rgba",
    "format_channel_spec",
    "label_color",
    "label_colors",
    "parse_channel_spec",
]

DEFAULT_VISIBLE_CHANNELS = 6
"""The default view shows at most this many channels (the first ones); others start hidden."""

AUTO_CONTRAST_PERCENTILES = (0.1, 99.9)
AUTO_MAX_EDGE = 2048
"""Auto contrast and histograms read at most a centred ``AUTO_MAX_EDGE``-square of a plane."""
AUTO_MAX_PLANES = 8
"""With ``z=None``, auto contrast samples at most this many evenly spaced Z planes."""

_PALETTE = ["FF0000", "00FF00", "0000FF", "FF00FF", "00FFFF", "FFFF00", "FFFFFF"]


class OutOfRange(BioimnbError, IndexError):
    """A scene, level, plane, channel, tile or pixel index outside the image."""


# --------------------------------------------------------------------------------------------
# View state
# --------------------------------------------------------------------------------------------


def _hex_color(value: Any) -> str:
    text = str(value).strip().lstrip("#").upper()
    if len(text) != 6 or any(ch not in "0123456789ABCDEF" for ch in text):
        raise ValueError(f"colour must be RRGGBB hex, not {value!r}")
    return text


@dataclass
class ChannelView:
    """How one channel is shown: visibility, colour (``RRGGBB``) and contrast window."""

    index: int
    visible: bool = True
    color: str = "FFFFFF"
    min: float = 0.0
    """Raw pixel value shown black."""
    max: float = 65535.0
    """Raw pixel value shown at full colour."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "visible": self.visible,
            "color": self.color,
            "min": self.min,
            "max": self.max,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChannelView:
        """From a JSON object; unknown keys are ignored, ``color`` may have a leading ``#``."""
        if not isinstance(data, dict) or "index" not in data:
            raise ValueError(f"a channel view needs an 'index': {data!r}")
        return cls(
            index=int(data["index"]),
            visible=bool(data.get("visible", True)),
            color=_hex_color(data.get("color", "FFFFFF")),
            min=float(data.get("min", 0.0)),
            max=float(data.get("max", 65535.0)),
        )


@dataclass
class ViewState:
    """What a viewer shows.  ``to_dict()``/``from_dict()`` give and take plain JSON objects."""

    scene: int = 0
    t: int = 0
    z: int = 0
    center_x: float | None = None
    """Level-0 pixel X of the viewport centre (``None``: fit the image to the view)."""
    center_y: float | None = None
    zoom: float | None = None
    """Screen pixels per level-0 pixel (``None``: fit to view)."""
    channels: list[ChannelView] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    """Names of the visible NGFF label overlays."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "scene": self.scene,
            "t": self.t,
            "z": self.z,
            "center_x": self.center_x,
            "center_y": self.center_y,
            "zoom": self.zoom,
            "channels": [c.to_dict() for c in self.channels],
            "labels": list(self.labels),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ViewState:
        """From a JSON object (missing keys take their defaults, unknown keys are ignored)."""
        if not isinstance(data, dict):
            raise ValueError(f"a view state is a JSON object, not {type(data).__name__}")

        def opt(key: str) -> float | None:
            value = data.get(key)
            return None if value is None else float(value)

        return cls(
            scene=int(data.get("scene", 0)),
            t=int(data.get("t", 0)),
            z=int(data.get("z", 0)),
            center_x=opt("center_x"),
            center_y=opt("center_y"),
            zoom=opt("zoom"),
            channels=[ChannelView.from_dict(c) for c in data.get("channels") or []],
            labels=[str(name) for name in data.get("labels") or []],
        )


def parse_channel_spec(spec: str) -> list[ChannelView]:
    """Visible channels from ``"index:RRGGBB:min:max,..."`` (the REST ``ch`` parameter).

    >>> parse_channel_spec("0:FF0000:100:4000,1:00FF00:50:3000")[1]
    ChannelView(index=1, visible=True, color='00FF00', min=50.0, max=3000.0)

    An empty string means no visible channel.
    """
    views: list[ChannelView] = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        parts = item.split(":")
        if len(parts) != 4:
            raise ValueError(f"channel spec {item!r} is not index:RRGGBB:min:max")
        try:
            index = int(parts[0])
            lo, hi = float(parts[2]), float(parts[3])
        except ValueError:
            raise ValueError(f"channel spec {item!r} is not index:RRGGBB:min:max") from None
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(f"channel spec {item!r}: min and max must be finite numbers")
        views.append(ChannelView(index, True, _hex_color(parts[1]), lo, hi))
    return views


def format_channel_spec(channels: Iterable[ChannelView]) -> str:
    """The ``ch`` parameter for the visible ``channels`` (inverse of :func:`parse_channel_spec`)."""
    return ",".join(f"{c.index}:{c.color}:{c.min:g}:{c.max:g}" for c in channels if c.visible)


# --------------------------------------------------------------------------------------------
# Label colours
# --------------------------------------------------------------------------------------------


def label_colors(ids: np.ndarray) -> np.ndarray:
    """``(..., 3)`` uint8 RGB colours of label ids (vectorised :func:`label_color`).

    The colour is a hash of the id, so it is the same in every tile, view and front end:
    ``h = lowbias32((id ^ (id >> 32)) & 0xFFFFFFFF)`` with Chris Wellons' ``lowbias32``
    (``x ^= x >> 16; x *= 0x7feb352d; x ^= x >> 15; x *= 0x846ca68b; x ^= x >> 16``, all mod
    2**32), then ``R, G, B = (h >> 16) & 255, (h >> 8) & 255, h & 255``, each raised to at least
    64 (``max(v, 64)``) so no label is near-black.
    """
    v = np.asarray(ids)
    if v.dtype.kind == "f":
        v = np.nan_to_num(v).astype(np.int64)
    v64 = v.astype(np.uint64)
    x = ((v64 ^ (v64 >> np.uint64(32))) & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint32(16))
        x = x * np.uint32(0x7FEB352D)
        x = x ^ (x >> np.uint32(15))
        x = x * np.uint32(0x846CA68B)
        x = x ^ (x >> np.uint32(16))
    rgb = np.stack([(x >> np.uint32(16)) & 255, (x >> np.uint32(8)) & 255, x & 255], axis=-1)
    return np.maximum(rgb, 64).astype(np.uint8)


def label_color(label_id: int) -> str:
    """The ``RRGGBB`` overlay colour of one label id (see :func:`label_colors`)."""
    r, g, b = (int(v) for v in label_colors(np.array([label_id], dtype=np.int64))[0])
    return f"{r:02X}{g:02X}{b:02X}"


# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------


def encode_rgba(rgba: np.ndarray, fmt: str = "png") -> bytes:
    """Encode an ``(h, w, 4)`` uint8 array: ``png`` (RGBA), ``jpeg`` (RGB, quality 90) or ``raw``.

    PNG uses imagecodecs with OpenCV's fast settings (zlib level 1, RLE strategy, SUB filter),
    falling back to Pillow; JPEG uses imagecodecs' ``jpeg8_encode``, falling back to Pillow.
    """
    fmt = fmt.lower()
    rgba = np.ascontiguousarray(rgba, dtype=np.uint8)
    if fmt == "raw":
        return rgba.tobytes()
    if fmt not in ("png", "jpeg", "jpg"):
        raise ValueError(f"unknown tile format {fmt!r} (png, jpeg or raw)")
    try:
        import imagecodecs

        if fmt == "png":
            return bytes(imagecodecs.png_encode(rgba, level=1, strategy=3, filter=16))
        return bytes(imagecodecs.jpeg8_encode(np.ascontiguousarray(rgba[..., :3]), level=90))
    except (ImportError, AttributeError, RuntimeError):  # pragma: no cover - fallback
        import io

        from PIL import Image

        buf = io.BytesIO()
        if fmt == "png":
            Image.fromarray(rgba, "RGBA").save(buf, format="PNG", compress_level=1)
        else:
            Image.fromarray(np.ascontiguousarray(rgba[..., :3]), "RGB").save(
                buf, format="JPEG", quality=90
            )
        return buf.getvalue()


# --------------------------------------------------------------------------------------------
# Raw tile cache
# --------------------------------------------------------------------------------------------


TileCache = ArrayCache
"""The raw-tile cache of a renderer (see :class:`bioimnb.core.cache.ArrayCache`)."""


def _identity_window(dtype: np.dtype) -> tuple[float, float]:
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        return float(max(info.min, 0)), float(info.max)
    return 0.0, 1.0


def _finite(values: np.ndarray) -> np.ndarray:
    flat = values.ravel()
    if flat.dtype.kind == "f":
        flat = flat[np.isfinite(flat)]
    elif flat.dtype.kind == "b":
        flat = flat.astype(np.uint8)
    return flat


def _json_number(value: Any) -> Any:
    """A numpy scalar as a JSON-friendly Python number (NaN and infinities as ``None``)."""
    if isinstance(value, np.ndarray):
        return [_json_number(v) for v in value.tolist()]
    if isinstance(value, list):
        return [_json_number(v) for v in value]
    item = value.item() if hasattr(value, "item") else value
    if isinstance(item, float) and not math.isfinite(item):
        return None
    if isinstance(item, complex):
        return abs(item)
    return item


class TileRenderer:
    """Renders tiles of one opened image (all of its scenes), with a raw tile cache.

    Thread-safe: a server may call it from several threads at once (reads go through
    :meth:`MultiscaleImage.read`, whose readers serialise themselves where needed).
    """

    zoom_tolerance: float = 1.1
    """:meth:`level_for_zoom` accepts a level whose pixels appear up to this much larger than a
    screen pixel (a barely visible magnification) rather than fetch 4x as many pixels."""

    def __init__(
        self,
        image: MultiscaleImage,
        tile_size: int = 256,
        cache_bytes: int = 256 * 2**20,
        *,
        cache: TileCache | None = None,
    ) -> None:
        """``cache_bytes`` bounds this renderer's own raw tile cache; pass ``cache`` instead to
        share one :class:`TileCache` (and its bound) between renderers."""
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
        self._auto: dict[tuple[int, int, int | None], list[tuple[float, float]]] = {}
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

    def downsamples(self, scene: int = 0) -> list[tuple[float, float]]:
        """``(dy, dx)`` of every level: level-0 pixels per level pixel in Y and X."""
        shapes = self.scene_image(scene).level_shapes
        y0, x0 = shapes[0][3], shapes[0][4]
        return [(y0 / max(1, s[3]), x0 / max(1, s[4])) for s in shapes]

    def tile_grid(self, scene: int, level: int) -> tuple[int, int]:
        """``(columns, rows)`` of tiles of ``level``."""
        h, w = self._check_level(self.scene_image(scene), level)
        return math.ceil(w / self.tile_size), math.ceil(h / self.tile_size)

    def level_for_zoom(self, scene: int, zoom: float) -> int:
        """The pyramid level to draw at ``zoom`` (screen pixels per level-0 pixel).

        Rule (napari's and OpenSeadragon's with ``minPixelRatio`` 1): the *coarsest* level whose
        pixels, drawn on screen, are no larger than one screen pixel, i.e. the largest
        downsample ``d`` with ``zoom * d <= zoom_tolerance`` (1.1).  So the image is never shown
        visibly magnified while a finer level exists, and never fetched finer than needed:
        at most 2x (for power-of-two pyramids) more pixels than screen pixels.  Zoomed in past
        1:1 this is level 0; zoomed out beyond the pyramid it is the coarsest level.
        """
        if not (zoom > 0 and math.isfinite(zoom)):
            raise ValueError(f"zoom must be a positive number, not {zoom!r}")
        best, best_dx = 0, 0.0
        for i, (_, dx) in enumerate(self.downsamples(scene)):
            if zoom * dx <= self.zoom_tolerance and dx > best_dx:
                best, best_dx = i, dx
        return best

    def tiles_for_viewport(
        self, scene: int, level: int, x0: float, y0: float, x1: float, y1: float
    ) -> list[tuple[int, int]]:
        """``(tx, ty)`` of the tiles of ``level`` overlapping the level-0 rectangle
        ``[x0, x1) x [y0, y1)``, row by row; parts outside the image are ignored (an empty list
        when the rectangle misses the image or is empty)."""
        img = self.scene_image(scene)
        h, w = self._check_level(img, level)
        dy, dx = self.downsamples(scene)[level]
        xa, xb = sorted((x0, x1))
        ya, yb = sorted((y0, y1))
        lx0, lx1 = max(0.0, xa / dx), min(float(w), xb / dx)
        ly0, ly1 = max(0.0, ya / dy), min(float(h), yb / dy)
        if lx1 <= lx0 or ly1 <= ly0:
            return []
        ts = self.tile_size
        txs = range(int(lx0 // ts), math.ceil(lx1 / ts))
        tys = range(int(ly0 // ts), math.ceil(ly1 / ts))
        return [(tx, ty) for ty in tys for tx in txs]

    def tile_bounds(self, scene: int, level: int, tx: int, ty: int) -> tuple[int, int, int, int]:
        """``(y0, y1, x0, x1)`` of tile ``(tx, ty)`` in level pixels (edge tiles are smaller)."""
        h, w = self._check_level(self.scene_image(scene), level)
        ts = self.tile_size
        y0, x0 = ty * ts, tx * ts
        if not (0 <= x0 < w and 0 <= y0 < h):
            cols, rows = math.ceil(w / ts), math.ceil(h / ts)
            raise self._error(
                f"no tile ({tx}, {ty}) at level {level}; it has {cols} x {rows} tiles"
            )
        return y0, min(h, y0 + ts), x0, min(w, x0 + ts)

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
        if len(missing) > 1 and hi - lo + 1 <= 2 * len(missing):
            # One read for neighbouring channels (one request per chunk for chunked stores).
            block = img.read(level, t=t, c=slice(lo, hi + 1), z=z, y=ys, x=xs)
            for c in missing:
                out[c] = np.ascontiguousarray(block[c - lo])
        else:
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
        is :func:`channel_dtype` of the image's: uint8 and uint16 as stored, anything else as
        float32, which loses nothing that rendering uses (:func:`composite_channels` works on
        float32).  For the notebook widget, which composites in the browser.  RGB images (axes
        ending in ``S``) have no per-channel tiles: :meth:`render_rgba` draws them.
        """
        img = self.scene_image(scene)
        self._check_level(img, level)
        self._check_plane(img, t, z)
        if self._is_rgb(img):
            raise self._error("an RGB image has no single-channel tiles; render it as RGBA")
        n_channels = int(img.shape[1])
        indices = [int(c) for c in channels]
        for c in indices:
            if not 0 <= c < n_channels:
                raise self._error(f"no channel {c}; the image has {n_channels}")
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
    ) -> np.ndarray:
        """The tile as an ``(h, w, 4)`` uint8 RGBA array (see the module doc for the rules)."""
        img = self.scene_image(scene)
        self._check_level(img, level)
        self._check_plane(img, t, z)
        y0, y1, x0, x1 = self.tile_bounds(scene, level, tx, ty)
        h, w = y1 - y0, x1 - x0
        n_channels = int(img.shape[1])
        for view in channels:
            if not 0 <= view.index < n_channels:
                raise self._error(f"no channel {view.index}; the image has {n_channels}")
        if self._is_rgb(img):
            rgb = self._render_rgb(img, scene, level, t, z, tx, ty, channels, h, w)
        else:
            rgb = self._render_composite(scene, level, t, z, tx, ty, channels, h, w)
        for name in labels:
            ids = self._label_tile(scene, level, t, z, name, tx, ty)
            mask = ids != 0
            if mask.any():
                colors = label_colors(ids[mask]).astype(np.uint16)
                rgb[mask] = ((rgb[mask].astype(np.uint16) + colors + 1) // 2).astype(np.uint8)
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
            lo, hi = _identity_window(img.dtype)
        raw = self._raw_channels(scene, level, t, z, [c], tx, ty)[c]
        if raw.ndim == 2:
            raw = raw[..., None]
        samples = raw[..., :3] if raw.shape[-1] >= 3 else np.repeat(raw[..., :1], 3, axis=-1)
        if samples.dtype == np.uint8 and (lo, hi) == (0.0, 255.0):
            return np.array(samples, dtype=np.uint8)
        scaled = _window(samples, lo, hi)
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
        raw = img.read(0, t=t, z=z, y=slice(y, y + 1), x=slice(x, x + 1))  # (C, 1, 1[, S])
        values = [_json_number(raw[c, 0, 0]) for c in range(raw.shape[0])]
        labels: dict[str, Any] = {}
        for name in img.labels:
            lab = self._label_image(scene, name)
            lh, lw = lab.shape[3], lab.shape[4]
            iy = min(lh - 1, ((2 * y + 1) * lh) // (2 * h))
            ix = min(lw - 1, ((2 * x + 1) * lw) // (2 * w))
            lt, lz = min(t, lab.shape[0] - 1), min(z, lab.shape[2] - 1)
            px = lab.read(0, t=lt, c=0, z=lz, y=slice(iy, iy + 1), x=slice(ix, ix + 1))
            labels[name] = _json_number(px.ravel()[0])
        return {"x": int(x), "y": int(y), "values": values, "labels": labels}

    def _coarsest_sample(self, scene: int, t: int, z: int | None) -> np.ndarray:
        """``(C, n)`` pixels of the coarsest level: plane ``z`` (``None``: up to
        ``AUTO_MAX_PLANES`` evenly spaced planes), a centred square of at most
        ``AUTO_MAX_EDGE`` pixels a side, samples of RGB images flattened in."""
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
        ys = slice(
            max(0, (h - AUTO_MAX_EDGE) // 2), max(0, (h - AUTO_MAX_EDGE) // 2) + AUTO_MAX_EDGE
        )
        xs = slice(
            max(0, (w - AUTO_MAX_EDGE) // 2), max(0, (w - AUTO_MAX_EDGE) // 2) + AUTO_MAX_EDGE
        )
        parts = [img.read(level, t=t, z=zz, y=ys, x=xs) for zz in planes]  # (C, h, w[, S])
        n_channels = int(img.shape[1])
        return np.concatenate([p.reshape(n_channels, -1) for p in parts], axis=1)

    def auto_contrast(
        self, scene: int = 0, t: int = 0, z: int | None = None
    ) -> list[tuple[float, float]]:
        """Per channel ``(min, max)``: the 0.1 and 99.9 percentiles of the coarsest level.

        ``z=None`` pools up to ``AUTO_MAX_PLANES`` evenly spaced planes.  When both percentiles
        coincide (a flat channel) the window is widened to ``(p, p + 1)``.  Results are cached.
        """
        key = (scene, t, z)
        with self._lock:
            found = self._auto.get(key)
        if found is not None:
            return list(found)
        sample = self._coarsest_sample(scene, t, z)
        windows: list[tuple[float, float]] = []
        for row in sample:
            values = _finite(row)
            if values.size == 0:
                windows.append((0.0, 1.0))
                continue
            lo, hi = np.percentile(values, AUTO_CONTRAST_PERCENTILES)
            lo, hi = float(lo), float(hi)
            if hi <= lo:
                hi = lo + 1.0
            windows.append((lo, hi))
        with self._lock:
            self._auto[key] = windows
        return list(windows)

    def histogram(
        self, scene: int, channel: int, bins: int = 128, t: int = 0, z: int | None = None
    ) -> dict[str, Any]:
        """``{"edges": [bins + 1], "counts": [bins], "min", "max"}`` of one channel of the
        coarsest level (sampled as in :meth:`auto_contrast`).  Integer images with fewer
        distinct possible values than ``bins`` between their minimum and maximum get one bin
        per integer value."""
        img = self.scene_image(scene)
        n_channels = int(img.shape[1])
        if not 0 <= channel < n_channels:
            raise self._error(f"no channel {channel}; the image has {n_channels}")
        if bins < 1:
            raise ValueError(f"bins must be positive, not {bins}")
        values = _finite(self._coarsest_sample(scene, t, z)[channel])
        if values.size == 0:
            return {"edges": [0.0, 1.0], "counts": [0], "min": None, "max": None}
        vmin, vmax = values.min().item(), values.max().item()
        if values.dtype.kind in "uib":
            if vmax - vmin + 1 <= bins:
                edges = np.arange(vmin, vmax + 2, dtype=np.float64)
                counts = np.bincount((values - vmin).astype(np.int64), minlength=len(edges) - 1)
            else:
                counts, edges = np.histogram(values, bins=bins, range=(vmin, vmax + 1))
        else:
            hi = vmax if vmax > vmin else vmin + 1.0
            counts, edges = np.histogram(values, bins=bins, range=(vmin, hi))
        return {
            "edges": [float(e) for e in edges],
            "counts": [int(c) for c in counts],
            "min": _json_number(vmin),
            "max": _json_number(vmax),
        }

    # -- description ---------------------------------------------------------------------------

    def default_view(self, scene: int = 0) -> ViewState:
        """The view a viewer opens with: fit to view, t 0, the middle z plane, auto contrast
        (identity for uint8 RGB), the first ``DEFAULT_VISIBLE_CHANNELS`` channels visible.
        When several channels share one colour (OME's default white), the OMERO-like palette
        (red, green, blue, magenta, cyan, yellow, white) is used instead."""
        img = self.scene_image(scene)
        z = int(img.shape[2]) // 2
        channels = img.channels
        if self._is_rgb(img) and img.dtype == np.uint8:
            windows = [(0.0, 255.0)] * len(channels)
        else:
            windows = self.auto_contrast(scene, 0, z)
        colors = [c.color for c in channels]
        if len(colors) > 1 and len(set(colors)) == 1 and not self._is_rgb(img):
            colors = [_PALETTE[i % len(_PALETTE)] for i in range(len(colors))]
        views = [
            ChannelView(i, i < DEFAULT_VISIBLE_CHANNELS, colors[i], lo, hi)
            for i, (lo, hi) in enumerate(windows)
        ]
        return ViewState(scene=scene, t=0, z=z, channels=views, labels=[])

    def info(self, scene: int = 0) -> dict[str, Any]:
        """What a viewer needs to know about a scene, as JSON (see the module doc)."""
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
            "physical_size_um": img.physical_size.to_dict(),
            "channels": [{"name": c.name, "color": c.color} for c in img.channels],
            "labels": img.labels,
            "default_view": self.default_view(scene).to_dict(),
        }


def channel_dtype(dtype: Any) -> np.dtype:
    """The dtype :meth:`TileRenderer.raw_tile` sends a channel of an image of ``dtype`` as:
    uint8 and uint16 unchanged, everything else float32 (little-endian)."""
    dt = np.dtype(dtype)
    if dt.kind == "u" and dt.itemsize in (1, 2):
        return dt.newbyteorder("<")
    return np.dtype("<f4")


def _as_channel_dtype(raw: np.ndarray) -> np.ndarray:
    """``raw`` in :func:`channel_dtype`, C-contiguous (no copy when it already is)."""
    return np.ascontiguousarray(raw, dtype=channel_dtype(raw.dtype))


def composite_channels(
    layers: Sequence[tuple[np.ndarray, ChannelView]], shape: tuple[int, int]
) -> np.ndarray:
    """Colour-composite raw channel planes into an ``(h, w, 3)`` uint8 RGB array.

    ``layers`` are ``(plane, view)`` pairs, ``plane`` an ``(h, w)`` array of raw values; hidden
    views are skipped.  This is the one definition of the rule, and the browser's
    ``compositeTile`` (``labextension/src/viewer/composite.ts``) repeats it step by step, so
    keep the two in sync.  All arithmetic is IEEE float32 (``f32(x)`` rounds to float32) on
    ``v = f32(plane)`` (the value the browser gets, see :func:`channel_dtype`):

    1. window, per channel with ``lo, hi = view.min, view.max`` (Python floats):

       * ``hi <= lo`` (a step): ``s = 1 if v >= hi else 0``, compared in float64;
       * otherwise ``s = f32(f32(v - f32(lo)) * f32(1 / (hi - lo)))`` (the reciprocal computed
         in float64), clipped to ``[0, 1]``; NaN becomes 0;

    2. ``s255 = f32(s * 255)``;
    3. per colour component ``k`` with weight ``c_k`` (the ``RRGGBB`` byte, 0-255):
       ``acc_k = f32(acc_k + term)`` with ``term = s255`` when ``c_k == 255``,
       ``f32(s255 * f32(c_k / 255))`` when ``0 < c_k < 255``, nothing when ``c_k == 0``;
       channels are added in the order given, ``acc_k`` starting at 0;
    4. ``out_k = trunc(f32(min(acc_k, 255) + 0.5))`` (``acc_k`` is never negative).
    """
    h, w = shape
    # Planar float32 accumulation, one colour component at a time: no (h, w, 3)
    # temporaries (7x faster than broadcasting the colour).
    acc = np.zeros((3, h, w), dtype=np.float32)
    tmp = np.empty((h, w), dtype=np.float32)
    for plane, view in layers:
        if not view.visible:
            continue
        scaled = _window(plane, view.min, view.max)
        scaled *= np.float32(255.0)
        for k in range(3):
            weight = int(view.color[2 * k : 2 * k + 2], 16)
            if weight == 255:
                acc[k] += scaled
            elif weight:
                np.multiply(scaled, np.float32(weight / 255.0), out=tmp)
                acc[k] += tmp
    np.clip(acc, 0.0, 255.0, out=acc)
    acc += np.float32(0.5)
    rgb = np.empty((h, w, 3), dtype=np.uint8)
    for k in range(3):
        rgb[..., k] = acc[k]
    return rgb


def _window(raw: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``raw`` scaled from ``[lo, hi]`` to ``[0, 1]`` (clipped, NaN as 0) as float32; a step at
    ``hi`` when ``hi <= lo`` (see :func:`composite_channels` for the exact arithmetic)."""
    # Values or windows beyond float32's range or resolution give inf / NaN, handled below.
    with np.errstate(over="ignore", invalid="ignore"):
        if hi <= lo:
            # float64 comparison of the values as the browser has them (uint8/16, else float32)
            small = raw.dtype.kind in "ui" and raw.dtype.itemsize <= 2
            data = raw if small else raw.astype(np.float32)
            return (data >= np.float64(hi)).astype(np.float32)
        scale = np.float32(1.0 / (hi - lo))
        scaled = raw.astype(np.float32)
        scaled -= np.float32(lo)
        scaled *= scale
    np.clip(scaled, 0.0, 1.0, out=scaled)
    # NaN: pixels of float images, or 0 * inf and inf * 0 of windows beyond float32.
    if raw.dtype.kind in "fc" or not 0.0 < float(scale) < math.inf:
        np.nan_to_num(scaled, copy=False, nan=0.0)
    return scaled
