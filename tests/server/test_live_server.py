"""The hostile-files set against a real ``jupyter server`` process, as an attacker on a shared hub
would try it: ``base_url=/user/alice/``, a token, a confined root.  Every hostile request gets a
4xx within seconds, nothing outside the root is read, the normal image keeps being answered,
the server's memory stays within its budget, and it shuts down promptly afterwards."""

from __future__ import annotations

import json
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import fixtures
import hostile
import psutil
import pytest
from servers import JupyterServer

from bioimnb.core.limits import limits

ROUTES: list[tuple[str, dict[str, Any]]] = [
    ("api/image", {}),
    ("api/tile", {"level": 0, "tx": 0, "ty": 0}),
    ("api/values", {"x": 1, "y": 1}),
    ("api/histogram", {"channel": 0}),
]


@pytest.fixture(scope="module")
def pyramid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("live")
    fixtures.ome_tiff_subifd(d / "p.ome.tif")
    return d / "p.ome.tif"


def _hostile_tree(root: Path, outside: Path, pyramid: Path) -> list[str]:
    """The hostile images under ``root`` (names), plus ``p.ome.tif``, a normal one."""
    shutil.copy(pyramid, root / "p.ome.tif")
    hostile.zarr_chunk_linked_out(root / "chunk-link.ome.zarr", outside)
    hostile.zarr_array_linked_out(root / "array-link.ome.zarr", outside)
    hostile.ome_tiff_companion_out(root / "companion.ome.tif", root.parent / "outside.ome.tif", "../outside.ome.tif")
    hostile.zarr_zero_chunks(root / "zero-chunks.ome.zarr")
    hostile.zlib_bomb_tiff(root / "zlib-bomb.tif")
    hostile.zarr_zstd_bomb(root / "zstd-bomb.ome.zarr")
    hostile.fifo(root / "fifo.ome.tif")
    hostile.fifo(root / "fifo-meta.ome.zarr" / "zarr.json")
    (root / "loop.ome.tif").symlink_to("loop.ome.tif")
    return [
        "chunk-link.ome.zarr",
        "array-link.ome.zarr",
        "companion.ome.tif",
        "zero-chunks.ome.zarr",
        "zlib-bomb.tif",
        "zstd-bomb.ome.zarr",
        "fifo.ome.tif",
        "fifo-meta.ome.zarr",
        "loop.ome.tif",
    ]


class _PeakRSS:
    """Samples a process's resident memory every 20 ms in a thread; ``peak`` in bytes."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.Error:
                return

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(5)
        return self.peak


def test_hostile_files_against_a_real_server(tmp_path, pyramid):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    names = _hostile_tree(root, outside, pyramid)
    server = JupyterServer(root, tmp_path / "work", base_url="/user/alice/")
    with server:
        # Warm up: the normal image opened once (imports and first open out of the way).
        assert server.get("api/tile", path="p.ome.tif", level=0, tx=0, ty=0)[0] == 200
        baseline = psutil.Process(server.process.pid).memory_info().rss  # type: ignore[union-attr]
        sampler = _PeakRSS(server.process.pid)  # type: ignore[union-attr]

        def hostile_request(job: tuple[str, str, dict[str, Any]]) -> tuple[str, str, int, bytes, float]:
            name, route, extra = job
            start = time.monotonic()
            status, _, body = server.get(route, timeout=60, path=name, **extra)
            return name, route, status, body, time.monotonic() - start

        def normal_tiles() -> list[float]:
            times = []
            for i in range(12):
                start = time.monotonic()
                status, _, body = server.get("api/tile", timeout=60, path="p.ome.tif", level=0, tx=i % 4, ty=i % 3, ch=f"0:FF0000:0:{1000 + i}")
                assert status == 200 and body.startswith(b"\x89PNG")
                times.append(time.monotonic() - start)
            return times

        jobs = [(name, route, extra) for _ in range(2) for name in names for route, extra in ROUTES]
        with ThreadPoolExecutor(8) as clients:
            normal = clients.submit(normal_tiles)
            results = list(clients.map(hostile_request, jobs))
            normal_times = normal.result()
        peak = sampler.stop()
        seconds = server.stop()
        log = server.log_tail(400)

    for name, route, status, body, elapsed in results:
        assert 400 <= status < 500, (name, route, status, body[:300])
        error = json.loads(body)["error"]
        assert error.startswith(f"{name}: ") and "\n" not in error, error
        assert str(root) not in error
        assert hostile.CANARY_MARK not in body
        assert elapsed < 30, (name, route, elapsed)
    slowest = max(r[4] for r in results)
    budget = limits().memory_budget
    print(
        f"\n{len(results)} hostile requests: slowest {slowest:.2f} s; "
        f"12 normal tiles meanwhile: slowest {max(normal_times):.2f} s; "
        f"server RSS {baseline / 2**20:.0f} MiB -> peak {peak / 2**20:.0f} MiB (budget {budget / 2**20:.0f} MiB); "
        f"SIGTERM to exit {seconds:.2f} s"
    )
    assert max(normal_times) < 10
    assert peak - baseline < budget, (baseline, peak)
    assert seconds < 10, log
    unexpected = [line for line in log.splitlines() if "bioimnb: reading" in line]
    print("\n".join(unexpected) or "no unexpected reader exceptions in the server log")


def test_a_real_memory_error_is_a_400_and_the_server_carries_on(tmp_path, pyramid):
    # The decode limit lifted, the 1 TB strip reaches the allocator; an 8 GiB address-space
    # limit on the server makes that a MemoryError on any machine (never the OOM killer).
    import resource

    def address_space() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))

    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(pyramid, root / "p.ome.tif")
    hostile.zlib_bomb_tiff(root / "bomb.tif")
    env = {"BIOIMNB_MAX_DECODE_BYTES": str(10**13)}
    with JupyterServer(root, tmp_path / "work", env=env, preexec=address_space) as server:
        for route, extra in ROUTES[1:]:
            status, headers, body = server.get(route, path="bomb.tif", **extra)
            assert status == 400, (route, status, body[:300])
            error = json.loads(body)["error"]
            assert error.startswith("bomb.tif: ") and "memory" in error.lower() and "\n" not in error, error
        status, _, body = server.get("api/tile", path="p.ome.tif", level=0, tx=0, ty=0)
        assert status == 200 and body.startswith(b"\x89PNG")
