"""core.tiles: levels for zooms, tile grids, rendering against numpy references, cache, values."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import fixtures
import imagecodecs
import numpy as np
import pytest

from bioimnb.core.errors import BioimnbError
from bioimnb.core.images import MultiscaleImage, open_image
from bioimnb.core.tiles import (
    ChannelView,
    OutOfRange,
    TileRenderer,
    ViewState,
    channel_dtype,
    composite_channels,
    encode_rgba,
    format_channel_spec,
    label_color,
    label_colors,
    parse_channel_spec,
)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Small generated images with the arrays that made them (only the ones these tests use)."""
    d: Path = tmp_path_factory.mktemp("tiles")
    return {
        # 2 scenes x (C=2, 600 x 800) uint16, levels 600x800, 300x400, 150x200, 128px TIFF tiles
        "ome_tiff": (d / "p.ome.tif", fixtures.ome_tiff_subifd(d / "p.ome.tif")),
        # RGB uint8 1536 x 2048, 3 levels
        "svs": (d / "s.svs", fixtures.svs_like(d / "s.svs")),
        # C=2, Z=3, 300 x 400 uint16, 3 levels; label "cells" (Z=3) with 2 levels
        "ngff": (d / "v.ome.zarr", fixtures.ngff_image(d / "v.ome.zarr", "0.4")),
    }


def _renderer(made: dict[str, Any], key: str, **kwargs: Any) -> tuple[TileRenderer, Any]:
    path, truth = made[key]
    return TileRenderer(open_image(path), **kwargs), truth


def _rgb(color: str) -> np.ndarray:
    return np.array([int(color[i : i + 2], 16) for i in (0, 2, 4)], dtype=np.float64) / 255.0


def _composite(planes: list[np.ndarray], views: list[ChannelView]) -> np.ndarray:
    """The documented compositing rule, in float64."""
    acc = np.zeros((*planes[0].shape, 3))
    for plane, view in zip(planes, views, strict=True):
        if not view.visible:
            continue
        if view.max <= view.min:
            scaled = (plane >= view.max).astype(np.float64)
        else:
            scaled = np.clip((plane.astype(np.float64) - view.min) / (view.max - view.min), 0, 1)
        acc += scaled[..., None] * _rgb(view.color)
    return np.floor(np.clip(acc, 0, 1) * 255 + 0.5).astype(np.uint8)


def _flat(pairs: list[tuple[float, float]]) -> list[float]:
    return [v for pair in pairs for v in pair]


def _assert_close(actual: np.ndarray, expected: np.ndarray, tol: int = 1) -> None:
    assert actual.shape == expected.shape
    diff = np.abs(actual.astype(np.int16) - expected.astype(np.int16))
    assert diff.max() <= tol, (
        f"max difference {diff.max()} at {np.unravel_index(diff.argmax(), diff.shape)}"
    )


# -- levels and tile grids -----------------------------------------------------------------------


def test_level_for_zoom_picks_the_coarsest_level_not_magnified(made):
    r, _ = _renderer(made, "ome_tiff")  # downsamples 1, 2, 4
    assert [lv["downsample"] for lv in r.info()["levels"]] == [1.0, 2.0, 4.0]
    assert r.level_for_zoom(0, 8.0) == 0  # zoomed in: full resolution
    assert r.level_for_zoom(0, 1.0) == 0
    assert r.level_for_zoom(0, 0.9) == 0  # 2x pixels would be magnified 1.8x
    assert r.level_for_zoom(0, 0.5) == 1  # exactly 1:1 with level 1
    assert r.level_for_zoom(0, 0.52) == 1  # 4 % magnification is within the tolerance
    assert r.level_for_zoom(0, 0.3) == 1  # level 2 would be magnified 1.2x
    assert r.level_for_zoom(0, 0.25) == 2
    assert r.level_for_zoom(0, 0.001) == 2  # beyond the pyramid: the coarsest level
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            r.level_for_zoom(0, bad)


