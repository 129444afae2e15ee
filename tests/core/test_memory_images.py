"""In-memory images: numpy, dask, xarray, zarr and bioio objects opened as MultiscaleImage.

Every level is compared pixel for pixel with the source array (the virtual levels with the
stride-2**k sample they are defined as); physical sizes and channel names come from the object;
bad input is one line; a viewer on a dask array computes only the chunks of requested tiles.
"""

from __future__ import annotations

import threading

import dask.array as da
import numpy as np
import pytest
import tifffile
import xarray as xr
import zarr

import bioimnb
from bioimnb.core.errors import BioimnbError
from bioimnb.core.images import _MEMORY_SCHEME
from bioimnb.core.readers.memory import MEMORY_SCHEME, register
from bioimnb.core.tiles import TileRenderer


def _stack(shape: tuple[int, ...] = (2, 3, 700, 900), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 60000, shape, dtype=np.uint16)


def _levels_equal(img: bioimnb.MultiscaleImage, canonical: np.ndarray) -> None:
    """Level k of ``img`` is the stride-2**k sample of ``canonical`` (TCZYX[S])."""
    assert img.n_levels >= 2
    for k, level in enumerate(img.levels):
        f = 2**k
        want = canonical[:, :, :, ::f, ::f]
        got = level.compute()
        assert got.shape == want.shape, k
        np.testing.assert_array_equal(got, want)
        # and the region read path (what tiles use)
        y1, x1 = min(37, want.shape[3]), min(53, want.shape[4])
        np.testing.assert_array_equal(img.read(k, t=0, y=slice(3, y1), x=slice(5, x1)), want[0, :, :, 3:y1, 5:x1])


def test_numpy_czyx_levels_physical_and_channels() -> None:
    a = _stack()
    img = bioimnb.open_image(a, axes="CZYX", physical_size=(2.0, 0.5, 0.25), channel_names=["DAPI", "GFP"])
    assert img.axes == "TCZYX" and img.shape == (1, 2, 3, 700, 900)
    assert img.format == "in-memory" and img.reader == "numpy"
    assert img.physical_size.to_dict() == {"X": 0.25, "Y": 0.5, "Z": 2.0}
    assert img.channel_names == ["DAPI", "GFP"]
    assert img.virtual_pyramid
    _levels_equal(img, a[None])
    info = img.describe()
    assert info["scenes"][0]["channels"] == ["DAPI", "GFP"] and info["format"] == "in-memory"
    assert img.files == []


@pytest.mark.parametrize(
    ("shape", "dtype", "axes"),
    [
        ((300, 400), np.uint16, "TCZYX"),
        ((5, 300, 400), np.float32, "TCZYX"),  # 3-D: Z stack
        ((2, 5, 300, 400), np.uint8, "TCZYX"),  # 4-D: CZYX
        ((2, 2, 5, 300, 400), np.uint16, "TCZYX"),
        ((300, 400, 3), np.uint8, "TCZYXS"),  # RGB
        ((300, 400, 4), np.uint8, "TCZYXS"),  # RGBA
    ],
)
def test_default_axes(shape: tuple[int, ...], dtype: type, axes: str) -> None:
    a = np.arange(np.prod(shape), dtype=np.int64).reshape(shape).astype(dtype)
    img = bioimnb.open_image(a)
    assert img.axes == axes
    n = len(shape) - (1 if axes.endswith("S") else 0)
    canonical = a.reshape((1,) * (5 - n) + a.shape)
    np.testing.assert_array_equal(img.levels[0].compute(), canonical)
    if axes.endswith("S"):
        assert img.channel_names == ["RGB"]


def test_dask_levels_equal_and_lazy() -> None:
    a = _stack((2, 1, 600, 1100), seed=1)
    computed: list[tuple[int, ...]] = []

    def count(block: np.ndarray, block_info: dict | None = None) -> np.ndarray:
        computed.append(tuple(block_info[0]["chunk-location"]))  # type: ignore[index]
        return block

    lazy = da.from_array(a, chunks=(1, 1, 256, 256)).map_blocks(count, dtype=a.dtype)
    img = bioimnb.open_image(lazy, axes="CZYX")
    assert computed == []  # opening computes nothing
    assert img.reader == "dask" and img.chunk_shapes[0] == (1, 1, 1, 256, 256)
    img.read(0, t=0, c=1, z=0, y=slice(300, 310), x=slice(520, 530))
    assert sorted(computed) == [(1, 0, 1, 2)]
    computed.clear()
    _levels_equal(img, a[None])


