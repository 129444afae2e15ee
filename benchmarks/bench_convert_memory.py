"""Benchmark: peak memory of the converter on a 1 GiB tiled zlib OME-TIFF (bioimnb vs ome-zarr-py).

Claim checked (Hardening issue, "Memory of the converter"): on a 1 GiB tiled zlib OME-TIFF
(2 x 16384 x 16384 uint16, tiles 512 x 512) converted to NGFF 0.5 with zstd-3 and 1024 x 1024
chunks (``bioimnb convert --chunks 1024 --compression zstd --compression-level 3``; shards are
bioimnb's default, 8 x 8 chunks), bioimnb peaks under 400 MB of RSS without losing speed.
ome-zarr-py runs in the same session on the same input for reference (chunks 1024 x 1024, no
shards, ``Methods.LOCAL_MEAN``, the same number of levels).

Run:  .venv/bin/python benchmarks/bench_convert_memory.py               (3 runs per tool, ~5 min)
      .venv/bin/python benchmarks/bench_convert_memory.py --quick       (2 x 4096^2, 1 run)
      .venv/bin/python benchmarks/bench_convert_memory.py --before REF  (also bioimnb as of git REF,
                                                                        "bioimnb-before", same run)

Every conversion runs in a fresh Python subprocess (``--worker``); peak RSS is the child's own
``VmHWM`` (``/proc/self/status``; not ``ru_maxrss``, which inherits the harness's high-water
mark across fork + exec).  Wall seconds are measured in the child around the conversion call
(imports excluded); CPU seconds are the whole child's user + system time from ``wait4`` (less
sensitive to other work on a shared machine than wall time).  The source is evicted from the
page cache before each run and the output deleted; tools alternate round robin.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_convert import _tiles  # noqa: E402  (the same synthetic, compressible pattern)
from common import base_parser, evict, median, print_machine, progress, table  # noqa: E402

TILE = 512
CHUNK = 1024
DTYPE = np.dtype("uint16")
ZSTD_LEVEL = 3
WORKERS = 2
TOOLS = ("bioimnb", "ome-zarr-py")


def make_input(path: Path, channels: int, size: int) -> Path:
    """A tiled (512 x 512) zlib OME-TIFF of shape (channels, size, size); reused when complete."""
    import tifffile

    marker = path.with_name(path.name + ".complete")
    if path.exists() and marker.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    partial = path.with_name(path.name + ".partial")
    progress(f"generating {path.name} ({channels} x {size} x {size} uint16, zlib tiles)")
    with tifffile.TiffWriter(partial, bigtiff=True, ome=True) as tw:
        tw.write(
            _tiles(channels, size),
            shape=(channels, size, size),
            dtype=DTYPE,
            tile=(TILE, TILE),
            compression="zlib",
            compressionargs={"level": 1},
            photometric="minisblack",
            maxworkers=2,
            metadata={"axes": "CYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5, "Channel": {"Name": [f"ch{c}" for c in range(channels)]}},
        )
    os.replace(partial, path)
    marker.touch()
    return path


def _levels(size: int) -> int:
    n = 1
    while size > 256:
        size = -(-size // 2)
        n += 1
    return n


def run_tool(tool: str, src: str, dst: str, levels: int, verify: bool) -> dict[str, Any]:
    chunk = int(os.environ.get("BENCH_CHUNK", CHUNK))
    if tool in ("bioimnb", "bioimnb-before"):
        import ome_types  # noqa: F401
        import ome_zarr_models.v05  # noqa: F401

        import bioimnb
        import bioimnb.core.convert.engine  # noqa: F401

        t0 = time.perf_counter()
        bioimnb.convert(src, dst, ngff="0.5", chunks=chunk, compression="zstd", compression_level=ZSTD_LEVEL,
                        levels=levels, overwrite=True, verify=verify, workers=WORKERS)
        return {"seconds": time.perf_counter() - t0, "code": os.path.dirname(bioimnb.__file__)}
    if tool == "ome-zarr-py":
        import dask
        import dask.array as da
        import tifffile
        import zarr
        from ome_zarr.format import FormatV05
        from ome_zarr.scale import Methods
        from ome_zarr.writer import write_image
        from zarr.codecs import ZstdCodec

        dask.config.set(scheduler="threads", num_workers=WORKERS)
        t0 = time.perf_counter()
        arr = da.from_zarr(zarr.open_array(tifffile.imread(src, aszarr=True, series=0, level=0), mode="r"))
        root = zarr.open_group(dst, mode="w", zarr_format=3)
        options = [{"chunks": (1, chunk, chunk), "compressor": ZstdCodec(level=ZSTD_LEVEL)} for _ in range(levels)]
        write_image(arr, root, scale_factors=[2**k for k in range(1, levels)], method=Methods.LOCAL_MEAN,
                    fmt=FormatV05(), axes="cyx", storage_options=options)
        return {"seconds": time.perf_counter() - t0}
    raise SystemExit(f"unknown tool {tool!r}")


def _vmhwm_kb() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def worker_main(argv: list[str]) -> None:
    import warnings

    warnings.simplefilter("ignore")
    import dask.array  # noqa: F401
    import tifffile  # noqa: F401
    import zarr  # noqa: F401

    tool, src, dst, levels, verify = argv[0], argv[1], argv[2], int(argv[3]), argv[4] == "1"
    result = run_tool(tool, src, dst, levels, verify)
    result["vmhwm_kb"] = _vmhwm_kb()
    print("RESULT " + json.dumps(result), flush=True)


def checkout(ref: str, work: Path) -> Path:
    """The ``bioimnb`` package as of git ``ref``, unpacked under ``work`` (for ``bioimnb-before``)."""
    import io
    import tarfile

    repo = Path(__file__).resolve().parent.parent
    sha = subprocess.run(["git", "rev-parse", ref], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
    target = work / f"bioimnb-{sha[:12]}"
    if not (target / "bioimnb" / "__init__.py").exists():
        blob = subprocess.run(["git", "archive", sha, "bioimnb"], cwd=repo, capture_output=True, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
            tar.extractall(target, filter="data")
    return target


def spawn(tool: str, src: Path, dst: Path, levels: int, verify: bool, pythonpath: Path | None = None) -> dict[str, Any]:
    if dst.exists():
        shutil.rmtree(dst)
    os.sync()
    evict([src])
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", tool, str(src), str(dst), str(levels), "1" if verify else "0"]
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as fout, tempfile.TemporaryFile("w+") as ferr:
        env = dict(os.environ)
        if pythonpath is not None:
            env["PYTHONPATH"] = str(pythonpath)
        proc = subprocess.Popen(cmd, stdout=fout, stderr=ferr, text=True, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        outside = time.perf_counter() - t0
        fout.seek(0)
        ferr.seek(0)
        out, err = fout.read(), ferr.read()
    if code != 0:
        raise RuntimeError(f"{tool} failed (exit {code}):\n{err[-3000:]}")
    result = json.loads([ln for ln in out.splitlines() if ln.startswith("RESULT ")][-1][len("RESULT ") :])
    result["process"] = outside
    result["rss_mb"] = result.pop("vmhwm_kb") * 1024 / 1e6
    result["cpu_s"] = usage.ru_utime + usage.ru_stime
    result["out_mb"] = sum(f.stat().st_size for f in dst.rglob("*") if f.is_file()) / 1e6
    return result


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2:])
        return
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None, help="runs per tool (default 3, --quick 1)")
    parser.add_argument("--tools", default=",".join(TOOLS), help="comma-separated subset of " + ", ".join(TOOLS) + " (also bioimnb-noverify)")
    parser.add_argument("--chunks", type=int, default=CHUNK, help=f"chunk edge (default {CHUNK}; shards stay bioimnb's default, 8 chunks)")
    parser.add_argument("--before", default=None, metavar="REF", help="also run bioimnb as of this git ref (tool bioimnb-before)")
    args = parser.parse_args()
    os.environ["BENCH_CHUNK"] = str(args.chunks)  # read by the worker processes
    work: Path = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    runs = args.runs or (1 if args.quick else 3)
    tools = [t for t in args.tools.split(",") if t]
    before = checkout(args.before, work) if args.before else None
    if before is not None and "bioimnb-before" not in tools:
        tools.insert(1, "bioimnb-before")
    channels, size = (2, 4096) if args.quick else (2, 16384)
    levels = _levels(size)

    print(f"# Convert memory: tiled zlib OME-TIFF -> OME-Zarr 0.5, zstd-3, chunks {args.chunks}\n")
    print_machine(work)
    src = make_input(work / f"convert_mem_{channels}x{size}.zlib.ome.tif", channels, size)
    raw = channels * size * size * DTYPE.itemsize
    print(f"input {src.name}: {channels} x {size} x {size} uint16 = {raw / 2**30:.2f} GiB raw, "
          f"{src.stat().st_size / 2**30:.2f} GiB on disk (tiles 512, zlib)")
    if before is not None:
        print(f"bioimnb-before: the bioimnb package of {args.before} ({before.name}), same interpreter and libraries")
    print(f"settings: NGFF 0.5, zstd-{ZSTD_LEVEL}, chunks {args.chunks}, {levels} levels, {WORKERS} workers, N = {runs}\n")
    dst = work / "convert_mem_out.ome.zarr"
    samples: dict[str, list[dict[str, Any]]] = {t: [] for t in tools}
    for r in range(runs):
        for tool in tools if r % 2 == 0 else list(reversed(tools)):
            progress(f"run {r + 1}/{runs}: {tool}")
            res = spawn(tool.replace("-noverify", ""), src, dst, levels, verify="noverify" not in tool,
                        pythonpath=before if tool == "bioimnb-before" else None)
            progress(f"  {res['seconds']:.1f} s, CPU {res['cpu_s']:.1f} s, peak RSS {res['rss_mb']:.0f} MB")
            samples[tool].append(res)
    if dst.exists():
        shutil.rmtree(dst)
    rows = []
    for tool in tools:
        ok = samples[tool]
        rows.append([
            tool,
            f"{median([s['seconds'] for s in ok]):.1f}",
            f"{median([s['cpu_s'] for s in ok]):.1f}",
            f"{median([s['rss_mb'] for s in ok]):.0f}",
            " / ".join(f"{s['rss_mb']:.0f}" for s in ok),
            f"{median([s['out_mb'] for s in ok]):.0f}",
            len(ok),
        ])
    table(["tool", "wall s (median)", "CPU s (median)", "peak RSS MB (median)", "peak RSS MB (runs)", "out MB", "n"], rows,
          title=f"Conversion of {raw / 2**30:.2f} GiB")
    print("### Ratios of medians")
    ref = samples.get("bioimnb")
    if ref:
        def med(tool: str, key: str) -> float:
            return median([s[key] for s in samples[tool]])

        for tool in tools:
            if tool != "bioimnb" and samples[tool]:
                print(f"{tool} / bioimnb: peak RSS {med(tool, 'rss_mb') / med('bioimnb', 'rss_mb'):.2f}x, "
                      f"CPU s {med(tool, 'cpu_s') / med('bioimnb', 'cpu_s'):.2f}x, wall s {med(tool, 'seconds') / med('bioimnb', 'seconds'):.2f}x")
        peak = med("bioimnb", "rss_mb")
        print(f"target: bioimnb peak RSS < 400 MB: {peak:.0f} MB -> {'pass' if peak < 400 else 'miss'}")


if __name__ == "__main__":
    main()
