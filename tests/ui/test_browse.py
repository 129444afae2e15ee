"""The storage browser in real Chromium against a real JupyterLab: browse -> preview and
browse -> convert clicked through in a notebook, the left-sidebar panel (server root and a
SeaweedFS bucket configured server-side), a plain TIFF opening in the bioimnb viewer on
double-click, and no credential in the saved notebook, widget state, server responses or the
browser's network traffic."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from uilab import IMAGE_SIZE, PIXELS_AT, Lab, LabError, start_lab, write_notebook, write_test_image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bioimnb.core.images import open_image  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

READ_PIXELS = f"([selector, points]) => ({PIXELS_AT})(document.querySelector(selector), points)"
KERNEL_IDLE = (
    "() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
    " const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;"
    " return !!k && k.status === 'idle'; }"
)


@pytest.fixture(scope="module")
def s3_bucket(s3: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A small bucket: one OME-TIFF (the two-halves test image) and one plain object."""
    bucket = s3.make_bucket("ui")
    tmp = tmp_path_factory.mktemp("ui-s3")
    write_test_image(tmp / "remote.ome.tif")
    fs = s3.fs
    fs.put(str(tmp / "remote.ome.tif"), f"{bucket}/remote.ome.tif")
    fs.pipe(f"{bucket}/notes.txt", b"hello")
    return bucket


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, s3: Any, s3_bucket: str) -> Iterator[Lab]:
    """Like conftest's ``lab``, plus a bucket in ``c.BioimnbConfig.locations`` (credentials in the
    server's config only) and widget state saved with notebooks."""
    from bioimnb.core.demo import make_demo_data

    base = tmp_path_factory.mktemp("lab-browse")
    root = base / "root"
    root.mkdir()
    write_test_image(root / "img.ome.tif")
    (root / "corrupt.ome.tif").write_bytes(b"this is not a TIFF file at all\n" * 64)
    make_demo_data(root / "demo", small=True)
    plain = np.zeros((256, 512), np.uint8)
    plain[:, :256] = 200
    tifffile.imwrite(root / "plain.tif", plain)
    (base / "config").mkdir()
    (base / "config" / "jupyter_server_config.json").write_text(
        json.dumps(
            {
                "BioimnbConfig": {
                    "locations": [
                        {"name": "Project bucket", "url": f"s3://{s3_bucket}/", "storage_options": s3.storage_options}
                    ]
                }
            }
        )
    )
    settings = base / "settings" / "@jupyter-widgets" / "jupyterlab-manager"
    settings.mkdir(parents=True)
    (settings / "plugin.jupyterlab-settings").write_text(json.dumps({"saveState": True}))
    (base / "creds.json").write_text(json.dumps(s3.storage_options))
    try:
        with start_lab(base, root) as server:
            yield server
    except LabError as exc:
        pytest.fail(str(exc))


class Traffic:
    """Everything the page sent and received: HTTP request and response bodies, WebSocket frames."""

    def __init__(self, page: Any) -> None:
        self.received: list[str] = []
        self.sent: list[str] = []
        page.on("request", lambda req: self.sent.append(f"{req.url} {req.post_data or ''}"))
        page.on("response", self._response)
        page.on("websocket", self._socket)

    def _response(self, response: Any) -> None:
        try:
            body = response.body()
        except Exception:  # noqa: BLE001 - redirects and aborted requests have none
            body = b""
        self.received.append(f"{response.url} {json.dumps(dict(response.headers))} {body.decode('latin-1')}")

    def _socket(self, ws: Any) -> None:
        def text(payload: Any) -> str:
            return payload.decode("latin-1") if isinstance(payload, bytes) else str(payload)

        ws.on("framesent", lambda payload: self.sent.append(text(payload)))
        ws.on("framereceived", lambda payload: self.received.append(text(payload)))


def _open_notebook(lab: Lab, browser: Any, name: str, cells: list[str]) -> tuple[Any, Traffic]:
    write_notebook(lab.root / name, cells)
    page = browser.new_page()
    traffic = Traffic(page)
    page.goto(f"{lab.url}lab/tree/{name}?reset")
    page.wait_for_selector(".jp-Notebook .jp-Cell .jp-InputArea-editor")
    page.wait_for_function(KERNEL_IDLE, timeout=90_000)
    return page, traffic


def _run(page: Any, index: int) -> None:
    page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-InputArea-editor").click()
    page.keyboard.press("Control+Enter")


def _cell(index: int) -> str:
    return f".jp-Notebook .jp-Cell:nth-child({index + 1})"


