"""The bioimnb server extension: routes, auth, base_url handling."""

from __future__ import annotations

import json
import warnings

import pytest
import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import JupyterServerAuthWarning, url_path_join
from tornado.httpclient import HTTPClientError

import bioimnb


async def test_version_under_non_root_base_url(jp_fetch, jp_base_url, jp_serverapp):
    # pytest-jupyter's default base_url is a non-root, escaped prefix: routes must honour it.
    assert jp_base_url not in ("", "/")
    assert jp_serverapp.base_url == jp_base_url

    response = await jp_fetch("bioimnb", "version")

    assert response.code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert json.loads(response.body) == {"version": bioimnb.__version__}


async def test_extension_is_found_through_the_package_hooks(jp_serverapp):
    assert bioimnb._jupyter_server_extension_points() == [{"module": "bioimnb.server"}]
    assert bioimnb._jupyter_labextension_paths() == [{"src": "labextension", "dest": "bioimnb"}]
    package = jp_serverapp.extension_manager.extensions["bioimnb"]
    assert package.enabled  # and loaded: reraise_server_extension_failures is on (conftest)
    assert list(package.extension_points) == ["bioimnb.server"]


async def test_route_is_not_served_at_the_root_base_url(jp_serverapp, http_server_client):
    # The handler lives under {base_url}bioimnb/, not /bioimnb/.
    response = await http_server_client.fetch(
        "/bioimnb/version",
        headers={"Authorization": f"token {jp_serverapp.identity_provider.token}"},
        raise_error=False,
    )
    assert response.code == 404


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-token"),
        pytest.param({"Authorization": "token not-the-token"}, id="wrong-token"),
    ],
)
async def test_version_refuses_unauthenticated_requests(
    jp_serverapp, jp_base_url, http_server_client, headers
):
    # A plain HTTP request, as a stranger on the network would send it (jp_fetch adds the token).
    response = await http_server_client.fetch(
        url_path_join(jp_base_url, "bioimnb", "version"), headers=headers, raise_error=False
    )
    assert response.code in (401, 403)
    assert bioimnb.__version__ not in response.body.decode(errors="replace")


async def test_jp_fetch_without_token_is_refused(jp_fetch):
    with pytest.raises(HTTPClientError) as excinfo:
        await jp_fetch("bioimnb", "version", headers={"Authorization": ""})
    assert excinfo.value.code in (401, 403)


class _UndecoratedHandler(APIHandler):
    def get(self) -> None:  # deliberately without @tornado.web.authenticated
        self.finish({})


def _route_patterns(router: object) -> list[str]:
    """All URL patterns of a tornado application (host rules hold nested routers)."""
    patterns: list[str] = []
    for rule in getattr(router, "default_router", router).rules:
        if hasattr(rule.target, "rules"):
            patterns.extend(_route_patterns(rule.target))
        elif hasattr(rule.matcher, "regex"):
            patterns.append(rule.matcher.regex.pattern)
    return patterns


def _auth_warnings(records: list[warnings.WarningMessage]) -> list[str]:
    return [str(r.message) for r in records if issubclass(r.category, JupyterServerAuthWarning)]


def test_every_handler_requires_auth(jp_configurable_serverapp):
    # The extension template's check: with unauthenticated access disallowed, Jupyter Server warns
    # about each handler verb lacking @tornado.web.authenticated (or an explicit opt-out).
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        app = jp_configurable_serverapp(allow_unauthenticated_access=False)

    assert "bioimnb" in app.extension_manager.extensions
    assert _auth_warnings(records) == []
    routes = [pattern for pattern in _route_patterns(app.web_app) if "bioimnb" in pattern]
    assert any(pattern.endswith("/bioimnb/version$") for pattern in routes), routes

    # Control: the same check does flag an undecorated handler, so the empty list above means
    # something.
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        app.web_app.add_handlers(
            ".*$", [(url_path_join(app.base_url, "bioimnb", "_undecorated"), _UndecoratedHandler)]
        )
    assert any("_UndecoratedHandler" in message for message in _auth_warnings(records))
    assert tornado.web.authenticated  # the decorator the handlers must use


