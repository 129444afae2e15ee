"""Benchmark: OME-TIFF -> OME-Zarr conversion, bioimnb vs ngff-zarr vs ome-zarr-py vs bioio.

Claim checked (from the Convert issue): on one big uint16 multi-channel OME-TIFF, with the same
codec and level, chunk shape and number of levels, bioimnb is at least 1.5x faster than the
fastest peer, reaches at least 60 % of this machine's ceiling, and peaks under 1.5 GB RSS (also
when converting a 4 GiB image).

Run:  .venv/bin/python benchmarks/bench_convert.py            (2.25 GiB + 4 GiB inputs; ~30 min with 3 runs)
      .venv/bin/python benchmarks/bench_convert.py --quick    (small input, each tool once, < 60 s)

Input (generated once under --workdir, reused when its ``.complete`` marker exists): a tiled
(512 x 512) zstd-1 compressed OME-TIFF, uint16, axes CYX, C = 2, written tile by tile from an
iterator (never held in memory).  Pixels: a smooth, continuous pattern of blobs plus ~6 bits
of noise (it compresses to ~70 % of raw with zstd-3, like real fluorescence data).

Every conversion runs in its own fresh Python subprocess (``--worker``).
Its peak RSS is the child's own ``VmHWM`` (reported by the child from ``/proc/self/status``:
``ru_maxrss`` would inherit the harness's high-water mark across fork+exec).
The wall time is measured inside the child around the conversion call only (imports excluded:
bioimnb's lazily imported modules - its convert engine, ome-types, ome-zarr-models - are imported
before the clock starts, as each peer's package is; opening the source and building task graphs
included).  Before each run the source and the
previous output are evicted from the page cache (``posix_fadvise(DONTNEED)``) and the output
deleted, then ``sync``; runs of the different tools are interleaved (round robin) so machine
noise spreads over all of them.

Common settings: NGFF 0.5 (zarr v3; every tool here supports it), zstd level 3, chunks
512 x 512 in Y/X and 1 in C, shards 4096 x 4096 (bioimnb's 0.5 default, given to the peers
too, capped to the level's extent), 5 levels, 2 worker threads.  Downsampling: bioimnb 2x2
mean, each level from the previous one; ngff-zarr ``dask_bin_shrink`` (block mean); ome-zarr-py
``Methods.LOCAL_MEAN`` (skimage ``downscale_local_mean``); bioio's ``OMEZarrWriter`` only offers
``resize(order=0)`` (nearest), each level from the previous one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import base_parser, evict, median, print_machine, progress, table  # noqa: E402

TILE = 512
SHARD = 4096
DTYPE = np.dtype("uint16")
PIXEL_UM = 0.5
ZSTD_LEVEL = 3
WORKERS = 2

TOOLS = ("bioimnb", "bioimnb-noverify", "ngff-zarr", "ome-zarr-py", "bioio")
PEERS = ("ngff-zarr", "ome-zarr-py", "bioio")


# -- synthetic input -----------------------------------------------------------------------------


def _tiles(channels: int, size: int) -> Iterator[np.ndarray]:
    """Tiles in TIFF order (channel, tile row, tile column), continuous across tile borders."""
    rng = np.random.default_rng(42)
    noise = [rng.integers(0, 64, (TILE, TILE), dtype=np.uint16) for _ in range(13)]
    ramp = np.arange(TILE, dtype=np.float32)
    n = size // TILE
    for c in range(channels):
        fy, fx = 1 / (41.0 + 7 * c), 1 / (57.0 + 5 * c)
        for ty in range(n):
            ys = (ty * TILE + ramp) * fy
            sy = np.sin(ys)[:, None]
            cy = np.cos(ys * 0.13 + c)[:, None]
            for tx in range(n):
                xs = (tx * TILE + ramp) * fx
                blob = sy * np.cos(xs)[None, :]
                blob *= blob
                slow = 0.5 + 0.5 * cy * np.sin(xs * 0.11)[None, :]
                img = (300.0 + 2500.0 * blob * slow).astype(np.uint16)
                img += noise[(ty * 7 + tx * 3 + c) % 13]
                yield img


def make_input(path: Path, channels: int, size: int) -> Path:
    """A tiled zstd OME-TIFF of shape (channels, size, size); reused when complete."""
    import tifffile

    marker = path.with_name(path.name + ".complete")
    if path.exists() and marker.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    partial = path.with_name(path.name + ".partial")
    progress(f"generating {path.name} ({channels} x {size} x {size} uint16, {channels * size * size * 2 / 2**30:.2f} GiB raw)")
    t0 = time.perf_counter()
    with tifffile.TiffWriter(partial, bigtiff=True, ome=True) as tw:
        tw.write(
            _tiles(channels, size),
            shape=(channels, size, size),
            dtype=DTYPE,
            tile=(TILE, TILE),
            compression="zstd",
            compressionargs={"level": 1},
            photometric="minisblack",
            maxworkers=2,
            metadata={
                "axes": "CYX",
                "PhysicalSizeX": PIXEL_UM,
                "PhysicalSizeXUnit": "µm",
                "PhysicalSizeY": PIXEL_UM,
                "PhysicalSizeYUnit": "µm",
                "Channel": {"Name": [f"ch{c}" for c in range(channels)]},
            },
        )
    os.replace(partial, path)
    marker.touch()
    progress(f"  done in {time.perf_counter() - t0:.1f} s, {path.stat().st_size / 2**20:.0f} MiB on disk")
    return path


# -- the conversions (run in a child process) ----------------------------------------------------


def _source_dask(src: str) -> Any:
    """The OME-TIFF as a dask array (c, y, x) over tifffile's zarr store: one chunk per tile."""
    import dask.array as da
    import tifffile
    import zarr

    store = tifffile.imread(src, aszarr=True, series=0, level=0)
    z = zarr.open_array(store, mode="r")
    return da.from_zarr(z)


