"""The image REST API of the server extension: info, tiles, values, histograms; confinement,
errors, caching headers and concurrency."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import fixtures
import imagecodecs
import numpy as np
import pytest
from jupyter_server.utils import url_path_join
from tornado.httpclient import HTTPClientError

from bioimnb.core.tiles import label_colors
from bioimnb.server.handlers import SERVICE_KEY


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Generated once per module, copied into each test's server root."""
    d: Path = tmp_path_factory.mktemp("api-images")
    return {
        # 2 scenes x (C=2, 600 x 800) uint16, 3 levels
        "ome_tiff": (d / "p.ome.tif", fixtures.ome_tiff_subifd(d / "p.ome.tif")),
        # C=2, Z=3, 300 x 400 uint16, label image "cells"
        "ngff": (d / "v.ome.zarr", fixtures.ngff_image(d / "v.ome.zarr", "0.4")),
    }


@pytest.fixture
def root(jp_root_dir: Path, generated: dict[str, Any]) -> Path:
    """The server root: ``data/pyramid.ome.tif`` and ``data/cells.ome.zarr``."""
    data = jp_root_dir / "data"
    data.mkdir()
    shutil.copy(generated["ome_tiff"][0], data / "pyramid.ome.tif")
    shutil.copytree(generated["ngff"][0], data / "cells.ome.zarr")
    return jp_root_dir


async def _get(jp_fetch, route: str, **params: Any):
    return await jp_fetch("bioimnb", "api", route, params={k: str(v) for k, v in params.items()})


async def _error(jp_fetch, route: str, **params: Any) -> tuple[int, str]:
    with pytest.raises(HTTPClientError) as excinfo:
        await _get(jp_fetch, route, **params)
    response = excinfo.value.response
    assert response is not None
    assert response.headers["Content-Type"].startswith("application/json")
    body = json.loads(response.body)
    assert set(body) == {"error"}
    assert "\n" not in body["error"] and "Traceback" not in body["error"]
    return excinfo.value.code, body["error"]


TILE = {"path": "data/pyramid.ome.tif", "level": 0, "tx": 1, "ty": 1}
CH = "0:FF0000:1000:40000,1:00FF00:5000:60000"


def _expected_tile(
    truth: list[list[np.ndarray]], scene: int, level: int, tx: int, ty: int
) -> np.ndarray:
    ys, xs = slice(ty * 256, (ty + 1) * 256), slice(tx * 256, (tx + 1) * 256)
    data = truth[scene][level]
    red = np.clip((data[0][ys, xs].astype(np.float64) - 1000) / 39000, 0, 1)
    green = np.clip((data[1][ys, xs].astype(np.float64) - 5000) / 55000, 0, 1)
    out = np.zeros((*red.shape, 4), dtype=np.uint8)
    out[..., 0] = np.floor(red * 255 + 0.5)
    out[..., 1] = np.floor(green * 255 + 0.5)
    out[..., 3] = 255
    return out


