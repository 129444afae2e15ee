"""Benchmark: open_image and 512 x 512 region reads on big pyramids (OME-TIFF and OME-Zarr).

Claim checked (from the project's issue): reading one 512 x 512 tile from level 0 and from the
coarsest level of a 50k x 50k pyramidal OME-TIFF / OME-Zarr costs O(tile), not O(image):
under 50 ms locally, and within 20 % of the same read on a 5k x 5k image.

Run:  .venv/bin/python benchmarks/bench_open_read.py            (50k + 5k; generates ~3 GB once)
      .venv/bin/python benchmarks/bench_open_read.py --quick    (5k only, seconds)

Data (generated once under --workdir, reused when present with the right shape): uint16,
single channel, 512 x 512 tiles/chunks, zstd; the TIFF is written tile by tile from iterators
(never held in memory), levels as SubIFDs halving until <= 512 px; the OME-Zarr (NGFF 0.5,
zarr v3) is written in chunk-aligned bands of 512 rows.  Pixel content is a smooth pattern plus
6 bits of noise per tile (deterministic); reduced levels carry the same kind of pattern (they are
not true downsamples, which does not matter for read cost).

Each level-0 case reads 30 distinct random tile-aligned positions ("fresh": no position is
read twice), after evicting the files from the page cache with posix_fadvise(DONTNEED)
("cold"), then reads the same 30 positions again ("warm").  This is done in two rounds with
new positions, the second round visiting the cases in reverse order, and the samples pooled
(60 per case).  The coarsest level is a single tile (391 x 391 at 50k, 313 x 313 at 5k), so it
is read whole.  Before any timing, every tool opens and reads small warm-up files once, so
imports are not counted.  bioio is run on the 5k images only: bioio-ome-tiff's dask array has
one chunk per whole plane (a 512 x 512 read of the 50k plane would decode ~5 GB).
"""

from __future__ import annotations

import gc
import json
import os
import random
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    base_parser,
    evict,
    median,
    ms,
    p90,
    print_machine,
    progress,
    ratio,
    table,
    timed,
)

TILE = 512
DTYPE = np.dtype("uint16")
PIXEL_UM = 0.5


# -- synthetic data ----------------------------------------------------------------------------


