"""A real JupyterLab and Debian's Chromium for the browser tests.

* ``lab``: JupyterLab started for the module on a free loopback port, under the hub-like base URL
  ``/user/test/``, token auth, a temporary root holding the test images, and isolated config,
  data, settings and workspace directories.  The freshly built lab extension
  (``bioimnb/labextension``) is put first on the extension path, so the tests exercise this
  checkout's build and not a stale copy installed in the environment.
* ``browser``: a persistent Chromium context with a fresh profile in a temporary directory,
  logged in to ``lab`` (its token cookie is set once).

Nothing is skipped: a missing Chromium or an unbuilt front end is a failure that says what to do.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator

import pytest
from uilab import CHROMIUM, CHROMIUM_ARGS, REPO, Lab, LabError, start_lab, write_test_image


def _check_frontend_built() -> None:
    missing = [
        p
        for p in (REPO / "bioimnb/labextension/package.json", REPO / "bioimnb/static/viewer.js")
        if not p.is_file()
    ]
    if missing:
        pytest.fail(
            f"the front end is not built ({', '.join(str(p.relative_to(REPO)) for p in missing)} "
            "missing): run `cd labextension && jlpm install && jlpm build`",
            pytrace=False,
        )


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    _check_frontend_built()
    from bioimnb.core.demo import make_demo_data

    base = tmp_path_factory.mktemp("lab")
    root = base / "root"
    root.mkdir()
    write_test_image(root / "img.ome.tif")
    (root / "corrupt.ome.tif").write_bytes(b"this is not a TIFF file at all\n" * 64)
    make_demo_data(root / "demo", small=True)

    try:
        with start_lab(base, root) as server:
            try:
                json.loads(server.get("bioimnb/version"))
            except OSError as exc:
                pytest.fail(
                    f"the bioimnb server extension is not loaded ({exc}):\n{server.log_tail()}"
                )
            yield server
    except LabError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def browser(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A Chromium browser context (fresh profile) already holding the lab's auth cookie."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)) and not shutil.which(
        CHROMIUM
    ):
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install Debian's chromium package "
            "(`apt-get install chromium`, as `make system-deps` does) or set BIOIMNB_CHROMIUM",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
        )
        context.set_default_timeout(60_000)
        page = context.new_page()
        page.goto(f"{lab.url}api/status?token={lab.token}")
        # JupyterLab's login: visiting any page with ?token= sets the auth cookie.
        page.goto(f"{lab.url}lab?token={lab.token}", wait_until="domcontentloaded")
        page.close()
        try:
            yield context
        finally:
            context.close()
