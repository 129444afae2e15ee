"""The scene picker and the T and Z sliders of both viewers, in a real JupyterLab with Chromium.

The image (``fixtures.ome_tiff_planes``) has 2 scenes of T=3, Z=2, C=2, and every (scene, t, z)
plane paints its own colour right of two calibration strips (which make each scene's auto
contrast ``(0, white)``, a different white per scene), so the colour read back from the canvas
names the plane shown, and a tile of another plane, or another scene's contrast, would show.

(a) notebook widget: the T slider, the Z slider and the scene picker, moved as a user does
    (keyboard on the range inputs, a select option), repaint the new plane at four positions
    (one per level-0 tile) and reach the kernel's ``v.view``; going back to planes seen before
    repaints from the browser's cache, and another scene's plane at the same (t, z) is not
    taken from it;
(b) notebook widget: assigning ``v.view`` in Python (t and z, then the scene) moves the sliders
    and the picker and repaints;
(c) document viewer opened from the file browser: the scene picker and the T and Z sliders
    repaint with tiles of the new plane from the REST API.

Every wait is for the viewer's own "repainted" signal (``data-complete`` going false and back to
true) or for the kernel's state; a viewer that ignores a change fails on a timeout naming what
it shows.  Timings are printed (``-s``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fixtures import PLANES_SHAPE, PLANES_WHITE, ome_tiff_planes, planes_code
from uilab import PIXELS_AT, Lab, write_notebook

import bioimnb
from bioimnb.core.tiles import ChannelView, TileRenderer, composite_channels

pytestmark = pytest.mark.timeout(300)

FILE = "planes.ome.tif"
WIDGET = ".jp-OutputArea-output .bioimnb-viewer"
DOCUMENT = ".bioimnb-document .bioimnb-viewer"
#: Level-0 positions right of the strips, one in each 256-px tile of level 0.
PROBES = [[160, 100], [330, 100], [160, 280], [330, 280]]
COLORS = ("FF0000", "00FF00")
REPAINT_MS = 30_000

Plane = tuple[int, int, int]  # (scene, t, z)

# Canvas RGBA at level-0 image positions, read two frames after the call (so a resize that
# cleared the canvas has been repainted), using the viewer's own centre and zoom.
READ_PIXELS = f"""
async ([selector, points]) => {{
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return ({PIXELS_AT})(document.querySelector(selector), points);
}}
"""
# Arms a MutationObserver on the viewer root: window.__repaint.done once data-complete went
# "false" (the displayed plane or settings changed) and back to "true" (all drawn).
ARM_REPAINT = """
(selector) => {
  const root = document.querySelector(selector);
  const state = {done: false, sawFalse: false, armed: performance.now(), ms: null};
  window.__repaint = state;
  const mo = new MutationObserver(() => {
    if (root.dataset.complete === 'false') { state.sawFalse = true; }
    else if (state.sawFalse && root.dataset.complete === 'true') {
      state.done = true; state.ms = performance.now() - state.armed; mo.disconnect();
    }
  });
  mo.observe(root, {attributes: true, attributeFilter: ['data-complete']});
}
"""
KERNEL_IDLE = (
    "() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
    " const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;"
    " return !!k && k.status === 'idle'; }"
)
# The panel as a user sees it: picker value, slider values and ranges.
PANEL = """
(selector) => {
  const root = document.querySelector(selector);
  const q = s => root.querySelector(s);
  const range = el => el ? {value: Number(el.value), max: Number(el.max)} : null;
  const scene = q('select[aria-label="Scene"]');
  return {scene: scene ? Number(scene.value) : null,
          scenes: scene ? scene.options.length : 0,
          t: range(q('input[aria-label="T"]')), z: range(q('input[aria-label="Z"]')),
          state: root.dataset.state, complete: root.dataset.complete};
}
"""


def default_views(scene: int) -> list[dict[str, Any]]:
    """The view channels the fixture's scene opens with: palette colours, ``(0, white)``."""
    white = float(PLANES_WHITE[scene])
    return [
        {"index": i, "visible": True, "color": c, "min": 0.0, "max": white}
        for i, c in enumerate(COLORS)
    ]