def test_tiles_for_viewport_including_edges(made):
    r, _ = _renderer(made, "ome_tiff")  # level 0 is 800 x 600: 4 x 3 tiles of 256
    assert r.tile_grid(0, 0) == (4, 3)
    everything = r.tiles_for_viewport(0, 0, 0, 0, 800, 600)
    assert everything == [(tx, ty) for ty in range(3) for tx in range(4)]
    assert r.tiles_for_viewport(0, 0, 0, 0, 256, 256) == [(0, 0)]
    assert r.tiles_for_viewport(0, 0, 255, 0, 257, 10) == [(0, 0), (1, 0)]
    assert r.tiles_for_viewport(0, 0, 700, 500, 5000, 5000) == [(2, 1), (3, 1), (2, 2), (3, 2)]
    assert r.tiles_for_viewport(0, 0, -100, -100, 10, 10) == [(0, 0)]  # clipped to the image
    assert r.tiles_for_viewport(0, 0, 10, 10, -100, -100) == [(0, 0)]  # corners in any order
    assert r.tiles_for_viewport(0, 0, 900, 0, 1000, 100) == []  # right of the image
    assert r.tiles_for_viewport(0, 0, 10, 10, 10, 50) == []  # empty rectangle
    # Level 1 (400 x 300): level-0 rectangle [512, 800) x [0, 600) is level-1 x [256, 400)
    assert r.tiles_for_viewport(0, 1, 512, 0, 800, 600) == [(1, 0), (1, 1)]
    assert r.tiles_for_viewport(0, 2, 0, 0, 800, 600) == [(0, 0)]
    # Edge tiles cover only existing pixels.
    views = [ChannelView(0)]
    assert r.render_rgba(0, 0, 0, 0, 3, 2, views).shape == (600 - 512, 800 - 768, 4)
    assert r.render_rgba(0, 1, 0, 0, 1, 1, views).shape == (300 - 256, 400 - 256, 4)
    with pytest.raises(OutOfRange, match=r"no tile \(4, 0\) at level 0; it has 4 x 3 tiles"):
        r.render_rgba(0, 0, 0, 0, 4, 0, views)
    with pytest.raises(OutOfRange):
        r.render_rgba(0, 0, 0, 0, -1, 0, views)


def test_render_errors_are_one_line_bioimnb_errors(made):
    r, _ = _renderer(made, "ome_tiff")
    views = [ChannelView(0)]
    for call, match in [
        (lambda: r.render_rgba(0, 3, 0, 0, 0, 0, views), "no level 3; the image has 3 level"),
        (lambda: r.render_rgba(0, 0, 1, 0, 0, 0, views), "no time point 1"),
        (lambda: r.render_rgba(0, 0, 0, 2, 0, 0, views), "no z plane 2"),
        (lambda: r.render_rgba(0, 0, 0, 0, 0, 0, [ChannelView(2)]), "no channel 2"),
        (lambda: r.render_rgba(5, 0, 0, 0, 0, 0, views), "no scene 5"),
        (lambda: r.values(0, 0, 0, 800, 0), r"no pixel \(800, 0\)"),
    ]:
        with pytest.raises(BioimnbError, match=match) as excinfo:
            call()
        assert "\n" not in str(excinfo.value)
    with pytest.raises(BioimnbError, match="no label image 'nope'"):
        r.render_rgba(0, 0, 0, 0, 0, 0, views, labels=["nope"])


# -- rendering -----------------------------------------------------------------------------------


def test_two_channel_composite_matches_numpy(made):
    r, truth = _renderer(made, "ome_tiff")
    views = [
        ChannelView(0, True, "FF8000", 1000.0, 40000.0),
        ChannelView(1, True, "00FFFF", 5000.0, 60000.0),
    ]
    for scene, level, tx, ty in [(0, 0, 1, 1), (1, 0, 3, 2), (1, 1, 1, 1), (0, 2, 0, 0)]:
        data = truth[scene][level]
        rgba = r.render_rgba(scene, level, 0, 0, tx, ty, views)
        ys = slice(ty * 256, (ty + 1) * 256)
        xs = slice(tx * 256, (tx + 1) * 256)
        expected = _composite([data[0][ys, xs], data[1][ys, xs]], views)
        _assert_close(rgba[..., :3], expected)
        assert (rgba[..., 3] == 255).all()

    # Hidden channels do not count; a window with max <= min is a step at max.
    views2 = [
        ChannelView(0, False, "FF0000", 0.0, 1.0),
        ChannelView(1, True, "FFFFFF", 30000.0, 30000.0),
    ]
    rgba = r.render_rgba(0, 0, 0, 0, 0, 0, views2)
    plane = truth[0][0][1][:256, :256]
    expected = np.where(plane >= 30000, 255, 0).astype(np.uint8)
    for k in range(3):
        np.testing.assert_array_equal(rgba[..., k], expected)
    # No visible channel: black, opaque.
    black = r.render_rgba(0, 0, 0, 0, 0, 0, [])
    assert (black[..., :3] == 0).all() and (black[..., 3] == 255).all()