def level_shapes(size: int) -> list[int]:
    """Edge length of each level: halve (rounding up) until <= TILE."""
    sizes = [size]
    while sizes[-1] > TILE:
        sizes.append(-(-sizes[-1] // 2))
    return sizes


class TileMaker:
    """Cheap, deterministic, compressible 512 x 512 uint16 tiles."""

    def __init__(self) -> None:
        rng = np.random.default_rng(1234)
        self.noise = [rng.integers(0, 64, (TILE, TILE), dtype=np.uint16) for _ in range(16)]
        self.ramp = np.arange(TILE, dtype=np.float32)

    def tile(self, level: int, ty: int, tx: int) -> np.ndarray:
        period = 900.0 / (level + 1)
        ys = np.sin((ty * TILE + self.ramp) / period).astype(np.float32)
        xs = np.cos((tx * TILE + self.ramp) / period).astype(np.float32)
        smooth = np.outer(ys, xs)
        out = (smooth * 1500.0 + 2000.0).astype(np.uint16)
        out += self.noise[(ty * 131 + tx * 7 + level) % 16]
        return out


def _tiff_ok(path: Path, size: int) -> bool:
    if not path.exists():
        return False
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            return tuple(series.shape[-2:]) == (size, size) and len(series.levels) == len(
                level_shapes(size)
            )
    except Exception:  # noqa: BLE001 - anything wrong means regenerate
        return False


def make_tiff(path: Path, size: int, maker: TileMaker) -> None:
    """Pyramidal OME-TIFF written from tile iterators (SubIFDs), never held in memory."""
    import tifffile

    if _tiff_ok(path, size):
        return
    sizes = level_shapes(size)
    progress(f"writing {path.name}: {size} x {size}, {len(sizes)} levels")
    tmp = path.with_name(path.name + ".partial")

    def tiles(level: int, n: int) -> Iterator[np.ndarray]:
        nt = -(-n // TILE)
        for ty in range(nt):
            for tx in range(nt):
                yield maker.tile(level, ty, tx)

    with tifffile.TiffWriter(tmp, bigtiff=True, ome=True) as tif:
        common = {
            "dtype": DTYPE,
            "tile": (TILE, TILE),
            "compression": "zstd",
            "maxworkers": 2,
        }
        tif.write(
            tiles(0, sizes[0]),
            shape=(sizes[0], sizes[0]),
            subifds=len(sizes) - 1,
            metadata={
                "axes": "YX",
                "PhysicalSizeX": PIXEL_UM,
                "PhysicalSizeY": PIXEL_UM,
                "PhysicalSizeXUnit": "µm",
                "PhysicalSizeYUnit": "µm",
            },
            **common,
        )
        for level, n in enumerate(sizes[1:], start=1):
            tif.write(tiles(level, n), shape=(n, n), subfiletype=1, metadata=None, **common)
    os.replace(tmp, path)


def _zarr_ok(path: Path, size: int) -> bool:
    meta = path / "zarr.json"
    done = path / ".complete"
    if not (meta.exists() and done.exists()):
        return False
    try:
        arr = json.loads((path / "0" / "zarr.json").read_text())
        return tuple(arr["shape"]) == (size, size)
    except (OSError, ValueError, KeyError):
        return False


def make_zarr(path: Path, size: int, maker: TileMaker) -> None:
    """OME-Zarr (NGFF 0.5, zarr v3), 512 x 512 chunks, written band by band."""
    import zarr

    if _zarr_ok(path, size):
        return
    sizes = level_shapes(size)
    progress(f"writing {path.name}: {size} x {size}, {len(sizes)} levels")
    if path.exists():
        shutil.rmtree(path)
    root = zarr.open_group(str(path), mode="w", zarr_format=3)
    datasets = []
    for level, n in enumerate(sizes):
        scale = PIXEL_UM * (2**level)
        datasets.append(
            {
                "path": str(level),
                "coordinateTransformations": [{"type": "scale", "scale": [scale, scale]}],
            }
        )
        arr = root.create_array(
            str(level),
            shape=(n, n),
            chunks=(TILE, TILE),
            dtype=DTYPE,
            compressors=zarr.codecs.ZstdCodec(level=3),
            dimension_names=["y", "x"],
        )
        nt = -(-n // TILE)
        for ty in range(nt):
            y0, y1 = ty * TILE, min(n, (ty + 1) * TILE)
            band = np.empty((y1 - y0, n), dtype=DTYPE)
            for tx in range(nt):
                x0, x1 = tx * TILE, min(n, (tx + 1) * TILE)
                band[:, x0:x1] = maker.tile(level, ty, tx)[: y1 - y0, : x1 - x0]
            arr[y0:y1, :] = band
    root.attrs["ome"] = {
        "version": "0.5",
        "multiscales": [
            {
                "name": path.name,
                "axes": [
                    {"name": "y", "type": "space", "unit": "micrometer"},
                    {"name": "x", "type": "space", "unit": "micrometer"},
                ],
                "datasets": datasets,
            }
        ],
    }
    (path / ".complete").write_text("ok\n")


def data_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# -- readers under test --------------------------------------------------------------------------

Reader = Callable[[int, int, int], np.ndarray]  # (level, y, x) -> 512 x 512 (or less)


def bioimnb_reader(path: Path) -> tuple[Any, Reader]:
    import bioimnb

    img = bioimnb.open_image(path)

    def read(level: int, y: int, x: int) -> np.ndarray:
        return img.read(level, t=0, c=0, z=0, y=slice(y, y + TILE), x=slice(x, x + TILE))

    return img, read


def bioimnb_dask_reader(path: Path) -> tuple[Any, Reader]:
    import bioimnb

    img = bioimnb.open_image(path)

    def read(level: int, y: int, x: int) -> np.ndarray:
        arr = img.levels[level]
        return np.asarray(arr[0, 0, 0, y : y + TILE, x : x + TILE].compute())

    return img, read


def bioio_reader(path: Path) -> tuple[Any, Reader]:
    import bioio

    if path.suffix == ".zarr":
        import bioio_ome_zarr

        img = bioio.BioImage(str(path), reader=bioio_ome_zarr.Reader)
    else:
        import bioio_ome_tiff

        img = bioio.BioImage(str(path), reader=bioio_ome_tiff.Reader)
    levels = list(getattr(img, "resolution_levels", (0,)) or (0,))

    def read(level: int, y: int, x: int) -> np.ndarray:
        # bioio-ome-tiff exposes one resolution level for a SubIFD pyramid: level -1 is then
        # level 0 (marked in the table).
        lv = levels[level] if -len(levels) <= level < len(levels) else levels[-1]
        if img.current_resolution_level != lv:
            img.set_resolution_level(lv)
        data = img.get_image_dask_data("YX", T=0, C=0, Z=0)
        return np.asarray(data[y : y + TILE, x : x + TILE].compute())

    return img, read


def floor_reader(path: Path) -> tuple[Any, Reader]:
    """The native store with nothing on top: tifffile's zarr view, or zarr-python."""
    import zarr

    arrays: dict[int, Any] = {}
    handle: Any = None
    if path.suffix == ".zarr":

        def get(level: int) -> Any:
            if level not in arrays:
                arrays[level] = zarr.open_array(str(path / str(level)), mode="r")
            return arrays[level]

    else:
        import tifffile

        handle = tifffile.TiffFile(path)
        nlev = len(handle.series[0].levels)

        def get(level: int) -> Any:
            level = level % nlev
            if level not in arrays:
                arrays[level] = zarr.open(handle.aszarr(level=level), mode="r")
            return arrays[level]

    def read(level: int, y: int, x: int) -> np.ndarray:
        return np.asarray(get(level)[y : y + TILE, x : x + TILE])

    return handle, read


def open_bioimnb(path: Path) -> Any:
    import bioimnb

    return bioimnb.open_image(path)


def open_bioio(path: Path) -> Any:
    import bioio

    if path.suffix == ".zarr":
        import bioio_ome_zarr

        img = bioio.BioImage(str(path), reader=bioio_ome_zarr.Reader)
    else:
        import bioio_ome_tiff

        img = bioio.BioImage(str(path), reader=bioio_ome_tiff.Reader)
    _ = img.dims  # bioio reads metadata lazily; force the header parse
    return img


def open_floor(path: Path) -> Any:
    import zarr

    if path.suffix == ".zarr":
        return zarr.open_array(str(path / "0"), mode="r")
    import tifffile

    with tifffile.TiffFile(path) as tif:
        return zarr.open(tif.aszarr(level=0), mode="r").shape


# -- the benchmark ----------------------------------------------------------------------------


def positions(size: int, n: int, seed: int) -> list[tuple[int, int]]:
    """``n`` distinct tile-aligned positions whose 512 x 512 window lies inside the image."""
    nt = size // TILE  # full tiles only
    rng = random.Random(seed)
    cells = rng.sample(range(nt * nt), min(n, nt * nt))
    return [((c // nt) * TILE, (c % nt) * TILE) for c in cells]


def run_reads(
    make: Callable[[Path], tuple[Any, Reader]],
    path: Path,
    level: int,
    pos: list[tuple[int, int]],
) -> dict[str, list[float]]:
    """Cold pass (files evicted, fresh positions), then warm pass over the same positions."""
    evict([path])
    gc.collect()
    handle, read = make(path)
    out: dict[str, list[float]] = {"cold": [], "warm": []}
    try:
        for phase in ("cold", "warm"):
            for y, x in pos:
                dt, arr = timed(lambda y=y, x=x: read(level, y, x))
                if arr.size == 0:
                    raise RuntimeError(f"empty read at level {level} ({y}, {x}) of {path}")
                out[phase].append(dt)
    finally:
        close = getattr(handle, "close", None)
        if callable(close):
            close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=30, help="positions per case (default 30)")
    parser.add_argument("--opens", type=int, default=5, help="open_image repeats (default 5)")
    parser.add_argument("--big", type=int, default=50_000, help="edge of the big image")
    parser.add_argument("--small", type=int, default=5_000, help="edge of the small image")
    args = parser.parse_args(argv)
    work: Path = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    print_machine(work)

    sizes = [args.small] if args.quick else [args.small, args.big]
    reads = min(args.reads, 10) if args.quick else args.reads
    maker = TileMaker()
    files: dict[tuple[str, int], Path] = {}
    data_rows = []
    for size in sizes:
        tif = work / f"bench_{size}.ome.tif"
        zpath = work / f"bench_{size}.ome.zarr"
        dt_t, _ = timed(lambda tif=tif, size=size: make_tiff(tif, size, maker))
        dt_z, _ = timed(lambda zpath=zpath, size=size: make_zarr(zpath, size, maker))
        files[("OME-TIFF", size)] = tif
        files[("OME-Zarr", size)] = zpath
        for kind, p, dt in (("OME-TIFF", tif, dt_t), ("OME-Zarr", zpath, dt_z)):
            nfiles = 1 if p.is_file() else sum(1 for f in p.rglob("*") if f.is_file())
            data_rows.append(
                [
                    kind,
                    f"{size} x {size}",
                    len(level_shapes(size)),
                    f"{data_size(p) / 2**20:.0f} MiB",
                    nfiles,
                    f"{dt:.1f} s" if dt > 0.05 else "reused",
                ]
            )
    table(
        ["format", "level 0", "levels", "on disk", "files", "generated in"],
        data_rows,
        "Data (uint16, 1 channel, 512 x 512 tiles/chunks, zstd)",
    )

    # Warm-up: import every library and run every code path once on small separate files, so
    # the first measured call pays for page-cache misses, not for imports.
    warm_tif, warm_zarr = work / "warmup_1024.ome.tif", work / "warmup_1024.ome.zarr"
    make_tiff(warm_tif, 1024, maker)
    make_zarr(warm_zarr, 1024, maker)
    for p in (warm_tif, warm_zarr):
        for fn in (open_bioimnb, open_bioio, open_floor):
            obj = fn(p)
            close = getattr(obj, "close", None)
            if callable(close):
                close()
        for make in (bioimnb_reader, bioimnb_dask_reader, floor_reader, bioio_reader):
            handle, read = make(p)
            read(0, 0, 0)
            read(len(level_shapes(1024)) - 1, 0, 0)
            close = getattr(handle, "close", None)
            if callable(close):
                close()

    # open_image -------------------------------------------------------------------------------
    open_rows = []
    open_med: dict[tuple[str, str, int], float] = {}
    for (kind, size), p in files.items():
        tools: list[tuple[str, Callable[[Path], Any]]] = [
            ("bioimnb.open_image", open_bioimnb),
            ("floor (level 0 only)", open_floor),
        ]
        if size <= args.small:
            tools.append(("bioio.BioImage", open_bioio))
        for tool, fn in tools:
            evict([p])
            cold, obj = timed(lambda fn=fn, p=p: fn(p))
            close = getattr(obj, "close", None)
            if callable(close):
                close()
            warm = []
            for _ in range(args.opens):
                dt, obj = timed(lambda fn=fn, p=p: fn(p))
                warm.append(dt)
                close = getattr(obj, "close", None)
                if callable(close):
                    close()
            open_med[(tool, kind, size)] = median(warm)
            open_rows.append([kind, size, tool, ms(cold), ms(median(warm)), ms(p90(warm))])
        # Building the lazy dask arrays of every level (first access of img.levels).
        lv_times = []
        for _ in range(args.opens):
            img = open_bioimnb(p)
            lv_times.append(timed(lambda img=img: img.levels)[0])
            img.close()
        open_rows.append(
            [
                kind,
                size,
                "bioimnb img.levels (after open)",
                "-",
                ms(median(lv_times)),
                ms(p90(lv_times)),
            ]
        )
    table(
        ["format", "edge", "tool", "cold ms", "warm median ms", "warm p90 ms"],
        open_rows,
        f"Open (headers only; cold = after fadvise eviction, warm = {args.opens} repeats)",
    )

    # region reads -----------------------------------------------------------------------------
    tools_read: list[tuple[str, Callable[[Path], tuple[Any, Reader]]]] = [
        ("bioimnb read()", bioimnb_reader),
        ("bioimnb levels[] dask", bioimnb_dask_reader),
        ("floor (tifffile/zarr)", floor_reader),
        ("bioio", bioio_reader),
    ]
    results: dict[tuple[str, str, int, str], dict[str, list[float]]] = {}
    # Two rounds with fresh positions each; the second runs the cases in reverse order, so that
    # neither size always runs first (order effects, other load on the machine).
    cases = list(files.items())
    for rnd, order in enumerate((cases, cases[::-1])):
        for (kind, size), p in order:
            nlev = len(level_shapes(size))
            for level_name, level in (("0", 0), ("coarsest", nlev - 1)):
                if level == 0:
                    seed = size * 10 + rnd * 2 + (0 if kind == "OME-TIFF" else 1)
                    pos = positions(size, reads, seed=seed)
                else:
                    pos = [(0, 0)] * reads
                for tool, make in tools_read:
                    if tool == "bioio" and size > args.small:
                        continue  # whole-plane chunks: ~5 GB decoded per tile at 50k
                    progress(f"round {rnd + 1}: {kind} {size} level {level_name}: {tool}")
                    res = run_reads(make, p, level, pos)
                    acc = results.setdefault(
                        (tool, kind, size, level_name), {"cold": [], "warm": []}
                    )
                    for phase in ("cold", "warm"):
                        acc[phase] += res[phase]
    rows = []
    for (kind, size), _p in cases:
        nlev = len(level_shapes(size))
        for level_name, level in (("0", 0), ("coarsest", nlev - 1)):
            for tool, _make in tools_read:
                res = results.get((tool, kind, size, level_name))
                if res is None:
                    continue
                note = ""
                if tool == "bioio" and kind == "OME-TIFF" and level != 0:
                    note = " (bioio sees 1 level: read is level 0)"
                rows.append(
                    [
                        kind,
                        size,
                        level_name,
                        tool + note,
                        len(res["cold"]),
                        ms(median(res["cold"])),
                        ms(p90(res["cold"])),
                        ms(median(res["warm"])),
                        ms(p90(res["warm"])),
                    ]
                )
    table(
        [
            "format",
            "edge",
            "level",
            "tool",
            "n",
            "cold median",
            "cold p90",
            "warm median",
            "warm p90",
        ],
        rows,
        f"512 x 512 reads, ms (2 rounds x {reads} distinct random tile-aligned positions at "
        "level 0; the coarsest level is one tile, read whole)",
    )

    # ratios -----------------------------------------------------------------------------------
    def med(tool: str, kind: str, size: int, level: str, phase: str) -> float:
        res = results.get((tool, kind, size, level))
        return median(res[phase]) if res else float("nan")

    ratio_rows = []
    for kind in ("OME-TIFF", "OME-Zarr"):
        for level in ("0", "coarsest"):
            for phase in ("cold", "warm"):
                small = med("bioimnb read()", kind, args.small, level, phase)
                big = med("bioimnb read()", kind, args.big, level, phase)
                row = [
                    kind,
                    level,
                    phase,
                    ms(big) if not args.quick else "-",
                    ms(small),
                    ratio(big, small) if not args.quick else "-",
                    ratio(small, med("bioio", kind, args.small, level, phase)),
                    ratio(small, med("floor (tifffile/zarr)", kind, args.small, level, phase)),
                    ratio(big, med("floor (tifffile/zarr)", kind, args.big, level, phase))
                    if not args.quick
                    else "-",
                    ratio(small, med("bioimnb levels[] dask", kind, args.small, level, phase)),
                ]
                ratio_rows.append(row)
    table(
        [
            "format",
            "level",
            "phase",
            f"bioimnb {args.big} ms",
            f"bioimnb {args.small} ms",
            f"{args.big}/{args.small}",
            f"bioimnb/bioio @{args.small}",
            f"bioimnb/floor @{args.small}",
            f"bioimnb/floor @{args.big}",
            f"read()/dask @{args.small}",
        ],
        ratio_rows,
        "Ratios of medians (target: 50k < 50 ms and 50k/5k <= 1.2)",
    )
    open_rows2 = []
    for kind in ("OME-TIFF", "OME-Zarr"):
        small = open_med.get(("bioimnb.open_image", kind, args.small), float("nan"))
        big = open_med.get(("bioimnb.open_image", kind, args.big), float("nan"))
        open_rows2.append(
            [
                kind,
                ms(big) if not args.quick else "-",
                ms(small),
                ratio(big, small) if not args.quick else "-",
                ratio(small, open_med.get(("bioio.BioImage", kind, args.small), float("nan"))),
                ratio(
                    small, open_med.get(("floor (level 0 only)", kind, args.small), float("nan"))
                ),
            ]
        )
    table(
        [
            "format",
            f"open {args.big} ms",
            f"open {args.small} ms",
            f"{args.big}/{args.small}",
            "bioimnb/bioio",
            "bioimnb/floor",
        ],
        open_rows2,
        "open_image (warm medians)",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
