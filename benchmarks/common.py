"""Shared helpers for the bioimnb benchmarks: timing, statistics, machine description, tables.

Benchmarks report numbers; they never assert timing targets (noise must not fail a build).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.metadata
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_WORK = HERE / "_work"

LIBRARIES = (
    "bioimnb",
    "numpy",
    "tifffile",
    "imagecodecs",
    "zarr",
    "numcodecs",
    "dask",
    "fsspec",
    "bioio",
    "bioio-ome-tiff",
    "bioio-ome-zarr",
    "jupyter_server",
)


# -- timing ---------------------------------------------------------------------------------


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of one call, measured with ``perf_counter``."""
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def repeat(fn: Callable[[], Any], n: int) -> list[float]:
    """Seconds of ``n`` calls of ``fn``."""
    return [timed(fn)[0] for _ in range(n)]


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def p90(xs: Sequence[float]) -> float:
    """90th percentile (nearest rank, so with 30 samples it is the 27th smallest)."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    rank = max(1, -(-9 * len(s) // 10))  # ceil(0.9 n)
    return s[rank - 1]


def stats(xs: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(xs),
        "median": median(xs),
        "p90": p90(xs),
        "min": min(xs) if xs else float("nan"),
        "max": max(xs) if xs else float("nan"),
    }


def ms(seconds: float) -> str:
    """Seconds as milliseconds with sensible precision."""
    if seconds != seconds:  # NaN
        return "-"
    v = seconds * 1e3
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def ratio(a: float, b: float) -> str:
    """``a / b`` as ``1.23x``; small ratios as ``1/250x`` so they stay readable."""
    if not a or not b or a != a or b != b:
        return "-"
    r = a / b
    if r < 0.1:
        return f"1/{1 / r:.0f}x"
    return f"{r:.2f}x"


# -- page cache ------------------------------------------------------------------------------


def evict(paths: Iterable[str | os.PathLike[str]]) -> int:
    """Ask the kernel to drop cached pages of these files (``posix_fadvise(DONTNEED)``).

    Works without root for files we can open; directories are walked.  Returns the number of
    files advised.  On platforms without ``posix_fadvise`` it does nothing.
    """
    if not hasattr(os, "posix_fadvise"):
        return 0
    count = 0

    def one(path: str) -> None:
        nonlocal count
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            count += 1
        finally:
            os.close(fd)

    for p in paths:
        p = os.fspath(p)
        if os.path.isdir(p):
            for dirpath, _, files in os.walk(p):
                for f in files:
                    one(os.path.join(dirpath, f))
        else:
            one(p)
    return count


# -- machine ---------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _filesystem(path: Path) -> str:
    """Filesystem type of the mount holding ``path`` (Linux), e.g. ``ext4 on /dev/vda``."""
    try:
        target = os.path.realpath(path)
        best = ("", "?", "?")
        with open("/proc/mounts", encoding="utf-8") as fh:
            for line in fh:
                dev, mnt, fstype, *_ = line.split()
                if (target == mnt or target.startswith(mnt.rstrip("/") + "/")) and len(mnt) > len(
                    best[0]
                ):
                    best = (mnt, fstype, dev)
        return f"{best[1]} on {best[2]}"
    except OSError:
        return "?"


def machine(workdir: Path | None = None) -> dict[str, Any]:
    ram = _ram_gib()
    info: dict[str, Any] = {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram": f"{ram:.1f} GiB" if ram else "?",
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
    }
    if workdir is not None:
        info["workdir"] = f"{workdir} ({_filesystem(workdir)})"
    info["libraries"] = {name: _version(name) for name in LIBRARIES}
    return info


def print_machine(workdir: Path | None = None) -> dict[str, Any]:
    info = machine(workdir)
    print("## Machine")
    for key, value in info.items():
        if key == "libraries":
            print("libraries: " + ", ".join(f"{k} {v}" for k, v in value.items()))
        else:
            print(f"{key}: {value}")
    print()
    return info


# -- output ----------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> None:
    """Print a Markdown table (readable in a terminal, pasteable into BENCHMARKS.md)."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    if title:
        print(f"### {title}")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(cells[0], widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells[1:]:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
    print(flush=True)


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick", action="store_true", help="small smoke run (seconds, not minutes)"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=DEFAULT_WORK,
        help=f"where generated data lives and is reused (default {DEFAULT_WORK})",
    )
    return parser


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