def _assert_halves(page: Any, selector: str) -> None:
    quarter, half = IMAGE_SIZE // 4, IMAGE_SIZE // 2
    left, right = page.evaluate(READ_PIXELS, [selector, [[quarter, half], [3 * quarter, half]]])
    assert left[0] >= 240 and left[1] <= 15 and left[2] <= 15, f"left half should be red: {left}"
    assert max(right[:3]) <= 15, f"right half should be black: {right}"


def _thumb_loaded(page: Any, row: str) -> None:
    page.wait_for_function(
        "(sel) => { const img = document.querySelector(sel + ' .bioimnb-thumb img');"
        " return !!img && img.complete && img.naturalWidth > 0; }",
        arg=row,
        timeout=60_000,
    )


def test_browse_preview_and_convert_in_a_notebook(lab: Lab, browser: Any) -> None:
    page, _ = _open_notebook(lab, browser, "browse.ipynb", ['import bioimnb\nb = bioimnb.browse(".")\nb'])
    try:
        _run(page, 0)
        browse = _cell(0) + " .bioimnb-browser"
        page.wait_for_selector(f'{browse}[data-complete="true"]', timeout=90_000)
        row = f'{browse} .bioimnb-row[data-name="img.ome.tif"]'
        page.wait_for_selector(row)
        # Image-aware: the OME-TIFF is an image with a thumbnail and its dimensions; the corrupt
        # file is marked broken; folders are folders.
        _thumb_loaded(page, row)
        page.wait_for_function(
            "(sel) => /2048 x 2048 · 4 lvl · 2 ch/.test(document.querySelector(sel).textContent)", arg=row
        )
        assert "broken" in page.locator(f'{browse} .bioimnb-row[data-name="corrupt.ome.tif"]').inner_text()
        assert page.locator(f'{browse} .bioimnb-row[data-name="demo"]').get_attribute("data-kind") == "folder"
        # Filter by name, then clear.
        page.locator(f'{browse} input[aria-label="Filter"]').fill("img")
        page.wait_for_function("(sel) => document.querySelector(sel).dataset.total === '1'", arg=browse)
        page.locator(f'{browse} input[aria-label="Filter"]').fill("")
        page.wait_for_function("(sel) => document.querySelector(sel).dataset.total !== '1'", arg=browse)
        # Select -> facts and actions; Preview opens the viewer below the listing.
        page.locator(row).click()
        page.wait_for_selector(f'{browse} .bioimnb-facts >> text="OME-TIFF"')
        page.locator(f'{browse} button[data-action="preview"]').click()
        viewer = _cell(0) + " .bioimnb-viewer"
        page.wait_for_selector(f'{viewer}[data-complete="true"]', timeout=90_000)
        _assert_halves(page, viewer)
        # Convert: the form, then the conversion panel; the output has the source's pixels.
        page.wait_for_function(KERNEL_IDLE)
        page.locator(f'{browse} button[data-action="convert"]').click()
        start = page.locator(_cell(0) + " .bioimnb-convert-start")
        start.wait_for()
        start.click()
        page.wait_for_selector(f'{_cell(0)} >> text=/validation passed/', timeout=120_000)
        with open_image(lab.root / "img.ome.zarr") as out, open_image(lab.root / "img.ome.tif") as src:
            np.testing.assert_array_equal(out.levels[0].compute(), src.levels[0].compute())
        # Into a folder and back with the breadcrumb.
        page.locator(f'{browse} .bioimnb-row[data-name="demo"]').dblclick()
        page.wait_for_selector(f'{browse} .bioimnb-row[data-name="tissue.ome.zarr"]')
        page.locator(f"{browse} .bioimnb-crumbs a").nth(-2).click()
        page.wait_for_selector(f'{browse} .bioimnb-row[data-name="img.ome.tif"]')
    finally:
        page.close()


def test_copy_to_and_add_to_dmp_clicked_in_a_notebook(lab: Lab, browser: Any) -> None:
    """The browser's last two actions, clicked: Copy to... copies the selection (verified) into
    the folder typed in; Add to DMP shows the plan for the selection."""
    import time

    dest = lab.root.parent / "copies"
    page, _ = _open_notebook(lab, browser, "actions.ipynb", ['import bioimnb\nb = bioimnb.browse(".")\nb'])
    try:
        _run(page, 0)
        browse = _cell(0) + " .bioimnb-browser"
        row = f'{browse} .bioimnb-row[data-name="img.ome.tif"]'
        page.wait_for_selector(row, timeout=90_000)
        page.locator(row).click()
        page.wait_for_selector(f'{browse} .bioimnb-facts >> text="OME-TIFF"')
        page.wait_for_function(KERNEL_IDLE)
        page.locator(f'{browse} button[data-action="copy"]').click()
        target = page.locator(f'{_cell(0)} input[placeholder^="folder, s3://"]')
        target.wait_for(timeout=30_000)
        target.fill(str(dest))
        target.press("Enter")
        page.locator(f"{_cell(0)} .widget-button.mod-primary", has_text="Copy to...").click()
        copied = dest / "img.ome.tif"
        deadline = time.monotonic() + 60
        while not (copied.is_file() and copied.stat().st_size == (lab.root / "img.ome.tif").stat().st_size):
            assert time.monotonic() < deadline, "the copy did not arrive"
            time.sleep(0.2)
        assert copied.read_bytes() == (lab.root / "img.ome.tif").read_bytes()
        page.wait_for_function(KERNEL_IDLE)
        page.locator(f'{browse} button[data-action="dmp"]').click()
        # The plan for the one selected image, rendered below the listing.
        page.wait_for_selector(f"{_cell(0)} >> text=/Add to DMP: 1 selected/", timeout=60_000)
        page.wait_for_selector(f"{_cell(0)} >> text=/Data description and collection/", timeout=60_000)
        assert "OME-TIFF" in page.locator(_cell(0) + " .jp-Cell-outputArea").inner_text()
    finally:
        page.close()


