"""Rendering: the colour compositing rule (LUTs and contrast windows), RGB and label colours,
and tile encoding.

Multichannel images
    Each visible channel is scaled linearly from its window ``[min, max]`` to ``[0, 1]``
    (clipped; when ``max <= min`` it is a step at ``max``), multiplied by its colour (``RRGGBB``
    / 255), and the channels are summed; the sum is clipped to ``[0, 1]`` and becomes
    ``round(255 * value)``.  Alpha is 255.  The exact float32 arithmetic is spelled out in
    :func:`composite_channels`; the notebook widget repeats it in the browser
    (``labextension/src/viewer/composite.ts``) on raw channel tiles
    (:meth:`~bioimnb.core.tiles.TileRenderer.raw_tile`), so that a contrast, colour or
    visibility change needs no kernel round trip, and both give identical bytes
    (``tests/ui/test_composite.py``).

Label colours
    :func:`label_colors`: a hash of the id, the same in every tile, view and front end.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .view import ChannelView

__all__ = [
    "channel_dtype",
    "composite_channels",
    "encode_rgba",
    "identity_window",
    "label_color",
    "label_colors",
    "window_scale",
]


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


def identity_window(dtype: np.dtype) -> tuple[float, float]:
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        return float(max(info.min, 0)), float(info.max)
    return 0.0, 1.0


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
        scaled = window_scale(plane, view.min, view.max)
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


def window_scale(raw: np.ndarray, lo: float, hi: float) -> np.ndarray:
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
