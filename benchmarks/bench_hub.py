"""Benchmark: tile serving on a shared JupyterHub, 20 users at once through the hub's proxy.

Claim checked (from the project's hub issue): 20 users' worth of concurrent tile requests for
60 s through the hub proxy give no errors; p50/p99 tile latency is reported; the memory of every
user's server stays flat.

Set-up: a real JupyterHub with configurable-http-proxy on loopback, SimpleLocalProcessSpawner,
DummyAuthenticator (``tests/hub/hubkit.py``, the same as the hub tests), ``--users`` users, each
with their own single-user server (``jupyterhub-singleuser`` with the bioimnb server extension)
whose root holds their image: a 2-channel uint16 pyramidal OME-TIFF of ``--size`` px (256-px
tiles, zlib; a smooth pattern plus noise, so every tile differs), hard-linked into every home (one
file on disk, as a shared dataset would be; each server has its own caches).

Load: one client per user (a thread with a keep-alive HTTP connection and the user's own API
token) loops for ``--seconds`` over random tiles (random level, random tile of that level,
PNG) of their own image on ``/user/<name>/bioimnb/api/tile``, through the proxy, without
If-None-Match (every answer is a full tile).  Errors: any non-200 answer or exception.  RSS of
every user server (psutil: process and children) is sampled every 2 s; "flat" compares the
samples after the first quarter of the run (warm caches) with the last ones.

Peer (for the ratio): the same clients sent straight to each single-user server's own port (the
proxy's route target), ``--direct-seconds`` long: what the hub's proxy adds per tile.

Run:  .venv/bin/python benchmarks/bench_hub.py           (20 users, 60 s + 15 s direct)
      .venv/bin/python benchmarks/bench_hub.py --quick   (1 user, 4 s + 2 s)
"""

from __future__ import annotations

import contextlib
import http.client
import os
import random
import shutil
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "hub"))

from common import base_parser, ms, print_machine, progress, ratio, table  # noqa: E402
from hubkit import Hub, start_hub  # noqa: E402

IMAGE = "shared.ome.tif"


