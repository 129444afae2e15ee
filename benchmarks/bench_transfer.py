"""bioimnb transfer, local -> SeaweedFS S3 on loopback with checksums on, against ``rclone copy
--checksum`` (Debian's rclone) and s3fs ``put`` on the same data.

Measures, each run into a fresh prefix of one bucket:
* 10,000 small files (4 KiB each, in 10 folders): files/s and MiB/s;
* one 1 GiB file (random bytes): MiB/s;
* peak RSS (psutil, sampled every 10 ms) while bioimnb and rclone copy a 10 GiB sparse file: flat
  memory means it does not grow with the file.

bioimnb computes a SHA-256 per file while streaming and checks the upload (the ETag against an
MD5 of the same stream, single PUT or multipart); rclone computes an MD5 and compares it to the
ETag (``--checksum`` makes it compare checksums rather than times); s3fs ``put`` checks nothing.
Before every run the source is evicted from the page cache (each tool reads it from disk), and
the order of the tools rotates from round to round.  Each tool uses its defaults for parallelism (bioimnb 16 streams, rclone 4 transfers, s3fs its
asyncio batch).  Ratios are of median throughputs (higher: bioimnb faster).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from common import base_parser, evict, median, print_machine, progress, ratio, table, timed  # noqa: E402

RCLONE = shutil.which("rclone") or "/usr/bin/rclone"


def make_small(root: Path, n: int, size: int = 4096) -> Path:
    marker = root / ".complete"
    if marker.exists():
        return root
    if root.exists():
        shutil.rmtree(root)
    per = max(1, n // 10)
    for i in range(n):
        d = root / f"d{i // per:02d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:05d}.dat").write_bytes(os.urandom(size))
    marker.write_text("ok")
    return root


def make_large(path: Path, size: int) -> Path:
    if path.exists() and path.stat().st_size == size:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    block = os.urandom(2**20)
    with open(path, "wb") as fh:
        left = size
        i = 0
        while left > 0:
            chunk = (block[i % 4096 :] + block[: i % 4096])[: min(left, 2**20)]
            fh.write(chunk)
            left -= len(chunk)
            i += 1
    return path


def rclone_env(s3: Any) -> dict[str, str]:
    # AWS_CA_BUNDLE makes rclone's S3 client replace its HTTP transport, which it then cannot
    # (rclone 1.60: "LoadCustomCABundleError"); the endpoint is plain HTTP on loopback anyway.
    base = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    return {
        **base,
        "RCLONE_CONFIG_SW_TYPE": "s3",
        "RCLONE_CONFIG_SW_PROVIDER": "Other",
        "RCLONE_CONFIG_SW_ACCESS_KEY_ID": s3.key,
        "RCLONE_CONFIG_SW_SECRET_ACCESS_KEY": s3.secret,
        "RCLONE_CONFIG_SW_ENDPOINT": s3.endpoint_url,
        "RCLONE_CONFIG_SW_FORCE_PATH_STYLE": "true",
    }


def peak_rss(cmd: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """(seconds, peak RSS in bytes, stdout) of a subprocess, sampled every 10 ms."""
    import psutil

    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ps = psutil.Process(proc.pid)
    peak = 0
    out: list[str] = []

    def drain() -> None:
        assert proc.stdout is not None
        out.append(proc.stdout.read())

    t = threading.Thread(target=drain)
    t.start()
    while proc.poll() is None:
        try:
            peak = max(peak, ps.memory_info().rss)
        except psutil.Error:
            break
        time.sleep(0.01)
    proc.wait()
    t.join()
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed: {proc.stderr.read() if proc.stderr else ''}")
    return dt, peak, "".join(out)


BIOIMNB_ONE = textwrap.dedent(
    """
    import json, sys
    from bioimnb.core.transfer import transfer
    r = transfer(sys.argv[1], sys.argv[2], **json.loads(sys.argv[3]))
    assert r.ok, r.summary()
    print(json.dumps(r.to_dict()))
    """
)


def memory_runs(work: Path, gib: float, cache: Path) -> list[list[str]]:
    """Peak RSS of bioimnb and rclone copying one sparse file of ``gib`` GiB to S3, each into a
    SeaweedFS of its own that is deleted afterwards (10 GiB of zeros stored twice would be 20 GiB
    of disk)."""
    from servers import SeaweedS3

    huge = work / "transfer_huge.sparse"
    size = int(gib * 2**30)
    with open(huge, "wb") as fh:
        fh.truncate(size)
    script = work / "transfer_one.py"
    script.write_text(BIOIMNB_ONE)
    rows = []
    try:
        for tool in ("bioimnb transfer", "rclone copyto --checksum"):
            s3dir = Path(tempfile.mkdtemp(prefix="bench-transfer-mem-"))
            s3 = SeaweedS3.start(s3dir)
            try:
                bucket = s3.make_bucket("mem")
                if tool.startswith("bioimnb"):
                    benv = {**os.environ, "BIOIMNB_CACHE_DIR": str(cache)}
                    cmd = [sys.executable, str(script), str(huge), f"s3://{bucket}/huge", json.dumps(s3.storage_options)]
                    dt, peak, _ = peak_rss(cmd, benv)
                else:
                    dt, peak, _ = peak_rss([RCLONE, "copyto", "--checksum", str(huge), f"sw:{bucket}/huge"], rclone_env(s3))
            finally:
                s3.stop()
                shutil.rmtree(s3dir, ignore_errors=True)
            rows.append([tool, f"{size / 2**30:.2f}", f"{peak / 2**20:.0f}", f"{size / 2**20 / dt:.0f}"])
            progress(f"huge: {tool} {dt:.1f} s, peak RSS {peak / 2**20:.0f} MiB")
        # the bioimnb process at rest (imports done, nothing copied), for comparison
        _, idle, _ = peak_rss([sys.executable, "-c", "import bioimnb.core.transfer, s3fs, time; time.sleep(1.5)"], dict(os.environ))
        rows.append(["python -c 'import bioimnb.core.transfer, s3fs' (idle)", "0", f"{idle / 2**20:.0f}", "-"])
    finally:
        huge.unlink()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000, help="small files (4 KiB each)")
    parser.add_argument("--large-mib", type=int, default=1024, help="size of the large file")
    parser.add_argument("--huge-gib", type=float, default=10.0, help="size of the sparse file of the memory run (0: skip)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", choices=["small", "large", "both"], default="both", help="which throughput runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.files, args.large_mib, args.huge_gib, args.repeats = 200, 32, 0.0625, 1
    work: Path = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    print_machine(work)
    progress(f"rclone: {subprocess.run([RCLONE, 'version'], capture_output=True, text=True).stdout.splitlines()[0]}")

    small = make_small(work / f"transfer_small_{args.files}", args.files)
    large = make_large(work / f"transfer_large_{args.large_mib}.raw", args.large_mib * 2**20)
    small_bytes = sum(p.stat().st_size for p in small.rglob("*.dat"))

    from servers import SeaweedS3

    s3dir = Path(tempfile.mkdtemp(prefix="bench-transfer-s3-"))
    cache = Path(tempfile.mkdtemp(prefix="bench-transfer-cache-"))
    os.environ["BIOIMNB_CACHE_DIR"] = str(cache)
    s3 = SeaweedS3.start(s3dir)
    results: dict[str, dict[str, list[float]]] = {}
    mem_rows: list[list[str]] = []
    try:
        bucket = s3.make_bucket("bench")
        fs = s3.fs
        so = s3.storage_options
        env = rclone_env(s3)
        from bioimnb.core.transfer import transfer

        counter = iter(range(10**6))

        def bioimnb_run(src: Path) -> float:
            prefix = f"bio{next(counter)}"
            dt, r = timed(lambda: transfer(src, f"s3://{bucket}/{prefix}", **so))
            assert r.ok and r.copied == r.files, r.summary()
            return dt

        def rclone_run(src: Path) -> float:
            prefix = f"rcl{next(counter)}"
            target = f"sw:{bucket}/{prefix}" + ("" if src.is_dir() else f"/{src.name}")
            cmd = [RCLONE, "copy" if src.is_dir() else "copyto", "--checksum", str(src), target]
            dt, proc = timed(lambda: subprocess.run(cmd, env=env, capture_output=True, text=True))
            assert proc.returncode == 0, proc.stderr
            return dt

        def s3fs_run(src: Path) -> float:
            prefix = f"s3fs{next(counter)}"
            if src.is_dir():
                dt, _ = timed(lambda: fs.put(str(src) + "/", f"{bucket}/{prefix}/", recursive=True))
            else:
                dt, _ = timed(lambda: fs.put_file(str(src), f"{bucket}/{prefix}/{src.name}"))
            return dt

        tools = {"bioimnb transfer": bioimnb_run, "rclone copy --checksum": rclone_run, "s3fs put": s3fs_run}
        # warm-up outside the clock: imports, connections, the rclone binary in the page cache
        tiny = work / "transfer_tiny"
        tiny.mkdir(exist_ok=True)
        (tiny / "x").write_bytes(b"x")
        for fn in tools.values():
            fn(tiny)
        for label, src in (("small", small), ("large", large)):
            if args.data not in (label, "both"):
                continue
            for rnd in range(args.repeats):
                names = list(tools)
                names = names[rnd % len(names) :] + names[: rnd % len(names)]  # each tool goes first once
                for name in names:  # interleaved, so drifts hit every tool alike
                    fn = tools[name]
                    evict([src])  # every run reads the source from disk, as a fresh acquisition is
                    dt = fn(src)
                    results.setdefault(label, {}).setdefault(name, []).append(dt)
                    progress(f"{label}: {name} {dt:.2f} s")

    finally:
        s3.stop()
        shutil.rmtree(s3dir, ignore_errors=True)
    if args.huge_gib > 0:
        mem_rows = memory_runs(work, args.huge_gib, cache)
    shutil.rmtree(cache, ignore_errors=True)

    rows = []
    rates: dict[str, dict[str, float]] = {}
    for label, by_tool in results.items():
        nbytes = small_bytes if label == "small" else args.large_mib * 2**20
        for name, times in by_tool.items():
            m = median(times)
            rates.setdefault(label, {})[name] = nbytes / m
            files_s = f"{args.files / m:,.0f}" if label == "small" else "-"
            rows.append([label, name, f"{m:.2f}", ", ".join(f"{t:.2f}" for t in times), f"{nbytes / 2**20 / m:.1f}", files_s])
    table(
        ["data", "tool", "s (median)", "runs", "MiB/s", "files/s"],
        rows,
        f"Local -> SeaweedFS S3 (loopback): {args.files} files of 4 KiB ({small_bytes / 2**20:.0f} MiB); one {args.large_mib} MiB file",
    )
    if mem_rows:
        table(["process", "file GiB", "peak RSS MiB", "MiB/s"], mem_rows, "Peak RSS while copying one sparse file to S3")
    ratios = []
    for label in rates:
        bio = rates[label]["bioimnb transfer"]
        ratios.append([f"{label}: bioimnb vs rclone copy --checksum", ratio(bio, rates[label]["rclone copy --checksum"])])
        ratios.append([f"{label}: bioimnb vs s3fs put", ratio(bio, rates[label]["s3fs put"])])
    table(["comparison (throughput)", "ratio"], ratios, "Ratios of medians (higher: bioimnb faster)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