def test_viewer_tiles_compute_only_their_chunks() -> None:
    """A dask graph with a counting function: each tile request computes exactly the chunks
    under it (level 0) and nothing else."""
    lock = threading.Lock()
    computed: list[tuple[int, ...]] = []

    def count(block: np.ndarray, block_info: dict | None = None) -> np.ndarray:
        with lock:
            computed.append(tuple(block_info[0]["chunk-location"]))  # type: ignore[index]
        return block + 1

    lazy = da.zeros((4096, 4096), dtype=np.uint16, chunks=512).map_blocks(count, dtype=np.uint16)
    img = bioimnb.open_image(lazy)
    r = TileRenderer(img, tile_size=256)
    tile = r.raw_tile(0, 0, 0, 0, 5, 3, [0])[0]
    assert sorted(computed) == [(1, 2)]  # tile (5, 3) = pixels y 768..1024, x 1280..1536
    assert (tile == 1).all()
    computed.clear()
    for tx, ty in r.tiles_for_viewport(0, 0, 2000, 2000, 2600, 2400):
        r.raw_tile(0, 0, 0, 0, tx, ty, [0])
    assert sorted(set(computed)) == [(y, x) for y in (3, 4) for x in (3, 4, 5)]
    assert len(computed) == len(set(computed))  # no chunk computed twice


def test_lazy_view_opens_at_full_resolution_and_computes_little() -> None:
    from bioimnb.widgets.viewer import view

    lock = threading.Lock()
    computed: list[tuple[int, ...]] = []

    def count(block: np.ndarray, block_info: dict | None = None) -> np.ndarray:
        with lock:
            computed.append(tuple(block_info[0]["chunk-location"]))  # type: ignore[index]
        return block

    lazy = da.ones((20000, 20000), dtype=np.uint16, chunks=1024).map_blocks(count, dtype=np.uint16)
    v = view(lazy)
    assert v.view["zoom"] == 1.0 and v.view["center_x"] == 10000
    # the contrast comes from the 1024-px centre square: 4 chunks computed, not 400
    assert sorted(set(computed)) == [(9, 9), (9, 10), (10, 9), (10, 10)]
    assert len(computed) == 4
    v.close()


def test_xarray_dims_coords_units_and_channels() -> None:
    a = _stack((2, 4, 300, 500), seed=2)
    x = xr.DataArray(
        a,
        dims=("channel", "z", "y", "x"),
        coords={
            "channel": ["DAPI", "Actin"],
            "z": np.arange(4) * 1.5,
            "y": np.arange(300) * 0.2,
            "x": 10 + np.arange(500) * 200.0,
        },
    )
    x.coords["x"].attrs["units"] = "nm"
    img = bioimnb.open_image(x)
    assert img.reader == "xarray"
    got = {k: round(v, 9) for k, v in img.physical_size.to_dict().items()}
    assert got == {"X": 0.2, "Y": 0.2, "Z": 1.5}
    assert img.channel_names == ["DAPI", "Actin"]
    _levels_equal(img, a[None])
    # dask-backed DataArray stays lazy
    lazy = xr.DataArray(da.from_array(a[0, 0], chunks=128), dims=("y", "x"))
    assert bioimnb.open_image(lazy).reader == "xarray"


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_zarr_arrays(tmp_path, zarr_format: int) -> None:
    a = _stack((3, 600, 700), seed=3)
    z = zarr.create_array(store=str(tmp_path / "a.zarr"), shape=a.shape, chunks=(1, 128, 128), dtype=a.dtype, zarr_format=zarr_format)
    z[:] = a
    img = bioimnb.open_image(z, axes="CYX")
    assert img.reader == "zarr" and img.chunk_shapes[0] == (1, 1, 1, 128, 128)
    _levels_equal(img, a[None, :, None])


def test_bioio_bioimage(tmp_path) -> None:
    from bioio import BioImage

    a = _stack((2, 3, 520, 610), seed=4)
    path = tmp_path / "cells.ome.tif"
    tifffile.imwrite(
        path,
        a,
        ome=True,
        metadata={"axes": "CZYX", "PhysicalSizeX": 0.325, "PhysicalSizeY": 0.325, "PhysicalSizeZ": 1.2, "Channel": {"Name": ["Hoechst", "Tubulin"]}},
    )
    image = BioImage(path)
    img = bioimnb.open_image(image)
    assert img.reader == "bioio" and img.axes == "TCZYX"
    assert img.physical_size.to_dict() == {"X": pytest.approx(0.325), "Y": pytest.approx(0.325), "Z": pytest.approx(1.2)}
    assert img.channel_names == ["Hoechst", "Tubulin"]
    _levels_equal(img, a[None])


