"""Authorization: every bioimnb route asks the server's authorizer (resource ``bioimnb``, action
``read``), as Jupyter's own handlers do; a refused user gets 403 with a one-line JSON error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import fixtures
import pytest
from jupyter_server.auth.authorizer import Authorizer
from jupyter_server.utils import url_path_join
from traitlets.config import Config

from bioimnb.server.handlers import AUTH_RESOURCE

ASKED: list[tuple[str, str]] = []


class DenyAll(Authorizer):
    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        ASKED.append((action, resource))
        return False


class ReadOnly(Authorizer):
    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        ASKED.append((action, resource))
        return action == "read"


def _config(authorizer: type[Authorizer]) -> Config:
    return Config(
        {
            "ServerApp": {
                "jpserver_extensions": {"bioimnb": True, "jupyter_server_terminals": False},
                "reraise_server_extension_failures": True,
                "authorizer_class": authorizer,
            }
        }
    )


@pytest.fixture
def jp_server_config(request: pytest.FixtureRequest) -> Config:
    return _config(request.param)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("auth")
    fixtures.ome_tiff_subifd(d / "p.ome.tif")
    return d / "p.ome.tif"


ROUTES = [
    ("version", {}),
    ("api/image", {"path": "p.ome.tif"}),
    ("api/tile", {"path": "p.ome.tif", "level": "0", "tx": "0", "ty": "0"}),
    ("api/values", {"path": "p.ome.tif", "x": "1", "y": "1"}),
    ("api/histogram", {"path": "p.ome.tif", "channel": "0"}),
]


async def _fetch(jp_fetch: Any, route: str, params: dict[str, str]) -> Any:
    return await jp_fetch("bioimnb", *route.split("/"), params=params, raise_error=False)


@pytest.mark.parametrize("jp_server_config", [DenyAll], indirect=True)
async def test_deny_all_authorizer_gets_403_on_every_route(jp_fetch, jp_root_dir, image):
    shutil.copy(image, jp_root_dir / "p.ome.tif")
    ASKED.clear()
    # Control: Jupyter's own contents API refuses too, so the authorizer is in force.
    contents = await jp_fetch("api", "contents", raise_error=False)
    assert contents.code == 403
    for route, params in ROUTES:
        response = await _fetch(jp_fetch, route, params)
        assert response.code == 403, (route, response.code, response.body[:200])
        assert response.headers["Content-Type"].startswith("application/json")
        body = json.loads(response.body)
        assert set(body) == {"error"} and "\n" not in body["error"], body
        assert "not authorized" in body["error"] and AUTH_RESOURCE in body["error"]
        assert b"DAPI" not in response.body and b"\x89PNG" not in response.body
        assert "values" not in body and "counts" not in body
    # Each route asked about the bioimnb resource, to read.
    assert ASKED.count(("read", AUTH_RESOURCE)) == len(ROUTES)


def _bioimnb_routes(router: Any) -> list[str]:
    """Every URL pattern registered under ``/bioimnb/`` (host rules hold nested routers)."""
    patterns: list[str] = []
    for rule in getattr(router, "default_router", router).rules:
        if hasattr(rule.target, "rules"):
            patterns.extend(_bioimnb_routes(rule.target))
        elif hasattr(rule.matcher, "regex") and "/bioimnb/" in rule.matcher.regex.pattern:
            patterns.append(rule.matcher.regex.pattern)
    return patterns


@pytest.mark.parametrize("jp_server_config", [DenyAll], indirect=True)
async def test_every_registered_route_is_authorized(jp_serverapp, jp_fetch, jp_base_url):
    # Whatever routes are added later: each one must ask the authorizer (deny-all: 403) before
    # looking at its parameters.
    patterns = _bioimnb_routes(jp_serverapp.web_app)
    assert len(patterns) >= len(ROUTES), patterns
    for pattern in patterns:
        assert pattern.endswith("$") and not any(c in pattern for c in "()[]*+?"), pattern
        path = pattern.removesuffix("$").removeprefix(jp_base_url.rstrip("/"))
        response = await jp_fetch(*path.strip("/").split("/"), raise_error=False)
        assert response.code == 403, (pattern, response.code, response.body[:200])


@pytest.mark.parametrize("jp_server_config", [ReadOnly], indirect=True)
async def test_read_only_authorizer_may_use_every_route(jp_fetch, jp_root_dir, image):
    shutil.copy(image, jp_root_dir / "p.ome.tif")
    ASKED.clear()
    for route, params in ROUTES:
        response = await _fetch(jp_fetch, route, params)
        assert response.code == 200, (route, response.code, response.body[:200])
    assert set(ASKED) == {("read", AUTH_RESOURCE)}
    assert len(ASKED) == len(ROUTES)
    tile = await _fetch(jp_fetch, "api/tile", ROUTES[2][1])
    assert tile.body.startswith(b"\x89PNG")
    # Control: the read-only authorizer does refuse writes (Jupyter's contents PUT).
    put = await jp_fetch(
        "api", "contents", "new.txt", method="PUT",
        body=json.dumps({"type": "file", "format": "text", "content": "x"}), raise_error=False,
    )
    assert put.code == 403


@pytest.mark.parametrize("jp_server_config", [DenyAll], indirect=True)
async def test_unauthenticated_is_still_refused_before_authorization(
    jp_base_url, http_server_client, jp_root_dir, image
):
    shutil.copy(image, jp_root_dir / "p.ome.tif")
    ASKED.clear()
    response = await http_server_client.fetch(
        url_path_join(jp_base_url, "bioimnb", "api", "image") + "?path=p.ome.tif", raise_error=False
    )
    assert response.code in (401, 403)
    assert ASKED == []  # authentication came first; the authorizer was never consulted