def _assert_close(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape
    assert np.abs(actual.astype(np.int16) - expected.astype(np.int16)).max() <= 1


# -- info, tiles, values, histogram ----------------------------------------------------------------


async def test_image_info(jp_fetch, root):
    response = await _get(jp_fetch, "image", path="data/pyramid.ome.tif", scene=1)
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    info = json.loads(response.body)
    assert info["source"] == "data/pyramid.ome.tif"  # the root is never disclosed
    assert str(root) not in response.body.decode()
    assert info["format"] == "OME-TIFF" and info["scene"] == 1
    assert info["scenes"] == ["scene-0", "scene-1"]
    assert info["levels"] == [
        {"shape": [600, 800], "downsample": 1.0},
        {"shape": [300, 400], "downsample": 2.0},
        {"shape": [150, 200], "downsample": 4.0},
    ]
    assert info["tile_size"] == 256 and info["dtype"] == "uint16" and info["rgb"] is False
    assert [c["name"] for c in info["channels"]] == ["DAPI", "GFP"]
    assert info["default_view"]["scene"] == 1 and len(info["default_view"]["channels"]) == 2
    assert isinstance(info["version"], str) and info["version"]


async def test_tile_decodes_to_the_expected_pixels(jp_fetch, root, generated):
    truth = generated["ome_tiff"][1]
    response = await _get(jp_fetch, "tile", **TILE, ch=CH)
    assert response.code == 200
    assert response.headers["Content-Type"] == "image/png"
    assert response.headers["Cache-Control"] == "private, max-age=3600"
    assert response.headers["Etag"]
    _assert_close(imagecodecs.png_decode(response.body), _expected_tile(truth, 0, 0, 1, 1))

    # An edge tile of scene 1, level 1 (400 x 300): 144 x 44 pixels.
    response = await _get(jp_fetch, "tile", **{**TILE, "level": 1}, scene=1, ch=CH)
    tile = imagecodecs.png_decode(response.body)
    assert tile.shape == (44, 144, 4)
    _assert_close(tile, _expected_tile(truth, 1, 1, 1, 1))

    jpeg = await _get(jp_fetch, "tile", **TILE, ch=CH, fmt="jpeg")
    assert jpeg.headers["Content-Type"] == "image/jpeg"
    assert imagecodecs.jpeg8_decode(jpeg.body).shape == (256, 256, 3)

    # Without ch: the default view; with an empty ch: nothing visible.
    default = await _get(jp_fetch, "tile", **TILE)
    assert imagecodecs.png_decode(default.body).shape == (256, 256, 4)
    black = imagecodecs.png_decode((await _get(jp_fetch, "tile", **TILE, ch="")).body)
    assert (black[..., :3] == 0).all()


async def test_tile_with_label_overlay(jp_fetch, root, generated):
    cells = generated["ngff"][1]["cells"][0]  # (Z, 300, 400)
    response = await _get(
        jp_fetch,
        "tile",
        path="data/cells.ome.zarr",
        level=0,
        z=2,
        tx=1,
        ty=0,
        ch="",
        labels="cells",
    )
    tile = imagecodecs.png_decode(response.body)
    ids = cells[2, 0:256, 256:400]
    expected = np.zeros((*ids.shape, 3), dtype=np.uint8)
    mask = ids != 0
    expected[mask] = (label_colors(ids[mask]).astype(np.uint16) + 1) // 2
    np.testing.assert_array_equal(tile[..., :3], expected)
    code, message = await _error(
        jp_fetch, "tile", path="data/cells.ome.zarr", level=0, tx=0, ty=0, labels="nuclei"
    )
    assert code == 400 and message.startswith("data/cells.ome.zarr: no label image 'nuclei'")


async def test_etag_revalidation_and_file_changes(jp_fetch, root, generated):
    first = await _get(jp_fetch, "tile", **TILE, ch=CH)
    etag = first.headers["Etag"]
    # Same query (v is ignored) and an unchanged file: 304 without a body.
    again = await jp_fetch(
        "bioimnb",
        "api",
        "tile",
        params={**TILE, "ch": CH, "v": "anything"},
        headers={"If-None-Match": etag},
        raise_error=False,
    )
    assert again.code == 304 and not again.body
    other = await _get(jp_fetch, "tile", **TILE, ch="0:FF0000:0:100")
    assert other.headers["Etag"] != etag

    # Rewrite the file: new version, new ETag, new pixels.
    info = json.loads((await _get(jp_fetch, "image", path=TILE["path"])).body)
    path = root / "data" / "pyramid.ome.tif"
    new_truth = fixtures.ome_tiff_subifd(path)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    info2 = json.loads((await _get(jp_fetch, "image", path=TILE["path"])).body)
    assert info2["version"] != info["version"]
    changed = await _get(jp_fetch, "tile", **TILE, ch=CH)
    assert changed.headers["Etag"] != etag
    _assert_close(imagecodecs.png_decode(changed.body), _expected_tile(new_truth, 0, 0, 1, 1))


async def test_values(jp_fetch, root, generated):
    truth = generated["ome_tiff"][1]
    response = await _get(jp_fetch, "values", path=TILE["path"], scene=1, x=123, y=45)
    assert json.loads(response.body) == {
        "x": 123,
        "y": 45,
        "values": truth[1][0][:, 45, 123].tolist(),
        "labels": {},
    }
    cells = generated["ngff"][1]
    got = json.loads(
        (await _get(jp_fetch, "values", path="data/cells.ome.zarr", z=1, x=7, y=9)).body
    )
    assert got["values"] == cells["image"][0][:, 1, 9, 7].tolist()
    assert got["labels"] == {"cells": int(cells["cells"][0][1, 9, 7])}
    code, message = await _error(jp_fetch, "values", path=TILE["path"], x=800, y=0)
    assert (
        code == 400 and message == "data/pyramid.ome.tif: no pixel (800, 0); the image is 800 x 600"
    )


async def test_histogram(jp_fetch, root, generated):
    coarsest = generated["ome_tiff"][1][0][2]
    hist = json.loads(
        (await _get(jp_fetch, "histogram", path=TILE["path"], channel=1, bins=32)).body
    )
    assert len(hist["counts"]) == 32 and len(hist["edges"]) == 33
    assert sum(hist["counts"]) == coarsest[1].size
    code, _ = await _error(jp_fetch, "histogram", path=TILE["path"], channel=5)
    assert code == 400


async def test_twenty_concurrent_tiles(jp_fetch, root, generated, jp_serverapp):
    truth = generated["ome_tiff"][1]
    keys = [(s, tx, ty) for s in (0, 1) for tx in range(4) for ty in range(3)][:20]
    responses = await asyncio.gather(
        *(
            _get(jp_fetch, "tile", path=TILE["path"], scene=s, level=0, tx=tx, ty=ty, ch=CH)
            for s, tx, ty in keys
        )
    )
    assert all(r.code == 200 for r in responses)
    for (s, tx, ty), response in zip(keys, responses, strict=True):
        _assert_close(imagecodecs.png_decode(response.body), _expected_tile(truth, s, 0, tx, ty))
    service = jp_serverapp.web_app.settings[SERVICE_KEY]
    assert len(service._renderers) == 1  # opened once, shared by all requests


# -- refusals and errors ---------------------------------------------------------------------------


async def test_unauthenticated_requests_are_refused(
    jp_serverapp, jp_base_url, http_server_client, root
):
    for route in ("image", "tile", "values", "histogram"):
        url = (
            url_path_join(jp_base_url, "bioimnb", "api", route)
            + "?path=data/pyramid.ome.tif&level=0&tx=0&ty=0&x=0&y=0&channel=0"
        )
        for headers in ({}, {"Authorization": "token not-the-token"}):
            response = await http_server_client.fetch(url, headers=headers, raise_error=False)
            assert response.code in (401, 403), (route, headers)
            assert b"DAPI" not in response.body and b"\x89PNG" not in response.body


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("../outside.ome.tif", id="dotdot"),
        pytest.param("data/../../outside.ome.tif", id="dotdot-inside"),
        pytest.param("ABSOLUTE", id="absolute"),
        pytest.param("data/link.ome.tif", id="symlink-out"),
        pytest.param("data/linkdir/outside.ome.tif", id="symlinked-folder-out"),
        pytest.param(".hidden/p.ome.tif", id="hidden"),
        pytest.param("data/shown.ome.tif", id="visible-link-to-hidden"),
    ],
)
async def test_paths_outside_the_root_are_refused(jp_fetch, root, generated, path):
    outside = root.parent / "outside.ome.tif"
    shutil.copy(generated["ome_tiff"][0], outside)
    (root / "data" / "link.ome.tif").symlink_to(outside)
    (root / "data" / "linkdir").symlink_to(root.parent, target_is_directory=True)
    (root / ".hidden").mkdir()
    shutil.copy(generated["ome_tiff"][0], root / ".hidden" / "p.ome.tif")
    (root / "data" / "shown.ome.tif").symlink_to(root / ".hidden" / "p.ome.tif")
    if path == "ABSOLUTE":
        path = str(outside)
    for route, extra in [
        ("image", {}),
        ("tile", {"level": 0, "tx": 0, "ty": 0}),
        ("values", {"x": 0, "y": 0}),
        ("histogram", {"channel": 0}),
    ]:
        code, message = await _error(jp_fetch, route, path=path, **extra)
        assert code == 403, (route, code, message)
        assert str(root) not in message or path == str(outside)