def test_key_reopens_the_same_image() -> None:
    assert MEMORY_SCHEME == _MEMORY_SCHEME
    a = _stack((300, 400))
    img = bioimnb.open_image(a, name="mine")
    key = register(img._backend)  # type: ignore[arg-type]
    again = bioimnb.open_image(key)
    np.testing.assert_array_equal(again.levels[0].compute()[0, 0, 0], a)
    with pytest.raises(BioimnbError, match="in-memory image is gone"):
        bioimnb.open_image(MEMORY_SCHEME + "0" * 32 + "/gone")


class _LooksLikeImage:
    """Has the attributes of a BioImage, but its data is not an array with named dims."""

    dims = None
    scenes = ("s0",)
    dask_data = "not pixels"


@pytest.mark.parametrize(
    ("obj", "kwargs", "reason"),
    [
        (np.zeros(7), {}, "array: a 1-D array (shape (7,)) is not an image; an image has at least Y and X"),
        (np.zeros((4, 5, 6)), {"axes": "YX"}, "array: axes 'YX' do not match the array's 3 dimensions (shape (4, 5, 6))"),
        (np.zeros((4, 5)), {"axes": "QW"}, "array: cannot interpret axis 'W' of axes 'QW'"),
        (np.zeros((2, 4, 5)), {"axes": "CYX", "channel_names": ["a"]}, "array: 1 channel name(s) given for 2 channel(s)"),
        (np.zeros((2, 2, 2, 2, 2, 2, 2)), {}, "array: a 7-D array (shape (2, 2, 2, 2, 2, 2, 2)) needs axes=..., e.g. 'TCZYX'"),
        (np.array([["a", "b"], ["c", "d"]]), {}, "array: arrays of dtype <U1 are not images (bioimnb shows integer, float and boolean pixels)"),
        (_LooksLikeImage(), {}, "_LooksLikeImage: a test_memory_images._LooksLikeImage looks like an image object but has no pixel array with named dimensions (dask_data, dims.order)"),
        ([[1, 2], [3, 4]], {}, "list: bioimnb cannot open a list; give a path, a URL, an array, an xarray DataArray or a bioio BioImage"),
        (xr.DataArray(np.zeros((3, 4)), dims=("a", "b")), {}, "DataArray: cannot tell what dimension 'a' of the DataArray is (dims ('a', 'b')); pass axes=..., e.g. 'CYX'"),
    ],
)
def test_bad_input_is_one_line(obj: object, kwargs: dict, reason: str) -> None:
    with pytest.raises(BioimnbError) as err:
        bioimnb.open_image(obj, **kwargs)
    assert str(err.value) == reason
    assert "\n" not in str(err.value)


def test_info_text_and_tiles_work_unchanged() -> None:
    from bioimnb.core.text import format_info

    a = _stack((2, 300, 400), seed=5)
    img = bioimnb.open_image(a, axes="CYX", physical_size=0.5, name="projection")
    text = format_info(img.describe())
    assert "projection" in text and "in-memory" in text
    r = TileRenderer(img)
    view = r.default_view().channels[0]
    lo, hi = np.percentile(a[0, ::2, ::2], [0.1, 99.9])  # auto contrast of the coarsest level
    assert view.min == pytest.approx(lo, rel=0.02) and view.max == pytest.approx(hi, rel=0.02)
    raw = r.raw_tile(0, 0, 0, 0, 1, 0, [0, 1])
    np.testing.assert_array_equal(raw[1], a[1, 0:256, 256:400])


def test_bioimage_scenes_and_the_object_keeps_its_scene(tmp_path) -> None:
    from bioio import BioImage

    a = _stack((2, 300, 400), seed=6)
    b = _stack((1, 200, 260), seed=7)
    path = tmp_path / "two.ome.tif"
    with tifffile.TiffWriter(path, ome=True) as tw:
        tw.write(a, metadata={"axes": "CYX", "Name": "first"})
        tw.write(b, metadata={"axes": "CYX", "Name": "second"})
    image = BioImage(path)
    img = bioimnb.open_image(image)
    assert img.scenes == list(image.scenes) and len(img.scenes) == 2
    second = img.select_scene(1)
    assert image.current_scene_index == 0  # the user's object is left on its scene
    np.testing.assert_array_equal(second.levels[0].compute()[0, :, 0], b)
    np.testing.assert_array_equal(img.levels[0].compute()[0, :, 0], a)


