"""Storage locations of the server (the side panel): a SeaweedFS bucket configured with
``c.BioimnbConfig.locations`` (credentials server-side), listing, paging, thumbnails, facts,
confinement, authorization, and no credential in any response."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
import pytest
from tornado.httpclient import HTTPClientError
from traitlets.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import fixtures  # noqa: E402
from test_browser_widget import MANY, populate  # noqa: E402

from bioimnb.core.images import open_image  # noqa: E402


@pytest.fixture(scope="module")
def bucket(s3: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    return populate(s3, tmp_path_factory.mktemp("browse-data"))


@pytest.fixture
def jp_server_config(s3: Any, bucket: str) -> Config:
    return Config(
        {
            "ServerApp": {
                "jpserver_extensions": {"bioimnb": True, "jupyter_server_terminals": False},
                "reraise_server_extension_failures": True,
            },
            "BioimnbConfig": {
                "locations": [
                    {"name": "Project bucket", "url": f"s3://{bucket}/many/", "storage_options": s3.storage_options},
                    {"name": "Whole bucket", "url": f"s3://{bucket}/", "storage_options": s3.storage_options},
                    {"name": "broken: no url"},
                ]
            },
        }
    )


def _secrets_absent(s3: Any, body: bytes) -> None:
    for secret in (s3.key, s3.secret, s3.endpoint_url):
        assert secret.encode() not in body, secret


async def _json(jp_fetch: Any, route: str, **params: str) -> Any:
    response = await jp_fetch("bioimnb", "api", route, params=params)
    return json.loads(response.body), response


async def test_locations_are_listed_without_credentials(jp_fetch: Any, s3: Any) -> None:
    data, response = await _json(jp_fetch, "locations")
    _secrets_absent(s3, response.body)
    assert data["locations"] == [
        {"id": "root", "name": "Server root", "kind": "root", "read_only": True},
        {"id": "0", "name": "Project bucket", "kind": "s3", "read_only": True},
        {"id": "1", "name": "Whole bucket", "kind": "s3", "read_only": True},
    ]


async def test_bucket_listing_pages_through_10000_objects(jp_fetch: Any, s3: Any) -> None:
    names: list[str] = []
    token = ""
    pages = 0
    while True:
        params = {"location": "0", "page_size": "1000"}
        if token:
            params["page"] = token
        page, response = await _json(jp_fetch, "ls", **params)
        _secrets_absent(s3, response.body)
        assert len(page["entries"]) <= 1000 and page["location"] == ""
        names += [e["name"] for e in page["entries"]]
        pages += 1
        if not page["entries"][0]["name"].startswith("obj"):
            by = {e["name"]: e for e in page["entries"]}
            if "tissue.ome.zarr" in by:
                assert by["tissue.ome.zarr"]["kind"] == "image" and by["tissue.ome.zarr"]["format"] == "OME-Zarr"
        token = page["next_page"]
        if not token:
            break
    assert pages >= 10 and len(names) == len(set(names)) == MANY + 2
    assert {"cells.ome.tif", "tissue.ome.zarr", "obj-00000.bin", "obj-09999.bin"} <= set(names)
    # A folder of a location, paths relative to the location (its URL never disclosed).
    top, response = await _json(jp_fetch, "ls", location="1")
    assert [(e["name"], e["path"], e["kind"]) for e in top["entries"]] == [("many", "many", "folder")]
    _secrets_absent(s3, response.body)


async def test_thumbnail_and_facts_from_the_bucket(jp_fetch: Any, s3: Any, bucket: str) -> None:
    response = await jp_fetch("bioimnb", "api", "thumbnail", params={"location": "0", "path": "cells.ome.tif"})
    assert response.headers["Content-Type"] == "image/png"
    assert "max-age" in response.headers["Cache-Control"]
    png = imagecodecs.png_decode(response.body)
    assert png.shape == (75, 100, 4)
    with open_image(f"s3://{bucket}/many/cells.ome.tif", **s3.storage_options) as img:
        coarse = img.levels[-1].compute()[0, 0, 0]
    bright = coarse[::2, ::2] > np.percentile(coarse, 99.9)
    assert (png[..., 0][bright] == 255).all()
    again = await jp_fetch("bioimnb", "api", "thumbnail", params={"location": "0", "path": "cells.ome.tif"})
    assert again.body == response.body  # served from the cache
    small = await jp_fetch("bioimnb", "api", "thumbnail", params={"location": "1", "path": "many/tissue.ome.zarr", "size": "32"})
    assert max(imagecodecs.png_decode(small.body).shape[:2]) <= 32
    facts, response = await _json(jp_fetch, "facts", location="0", path="tissue.ome.zarr")
    _secrets_absent(s3, response.body)
    assert facts["format"] == "OME-Zarr" and facts["path"] == "tissue.ome.zarr"
    assert facts["ngff_version"] == "0.4" and len(facts["scenes"][0]["levels"]) == 3


async def test_viewer_routes_read_images_of_a_location(jp_fetch: Any, s3: Any, bucket: str) -> None:
    info, response = await _json(jp_fetch, "image", location="0", path="cells.ome.tif")
    _secrets_absent(s3, response.body)
    assert info["source"] == "cells.ome.tif" and [lv["shape"] for lv in info["levels"]] == [[600, 800], [300, 400], [150, 200]]
    tile = await jp_fetch(
        "bioimnb", "api", "tile",
        params={"location": "0", "path": "cells.ome.tif", "level": "2", "tx": "0", "ty": "0", "fmt": "raw", "ch": "0:FFFFFF:0:65535"},
    )  # fmt: skip
    rgba = np.frombuffer(tile.body, np.uint8).reshape(150, 200, 4)
    with open_image(f"s3://{bucket}/many/cells.ome.tif", **s3.storage_options) as img:
        coarse = img.levels[2].compute()[0, 0, 0].astype(np.float64)
    expected = np.clip(np.round(coarse / 65535 * 255), 0, 255)
    assert np.abs(rgba[..., 0].astype(np.float64) - expected).max() <= 1
    values, _ = await _json(jp_fetch, "values", location="0", path="cells.ome.tif", x="10", y="20")
    with open_image(f"s3://{bucket}/many/cells.ome.tif", **s3.storage_options) as img:
        assert values["values"] == [int(v) for v in img.levels[0].compute()[0, :, 0, 20, 10]]
    for params, status in (({"location": "0", "path": "../x.ome.tif"}, 403), ({"location": "5", "path": "a"}, 404), ({"location": "0", "path": "obj-00001.bin"}, 400)):
        with pytest.raises(HTTPClientError) as info_error:
            await jp_fetch("bioimnb", "api", "image", params=params)
        assert info_error.value.code == status, params
        _secrets_absent(s3, info_error.value.response.body)


async def test_root_thumbnail_facts_and_refusals(jp_fetch: Any, jp_root_dir: Path, s3: Any) -> None:
    fixtures.ome_tiff_subifd(jp_root_dir / "m.ome.tif", scenes=1)
    (jp_root_dir / "corrupt.ome.tif").write_bytes(b"not a tiff at all\n" * 10)
    (jp_root_dir / ".hidden.ome.tif").write_bytes((jp_root_dir / "m.ome.tif").read_bytes())
    response = await jp_fetch("bioimnb", "api", "thumbnail", params={"path": "m.ome.tif"})
    assert imagecodecs.png_decode(response.body).shape == (75, 100, 4)
    facts, _ = await _json(jp_fetch, "facts", path="m.ome.tif")
    assert facts["path"] == "m.ome.tif" and facts["scenes"][0]["shape"] == [1, 2, 1, 600, 800]
    broken, _ = await _json(jp_fetch, "facts", path="corrupt.ome.tif")
    assert broken["error"] and str(jp_root_dir) not in json.dumps(broken)
    cases = [
        ("thumbnail", {"path": "corrupt.ome.tif"}, 400),
        ("thumbnail", {"path": "../x.ome.tif"}, 403),
        ("thumbnail", {"path": ".hidden.ome.tif"}, 403),
        ("thumbnail", {"path": "missing.ome.tif"}, 404),
        ("thumbnail", {"path": "m.ome.tif", "size": "100000"}, 400),
        ("thumbnail", {"location": "9", "path": "x"}, 404),
        ("thumbnail", {"location": "0", "path": "../../etc"}, 403),
        ("thumbnail", {"location": "0", "path": "obj-00001.bin"}, 400),
        ("facts", {"location": "0", "path": ".git/config"}, 403),
        ("ls", {"location": "0", "path": ".."}, 403),
        ("ls", {"location": "7"}, 404),
    ]
    for route, params, status in cases:
        with pytest.raises(HTTPClientError) as info:
            await jp_fetch("bioimnb", "api", route, params=params)
        assert info.value.code == status, (route, params, info.value.response.body)
        body = info.value.response.body
        assert set(json.loads(body)) == {"error"} and b"\n" not in body.strip()
        assert str(jp_root_dir).encode() not in body
        _secrets_absent(s3, body)


async def test_location_routes_are_authorized(jp_fetch: Any, jp_serverapp: Any) -> None:
    from jupyter_server.auth.authorizer import Authorizer

    class Refuse(Authorizer):
        def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
            return resource != "bioimnb"

    jp_serverapp.web_app.settings["authorizer"] = Refuse(parent=jp_serverapp)
    for route, params in (("locations", {}), ("thumbnail", {"location": "0", "path": "cells.ome.tif"}), ("facts", {"location": "0", "path": "cells.ome.tif"}), ("ls", {"location": "0"})):
        with pytest.raises(HTTPClientError) as info:
            await jp_fetch("bioimnb", "api", route, params=params)
        assert info.value.code == 403, route


async def test_a_thumbnail_the_browser_gave_up_on_is_not_made(
    jp_fetch: Any, jp_root_dir: Path, jp_serverapp: Any, monkeypatch: Any
) -> None:
    """The side panel aborts thumbnail requests of rows scrolled away: work still queued when
    its request closes is skipped; the requests that stayed are answered."""
    import asyncio
    import threading

    import tifffile

    from bioimnb.server import locations as mod
    from bioimnb.server.handlers import SERVICE_KEY

    await jp_fetch("bioimnb", "api", "locations")  # the service exists once the extension answered
    threads = len(jp_serverapp.web_app.settings[SERVICE_KEY].pool._threads)
    names = [f"t{i:02d}.tif" for i in range(threads + 1)]
    for i, name in enumerate(names):
        tifffile.imwrite(jp_root_dir / name, np.full((32, 32), i, np.uint8))
    release = threading.Event()
    made: list[str] = []
    real = mod.thumbnail

    def slow(source: Any, size: int, **kw: Any) -> bytes:
        made.append(Path(str(source)).name)
        release.wait(30)
        return real(source, size, **kw)

    monkeypatch.setattr(mod, "thumbnail", slow)
    busy = [
        asyncio.ensure_future(jp_fetch("bioimnb", "api", "thumbnail", params={"path": n})) for n in names[:-1]
    ]
    for _ in range(200):  # every pool thread is making a thumbnail
        if len(made) == threads:
            break
        await asyncio.sleep(0.05)
    assert sorted(made) == sorted(names[:-1])
    with pytest.raises(Exception):  # noqa: B017 - the browser gives up (a client timeout closes the request)
        await jp_fetch("bioimnb", "api", "thumbnail", params={"path": names[-1]}, request_timeout=0.5)
    await asyncio.sleep(0.5)  # the server notices the closed connection
    release.set()
    answered = await asyncio.gather(*busy)
    assert all(r.code == 200 and r.body[:8] == b"\x89PNG\r\n\x1a\n" for r in answered)
    await asyncio.sleep(0.5)
    assert names[-1] not in made, made