async def test_formats_route_lists_the_registry_including_a_new_reader(jp_fetch):
    from bioimnb.core import registry

    record = registry.ReaderRecord(
        "toy-server", (registry.Format("ToyS", (".toys",), lambda h: h.startswith(b"TOYS")),), lambda *a: None
    )
    registry.register(record)
    try:
        data = json.loads((await jp_fetch("bioimnb", "api", "formats")).body)
    finally:
        registry.unregister("toy-server")
    names = {r["name"] for r in data["readers"]}
    assert {"tifffile", "zarr", "openslide", "bioio-czi", "bioio", "toy-server"} <= names
    assert any(ft["extensions"] == [".toys"] for ft in data["file_types"])
    assert [ft for ft in data["file_types"] if ft["extensions"] != [".toys"]] == registry.lab_file_types()


async def test_listing_route_sorts_the_whole_folder(jp_fetch, jp_root_dir, monkeypatch):
    folder = jp_root_dir / "sorted"
    (folder / "b_dir").mkdir(parents=True)
    for name, size in (("c.txt", 30), ("a.txt", 10), ("B.csv", 20), ("d.txt", 5)):
        (folder / name).write_bytes(b"x" * size)

    async def names(**params):
        page = json.loads((await jp_fetch("bioimnb", "api", "ls", params={"path": "sorted", "page_size": "2", **params})).body)
        assert page["next_page"] is None and page["location"] == "sorted"  # the whole folder, one response
        return [e["name"] for e in page["entries"]]

    assert await names(sort="size") == ["d.txt", "a.txt", "B.csv", "c.txt", "b_dir"]  # unknown sizes last
    assert await names(sort="size", descending="1") == ["c.txt", "B.csv", "a.txt", "d.txt", "b_dir"]
    assert await names(sort="name", descending="1") == ["d.txt", "c.txt", "b_dir", "B.csv", "a.txt"]
    assert (await names(sort="kind"))[0] == "b_dir"
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("bioimnb", "api", "ls", params={"path": "sorted", "sort": "colour"})
    assert info.value.code == 400 and "cannot sort by 'colour'" in json.loads(info.value.response.body)["error"]
    from bioimnb.core.locations import order

    monkeypatch.setattr(order, "MAX_SORTED_ENTRIES", 3)
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("bioimnb", "api", "ls", params={"path": "sorted", "sort": "size"})
    assert info.value.code == 400 and "too many to sort" in json.loads(info.value.response.body)["error"]


async def test_listing_route_classifies_and_flags_incomplete(jp_fetch, jp_root_dir):
    root = jp_root_dir
    (root / "data" / "half.ome.zarr").mkdir(parents=True)
    (root / "data" / "half.ome.zarr" / "zarr.json").write_text(json.dumps({
        "zarr_format": 3, "node_type": "group",
        "attributes": {"ome": {"version": "0.5", "multiscales": [{"datasets": [{"path": "0"}]}]},
                       "bioimnb": {"status": "incomplete"}}}))
    (root / "data" / "text.tif").write_text("not a tiff")
    (root / "data" / ".secret").write_text("hidden")
    page = json.loads((await jp_fetch("bioimnb", "api", "ls", params={"path": "data"})).body)
    by = {e["name"]: e for e in page["entries"]}
    assert set(by) == {"half.ome.zarr", "text.tif"}
    assert by["half.ome.zarr"]["incomplete"] is True and by["half.ome.zarr"]["path"] == "data/half.ome.zarr"
    assert by["text.tif"]["error"] == "not a TIFF file: the content is text"
    top = json.loads((await jp_fetch("bioimnb", "api", "ls")).body)
    assert [e["name"] for e in top["entries"]] == ["data"] and top["location"] == ""
    for bad, status in (("..", 403), ("data/text.tif", 400), ("nope", 404), ("data/.secret", 403)):
        with pytest.raises(HTTPClientError) as info:
            await jp_fetch("bioimnb", "api", "ls", params={"path": bad})
        assert info.value.code == status, bad
        assert set(json.loads(info.value.response.body)) == {"error"}