async def test_symlink_inside_the_root_is_followed(jp_fetch, root):
    (root / "alias.ome.tif").symlink_to(root / "data" / "pyramid.ome.tif")
    response = await _get(jp_fetch, "image", path="alias.ome.tif")
    assert json.loads(response.body)["source"] == "alias.ome.tif"


async def test_corrupt_file_is_a_400_naming_the_file(jp_fetch, root, generated):
    good = generated["ome_tiff"][0].read_bytes()
    (root / "data" / "broken.ome.tif").write_bytes(good[: len(good) // 2])
    (root / "data" / "notes.ome.tif").write_text("not an image\n")
    for name in ("broken.ome.tif", "notes.ome.tif"):
        for route, extra in [("image", {}), ("tile", {"level": 0, "tx": 0, "ty": 0})]:
            code, message = await _error(jp_fetch, route, path=f"data/{name}", **extra)
            assert code == 400
            assert message.startswith(f"data/{name}: ")
            assert str(root) not in message


async def test_missing_files_and_bad_parameters(jp_fetch, root):
    code, message = await _error(jp_fetch, "image", path="data/nope.ome.tif")
    assert (code, message) == (404, "data/nope.ome.tif: no such file or directory")
    code, message = await _error(jp_fetch, "image", path="data")
    assert code == 400 and message.startswith("data: ")
    bad = [
        ("image", {}, "missing parameter 'path'"),
        ("tile", {"path": TILE["path"], "tx": 0, "ty": 0}, "missing parameter 'level'"),
        ("tile", {**TILE, "tx": "one"}, "parameter 'tx' must be an integer"),
        ("tile", {**TILE, "level": -1}, "parameter 'level' must be at least 0"),
        ("tile", {**TILE, "fmt": "gif"}, "parameter 'fmt' must be png, jpeg or raw"),
        ("tile", {**TILE, "ch": "0:red:1:2"}, "colour must be RRGGBB hex"),
        ("tile", {**TILE, "ch": "0:FF0000:1"}, "is not index:RRGGBB:min:max"),
        ("tile", {**TILE, "level": 3}, "no level 3"),
        ("tile", {**TILE, "tx": 4}, r"no tile (4, 1) at level 0"),
        ("tile", {**TILE, "ch": "7:FF0000:0:1"}, "no channel 7"),
        ("tile", {**TILE, "scene": 2}, "no scene 2"),
        (
            "histogram",
            {"path": TILE["path"], "channel": 0, "bins": 0},
            "parameter 'bins' must be at least 1",
        ),
    ]
    for route, params, expected in bad:
        code, message = await _error(jp_fetch, route, **params)
        assert code == 400, (route, params, code, message)
        assert expected in message, (route, params, message)
