"""Benchmark: image-aware paged listing of huge local folders with ``bioimnb.browse``.

Claims checked (from the project's issue):
  A. a folder of 100,000 files: the first page (100 entries) in under 1 s;
  B. a folder holding one OME-Zarr of 100,000 chunk files: exactly one entry, in under 0.5 s.

Peers in the same run: fsspec ``LocalFileSystem.ls(path, detail=True)`` and jupyter_server's
``AsyncLargeFileManager.get(path, content=True)`` (what JupyterLab's file browser asks the
server for) for A; fsspec ``find()`` and ``du()`` (a naive browser that sizes folders) and the
jupyter_server contents manager for B.  ``os.scandir`` (names only) is shown as the floor.

Run:  .venv/bin/python benchmarks/bench_listing.py           (100,000 files; created once)
      .venv/bin/python benchmarks/bench_listing.py --quick   (10,000 files, seconds)

The folders are made once under --workdir with empty files and reused.  The dentry/inode
cache is warm after the first call (dropping it needs root); the first call of each tool is
reported separately as "first".
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    base_parser,
    median,
    ms,
    p90,
    print_machine,
    progress,
    ratio,
    table,
    timed,
)

EXTENSIONS = (".ome.tif", ".czi", ".txt", ".csv", ".png", ".nd2", ".json", ".zarr.zip")


def make_flat(folder: Path, n: int) -> None:
    """``n`` empty files with a mix of image and non-image extensions."""
    marker = folder.with_name(folder.name + ".complete")
    if marker.exists() and folder.is_dir():
        return
    progress(f"creating {n} files in {folder}")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for i in range(n):
        ext = EXTENSIONS[i % len(EXTENSIONS)]
        os.close(os.open(folder / f"img_{i:06d}{ext}", os.O_CREAT | os.O_WRONLY, 0o644))
    marker.write_text(f"{n}\n")


ZARR_GROUP = (
    '{"zarr_format": 3, "node_type": "group", "attributes": {"ome": {"version": "0.5", '
    '"multiscales": [{"axes": [{"name": "y", "type": "space", "unit": "micrometer"}, '
    '{"name": "x", "type": "space", "unit": "micrometer"}], "datasets": [{"path": "0", '
    '"coordinateTransformations": [{"type": "scale", "scale": [0.5, 0.5]}]}]}]}}}'
)


def make_zarr_folder(folder: Path, n: int) -> Path:
    """``folder/x.ome.zarr`` with a group ``zarr.json``, ``0/zarr.json`` and ``n`` empty chunks."""
    marker = folder.with_name(folder.name + ".complete")
    image = folder / "x.ome.zarr"
    if marker.exists() and image.is_dir():
        return image
    progress(f"creating an OME-Zarr of {n} chunk files in {folder}")
    if folder.exists():
        shutil.rmtree(folder)
    (image / "0" / "c").mkdir(parents=True)
    (image / "zarr.json").write_text(ZARR_GROUP)
    side = int(n**0.5) + 1
    array_meta = {
        "zarr_format": 3,
        "node_type": "array",
        "shape": [side * 512, side * 512],
        "data_type": "uint16",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [512, 512]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": 0,
        "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
    }
    (image / "0" / "zarr.json").write_text(json.dumps(array_meta))
    made = 0
    for i in range(side):
        row = image / "0" / "c" / str(i)
        row.mkdir()
        for j in range(side):
            if made == n:
                break
            os.close(os.open(row / str(j), os.O_CREAT | os.O_WRONLY, 0o644))
            made += 1
    marker.write_text(f"{n}\n")
    return image


# -- tools ---------------------------------------------------------------------------------------


def bioimnb_first(folder: Path, rooted: bool = False) -> Callable[[], int]:
    import bioimnb

    def run() -> int:
        loc = bioimnb.browse(".", root=folder) if rooted else bioimnb.browse(folder)
        page = loc.list(page_size=100)
        return len(page.entries)

    return run


def bioimnb_second(folder: Path) -> Callable[[], int]:
    import bioimnb

    token = bioimnb.browse(folder).list(page_size=100).next_page

    def run() -> int:
        return len(bioimnb.browse(folder).list(page_size=100, page=token).entries)

    return run


def fsspec_ls(folder: Path) -> Callable[[], int]:
    from fsspec.implementations.local import LocalFileSystem

    fs = LocalFileSystem()

    def run() -> int:
        return len(fs.ls(str(folder), detail=True))

    return run


def fsspec_find(folder: Path) -> Callable[[], int]:
    from fsspec.implementations.local import LocalFileSystem

    fs = LocalFileSystem()

    def run() -> int:
        return len(fs.find(str(folder)))

    return run


def fsspec_du(folder: Path) -> Callable[[], int]:
    from fsspec.implementations.local import LocalFileSystem

    fs = LocalFileSystem()

    def run() -> int:
        fs.du(str(folder), total=True)
        return 1

    return run


def jupyter_get(folder: Path) -> Callable[[], int]:
    from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager

    cm = AsyncLargeFileManager(root_dir=str(folder.parent))
    loop = asyncio.new_event_loop()

    def run() -> int:
        model: dict[str, Any] = loop.run_until_complete(cm.get(folder.name, content=True))
        return len(model["content"])

    return run


def scandir_names(folder: Path) -> Callable[[], int]:
    def run() -> int:
        with os.scandir(folder) as it:
            return sum(1 for _ in it)

    return run


def measure(
    label: str, make: Callable[[Path], Callable[[], int]], folder: Path, repeats: int
) -> dict[str, Any]:
    progress(f"{label} on {folder.name} ({repeats} repeats)")
    fn = make(folder)
    first, count = timed(fn)
    times = [timed(fn)[0] for _ in range(repeats)]
    return {"tool": label, "first": first, "times": times, "entries": count}


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000, help="files in the flat folder")
    parser.add_argument("--chunks", type=int, default=100_000, help="chunk files in the zarr")
    parser.add_argument("--repeats", type=int, default=10, help="repeats of the fast tools")
    parser.add_argument(
        "--slow-repeats", type=int, default=3, help="repeats of stat-everything tools"
    )
    parser.add_argument(
        "--jupyter-repeats",
        type=int,
        default=1,
        help="repeats of the jupyter_server listing of the big folder (about 0.5 ms per file)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.files, args.chunks = min(args.files, 10_000), min(args.chunks, 10_000)
        args.repeats, args.slow_repeats, args.jupyter_repeats = min(args.repeats, 5), 1, 1
    work: Path = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    print_machine(work)

    flat = work / f"flat_{args.files}"
    zdir = work / f"zarrdir_{args.chunks}"
    dt_flat, _ = timed(lambda: make_flat(flat, args.files))
    dt_zarr, _ = timed(lambda: make_zarr_folder(zdir, args.chunks))
    table(
        ["folder", "content", "made in"],
        [
            [
                flat.name,
                f"{args.files} empty files ({len(EXTENSIONS)} extensions)",
                f"{dt_flat:.1f} s" if dt_flat > 0.05 else "reused",
            ],
            [
                zdir.name,
                f"x.ome.zarr with {args.chunks} chunk files",
                f"{dt_zarr:.1f} s" if dt_zarr > 0.05 else "reused",
            ],
        ],
        "Data",
    )

    def rows_for(results: list[dict[str, Any]]) -> list[list[Any]]:
        return [
            [
                r["tool"],
                r["entries"],
                ms(r["first"]),
                ms(median(r["times"])),
                ms(p90(r["times"])),
                len(r["times"]),
            ]
            for r in results
        ]

    headers = ["tool", "entries", "first ms", "median ms", "p90 ms", "repeats"]

    # A. flat folder -----------------------------------------------------------------------------
    flat_results = [
        measure("bioimnb browse().list(100) first page", bioimnb_first, flat, args.repeats),
        measure(
            "bioimnb browse(root=).list(100) first page",
            lambda f: bioimnb_first(f, rooted=True),
            flat,
            args.repeats,
        ),
        measure("bioimnb second page (token)", bioimnb_second, flat, args.repeats),
        measure("os.scandir names only (floor)", scandir_names, flat, args.repeats),
        measure("fsspec ls(detail=True)", fsspec_ls, flat, args.slow_repeats),
        measure("jupyter_server contents get()", jupyter_get, flat, args.jupyter_repeats),
    ]
    table(headers, rows_for(flat_results), f"A. Folder of {args.files} files (target < 1000 ms)")

    # B. one OME-Zarr of many chunks ---------------------------------------------------------------
    zarr_results = [
        measure("bioimnb browse().list(100)", bioimnb_first, zdir, args.repeats),
        measure(
            "bioimnb browse(.zarr folder) list", bioimnb_first, zdir / "x.ome.zarr", args.repeats
        ),
        measure("fsspec ls(detail=True)", fsspec_ls, zdir, args.repeats),
        measure("jupyter_server contents get()", jupyter_get, zdir, args.repeats),
        measure("fsspec find() walk", fsspec_find, zdir, args.slow_repeats),
        measure("fsspec du() walk", fsspec_du, zdir, args.slow_repeats),
    ]
    table(
        headers,
        rows_for(zarr_results),
        f"B. Folder holding one OME-Zarr of {args.chunks} chunk files (target: 1 entry, < 500 ms)",
    )
    import bioimnb

    page = bioimnb.browse(zdir).list(page_size=100)
    print(
        "B entries: "
        + ", ".join(f"{e.name} ({e.kind}, {e.format})" for e in page.entries)
        + f"; next_page={page.next_page!r}\n"
    )
    inner = bioimnb.browse(zdir / "x.ome.zarr").list(page_size=100)
    print(
        "Listing inside x.ome.zarr: "
        + ", ".join(f"{e.name} ({e.kind})" for e in inner.entries)
        + "\n"
    )

    # ratios ---------------------------------------------------------------------------------------
    def med(results: list[dict[str, Any]], i: int) -> float:
        return median(results[i]["times"])

    table(
        [
            "claim",
            "bioimnb median ms",
            "target ms",
            "vs fsspec ls",
            "vs jupyter get()",
            "vs walk (find)",
            "vs scandir",
        ],
        [
            [
                f"A. first page of {args.files} files",
                ms(med(flat_results, 0)),
                1000,
                ratio(med(flat_results, 0), med(flat_results, 4)),
                ratio(med(flat_results, 0), med(flat_results, 5)),
                "-",
                ratio(med(flat_results, 0), med(flat_results, 3)),
            ],
            [
                f"B. folder with a {args.chunks}-chunk OME-Zarr",
                ms(med(zarr_results, 0)),
                500,
                ratio(med(zarr_results, 0), med(zarr_results, 2)),
                ratio(med(zarr_results, 0), med(zarr_results, 3)),
                ratio(med(zarr_results, 0), med(zarr_results, 4)),
                "-",
            ],
        ],
        "Ratios of medians (bioimnb / peer; < 1 means bioimnb is faster)",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