def colour(plane: Plane, channels: list[dict[str, Any]] | None = None) -> list[int]:
    """RGBA the viewers paint right of the strips for ``plane`` (with the given channel views,
    default: the plane's scene's), by the kernel's documented compositing rule."""
    scene, t, z = plane
    views = [ChannelView.from_dict(c) for c in channels or default_views(scene)]
    pixels = [np.full((1, 1), v, np.uint16) for v in planes_code(scene, t, z)]
    rgb = composite_channels(list(zip(pixels, views, strict=True)), (1, 1))
    return [int(v) for v in rgb[0, 0]] + [255]


ALL_PLANES = [
    (s, t, z)
    for s in range(PLANES_SHAPE["scenes"])
    for t in range(PLANES_SHAPE["t"])
    for z in range(PLANES_SHAPE["z"])
]


def shown_planes(rgba: list[int]) -> list[Plane]:
    """Which planes (each with its scene's default contrast) paint ``rgba``."""
    return [p for p in ALL_PLANES if colour(p) == rgba]


def test_fixture_names_every_plane_by_its_colour(tmp_path: Path) -> None:
    """The premise of the browser tests: one colour per plane, also against another scene's
    contrast, and bioimnb reads the planes and the per-scene auto contrast as designed."""
    truth = ome_tiff_planes(tmp_path / FILE)
    colours = [tuple(colour(p)) for p in ALL_PLANES]
    assert len(set(colours)) == len(ALL_PLANES), colours
    for p in ALL_PLANES:
        other = default_views(1 - p[0])
        assert colour(p, other) != colour(p), p  # another scene's contrast would show
        assert all(colour(p, other) != colour(q) for q in ALL_PLANES if q[0] == p[0]), p
    image = bioimnb.open_image(str(tmp_path / FILE))
    try:
        renderer = TileRenderer(image)
        assert len(image.scenes) == 2
        for scene in (0, 1):
            info = renderer.info(scene)
            assert (info["size_t"], info["size_z"], len(info["channels"])) == (3, 2, 2)
            assert info["levels"][0]["shape"] == [300, 400] and len(info["levels"]) == 2
            view = info["default_view"]
            assert (view["t"], view["z"]) == (0, 1)
            assert view["channels"] == default_views(scene)
            for t, z in [(0, 0), (2, 1)]:
                raw = renderer.raw_tile(scene, 0, t, z, 1, 1, [0, 1])
                assert [int(r[10, 10]) for r in raw] == list(planes_code(scene, t, z))
                np.testing.assert_array_equal(raw[0], truth[scene][t, z, 0, 256:, 256:])
    finally:
        image.close()


# -- helpers driving a page ---------------------------------------------------------------------


class Viewer:
    """One viewer (root ``selector``) in ``page``."""

    def __init__(self, page: Any, selector: str) -> None:
        self.page = page
        self.selector = selector

    def data(self) -> dict[str, str]:
        return dict(self.page.eval_on_selector(self.selector, "el => ({...el.dataset})"))

    def panel(self) -> dict[str, Any]:
        return dict(self.page.evaluate(PANEL, self.selector))

    def painted(self) -> list[list[int]]:
        return list(self.page.evaluate(READ_PIXELS, [self.selector, PROBES]))

    def wait_complete(self, timeout: float = 60_000) -> None:
        self.page.wait_for_selector(f'{self.selector}[data-complete="true"]', timeout=timeout)

    def change(self, what: str, action: Callable[[], None]) -> float:
        """Run ``action``; wait until the viewer has repainted after it (ms, browser clock)."""
        self.page.evaluate(ARM_REPAINT, self.selector)
        action()
        try:
            self.page.wait_for_function("() => window.__repaint.done", timeout=REPAINT_MS)
        except Exception as exc:  # playwright's TimeoutError: say what the viewer shows
            raise AssertionError(
                f"{what}: the viewer did not repaint in {REPAINT_MS / 1000:.0f} s "
                f"(panel {self.panel()}, painted {self.painted()}, data {self.data()})"
            ) from exc
        return float(self.page.evaluate("() => window.__repaint.ms"))

    def assert_shows(self, plane: Plane, channels: list[dict[str, Any]] | None = None) -> None:
        """Every probe shows ``plane`` (with ``channels``, default its scene's contrast)."""
        expected = colour(plane, channels)
        painted = self.painted()
        assert painted == [expected] * len(PROBES), (
            f"expected plane {plane} {expected} at {PROBES}, painted {painted}: that is "
            f"{[shown_planes(c) for c in painted]} (panel {self.panel()})"
        )
        assert self.data()["complete"] == "true"

    def key(self, label: str, key: str, control: str = 'input[type="range"]') -> None:
        """Focus the panel's control ``label`` (a range input unless ``control`` says else)
        and press ``key`` (End, Home, ArrowRight...), as a keyboard user does."""
        self.page.locator(f'{self.selector} {control}[aria-label="{label}"]').focus()
        self.page.keyboard.press(key)

    def pick_scene(self, scene: int) -> None:
        self.page.locator(f'{self.selector} select[aria-label="Scene"]').select_option(str(scene))


