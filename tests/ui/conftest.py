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
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import free_port
from uilab import BASE_URL, CHROMIUM, CHROMIUM_ARGS, REPO, Lab, write_test_image


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

    # Our build first on the extension path (first match wins over the environment's copy).
    ext_path = base / "labextensions"
    ext_path.mkdir()
    (ext_path / "bioimnb").symlink_to(REPO / "bioimnb" / "labextension", target_is_directory=True)

    token = secrets.token_hex(16)
    port = free_port()
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env.update(
        PATH=bin_dir + os.pathsep + env.get("PATH", ""),
        JUPYTER_CONFIG_DIR=str(base / "config"),
        JUPYTER_DATA_DIR=str(base / "data"),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"),
        IPYTHONDIR=str(base / "ipython"),
        JUPYTER_PLATFORM_DIRS="1",
        PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    log = base / "jupyter.log"
    cmd = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.ip=127.0.0.1",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--ServerApp.base_url={BASE_URL}",
        "--allow-root",
        "--LabApp.expose_app_in_browser=True",
        f"--LabApp.extra_labextensions_path={ext_path}",
        f"--LabApp.user_settings_dir={base / 'settings'}",
        f"--LabApp.workspaces_dir={base / 'workspaces'}",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Lab(f"http://127.0.0.1:{port}{BASE_URL}", token, root, log)
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{server.log_tail()}")
            try:
                json.loads(server.get("api/status"))
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"JupyterLab did not answer /api/status in 90 s:\n{server.log_tail()}"
                    )
                time.sleep(0.3)
        try:
            json.loads(server.get("bioimnb/version"))
        except OSError as exc:
            pytest.fail(f"the bioimnb server extension is not loaded ({exc}):\n{server.log_tail()}")
        yield server
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the server and the kernels it started
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


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
