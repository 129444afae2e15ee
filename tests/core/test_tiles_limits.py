"""core.tiles: work per request is bounded (storage chunks, channels listed, channels read), and
every core cache draws from one process-wide memory budget."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fixtures
import numpy as np
import pytest
import zarr

from bioimnb.core.cache import ArrayCache, MemoryBudget, process_budget
from bioimnb.core.images import open_image
from bioimnb.core.limits import configure, limits
from bioimnb.core.tiles import (
    MAX_INFO_CHANNELS,
    ChannelView,
    TileRenderer,
    TooManyChunks,
    chunks_touched,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def restore_limits() -> Iterator[None]:
    before = limits()
    try:
        yield
    finally:
        configure(**{k: getattr(before, k) for k in before.__dataclass_fields__})


def _zarr_array(
    path: Path, shape: tuple[int, ...], chunks: tuple[int, ...], dtype: str, data: Any = None
) -> None:
    arr = zarr.create_array(str(path), shape=shape, chunks=chunks, dtype=dtype, fill_value=0)
    if data is not None:
        arr[...] = data


# -- counting chunks ----------------------------------------------------------------------------


def test_chunks_touched_matches_brute_force() -> None:
    rng = np.random.default_rng(7)
    for _ in range(400):
        ndim = int(rng.integers(1, 4))
        chunk = [int(rng.integers(1, 9)) for _ in range(ndim)]
        strides = [int(rng.integers(1, 12)) for _ in range(ndim)]
        ranges = []
        for _ in range(ndim):
            a = int(rng.integers(0, 20))
            ranges.append((a, a + int(rng.integers(0, 15))))
        expected = 1
        for (a, b), c, s in zip(ranges, chunk, strides, strict=True):
            expected *= len({(i * s) // c for i in range(a, b)})
        assert chunks_touched(chunk, ranges, strides) == expected, (chunk, strides, ranges)


def test_chunk_count_is_what_a_virtual_level_really_reads(tmp_path: Path) -> None:
    """For an image without a pyramid, the count of a tile of each virtual level equals the
    number of distinct level-0 chunks the read touched (recorded under the reader)."""
    data = np.random.default_rng(1).integers(0, 60000, (1900, 2300), dtype=np.uint16)
    _zarr_array(tmp_path / "flat.zarr", data.shape, (70, 50), "uint16", data)
    for level, (tx, ty) in [(0, (3, 2)), (1, (1, 0)), (1, (4, 3)), (2, (2, 1)), (3, (0, 0))]:
        img = open_image(tmp_path / "flat.zarr")  # fresh virtual-level cache
        assert img.virtual_pyramid and img.n_levels == 5
        level0 = img._data.levels[0]
        touched: set[tuple[int, int]] = set()
        original = level0.read

        def read(
            key: tuple[Any, ...], original: Any = original, touched: set[Any] = touched
        ) -> np.ndarray:
            ys, xs = key[3], key[4]
            ys = range(*ys.indices(1900)) if isinstance(ys, slice) else [ys]
            xs = range(*xs.indices(2300)) if isinstance(xs, slice) else [xs]
            touched.update((y // 70, x // 50) for y in ys for x in xs)
            return original(key)

        level0.read = read  # type: ignore[method-assign]
        r = TileRenderer(img)
        tile = r.raw_tile(0, level, 0, 0, tx, ty, [0])[0]
        f = 2**level
        y0, y1, x0, x1 = r.tile_bounds(0, level, tx, ty)
        np.testing.assert_array_equal(tile, data[y0 * f : y1 * f : f, x0 * f : x1 * f : f])
        ranges = [(0, 1), (0, 1), (0, 1), (y0, y1), (x0, x1)]
        assert r.chunks_for(img, level, ranges) == len(touched), (level, tx, ty)


# -- refusing work ------------------------------------------------------------------------------


def test_tiny_chunks_are_refused_at_once_with_one_line(tmp_path: Path) -> None:
    """30,000^2 pixels in 1 x 1 chunks (9e8 chunks): a tile would open 65,536 of them (tens of
    seconds); it is refused before reading, and so is every level, values stay cheap."""
    _zarr_array(tmp_path / "dust.zarr", (30000, 30000), (1, 1), "uint8")
    img = open_image(tmp_path / "dust.zarr")
    r = TileRenderer(img)
    start = time.perf_counter()
    info = r.info()  # auto contrast would sample 55,225 chunks: skipped, identity windows
    assert [c["min"] for c in info["default_view"]["channels"]] == [0.0]
    assert [c["max"] for c in info["default_view"]["channels"]] == [255.0]
    with pytest.raises(TooManyChunks) as caught:
        r.render(0, 0, 0, 0, 5, 7, [ChannelView(0)])
    message = str(caught.value)
    assert message == (
        f"{tmp_path / 'dust.zarr'}: tile would read 65,536 chunks, over the limit of 4,096; "
        "the file's chunks are too small to preview"
    )
    assert "\n" not in message
    for level in range(1, img.n_levels):
        with pytest.raises(TooManyChunks, match="tile would read"):
            r.raw_tile(0, level, 0, 0, 0, 0, [0])
    with pytest.raises(TooManyChunks, match="contrast sample would read"):
        r.histogram(0, 0)
    assert r.values(0, 0, 0, 29999, 123)["values"] == [0]  # one chunk
    assert time.perf_counter() - start < 5.0


def test_the_bound_follows_configure_and_counts_exactly(
    tmp_path: Path, restore_limits: None
) -> None:
    data = np.random.default_rng(2).integers(0, 255, (3, 1, 1024, 1024), dtype=np.uint8)
    _zarr_array(tmp_path / "c.zarr", data.shape, (1, 1, 32, 32), "uint8", data)
    r = TileRenderer(open_image(tmp_path / "c.zarr"))
    # Channels 0 and 2 of one 256-tile: read as the span 0..2 -> 3 x 8 x 8 chunks.
    configure(max_chunks_per_request=191)
    with pytest.raises(TooManyChunks, match=r"tile would read 192 chunks, over the limit of 191"):
        r.raw_tile(0, 0, 0, 0, 1, 1, [0, 2])
    configure(max_chunks_per_request=192)
    got = r.raw_tile(0, 0, 0, 0, 1, 1, [0, 2])
    np.testing.assert_array_equal(got[0], data[0, 0, 256:512, 256:512])
    np.testing.assert_array_equal(got[1], data[2, 0, 256:512, 256:512])
    # Cached tiles cost nothing: no refusal even under a limit of 1.
    configure(max_chunks_per_request=1)
    assert r.raw_tile(0, 0, 0, 0, 1, 1, [2])[0].shape == (256, 256)
    with pytest.raises(TooManyChunks, match="tile would read 64 chunks"):
        r.raw_tile(0, 0, 0, 0, 1, 1, [1])


# -- many channels ------------------------------------------------------------------------------


def test_100000_channels_info_is_small_and_histogram_reads_one_channel(tmp_path: Path) -> None:
    n = 100_000
    data = np.zeros((n, 1, 4, 4), dtype=np.uint8)
    data[:, 0, 1, 2] = np.arange(n) % 251
    _zarr_array(tmp_path / "many.zarr", data.shape, (n, 1, 4, 4), "uint8", data)
    img = open_image(tmp_path / "many.zarr")
    reads: list[dict[str, Any]] = []
    original = img.read

    def read(level: int = 0, **selection: Any) -> np.ndarray:
        reads.append(selection)
        return original(level, **selection)

    img.read = read  # type: ignore[method-assign]
    r = TileRenderer(img)
    start = time.perf_counter()
    info = r.info()
    text = json.dumps(info)
    seconds = time.perf_counter() - start
    assert info["size_c"] == n
    assert len(info["channels"]) == MAX_INFO_CHANNELS == len(info["default_view"]["channels"])
    assert len(text) < 200_000, len(text)
    assert seconds < 3.0, seconds
    # Auto contrast read the first 16 channels only; the others have the dtype's window.
    assert [s["c"] for s in reads] == [slice(0, 16)]
    windows = [(c["min"], c["max"]) for c in info["default_view"]["channels"]]
    assert windows[16:] == [(0.0, 255.0)] * (MAX_INFO_CHANNELS - 16)
    # The histogram of one channel reads that channel.
    reads.clear()
    hist = r.histogram(0, 99_999)
    assert [s["c"] for s in reads] == [slice(99_999, 100_000)]
    value = 99_999 % 251
    assert hist["min"] == 0 and hist["max"] == value
    assert sum(hist["counts"]) == 16
    # Values: every channel (one chunk holds them all).
    values = r.values(0, 0, 0, 2, 1)["values"]
    assert len(values) == n and values[n - 1] == value


# -- one memory budget ----------------------------------------------------------------------------


def test_caches_share_one_budget_with_one_lru_order() -> None:
    budget = MemoryBudget(10_000)
    a = ArrayCache(6_000, budget=budget)
    b = ArrayCache(budget=budget)
    kb = np.zeros(1000, np.uint8)
    for i in range(5):
        a.put(("a", i), kb.copy())
    for i in range(4):
        b.put(("b", i), kb.copy())
    assert (a.nbytes, b.nbytes, budget.nbytes) == (5000, 4000, 9000)
    a.get(("a", 0))  # now the most recent of all
    b.put(("b", 4), np.zeros(2000, np.uint8))  # 11,000 > 10,000: evict the oldest of ANY cache
    assert budget.nbytes <= 10_000
    assert a.get(("a", 1)) is None and a.get(("a", 0)) is not None
    a.put(("a", 9), np.zeros(3000, np.uint8))  # a's own bound (6,000) evicts a's oldest
    assert a.nbytes <= 6_000 and budget.nbytes <= 10_000
    assert budget.nbytes == a.nbytes + b.nbytes
    # A cache that goes away gives its bytes back.
    del a
    gc.collect()
    assert budget.nbytes == b.nbytes
    b.clear()
    assert budget.nbytes == 0 and len(budget) == 0
    # Too big for the budget: not kept.
    b.put("huge", np.zeros(20_000, np.uint8))
    assert len(b) == 0


def test_32_scenes_previewed_stay_within_the_process_budget(
    tmp_path: Path, restore_limits: None
) -> None:
    """One OME-TIFF, 32 scenes without pyramids (each gets virtual levels with their own block
    cache): opening and previewing every scene keeps all cached bytes under the budget, while
    what was cached in total is several times more."""
    path = tmp_path / "scenes.ome.tif"
    truth = fixtures.ome_tiff_subifd(path, scenes=32, levels=1)
    budget = 8 * 2**20
    configure(memory_budget=budget)
    gc.collect()
    start = process_budget().nbytes
    img = open_image(path)
    r = TileRenderer(img)
    put = 0
    views = [ChannelView(0), ChannelView(1)]
    for scene in range(32):
        assert r.scene_image(scene).virtual_pyramid
        r.info(scene)
        for level in range(r.scene_image(scene).n_levels):
            cols, rows = r.tile_grid(scene, level)
            for ty in range(rows):
                for tx in range(cols):
                    rgba = r.render_rgba(scene, level, 0, 0, tx, ty, views)
                    put += 2 * rgba.shape[0] * rgba.shape[1] * 2
        assert process_budget().nbytes <= budget
    assert put > 4 * budget  # the bound did something
    # The last scene's level-0 tile is still right.
    np.testing.assert_array_equal(
        r.raw_tile(31, 0, 0, 0, 0, 0, [1])[0], truth[31][0][1, :256, :256]
    )
    assert process_budget().nbytes - start <= budget


RSS_SCRIPT = textwrap.dedent(
    """
    import gc, json, sys
    import numpy as np
    from bioimnb.core.limits import configure
    from bioimnb.core.images import open_image
    from bioimnb.core.tiles import ChannelView, TileRenderer

    def rss():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024

    configure(memory_budget=int(sys.argv[2]))
    img = open_image(sys.argv[1])
    r = TileRenderer(img)
    r.render_rgba(0, 0, 0, 0, 0, 0, [ChannelView(0)])  # first-call costs (imports, codecs)
    gc.collect()
    before = rss()
    views = [ChannelView(0), ChannelView(1)]
    for scene in range(len(img.scenes)):
        r.info(scene)
        for level in range(r.scene_image(scene).n_levels):
            cols, rows = r.tile_grid(scene, level)
            for ty in range(rows):
                for tx in range(cols):
                    r.render_rgba(scene, level, 0, 0, tx, ty, views)
    gc.collect()
    print(json.dumps({"growth": rss() - before}))
    """
)


def test_rss_growth_of_32_previewed_scenes_follows_the_budget(
    tmp_path: Path, restore_limits: None
) -> None:
    """In a fresh process: previewing 32 scenes grows RSS by about the budget, not by what was
    read (about 100 MiB of pixels: the old per-scene caches kept it all)."""
    path = tmp_path / "scenes.ome.tif"
    fixtures.ome_tiff_subifd(path, scenes=32, levels=1)
    (tmp_path / "rss.py").write_text(RSS_SCRIPT)
    budget = 16 * 2**20
    run = subprocess.run(
        [sys.executable, str(tmp_path / "rss.py"), str(path), str(budget)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert run.returncode == 0, run.stderr
    growth = json.loads(run.stdout)["growth"]
    assert growth < budget + 32 * 2**20, f"RSS grew by {growth / 2**20:.0f} MiB"