def write_image(path: Path, size: int) -> list[tuple[int, int]]:
    """A 2-channel uint16 pyramid (256-px tiles); returns the tile grid (columns, rows) per level."""
    import tifffile

    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    rng = np.random.default_rng(2026)
    base = 1000 + 800 * (np.sin(x / 97.0) + np.cos(y / 131.0))
    ch0 = (base + rng.normal(0, 40, (size, size))).clip(0, 65535).astype(np.uint16)
    ch1 = (base[::-1] + rng.normal(0, 40, (size, size))).clip(0, 65535).astype(np.uint16)
    levels = [np.stack([ch0, ch1])]
    while levels[-1].shape[-1] > 256:
        levels.append(np.ascontiguousarray(levels[-1][:, ::2, ::2]))
    opts: dict[str, Any] = {"tile": (256, 256), "compression": "zlib", "photometric": "minisblack"}
    with tifffile.TiffWriter(path, bigtiff=True, ome=True) as tw:
        tw.write(levels[0], subifds=len(levels) - 1, metadata={"axes": "CYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5}, **opts)
        for level in levels[1:]:
            tw.write(level, subfiletype=1, **opts)
    return [(-(-lv.shape[-1] // 256), -(-lv.shape[-2] // 256)) for lv in levels]


def rss_of(pid: int) -> int:
    import psutil

    proc = psutil.Process(pid)
    total = int(proc.memory_info().rss)
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += int(child.memory_info().rss)
    return total


class Client(threading.Thread):
    """One user's viewer: random tiles of their own image, one keep-alive connection."""

    def __init__(self, base_url: str, token: str, grid: list[tuple[int, int]], stop: threading.Event, seed: int) -> None:
        super().__init__(daemon=True)
        parts = urllib.parse.urlsplit(base_url)
        self.host, self.port, self.prefix = parts.hostname or "127.0.0.1", parts.port or 80, parts.path
        self.token, self.grid, self.stop = token, grid, stop
        self.rng = random.Random(seed)
        self.latencies: list[float] = []
        self.errors: list[str] = []

    def run(self) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        headers = {"Authorization": f"token {self.token}"}
        while not self.stop.is_set():
            level = self.rng.randrange(len(self.grid))
            cols, rows = self.grid[level]
            query = urllib.parse.urlencode(
                {"path": IMAGE, "level": level, "tx": self.rng.randrange(cols), "ty": self.rng.randrange(rows)}
            )
            t0 = time.perf_counter()
            try:
                conn.request("GET", f"{self.prefix}bioimnb/api/tile?{query}", headers=headers)
                resp = conn.getresponse()
                body = resp.read()
                elapsed = time.perf_counter() - t0
                if resp.status != 200 or not body.startswith(b"\x89PNG"):
                    self.errors.append(f"{resp.status} {body[:120]!r}")
                else:
                    self.latencies.append(elapsed)
            except (OSError, http.client.HTTPException) as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
                conn.close()
                conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        conn.close()


def load(urls: dict[str, str], hub: Hub, grid: list[tuple[int, int]], seconds: float, pids: dict[str, int]) -> dict[str, Any]:
    stop = threading.Event()
    clients = [Client(url, hub.token(user), grid, stop, seed=i) for i, (user, url) in enumerate(urls.items())]
    rss: dict[str, list[tuple[float, int]]] = {user: [] for user in urls}
    t0 = time.monotonic()
    for c in clients:
        c.start()
    while time.monotonic() - t0 < seconds:
        now = time.monotonic() - t0
        for user in urls:
            rss[user].append((now, rss_of(pids[user])))
        time.sleep(min(2.0, max(0.0, seconds - (time.monotonic() - t0))))
    stop.set()
    for c in clients:
        c.join(90)
    for user in urls:
        rss[user].append((time.monotonic() - t0, rss_of(pids[user])))
    lat = sorted(x for c in clients for x in c.latencies)
    errors = [e for c in clients for e in c.errors]
    return {"latencies": lat, "errors": errors, "seconds": time.monotonic() - t0, "rss": rss}


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, max(0, int(np.ceil(q / 100 * len(xs))) - 1))]


def mib(n: float) -> str:
    return f"{n / 2**20:.0f}"


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--direct-seconds", type=float, default=15.0)
    parser.add_argument("--size", type=int, default=8192, help="edge of the users' image (px)")
    parser.add_argument(
        "--memory-budget",
        type=int,
        default=None,
        metavar="MIB",
        help="BIOIMNB_MEMORY_BUDGET of every user server (default: the built-in 512 MiB)",
    )
    args = parser.parse_args()
    if args.quick:
        args.users, args.seconds, args.direct_seconds, args.size = 1, 4.0, 2.0, 1024
    work = args.workdir / "hub"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    print("# bench_hub: tile serving through a JupyterHub proxy\n")
    print_machine(args.workdir)
    progress(f"writing the {args.size} px image")
    image = work / IMAGE
    grid = write_image(image, args.size)
    users = [f"user{i:02d}" for i in range(args.users)]
    for user in users:
        home = work / "home" / user
        home.mkdir(parents=True)
        try:
            os.link(image, home / IMAGE)
        except OSError:
            shutil.copy(image, home / IMAGE)
    env = {"BIOIMNB_MEMORY_BUDGET": str(args.memory_budget * 2**20)} if args.memory_budget else {}
    budget = f"{args.memory_budget} MiB" if args.memory_budget else "512 MiB (default)"
    print(f"memory budget of each server's caches: {budget}\n")
    with start_hub(work, users, server_env=env) as hub:
        t0 = time.monotonic()
        for user in users:
            hub.spawn(user, timeout=300)
        spawn_s = time.monotonic() - t0
        progress(f"{len(users)} servers up in {spawn_s:.0f} s")
        pids = {user: hub.server_pid(user) for user in users}
        proxied = {user: hub.user_url(user) for user in users}
        direct = {user: hub.target(user) + f"user/{user}/" for user in users}
        progress(f"load through the proxy: {args.seconds:.0f} s")
        via = load(proxied, hub, grid, args.seconds, pids)
        progress(f"load straight to the servers: {args.direct_seconds:.0f} s")
        straight = load(direct, hub, grid, args.direct_seconds, pids)

    lat = via["latencies"]
    rows = []
    for name, run in (("through the hub proxy", via), ("straight to each server", straight)):
        xs = run["latencies"]
        rows.append(
            [
                name,
                len(xs),
                len(run["errors"]),
                f"{len(xs) / run['seconds']:.0f}",
                ms(pct(xs, 50)),
                ms(pct(xs, 90)),
                ms(pct(xs, 99)),
                ms(xs[-1] if xs else float("nan")),
            ]
        )
    table(
        ["route", "tiles", "errors", "tiles/s", "p50 ms", "p90 ms", "p99 ms", "max ms"],
        rows,
        title=f"{len(users)} users, one client each, random PNG tiles of a {args.size} px 2-channel pyramid",
    )
    if via["errors"] or straight["errors"]:
        print("first errors:", (via["errors"] + straight["errors"])[:5], "\n")

    # Memory per user server: after warm-up (first quarter) vs the end.
    mem_rows = []
    growth = []
    for user in users:
        series = via["rss"][user]
        warm = [v for t, v in series if t >= via["seconds"] / 4] or [series[-1][1]]
        start, end, peak = warm[0], series[-1][1], max(v for _, v in series)
        growth.append(end - start)
        mem_rows.append([user, mib(series[0][1]), mib(start), mib(peak), mib(end), f"{(end - start) / 2**20:+.0f}"])
    shown = mem_rows if len(mem_rows) <= 6 else mem_rows[:3] + [["...", "", "", "", "", ""]] + mem_rows[-3:]
    table(
        ["server", "RSS at start MiB", "after warm-up", "peak", "end", "end - warm-up MiB"],
        shown,
        title="Memory of each user server during the proxied run (RSS, process and children)",
    )
    series = via["rss"][users[0]]
    step = max(1, len(series) // 8)
    print(
        f"RSS of {users[0]} over the run (s: MiB): "
        + ", ".join(f"{t:.0f}: {mib(v)}" for t, v in series[::step] + [series[-1]])
    )
    print(
        f"RSS change after warm-up over all {len(users)} servers: median {np.median(growth) / 2**20:+.1f} MiB,"
        f" max {max(growth) / 2**20:+.1f} MiB; spawning all servers took {spawn_s:.0f} s\n"
    )
    table(
        ["measure", "value"],
        [
            ["p50 tile latency, proxy / direct", ratio(pct(lat, 50), pct(straight["latencies"], 50))],
            ["p99 tile latency, proxy / direct", ratio(pct(lat, 99), pct(straight["latencies"], 99))],
            ["tiles/s, proxy / direct", ratio(len(lat) / via["seconds"], len(straight["latencies"]) / straight["seconds"])],
        ],
        title="Ratios of medians (and of p99, throughput): through the hub proxy vs straight to the servers",
    )


if __name__ == "__main__":
    main()