def test_rgb_image_shown_as_rgb_with_optional_window(made):
    r, truth = _renderer(made, "svs")
    assert r.info()["rgb"] is True
    data = truth[1]  # level 1, (768, 1024, 3)
    rgba = r.render_rgba(0, 1, 0, 0, 3, 2, [])  # identity window for uint8: exact
    np.testing.assert_array_equal(rgba[..., :3], data[512:768, 768:1024])
    rgba = r.render_rgba(0, 1, 0, 0, 3, 2, [ChannelView(0, True, "FFFFFF", 50.0, 200.0)])
    region = data[512:768, 768:1024].astype(np.float64)
    expected = np.floor(np.clip((region - 50) / 150, 0, 1) * 255 + 0.5).astype(np.uint8)
    _assert_close(rgba[..., :3], expected)
    hidden = r.render_rgba(0, 1, 0, 0, 3, 2, [ChannelView(0, False)])
    assert (hidden[..., :3] == 0).all()
    # The default view of a uint8 RGB image is the identity window.
    view = ViewState.from_dict(r.info()["default_view"])
    assert [(c.min, c.max) for c in view.channels] == [(0.0, 255.0)]


def test_label_overlay_matches_numpy(made):
    r, truth = _renderer(made, "ngff")
    assert r.info()["labels"] == ["cells"]
    cells = truth["cells"]  # 2 levels of (Z=3, 300, 400) uint8 ids (0 or 1)
    image = truth["image"]  # 3 levels of (C=2, Z=3, Y, X)
    views = [
        ChannelView(0, True, "0000FF", 0.0, 4000.0),
        ChannelView(1, True, "00FF00", 0.0, 4000.0),
    ]

    # Level 0: the label level of the same downsample, pixel for pixel.
    z = 1
    base = _composite([image[0][0, z, :256, :256], image[0][1, z, :256, :256]], views)
    ids = cells[0][z, :256, :256]
    expected = base.copy()
    mask = ids != 0
    expected[mask] = (base[mask].astype(np.uint16) + label_colors(ids[mask]) + 1) // 2
    rgba = r.render_rgba(0, 0, 0, z, 0, 0, views, ["cells"])
    assert mask.any() and (~mask).any()
    _assert_close(rgba[..., :3], expected)
    # Unlabelled pixels are exactly the plain render.
    plain = r.render_rgba(0, 0, 0, z, 0, 0, views)
    np.testing.assert_array_equal(rgba[~mask], plain[~mask])

    # Level 2 (downsample 4) has no label level of its own: the nearest (level 1, downsample 2)
    # is sampled at the centres of the tile's pixels, label pixel 2y + 1.
    rgba = r.render_rgba(0, 2, 0, z, 0, 0, [], ["cells"])
    ids = cells[1][z][1::2, 1::2][:75, :100]
    assert ids.shape == (75, 100)
    expected = np.zeros((75, 100, 3), dtype=np.uint8)
    mask = ids != 0
    expected[mask] = (label_colors(ids[mask]).astype(np.uint16) + 1) // 2
    np.testing.assert_array_equal(rgba[..., :3], expected)


