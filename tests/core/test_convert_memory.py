"""The streaming block pipeline: byte-identical to encoding whole shards, pixel-exact at every
level (odd sizes, fused and re-read levels), and holding about one chunk row, not one shard."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import tifffile
import zarr

import bioimnb
from bioimnb.core.convert import convert


def mean2(a: np.ndarray) -> np.ndarray:
    pad = [(0, 0)] * (a.ndim - 2) + [(0, a.shape[-2] % 2), (0, a.shape[-1] % 2)]
    p = np.pad(a, pad, mode="edge").astype(np.uint64)
    s = p[..., ::2, ::2] + p[..., 1::2, ::2] + p[..., ::2, 1::2] + p[..., 1::2, 1::2]
    return ((s + 2) // 4).astype(a.dtype)


@pytest.mark.parametrize("ngff", ["0.5", "0.4"])
def test_every_level_exact_on_odd_sizes(tmp_path, ngff):
    data = np.random.default_rng(3).integers(0, 65535, (1001, 777), dtype=np.uint16)
    src = tmp_path / "odd.tif"
    tifffile.imwrite(src, data, tile=(128, 128), compression="zlib")
    dest = tmp_path / "odd.ome.zarr"
    # 5 levels; with shards of 256 px: level 0 streams, levels 1-2 are fused, 3-4 re-read level 2/3
    convert(src, dest, ngff=ngff, chunks=64, shards=256 if ngff == "0.5" else None, levels=5)
    out = bioimnb.open_image(dest)
    expected = data
    for k in range(5):
        np.testing.assert_array_equal(out.levels[k].compute()[0, 0, 0], expected, err_msg=f"level {k}")
        expected = mean2(expected)


def test_streamed_shards_are_byte_identical_to_whole_shard_encoding(tmp_path):
    from bioimnb.core.convert.shards import shard_codec
    from bioimnb.core.storage import resolve

    data = np.random.default_rng(4).integers(0, 3000, (700, 600), dtype=np.uint16)
    src = tmp_path / "s.tif"
    tifffile.imwrite(src, data)
    dest = tmp_path / "s.ome.zarr"
    convert(src, dest, chunks=64, shards=256, levels=2)
    arr = zarr.open_array(str(dest), path="0", mode="r")
    codec = shard_codec(arr, resolve(str(dest)))
    assert codec is not None
    n = 0
    for y0 in range(0, 700, 256):
        for x0 in range(0, 600, 256):
            block = data[y0 : y0 + 256, x0 : x0 + 256]
            stored = (dest / "0" / "c" / "0" / "0" / "0" / str(y0 // 256) / str(x0 // 256)).read_bytes()
            assert stored == codec.encode(block), (y0, x0)
            n += 1
    assert n == 9


def test_a_level0_task_holds_about_one_chunk_row_not_the_shard(tmp_path):
    """One 2048 x 2048 uint16 shard (8 MiB) written from 128-row bands: the task's Python-side
    allocations stay under a quarter of the shard (before streaming they were several shards)."""
    from bioimnb.core.convert import work
    from bioimnb.core.convert.plan import Block

    data = np.random.default_rng(5).integers(0, 3000, (2048, 2048), dtype=np.uint16)
    src = tmp_path / "m.tif"
    tifffile.imwrite(src, data, tile=(256, 256))
    dest = tmp_path / "m.ome.zarr"
    convert(src, dest, chunks=128, shards=2048, levels=4, verify=False)
    job = work.Job(
        source=str(src), source_options="{}", scene=0, samples=1, dest=str(dest), dest_options="{}",
        array_path="0", prev_path=None, factors=(1, 1, 1), method="mean", fused_paths=("1", "2", "3"),
    )
    block = Block(0, 0, 0, 0, 0, 2048, 0, 2048)
    work._source(job)  # open the source outside the measurement
    shard = 2048 * 2048 * 2
    tracemalloc.start()
    try:
        _, digest, nbytes = work.run_block(job, block)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        key, got = work.verify_block(job, block)
        _, verify_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert nbytes == shard and digest == got == work.block_digest(data)
    assert peak < shard / 4, f"writing held {peak / 2**20:.1f} MiB for an {shard / 2**20:.0f} MiB shard"
    assert verify_peak < shard / 4, f"verifying held {verify_peak / 2**20:.1f} MiB"
    out = bioimnb.open_image(dest)
    np.testing.assert_array_equal(out.levels[3].compute()[0, 0, 0], mean2(mean2(mean2(data))))
