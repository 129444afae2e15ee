"""bioimnb scan of a 10,000-file tree (OME-TIFF pyramids, OME-Zarr, CZI, plain TIFF, non-images),
local and on a SeaweedFS prefix, against a loop that opens every file with ``bioio.BioImage``.

Measures, for ``bioimnb.scan(url, cache=False)`` (every image opened for its headers):
* files/s with a cold page cache (every file evicted with ``posix_fadvise(DONTNEED)`` first) and
  warm (the same scan again, page cache warm, facts cache off);
* files/s of a re-scan with the facts cache (nothing opened again);
* the share of the tree's bytes read (``/proc/self/io`` ``rchar`` delta; local only);
* the same for a SeaweedFS prefix holding the same files as objects (objects/s);
* the peer: ``for f in files: BioImage(f).dims`` (what a notebook user writes today; bioio
  raises for non-images, which the loop catches), run on every ``--peer-every``-th file of the
  sorted file list and reported as files/s.

"files" counts every file on storage (a zarr store's metadata and chunk files included): that is
what a tree of 10,000 files holds.  Entries (images + plain files) are reported too.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from common import (  # noqa: E402
    base_parser,
    evict,
    median,
    print_machine,
    progress,
    ratio,
    table,
    timed,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _rchar() -> int:
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("rchar:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def make_tree(root: Path, scale: float) -> dict[str, int]:
    """The mixed tree; returns counts by kind.  Reused when it exists."""
    marker = root / ".complete.json"
    if marker.exists():
        counts: dict[str, int] = json.loads(marker.read_text())
        return counts
    import numpy as np
    import tifffile
    import zarr

    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    n_ome, n_zarr, n_czi, n_tiff, n_other = (int(x * scale) for x in (1000, 250, 200, 1500, 5000))
    rng = np.random.default_rng(0)
    counts = {"ome-tiff": 0, "ome-zarr": 0, "czi": 0, "tiff": 0, "other": 0}
    base = rng.integers(0, 4000, (2, 512, 512), dtype=np.uint16)
    for i in range(n_ome):
        d = root / f"plate{i % 20:02d}" / "ome"
        d.mkdir(parents=True, exist_ok=True)
        with tifffile.TiffWriter(d / f"img{i:05d}.ome.tif", ome=True) as tw:
            tw.write(base, subifds=2, tile=(256, 256), compression="zlib",
                     metadata={"axes": "CYX", "PhysicalSizeX": 0.2, "PhysicalSizeY": 0.2})
            tw.write(base[:, ::2, ::2], subfiletype=1, tile=(256, 256), compression="zlib")
            tw.write(base[:, ::4, ::4], subfiletype=1, tile=(128, 128), compression="zlib")
        counts["ome-tiff"] += 1
    small = base[:, :256, :256]
    for i in range(n_zarr):
        d = root / f"plate{i % 20:02d}" / "zarr" / f"img{i:05d}.ome.zarr"
        g = zarr.open_group(str(d), mode="w", zarr_format=3)
        datasets = []
        for lvl in range(2):
            arr = small[:, :: 2**lvl, :: 2**lvl]
            g.create_array(str(lvl), data=arr, chunks=(1, 128, 128))
            datasets.append({"path": str(lvl), "coordinateTransformations": [{"type": "scale", "scale": [1, 0.2 * 2**lvl, 0.2 * 2**lvl]}]})
        g.attrs["ome"] = {"version": "0.5", "multiscales": [{"axes": [{"name": "c", "type": "channel"}, {"name": "y", "type": "space", "unit": "micrometer"}, {"name": "x", "type": "space", "unit": "micrometer"}], "datasets": datasets}]}
        counts["ome-zarr"] += 1
    czi_src = SHARED / "czi" / "100x100.czi"
    for i in range(n_czi if czi_src.exists() else 0):
        d = root / f"plate{i % 20:02d}" / "czi"
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy(czi_src, d / f"img{i:05d}.czi")
        counts["czi"] += 1
    flat = rng.integers(0, 255, (256, 256), dtype=np.uint8)
    for i in range(n_tiff):
        d = root / f"plate{i % 20:02d}" / "tif"
        d.mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(d / f"img{i:05d}.tif", flat)
        counts["tiff"] += 1
    for i in range(n_other):
        d = root / f"plate{i % 20:02d}" / "notes"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"note{i:05d}.{('txt', 'csv', 'json', 'md')[i % 4]}").write_text(f"measurement {i}\n" * 20)
        counts["other"] += 1
    marker.write_text(json.dumps(counts))
    return counts


def tree_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def run_scan(url: str, **kw: Any) -> tuple[float, list[Any], dict[str, Any]]:
    import bioimnb.core.facts as facts

    def go() -> tuple[list[Any], dict[str, Any]]:
        it = facts.scan(url, **kw)
        rows = list(it)
        return rows, it.summary()

    dt, (rows, summary) = timed(go)
    return dt, rows, summary


def peer_loop(paths: list[str], **kw: Any) -> tuple[float, int, int]:
    """(seconds, opened, failed) of ``BioImage(p).dims`` for each path."""
    import logging
    import warnings

    from bioio import BioImage

    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)
    opened = failed = 0

    def go() -> None:
        nonlocal opened, failed
        for p in paths:
            try:
                BioImage(p, **kw).dims  # noqa: B018 - what a user reads first
                opened += 1
            except Exception:  # noqa: BLE001 - non-images and unsupported files
                failed += 1

    dt, _ = timed(go)
    return dt, opened, failed


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="tree size factor (1.0: about 10,000 files)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peer-every", type=int, default=10, help="the peer opens every N-th file")
    parser.add_argument("--workers", type=int, default=None, help="default: scan's own (4 local, 16 remote)")
    parser.add_argument("--no-s3", action="store_true", help="skip the SeaweedFS part")
    args = parser.parse_args(argv)
    if args.quick:
        args.scale, args.repeats, args.peer_every = min(args.scale, 0.02), 1, 2
    work: Path = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    print_machine(work)

    import bioio  # noqa: F401

    import bioimnb.core.facts  # noqa: F401 - imports outside the clock, as the peer's are
    import bioimnb.core.images  # noqa: F401
    import bioimnb.core.readers.bioio_formats  # noqa: F401
    import bioimnb.core.readers.tiff  # noqa: F401
    import bioimnb.core.readers.zarr_ngff  # noqa: F401

    root = work / f"scan_tree_{args.scale:g}"
    dt_make, counts = timed(lambda: make_tree(root, args.scale))
    files = tree_files(root)
    total_bytes = sum(p.stat().st_size for p in files)
    progress(f"tree: {len(files)} files, {total_bytes / 2**20:.1f} MiB ({dt_make:.1f} s to make or reuse) {counts}")

    # Warm-up outside the clock (plugin discovery, first use of each reader), for both tools.
    for pat in ("*/ome/*.ome.tif", "*/zarr/*.ome.zarr", "*/czi/*.czi", "*/tif/*.tif"):
        for p in list(root.glob(pat))[:1]:
            bioimnb.core.facts.image_facts(str(p))
    cold, warm, cached, read_share = [], [], [], []
    entries = 0
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "facts.sqlite"
        for _ in range(args.repeats):
            evict([root])
            r0 = _rchar()
            dt, rows, summary = run_scan(str(root), cache=False, workers=args.workers)
            read_share.append((_rchar() - r0) / total_bytes)
            cold.append(dt)
            entries = len(rows)
            dt, rows, _ = run_scan(str(root), cache=False, workers=args.workers)
            warm.append(dt)
            run_scan(str(root), cache=cache, workers=args.workers)  # fill the facts cache
            dt, rows2, _ = run_scan(str(root), cache=cache, workers=args.workers)
            cached.append(dt)
            assert [r.to_dict() for r in rows2] == [r.to_dict() for r in rows]
    errors = summary["errors"]
    progress(f"bioimnb: cold {median(cold):.2f} s, warm {median(warm):.2f} s, cached {median(cached):.2f} s")

    sample = [str(p) for p in files[:: args.peer_every]]
    peer_loop([str(next(root.glob(pat))) for pat in ("*/ome/*.ome.tif", "*/czi/*.czi", "*/tif/*.tif") if any(root.glob(pat))])
    evict([root])
    peer_cold, p_ok, p_fail = peer_loop(sample)
    peer_warm, _, _ = peer_loop(sample)
    progress(f"peer (BioImage on {len(sample)} files): cold {peer_cold:.2f} s, warm {peer_warm:.2f} s")

    n = len(files)
    rows_out = [
        ["bioimnb scan, cold page cache", f"{median(cold):.2f}", f"{n / median(cold):,.0f}", f"{entries / median(cold):,.0f}"],
        ["bioimnb scan, warm page cache", f"{median(warm):.2f}", f"{n / median(warm):,.0f}", f"{entries / median(warm):,.0f}"],
        ["bioimnb re-scan, facts cache", f"{median(cached):.2f}", f"{n / median(cached):,.0f}", f"{entries / median(cached):,.0f}"],
        [f"BioImage loop, cold ({len(sample)} files)", f"{peer_cold:.2f}", f"{len(sample) / peer_cold:,.0f}", "-"],
        [f"BioImage loop, warm ({len(sample)} files)", f"{peer_warm:.2f}", f"{len(sample) / peer_warm:,.0f}", "-"],
    ]
    table(["run (local)", "s (median)", "files/s", "entries/s"], rows_out,
          f"Local tree: {n} files, {entries} entries, {total_bytes / 2**20:.0f} MiB; {errors} entries with errors; "
          f"bytes read by a cold scan: {100 * median(read_share):.2f} % of the tree; peer opened {p_ok}, failed {p_fail}")

    s3_rows: list[list[str]] = []
    s3_cold = s3_cached = float("nan")
    peer_s3 = float("nan")
    n_s3 = 0
    if not args.no_s3:
        from servers import SeaweedS3, find_weed

        if find_weed() is None:
            progress("weed not found: S3 part skipped")
        else:
            s3dir = Path(tempfile.mkdtemp(prefix="bench-scan-s3-"))
            s3 = SeaweedS3.start(s3dir)
            try:
                bucket = s3.make_bucket("scan")
                fs = s3.fs
                dt_up, _ = timed(lambda: fs.put(str(root) + "/", f"{bucket}/tree/", recursive=True))
                n_s3 = len(fs.find(f"{bucket}/tree"))
                progress(f"uploaded {n_s3} objects in {dt_up:.1f} s")
                url = f"s3://{bucket}/tree"
                with tempfile.TemporaryDirectory() as tmp:
                    c_runs, k_runs = [], []
                    for _ in range(args.repeats):
                        dt, rows, _ = run_scan(url, cache=False, workers=args.workers, **s3.storage_options)
                        c_runs.append(dt)
                        run_scan(url, cache=Path(tmp) / "f.sqlite", workers=args.workers, **s3.storage_options)
                        dt, _, _ = run_scan(url, cache=Path(tmp) / "f.sqlite", workers=args.workers, **s3.storage_options)
                        k_runs.append(dt)
                s3_cold, s3_cached = median(c_runs), median(k_runs)
                keys = sorted(fs.find(f"{bucket}/tree"))[:: args.peer_every]
                opts = {"fs_kwargs": {"key": s3.key, "secret": s3.secret, "endpoint_url": s3.endpoint_url}}
                peer_s3, _, _ = peer_loop([f"s3://{k}" for k in keys], **opts)
                s3_rows = [
                    ["bioimnb scan (no facts cache)", f"{s3_cold:.2f}", f"{n_s3 / s3_cold:,.0f}"],
                    ["bioimnb re-scan, facts cache", f"{s3_cached:.2f}", f"{n_s3 / s3_cached:,.0f}"],
                    [f"BioImage loop ({len(keys)} objects)", f"{peer_s3:.2f}", f"{len(keys) / peer_s3:,.0f}"],
                ]
                table(["run (SeaweedFS prefix)", "s (median)", "objects/s"], s3_rows, f"SeaweedFS prefix: {n_s3} objects")
                peer_s3 = len(keys) / peer_s3
            finally:
                s3.stop()
                shutil.rmtree(s3dir, ignore_errors=True)

    peer_rate_cold = len(sample) / peer_cold
    peer_rate_warm = len(sample) / peer_warm
    ratios = [
        ["local cold, files/s vs BioImage loop cold", ratio(n / median(cold), peer_rate_cold)],
        ["local warm, files/s vs BioImage loop warm", ratio(n / median(warm), peer_rate_warm)],
        ["local re-scan (facts cache) vs BioImage loop warm", ratio(n / median(cached), peer_rate_warm)],
    ]
    if s3_rows:
        ratios.append(["S3 scan, objects/s vs BioImage loop", ratio(n_s3 / s3_cold, peer_s3)])
        ratios.append(["S3 re-scan (facts cache) vs BioImage loop", ratio(n_s3 / s3_cached, peer_s3)])
    table(["comparison", "ratio"], ratios, "Ratios of medians (higher: bioimnb faster)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