def test_side_panel_lists_root_and_bucket_and_opens_the_viewer(lab: Lab, browser: Any, s3: Any) -> None:
    page = browser.new_page()
    traffic = Traffic(page)
    try:
        page.goto(f"{lab.url}lab?reset")
        page.wait_for_function("() => !!window.jupyterapp", timeout=60_000)
        page.wait_for_function("() => !!document.getElementById('bioimnb-storage-browser')")
        page.evaluate("async () => { await window.jupyterapp.restored; }")
        page.locator('.jp-SideBar li[data-id="bioimnb-storage-browser"]').click()  # its sidebar tab
        panel = "#bioimnb-storage-browser"
        row = f'{panel} .bioimnb-row[data-name="img.ome.tif"]'
        page.wait_for_selector(row, timeout=60_000)
        _thumb_loaded(page, row)
        assert "broken" in page.locator(f'{panel} .bioimnb-row[data-name="corrupt.ome.tif"]').inner_text()
        # Sorted by the server, with the notebook browser's rule: size, largest first.
        from bioimnb.core.locations import browse
        from bioimnb.core.locations.order import sort_entries

        listed = browse(".", root=str(lab.root)).list(page_size=1000).entries
        expected = [e.name for e in sort_entries(listed, "size", descending=True)]
        assert expected != sorted(expected)  # the order says something
        page.select_option(f'{panel} select[aria-label="Sort by"]', "size")
        page.locator(f'{panel} button[aria-label="Sort direction"]').click()
        page.wait_for_function(
            """([panel, first]) => {
                const rows = [...document.querySelectorAll(panel + ' .bioimnb-row')];
                const top = rows.find(r => r.dataset.index === '0');
                return document.querySelector(panel).dataset.complete === 'true' && top && top.dataset.name === first;
            }""",
            arg=[panel, expected[0]],
            timeout=30_000,
        )
        shown = page.locator(f"{panel} .bioimnb-row").evaluate_all(
            "rows => rows.map(r => [Number(r.dataset.index), r.dataset.name]).sort((a, b) => a[0] - b[0]).map(r => r[1])"
        )
        assert shown == expected[: len(shown)] and len(shown) >= 3, (shown, expected)
        page.locator(row).click()
        page.wait_for_selector(f'{panel} .bioimnb-facts >> text="tifffile"')
        page.locator(row).dblclick()
        document = ".bioimnb-document .bioimnb-viewer"
        page.wait_for_selector(f'{document}[data-complete="true"]', timeout=90_000)
        _assert_halves(page, document)
        # The configured bucket: listed and thumbnailed through the server (credentials there).
        page.select_option(f'{panel} select[aria-label="Location"]', label="Project bucket")
        remote = f'{panel} .bioimnb-row[data-name="remote.ome.tif"]'
        page.wait_for_selector(remote, timeout=60_000)
        _thumb_loaded(page, remote)
        page.locator(remote).click()
        page.wait_for_selector(f'{panel} .bioimnb-facts >> text="OME-TIFF"')
        # Its viewer: tiles through the same routes with location=, read by the server.
        page.locator(remote).dblclick()
        tab = '.bioimnb-document:has(.bioimnb-title:text("remote.ome.tif")) .bioimnb-viewer'
        page.wait_for_selector(f'{tab}[data-complete="true"]', timeout=90_000)
        quarter, half = IMAGE_SIZE // 4, IMAGE_SIZE // 2
        left, right = page.locator(tab).evaluate(
            f"(root, points) => ({PIXELS_AT})(root, points)", [[quarter, half], [3 * quarter, half]]
        )
        assert left[0] >= 240 and left[1] <= 15 and max(right[:3]) <= 15, (left, right)
        text = "\n".join(traffic.received + traffic.sent)
        for secret in (s3.key, s3.secret):
            assert secret not in text
    finally:
        page.close()


