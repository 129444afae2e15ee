"""The multiresolution viewer in a real JupyterLab, driven with Debian's Chromium.

(a) the notebook widget paints the expected colours at known image positions, shows pixel
    values under the cursor, and syncs its view state with Python both ways;
(b) zooming in with the wheel requests finer pyramid levels;
(c) opening an OME-TIFF from the file browser URL shows the document viewer, fed by REST tiles;
    a *.zarr folder double-clicked in the file browser opens in the viewer with its labels;
(d) a corrupt OME-TIFF shows an error message inside the viewer;
(e) the document viewer remembers its view per file (JupyterLab's state database, saved in the
    workspace): closing and reopening the file, or reloading the page, shows the changed view;
    a stale remembered view (another image's) is ignored.

Timings (first paint, contrast repaint) are printed; run with ``-s`` to see them.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.parse
import urllib.request
from typing import Any

import pytest
from uilab import BRIGHT, IMAGE_SIZE, PIXELS_AT, Lab, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

WIDGET = ".jp-OutputArea-output .bioimnb-viewer"
DOCUMENT = ".bioimnb-document .bioimnb-viewer"

# Reads canvas pixels at level-0 image positions, using the viewer's own centre and zoom.
READ_PIXELS = f"([selector, points]) => ({PIXELS_AT})(document.querySelector(selector), points)"


def _shot(page: Any, name: str) -> None:
    """Save a screenshot when BIOIMNB_UI_SCREENSHOTS names a folder (for looking, not asserting)."""
    folder = os.environ.get("BIOIMNB_UI_SCREENSHOTS")
    if folder:
        os.makedirs(folder, exist_ok=True)
        page.screenshot(path=os.path.join(folder, f"{name}.png"))


def _wait_complete(page: Any, selector: str, timeout: float = 60_000) -> None:
    page.wait_for_selector(f'{selector}[data-complete="true"]', timeout=timeout)


def _data(page: Any, selector: str) -> dict[str, str]:
    return page.eval_on_selector(selector, "el => ({...el.dataset})")


def _assert_halves(page: Any, selector: str) -> None:
    """Left half of the test image is red, right half black (auto contrast)."""
    quarter, half = IMAGE_SIZE // 4, IMAGE_SIZE // 2
    left, right = page.evaluate(READ_PIXELS, [selector, [[quarter, half], [3 * quarter, half]]])
    assert left[0] >= 240 and left[1] <= 15 and left[2] <= 15, f"left half should be red: {left}"
    assert max(right[:3]) <= 15, f"right half should be black: {right}"


def _run_cell(page: Any, index: int) -> None:
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Control+Enter")


def _wait_output(page: Any, index: int, pattern: str) -> str:
    """The output text of cell ``index`` once it matches ``pattern``."""
    output = page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-OutputArea-output")
    page.wait_for_function(
        "([el, pattern]) => new RegExp(pattern).test(el.textContent)",
        arg=[output.first.element_handle(), pattern],
    )
    return str(output.first.inner_text())


@pytest.fixture(scope="module")
def notebook(lab: Lab, browser: Any) -> Any:
    """The notebook page with the viewer cell executed and painted (timings attached)."""
    write_notebook(
        lab.root / "viewer.ipynb",
        [
            'import bioimnb; v = bioimnb.view("img.ome.tif"); v',
            'print("ZOOM", v.view["zoom"], "LEVEL0", v.info["levels"][0]["shape"])',
            'v.view = {**v.view, "center_x": 1024.0, "center_y": 1024.0, "zoom": 0.125}\nprint("SET")',
        ],
    )
    page = browser.new_page()
    page.goto(f"{lab.url}lab/tree/viewer.ipynb")
    page.wait_for_selector(".jp-Notebook .jp-Cell .jp-InputArea-editor")
    # Wait for the kernel before timing the cell (the status shows "Idle").
    page.wait_for_function(
        "() => { const app = window.jupyterapp; const w = app && app.shell.currentWidget;"
        " const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;"
        " return !!k && k.status === 'idle'; }",
        timeout=60_000,
    )
    start = time.perf_counter()
    _run_cell(page, 0)
    _wait_complete(page, WIDGET)
    page.first_paint_s = time.perf_counter() - start  # type: ignore[attr-defined]
    print(
        f"\nnotebook widget: first full viewport {page.first_paint_s:.2f} s after running the cell "  # type: ignore[attr-defined]
        f"(viewer-side {_data(page, WIDGET).get('firstPaintMs')} ms)"
    )
    yield page
    page.close()


def test_a_widget_paints_expected_colours(notebook: Any) -> None:
    page = notebook
    data = _data(page, WIDGET)
    assert data["state"] == "ready"
    assert int(data["tilesReceived"]) >= 1
    _assert_halves(page, WIDGET)
    _shot(page, "a-widget")

    # Pixel values under the cursor (a debounced values request to the kernel).
    box = page.locator(f"{WIDGET} canvas.bioimnb-canvas").bounding_box()
    zoom = float(data["zoom"])
    x = box["x"] + box["width"] / 2 + (IMAGE_SIZE // 4 - float(data["centerX"])) * zoom
    y = box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    status = page.locator(f"{WIDGET} .bioimnb-status")
    page.wait_for_function(
        "el => /Left \\d+/.test(el.textContent)", arg=status.element_handle(), timeout=15_000
    )
    assert f"Left {BRIGHT}" in status.inner_text()
    _shot(page, "a-widget-hover")

    # The scale bar knows the pixel size (0.5 um).
    assert re.search(r"\d+ (µm|mm)", page.locator(f"{WIDGET} .bioimnb-scalebar").inner_text())

    # Contrast change from the panel: the repaint time is recorded by the viewer.
    page.locator(f'{WIDGET} [data-channel="0"] button', has_text="auto").click()
    max_slider = page.locator(f'{WIDGET} input[aria-label="Left maximum"]')
    max_slider.evaluate(
        "el => { el.value = String(Number(el.max)); el.dispatchEvent(new Event('change')); }"
    )
    _wait_complete(page, WIDGET)
    print(f"contrast change repaint: {_data(page, WIDGET).get('repaintMs')} ms")


def test_b_wheel_zoom_requests_finer_levels_and_syncs_view(notebook: Any) -> None:
    page = notebook
    before = _data(page, WIDGET)
    levels_before = set(before["levelsRequested"].split(","))
    assert "0" not in levels_before, before  # fitted: a 2048-px image needs no level 0
    requested_before = int(before["tilesRequested"])

    canvas = page.locator(f"{WIDGET} canvas.bioimnb-canvas")
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(6):
        page.mouse.wheel(0, -300)
        page.wait_for_timeout(60)
    page.wait_for_function(
        "sel => { const el = document.querySelector(sel);"
        " return el.dataset.targetLevel === '0' && el.dataset.complete === 'true'; }",
        arg=WIDGET,
        timeout=30_000,
    )
    after = _data(page, WIDGET)
    assert "0" in after["levelsRequested"].split(","), after
    _shot(page, "b-zoomed")
    assert int(after["tilesRequested"]) > requested_before
    assert float(after["zoom"]) > float(before["zoom"]) * 3

    # Browser -> Python: the zoom reached the kernel's `v.view`.
    page.wait_for_timeout(600)  # view changes are debounced (250 ms)
    _run_cell(page, 1)
    text = _wait_output(page, 1, r"ZOOM \S+")
    match = re.search(r"ZOOM (\S+)", text)
    assert match and match.group(1) != "None", text
    assert abs(float(match.group(1)) - float(after["zoom"])) < 1e-3 * float(after["zoom"])

    # Python -> browser: assigning v.view moves the viewer.
    _run_cell(page, 2)
    page.wait_for_function(
        "sel => Math.abs(Number(document.querySelector(sel).dataset.zoom) - 0.125) < 1e-9",
        arg=WIDGET,
    )
    _wait_complete(page, WIDGET)
    _assert_halves(page, WIDGET)


def test_c_document_viewer_opens_ome_tiff_and_zarr_folder(lab: Lab, browser: Any) -> None:
    page = browser.new_page()
    tiles: list[str] = []
    page.on("request", lambda r: tiles.append(r.url) if "/bioimnb/api/tile?" in r.url else None)
    try:
        start = time.perf_counter()
        page.goto(f"{lab.url}lab/tree/img.ome.tif")
        _wait_complete(page, DOCUMENT)
        print(
            f"\ndocument viewer: first full viewport {time.perf_counter() - start:.2f} s after navigation "
            f"(viewer-side {_data(page, DOCUMENT).get('firstPaintMs')} ms)"
        )
        _assert_halves(page, DOCUMENT)
        _shot(page, "c-document")
        assert tiles and all(u.startswith(lab.url + "bioimnb/api/tile?") for u in tiles), tiles[:3]
        assert page.locator(".jp-MainAreaWidget .bioimnb-document, .bioimnb-document").count() >= 1

        # bioimnb is the default viewer for OME-TIFF, slides and (issue 11) every plain TIFF.
        factories = page.evaluate(
            "() => { const r = window.jupyterapp.docRegistry;"
            " return [r.defaultWidgetFactory('a.ome.tif').name, r.defaultWidgetFactory('a.svs').name,"
            " r.defaultWidgetFactory('a.tif').name,"
            " r.preferredWidgetFactories('a.tif').map(f => f.name)]; }"
        )
        assert factories[:2] == ["bioimnb viewer", "bioimnb viewer"], factories
        assert factories[2] == "bioimnb viewer" == factories[3][0], factories

        # A *.zarr folder: double-click in the file browser opens it in the viewer.
        page.evaluate(
            "() => window.jupyterapp.commands.execute('filebrowser:go-to-path', {path: 'demo'})"
        )
        item = page.locator(".jp-DirListing-item", has_text="tissue.ome.zarr")
        item.dblclick()
        zarr = '.bioimnb-document:has(.bioimnb-title:text("tissue.ome.zarr")) .bioimnb-viewer'
        _wait_complete(page, zarr)
        assert _data(page, zarr)["state"] == "ready"
        labels = page.locator(f'{zarr} input[aria-label="Label nuclei"]')
        labels.check()
        _wait_complete(page, zarr)
        _shot(page, "c-zarr-labels")
        assert any("labels=nuclei" in u for u in tiles)
    finally:
        page.close()


def test_d_corrupt_file_shows_error_in_viewer(lab: Lab, browser: Any) -> None:
    page = browser.new_page()
    try:
        page.goto(f"{lab.url}lab/tree/corrupt.ome.tif")
        error = page.locator(f"{DOCUMENT} .bioimnb-error")
        error.wait_for(state="visible")
        text = error.inner_text()
        _shot(page, "d-error")
        assert "Cannot display" in text and "corrupt.ome.tif" in text, text
        assert "not" in text.lower(), text  # the server's reason, e.g. "not a OME-TIFF file"
        assert _data(page, DOCUMENT)["state"] == "error"
        info = json.dumps(_data(page, DOCUMENT))
        assert lab.token not in info
    finally:
        page.close()


MEMORY_WORKSPACE = "bioimnb-memory"
STALE_WORKSPACE = "bioimnb-stale"
VIEW_KEY = "bioimnb-view:img.ome.tif"


def _open_from_browser(page: Any, name: str) -> None:
    """Double-click ``name`` in the file browser's root listing."""
    page.wait_for_function(
        "() => !!window.jupyterapp && window.jupyterapp.commands.hasCommand('filebrowser:go-to-path')"
    )
    page.evaluate("() => window.jupyterapp.commands.execute('filebrowser:go-to-path', {path: '/'})")
    item = page.locator(".jp-DirListing-item", has=page.get_by_text(name, exact=True))
    item.dblclick()


