"""Benchmark: Bio-Formats (JVM via JPype) vs the Python readers: open + first 512 x 512 tile.

Claims checked (issue 10):
1. open plus the first 512 x 512 tile through Bio-Formats vs the Python reader on the same CZI,
   OME-TIFF pyramid and SVS (ratios of medians);
2. a 50k x 50k pyramid read through Bio-Formats stays O(tile): a random 512 x 512 level-0 tile
   within 20 % of the same read on a 5k x 5k pyramid.

Run:  .venv/bin/python benchmarks/bench_bioformats.py            (generates a 50k OME-TIFF once, ~2 GB)
      .venv/bin/python benchmarks/bench_bioformats.py --quick    (small files, seconds)

Data: the CZI is ``../shared/data/czi/DAPI_GFP.czi`` (640 x 640, 2 channels, 3 levels) when present,
else nothing; the OME-TIFF pyramids are those of ``bench_open_read.py`` (uint16, 512 x 512 zstd
tiles, SubIFD levels; generated once under --workdir and reused); the SVS is an Aperio-like tiled
RGB pyramid (256 x 256 zlib tiles, levels /4, a strip thumbnail), 8192 x 8192 (2048 in --quick).

Method: the JVM start is timed once, alone.  Every file is opened and read once per reader before
timing (imports, class loading and JIT warm-up are not counted).  "open + first tile" is
``open_image(path, reader=...)`` then ``read(0, t=0, z=0, y=0:512, x=0:512)`` then ``close()``,
after evicting the file from the page cache (posix_fadvise DONTNEED), repeated --opens times.  The
O(tile) case opens each pyramid once through Bio-Formats, warms both up (60 reads each), then
reads --reads distinct random tile-aligned 512 x 512 level-0 tiles of each, alternating between
the two pyramids read by read: first each after evicting the file (cold), then, after one untimed
pass over the same positions that brings them back into the page cache, again (warm).
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_open_read import TileMaker, make_tiff  # noqa: E402
from common import base_parser, evict, median, ms, p90, print_machine, progress, ratio, table, timed  # noqa: E402

TILE = 512
SHARED_CZI = Path(__file__).resolve().parents[2] / "shared" / "data" / "czi" / "DAPI_GFP.czi"


def make_svs(path: Path, size: int) -> None:
    """An Aperio-like SVS: tiled RGB level 0, a strip thumbnail, tiled levels /4."""
    import tifffile

    if path.exists():
        return
    progress(f"writing {path.name}: {size} x {size} RGB")
    yy, xx = np.mgrid[0:size, 0:size]
    base = np.stack([(xx // 4) % 256, (yy // 4) % 256, (xx * 3 + yy) % 256], axis=-1).astype(np.uint8)
    del yy, xx
    levels = [base]
    while levels[-1].shape[0] // 4 >= 256:
        levels.append(np.ascontiguousarray(levels[-1][::4, ::4]))
    lib = "Aperio Image Library v12.0.15 \n"
    head = f"{lib}{size}x{size} [0,0 {size}x{size}] (256x256) RGB|AppMag = 20|MPP = 0.4990"
    kw: dict[str, Any] = {"photometric": "rgb", "metadata": None, "compression": "zlib"}
    tmp = path.with_name(path.name + ".partial")
    with tifffile.TiffWriter(tmp, bigtiff=True) as tw:
        tw.write(base, tile=(256, 256), description=head, **kw)
        thumb = np.ascontiguousarray(base[:: max(1, size // 512), :: max(1, size // 512)])
        tw.write(thumb, description=f"{lib}{size}x{size} -> {thumb.shape[1]}x{thumb.shape[0]} - |AppMag = 20", rowsperstrip=16, **kw)
        for lv in levels[1:]:
            tw.write(lv, tile=(256, 256), description=f"{lib}{size}x{size} -> {lv.shape[1]}x{lv.shape[0]} - |AppMag = 20", **kw)
    tmp.replace(path)


def open_first_tile(path: Path, reader: str | None) -> tuple[float, np.ndarray]:
    import bioimnb

    def run() -> np.ndarray:
        img = bioimnb.open_image(path, reader=reader)
        try:
            return img.read(0, t=0, z=0, y=slice(0, TILE), x=slice(0, TILE))
        finally:
            img.close()

    return timed(run)


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--opens", type=int, default=10, help="open + first tile repeats (default 10)")
    parser.add_argument("--reads", type=int, default=30, help="random tiles per pyramid (default 30)")
    args = parser.parse_args(argv)
    if args.quick:
        args.opens, args.reads = 3, 8
    work: Path = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    print("# Bio-Formats vs the Python readers\n")
    print_machine(work)

    from bioimnb.core.readers import bioformats as bf

    jvm_s, _ = timed(bf.start_jvm)
    print(f"JVM start (JPype + Bio-Formats class path, once per process): {ms(jvm_s)} ms\n")

    maker = TileMaker()
    small, big = (1024, 2048) if args.quick else (5000, 50000)
    tiffs = {}
    for size in (small, big):
        path = work / f"bf_pyramid_{size}.ome.tif"
        make_tiff(path, size, maker)
        tiffs[size] = path
    svs = work / f"bf_slide_{2048 if args.quick else 8192}.svs"
    make_svs(svs, 2048 if args.quick else 8192)

    files: list[tuple[str, Path]] = []
    if SHARED_CZI.exists():
        files.append((f"CZI ({SHARED_CZI.name})", SHARED_CZI))
    files += [(f"OME-TIFF pyramid {small} x {small}", tiffs[small]), (f"SVS {svs.stem.split('_')[-1]} px RGB", svs)]

    # -- 1. open + first tile ------------------------------------------------------------------
    rows, ratio_rows = [], []
    for label, path in files:
        for reader in (None, "bioformats"):
            _, first = open_first_tile(path, reader)  # warm-up
        _, a = open_first_tile(path, None)
        _, b = open_first_tile(path, "bioformats")
        assert np.array_equal(a, b), f"{label}: Python reader and Bio-Formats disagree on the first tile"
        samples: dict[str | None, list[float]] = {None: [], "bioformats": []}
        for i in range(args.opens):
            for reader in ((None, "bioformats") if i % 2 == 0 else ("bioformats", None)):
                evict([path])
                seconds, _ = open_first_tile(path, reader)
                samples[reader].append(seconds)
        with __import__("bioimnb").open_image(path) as img:
            python_reader = img.reader
        for reader, xs in samples.items():
            rows.append([label, reader or python_reader, len(xs), ms(median(xs)), ms(p90(xs)), ms(min(xs))])
        ratio_rows.append([label, python_reader, ratio(median(samples["bioformats"]), median(samples[None]))])
        progress(f"{label}: done")
    table(["file", "reader", "n", "median ms", "p90 ms", "min ms"], rows, "Open + first 512 x 512 tile, cold page cache")

    # -- 2. O(tile) on big pyramids ----------------------------------------------------------------
    import bioimnb

    rng = random.Random(10)
    tile_rows, medians = [], {}
    opened, opens, cells = {}, {}, {}
    for size in (small, big):
        path = tiffs[size]
        evict([path])
        opens[size], opened[size] = timed(lambda p=path: bioimnb.open_image(p, reader="bioformats"))
        nt = -(-size // TILE) - 1  # whole tiles only
        cells[size] = rng.sample([(ty, tx) for ty in range(nt) for tx in range(nt)], min(args.reads, nt * nt))

    def read(size: int, ty: int, tx: int) -> float:
        s, tile = timed(
            lambda: opened[size].read(0, t=0, c=0, z=0, y=slice(ty * TILE, (ty + 1) * TILE), x=slice(tx * TILE, (tx + 1) * TILE))
        )
        assert tile.shape == (TILE, TILE)
        return s

    # Warm-up (Java class loading, JIT) on both, then the two pyramids alternate read by read, so
    # drift in machine load and JIT state hits both alike.
    for _ in range(3):
        for size in (small, big):
            for ty, tx in cells[size][:20]:
                read(size, ty, tx)
    samples: dict[tuple[int, str], list[float]] = {(s, k): [] for s in (small, big) for k in ("cold", "warm")}
    n = min(len(cells[small]), len(cells[big]))
    for kind in ("cold", "warm"):
        if kind == "warm":
            # Each cold read evicted the whole file first, so the tiles read before are gone
            # again: read every position once more, untimed, so that "warm" means cached.
            for size in (small, big):
                for i in range(n):
                    read(size, *cells[size][i])
        for i in range(n):
            for size in ((small, big) if i % 2 == 0 else (big, small)):
                if kind == "cold":
                    evict([tiffs[size]])
                samples[(size, kind)].append(read(size, *cells[size][i]))
    for size in (small, big):
        cold, warm = samples[(size, "cold")], samples[(size, "warm")]
        medians[size] = (median(cold), median(warm))
        img = opened[size]
        tile_rows.append([f"{size} x {size}", len(img.level_shapes), ms(opens[size]), len(cold), ms(median(cold)), ms(p90(cold)), ms(median(warm)), ms(p90(warm))])
        img.close()
    progress("pyramids: done")
    table(
        ["pyramid (Bio-Formats)", "levels", "open ms", "n", "cold median", "cold p90", "warm median", "warm p90"],
        tile_rows,
        "Random 512 x 512 level-0 tiles through Bio-Formats, milliseconds",
    )

    print("## Ratios of medians\n")
    table(["file", "Python reader", "Bio-Formats / Python (open + first tile)"], ratio_rows)
    table(
        ["case", "ratio"],
        [
            [f"Bio-Formats tile, {big} / {small}, cold", ratio(medians[big][0], medians[small][0])],
            [f"Bio-Formats tile, {big} / {small}, warm", ratio(medians[big][1], medians[small][1])],
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
