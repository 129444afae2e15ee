"""Notebooks that travel, end to end: the workshop notebooks 03 and 06 executed headless (nbclient,
no browser attached), exported to HTML with nbconvert, opened in Debian's Chromium with no
network: every viewer output is a picture that decodes, is not blank and has the pixels the
kernel stored; no widget placeholder is left in the page."""

from __future__ import annotations

import base64
import io
import shutil
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient
from nbconvert import HTMLExporter
from PIL import Image
from uilab import REPO

WIDGET = "application/vnd.jupyter.widget-view+json"

# JS: each <img> of the page decoded and drawn on a canvas: natural size, how many pixels are
# not black, and the RGBA at the given (fractional) sample points.
READ_IMAGES = """
async (points) => {
  const out = [];
  for (const img of document.querySelectorAll('img')) {
    try { await img.decode(); } catch (e) { out.push({error: String(e)}); continue; }
    const w = img.naturalWidth, h = img.naturalHeight;
    const c = document.createElement('canvas');
    c.width = w; c.height = h;
    const ctx = c.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const d = ctx.getImageData(0, 0, w, h).data;
    let lit = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] || d[i + 1] || d[i + 2]) lit++;
    const samples = points.map(([fx, fy]) => {
      const x = Math.min(w - 1, Math.floor(fx * w)), y = Math.min(h - 1, Math.floor(fy * h));
      const k = 4 * (y * w + x);
      return [d[k], d[k + 1], d[k + 2], d[k + 3]];
    });
    out.push({w, h, lit, samples, shown: img.getBoundingClientRect().width});
  }
  return out;
}
"""
POINTS = [(i / 11 + 0.02, j / 7 + 0.03) for i in range(11) for j in range(7)]


def _execute(path: Path) -> Any:
    nb = nbformat.read(path, as_version=4)
    # Widget state is not stored, as JupyterLab saves a notebook by default ("Save Widget State
    # Automatically" off); with it, nbconvert prefers the live widget (see docs/notebooks-that-travel.md).
    client = NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        store_widget_state=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    return nb


def _viewer_outputs(nb: Any) -> list[Any]:
    return [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if WIDGET in out.get("data", {})
    ]


def _decode(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGBA"))


NOTEBOOKS = {
    "03-preview.ipynb": [
        # the first viewer was moved and recoloured by a later cell: its picture is that view
        "bioimnb viewer: cells.ome.tif, scene 0, level 0, x 1648-2448, y 1788-2308, 512 x 333 px",
        "bioimnb viewer: tissue.ome.zarr, scene 0, z 1, level 2, labels nuclei, 512 x 512 px",
        "bioimnb viewer: slide.svs, scene 0, level 3, 512 x 341 px",
    ],
    "06-explore.ipynb": [
        # add_labels in a later cell: the picture shows both overlays
        "bioimnb viewer: field, scene 0, level 1, labels nuclei cells, 512 x 384 px",
        "bioimnb viewer: stack, scene 0, level 1, labels nuclei, 512 x 384 px",
        "bioimnb viewer: background subtracted, scene 0, level 1, labels nuclei, 512 x 384 px",
    ],
}


@pytest.mark.parametrize("name", list(NOTEBOOKS))
def test_exported_notebook_shows_the_viewer_pictures(
    name: str, tmp_path: Path, browser: Any
) -> None:
    work = tmp_path / "notebooks"
    work.mkdir()
    shutil.copy(REPO / "notebooks" / name, work / name)
    nb = _execute(work / name)

    viewers = _viewer_outputs(nb)
    assert [out.data["text/plain"] for out in viewers] == NOTEBOOKS[name]
    stored = [_decode(out.data["image/png"]) for out in viewers]

    html, _ = HTMLExporter().from_notebook_node(
        nb, resources={"metadata": {"name": name, "path": str(work)}}
    )
    assert WIDGET not in html  # no widget placeholder: the pictures stand in for the viewers
    page_path = work / (name + ".html")
    page_path.write_text(html, encoding="utf-8")

    page = browser.new_page()  # Debian's Chromium (tests/ui/conftest.py)
    # an exported page asks CDNs for require.js, MathJax and the widget manager: no network
    page.route("http*://**/*", lambda route: route.abort())
    try:
        page.goto(page_path.as_uri(), wait_until="load")
        found = page.evaluate(READ_IMAGES, POINTS)
    finally:
        page.close()
    assert all("error" not in f for f in found), found
    # the viewers' pictures appear in the page in order (other figures may sit between them)
    pictures = iter(found)
    for px in stored:
        h, w = px.shape[:2]
        f = next((g for g in pictures if (g["w"], g["h"]) == (w, h)), None)
        assert f is not None, (
            f"no {w} x {h} picture in the page: {[(g['w'], g['h']) for g in found]}"
        )
        assert f["lit"] > 0.05 * w * h, "the picture is (almost) blank"
        assert f["shown"] > 0, "the picture is not laid out"
        expected = [
            px[min(h - 1, int(fy * h)), min(w - 1, int(fx * w))].tolist() for fx, fy in POINTS
        ]
        assert f["samples"] == expected  # Chromium decodes the very pixels the kernel rendered


def test_run_all_in_jupyterlab_keeps_one_live_viewer(lab: Any, browser: Any) -> None:
    """JupyterLab's "Run All" sends every cell before the browser draws the viewer, so the
    kernel updates the viewer's output after the cell that moves the view: the output still
    shows ONE live viewer, at the view the later cell set, and the saved notebook's picture
    is that view."""
    from uilab import write_notebook

    write_notebook(
        lab.root / "travel.ipynb",
        [
            'import bioimnb\nv = bioimnb.view("img.ome.tif")\nv',
            "v.go_to(512, 1024, zoom=0.5)",
            'print("DONE", v.view["zoom"])',
        ],
    )
    page = browser.new_page()
    try:
        page.goto(f"{lab.url}lab/tree/travel.ipynb")
        page.wait_for_selector(".jp-Notebook .jp-Cell .jp-InputArea-editor")
        page.wait_for_function(
            "() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
            " const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;"
            " return !!k && k.status === 'idle'; }",
            timeout=60_000,
        )
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        last = page.locator(".jp-Notebook .jp-Cell").nth(2).locator(".jp-OutputArea-output")
        last.first.wait_for()
        assert "DONE 0.5" in last.first.inner_text()
        first = page.locator(".jp-Notebook .jp-Cell").nth(0)
        page.wait_for_selector('.jp-OutputArea-output .bioimnb-viewer[data-complete="true"]')
        page.wait_for_timeout(1500)  # let a late second view (if any) appear
        assert first.locator(".bioimnb-viewer").count() == 1
        assert first.locator(".jp-OutputArea-output").count() == 1
        data = first.locator(".bioimnb-viewer").evaluate("el => ({...el.dataset})")
        assert float(data["zoom"]) == 0.5 and float(data["centerX"]) == 512
        # what JupyterLab would save: the output holds the widget and the picture of that view
        saved = page.evaluate(
            "() => window.jupyterapp.shell.currentWidget.content.model.cells.get(0).toJSON().outputs"
        )
        assert len(saved) == 1 and WIDGET in saved[0]["data"]
        assert saved[0]["data"]["text/plain"].startswith(
            "bioimnb viewer: img.ome.tif, scene 0, level 1, x 0-1"
        )
    finally:
        page.close()