def _close_tab(page: Any, label: str) -> None:
    tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=label)
    tab.locator(".lm-TabBar-tabCloseIcon").click()
    page.wait_for_selector(".bioimnb-document", state="detached")


def _workspace(lab: Lab, name: str) -> dict[str, Any]:
    return json.loads(lab.get(f"lab/api/workspaces/{urllib.parse.quote(name)}"))["data"]


def _wait_workspace(lab: Lab, name: str, check: Any, what: str) -> dict[str, Any]:
    """The workspace's data once ``check(data)`` holds (JupyterLab saves it debounced)."""
    deadline = time.monotonic() + 30
    while True:
        data = _workspace(lab, name)
        if check(data):
            return data
        assert time.monotonic() < deadline, f"{what} never reached the workspace: {data}"
        time.sleep(0.2)


def _saved_window(data: dict[str, Any]) -> list[float | None]:
    """Channel 0's [min, max] in the view the workspace remembers for img.ome.tif."""
    channels = (data.get(VIEW_KEY) or {}).get("view", {}).get("channels") or [{}]
    return [channels[0].get("min"), channels[0].get("max")]


def _put_workspace(lab: Lab, name: str, data: dict[str, Any]) -> None:
    body = json.dumps({"data": data, "metadata": {"id": name}}).encode()
    req = urllib.request.Request(
        f"{lab.url}lab/api/workspaces/{urllib.parse.quote(name)}",
        data=body,
        method="PUT",
        headers={"Authorization": f"token {lab.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30):
        pass


def _view(page: Any) -> dict[str, Any]:
    """What the document viewer shows: centre and zoom (data attributes), channel 0's contrast
    window (the panel's sliders) and the painted colours either side of the halves' boundary."""
    data = _data(page, DOCUMENT)
    cx, cy = float(data["centerX"]), float(data["centerY"])
    # Probes either side of the halves' boundary (x = 1024), on screen at any view used here.
    points = [[IMAGE_SIZE // 2 - 40, round(cy)], [IMAGE_SIZE // 2 + 40, round(cy)]]
    pixels = page.evaluate(READ_PIXELS, [DOCUMENT, points])
    lo, hi = (
        page.eval_on_selector(
            f'{DOCUMENT} input[aria-label="Left {end}"]', "el => Number(el.value)"
        )
        for end in ("minimum", "maximum")
    )
    restored = page.eval_on_selector(".bioimnb-doc", "el => el.dataset.viewRestored")
    return {
        "zoom": float(data["zoom"]),
        "cx": cx,
        "cy": cy,
        "min": float(lo),
        "max": float(hi),
        "pixels": pixels,
        "restored": restored,
    }


def _assert_same_view(got: dict[str, Any], want: dict[str, Any], when: str) -> None:
    assert abs(got["zoom"] - want["zoom"]) <= 1e-4 * want["zoom"], (when, got, want)
    assert abs(got["cx"] - want["cx"]) <= 0.02 and abs(got["cy"] - want["cy"]) <= 0.02, (
        when,
        got,
        want,
    )
    assert (got["min"], got["max"]) == (want["min"], want["max"]), (when, got, want)
    for g, w in zip(got["pixels"], want["pixels"], strict=True):
        assert all(abs(a - b) <= 3 for a, b in zip(g, w, strict=True)), (when, got, want)
    assert got["restored"] == "true", (when, got)


def _channel0_windows(urls: list[str]) -> set[tuple[float, float]]:
    """Channel 0's (min, max) in each tile request (``ch=0:rrggbb:min:max,...``)."""
    out = set()
    for url in urls:
        ch = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["ch"][0]
        for part in ch.split(","):
            index, _color, lo, hi = part.split(":")
            if index == "0":
                out.add((float(lo), float(hi)))
    return out


def test_e_document_viewer_remembers_view(lab: Lab, browser: Any) -> None:
    page = browser.new_page()
    tiles: list[str] = []
    page.on("request", lambda r: tiles.append(r.url) if "/bioimnb/api/tile?" in r.url else None)
    try:
        # A workspace of its own: the other tests' open tabs and views do not come into it.
        page.goto(f"{lab.url}lab/workspaces/{MEMORY_WORKSPACE}")
        _open_from_browser(page, "img.ome.tif")
        _wait_complete(page, DOCUMENT)
        default = _view(page)
        assert default["restored"] != "true", default
        left, right = default["pixels"]
        assert left[0] >= 240 and max(right[:3]) <= 15, default  # auto contrast: red | black

        # As a user would: zoom in twice, drag the image, narrow channel 0's contrast window to
        # the top of its slider (just above the left half's 4000, which then paints half red).
        plus = page.locator(f'{DOCUMENT} button[aria-label="Zoom in"]')
        plus.click()
        plus.click()
        box = page.locator(f"{DOCUMENT} canvas.bioimnb-canvas").bounding_box()
        x0, y0 = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(x0, y0)
        page.mouse.down()
        page.mouse.move(x0 + 60, y0 + 40, steps=5)
        page.mouse.up()
        top = page.locator(f'{DOCUMENT} input[aria-label="Left maximum"]').evaluate(
            "el => { el.value = el.max; el.dispatchEvent(new Event('change')); return Number(el.max); }"
        )
        page.locator(f'{DOCUMENT} input[aria-label="Left minimum"]').evaluate(
            "(el, v) => { el.value = String(v); el.dispatchEvent(new Event('change')); }", top - 2
        )
        _wait_complete(page, DOCUMENT)
        changed = _view(page)
        assert changed["zoom"] > 2 * default["zoom"], (changed, default)
        assert changed["cx"] < default["cx"] - 10 and changed["cy"] < default["cy"] - 10, changed
        assert (changed["min"], changed["max"]) == (top - 2, top) and top > BRIGHT, changed
        assert 40 <= changed["pixels"][0][0] <= 200, changed  # the left half is dimmer now

        # Saved once the changes settle (500 ms debounce), then into the workspace on disk.
        start = time.perf_counter()
        page.wait_for_selector(".bioimnb-doc[data-view-saves]", timeout=5_000)
        saved_s = time.perf_counter() - start
        window = [changed["min"], changed["max"]]
        record = _wait_workspace(
            lab, MEMORY_WORKSPACE, lambda d: _saved_window(d) == window, "the changed view"
        )[VIEW_KEY]
        view = record["view"]
        assert abs(view["zoom"] - changed["zoom"]) <= 1e-4 * changed["zoom"], view
        assert abs(view["center_x"] - changed["cx"]) <= 0.01, view
        print(f"\nview saved {saved_s:.2f} s after the last change settled: {record}")

        # Close the tab and open the file again: the changed view, from the first tile on.
        _close_tab(page, "img.ome.tif")
        tiles.clear()
        _open_from_browser(page, "img.ome.tif")
        _wait_complete(page, DOCUMENT)
        _assert_same_view(_view(page), changed, "reopened")
        assert tiles and _channel0_windows(tiles) == {(changed["min"], changed["max"])}, tiles[:3]

        # Reload: JupyterLab restores the tab, and the viewer its view.
        _wait_workspace(
            lab,
            MEMORY_WORKSPACE,
            lambda d: "img.ome.tif" in json.dumps(d.get("layout-restorer:data")),
            "the reopened tab",
        )
        tiles.clear()
        page.reload()
        _wait_complete(page, DOCUMENT)
        _assert_same_view(_view(page), changed, "reloaded")
        assert tiles and _channel0_windows(tiles) == {(changed["min"], changed["max"])}, tiles[:3]
        _shot(page, "e-remembered")
    finally:
        page.close()


def test_f_stale_remembered_view_is_ignored(lab: Lab, browser: Any) -> None:
    """A view remembered for another image (e.g. the file was replaced) opens the default view."""
    stale = {
        "image": "3|4096x4096|5|1|1|uint8|",
        "view": {
            "scene": 2, "t": 0, "z": 0, "center_x": 3000, "center_y": 3000, "zoom": 4,
            "channels": [{"index": i, "visible": True, "color": "ffffff", "min": 0, "max": 1}
                         for i in range(5)],
            "labels": [],
        },
    }  # fmt: skip
    broken = {"image": None, "view": {"scene": 0, "t": "x", "channels": None}}
    page = browser.new_page()
    try:
        for record in (stale, broken):
            page.goto("about:blank")  # no page of the workspace saves over what is put
            _put_workspace(lab, STALE_WORKSPACE, {VIEW_KEY: record})
            page.goto(f"{lab.url}lab/workspaces/{STALE_WORKSPACE}")
            _open_from_browser(page, "img.ome.tif")
            _wait_complete(page, DOCUMENT)
            view = _view(page)
            assert view["restored"] == "false", view
            assert _data(page, DOCUMENT)["state"] == "ready"
            _assert_halves(page, DOCUMENT)
            # Forgotten: the next open does not check it again.
            _wait_workspace(lab, STALE_WORKSPACE, lambda d: VIEW_KEY not in d, "forgetting it")
    finally:
        page.close()
