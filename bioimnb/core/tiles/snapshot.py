"""Snapshots: a small still picture of what a viewer shows, for notebooks that travel.

A notebook opened without a kernel (nbviewer, a git host, an nbconvert HTML export) cannot show
an interactive viewer; the notebook widget puts this picture next to it in the same output so
those readers show the image instead.  It is computed here, in the kernel, so a notebook executed
headless (nbclient, ``jupyter nbconvert --execute``: no browser) gets it too.

The picture is the view's region of the image (the whole image when the view is fitted, else the
level-0 rectangle a ``width`` x ``height`` screen shows at the view's centre and zoom, cut to
the image), at most :data:`SNAPSHOT_EDGE` pixels on its long side, with the view's plane,
channels, contrast and label overlays.  It is drawn from the tiles of ONE level: the level
:func:`~bioimnb.core.tiles.view.level_for_zoom` names for the picture's own scale, i.e. the
coarsest level whose pixels are no larger than the picture's, and only the tiles of that level
under the region are rendered (each through :meth:`TileRenderer.render_rgba`, so the
per-request chunk bound and the tile cache apply).  A lazy (dask) array computes no more than
those tiles.  Output pixels sample that level with nearest neighbour (as the viewer draws).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .render import encode_rgba
from .renderer import TileRenderer
from .view import ViewState, viewport_rect

__all__ = ["SCREEN_WIDTH", "SNAPSHOT_EDGE", "Snapshot", "snapshot"]

SNAPSHOT_EDGE = 512
"""Longest side of a snapshot, in pixels."""

SCREEN_WIDTH = 800
"""Width (CSS pixels) assumed for a viewer's screen when it is not known (the kernel does not
know how wide the browser draws the widget; its height is the widget's ``height``)."""


@dataclass(frozen=True)
class Snapshot:
    """A rendered still of a view: ``rgba`` ``(h, w, 4)`` uint8 and what it shows."""

    rgba: np.ndarray
    scene: int
    t: int
    z: int
    level: int
    """The pyramid level the pixels come from."""
    region: tuple[float, float, float, float]
    """``(x0, y0, x1, y1)``: the level-0 rectangle shown."""
    whole: bool
    """True when the whole image is shown."""
    labels: tuple[str, ...] = ()

    @property
    def width(self) -> int:
        return int(self.rgba.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgba.shape[0])

    def png(self) -> bytes:
        """The picture encoded as PNG."""
        return encode_rgba(self.rgba, "png")


def snapshot(
    renderer: TileRenderer,
    view: ViewState | dict[str, Any] | None = None,
    *,
    width: float = SCREEN_WIDTH,
    height: float = 520,
    max_edge: int = SNAPSHOT_EDGE,
    label_opacity: float = 0.5,
) -> Snapshot:
    """The picture of ``view`` (default: the scene's default view, fitted) of ``renderer``'s
    image on a ``width`` x ``height`` screen, at most ``max_edge`` pixels a side.

    A view without a centre or zoom (fitted), or one whose screen misses the image, shows the
    whole image.  The picture is never larger than the region at the view's zoom (a view at
    1:1 of a 300-px region gives 300 px, not 512)."""
    if max_edge < 1:
        raise ValueError(f"max_edge must be positive, not {max_edge}")
    if isinstance(view, dict):
        view = ViewState.from_dict(view)
    scene = view.scene if view is not None else renderer.image.scene_index
    img = renderer.scene_image(scene)
    if view is None:
        view = renderer.default_view(scene)
    channels = view.channels or renderer.default_view(scene).channels
    h0, w0 = int(img.shape[3]), int(img.shape[4])

    region: tuple[float, float, float, float] = (0.0, 0.0, float(w0), float(h0))
    zoom = view.zoom
    whole = True
    if zoom is not None and view.center_x is not None and view.center_y is not None:
        x0, y0, x1, y1 = viewport_rect(view.center_x, view.center_y, zoom, width, height)
        cut = (max(0.0, x0), max(0.0, y0), min(float(w0), x1), min(float(h0), y1))
        if cut[2] > cut[0] and cut[3] > cut[1]:
            region = cut
            whole = cut == (0.0, 0.0, float(w0), float(h0))
    rx0, ry0, rx1, ry1 = region
    rw, rh = rx1 - rx0, ry1 - ry0
    # Output pixels per level-0 pixel: fit max_edge, never more than the view's zoom (or 1:1).
    scale = min(max_edge / max(rw, rh), zoom if (zoom is not None and not whole) else 1.0)
    out_w = max(1, min(max_edge, round(rw * scale)))
    out_h = max(1, min(max_edge, round(rh * scale)))
    level = renderer.level_for_zoom(scene, scale)

    shape = img.level_shapes[level]
    hl, wl = int(shape[3]), int(shape[4])
    dy, dx = renderer.downsamples(scene)[level]
    # Level pixel under each output pixel's centre.
    xs = np.clip(np.floor((rx0 + (np.arange(out_w) + 0.5) * (rw / out_w)) / dx), 0, wl - 1).astype(
        np.int64
    )
    ys = np.clip(np.floor((ry0 + (np.arange(out_h) + 0.5) * (rh / out_h)) / dy), 0, hl - 1).astype(
        np.int64
    )
    ts = renderer.tile_size
    cols = sorted({int(v) // ts for v in xs})
    rows = sorted({int(v) // ts for v in ys})
    labels = tuple(view.labels)
    out = np.zeros((out_h, out_w, 4), dtype=np.uint8)
    for ty in rows:
        in_row = (ys // ts) == ty
        for tx in cols:
            in_col = (xs // ts) == tx
            tile = renderer.render_rgba(
                scene, level, view.t, view.z, tx, ty, channels, labels, label_opacity=label_opacity
            )
            ly = ys[in_row] - ty * ts
            lx = xs[in_col] - tx * ts
            out[np.ix_(np.flatnonzero(in_row), np.flatnonzero(in_col))] = tile[np.ix_(ly, lx)]
    return Snapshot(out, scene, view.t, view.z, level, region, whole, labels)
