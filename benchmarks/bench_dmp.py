"""A data management plan for a 10,000-file tree (bench_scan's mixed tree), local and on a
SeaweedFS prefix, against a naive script that opens every image with ``bioio.BioImage``.

Measures the time to a complete plan: ``bioimnb.dmp(url)`` (scan + aggregation) and then its
Markdown, HTML (with both charts) and validated maDMP JSON:
* cold: page cache evicted (``posix_fadvise(DONTNEED)``) and no facts cache: every image opened;
* from the scan's cache: the facts cache already filled by an earlier scan (nothing opened);
* the same two on a SeaweedFS prefix holding the same files as objects.
The peer is what a notebook user writes to get the same numbers today: walk the tree, ``stat``
every file, ``BioImage(path)`` every file for dims/dtype (catching the non-images), tally counts,
bytes and formats per extension.  It runs on every ``--peer-every``-th file; its per-file rate is
compared with bioimnb's.  Library imports (bioio, jsonschema, matplotlib) happen outside the clock
for both.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from bench_scan import make_tree, tree_files  # noqa: E402 - the same tree as the scan benchmark
from common import base_parser, evict, median, print_machine, progress, ratio, table, timed  # noqa: E402


def full_plan(url: str, **kw: Any) -> tuple[float, float, Any]:
    """(seconds to the plan's facts, seconds for all renderings, plan)."""
    from bioimnb.core.dmp import dmp

    dt_scan, plan = timed(lambda: dmp(url, **kw))

    def render() -> None:
        plan.markdown()
        plan.html()
        plan.madmp()

    dt_render, _ = timed(render)
    return dt_scan, dt_render, plan


def naive(paths: list[str], **kw: Any) -> tuple[float, dict[str, Any]]:
    """The naive script: stat + BioImage per file, tallies per extension."""
    import logging
    import warnings

    from bioio import BioImage

    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)
    tally: dict[str, Any] = {"bytes": 0, "images": 0, "failed": 0, "formats": Counter()}
    fs = None
    if paths and paths[0].startswith("s3://"):
        import s3fs

        fs = s3fs.S3FileSystem(**kw.get("fs_kwargs", {}))

    def go() -> None:
        for p in paths:
            tally["bytes"] += fs.size(p) if fs is not None else os.path.getsize(p)
            try:
                img = BioImage(p, **kw)
                img.dims  # noqa: B018 - shape, as the plan reports it
                img.dtype  # noqa: B018
                tally["images"] += 1
                tally["formats"][Path(p).suffix.lower()] += 1
            except Exception:  # noqa: BLE001 - non-images and unsupported files
                tally["failed"] += 1

    dt, _ = timed(go)
    return dt, tally


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="tree size factor (1.0: about 10,000 files)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peer-every", type=int, default=10, help="the naive script opens every N-th file")
    parser.add_argument("--no-s3", action="store_true", help="skip the SeaweedFS part")
    args = parser.parse_args(argv)
    if args.quick:
        args.scale, args.repeats, args.peer_every = min(args.scale, 0.02), 1, 5
    work: Path = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    print_machine(work)

    # Imports outside the clock, for both sides.
    import bioio  # noqa: F401
    import jsonschema  # noqa: F401 - 3 s to import here (rfc3987-syntax builds a grammar)
    import matplotlib.figure  # noqa: F401

    import bioimnb.core.dmp  # noqa: F401
    import bioimnb.core.facts

    root = work / f"scan_tree_{args.scale:g}"
    dt_make, counts = timed(lambda: make_tree(root, args.scale))
    files = tree_files(root)
    n = len(files)
    total = sum(p.stat().st_size for p in files)
    progress(f"tree: {n} files, {total / 2**20:.1f} MiB ({dt_make:.1f} s to make or reuse) {counts}")
    for pat in ("*/ome/*.ome.tif", "*/zarr/*.ome.zarr", "*/czi/*.czi", "*/tif/*.tif"):
        for p in list(root.glob(pat))[:1]:
            bioimnb.core.facts.image_facts(str(p))  # first use of each reader, outside the clock
    full_plan(str(next(root.glob("*/tif"))), cache=False)  # first charts and schema, outside the clock

    cold_s, cold_r, cached_s, cached_r = [], [], [], []
    plan = None
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "facts.sqlite"
        for _ in range(args.repeats):
            evict([root])
            s, r, plan = full_plan(str(root), cache=False)
            cold_s.append(s)
            cold_r.append(r)
            full_plan(str(root), cache=cache)  # fill the facts cache
            s, r, again = full_plan(str(root), cache=cache)
            cached_s.append(s)
            cached_r.append(r)
            assert again.facts.cached > 0 and again.facts.bytes == plan.facts.bytes
    assert plan is not None
    f = plan.facts
    assert f.bytes == total and f.files == n, (f.bytes, total, f.files, n)
    cold = median([a + b for a, b in zip(cold_s, cold_r, strict=True)])
    cached = median([a + b for a, b in zip(cached_s, cached_r, strict=True)])
    progress(f"bioimnb plan: cold {cold:.2f} s, from the cache {cached:.2f} s")

    sample = [str(p) for p in files[:: args.peer_every]]
    naive(sample[:5])
    evict([root])
    peer_dt, tally = naive(sample)
    peer_rate = len(sample) / peer_dt
    progress(f"naive script on {len(sample)} files: {peer_dt:.2f} s ({tally['images']} opened, {tally['failed']} failed)")
    rows = [
        ["bioimnb plan, cold (no facts cache)", f"{median(cold_s):.2f}", f"{median(cold_r):.2f}", f"{cold:.2f}", f"{n / cold:,.0f}"],
        ["bioimnb plan, from the scan's cache", f"{median(cached_s):.2f}", f"{median(cached_r):.2f}", f"{cached:.2f}", f"{n / cached:,.0f}"],
        [f"naive BioImage script, cold ({len(sample)} files)", f"{peer_dt:.2f}", "-", f"{peer_dt:.2f}", f"{peer_rate:,.0f}"],
        ["naive script extrapolated to the tree", "-", "-", f"{n / peer_rate:.1f}", f"{peer_rate:,.0f}"],
    ]
    table(
        ["run (local)", "scan + aggregate s", "render s", "total s (median)", "files/s"],
        rows,
        f"Local tree: {n} files, {f.entries} entries, {f.images} images, {total / 2**20:.0f} MiB; "
        f"render = Markdown + HTML with 2 charts + validated maDMP",
    )
    ratios = [
        ["local cold plan vs naive script (files/s)", ratio(n / cold, peer_rate)],
        ["local plan from the cache vs naive script (files/s)", ratio(n / cached, peer_rate)],
    ]

    if not args.no_s3:
        from servers import SeaweedS3, find_weed

        if find_weed() is None:
            progress("weed not found: S3 part skipped")
        else:
            s3dir = Path(tempfile.mkdtemp(prefix="bench-dmp-s3-"))
            s3 = SeaweedS3.start(s3dir)
            try:
                bucket = s3.make_bucket("dmp")
                fs = s3.fs
                dt_up, _ = timed(lambda: fs.put(str(root) + "/", f"{bucket}/tree/", recursive=True))
                n_s3 = len(fs.find(f"{bucket}/tree"))
                progress(f"uploaded {n_s3} objects in {dt_up:.1f} s")
                url = f"s3://{bucket}/tree/"
                so = {"storage_options": s3.storage_options}
                c_runs, k_runs = [], []
                with tempfile.TemporaryDirectory() as tmp:
                    for _ in range(args.repeats):
                        s, r, p3 = full_plan(url, cache=False, **so)
                        c_runs.append(s + r)
                        full_plan(url, cache=Path(tmp) / "f.sqlite", **so)
                        s, r, _ = full_plan(url, cache=Path(tmp) / "f.sqlite", **so)
                        k_runs.append(s + r)
                assert p3.facts.bytes == total, (p3.facts.bytes, total)
                keys = [f"s3://{k}" for k in sorted(fs.find(f"{bucket}/tree"))[:: args.peer_every]]
                opts = {"fs_kwargs": {"key": s3.key, "secret": s3.secret, "endpoint_url": s3.endpoint_url}}
                peer_s3_dt, _ = naive(keys, **opts)
                peer_s3 = len(keys) / peer_s3_dt
                table(
                    ["run (SeaweedFS prefix)", "total s (median)", "objects/s"],
                    [
                        ["bioimnb plan, no facts cache", f"{median(c_runs):.2f}", f"{n_s3 / median(c_runs):,.0f}"],
                        ["bioimnb plan, from the scan's cache", f"{median(k_runs):.2f}", f"{n_s3 / median(k_runs):,.0f}"],
                        [f"naive BioImage script ({len(keys)} objects)", f"{peer_s3_dt:.2f}", f"{peer_s3:,.0f}"],
                        ["naive script extrapolated to the prefix", f"{n_s3 / peer_s3:.1f}", f"{peer_s3:,.0f}"],
                    ],
                    f"SeaweedFS prefix: {n_s3} objects",
                )
                ratios.append(["S3 plan (no facts cache) vs naive script (objects/s)", ratio(n_s3 / median(c_runs), peer_s3)])
                ratios.append(["S3 plan from the cache vs naive script (objects/s)", ratio(n_s3 / median(k_runs), peer_s3)])
            finally:
                s3.stop()
                shutil.rmtree(s3dir, ignore_errors=True)
    table(["comparison", "ratio"], ratios, "Ratios of medians (higher: bioimnb faster)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