class AICSImage:
    """What bioimnb reads of an aicsimageio ``AICSImage`` (the package is not installed here):
    attributes only, nothing imported."""

    def __init__(self, data: np.ndarray) -> None:
        from collections import namedtuple

        self._data = data
        self.dims = namedtuple("Dimensions", "order")("TCZYX")
        self.scenes = ("Image:0",)
        self.current_scene_index = 0
        self.physical_pixel_sizes = namedtuple("PhysicalPixelSizes", "Z Y X")(1.0, 0.1, 0.1)
        self.channel_names = ["A", "B"]

    @property
    def dask_data(self) -> da.Array:
        return da.from_array(self._data, chunks=(1, 1, 1, 64, 64))

    def set_scene(self, index: int) -> None:
        self.current_scene_index = index


def test_aicsimage_like_object() -> None:
    a = _stack((1, 2, 3, 130, 150), seed=8)
    img = bioimnb.open_image(AICSImage(a))
    assert img.reader == "bioio" and img.channel_names == ["A", "B"]
    assert img.physical_size.to_dict() == {"X": 0.1, "Y": 0.1, "Z": 1.0}
    np.testing.assert_array_equal(img.levels[0].compute(), a)


def test_magic_views_a_notebook_variable(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from IPython.core.error import UsageError
    from IPython.testing.globalipapp import get_ipython

    from bioimnb.widgets.viewer import Viewer

    monkeypatch.chdir(tmp_path)
    ip = get_ipython()
    ip.run_line_magic("load_ext", "bioimnb")
    stack, mask = _stack((2, 300, 400), seed=9), np.zeros((300, 400), np.uint16)
    mask[10:20, 30:40] = 7
    ip.user_ns.update(stack=stack, mask=mask, nothing=np.zeros(3))
    v = ip.run_line_magic("bioim", "view stack --axes CYX --labels nuclei=mask")
    assert isinstance(v, Viewer) and v.info["source"] == "stack" and v.view["labels"] == ["nuclei"]
    assert v.renderer.values(0, 0, 0, 35, 15) == {"x": 35, "y": 15, "values": [int(stack[0, 15, 35]), int(stack[1, 15, 35])], "labels": {"nuclei": 7}}
    with pytest.raises(UsageError) as err:
        ip.run_line_magic("bioim", "view nothing")
    assert str(err.value) == "bioimnb: nothing: a 1-D array (shape (3,)) is not an image; an image has at least Y and X"
    with pytest.raises(UsageError) as err:
        ip.run_line_magic("bioim", "view stack --labels nuclei=missing")
    assert str(err.value) == "bioimnb: missing: no such file, URL or notebook variable"


def test_ome_tiff_from_an_array_reads_back_equal(tmp_path) -> None:
    a = _stack((3, 2, 600, 700), seed=10)  # Z, C ... given as ZCYX
    dest = tmp_path / "stack.ome.tif"
    report = bioimnb.convert(a, dest, axes="ZCYX", physical_size=(1.5, 0.2, 0.2), channel_names=["a", "b"])
    assert any("equal to the source" in c for c in report.checks)
    with tifffile.TiffFile(dest) as tf:
        series = tf.series[0]
        data = series.asarray()
        assert len(series.levels) >= 2
    back = bioimnb.open_image(dest)
    assert back.channel_names == ["a", "b"] and back.physical_size.to_dict() == {"X": 0.2, "Y": 0.2, "Z": 1.5}
    np.testing.assert_array_equal(back.levels[0].compute()[0], a.transpose(1, 0, 2, 3))
    assert data.size == a.size


def test_array_descriptions_are_refused_for_files(tmp_path) -> None:
    path = tmp_path / "x.ome.tif"
    tifffile.imwrite(path, _stack((64, 64)), ome=True)
    for call in (
        lambda: bioimnb.open_image(path, axes="YX"),
        lambda: bioimnb.convert(path, tmp_path / "y.ome.zarr", axes="YX"),
    ):
        with pytest.raises(BioimnbError) as err:
            call()
        assert str(err.value) == f"{path}: axes describe in-memory arrays; a file says its own (edit its metadata instead)"
