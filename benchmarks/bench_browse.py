"""Storage browser: first page of a 100,000-object S3 prefix, thumbnails from a pyramid's
coarsest level, and a 100,000-file local folder against JupyterLab's own contents API.

Measures (medians of ``--repeats`` runs in one process):

* S3 (a SeaweedFS prefix of ``--objects`` small objects plus an OME-TIFF pyramid): the time from
  ``Browser(location)`` (what ``bioimnb.browse(url)`` shows) until the first rows are listed and
  can be sent (``rows(0, 100)``), and until the whole prefix is listed; peer: ``s3fs ls`` of the
  prefix (every key at once, what a plain listing does before it can show anything).
* Thumbnails: :func:`bioimnb.core.tiles.thumbnail` of an OME-TIFF pyramid (coarsest level) on S3
  and locally; peer: reading level 0 and striding it down (what code without pyramids does).
* Local folder of ``--files`` files served by a real JupyterLab: bioimnb's ``api/ls`` first page
  (100 entries) against ``GET /api/contents/<folder>`` (every entry, Jupyter's file browser's
  request), both over HTTP with the same token, and the widget's first page in-process.

Targets stated by issue 11: first page < 1.5 s, thumbnail < 200 ms.  Numbers only; nothing
asserts a time.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "ui"))

from common import base_parser, median, ms, print_machine, progress, ratio, table, timed  # noqa: E402


def make_pyramid(path: Path) -> None:
    """A 2-channel 4096 x 4096 uint16 OME-TIFF pyramid (5 levels, 256-pixel tiles)."""
    if path.exists():
        return
    import numpy as np
    import tifffile

    rng = np.random.default_rng(0)
    base = (rng.random((2, 4096, 4096)) * 4000).astype(np.uint16)
    levels = [base]
    while levels[-1].shape[-1] > 256:
        levels.append(levels[-1][:, ::2, ::2])
    tmp = path.with_suffix(".partial")
    with tifffile.TiffWriter(tmp, bigtiff=True, ome=True) as tw:
        opts = {"tile": (256, 256), "compression": "zlib", "photometric": "minisblack"}
        tw.write(levels[0], subifds=len(levels) - 1, metadata={"axes": "CYX"}, **opts)
        for level in levels[1:]:
            tw.write(level, subfiletype=1, **opts)
    tmp.rename(path)


def make_folder(folder: Path, count: int) -> None:
    marker = folder / ".complete"
    if marker.exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"file-{i:06d}.txt").write_bytes(b"x" * (i % 100))
    marker.write_text(str(count))


def browser_first_page(url: str, **options: Any) -> tuple[float, float, int]:
    """(seconds to the first rows, seconds to the whole listing, entries) of a Browser."""
    from bioimnb.widgets.browser import browse

    t0 = time.perf_counter()
    widget = browse(url, **options).widget
    while not widget.rows(0, 100):
        if widget.error:
            raise RuntimeError(widget.error)
        if widget.panel.complete:
            break
        time.sleep(0.002)
    first = time.perf_counter() - t0
    widget.wait(3600)
    whole = time.perf_counter() - t0
    return first, whole, widget.panel.loaded


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=100_000, help="objects in the S3 prefix")
    parser.add_argument("--files", type=int, default=100_000, help="files in the local folder")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-s3", action="store_true", help="skip the SeaweedFS part")
    args = parser.parse_args(argv)
    if args.quick:
        args.objects, args.files, args.repeats = 2_000, 2_000, 1
    work: Path = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    print_machine(work)

    import tifffile

    import bioimnb.widgets.browser_ui  # noqa: F401 - imports outside the clock
    from bioimnb.core.tiles.thumbnail import thumbnail

    pyramid = work / "browse_pyramid_4096.ome.tif"
    make_pyramid(pyramid)
    thumbnail(pyramid)  # warm-up (imports, first use of the reader)

    def peer_thumb(path: Any, fs: Any = None) -> bytes:
        from bioimnb.core.tiles.render import encode_rgba

        if fs is None:
            full = tifffile.imread(path, level=0)
        else:
            with fs.open(path, "rb") as fh:
                full = tifffile.imread(fh, level=0)
        grey = (full[0, ::32, ::32] >> 4).astype("uint8")
        import numpy as np

        return encode_rgba(np.dstack([grey, grey, grey, np.full_like(grey, 255)]), "png")

    local_thumb = [timed(lambda: thumbnail(pyramid))[0] for _ in range(args.repeats * 3)]
    local_peer = [timed(lambda: peer_thumb(pyramid))[0] for _ in range(max(1, args.repeats))]
    rows = [
        ["bioimnb thumbnail, local OME-TIFF pyramid", ms(median(local_thumb)), "-"],
        ["peer: read level 0 + stride, local", ms(median(local_peer)), ratio(median(local_peer), median(local_thumb))],
    ]
    ratios: list[list[str]] = [["thumbnail local: level-0 peer / bioimnb", ratio(median(local_peer), median(local_thumb))]]

    if not args.no_s3:
        from servers import SeaweedS3, find_weed

        if find_weed() is None:
            progress("weed not found: S3 part skipped")
        else:
            s3 = SeaweedS3.start(Path(tempfile.mkdtemp(prefix="bench-browse-s3-")))
            try:
                bucket = s3.make_bucket("browse")
                fs = s3.fs
                dt_up, _ = timed(lambda: s3.put(bucket, {f"many/obj-{i:06d}.bin": b"x" * (i % 97 + 1) for i in range(args.objects)}))
                fs.put(str(pyramid), f"{bucket}/many/pyramid.ome.tif")
                progress(f"uploaded {args.objects + 1} objects in {dt_up:.0f} s")
                url = f"s3://{bucket}/many/"
                opts = s3.storage_options
                browser_first_page(url, **opts)  # warm-up: the first S3 connection
                firsts, wholes = [], []
                entries = 0
                for _ in range(args.repeats):
                    first, whole, entries = browser_first_page(url, **opts)
                    firsts.append(first)
                    wholes.append(whole)
                peer_ls = [timed(lambda: s3.fs.ls(f"{bucket}/many/", detail=True))[0] for _ in range(args.repeats)]
                s3_thumb = [timed(lambda: thumbnail(f"{url}pyramid.ome.tif", **opts))[0] for _ in range(args.repeats * 3)]
                s3_peer = [timed(lambda: peer_thumb(f"{bucket}/many/pyramid.ome.tif", s3.fs))[0] for _ in range(max(1, args.repeats))]
                table(
                    ["run (SeaweedFS prefix)", "ms (median)", "peer / bioimnb"],
                    [
                        [f"bioimnb browser: first rows of {entries:,} objects", ms(median(firsts)), "-"],
                        ["bioimnb browser: whole prefix listed", ms(median(wholes)), "-"],
                        ["peer: s3fs ls of the prefix (all keys)", ms(median(peer_ls)), ratio(median(peer_ls), median(firsts))],
                        ["bioimnb thumbnail of the pyramid on S3", ms(median(s3_thumb)), "-"],
                        ["peer: read level 0 + stride, S3", ms(median(s3_peer)), ratio(median(s3_peer), median(s3_thumb))],
                    ],
                    f"S3: {entries:,} objects (targets: first page < 1500 ms, thumbnail < 200 ms)",
                )
                ratios += [
                    ["S3 first page: s3fs ls / bioimnb first rows", ratio(median(peer_ls), median(firsts))],
                    ["thumbnail S3: level-0 peer / bioimnb", ratio(median(s3_peer), median(s3_thumb))],
                ]
            finally:
                s3.stop()

    table(["run (local)", "ms (median)", "peer / bioimnb"], rows, "Thumbnails of a 4096 x 4096 x 2 pyramid (5 levels)")

    # -- a local folder of N files: bioimnb's listing route vs Jupyter's contents API ----------
    from uilab import start_lab

    root = work / "browse_root"
    folder = root / f"flat_{args.files}"
    dt_make, _ = timed(lambda: make_folder(folder, args.files))
    progress(f"folder of {args.files} files ready ({dt_make:.0f} s)")
    first_local = [browser_first_page(str(folder))[0] for _ in range(args.repeats)]
    with tempfile.TemporaryDirectory() as tmp, start_lab(Path(tmp), root) as lab:

        def get(path: str) -> int:
            req = urllib.request.Request(lab.url + path, headers={"Authorization": f"token {lab.token}"})
            with urllib.request.urlopen(req, timeout=600) as resp:
                return len(resp.read())

        name = folder.name
        get(f"bioimnb/api/ls?path={name}&page_size=100")
        get(f"api/contents/{name}?content=1")
        ours = [timed(lambda: get(f"bioimnb/api/ls?path={name}&page_size=100"))[0] for _ in range(args.repeats)]
        theirs = [timed(lambda: get(f"api/contents/{name}?content=1"))[0] for _ in range(args.repeats)]
        size_ours = get(f"bioimnb/api/ls?path={name}&page_size=100")
        size_theirs = get(f"api/contents/{name}?content=1")
    table(
        ["run (local folder, HTTP to a real JupyterLab)", "ms (median)", "response bytes"],
        [
            ["bioimnb api/ls first page (100 entries)", ms(median(ours)), f"{size_ours:,}"],
            ["Jupyter GET /api/contents/<folder> (all entries)", ms(median(theirs)), f"{size_theirs:,}"],
            ["bioimnb browser widget: first rows (in the kernel)", ms(median(first_local)), "-"],
        ],
        f"Local folder of {args.files:,} files",
    )
    ratios.append(["local folder: Jupyter contents / bioimnb api/ls first page", ratio(median(theirs), median(ours))])
    table(["claim", "ratio"], ratios, "Ratios of medians")
    print(json.dumps({"first_rows_local_ms": median(first_local) * 1e3}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
