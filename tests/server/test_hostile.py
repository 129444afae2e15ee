"""Hostile files and requests against the REST routes: nothing outside the root is read, every
failure is a 4xx with one JSON line (never a 500), a FIFO never hangs a route, and a slow image
never keeps the other images from being answered."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import fixtures
import hostile
import pytest
from tornado.httpclient import HTTPResponse

from bioimnb.core.tiles import TileRenderer
from bioimnb.server.handlers import PER_IMAGE, SERVICE_KEY

ROUTES: list[tuple[str, dict[str, Any]]] = [
    ("image", {}),
    ("tile", {"level": 0, "tx": 0, "ty": 0}),
    ("values", {"x": 1, "y": 1}),
    ("histogram", {"channel": 0}),
]


@pytest.fixture(scope="module")
def pyramid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("hostile-api")
    fixtures.ome_tiff_subifd(d / "p.ome.tif")
    return d / "p.ome.tif"


async def _get(jp_fetch: Any, route: str, timeout: float = 20, **params: Any) -> HTTPResponse:
    """The response, whatever its status, within ``timeout`` seconds (else the test fails)."""
    coro = jp_fetch(
        "bioimnb",
        "api",
        route,
        params={k: str(v) for k, v in params.items()},
        raise_error=False,
        request_timeout=timeout,
    )
    response: HTTPResponse = await asyncio.wait_for(coro, timeout + 5)
    return response


def _one_line_error(response: HTTPResponse) -> str:
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    body = json.loads(response.body)
    assert set(body) == {"error"}, body
    assert "\n" not in body["error"] and "Traceback" not in body["error"]
    return str(body["error"])


def _never_leaks(response: HTTPResponse) -> None:
    assert hostile.CANARY_MARK not in response.body
    if response.code == 200 and response.headers["Content-Type"].startswith("application/json"):
        values = json.loads(response.body).get("values", [])
        assert hostile.CANARY not in values, values


# -- nothing outside the root -------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["chunk-link", "array-link", "companion-dotdot", "companion-absolute"])
async def test_links_inside_an_image_never_read_outside_the_root(jp_fetch, jp_root_dir, layout):
    outside = jp_root_dir.parent / "outside"
    outside.mkdir()
    if layout == "chunk-link":
        name = "chunk.ome.zarr"
        hostile.zarr_chunk_linked_out(jp_root_dir / name, outside)
    elif layout == "array-link":
        name = "array.ome.zarr"
        hostile.zarr_array_linked_out(jp_root_dir / name, outside)
    elif layout == "companion-dotdot":
        name = "mf.ome.tif"
        # jp_root_dir/../outside.ome.tif: one level above the root.
        hostile.ome_tiff_companion_out(jp_root_dir / name, jp_root_dir.parent / "outside.ome.tif", "../outside.ome.tif")
    else:
        name = "mf.ome.tif"
        target = outside / "outside.ome.tif"
        hostile.ome_tiff_companion_out(jp_root_dir / name, target, str(target))
    for route, extra in ROUTES:
        response = await _get(jp_fetch, route, path=name, **extra)
        _never_leaks(response)
        assert 400 <= response.code < 500, (layout, route, response.code, response.body[:300])
        message = _one_line_error(response)
        assert message.startswith(f"{name}: "), message
        # The root is never disclosed (an absolute companion path is the file's own text).
        assert str(jp_root_dir) not in message, message


# -- 500 -> 4xx ---------------------------------------------------------------------------------


async def test_scene_parameter_errors_are_400(jp_fetch, jp_root_dir, pyramid):
    shutil.copy(pyramid, jp_root_dir / "p.ome.tif")
    for scene, expected in [("-1", "must be at least 0"), ("x", "must be an integer"), ("7", "no scene 7")]:
        for route, extra in ROUTES:
            response = await _get(jp_fetch, route, path="p.ome.tif", scene=scene, **extra)
            assert response.code == 400, (route, scene, response.code)
            assert expected in _one_line_error(response)


async def test_zero_size_chunks_are_400(jp_fetch, jp_root_dir):
    hostile.zarr_zero_chunks(jp_root_dir / "zero.ome.zarr")
    for route, extra in ROUTES:
        response = await _get(jp_fetch, route, path="zero.ome.zarr", **extra)
        assert response.code == 400, (route, response.code, response.body)
        assert _one_line_error(response).startswith("zero.ome.zarr: ")


async def test_terabyte_zlib_declaration_is_400_quickly(jp_fetch, jp_root_dir, pyramid):
    hostile.zlib_bomb_tiff(jp_root_dir / "bomb.tif")
    shutil.copy(pyramid, jp_root_dir / "p.ome.tif")
    for route, extra in ROUTES[1:]:  # the ones that decode pixels
        start = time.monotonic()
        response = await _get(jp_fetch, route, path="bomb.tif", **extra)
        assert 400 <= response.code < 500, (route, response.code, response.body)
        assert _one_line_error(response).startswith("bomb.tif: ")
        assert time.monotonic() - start < 15
    # The server is still fine.
    ok = await _get(jp_fetch, "tile", path="p.ome.tif", level=0, tx=0, ty=0)
    assert ok.code == 200


async def test_if_none_match_star_is_checked_after_validation(jp_fetch, jp_root_dir, pyramid):
    shutil.copy(pyramid, jp_root_dir / "p.ome.tif")
    good = {"path": "p.ome.tif", "level": 0, "tx": 0, "ty": 0}
    for bad in [{"tx": 99}, {"scene": 5}, {"level": 9}, {"z": 3}, {"t": 1}, {"ch": "9:FF0000:0:1"}, {"labels": "nope"}]:
        response = await jp_fetch(
            "bioimnb", "api", "tile", params={k: str(v) for k, v in {**good, **bad}.items()},
            headers={"If-None-Match": "*"}, raise_error=False,
        )
        assert response.code == 400, (bad, response.code)
        assert "Etag" not in response.headers
        _one_line_error(response)
    # A tile that exists: 304 for '*' and for its own ETag.
    first = await _get(jp_fetch, "tile", **good)
    for tag in ("*", first.headers["Etag"]):
        again = await jp_fetch(
            "bioimnb", "api", "tile", params={k: str(v) for k, v in good.items()},
            headers={"If-None-Match": tag}, raise_error=False,
        )
        assert again.code == 304 and not again.body


@pytest.mark.parametrize(
    ("raised", "status", "expected"),
    [
        (ZeroDivisionError("division by zero"), 400, "p.ome.tif: cannot be read: ZeroDivisionError: division by zero"),
        (KeyError("dimension_separator"), 400, "p.ome.tif: cannot be read: KeyError: 'dimension_separator'"),
        (MemoryError(), 400, "p.ome.tif: not enough memory to read this image"),
        (RecursionError("maximum recursion depth exceeded\nmore"), 400, "p.ome.tif: cannot be read: RecursionError"),
    ],
)
async def test_any_reader_exception_is_a_one_line_4xx(jp_fetch, jp_root_dir, pyramid, monkeypatch, raised, status, expected):
    shutil.copy(pyramid, jp_root_dir / "p.ome.tif")

    def boom(self: TileRenderer, *args: Any, **kwargs: Any) -> Any:
        raise raised

    for method in ("info", "render", "values", "histogram"):
        monkeypatch.setattr(TileRenderer, method, boom)
    for route, extra in ROUTES:
        response = await _get(jp_fetch, route, path="p.ome.tif", **extra)
        assert response.code == status, (route, response.code, response.body)
        message = _one_line_error(response)
        assert message.startswith(expected), message
        assert str(jp_root_dir) not in message


# -- FIFOs and hanging ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "where",
    ["fifo.ome.tif", "f.ome.zarr/zarr.json", "g.ome.zarr/.zattrs", "h.ome.zarr/0/.zarray", "i.ome.zarr/0/0/0/0"],
)
async def test_fifos_never_hang_a_route(jp_fetch, jp_root_dir, pyramid, where):
    shutil.copy(pyramid, jp_root_dir / "p.ome.tif")
    top = where.split("/")[0]
    if where.startswith(("h.", "i.")):
        hostile._ngff04(jp_root_dir / top, [1, 64, 64], [1, 32, 32])
        (jp_root_dir / where).unlink()
    elif where.startswith("g."):
        (jp_root_dir / top).mkdir()
        (jp_root_dir / top / ".zgroup").write_text('{"zarr_format": 2}')
    hostile.fifo(jp_root_dir / where)
    start = time.monotonic()
    for route, extra in ROUTES:
        response = await _get(jp_fetch, route, timeout=15, path=top, **extra)
        assert 400 <= response.code < 500, (route, response.code, response.body)
        assert _one_line_error(response).startswith(f"{top}: ")
    # And the others keep being answered.
    ok = await _get(jp_fetch, "tile", timeout=15, path="p.ome.tif", level=0, tx=0, ty=0)
    assert ok.code == 200
    assert time.monotonic() - start < 30


# -- a slow image does not block the others -------------------------------------------------------


@pytest.fixture
def slow_renders(monkeypatch: pytest.MonkeyPatch):
    """Tile renders of any image named ``slow*`` block until released; counts them."""
    state = {"entered": 0, "release": threading.Event(), "lock": threading.Lock()}
    original = TileRenderer.render

    def render(self: TileRenderer, *args: Any, **kwargs: Any) -> bytes:
        if Path(str(self.image.source)).name.startswith("slow"):
            with state["lock"]:
                state["entered"] += 1
            state["release"].wait(60)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(TileRenderer, "render", render)
    try:
        yield state
    finally:
        state["release"].set()


async def _until(predicate: Any, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_a_slow_image_does_not_block_other_images(jp_fetch, jp_root_dir, pyramid, slow_renders, jp_serverapp):
    shutil.copy(pyramid, jp_root_dir / "slow.ome.tif")
    shutil.copy(pyramid, jp_root_dir / "fast.ome.tif")
    slow = [
        asyncio.ensure_future(_get(jp_fetch, "tile", timeout=60, path="slow.ome.tif", level=0, tx=tx, ty=ty))
        for tx in range(3) for ty in range(3)
    ]  # 9 requests, more than the pool's 4 threads
    await _until(lambda: slow_renders["entered"] >= PER_IMAGE)
    start = time.monotonic()
    fast = await _get(jp_fetch, "tile", timeout=10, path="fast.ome.tif", level=0, tx=1, ty=1)
    elapsed = time.monotonic() - start
    assert fast.code == 200 and fast.body.startswith(b"\x89PNG")
    assert elapsed < 10
    info = await _get(jp_fetch, "image", timeout=10, path="fast.ome.tif")
    assert info.code == 200
    # Meanwhile no more than PER_IMAGE of the slow image's requests held a thread.
    assert slow_renders["entered"] == PER_IMAGE
    assert not any(task.done() for task in slow)
    slow_renders["release"].set()
    responses = await asyncio.gather(*slow)
    assert [r.code for r in responses] == [200] * len(slow)
    print(f"fast tile answered in {elapsed * 1000:.0f} ms while 9 slow requests were in flight")
    assert jp_serverapp.web_app.settings[SERVICE_KEY]._gates == {}  # nothing left behind


async def test_waiting_too_long_for_a_busy_image_is_503(jp_fetch, jp_root_dir, pyramid, slow_renders, jp_serverapp):
    shutil.copy(pyramid, jp_root_dir / "slow.ome.tif")
    service = jp_serverapp.web_app.settings[SERVICE_KEY]
    service.queue_seconds = 0.5
    running = [
        asyncio.ensure_future(_get(jp_fetch, "tile", timeout=60, path="slow.ome.tif", level=0, tx=tx, ty=0))
        for tx in range(PER_IMAGE)
    ]
    await _until(lambda: slow_renders["entered"] >= PER_IMAGE)
    waited = await _get(jp_fetch, "tile", timeout=10, path="slow.ome.tif", level=0, tx=2, ty=0)
    assert waited.code == 503
    assert waited.headers["Retry-After"].isdigit()
    assert "busy" in _one_line_error(waited)
    service.queue_per_image = 0
    refused = await _get(jp_fetch, "values", timeout=10, path="slow.ome.tif", x=0, y=0)
    assert refused.code == 503 and "too many requests" in _one_line_error(refused)
    slow_renders["release"].set()
    assert [r.code for r in await asyncio.gather(*running)] == [200] * PER_IMAGE


def test_a_stuck_worker_does_not_hold_up_shutdown(tmp_path):
    # A read stuck in the kernel (a dead network mount) cannot be interrupted; the process must
    # still exit.  concurrent.futures' pool would join its thread forever here.
    code = (
        "import threading, sys\n"
        "from bioimnb.server.handlers import ImageService\n"
        f"service = ImageService({str(tmp_path)!r})\n"
        "started = threading.Event()\n"
        "def stuck():\n"
        "    started.set(); threading.Event().wait()\n"
        "service.pool.submit(stuck)\n"
        "started.wait(10)\n"
        "service.close()\n"
        "print('exiting')\n"
    )
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "exiting"
    assert time.monotonic() - start < 20


async def test_an_answer_that_cannot_be_serialised_is_a_400(jp_fetch, jp_root_dir, pyramid, monkeypatch):
    # Serialised in the pool, not by tornado on the event loop: a value JSON cannot hold (a
    # reader handing back an odd type) is the file's 400, not a 500.
    shutil.copy(pyramid, jp_root_dir / "p.ome.tif")
    monkeypatch.setattr(TileRenderer, "values", lambda self, *a, **k: {"values": [object()]})
    response = await _get(jp_fetch, "values", path="p.ome.tif", x=0, y=0)
    assert response.code == 400
    assert _one_line_error(response).startswith("p.ome.tif: cannot be read: TypeError: ")