def _run_cell(page: Any, index: int) -> None:
    page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-InputArea-editor").click()
    page.keyboard.press("Control+Enter")


REPORT = 1  # the cell printing v.view and v.info["scene"]


def _python_view(page: Any) -> dict[str, Any]:
    """``v.view`` (with ``info_scene``) as the kernel has it now."""
    page.wait_for_function(KERNEL_IDLE)
    page.evaluate(
        "(i) => window.jupyterapp.shell.currentWidget.content.widgets[i].model.outputs.clear()",
        REPORT,
    )
    _run_cell(page, REPORT)
    out = page.locator(".jp-Notebook .jp-Cell").nth(REPORT).locator(".jp-OutputArea-output")
    page.wait_for_function(
        "el => /VIEW .*\\}\\s*$/.test(el.textContent)", arg=out.first.element_handle()
    )
    text = str(out.first.inner_text())
    return dict(json.loads(text[text.index("VIEW") + 5 :]))


def _wait_python_view(
    page: Any, what: str, check: Callable[[dict[str, Any]], bool], timeout: float = 15
) -> dict[str, Any]:
    """The kernel's view once ``check`` holds (the browser's view changes are debounced)."""
    deadline = time.monotonic() + timeout
    while True:
        view = _python_view(page)
        if check(view):
            return view
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: the kernel's v.view is still {view}")
        page.wait_for_timeout(300)


def _plane_of(view: dict[str, Any]) -> Plane:
    return (int(view["scene"]), int(view["t"]), int(view["z"]))


@pytest.fixture(scope="module")
def planes_file(lab: Lab) -> Path:
    path = lab.root / FILE
    ome_tiff_planes(path)
    return path


@pytest.fixture(scope="module")
def notebook(lab: Lab, browser: Any, planes_file: Path) -> Any:
    """The notebook with ``v = bioimnb.view(FILE)`` run and painted."""
    write_notebook(
        lab.root / "planes.ipynb",
        [
            f"import json, bioimnb\nv = bioimnb.view({FILE!r}); v",
            'print("VIEW", json.dumps({**v.view, "info_scene": v.info["scene"]}))',
            'v.view = {**v.view, "t": 1, "z": 0}',
            'v.view = {**v.view, "scene": 0}',
            'v.view = {"t": 2}',
        ],
    )
    page = browser.new_page()
    page.goto(f"{lab.url}lab/tree/planes.ipynb")
    page.wait_for_selector(".jp-Notebook .jp-Cell .jp-InputArea-editor")
    page.wait_for_function(KERNEL_IDLE, timeout=60_000)
    start = time.perf_counter()
    _run_cell(page, 0)
    Viewer(page, WIDGET).wait_complete()
    print(f"\nwidget: first full paint {time.perf_counter() - start:.2f} s after running the cell")
    yield page
    page.close()


