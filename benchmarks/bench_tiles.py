"""Benchmark: viewer tiles (kernel-side TileRenderer and the REST tile endpoint).

Claims checked (from the project's Preview issue):

* On a 100k x 100k 2-channel uint16 pyramid on local disk, a kernel-side 256 x 256 tile
  (``TileRenderer.render``, PNG) takes p50 < 15 ms and p99 < 60 ms, and the same within 20 %
  on a 10k x 10k image (cost follows the viewport, not the image).
* 20 concurrent clients on the REST tile endpoint for 30 s: no errors, flat memory.
* First viewport (all tiles of a 1200 x 800 screen at fit-to-view zoom) via bioimnb, compared
  as a ratio with the naive route: bioio ``get_image_dask_data`` of the level-0 plane, then a
  numpy downsample to the screen.

Run:  .venv/bin/python benchmarks/bench_tiles.py           (100k + 10k; generates ~9 GB once)
      .venv/bin/python benchmarks/bench_tiles.py --quick   (2k + 1k images, 5 s REST, seconds)

Data (generated once under --workdir, reused when present with the right shape): OME-TIFF,
axes CYX, C = 2, uint16, 512 x 512 tiles, zstd, written tile by tile from iterators (never in
memory), levels as SubIFDs halving until <= 512 px.  Pixels: a smooth two-frequency pattern of
level-0 coordinates (so reduced levels look like downsamples), quantised to steps of 32, plus 1
bit of noise per pixel (deterministic).  That compresses ~6x (about 2.7 bits per pixel over all
levels), so the 37 GiB of raw level 0 (50 GiB with the pyramid) fit in an 8.4 GiB file; no tile
is all zero (values ~100-3100).

Kernel-side tiles: for each image and each level class (level 0, and a middle level: level 2,
4x downsample, the deepest level with enough full 256-tiles on the 10k image: 81), ``--tiles``
random full-size tiles are rendered in batches of ``--batch`` distinct positions.  Per batch a
*fresh* ``open_image`` + ``TileRenderer`` (empty raw-tile cache) renders each position right
after the file is evicted from the page cache (posix_fadvise DONTNEED, outside the timing):
"cold"; then another fresh renderer over the same opened image (TIFF directories already parsed,
as in a viewer session) renders the same positions with the file data in the page cache: "warm".  Each
sample is one ``render(..., fmt="png")`` call (read + decode both channels, composite,
PNG-encode).  Batches alternate between the images (100k, 10k, 100k, ...), so load from other
processes on the shared machine hits both.

REST: a real ``jupyter server`` subprocess (root = the work dir, token auth) serves
``bioimnb/api/tile``; ``--clients`` aiohttp clients each loop over random tiles of random levels
of the 100k image for ``--seconds``; latency per request, errors (non-200 or exceptions),
requests/s, and the server's RSS (psutil, process + children) sampled every second.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import math
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    base_parser,
    evict,
    median,
    ms,
    print_machine,
    progress,
    ratio,
    table,
    timed,
)

FILE_TILE = 512
VIEW_TILE = 256
DTYPE = np.dtype("uint16")
CHANNELS = 2
PIXEL_UM = 0.5
SCREEN = (1200, 800)  # viewport width, height in screen pixels
WINDOW = (0, 4000)


def level_sizes(size: int) -> list[int]:
    """Edge length of each level: halve (rounding up) until <= FILE_TILE."""
    sizes = [size]
    while sizes[-1] > FILE_TILE:
        sizes.append(-(-sizes[-1] // 2))
    return sizes


def pct(xs: list[float], q: float) -> float:
    """Percentile ``q`` (0-100) by nearest rank."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    rank = max(1, math.ceil(q / 100 * len(s)))
    return s[rank - 1]


# -- synthetic data ----------------------------------------------------------------------------


