"""The notebook widgets outside JupyterLab, in Debian's Chromium: Notebook 7 and Voila.

* Notebook 7 (``jupyter notebook``, under a hub-like base URL with token auth): a cell with
  ``bioimnb.view(...)`` paints the test image (canvas pixels: the left half red, the right half
  black), and a ConvertPanel whose conversion fails shows its whole error inside the output
  (wrapped, nothing cut at the right edge), styled as an error, with no Cancel button left.
* Voila renders a small notebook with the viewer: the widget paints the same pixels.

The servers are started here (one per module each), from this checkout's lab extension build,
with config, data and runtime folders isolated under a temporary folder.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from uilab import (
    CHROMIUM,
    CHROMIUM_ARGS,
    IMAGE_SIZE,
    PIXELS_AT,
    REPO,
    write_notebook,
    write_test_image,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

BASE_URL = "/user/nb7/"
WIDGET = ".jp-OutputArea-output .bioimnb-viewer"
READ_PIXELS = f"([selector, points]) => ({PIXELS_AT})(document.querySelector(selector), points)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, n: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


@contextlib.contextmanager
def _serve(base: Path, root: Path, argv: list[str], probe: str | None, log_name: str, port: int = 0) -> Iterator[None]:
    """Run ``argv`` (a Jupyter application) until the URL ``probe`` answers (or, without one,
    until ``port`` accepts connections: Voila runs the notebook for every page); stop it on exit."""
    ext_path = base / "labextensions"
    ext_path.mkdir(exist_ok=True)
    link = ext_path / "bioimnb"
    if not link.exists():
        link.symlink_to(REPO / "bioimnb" / "labextension", target_is_directory=True)
    env = dict(os.environ)
    env.update(
        PATH=str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""),
        JUPYTER_CONFIG_DIR=str(base / "config"),
        JUPYTER_DATA_DIR=str(base / "data"),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"),
        IPYTHONDIR=str(base / "ipython"),
        JUPYTER_PLATFORM_DIRS="1",
        PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    log = base / log_name
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"{argv[2]} exited with {proc.returncode}:\n{_tail(log)}", pytrace=False)
            try:
                if probe is None:
                    socket.create_connection(("127.0.0.1", port), timeout=5).close()
                    break
                with urllib.request.urlopen(probe, timeout=10):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"{argv[2]} did not answer in 90 s:\n{_tail(log)}", pytrace=False)
                time.sleep(0.3)
        yield
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        with contextlib.suppress(OSError):
            link.unlink()


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("nb7root")
    write_test_image(folder / "img.ome.tif")
    return folder


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's chromium package", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _assert_halves(page: Any) -> None:
    quarter, half = IMAGE_SIZE // 4, IMAGE_SIZE // 2
    left, right = page.evaluate(READ_PIXELS, [WIDGET, [[quarter, half], [3 * quarter, half]]])
    assert left[0] >= 240 and left[1] <= 15 and left[2] <= 15, f"left half should be red: {left}"
    assert max(right[:3]) <= 15, f"right half should be black: {right}"


def test_notebook7_viewer_and_convert_panel(root: Path, chromium: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    base = tmp_path_factory.mktemp("nb7")
    port, token = _free_port(), secrets.token_hex(16)
    url = f"http://127.0.0.1:{port}{BASE_URL}"
    long_dir = "a-folder-name-long-enough-to-cross-the-whole-notebook-width-" * 3
    write_notebook(
        root / "nb7.ipynb",
        [
            'import bioimnb; v = bioimnb.view("img.ome.tif"); v',
            f'p = bioimnb.ConvertPanel("img.ome.tif", "{long_dir}/out.png"); p.start(); p',
        ],
    )
    argv = [
        sys.executable, "-m", "jupyter", "notebook", "--no-browser", "--allow-root",
        f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        f"--ServerApp.base_url={BASE_URL}",
        f"--JupyterNotebookApp.extra_labextensions_path={base / 'labextensions'}",
    ]  # fmt: skip
    with _serve(base, root, argv, f"{url}api/status?token={token}", "notebook.log"):
        context = chromium.new_context(viewport={"width": 1200, "height": 1000})
        context.set_default_timeout(90_000)
        page = context.new_page()
        try:
            page.goto(f"{url}notebooks/nb7.ipynb?token={token}")
            page.wait_for_selector(".jp-Notebook .jp-Cell .jp-InputArea-editor")
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle'], .jp-Toolbar-kernelStatus", timeout=60_000)
            # Run all cells (Notebook 7 has JupyterLab's command: Shift+Enter on each cell).
            for index in range(2):
                cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
                cell.locator(".jp-InputArea-editor").click()
                page.keyboard.press("Shift+Enter")
            page.wait_for_selector(f'{WIDGET}[data-complete="true"]', timeout=120_000)
            _assert_halves(page)

            error = page.locator(".jp-OutputArea-output .bioimnb-convert-error")
            error.wait_for(timeout=60_000)
            text = error.inner_text()
            assert "out.png" in text and "\u26a0" in text
            box = page.evaluate(
                "() => { const e = document.querySelector('.bioimnb-convert-error');"
                " const area = e.closest('.jp-Cell').getBoundingClientRect();"
                " const r = e.getBoundingClientRect();"
                " return {sw: e.scrollWidth, cw: e.clientWidth, right: r.right, areaRight: area.right,"
                " color: getComputedStyle(e).color, lines: Math.round(r.height / parseFloat(getComputedStyle(e).lineHeight || '16'))}; }"
            )
            assert box["sw"] <= box["cw"] + 1, box  # nothing runs off to the right
            assert box["right"] <= box["areaRight"] + 1, box  # inside its cell
            assert box["right"] <= 1200, box  # and on screen
            assert box["lines"] >= 2, box  # the long line wrapped
            rgb = [int(x) for x in box["color"][box["color"].index("(") + 1 : box["color"].index(")")].split(",")[:3]]
            assert rgb[0] > 150 and rgb[1] < 100 and rgb[2] < 100, f"not styled as an error: {box['color']}"
            cancel = page.locator(".bioimnb-convert button", has_text="Cancel")
            assert cancel.count() == 0 or not cancel.first.is_visible()
        finally:
            context.close()


def test_voila_renders_the_viewer(root: Path, chromium: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    base = tmp_path_factory.mktemp("voila")
    port = _free_port()
    write_notebook(root / "voila.ipynb", ['import bioimnb; bioimnb.view("img.ome.tif")'])
    argv = [
        sys.executable, "-m", "voila", "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
        f"--Voila.root_dir={root}", "--show_tracebacks=True", str(root / "voila.ipynb"),
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    # Voila finds lab extensions on the data path: this checkout's build goes first there.
    data = base / "data" / "labextensions"
    data.mkdir(parents=True)
    (data / "bioimnb").symlink_to(REPO / "bioimnb" / "labextension", target_is_directory=True)
    with _serve(base, root, argv, None, "voila.log", port=port):
        context = chromium.new_context(viewport={"width": 1200, "height": 900})
        context.set_default_timeout(120_000)
        page = context.new_page()
        try:
            page.goto(url)
            page.wait_for_selector(f'{WIDGET}[data-complete="true"], .bioimnb-viewer[data-complete="true"]', timeout=180_000)
            selector = WIDGET if page.locator(WIDGET).count() else ".bioimnb-viewer"
            quarter, half = IMAGE_SIZE // 4, IMAGE_SIZE // 2
            left, right = page.evaluate(READ_PIXELS, [selector, [[quarter, half], [3 * quarter, half]]])
            assert left[0] >= 240 and left[1] <= 15 and left[2] <= 15, f"left half should be red: {left}"
            assert max(right[:3]) <= 15, f"right half should be black: {right}"
        finally:
            context.close()