def test_plain_tiff_double_click_opens_the_bioimnb_viewer(lab: Lab, browser: Any) -> None:
    page = browser.new_page()
    try:
        page.goto(f"{lab.url}lab?reset")
        page.wait_for_function("() => !!window.jupyterapp", timeout=60_000)
        page.evaluate("async () => { await window.jupyterapp.restored; window.jupyterapp.shell.activateById('filebrowser'); }")
        page.wait_for_selector(".jp-DirListing-item")
        page.evaluate("() => window.jupyterapp.commands.execute('filebrowser:go-to-path', {path: '/'})")
        page.locator(".jp-DirListing-item", has_text="plain.tif").dblclick()
        document = '.bioimnb-document:has(.bioimnb-title:text("plain.tif")) .bioimnb-viewer'
        page.wait_for_selector(f'{document}[data-complete="true"]', timeout=90_000)
        left, right = page.locator(document).evaluate(
            f"(root, points) => ({PIXELS_AT})(root, points)", [[128, 128], [384, 128]]
        )
        # uint8 grey: the left half (200) is brighter than the right (0), drawn in the viewer.
        assert left[0] > 150 and left[0] == left[1] == left[2], left
        assert max(right[:3]) <= 15, right
        factory = page.evaluate("() => window.jupyterapp.docRegistry.defaultWidgetFactory('x.TIFF').name")
        assert factory == "bioimnb viewer"
    finally:
        page.close()


def test_no_secret_in_saved_notebook_state_responses_or_traffic(
    lab: Lab, browser: Any, s3: Any, s3_bucket: str
) -> None:
    creds = lab.root.parent / "creds.json"
    cells = [
        "import json, bioimnb\n"
        f"options = json.load(open({str(creds)!r}))  # credentials from a file, never in the notebook\n"
        f'b = bioimnb.browse("s3://{s3_bucket}/", **options)\nb',
        "print(b.selected)",
        f'c = bioimnb.browse("s3://{s3_bucket}/", endpoint_url={s3.endpoint_url!r})  # no credentials yet\nc',
    ]
    page, traffic = _open_notebook(lab, browser, "secrets.ipynb", cells)
    try:
        _run(page, 0)
        browse = _cell(0) + " .bioimnb-browser"
        row = f'{browse} .bioimnb-row[data-name="remote.ome.tif"]'
        page.wait_for_selector(row, timeout=90_000)
        _thumb_loaded(page, row)
        page.locator(row).click()
        page.wait_for_selector(f'{browse} .bioimnb-facts >> text="OME-TIFF"')
        page.locator(f'{browse} button[data-action="preview"]').click()
        viewer = _cell(0) + " .bioimnb-viewer"
        page.wait_for_selector(f'{viewer}[data-complete="true"]', timeout=90_000)
        _assert_halves(page, viewer)
        page.wait_for_function(KERNEL_IDLE)
        _run(page, 1)
        page.wait_for_selector(f"{_cell(1)} >> text=/Selected\\(/")
        assert f"s3://{s3_bucket}/remote.ome.tif" in page.locator(_cell(1)).inner_text()
        # The credentials form: refused first, then the key and secret typed into the widget.
        page.wait_for_function(KERNEL_IDLE)
        _run(page, 2)
        other = _cell(2) + " .bioimnb-browser"
        page.wait_for_selector(f"{other} .bioimnb-error:not(:empty)", timeout=90_000)
        assert s3.secret not in page.locator(f"{other} .bioimnb-error").inner_text()
        page.locator(f'{other} button[aria-label="Credentials"]').click()
        page.locator(f'{other} input[aria-label="Access key"]').fill(s3.key)
        page.locator(f'{other} input[aria-label="Secret key"]').fill(s3.secret)
        page.locator(f'{other} button[aria-label="Use these credentials"]').click()
        page.wait_for_selector(f'{other} .bioimnb-row[data-name="remote.ome.tif"]', timeout=90_000)
        assert page.locator(f'{other} input[aria-label="Secret key"]').input_value() == ""
        typed = [frame for frame in traffic.sent if s3.secret in frame]
        assert len(typed) == 1 and '"credentials"' in typed[0]  # the form's one message to the kernel
        traffic.sent.remove(typed[0])
        page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
        page.wait_for_function(
            "() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=30_000
        )
        saved = (lab.root / "secrets.ipynb").read_text()
        assert "application/vnd.jupyter.widget-state+json" in saved  # widget state was saved
        text = saved + "\n".join(traffic.received) + "\n".join(traffic.sent)
        for secret in (s3.key, s3.secret):
            assert secret not in text
    finally:
        page.close()