def _level_shapes(shape: tuple[int, ...], levels: int) -> list[tuple[int, ...]]:
    c, y, x = shape
    return [(c, -(-y // 2**k), -(-x // 2**k)) for k in range(levels)]


def _shard(n: int) -> int:
    return min(SHARD, -(-n // TILE) * TILE)


def run_tool(tool: str, src: str, dst: str, levels: int) -> dict[str, Any]:
    """Convert ``src`` to ``dst`` with ``tool``; returns {"seconds": ...} (imports excluded)."""
    import dask

    dask.config.set(scheduler="threads", num_workers=WORKERS)
    factors = [2**k for k in range(1, levels)]
    if tool.startswith("bioimnb"):
        # The modules bioimnb imports lazily, imported up front as the peers' are (``import
        # ngff_zarr`` pulls in zarr and dask): import time is excluded for every tool.
        import ome_types  # noqa: F401
        import ome_zarr_models.v05  # noqa: F401

        import bioimnb
        import bioimnb.core.convert.engine  # noqa: F401

        ngff = "0.4" if tool.endswith("-04") else "0.5"
        t0 = time.perf_counter()
        report = bioimnb.convert(
            src,
            dst,
            ngff=ngff,
            chunks=TILE,
            compression="zstd",
            compression_level=ZSTD_LEVEL,
            levels=levels,
            overwrite=True,
            verify="noverify" not in tool,
            workers=WORKERS,
        )
        return {"seconds": time.perf_counter() - t0, "checks": report.checks}
    if tool == "ngff-zarr":
        import ngff_zarr
        from zarr.codecs import ZstdCodec

        t0 = time.perf_counter()
        arr = _source_dask(src)
        image = ngff_zarr.to_ngff_image(arr, dims=["c", "y", "x"], scale={"y": PIXEL_UM, "x": PIXEL_UM})
        ms = ngff_zarr.to_multiscales(
            image,
            scale_factors=factors,
            method=ngff_zarr.Methods.DASK_BIN_SHRINK,
            chunks={"c": 1, "y": TILE, "x": TILE},
        )
        ngff_zarr.to_ngff_zarr(
            dst,
            ms,
            version="0.5",
            overwrite=True,
            chunks_per_shard={"c": 1, "y": SHARD // TILE, "x": SHARD // TILE},
            compressors=[ZstdCodec(level=ZSTD_LEVEL)],
        )
        return {"seconds": time.perf_counter() - t0}
    if tool == "ome-zarr-py":
        import zarr
        from ome_zarr.format import FormatV05
        from ome_zarr.scale import Methods
        from ome_zarr.writer import write_image
        from zarr.codecs import ZstdCodec

        t0 = time.perf_counter()
        arr = _source_dask(src)
        root = zarr.open_group(dst, mode="w", zarr_format=3)
        options = [
            {
                "chunks": (1, TILE, TILE),
                "shards": (1, _shard(s[1]), _shard(s[2])),
                "compressor": ZstdCodec(level=ZSTD_LEVEL),
            }
            for s in _level_shapes(arr.shape, levels)
        ]
        write_image(
            arr,
            root,
            scale_factors=factors,
            method=Methods.LOCAL_MEAN,
            fmt=FormatV05(),
            axes="cyx",
            scale={"y": PIXEL_UM, "x": PIXEL_UM},
            storage_options=options,
        )
        return {"seconds": time.perf_counter() - t0}
    if tool == "bioio":
        from bioio_ome_zarr.writers import OMEZarrWriter
        from zarr.codecs import ZstdCodec

        t0 = time.perf_counter()
        arr = _source_dask(src)
        shapes = _level_shapes(arr.shape, levels)
        writer = OMEZarrWriter(
            dst,
            level_shapes=shapes,
            dtype=DTYPE,
            chunk_shape=[(1, TILE, TILE)] * levels,
            shard_shape=[(1, _shard(s[1]), _shard(s[2])) for s in shapes],
            compressor=ZstdCodec(level=ZSTD_LEVEL),
            zarr_format=3,
            axes_names=["c", "y", "x"],
            axes_types=["channel", "space", "space"],
            axes_units=[None, "micrometer", "micrometer"],
            physical_pixel_size=[1.0, PIXEL_UM, PIXEL_UM],
        )
        writer.write_full_volume(arr)
        return {"seconds": time.perf_counter() - t0}
    raise SystemExit(f"unknown tool {tool!r}")


def worker_main(argv: list[str]) -> None:
    tool, src, dst, levels = argv[0], argv[1], argv[2], int(argv[3])
    import warnings

    warnings.simplefilter("ignore")
    # imports up front so they are not timed
    import dask.array  # noqa: F401
    import tifffile  # noqa: F401
    import zarr  # noqa: F401

    result = run_tool(tool, src, dst, levels)
    result["vmhwm_kb"] = _vmhwm_kb()
    print("RESULT " + json.dumps(result), flush=True)


def _vmhwm_kb() -> int:
    """Peak RSS of this process (``VmHWM``: starts from zero at exec, unlike ``ru_maxrss``)."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def spawn(tool: str, src: Path, dst: Path, levels: int, profile: str | None = None) -> dict[str, Any]:
    """Run one conversion in a fresh process; seconds (in-process), wall (outside), peak RSS."""
    if dst.exists():
        shutil.rmtree(dst)
    os.sync()
    evict([src])
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", tool, str(src), str(dst), str(levels)]
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as fout, tempfile.TemporaryFile("w+") as ferr:
        proc = subprocess.Popen(cmd, stdout=fout, stderr=ferr, text=True)
        _, status, usage = os.wait4(proc.pid, 0)  # exit status (+ ru_maxrss, kept for reference)
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        outside = time.perf_counter() - t0
        fout.seek(0)
        ferr.seek(0)
        out, err = fout.read(), ferr.read()
    if code != 0:
        raise RuntimeError(f"{tool} failed (exit {code}):\n{err[-3000:]}")
    line = [ln for ln in out.splitlines() if ln.startswith("RESULT ")][-1]
    result = json.loads(line[len("RESULT ") :])
    result["process"] = outside
    # Peak RSS: the child's own VmHWM.  Not ru_maxrss: Linux carries the forking parent's
    # high-water mark over exec into the child's ru_maxrss, so every child would look at least
    # as big as this harness (which held ~1 GB after the ceilings).
    result["rss_mb"] = result.pop("vmhwm_kb") * 1024 / 1e6
    result["ru_maxrss_mb"] = usage.ru_maxrss * 1024 / 1e6
    # CPU seconds of the whole child (imports included): much less sensitive than wall time to
    # other work on a shared machine.
    result["cpu_s"] = usage.ru_utime + usage.ru_stime
    result["out_mb"] = sum(f.stat().st_size for f in dst.rglob("*") if f.is_file()) / 1e6
    os.sync()
    return result


# -- ceilings ------------------------------------------------------------------------------------


def read_ceiling(src: Path) -> tuple[float, float]:
    """Read + decode all level-0 tiles through tifffile's zarr view, 2 threads; (GB/s, seconds)."""
    import concurrent.futures as cf

    import tifffile
    import zarr

    evict([src])
    store = tifffile.imread(src, aszarr=True, series=0, level=0)
    z = zarr.open_array(store, mode="r")
    c, y, x = z.shape
    bands = [(ci, y0) for ci in range(c) for y0 in range(0, y, TILE)]

    def one(band: tuple[int, int]) -> int:
        ci, y0 = band
        return int(np.asarray(z[ci, y0 : y0 + TILE, :]).nbytes)

    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(WORKERS) as pool:
        total = sum(pool.map(one, bands))
    dt = time.perf_counter() - t0
    store.close()
    return total / dt / 1e9, dt


def compress_ceiling(src: Path, max_bytes: int) -> tuple[float, float, float]:
    """zstd-3 compress real 512 x 512 chunks of the source in memory, 2 threads.

    Returns (GB/s raw in, ratio raw/compressed, seconds)."""
    import concurrent.futures as cf

    import tifffile
    import zarr
    from imagecodecs import zstd_encode

    store = tifffile.imread(src, aszarr=True, series=0, level=0)
    z = zarr.open_array(store, mode="r")
    c, y, x = z.shape
    chunks: list[np.ndarray] = []
    total = 0
    for ci in range(c):
        for y0 in range(0, y, TILE * 7):  # spread over the image
            band = np.asarray(z[ci, y0 : y0 + TILE, :])
            for x0 in range(0, x, TILE):
                chunks.append(np.ascontiguousarray(band[:, x0 : x0 + TILE]))
                total += chunks[-1].nbytes
            if total >= max_bytes // c * (ci + 1):
                break
    store.close()
    half = len(chunks) // 2
    parts = [chunks[:half], chunks[half:]]

    def one(part: list[np.ndarray]) -> int:
        return sum(len(zstd_encode(a, level=ZSTD_LEVEL)) for a in part)

    best = None
    for _ in range(2):  # best of two passes (noise on a shared machine only slows)
        t0 = time.perf_counter()
        with cf.ThreadPoolExecutor(WORKERS) as pool:
            packed = sum(pool.map(one, parts))
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    assert best is not None
    return total / best / 1e9, total / packed, best


# -- main ----------------------------------------------------------------------------------------


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2:])
        return
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None, help="runs per tool (default 3, --quick 1)")
    parser.add_argument("--tools", default=",".join(TOOLS), help="comma-separated subset of " + ", ".join(TOOLS) + " (also bioimnb-04)")
    parser.add_argument(
        "--once",
        default=None,
        help="tools run in the first round only (default in full mode: bioio, ~3x slower than the others)",
    )
    parser.add_argument("--no-big", action="store_true", help="skip the 4 GiB bioimnb-only case")
    parser.add_argument("--big-runs", type=int, default=None, help="runs on the 4 GiB input (default --runs)")
    args = parser.parse_args()
    work: Path = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    runs = args.runs or (1 if args.quick else 3)
    tools = [t for t in args.tools.split(",") if t]
    if args.quick:
        channels, size, levels, big = 2, 2048, 3, None
    else:
        channels, size, levels, big = 2, 24576, 5, (None if args.no_big else 32768)
    big_runs = args.big_runs or runs
    once = set((args.once if args.once is not None else ("" if args.quick else "bioio")).split(","))

    print("# Convert: OME-TIFF -> OME-Zarr (bioimnb vs ngff-zarr vs ome-zarr-py vs bioio)\n")
    info = print_machine(work)
    import importlib.metadata as md

    peers = {d: md.version(d) for d in ("ngff-zarr", "ome-zarr", "bioio-ome-zarr", "dask")}
    print("peers: " + ", ".join(f"{k} {v}" for k, v in peers.items()) + "\n")
    del info

    src = make_input(work / f"convert_{channels}x{size}.ome.tif", channels, size)
    raw = channels * size * size * DTYPE.itemsize
    print(f"## Input\n{src.name}: {channels} x {size} x {size} uint16 = {raw / 2**30:.2f} GiB raw, "
          f"{src.stat().st_size / 2**30:.2f} GiB on disk (tiles 512 x 512, zstd-1)")
    print(f"settings: NGFF 0.5, zstd-{ZSTD_LEVEL}, chunks 1 x 512 x 512, shards 4096 x 4096 (capped to the level),"
          f" {levels} levels, {WORKERS} workers; N = {runs} run(s) per tool, interleaved\n")

    # ceilings first (cold source)
    progress("ceilings: raw read")
    read_gbs, read_s = read_ceiling(src)
    progress("ceilings: compress-only")
    comp_gbs, comp_ratio, comp_s = compress_ceiling(src, min(raw, 256 * 2**20))
    pyramid = sum(0.25**k for k in range(levels))  # bytes compressed per level-0 byte
    serial = 1 / (1 / read_gbs + 1 / comp_gbs)
    serial_pyr = 1 / (1 / read_gbs + pyramid / comp_gbs)

    samples: dict[str, list[dict[str, Any]]] = {t: [] for t in tools}
    dst = work / "convert_out.ome.zarr"
    for r in range(runs):
        order = tools if r % 2 == 0 else list(reversed(tools))
        for tool in order:
            if r > 0 and tool in once:
                continue
            progress(f"run {r + 1}/{runs}: {tool}")
            try:
                res = spawn(tool, src, dst, levels)
            except RuntimeError as exc:
                progress(f"  FAILED: {str(exc)[:2000]}")
                samples[tool].append({"error": str(exc).splitlines()[0]})
                continue
            progress(f"  {res['seconds']:.1f} s, peak RSS {res['rss_mb']:.0f} MB, out {res['out_mb']:.0f} MB")
            samples[tool].append(res)
    if dst.exists():
        shutil.rmtree(dst)

    def summary(tool: str) -> dict[str, float] | None:
        ok = [s for s in samples[tool] if "error" not in s]
        if not ok:
            return None
        return {
            "seconds": median([s["seconds"] for s in ok]),
            "min": min(s["seconds"] for s in ok),
            "max": max(s["seconds"] for s in ok),
            "rss": median([s["rss_mb"] for s in ok]),
            "rss_max": max(s["rss_mb"] for s in ok),
            "out": median([s["out_mb"] for s in ok]),
            "cpu": median([s["cpu_s"] for s in ok]),
            "n": len(ok),
        }

    sums = {t: summary(t) for t in tools}
    ref = sums.get("bioimnb") or next((s for s in sums.values() if s), None)
    rows = []
    for tool in tools:
        s = sums[tool]
        if s is None:
            rows.append([tool, "failed", "-", "-", "-", "-", "-", "-", samples[tool][0].get("error", "")[:60]])
            continue
        rows.append([
            tool,
            f"{s['seconds']:.1f}",
            f"{s['min']:.1f}-{s['max']:.1f}",
            f"{raw / s['seconds'] / 1e6:.0f}",
            f"{s['rss']:.0f} (max {s['rss_max']:.0f})",
            f"{s['out']:.0f}",
            f"{s['cpu']:.0f}",
            f"{s['seconds'] / ref['seconds']:.2f}x" if ref else "-",
            s["n"],
        ])
    table(
        ["tool", "wall s (median)", "range s", "MB/s (level-0 raw)", "peak RSS MB", "out MB", "CPU s", "time vs bioimnb", "n"],
        rows,
        title=f"Conversion of {raw / 2**30:.2f} GiB",
    )

    table(
        ["ceiling", "GB/s", "how"],
        [
            ["raw read (a)", f"{read_gbs:.2f}", f"all level-0 tiles via tifffile zarr view, decode included, {WORKERS} threads, cold ({read_s:.1f} s)"],
            ["compress-only (b)", f"{comp_gbs:.2f}", f"zstd-{ZSTD_LEVEL} of real 512 x 512 chunks in memory, {WORKERS} threads (ratio {comp_ratio:.2f}x)"],
            ["pipeline 1/(1/a + 1/b)", f"{serial:.2f}", "read and compress level 0 on the same cores, nothing else"],
            [f"pipeline with pyramid 1/(1/a + {pyramid:.3f}/b)", f"{serial_pyr:.2f}", "also compress levels 1.. (informational)"],
        ],
        title="Ceilings on this machine",
    )

    big_res: list[dict[str, Any]] = []
    if big:
        big_src = make_input(work / f"convert_{channels}x{big}.ome.tif", channels, big)
        big_raw = channels * big * big * DTYPE.itemsize
        for r in range(big_runs):
            progress(f"4 GiB run {r + 1}/{big_runs}: bioimnb")
            res = spawn("bioimnb", big_src, dst, levels)
            progress(f"  {res['seconds']:.1f} s, peak RSS {res['rss_mb']:.0f} MB")
            big_res.append(res)
        if dst.exists():
            shutil.rmtree(dst)
        bs = median([r["seconds"] for r in big_res])
        table(
            ["tool", "input", "wall s (median)", "MB/s", "peak RSS MB (median / max)", "n"],
            [["bioimnb (verify on)", f"{big_raw / 2**30:.2f} GiB", f"{bs:.1f}", f"{big_raw / bs / 1e6:.0f}",
              f"{median([r['rss_mb'] for r in big_res]):.0f} / {max(r['rss_mb'] for r in big_res):.0f}", len(big_res)]],
            title="Large input, bioimnb alone",
        )

    print("### Ratios of medians")
    b = sums.get("bioimnb")
    peer_sums = {t: sums[t] for t in PEERS if sums.get(t)}
    verdicts = []
    if b and peer_sums:
        fastest = min(peer_sums, key=lambda t: peer_sums[t]["seconds"])
        for t, s in peer_sums.items():
            print(f"{t} / bioimnb (wall): {s['seconds'] / b['seconds']:.2f}x; CPU s: {s['cpu'] / b['cpu']:.2f}x")
        sp = peer_sums[fastest]["seconds"] / b["seconds"]
        verdicts.append(["bioimnb >= 1.5x faster than the fastest peer", f"{sp:.2f}x vs {fastest}", "pass" if sp >= 1.5 else "miss"])
        if sums.get("bioimnb-noverify"):
            spn = peer_sums[fastest]["seconds"] / sums["bioimnb-noverify"]["seconds"]
            verdicts.append(["  same, verify off", f"{spn:.2f}x vs {fastest}", "pass" if spn >= 1.5 else "miss"])
    for name in ("bioimnb", "bioimnb-noverify"):
        s = sums.get(name)
        if s:
            frac = raw / s["seconds"] / 1e9 / serial
            print(f"{name} / ceiling 1/(1/a+1/b): {frac:.0%}")
            verdicts.append([f"{name} >= 60 % of the ceiling", f"{frac:.0%} ({raw / s['seconds'] / 1e6:.0f} of {serial * 1e3:.0f} MB/s)", "pass" if frac >= 0.6 else "miss"])
            verdicts.append([f"{name} peak RSS < 1.5 GB", f"{s['rss_max']:.0f} MB (max of runs)", "pass" if s["rss_max"] < 1500 else "miss"])
    if big_res:
        m = max(r["rss_mb"] for r in big_res)
        verdicts.append(["4 GiB input peak RSS < 1.5 GB (bioimnb)", f"{m:.0f} MB", "pass" if m < 1500 else "miss"])
    print()
    table(["target", "measured", "result"], verdicts, title="Targets (reported, never asserted)")


if __name__ == "__main__":
    main()
