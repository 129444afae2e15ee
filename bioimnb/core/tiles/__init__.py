"""Tiles for viewers, shared by the notebook widget and the REST server.

A viewer shows one plane (scene, t, z) of a :class:`~bioimnb.core.images.MultiscaleImage` through
a viewport.  This package answers the questions a viewer asks, one module per concern:

* :mod:`.view`: what is shown (:class:`ViewState`, :class:`ChannelView`, the ``ch`` spec) and
  the ONE rule choosing the pyramid level for a zoom (:func:`level_for_zoom`; the browser's
  ``camera.ts`` repeats it and is tested against it);
* :mod:`.grid`: which tiles of a level cover a viewport, tile bounds, and how many storage
  chunks a request opens (refused beyond ``limits().max_chunks_per_request``);
* :mod:`.render`: the colour compositing rule (the browser's ``composite.ts`` repeats it byte
  for byte), label colours, PNG/JPEG/raw encoding;
* :mod:`.stats`: auto contrast windows and histograms;
* :mod:`.cache`: the raw-tile cache (within the process-wide memory budget);
* :mod:`.renderer`: :class:`TileRenderer`, which puts them together for one opened image;
* :mod:`.thumbnail`: :func:`thumbnail`, a small PNG of an image's coarsest level (the storage
  browser widget and the server's ``api/thumbnail`` both call it).

Coordinates: ``x``/``y`` and viewport rectangles are in level-0 pixels; ``zoom`` is screen
pixels per level-0 pixel; the downsample of a level is ``W_0 / W_L`` (in Y, ``H_0 / H_L``).

Performance (2-channel uint16, 256 x 256 tiles, 2 cores): compositing from cached raw tiles
takes about 0.5 ms, PNG encoding about 2-3 ms; reading and decoding a zlib TIFF tile adds 1-2 ms
(file in the OS page cache).
"""

from __future__ import annotations

from .cache import TileCache
from .grid import OutOfRange, TooManyChunks, chunks_touched, tile_range
from .render import (
    channel_dtype,
    composite_channels,
    encode_rgba,
    identity_window,
    label_color,
    label_colors,
)
from .renderer import (
    AUTO_CONTRAST_CHANNELS,
    DEFAULT_VISIBLE_CHANNELS,
    MAX_INFO_CHANNELS,
    TileRenderer,
)
from .stats import AUTO_CONTRAST_PERCENTILES, AUTO_MAX_EDGE, AUTO_MAX_PLANES
from .thumbnail import THUMBNAIL_EDGE, thumbnail, thumbnail_rgba
from .view import (
    LEVEL_TOLERANCE,
    MAX_PIXEL_RATIO,
    ChannelView,
    ViewState,
    format_channel_spec,
    level_for_zoom,
    parse_channel_spec,
    viewport_rect,
)

__all__ = [
    "AUTO_CONTRAST_CHANNELS",
    "AUTO_CONTRAST_PERCENTILES",
    "AUTO_MAX_EDGE",
    "AUTO_MAX_PLANES",
    "DEFAULT_VISIBLE_CHANNELS",
    "LEVEL_TOLERANCE",
    "MAX_INFO_CHANNELS",
    "MAX_PIXEL_RATIO",
    "THUMBNAIL_EDGE",
    "ChannelView",
    "OutOfRange",
    "TileCache",
    "TileRenderer",
    "TooManyChunks",
    "ViewState",
    "channel_dtype",
    "chunks_touched",
    "composite_channels",
    "encode_rgba",
    "format_channel_spec",
    "identity_window",
    "label_color",
    "label_colors",
    "level_for_zoom",
    "parse_channel_spec",
    "thumbnail",
    "thumbnail_rgba",
    "tile_range",
    "viewport_rect",
]