def test_raw_tile_is_the_raw_channel_data_of_the_rendered_tile(made):
    r, truth = _renderer(made, "ome_tiff")
    views = [
        ChannelView(0, True, "FF8000", 1000.0, 40000.0),
        ChannelView(1, True, "00FFFF", 5000.0, 60000.0),
    ]
    for scene, level, tx, ty in [(0, 0, 1, 1), (1, 0, 3, 2), (1, 1, 1, 1), (0, 2, 0, 0)]:
        data = truth[scene][level]
        ys = slice(ty * 256, (ty + 1) * 256)
        xs = slice(tx * 256, (tx + 1) * 256)
        planes = r.raw_tile(scene, level, 0, 0, tx, ty, [1, 0])  # in the order asked
        assert len(planes) == 2
        for plane, c in zip(planes, [1, 0], strict=True):
            assert plane.dtype == np.dtype("<u2") and plane.flags.c_contiguous
            np.testing.assert_array_equal(plane, data[c][ys, xs])  # edge tiles are smaller
        # Compositing the raw tiles gives exactly the kernel's render (the browser's input).
        rgb = composite_channels([(planes[1], views[0]), (planes[0], views[1])], planes[0].shape)
        np.testing.assert_array_equal(
            rgb, r.render_rgba(scene, level, 0, 0, tx, ty, views)[..., :3]
        )
    assert r.raw_tile(0, 0, 0, 0, 0, 0, []) == []

    # A z plane of an OME-Zarr.
    r, truth = _renderer(made, "ngff")
    (plane,) = r.raw_tile(0, 1, 0, 2, 0, 0, [1])
    np.testing.assert_array_equal(plane, truth["image"][1][1, 2, :256, :256])

    # RGB images have no single-channel tiles; indices are checked like render_rgba's.
    rgb_renderer, _ = _renderer(made, "svs")
    with pytest.raises(OutOfRange, match="RGB"):
        rgb_renderer.raw_tile(0, 0, 0, 0, 0, 0, [0])
    r, _ = _renderer(made, "ome_tiff")
    for call, match in [
        (lambda: r.raw_tile(0, 0, 0, 0, 0, 0, [2]), "no channel 2"),
        (lambda: r.raw_tile(0, 3, 0, 0, 0, 0, [0]), "no level 3"),
        (lambda: r.raw_tile(0, 0, 0, 0, 4, 0, [0]), r"no tile \(4, 0\)"),
        (lambda: r.raw_tile(0, 0, 0, 2, 0, 0, [0]), "no z plane 2"),
    ]:
        with pytest.raises(OutOfRange, match=match):
            call()