class TileMaker:
    """Deterministic, compressible, never-empty 512 x 512 uint16 tiles of a 2-channel image."""

    def __init__(self) -> None:
        rng = np.random.default_rng(4321)
        self.noise = [
            rng.integers(0, 2, (FILE_TILE, FILE_TILE), dtype=np.uint16) for _ in range(16)
        ]
        self.ramp = np.arange(FILE_TILE, dtype=np.float64)

    def tile(self, c: int, level: int, ty: int, tx: int) -> np.ndarray:
        s = float(2**level)
        y = (ty * FILE_TILE + self.ramp) * s  # level-0 coordinates
        x = (tx * FILE_TILE + self.ramp) * s
        p = 700.0 * (1 + 0.6 * c)
        fine = np.outer(np.sin(y / p).astype(np.float32), np.cos(x / p).astype(np.float32))
        coarse = np.outer(
            np.sin(y / (p * 9.7) + c).astype(np.float32),
            np.sin(x / (p * 13.1)).astype(np.float32),
        )
        out = (fine * 900.0 + coarse * 600.0 + 1600.0).astype(np.uint16)
        out &= np.uint16(0xFFE0)  # steps of 32
        out += self.noise[(ty * 131 + tx * 7 + level * 3 + c) % 16]
        return out


def tiff_ok(path: Path, size: int) -> bool:
    if not path.exists():
        return False
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            return tuple(series.shape) == (CHANNELS, size, size) and len(series.levels) == len(
                level_sizes(size)
            )
    except Exception:  # noqa: BLE001 - anything wrong means regenerate
        return False