@pytest.mark.browser
def test_a_widget_sliders_and_scene_picker(notebook: Any) -> None:
    page = notebook
    viewer = Viewer(page, WIDGET)
    panel = viewer.panel()
    assert panel["state"] == "ready", panel
    assert panel["scenes"] == 2 and panel["scene"] == 0, panel
    assert panel["t"] == {"value": 0, "max": 2} and panel["z"] == {"value": 1, "max": 1}, panel
    viewer.assert_shows((0, 0, 1))
    view = _python_view(page)
    assert _plane_of(view) == (0, 0, 1) and view["channels"] == default_views(0), view

    timings: dict[str, float] = {}

    def step(
        what: str, action: Callable[[], None], plane: Plane, cached: bool | None = False
    ) -> None:
        """``cached``: a plane shown before, painted from the browser's raw tiles (None:
        either)."""
        requested = int(viewer.data()["tilesRequested"])
        timings[what] = viewer.change(what, action)
        viewer.assert_shows(plane)
        if cached:
            assert int(viewer.data()["tilesRequested"]) == requested, (what, viewer.data())
        elif cached is not None:
            assert int(viewer.data()["tilesRequested"]) > requested, (what, viewer.data())
        panel = viewer.panel()
        assert (panel["scene"], panel["t"]["value"], panel["z"]["value"]) == plane, (what, panel)
        view = _wait_python_view(page, what, lambda v: _plane_of(v) == plane)
        assert view["info_scene"] == plane[0], view
        assert view["channels"] == default_views(plane[0]), (what, view)  # the scene's contrast

    # T: End moves the slider to its last position (one input event, as a user's key press).
    step("T slider to 2", lambda: viewer.key("T", "End"), (0, 2, 1))
    step("Z slider to 0", lambda: viewer.key("Z", "Home"), (0, 2, 0))
    # Arrow keys: in a notebook they are also JupyterLab's cell navigation keys.
    step("T slider to 1", lambda: viewer.key("T", "ArrowLeft"), (0, 1, 0))
    # A plane seen before: painted again from the browser's raw tiles, no request.
    step("T slider back to 2", lambda: viewer.key("T", "ArrowRight"), (0, 2, 0), cached=True)

    # The scene picker: the other scene opens at its default plane, with its own contrast.
    step("scene picker to 1", lambda: viewer.pick_scene(1), (1, 0, 1))
    panel = viewer.panel()
    assert panel["t"] == {"value": 0, "max": 2} and panel["z"] == {"value": 1, "max": 1}, panel
    # The same (t, z) as scene 0's cached planes: scene 1's pixels, not scene 0's.
    step("scene 1: T slider to 2", lambda: viewer.key("T", "End"), (1, 2, 1))
    step("scene 1: Z slider to 0", lambda: viewer.key("Z", "Home"), (1, 2, 0))
    # Auto contrast comes from this scene's histogram (its white is 3000, scene 0's 1000).
    block = f'{WIDGET} [data-channel="0"]'
    page.wait_for_selector(f'{block}[data-histogram="loaded"]')
    ms = viewer.change(
        "scene 1: auto contrast", lambda: page.locator(f"{block} button", has_text="auto").click()
    )
    shown = float(page.locator(f'{block} input[aria-label="PlaneCode maximum"]').input_value())
    view = _wait_python_view(page, "auto contrast", lambda v: v["channels"][0]["max"] == shown)
    low, high = view["channels"][0]["min"], view["channels"][0]["max"]
    assert 0 <= low < 50 and 2900 <= high <= 3001, view["channels"]
    viewer.assert_shows((1, 2, 0), view["channels"])
    timings["scene 1: auto contrast"] = ms
    # The picker with the keyboard (in a notebook, arrow keys are also cell navigation keys).
    back = lambda: viewer.key("Scene", "ArrowUp", "select")  # noqa: E731
    step("scene picker back to 0", back, (0, 0, 1), cached=True)
    step("scene 0: T slider to 2", lambda: viewer.key("T", "End"), (0, 2, 1), cached=True)
    # Quick key presses: the planes passed over are aborted (and cancelled in the kernel); the
    # last one is painted, nothing is reported as failed.
    viewer.key("T", "Home")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    step(
        "T slider 0, 1, 2, 1 quickly",
        lambda: page.keyboard.press("ArrowLeft"),
        (0, 1, 1),
        cached=None,
    )
    data = viewer.data()
    assert data["tilesFailed"] == "0", data
    assert page.locator(f"{WIDGET} .bioimnb-banner").is_hidden()
    print("widget repaints (ms): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))


@pytest.mark.browser
def test_b_widget_follows_python(notebook: Any) -> None:
    page = notebook
    viewer = Viewer(page, WIDGET)
    # Start from scene 1 at (t 2, z 1), with the panel.
    if viewer.panel()["scene"] != 1:
        viewer.change("scene picker to 1", lambda: viewer.pick_scene(1))
    if viewer.panel()["t"]["value"] != 2:
        viewer.change("T slider to 2", lambda: viewer.key("T", "End"))
    _wait_python_view(page, "T slider to 2", lambda v: _plane_of(v) == (1, 2, 1))
    viewer.assert_shows((1, 2, 1))

    def step(what: str, cell: int, plane: Plane) -> None:
        viewer.change(what, lambda: _run_cell(page, cell))
        viewer.assert_shows(plane)
        panel = viewer.panel()
        assert (panel["scene"], panel["t"]["value"], panel["z"]["value"]) == plane, (what, panel)
        view = _wait_python_view(page, what, lambda v: _plane_of(v) == plane)
        assert view["info_scene"] == plane[0] and view["channels"] == default_views(plane[0]), (
            what,
            view,
        )
        assert set(view) >= {"center_x", "center_y", "zoom", "labels"}, view

    step('v.view = {**v.view, "t": 1, "z": 0}', 2, (1, 1, 0))
    # A scene change from Python: the scene's own default view, as with the picker (the
    # channels of the old scene spread into the new dict are not the new scene's contrast).
    step('v.view = {**v.view, "scene": 0}', 3, (0, 0, 1))
    # A partial view keeps the other keys (documented in Viewer's docstring).
    step('v.view = {"t": 2}', 4, (0, 2, 1))


@pytest.mark.browser
def test_c_document_viewer_scene_and_sliders(lab: Lab, browser: Any, planes_file: Path) -> None:
    page = browser.new_page()
    tiles: list[str] = []
    page.on("request", lambda r: tiles.append(r.url) if "/bioimnb/api/tile?" in r.url else None)
    try:
        # Open it from the file browser, as a user does.
        page.goto(f"{lab.url}lab?reset")
        page.wait_for_selector(".jp-DirListing-item")
        start = time.perf_counter()
        page.locator(".jp-DirListing-item", has_text=FILE).dblclick()
        viewer = Viewer(page, DOCUMENT)
        viewer.wait_complete()
        print(f"\ndocument viewer: first full paint {time.perf_counter() - start:.2f} s")
        assert viewer.data()["state"] == "ready"
        panel = viewer.panel()
        assert panel["scenes"] == 2 and panel["scene"] == 0, panel
        assert panel["t"] == {"value": 0, "max": 2} and panel["z"] == {"value": 1, "max": 1}
        viewer.assert_shows((0, 0, 1))
        assert tiles and all("scene=0" in u and "t=0" in u and "z=1" in u for u in tiles)

        timings: dict[str, float] = {}

        def step(
            what: str, action: Callable[[], None], plane: Plane, cached: bool | None = False
        ) -> None:
            """``cached``: a plane shown before, painted from the browser's tile cache (None:
            either)."""
            tiles.clear()
            timings[what] = viewer.change(what, action)
            viewer.assert_shows(plane)
            if cached is not None:
                assert (not tiles) if cached else tiles, (what, tiles[:3])
            panel = viewer.panel()
            assert (panel["scene"], panel["t"]["value"], panel["z"]["value"]) == plane, panel

        step("scene picker to 1", lambda: viewer.pick_scene(1), (1, 0, 1))
        assert tiles and all("scene=1&" in u for u in tiles), tiles[:3]
        step("T slider to 2", lambda: viewer.key("T", "End"), (1, 2, 1))
        assert tiles and all("t=2&" in u for u in tiles), tiles[:3]
        step("Z slider to 0", lambda: viewer.key("Z", "Home"), (1, 2, 0))
        step("scene picker back to 0", lambda: viewer.pick_scene(0), (0, 0, 1), cached=True)
        step("scene 0: T slider to 2", lambda: viewer.key("T", "End"), (0, 2, 1))
        step("scene 0: Z slider to 0", lambda: viewer.key("Z", "Home"), (0, 2, 0))
        viewer.key("T", "Home")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")
        step(
            "T slider 0, 1, 2, 1 quickly",
            lambda: page.keyboard.press("ArrowLeft"),
            (0, 1, 0),
            cached=None,
        )
        data = viewer.data()
        assert data["tilesFailed"] == "0", data
        assert page.locator(f"{DOCUMENT} .bioimnb-banner").is_hidden()
        print("document repaints (ms): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
    finally:
        page.close()
