"""View maths: what a viewer shows (:class:`ViewState`, :class:`ChannelView`), the one rule that
picks the pyramid level for a zoom (:func:`level_for_zoom`) and the camera's viewport.

The browser's camera module (``labextension/src/viewer/camera.ts``) repeats :func:`level_for_zoom`
and :func:`viewport_rect` operation for operation, in the same floating-point order, and
``tests/core/test_tiles_camera.py`` runs it with Node on a table of cases computed here: the
level the viewer draws is the level this module names, for every zoom and screen.

Coordinates are level-0 pixels; ``zoom`` is screen (CSS) pixels per level-0 pixel.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "LEVEL_TOLERANCE",
    "MAX_PIXEL_RATIO",
    "ChannelView",
    "ViewState",
    "format_channel_spec",
    "level_for_zoom",
    "parse_channel_spec",
    "viewport_rect",
]

LEVEL_TOLERANCE = 1.1
"""A level is drawn while its pixels appear up to this many device pixels wide (a barely visible
magnification) rather than fetch 4x as many pixels from the next finer level."""

MAX_PIXEL_RATIO = 2.0
"""Device pixels per screen pixel are counted up to this: on a 3x phone screen the viewer draws
the level a 2x screen gets (9/4 the pixels of that level would be fetched for a sharpness few
can see)."""


def level_for_zoom(downsamples: Sequence[float], zoom: float, pixel_ratio: float = 1.0) -> int:
    """The pyramid level to draw at ``zoom`` on a screen of ``pixel_ratio`` device pixels per
    screen pixel; ``downsamples`` are the levels' level-0 pixels per level pixel (in X).

    Rule (napari's and OpenSeadragon's with ``minPixelRatio`` 1): the *coarsest* level whose
    pixels, drawn on screen, are at most :data:`LEVEL_TOLERANCE` device pixels wide, i.e. the
    largest downsample ``d`` with ``d * scale <= 1.1`` where
    ``scale = zoom * min(pixel_ratio, 2)`` (IEEE double arithmetic, in that order); a tie
    between equal downsamples goes to the first.  So the image is never shown visibly
    magnified while a finer level exists, and never fetched finer than needed: at most 2x
    (for power-of-two pyramids) more pixels than device pixels.  Zoomed in past 1:1 this is
    level 0; zoomed out beyond the pyramid it is the coarsest level.

    This is the one definition: ``TileRenderer.level_for_zoom`` calls it and the browser's
    ``levelForZoom`` (``camera.ts``) repeats it.
    """
    if not (zoom > 0 and math.isfinite(zoom)):
        raise ValueError(f"zoom must be a positive number, not {zoom!r}")
    if not (pixel_ratio > 0 and math.isfinite(pixel_ratio)):
        raise ValueError(f"pixel_ratio must be a positive number, not {pixel_ratio!r}")
    scale = zoom * min(pixel_ratio, MAX_PIXEL_RATIO)
    best, best_d = 0, 0.0
    for i, d in enumerate(downsamples):
        if d * scale <= LEVEL_TOLERANCE and d > best_d:
            best, best_d = i, d
    return best


def viewport_rect(
    center_x: float, center_y: float, zoom: float, width: float, height: float
) -> tuple[float, float, float, float]:
    """``(x0, y0, x1, y1)``: the level-0 rectangle a ``width`` x ``height`` screen (CSS
    pixels) shows when centred on ``(center_x, center_y)`` at ``zoom``.  The browser computes
    it as ``cx + (sx - w / 2) / zoom`` for the screen corners ``sx = 0`` and ``sx = w``."""
    return (
        center_x + (0 - width / 2) / zoom,
        center_y + (0 - height / 2) / zoom,
        center_x + (width - width / 2) / zoom,
        center_y + (height - height / 2) / zoom,
    )


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