def make_tiff(path: Path, size: int) -> float:
    """Write the pyramid (if missing); returns the seconds it took (0 when reused)."""
    import tifffile

    if tiff_ok(path, size):
        return 0.0
    maker = TileMaker()
    sizes = level_sizes(size)
    progress(f"writing {path.name}: {CHANNELS} x {size} x {size}, {len(sizes)} levels")
    tmp = path.with_name(path.name + ".partial")
    t0 = time.perf_counter()

    def tiles(level: int, n: int) -> Iterator[np.ndarray]:
        nt = -(-n // FILE_TILE)
        for c in range(CHANNELS):
            if level == 0:
                progress(f"  level 0 channel {c}")
            for ty in range(nt):
                for tx in range(nt):
                    yield maker.tile(c, level, ty, tx)

    with tifffile.TiffWriter(tmp, bigtiff=True, ome=True) as tif:
        common = {
            "dtype": DTYPE,
            "tile": (FILE_TILE, FILE_TILE),
            "compression": "zstd",
            "photometric": "minisblack",
            "maxworkers": 2,
        }
        tif.write(
            tiles(0, sizes[0]),
            shape=(CHANNELS, sizes[0], sizes[0]),
            subifds=len(sizes) - 1,
            metadata={
                "axes": "CYX",
                "Channel": {"Name": ["ch0", "ch1"]},
                "PhysicalSizeX": PIXEL_UM,
                "PhysicalSizeY": PIXEL_UM,
                "PhysicalSizeXUnit": "µm",
                "PhysicalSizeYUnit": "µm",
            },
            **common,
        )
        for level, n in enumerate(sizes[1:], start=1):
            tif.write(
                tiles(level, n),
                shape=(CHANNELS, n, n),
                subfiletype=1,
                metadata=None,
                **common,
            )
    os.replace(tmp, path)
    return time.perf_counter() - t0


def file_size(path: Path) -> str:
    return f"{path.stat().st_size / 2**20:,.0f} MiB"


# -- kernel-side tiles -------------------------------------------------------------------------


def channel_views() -> list[Any]:
    from bioimnb.core.tiles import ChannelView

    return [
        ChannelView(0, True, "FF0000", *WINDOW),
        ChannelView(1, True, "00FF00", *WINDOW),
    ]


def new_renderer(path: Path) -> Any:
    import bioimnb
    from bioimnb.core.tiles import TileRenderer

    return TileRenderer(bioimnb.open_image(path))


def full_tiles(renderer: Any, level: int) -> list[tuple[int, int]]:
    """Positions of the full-size (not edge) 256 x 256 tiles of ``level``."""
    h, w = renderer.info()["levels"][level]["shape"]
    return [(tx, ty) for ty in range(h // VIEW_TILE) for tx in range(w // VIEW_TILE)]


def tile_samples(
    paths: dict[str, Path], levels: dict[str, int], n: int, batch: int, seed: int
) -> dict[str, dict[str, list[float]]]:
    """``{image: {"cold": [s], "warm": [s]}}`` of ``render`` at ``levels[image]``.

    Per batch and image: a freshly opened image and renderer, ``batch`` distinct random full-size
    tiles, each rendered after evicting the file from the page cache ("cold": includes parsing
    the TIFF directories the first tiles need); then a fresh renderer over the same opened image
    renders the same positions with the file data in the page cache ("warm": the steady state
    of a viewer session - read from memory, decode, composite, encode; the raw-tile cache is
    empty, so every sample reads).  Batches alternate between the images.
    """
    from bioimnb.core.tiles import TileRenderer

    rng = random.Random(seed)
    views = channel_views()
    grids = {name: full_tiles(new_renderer(p), levels[name]) for name, p in paths.items()}
    out: dict[str, dict[str, list[float]]] = {name: {"cold": [], "warm": []} for name in paths}
    while any(len(v["cold"]) < n for v in out.values()):
        for name, path in paths.items():
            done = len(out[name]["cold"])
            if done >= n:
                continue
            grid = grids[name]
            k = min(batch, n - done, len(grid))
            positions = rng.sample(grid, k)
            level = levels[name]
            gc.collect()
            r = new_renderer(path)
            for tx, ty in positions:
                evict([path])
                call = functools.partial(r.render, 0, level, 0, 0, tx, ty, views, fmt="png")
                secs, data = timed(call)
                out[name]["cold"].append(secs)
            # Warm: the same opened image (its TIFF directories already parsed, as in a viewer
            # session) behind a fresh renderer, so every sample still reads and decodes.
            r = TileRenderer(r.image)
            for tx, ty in positions:
                call = functools.partial(r.render, 0, level, 0, 0, tx, ty, views, fmt="png")
                secs, data = timed(call)
                out[name]["warm"].append(secs)
            assert data[:4] == b"\x89PNG"
    return out


def phase_breakdown(path: Path, level: int, n: int, seed: int) -> dict[str, float]:
    """Median seconds of read (both channels, page cache warm), composite and PNG encode."""
    from bioimnb.core.tiles import encode_rgba

    rng = random.Random(seed)
    r = new_renderer(path)
    img = r.scene_image(0)
    positions = rng.sample(full_tiles(r, level), min(n, len(full_tiles(r, level))))
    for tx, ty in positions:  # page cache warm-up
        y0, y1, x0, x1 = r.tile_bounds(0, level, tx, ty)
        img.read(level, t=0, c=slice(0, 2), z=0, y=slice(y0, y1), x=slice(x0, x1))
    reads, comps, encs = [], [], []
    views = channel_views()
    for tx, ty in positions:
        y0, y1, x0, x1 = r.tile_bounds(0, level, tx, ty)
        read = functools.partial(
            img.read, level, t=0, c=slice(0, 2), z=0, y=slice(y0, y1), x=slice(x0, x1)
        )
        reads.append(timed(read)[0])
        r.render_rgba(0, level, 0, 0, tx, ty, views)  # fills the raw cache
        secs, rgba = timed(functools.partial(r.render_rgba, 0, level, 0, 0, tx, ty, views))
        comps.append(secs)
        encs.append(timed(functools.partial(encode_rgba, rgba, "png"))[0])
    return {"read": median(reads), "composite": median(comps), "png": median(encs)}


# -- first viewport ----------------------------------------------------------------------------


def fit_zoom(width: int, height: int) -> float:
    return min(SCREEN[0] / width, SCREEN[1] / height)


def bioimnb_first_viewport(path: Path) -> dict[str, Any]:
    """Open, ``info()`` (default view, auto contrast) and render every tile of the fit-to-view
    viewport, sequentially (one kernel thread)."""
    import bioimnb
    from bioimnb.core.tiles import TileRenderer

    t0 = time.perf_counter()
    r = TileRenderer(bioimnb.open_image(path))
    info = r.info()
    h, w = info["levels"][0]["shape"]
    zoom = fit_zoom(w, h)
    level = r.level_for_zoom(0, zoom)
    # The screen centred on the image, in level-0 pixels.
    vw, vh = SCREEN[0] / zoom, SCREEN[1] / zoom
    x0, y0 = (w - vw) / 2, (h - vh) / 2
    tiles = r.tiles_for_viewport(0, level, x0, y0, x0 + vw, y0 + vh)
    views = channel_views()
    nbytes = 0
    for tx, ty in tiles:
        nbytes += len(r.render(0, level, 0, 0, tx, ty, views, fmt="png"))
    return {
        "seconds": time.perf_counter() - t0,
        "level": level,
        "tiles": len(tiles),
        "level_shape": info["levels"][level]["shape"],
        "png_bytes": nbytes,
    }


def naive_first_viewport(path: Path) -> dict[str, Any]:
    """bioio: open, ``get_image_dask_data("CYX")`` of the level-0 plane, strided downsample to
    the screen (dask slicing, then compute), and the same red/green composite as the tiles."""
    import bioio
    import bioio_ome_tiff

    t0 = time.perf_counter()
    img = bioio.BioImage(str(path), reader=bioio_ome_tiff.Reader)
    data = img.get_image_dask_data("CYX", T=0, Z=0)
    h, w = int(data.shape[-2]), int(data.shape[-1])
    step = max(1, math.ceil(1 / fit_zoom(w, h)))
    small = np.asarray(data[:, ::step, ::step].compute())
    lo, hi = WINDOW
    scaled = np.clip((small.astype(np.float32) - lo) / (hi - lo), 0, 1)
    rgb = np.zeros((*small.shape[1:], 3), dtype=np.uint8)
    rgb[..., 0] = scaled[0] * 255 + 0.5
    rgb[..., 1] = scaled[1] * 255 + 0.5
    return {
        "seconds": time.perf_counter() - t0,
        "chunks": str(data.chunksize),
        "shape": rgb.shape,
    }


def run_isolated(func: str, path: Path) -> dict[str, Any]:
    """Run ``func(path)`` of this module in a fresh Python process (so imports and memory are
    its own) and return its result plus the child's peak RSS (ru_maxrss)."""
    import json

    code = (
        "import json, resource, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})\n"
        "from pathlib import Path\n"
        "import bioimnb, bioio, bioio_ome_tiff, tifffile, dask.array  # imports: not timed\n"
        "import bench_tiles\n"
        f"r = bench_tiles.{func}(Path({str(path)!r}))\n"
        "r['peak_rss'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024\n"
        "print(json.dumps(r, default=str))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{func} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def first_viewports(
    paths: dict[str, Path], naive_ok: dict[str, bool], runs: int, isolate: bool = True
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for name, path in paths.items():
        out[name] = {"bioimnb": [], "naive": []}
        for i in range(runs):
            order = ["bioimnb_first_viewport", "naive_first_viewport"]
            if i % 2:
                order.reverse()
            for func in order:
                key = "bioimnb" if func.startswith("bioimnb") else "naive"
                if key == "naive" and not naive_ok[name]:
                    continue
                evict([path])
                progress(f"  first viewport {name} {key} run {i + 1}")
                if isolate:
                    out[name][key].append(run_isolated(func, path))
                else:  # --quick: in this process (imports already done; no peak RSS)
                    result = globals()[func](path)
                    result["peak_rss"] = float("nan")
                    out[name][key].append(result)
    return out


# -- REST --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class JupyterServer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            prefix="bench_tiles_server_", suffix=".log"
        )
        jupyter = Path(sys.executable).with_name("jupyter")
        self.process = subprocess.Popen(
            [
                str(jupyter),
                "server",
                f"--ServerApp.root_dir={root}",
                f"--IdentityProvider.token={self.token}",
                f"--ServerApp.port={self.port}",
                "--ServerApp.port_retries=0",
                "--ServerApp.ip=127.0.0.1",
                "--no-browser",
                "--allow-root",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def wait_ready(self, timeout: float = 60.0) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter server exited:\n{self.log_tail()}")
            try:
                req = urllib.request.Request(self.url + "bioimnb/version", headers=self.headers())
                with urllib.request.urlopen(req, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.25)
        raise RuntimeError(f"jupyter server not ready after {timeout} s:\n{self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return Path(self.log.name).read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def rss_of(pid: int) -> int:
    import psutil

    proc = psutil.Process(pid)
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += child.memory_info().rss
    return total


async def rest_load(
    server: JupyterServer, rel: str, clients: int, seconds: float, seed: int
) -> dict[str, Any]:
    import aiohttp

    async with (
        aiohttp.ClientSession(headers=server.headers()) as s,
        s.get(server.url + "bioimnb/api/image", params={"path": rel}) as resp,
    ):
        resp.raise_for_status()
        info = await resp.json()
    grids = [
        (max(1, -(-lv["shape"][1] // VIEW_TILE)), max(1, -(-lv["shape"][0] // VIEW_TILE)))
        for lv in info["levels"]
    ]
    ch = f"0:FF0000:{WINDOW[0]}:{WINDOW[1]},1:00FF00:{WINDOW[0]}:{WINDOW[1]}"
    latencies: list[float] = []
    errors: list[str] = []
    per_level = [0] * len(grids)
    stop_at = time.monotonic() + seconds
    rss: list[tuple[float, int]] = []

    async def sampler() -> None:
        t0 = time.monotonic()
        while time.monotonic() < stop_at:
            rss.append((time.monotonic() - t0, rss_of(server.process.pid)))
            await asyncio.sleep(1.0)
        rss.append((time.monotonic() - t0, rss_of(server.process.pid)))

    async def client(i: int) -> None:
        rng = random.Random(seed * 1000 + i)
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(headers=server.headers(), timeout=timeout) as s:
            while time.monotonic() < stop_at:
                level = rng.randrange(len(grids))
                cols, rows = grids[level]
                params = {
                    "path": rel,
                    "level": str(level),
                    "tx": str(rng.randrange(cols)),
                    "ty": str(rng.randrange(rows)),
                    "ch": ch,
                }
                t0 = time.perf_counter()
                try:
                    async with s.get(server.url + "bioimnb/api/tile", params=params) as resp:
                        body = await resp.read()
                        if resp.status != 200 or body[:4] != b"\x89PNG":
                            errors.append(f"{resp.status} {body[:200]!r}")
                            continue
                except Exception as exc:  # noqa: BLE001 - counted
                    errors.append(repr(exc))
                    continue
                latencies.append(time.perf_counter() - t0)
                per_level[level] += 1

    rss_before = rss_of(server.process.pid)
    t_start = time.perf_counter()
    await asyncio.gather(sampler(), *(client(i) for i in range(clients)))
    elapsed = time.perf_counter() - t_start
    await asyncio.sleep(2.0)
    rss_after = rss_of(server.process.pid)
    return {
        "latencies": latencies,
        "errors": errors,
        "elapsed": elapsed,
        "per_level": per_level,
        "rss": rss,
        "rss_before": rss_before,
        "rss_after_idle": rss_after,
    }


def rest_benchmark(
    root: Path, rel: str, clients: int, seconds: float, seed: int, warmup_seconds: float = 5.0
) -> tuple[dict[str, Any], dict[str, Any]]:
    server = JupyterServer(root)
    try:
        server.wait_ready()
        # Warm-up: opening the image and the first requests are not part of the steady state.
        # One client alone first: the latency without queueing, for reference.
        warm = asyncio.run(rest_load(server, rel, 1, warmup_seconds, seed + 7))
        if warm["errors"]:
            raise RuntimeError(f"REST warm-up errors: {warm['errors'][:3]}")
        main = asyncio.run(rest_load(server, rel, clients, seconds, seed))
        return warm, main
    finally:
        server.stop()


# -- main --------------------------------------------------------------------------------------


def mib(nbytes: float) -> str:
    return "-" if nbytes != nbytes else f"{nbytes / 2**20:.0f}"


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--big", type=int, default=100_000, help="edge of the big image")
    parser.add_argument("--small", type=int, default=10_000, help="edge of the small image")
    parser.add_argument("--tiles", type=int, default=1600, help="tiles per image and level class (1600: p99 = the 16th-largest sample, not the 4th)")
    parser.add_argument("--batch", type=int, default=50, help="tiles per fresh renderer")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--viewport-runs", type=int, default=3)
    parser.add_argument(
        "--naive-max-gib",
        type=float,
        default=10.0,
        help="skip the naive route on an image whose level-0 plane exceeds this many GiB",
    )
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    if args.quick:
        args.big, args.small = 2048, 1024
        args.tiles, args.batch = 40, 20
        args.clients, args.seconds = 4, 5.0
        args.viewport_runs = 1

    workdir: Path = args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    print("# bench_tiles: viewer tiles, kernel-side and REST")
    print()
    print_machine(workdir)
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()

    paths = {
        "big": workdir / f"tiles_{args.big}.ome.tif",
        "small": workdir / f"tiles_{args.small}.ome.tif",
    }
    rows = []
    for name, path in paths.items():
        size = args.big if name == "big" else args.small
        secs = make_tiff(path, size)
        rows.append(
            [
                path.name,
                f"{CHANNELS} x {size} x {size}",
                len(level_sizes(size)),
                file_size(path),
                f"{CHANNELS * size * size * 2 / 2**30:.1f} GiB",
                f"{secs:.1f} s" if secs else "reused",
            ]
        )
    table(
        ["file", "C x Y x X", "levels", "on disk", "raw level 0", "generated"],
        rows,
        title="Data",
    )
    label = {name: f"{args.big if name == 'big' else args.small}" for name in paths}

    # Warm-up: imports and first-call costs are not timed.
    warm = new_renderer(paths["small"])
    warm.render(0, 0, 0, 0, 0, 0, channel_views(), fmt="png")
    del warm

    # 1. kernel-side tiles
    n_levels = {name: len(level_sizes(args.big if name == "big" else args.small)) for name in paths}
    # The middle level class: downsample 4 (level 2), which exists on both images and has
    # enough full tiles on the small one; at 10k it is 2500 px (81 full 256-tiles).
    middle = min(2, min(n_levels.values()) - 1)
    results: dict[int, dict[str, dict[str, list[float]]]] = {}
    for level in (0, middle):
        progress(f"kernel tiles, level {level}")
        results[level] = tile_samples(
            paths, {n: level for n in paths}, args.tiles, args.batch, args.seed + level
        )
    rows = []
    for level in (0, middle):
        for mode in ("cold", "warm"):
            for name in paths:
                xs = results[level][name][mode]
                rows.append(
                    [
                        label[name],
                        level,
                        mode,
                        len(xs),
                        ms(pct(xs, 50)),
                        ms(pct(xs, 90)),
                        ms(pct(xs, 99)),
                        ms(max(xs)),
                    ]
                )
    table(
        ["image", "level", "page cache", "n", "p50", "p90", "p99", "max"],
        rows,
        title="Kernel-side 256 x 256 tile, TileRenderer.render(fmt='png'), milliseconds",
    )

    phases = {
        (name, level): phase_breakdown(paths[name], level, 30, args.seed)
        for name in paths
        for level in (0, middle)
    }
    table(
        ["image", "level", "read 2 ch (page cache)", "composite", "PNG encode"],
        [
            [label[n], lv, ms(p["read"]), ms(p["composite"]), ms(p["png"])]
            for (n, lv), p in phases.items()
        ],
        title="Where a warm tile's time goes (medians, milliseconds)",
    )

    # 2. first viewport
    naive_ok = {}
    for name in paths:
        size = args.big if name == "big" else args.small
        plane = CHANNELS * size * size * 2 / 2**30
        naive_ok[name] = plane <= args.naive_max_gib
        if not naive_ok[name]:
            print(
                f"naive route skipped on {label[name]}: bioio-ome-tiff's dask array has one "
                f"chunk per whole plane, so the level-0 planes would need {plane:.0f} GiB of RAM "
                f"(> {args.naive_max_gib:g} GiB)"
            )
    progress("first viewports")
    if args.quick:
        import bioio_ome_tiff  # noqa: F401 - imported before timing
    fv = first_viewports(paths, naive_ok, args.viewport_runs, isolate=not args.quick)
    rows = []
    for name in paths:
        b = fv[name]["bioimnb"]
        nv = fv[name]["naive"]
        bm = median([r["seconds"] for r in b])
        nm = median([r["seconds"] for r in nv]) if nv else float("nan")
        rows.append(
            [
                label[name],
                f"level {b[0]['level']} {b[0]['level_shape'][1]}x{b[0]['level_shape'][0]}, "
                f"{b[0]['tiles']} tiles",
                ms(bm),
                mib(max(r["peak_rss"] for r in b)),
                ms(nm) if nv else "skipped",
                mib(max(r["peak_rss"] for r in nv)) if nv else "-",
                ratio(nm, bm) if nv else "-",
            ]
        )
    table(
        [
            "image",
            "bioimnb viewport",
            "bioimnb ms",
            "bioimnb peak RSS MiB",
            "naive ms",
            "naive peak RSS MiB",
            "naive / bioimnb",
        ],
        rows,
        title=f"First viewport ({SCREEN[0]} x {SCREEN[1]}, fit to view, cold page cache, "
        f"{'same process' if args.quick else 'fresh process'}; median of {args.viewport_runs})",
    )

    # 3. REST
    progress(f"REST: {args.clients} clients x {args.seconds:g} s")
    evict([paths["big"]])
    warm_rest, rest = rest_benchmark(
        workdir,
        paths["big"].name,
        args.clients,
        args.seconds,
        args.seed,
        warmup_seconds=2.0 if args.quick else 5.0,
    )
    rows = []
    for run, n_clients in ((warm_rest, 1), (rest, args.clients)):
        lat = run["latencies"]
        rows.append(
            [
                n_clients if run is rest else f"{n_clients} (alone, first)",
                f"{run['elapsed']:.1f}",
                len(lat),
                len(run["errors"]),
                f"{len(lat) / run['elapsed']:.0f}",
                ms(pct(lat, 50)),
                ms(pct(lat, 90)),
                ms(pct(lat, 99)),
                ms(max(lat) if lat else float("nan")),
            ]
        )
    rss_series = [v for _, v in rest["rss"]]
    table(
        [
            "clients",
            "seconds",
            "requests",
            "errors",
            "req/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms",
        ],
        rows,
        title=f"REST api/tile on {paths['big'].name} (random level, random tile)",
    )
    if rest["errors"]:
        print("first errors: " + "; ".join(rest["errors"][:5]))
    print("requests per level: " + ", ".join(f"L{i} {n}" for i, n in enumerate(rest["per_level"])))
    table(
        ["before load", "at start", "max", "at end", "2 s after"],
        [
            [
                mib(rest["rss_before"]),
                mib(rss_series[0]),
                mib(max(rss_series)),
                mib(rss_series[-1]),
                mib(rest["rss_after_idle"]),
            ]
        ],
        title="Server RSS (MiB, jupyter server process)",
    )
    step = max(1, len(rest["rss"]) // 10)
    print(
        "RSS series (s: MiB): "
        + ", ".join(f"{t:.0f}: {mib(v)}" for t, v in rest["rss"][::step])
        + f", {rest['rss'][-1][0]:.0f}: {mib(rest['rss'][-1][1])}"
    )
    print()

    # Ratios
    rows = []
    for level in (0, middle):
        for mode in ("cold", "warm"):
            b = results[level]["big"][mode]
            s = results[level]["small"][mode]
            rows.append(
                [
                    level,
                    mode,
                    ms(pct(b, 50)),
                    ms(pct(s, 50)),
                    ratio(pct(b, 50), pct(s, 50)),
                    ratio(pct(b, 99), pct(s, 99)),
                ]
            )
    table(
        [
            "level",
            "page cache",
            f"p50 {label['big']}",
            f"p50 {label['small']}",
            "p50 ratio",
            "p99 ratio",
        ],
        rows,
        title=f"Ratios of medians ({label['big']} / {label['small']}, kernel-side tiles)",
    )
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    if "--generate-only" in sys.argv:
        i = sys.argv.index("--generate-only")
        wd = Path(sys.argv[i + 1])
        wd.mkdir(parents=True, exist_ok=True)
        for size in [int(s) for s in sys.argv[i + 2 :]]:
            p = wd / f"tiles_{size}.ome.tif"
            took = make_tiff(p, size)
            print(f"{p.name}: {p.stat().st_size / 2**20:.0f} MiB, {took:.0f} s", flush=True)
        sys.exit(0)
    main()
