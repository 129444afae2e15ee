"""Label overlays of in-memory images in a real JupyterLab with Chromium: the label's colour is
painted at a known pixel (at 50 %, and at the opacity the panel's slider sets), its id shows in
the pixel readout, and a live viewer repaints after ``v.update(obj)``, ``v.add_labels`` and
``v.remove_labels``, keeping its view."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from uilab import PIXELS_AT, Lab, write_notebook

from bioimnb.core.tiles import label_colors

_ROOT = "(i) => document.querySelectorAll('.jp-Notebook .jp-Cell')[i].querySelector('.bioimnb-viewer')"
READ_PIXELS = f"([cell, points]) => ({PIXELS_AT})(({_ROOT})(cell), points)"
DATA = f"(i) => ({{...({_ROOT})(i).dataset}})"
ARM_REPAINT = f"""
(i) => {{
  const root = ({_ROOT})(i);
  window.__repaint = {{done: false, sawFalse: false}};
  const mo = new MutationObserver(() => {{
    if (root.dataset.complete === 'false') {{ window.__repaint.sawFalse = true; }}
    else if (window.__repaint.sawFalse) {{ window.__repaint.done = true; mo.disconnect(); }}
  }});
  mo.observe(root, {{attributes: true, attributeFilter: ['data-complete']}});
}}
"""
KERNEL_IDLE = (
    "() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
    " const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;"
    " return !!k && k.status === 'idle'; }"
)

# A 600 x 800 uint16 image: 1000 on the left half, 100 on the right; window 0..1000, so the left
# half is white and the right half grey 26 (100/1000 of 255, rounded).  Label 5 covers a square
# on the left, label 9 (added later) one on the right.
SETUP = """\
import numpy as np
import bioimnb
img = np.full((600, 800), 100, np.uint16)
img[:, :400] = 1000
mask = np.zeros((600, 800), np.uint16)
mask[100:250, 100:250] = 5
v = bioimnb.view(img, labels={"nuclei": mask}, view={"channels": [{"index": 0, "min": 0, "max": 1000}]})
v"""
IN_LABEL, OUTSIDE, RIGHT = [175, 175], [300, 400 - 50], [600, 300]
SECOND = [600, 450]


def _blend(base: int, label: int) -> list[int]:
    colour = label_colors(np.array([label]))[0].astype(int)
    return [int((base + c + 1) // 2) for c in colour] + [255]


@pytest.mark.browser
@pytest.mark.timeout(240)
def test_label_overlay_painted_read_out_and_updated(lab: Lab, browser: Any) -> None:
    write_notebook(
        lab.root / "labels.ipynb",
        [
            SETUP,
            'mask2 = np.zeros((600, 800), np.uint16); mask2[400:500, 550:650] = 9\nv.add_labels("cells", mask2)',
            "v.update(np.full((600, 800), 1000, np.uint16))",
            'v.remove_labels("nuclei")',
            'v.add_labels("bad", np.zeros((3, 3), np.float32))',
        ],
    )
    page = browser.new_page()
    try:
        page.goto(f"{lab.url}lab/tree/labels.ipynb")
        page.wait_for_selector(".jp-Notebook .jp-Cell .jp-InputArea-editor")
        page.wait_for_function(KERNEL_IDLE, timeout=60_000)

        def run(index: int) -> None:
            page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-InputArea-editor").click()
            page.keyboard.press("Control+Enter")

        def repainted(action: Callable[[], None]) -> None:
            page.evaluate(ARM_REPAINT, 0)
            action()
            page.wait_for_function("() => window.__repaint.done", timeout=60_000)

        def pixels(*points: list[int]) -> list[list[int]]:
            return [list(p) for p in page.evaluate(READ_PIXELS, [0, list(points)])]

        run(0)
        page.wait_for_function(f"() => ({_ROOT})(0)?.dataset.complete === 'true'", timeout=60_000)
        label_box = page.locator('.bioimnb-viewer input[aria-label="Label nuclei"]').first
        assert label_box.is_checked()
        inside, outside, right = pixels(IN_LABEL, OUTSIDE, RIGHT)
        assert inside == _blend(255, 5)
        assert outside == [255, 255, 255, 255]
        assert right == [26, 26, 26, 255]

        # the pixel readout names the label id under the cursor
        data = page.evaluate(DATA, 0)
        zoom, cx, cy = float(data["zoom"]), float(data["centerX"]), float(data["centerY"])
        stage = page.locator(".bioimnb-viewer .bioimnb-stage").first.bounding_box()
        sx = stage["x"] + stage["width"] / 2 + (IN_LABEL[0] + 0.5 - cx) * zoom
        sy = stage["y"] + stage["height"] / 2 + (IN_LABEL[1] + 0.5 - cy) * zoom
        page.mouse.move(sx, sy)
        status = page.locator(".bioimnb-viewer .bioimnb-status").first
        page.wait_for_function("el => /nuclei #5/.test(el.textContent)", arg=status.element_handle())
        page.mouse.move(stage["x"] + 5, stage["y"] + stage["height"] - 5)

        # the user hides the overlay: plain pixels again
        repainted(lambda: label_box.uncheck())
        assert pixels(IN_LABEL)[0] == [255, 255, 255, 255]
        repainted(lambda: label_box.check())
        assert pixels(IN_LABEL)[0] == _blend(255, 5)

        # opacity: 100 % paints the label's own colour, 20 % mostly the image
        opacity = page.locator('.bioimnb-viewer input[aria-label="Label opacity"]').first
        set_value = "(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); el.dispatchEvent(new Event('change')); }"
        repainted(lambda: opacity.evaluate(set_value, "100"))
        colour = [int(c) for c in label_colors(np.array([5]))[0]]
        assert pixels(IN_LABEL)[0] == [*colour, 255]
        repainted(lambda: opacity.evaluate(set_value, "20"))
        assert pixels(IN_LABEL)[0] == [int(np.floor(255 + (c - 255) * 0.2 + 0.5)) for c in colour] + [255]
        repainted(lambda: opacity.evaluate(set_value, "50"))
        assert pixels(IN_LABEL)[0] == _blend(255, 5)
        page.wait_for_timeout(600)  # the view (labels shown) reaches the kernel (debounced)

        # a second label from Python: painted where it is, the first one kept
        repainted(lambda: run(1))
        assert pixels(IN_LABEL, SECOND) == [_blend(255, 5), _blend(26, 9)]
        assert page.locator('.bioimnb-viewer input[aria-label="Label cells"]').first.is_checked()
        view_before = page.evaluate(DATA, 0)

        # new pixels under the same view and labels
        repainted(lambda: run(2))
        assert pixels(RIGHT, SECOND, IN_LABEL) == [[255, 255, 255, 255], _blend(255, 9), _blend(255, 5)]
        after = page.evaluate(DATA, 0)
        assert (after["zoom"], after["centerX"], after["centerY"]) == (
            view_before["zoom"],
            view_before["centerX"],
            view_before["centerY"],
        )

        repainted(lambda: run(3))
        assert pixels(IN_LABEL, SECOND) == [[255, 255, 255, 255], _blend(255, 9)]
        assert page.locator('.bioimnb-viewer input[aria-label="Label nuclei"]').count() == 0

        # a float array is refused in one line, the viewer untouched
        run(4)
        page.wait_for_function(KERNEL_IDLE)
        err = page.locator(".jp-Notebook .jp-Cell").nth(4).locator(".jp-OutputArea-output").first
        page.wait_for_function("el => /dtype float32/.test(el.textContent)", arg=err.element_handle())
        assert "label 'bad' has dtype float32; label images hold integer ids" in err.inner_text()
        assert pixels(SECOND)[0] == _blend(255, 9)
    finally:
        page.close()
