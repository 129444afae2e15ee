"""bioimnb on a real multi-user JupyterHub: JupyterHub + configurable-http-proxy on loopback,
SimpleLocalProcessSpawner, DummyAuthenticator, two users (alice and bob), each with an image in
their own server's root (their home).

Proves, through the hub's proxy and with each user's own credentials:

* each user's viewer routes answer for their own image (info, tile, listing) under ``/user/<name>/``;
* alice's token or browser session never gets bob's info, tiles or listing (403 or a redirect to
  the login, and none of bob's bytes or names in any answer); no credentials, no answer;
* inside alice's own server, ``..``, absolute paths and links leading to bob's home are refused,
  and nothing of bob's comes back;
* in Chromium, each user logs in on the hub's login page and the JupyterLab document viewer
  paints their image (pixels read from the canvas) with tiles fetched under their base URL.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from hubkit import PASSWORD, REPO, Hub, HubError, http, start_hub
from uilab import CHROMIUM, CHROMIUM_ARGS, IMAGE_SIZE, PIXELS_AT, write_test_image

pytestmark = [pytest.mark.hub, pytest.mark.timeout(300)]

USERS = ["alice", "bob"]
BOB_IMAGE = "bob-secret.ome.tif"
BOB_CHANNEL = "BobSecretChannel"
ALICE_IMAGE = "alice.ome.tif"
SHARED_IMAGE = "facility.ome.tif"


def _write_bob_image(path: Path) -> None:
    """One channel of noise (its tiles are bytes found nowhere else), a channel name found nowhere else."""
    data = np.random.default_rng(7).integers(1000, 60000, size=(512, 512), dtype=np.uint16)
    tifffile.imwrite(path, data, ome=True, tile=(256, 256), metadata={"axes": "YX", "Channel": {"Name": [BOB_CHANNEL]}})


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    base = tmp_path_factory.mktemp("hub")
    alice, bob = base / "home" / "alice", base / "home" / "bob"
    alice.mkdir(parents=True)
    bob.mkdir(parents=True)
    write_test_image(alice / ALICE_IMAGE)
    _write_bob_image(bob / BOB_IMAGE)
    # Links in alice's home that lead into bob's: a file, a folder.
    (alice / "link-to-bob.ome.tif").symlink_to(bob / BOB_IMAGE)
    (alice / "bobs-home").symlink_to(bob, target_is_directory=True)
    # Admin-defined locations outside every home: one left read-only (the default), one not.
    shared, scratch = base / "srv" / "shared", base / "srv" / "scratch"
    shared.mkdir(parents=True)
    scratch.mkdir(parents=True)
    write_test_image(shared / SHARED_IMAGE)
    (shared / ".hidden-notes.txt").write_text("admin only")
    locations = [
        {"name": "Shared data", "url": str(shared)},
        {"name": "Scratch", "url": str(scratch), "read_only": False},
    ]
    try:
        with start_hub(base, USERS, server_config={"BioimnbConfig": {"locations": locations}}) as running:
            for user in USERS:
                running.spawn(user)
            yield running
    except HubError as exc:
        pytest.fail(str(exc), pytrace=False)


def _api(hub: Hub, owner: str, route: str, token: str | None, **params: Any) -> Any:
    """GET ``{base_url}bioimnb/api/<route>`` (``../name``: ``{base_url}bioimnb/<name>``)."""
    query = urllib.parse.urlencode(params)
    path = route[3:] if route.startswith("../") else f"api/{route}"
    return http("GET", f"{hub.user_url(owner)}bioimnb/{path}?{query}", token)


def _bob_secrets(hub: Hub) -> list[bytes]:
    """What must never reach alice: bob's channel name, file name and a tile's bytes."""
    tile = _api(hub, "bob", "tile", hub.token("bob"), path=BOB_IMAGE, level=0, tx=0, ty=0, fmt="raw")
    assert tile.status == 200 and len(tile.body) > 1000
    return [BOB_CHANNEL.encode(), tile.body]


def test_each_user_reads_their_own_image(hub: Hub) -> None:
    for user in USERS:
        version = _api(hub, user, "../version", hub.token(user))
        assert version.status == 200 and "version" in version.json(), version.body[:200]
    for user, image, channel in (("alice", ALICE_IMAGE, "Left"), ("bob", BOB_IMAGE, BOB_CHANNEL)):
        token = hub.token(user)
        info = _api(hub, user, "image", token, path=image)
        assert info.status == 200, info.body[:300]
        assert channel in [c["name"] for c in info.json()["channels"]]
        tile = _api(hub, user, "tile", token, path=image, level=0, tx=0, ty=0)
        assert tile.status == 200 and tile.body[:8] == b"\x89PNG\r\n\x1a\n"
        listing = _api(hub, user, "ls", token, path="")
        assert listing.status == 200
        assert image in [e["name"] for e in listing.json()["entries"]]


#: Every bioimnb route, with parameters that would answer bob's data to bob.
ROUTES = [
    ("image", {"path": BOB_IMAGE}),
    ("tile", {"path": BOB_IMAGE, "level": 0, "tx": 0, "ty": 0}),
    ("tile", {"path": BOB_IMAGE, "level": 0, "tx": 0, "ty": 0, "fmt": "raw"}),
    ("ls", {"path": ""}),
    ("values", {"path": BOB_IMAGE, "x": 1, "y": 1}),
    ("histogram", {"path": BOB_IMAGE}),
    ("thumbnail", {"path": BOB_IMAGE}),
    ("facts", {"path": BOB_IMAGE}),
    ("locations", {}),
    ("formats", {}),
    ("../version", {}),
]


def test_every_server_route_is_covered() -> None:
    """A route added to the server extension must be added to ROUTES (and so be checked here)."""
    source = "\n".join(p.read_text() for p in (REPO / "bioimnb" / "server").glob("*.py"))
    served = set(re.findall(r'url_path_join\(api, "(\w+)"\)', source))
    served |= {"../" + name for name in re.findall(r'url_path_join\(base_url, NAMESPACE, "(\w+)"\)', source)}
    served.discard("../api")  # the prefix of the others
    assert served and served <= {route for route, _ in ROUTES}, sorted(served - {r for r, _ in ROUTES})


@pytest.mark.parametrize(("route", "params"), ROUTES, ids=[f"{r}-{i}" for i, (r, _) in enumerate(ROUTES)])
def test_alice_cannot_reach_bobs_server(hub: Hub, route: str, params: dict[str, Any]) -> None:
    secrets = _bob_secrets(hub)
    for token in (hub.token("alice"), None):
        resp = _api(hub, "bob", route, token, **params)
        assert resp.status in (302, 401, 403), (token is not None, resp.status, resp.body[:200])
        if resp.status == 302:
            assert "login" in resp.headers.get("Location", "") or "oauth" in resp.headers.get("Location", "")
        for secret in secrets:
            assert secret not in resp.body
        assert BOB_IMAGE.encode() not in resp.body or resp.status != 200


@pytest.mark.parametrize(
    "path",
    [
        f"../bob/{BOB_IMAGE}",
        f"../../home/bob/{BOB_IMAGE}",
        f"bobs-home/{BOB_IMAGE}",
        "link-to-bob.ome.tif",
        f"./../bob/./{BOB_IMAGE}",
        "ABSOLUTE",
    ],
)
def test_traversal_inside_alices_server_stays_in_her_root(hub: Hub, path: str) -> None:
    if path == "ABSOLUTE":
        path = str(hub.home("bob") / BOB_IMAGE)
    secrets = _bob_secrets(hub)
    token = hub.token("alice")
    for route, extra in (
        ("image", {}),
        ("tile", {"level": 0, "tx": 0, "ty": 0, "fmt": "raw"}),
        ("values", {"x": 1, "y": 1}),
        ("histogram", {}),
    ):
        resp = _api(hub, "alice", route, token, path=path, **extra)
        assert 400 <= resp.status < 500, (route, path, resp.status, resp.body[:200])
        assert set(json.loads(resp.body)) == {"error"}
        for secret in secrets:
            assert secret not in resp.body, (route, path)


@pytest.mark.parametrize("folder", ["..", "../bob", "bobs-home", "ABSOLUTE"])
def test_listing_outside_alices_root_is_refused(hub: Hub, folder: str) -> None:
    if folder == "ABSOLUTE":
        folder = str(hub.home("bob"))
    resp = _api(hub, "alice", "ls", hub.token("alice"), path=folder)
    assert 400 <= resp.status < 500, (folder, resp.status, resp.body[:300])
    assert BOB_IMAGE.encode() not in resp.body and BOB_CHANNEL.encode() not in resp.body


def test_admin_locations_are_listed_read_only_and_confined(hub: Hub) -> None:
    shared = hub.base / "srv" / "shared"
    before = {p.name: p.stat().st_mtime_ns for p in shared.iterdir()}
    for user in USERS:
        token = hub.token(user)
        resp = _api(hub, user, "locations", token)
        assert resp.status == 200, resp.body[:300]
        found = {loc["name"]: loc for loc in resp.json()["locations"]}
        assert found["Shared data"]["read_only"] is True  # not configured: read-only
        assert found["Scratch"]["read_only"] is False  # configured otherwise
        assert str(hub.base).encode() not in resp.body, "a location's path reached the browser"
        ident = found["Shared data"]["id"]
        listing = _api(hub, user, "ls", token, location=ident, path="")
        assert listing.status == 200, listing.body[:300]
        names = [e["name"] for e in listing.json()["entries"]]
        assert SHARED_IMAGE in names and ".hidden-notes.txt" not in names
        facts = _api(hub, user, "facts", token, location=ident, path=SHARED_IMAGE)
        assert facts.status == 200 and str(shared).encode() not in facts.body
        thumb = _api(hub, user, "thumbnail", token, location=ident, path=SHARED_IMAGE)
        assert thumb.status == 200 and thumb.body[:8] == b"\x89PNG\r\n\x1a\n"
        # Confined to the location: nothing above it, nothing of bob's.
        for path in ("..", "../scratch", f"../../home/bob/{BOB_IMAGE}", str(hub.home("bob") / BOB_IMAGE)):
            for route in ("ls", "facts", "thumbnail"):
                out = _api(hub, user, route, token, location=ident, path=path)
                if route == "facts" and out.status == 200:
                    # facts answers an entry with its error: here the path was taken inside the
                    # location (a leading "/" is relative to it) and is not there
                    assert out.json()["error"] and out.json()["kind"] != "image", out.body[:300]
                else:
                    assert 400 <= out.status < 500, (user, route, path, out.status, out.body[:200])
                assert BOB_CHANNEL.encode() not in out.body
    # Reading through the routes changed nothing there.
    assert {p.name: p.stat().st_mtime_ns for p in shared.iterdir()} == before


# -- Chromium: log in on the hub, open the document viewer under /user/<name>/ ------------------

DOCUMENT = ".bioimnb-document .bioimnb-viewer"
READ_PIXELS = f"([selector, points]) => ({PIXELS_AT})(document.querySelector(selector), points)"


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    import os
    import shutil

    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)) and not shutil.which(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's chromium package", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _login(chromium: Any, hub: Hub, user: str) -> Any:
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(90_000)
    page = context.new_page()
    page.goto(f"{hub.url}hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", PASSWORD)
    page.click("#login_submit")
    page.wait_for_url(lambda url: "/hub/login" not in url)
    return context, page


@pytest.mark.browser
def test_each_user_sees_their_image_in_the_document_viewer(hub: Hub, chromium: Any) -> None:
    context, page = _login(chromium, hub, "alice")
    try:
        tiles: list[str] = []
        page.on("request", lambda r: tiles.append(r.url) if "/bioimnb/api/tile?" in r.url else None)
        page.goto(f"{hub.user_url('alice')}lab/tree/{ALICE_IMAGE}")
        page.wait_for_selector(f'{DOCUMENT}[data-complete="true"]', timeout=120_000)
        quarter, half = IMAGE_SIZE // 4, IMAGE_SIZE // 2
        left, right = page.evaluate(READ_PIXELS, [DOCUMENT, [[quarter, half], [3 * quarter, half]]])
        assert left[0] >= 240 and left[1] <= 15 and left[2] <= 15, f"left half should be red: {left}"
        assert max(right[:3]) <= 15, f"right half should be black: {right}"
        assert tiles and all(u.startswith(f"{hub.user_url('alice')}bioimnb/api/tile?") for u in tiles), tiles[:3]

        # alice's browser session does not open bob's server: the hub refuses the OAuth hand-off.
        resp = context.request.get(
            f"{hub.user_url('bob')}bioimnb/api/tile?path={BOB_IMAGE}&level=0&tx=0&ty=0&fmt=raw"
        )
        assert resp.status in (401, 403), resp.status
        body = resp.body()
        for secret in _bob_secrets(hub):
            assert secret not in body
        resp = context.request.get(f"{hub.user_url('bob')}bioimnb/api/ls?path=")
        assert resp.status in (401, 403) and BOB_IMAGE.encode() not in resp.body()
    finally:
        context.close()

    # bob, in his own browser, sees his own image.
    context, page = _login(chromium, hub, "bob")
    try:
        page.goto(f"{hub.user_url('bob')}lab/tree/{BOB_IMAGE}")
        page.wait_for_selector(f'{DOCUMENT}[data-complete="true"]', timeout=120_000)
        data = page.eval_on_selector(DOCUMENT, "el => ({...el.dataset})")
        assert data["state"] == "ready" and int(data["tilesReceived"]) >= 1
    finally:
        context.close()