@pytest.mark.parametrize(
    ("dtype", "sent"),
    [
        ("uint8", "uint8"),
        ("uint16", "uint16"),
        (">u2", "uint16"),
        ("int8", "float32"),
        ("int16", "float32"),
        ("int32", "float32"),
        ("uint32", "float32"),
        ("float32", "float32"),
        ("float64", "float32"),
    ],
)
def test_raw_tile_dtypes_for_the_browser(tmp_path, dtype, sent):
    import tifffile

    assert channel_dtype(dtype) == np.dtype(sent).newbyteorder("<")
    rng = np.random.default_rng(3)
    data = rng.standard_normal((2, 40, 300)) * 1000
    if np.dtype(dtype).kind in "ui":
        info = np.iinfo(dtype)
        data = np.clip(data + (info.max // 2 if info.min == 0 else 0), info.min, info.max)
    data = data.astype(dtype)
    if np.dtype(dtype).kind == "f":
        data[0, 0, :3] = [np.nan, np.inf, -np.inf]
    path = tmp_path / "d.ome.tif"
    tifffile.imwrite(path, data, ome=True, metadata={"axes": "CYX"})
    with open_image(path) as image:
        r = TileRenderer(image, tile_size=256)
        planes = r.raw_tile(0, 0, 0, 0, 1, 0, [0, 1])
        for c, plane in enumerate(planes):
            assert plane.dtype.name == sent and plane.dtype.byteorder in "<=|"
            assert plane.flags.c_contiguous and plane.shape == (40, 300 - 256)
            np.testing.assert_array_equal(plane, data[c, :, 256:].astype(sent))
        # float32 loses nothing the renderer uses: it windows in float32 too.
        views = [
            ChannelView(0, True, "FF00FF", -500.0, 700.0),
            ChannelView(1, True, "00C000", -9, 3),
        ]
        expected = r.render_rgba(0, 0, 0, 0, 1, 0, views)[..., :3]
        rgb = composite_channels(list(zip(planes, views, strict=True)), (40, 44))
        np.testing.assert_array_equal(rgb, expected)


def test_composite_is_float32_exact_as_documented():
    """The step-by-step float32 rule of ``composite_channels`` (what composite.ts repeats)."""
    f32 = np.float32
    plane = np.array([[0, 1, 999, 1000, 4000, 65535]], dtype=np.uint16)
    fplane = np.array([[np.nan, -np.inf, np.inf, 0.1, 0.30000001, 2.5]], dtype=np.float32)
    views = [
        ChannelView(0, True, "FF7F01", 999.5, 4000.25),
        ChannelView(1, True, "40FFFF", 0.1, 0.3),
        ChannelView(1, True, "FF0000", 0.30000001, 0.30000001),  # a step at max
        ChannelView(0, False, "FFFFFF", 0.0, 1.0),  # hidden
    ]
    planes = [plane, fplane, fplane, plane]
    acc = np.zeros((3, plane.size), dtype=np.float32)
    for p, v in zip(planes, views, strict=True):
        if not v.visible:
            continue
        for i, raw in enumerate(p.ravel()):
            x = f32(raw)
            if v.max <= v.min:
                s = f32(1.0 if float(x) >= v.max else 0.0)
            else:
                s = f32(f32(x - f32(v.min)) * f32(1.0 / (v.max - v.min)))
                s = f32(0.0) if np.isnan(s) else min(max(s, f32(0.0)), f32(1.0))
            s255 = f32(s * f32(255))
            for k in range(3):
                c = int(v.color[2 * k : 2 * k + 2], 16)
                if c:
                    acc[k, i] = f32(acc[k, i] + (s255 if c == 255 else f32(s255 * f32(c / 255))))
    expected = np.trunc(np.minimum(acc, f32(255)) + f32(0.5)).astype(np.uint8).T[None]
    got = composite_channels(list(zip(planes, views)), plane.shape)
    np.testing.assert_array_equal(got, expected)


def test_label_colors_are_deterministic_and_documented():
    ids = np.array([0, 1, 2, 1, 2**40 + 7], dtype=np.uint64)
    colors = label_colors(ids)
    assert colors.shape == (5, 3) and colors.dtype == np.uint8
    np.testing.assert_array_equal(colors[1], colors[3])
    assert not np.array_equal(colors[1], colors[2])
    assert (colors >= 64).all()

    def lowbias32(x: int) -> int:  # the documented hash, in plain Python
        x ^= x >> 16
        x = (x * 0x7FEB352D) & 0xFFFFFFFF
        x ^= x >> 15
        x = (x * 0x846CA68B) & 0xFFFFFFFF
        return x ^ (x >> 16)

    for label_id in (1, 2, 12345, 2**40 + 7):
        h = lowbias32((label_id ^ (label_id >> 32)) & 0xFFFFFFFF)
        rgb = [max(64, (h >> s) & 255) for s in (16, 8, 0)]
        assert label_color(label_id) == "".join(f"{v:02X}" for v in rgb)


# -- cache ---------------------------------------------------------------------------------------


class _CountingImage:
    """Counts ``read`` calls of one image (wraps the bound method on the instance)."""

    def __init__(self, image: MultiscaleImage) -> None:
        self.calls: list[tuple[int, dict[str, Any]]] = []
        self._lock = threading.Lock()
        original = image.read

        def read(level: int = 0, **selection: Any) -> np.ndarray:
            with self._lock:
                self.calls.append((level, selection))
            return original(level, **selection)

        image.read = read  # type: ignore[method-assign]


def test_cache_hit_avoids_storage_reads(made):
    path, truth = made["ome_tiff"]
    image = open_image(path)
    counter = _CountingImage(image)
    r = TileRenderer(image)
    red = [ChannelView(0, True, "FF0000", 0.0, 65535.0)]
    r.render(0, 0, 0, 0, 1, 1, red)
    assert len(counter.calls) == 1
    level, sel = counter.calls[0]
    # Only the tile's region was read, never the whole level.
    assert level == 0 and sel["y"] == slice(256, 512) and sel["x"] == slice(256, 512)

    # Colour and contrast changes re-render from the cache.
    green = [ChannelView(0, True, "00FF00", 100.0, 2000.0)]
    r.render(0, 0, 0, 0, 1, 1, green, fmt="jpeg")
    _assert_close(
        r.render_rgba(0, 0, 0, 0, 1, 1, green)[..., :3],
        _composite([truth[0][0][0][256:512, 256:512]], green),
    )
    assert len(counter.calls) == 1
    assert r.cache.hits >= 2

    # A newly visible channel reads that channel only; then both come from the cache.
    both = [*green, ChannelView(1, True, "FF00FF", 0.0, 30000.0)]
    r.render_rgba(0, 0, 0, 0, 1, 1, both)
    assert len(counter.calls) == 2 and counter.calls[1][1]["c"] == 1
    r.render_rgba(0, 0, 0, 0, 1, 1, both)
    assert len(counter.calls) == 2
    # Another tile, or another plane of the same tile, is a miss: both channels in one read.
    r.render_rgba(0, 0, 0, 0, 2, 1, both)
    assert len(counter.calls) == 3 and counter.calls[2][1]["c"] == slice(0, 2)


def test_cache_is_bounded_in_bytes(made):
    path, _ = made["ome_tiff"]
    tile_bytes = 256 * 256 * 2
    r = TileRenderer(open_image(path), cache_bytes=3 * tile_bytes)
    views = [ChannelView(0), ChannelView(1)]
    for tx, ty in r.tiles_for_viewport(0, 0, 0, 0, 800, 600):
        r.render_rgba(0, 0, 0, 0, tx, ty, views)
    assert 0 < r.cache.nbytes <= 3 * tile_bytes
    assert len(r.cache) < 2 * 12  # older tiles were evicted


def test_concurrent_renders_agree_with_sequential(made):
    path, _ = made["ome_tiff"]
    views = [ChannelView(0, True, "FF0000", 0, 50000), ChannelView(1, True, "00FF00", 0, 50000)]
    keys = [(s, 0, tx, ty) for s in (0, 1) for tx in range(4) for ty in range(3)]
    sequential = TileRenderer(open_image(path))
    expected = [sequential.render_rgba(s, lv, 0, 0, tx, ty, views) for s, lv, tx, ty in keys]
    shared = TileRenderer(open_image(path))
    with ThreadPoolExecutor(4) as pool:
        got = list(
            pool.map(lambda k: shared.render_rgba(k[0], k[1], 0, 0, k[2], k[3], views), keys * 2)
        )
    for a, b in zip(got, expected * 2, strict=True):
        np.testing.assert_array_equal(a, b)


# -- contrast, histogram, values, info -------------------------------------------------------------


def test_auto_contrast_is_percentiles_of_the_coarsest_level(made):
    r, truth = _renderer(made, "ome_tiff")
    coarsest = truth[1][2]  # scene 1, level 2
    windows = r.auto_contrast(1)
    for c in range(2):
        lo, hi = np.percentile(coarsest[c], [0.1, 99.9])
        assert windows[c] == pytest.approx((lo, hi))

    r, truth = _renderer(made, "ngff")
    coarsest = truth["image"][2]  # (C, Z, 75, 100)
    for z in range(3):
        windows = r.auto_contrast(0, 0, z)
        for c in range(2):
            assert windows[c] == pytest.approx(tuple(np.percentile(coarsest[c, z], [0.1, 99.9])))
    pooled = r.auto_contrast(0, 0, None)  # all three planes
    assert pooled[0] == pytest.approx(tuple(np.percentile(coarsest[0], [0.1, 99.9])))
    # The default view uses the middle plane's windows.
    view = ViewState.from_dict(r.info()["default_view"])
    assert view.z == 1
    assert _flat([(c.min, c.max) for c in view.channels]) == pytest.approx(
        _flat(r.auto_contrast(0, 0, 1))
    )


def test_histogram_of_the_coarsest_level(made):
    r, truth = _renderer(made, "ome_tiff")
    hist = r.histogram(0, 1, bins=64)
    data = truth[0][2][1]
    assert len(hist["edges"]) == 65 and len(hist["counts"]) == 64
    assert sum(hist["counts"]) == data.size
    assert hist["min"] == int(data.min()) and hist["max"] == int(data.max())
    expected, _ = np.histogram(data, bins=64, range=(data.min(), int(data.max()) + 1))
    assert hist["counts"] == expected.tolist()
    json.dumps(hist)

    r, truth = _renderer(made, "ngff")
    labels_hist = TileRenderer(r.image.label("cells")).histogram(0, 0)
    # Few distinct integers: one bin per value.
    assert labels_hist["edges"] == [0.0, 1.0, 2.0]
    assert sum(labels_hist["counts"]) == 3 * 150 * 200
    with pytest.raises(OutOfRange):
        r.histogram(0, 2)


def test_values_under_the_cursor(made):
    r, truth = _renderer(made, "ome_tiff")
    got = r.values(1, 0, 0, x=123, y=45)
    assert got == {"x": 123, "y": 45, "values": truth[1][0][:, 45, 123].tolist(), "labels": {}}
    assert r.values(0, 0, 0, x=799, y=599)["values"] == truth[0][0][:, 599, 799].tolist()

    r, truth = _renderer(made, "ngff")
    for x, y, z in [(0, 0, 0), (17, 250, 2), (399, 299, 1)]:
        got = r.values(0, 0, z, x=x, y=y)
        assert got["values"] == truth["image"][0][:, z, y, x].tolist()
        assert got["labels"] == {"cells": int(truth["cells"][0][z, y, x])}
        json.dumps(got)

    r, truth = _renderer(made, "svs")
    assert r.values(0, 0, 0, x=100, y=7)["values"] == [truth[0][7, 100].tolist()]


def test_info_is_json_with_a_default_view(made):
    r, truth = _renderer(made, "ome_tiff")
    info = json.loads(json.dumps(r.info(1)))
    assert info["scene"] == 1 and info["scenes"] == ["scene-0", "scene-1"]
    assert info["format"] == "OME-TIFF" and info["axes"] == "TCZYX" and info["dtype"] == "uint16"
    assert info["rgb"] is False and info["tile_size"] == 256
    assert info["levels"] == [
        {"shape": [600, 800], "downsample": 1.0},
        {"shape": [300, 400], "downsample": 2.0},
        {"shape": [150, 200], "downsample": 4.0},
    ]
    assert info["size_t"] == 1 and info["size_z"] == 1
    assert info["physical_size_um"] == {"X": 0.325, "Y": 0.325, "Z": None}
    assert [c["name"] for c in info["channels"]] == ["DAPI", "GFP"]
    assert info["labels"] == []
    view = ViewState.from_dict(info["default_view"])
    assert view.scene == 1 and view.zoom is None and view.center_x is None
    # Both channels are white in the file: the default view uses distinct colours.
    assert [c.color for c in view.channels] == ["FF0000", "00FF00"]
    assert all(c.visible for c in view.channels)
    assert _flat([(c.min, c.max) for c in view.channels]) == pytest.approx(
        _flat(r.auto_contrast(1))
    )


# -- view state, channel specs, encodings ---------------------------------------------------------


def test_view_state_round_trips_through_json():
    view = ViewState(
        scene=1,
        t=2,
        z=3,
        center_x=10.5,
        center_y=20.0,
        zoom=0.25,
        channels=[ChannelView(0, True, "FF0000", 1.0, 2.0), ChannelView(3, False, "00FF00", 0, 9)],
        labels=["cells"],
    )
    again = ViewState.from_dict(json.loads(json.dumps(view.to_dict())))
    assert again == view
    assert ViewState.from_dict({}) == ViewState()
    assert ViewState.from_dict({"channels": [{"index": 1, "color": "#00ff00"}]}).channels == [
        ChannelView(1, True, "00FF00")
    ]
    with pytest.raises(ValueError):
        ViewState.from_dict({"channels": [{"color": "FF0000"}]})
    with pytest.raises(ValueError):
        ChannelView.from_dict({"index": 0, "color": "red"})


def test_channel_spec_round_trip():
    views = parse_channel_spec("0:FF0000:100:4000,1:00ff00:50.5:3000")
    assert views == [
        ChannelView(0, True, "FF0000", 100.0, 4000.0),
        ChannelView(1, True, "00FF00", 50.5, 3000.0),
    ]
    assert format_channel_spec(views) == "0:FF0000:100:4000,1:00FF00:50.5:3000"
    assert parse_channel_spec("") == []
    for bad in ("0:FF0000:1", "x:FF0000:1:2", "0:GG0000:1:2", "0:FF0000:nan:2"):
        with pytest.raises(ValueError):
            parse_channel_spec(bad)


def test_encodings(made):
    r, _ = _renderer(made, "ome_tiff")
    views = [ChannelView(0, True, "FF00FF", 0, 40000)]
    rgba = r.render_rgba(0, 0, 0, 0, 3, 2, views)
    np.testing.assert_array_equal(imagecodecs.png_decode(r.render(0, 0, 0, 0, 3, 2, views)), rgba)
    assert r.render(0, 0, 0, 0, 3, 2, views, fmt="raw") == rgba.tobytes()
    jpeg = imagecodecs.jpeg8_decode(r.render(0, 0, 0, 0, 3, 2, views, fmt="jpeg"))
    assert jpeg.shape == (88, 32, 3)
    with pytest.raises(ValueError, match="unknown tile format"):
        encode_rgba(rgba, "gif")
