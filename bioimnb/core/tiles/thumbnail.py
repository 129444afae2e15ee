"""Thumbnails: a small picture of an image from its coarsest pyramid level.

One place for the storage browser widget and the server's ``api/thumbnail`` route.  The
picture is the image's default view (t 0, the middle z plane, auto contrast and colours of
:meth:`TileRenderer.default_view`) of the coarsest level, rendered as one tile by
:class:`TileRenderer` (so the per-request chunk bound of the viewer applies) and reduced by
nearest-neighbour sampling to at most ``max_edge`` pixels a side.  Nothing finer than the
coarsest level is read.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..images import MultiscaleImage, open_image
from .render import encode_rgba
from .renderer import TileRenderer

__all__ = ["THUMBNAIL_EDGE", "thumbnail", "thumbnail_rgba"]

THUMBNAIL_EDGE = 128
"""Default longest side of a thumbnail, in pixels."""


def thumbnail_rgba(image: MultiscaleImage, max_edge: int = THUMBNAIL_EDGE) -> np.ndarray:
    """``(h, w, 4)`` uint8 RGBA of ``image``'s coarsest level, at most ``max_edge`` a side."""
    if max_edge < 1:
        raise ValueError(f"max_edge must be positive, not {max_edge}")
    level = image.n_levels - 1
    shape = image.level_shapes[level]
    h, w = int(shape[3]), int(shape[4])
    renderer = TileRenderer(image, tile_size=max(16, h, w), cache_bytes=64 * 2**20)
    scene = renderer.image.scene_index
    view = renderer.default_view(scene)
    rgba = renderer.render_rgba(scene, level, view.t, view.z, 0, 0, view.channels)
    step = max(1, -(-max(h, w) // max_edge))  # ceil: the result fits in max_edge
    return np.ascontiguousarray(rgba[::step, ::step])


def thumbnail(
    source: str | os.PathLike[str] | MultiscaleImage,
    max_edge: int = THUMBNAIL_EDGE,
    *,
    fmt: str = "png",
    root: str | os.PathLike[str] | None = None,
    **storage_options: Any,
) -> bytes:
    """The thumbnail of ``source`` (a path, URL or opened image) encoded as ``png`` or ``jpeg``.

    A source given as a path or URL is opened (``root`` and ``storage_options`` as for
    :func:`~bioimnb.core.images.open_image`) and closed again."""
    if isinstance(source, MultiscaleImage):
        return encode_rgba(thumbnail_rgba(source, max_edge), fmt)
    with open_image(source, root=root, **storage_options) as image:
        return encode_rgba(thumbnail_rgba(image, max_edge), fmt)
