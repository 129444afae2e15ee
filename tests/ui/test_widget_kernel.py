"""The kernel side of the notebook viewer: the messages the front end sends get the replies it
expects, and the synced state never carries a storage URL or a secret (no browser); and, in a
real JupyterLab with Chromium, a contrast, colour or visibility change is composited in the
browser without asking the kernel for any tile."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from uilab import BRIGHT, DIM, IMAGE_SIZE, PIXELS_AT, Lab, write_notebook, write_test_image

import bioimnb
from bioimnb.core.tiles import ChannelView, composite_channels
from bioimnb.widgets.viewer import Viewer

DIM_MIN = 100


@pytest.fixture(scope="module")
def image_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("widget") / "img.ome.tif"
    write_test_image(path)
    return path


class Replies:
    """Collects ``Viewer.send`` calls (made from the render threads)."""

    def __init__(self) -> None:
        self.items: dict[str, tuple[dict[str, Any], list[bytes]]] = {}
        self.cond = threading.Condition()

    def __call__(self, content: dict[str, Any], buffers: list[bytes] | None = None) -> None:
        with self.cond:
            self.items[content["id"]] = (content, list(buffers or []))
            self.cond.notify_all()

    def wait(self, mid: str, timeout: float = 30) -> tuple[dict[str, Any], list[bytes]]:
        with self.cond:
            assert self.cond.wait_for(lambda: mid in self.items, timeout), f"no reply to {mid}"
            return self.items[mid]


def _viewer(path: Path | str, **kwargs: Any) -> tuple[Viewer, Replies]:
    v = bioimnb.view(str(path), **kwargs)
    replies = Replies()
    v.send = replies  # type: ignore[method-assign]
    return v, replies


def _message(v: Viewer) -> Callable[[dict[str, Any]], None]:
    return lambda content: v._on_msg(v, content, [])


def test_view_is_lazy_public_api_and_state_is_the_default_view(image_path: Path) -> None:
    v, _ = _viewer(image_path)
    assert isinstance(v, Viewer)
    assert v.info["source"] == "img.ome.tif"
    assert [lv["shape"] for lv in v.info["levels"]] == [
        [2048, 2048],
        [1024, 1024],
        [512, 512],
        [256, 256],
    ]
    assert v.view["zoom"] is None and v.view["channels"][0]["color"] == "FF0000"
    assert v.view_state.channels[0].max == pytest.approx(BRIGHT, rel=0.01)
    assert "2048x2048" in repr(v)


def test_tile_values_histogram_and_errors_are_answered(image_path: Path) -> None:
    import imagecodecs

    v, replies = _viewer(image_path)
    send = _message(v)
    red = {"index": 0, "visible": True, "color": "FF0000", "min": DIM_MIN, "max": BRIGHT}
    send(
        {
            "type": "tile",
            "id": "t1",
            "scene": 0,
            "level": 0,
            "t": 0,
            "z": 0,
            "tx": 0,
            "ty": 0,
            "channels": [red],
            "labels": [],
        }
    )
    send(
        {
            "type": "tile",
            "id": "raw1",
            "fmt": "raw",
            "scene": 0,
            "level": 3,
            "t": 0,
            "z": 0,
            "tx": 0,
            "ty": 0,
            "channels": [red],
            "labels": [],
        }
    )
    send({"type": "values", "id": "v1", "scene": 0, "t": 0, "z": 0, "x": 10, "y": 20})
    send({"type": "histogram", "id": "h1", "scene": 0, "channel": 0})
    send({"type": "info", "id": "i1", "scene": 0})
    send(
        {
            "type": "tile",
            "id": "bad",
            "scene": 0,
            "level": 99,
            "t": 0,
            "z": 0,
            "tx": 0,
            "ty": 0,
            "channels": [red],
        }
    )

    content, buffers = replies.wait("t1")
    assert content["type"] == "tile" and content["mime"] == "image/png"
    rgba = imagecodecs.png_decode(buffers[0])
    assert rgba.shape[:2] == (256, 256)
    assert tuple(rgba[128, 128, :3]) == (255, 0, 0)

    # What the viewer asks for: raw RGBA with its size, the same pixels the renderer makes.
    content, buffers = replies.wait("raw1")
    assert content["mime"] == "raw" and (content["h"], content["w"]) == (256, 256)
    raw = np.frombuffer(buffers[0], np.uint8).reshape(256, 256, 4)
    expected = v.renderer.render_rgba(0, 3, 0, 0, 0, 0, [ChannelView.from_dict(red)])
    np.testing.assert_array_equal(raw, expected)

    assert replies.wait("v1")[0]["result"]["values"] == [BRIGHT, 100]
    hist = replies.wait("h1")[0]["result"]
    assert sum(hist["counts"]) > 0 and len(hist["edges"]) == len(hist["counts"]) + 1
    assert replies.wait("i1")[0]["info"] == v.info

    error = replies.wait("bad")[0]
    assert error["type"] == "error" and "no level 99" in error["message"]
    assert error["message"].startswith("img.ome.tif: ")
    assert str(image_path.parent) not in error["message"]


def test_channel_tiles_are_raw_pixels_one_buffer_per_channel(image_path: Path) -> None:
    v, replies = _viewer(image_path)
    send = _message(v)
    base = {"type": "tile", "fmt": "channels", "scene": 0, "t": 0, "z": 0}
    send({**base, "id": "c1", "level": 3, "tx": 0, "ty": 0, "channels": [1, 0]})
    send({**base, "id": "c2", "level": 0, "tx": 7, "ty": 7, "channels": [0]})
    send({**base, "id": "bad", "level": 3, "tx": 0, "ty": 0, "channels": [2]})

    content, buffers = replies.wait("c1")
    assert content == {
        "type": "tile",
        "id": "c1",
        "mime": "channels",
        "dtype": "uint16",
        "w": 256,
        "h": 256,
        "channels": [1, 0],
    }
    assert [len(b) for b in buffers] == [256 * 256 * 2] * 2
    dim, left = (np.frombuffer(b, "<u2").reshape(256, 256) for b in buffers)
    assert (dim == DIM).all()
    assert (left[:, :128] == BRIGHT).all() and (left[:, 128:] == DIM).all()
    # What the browser composites from them is what the kernel would have sent as RGBA.
    views = [ChannelView.from_dict(c) for c in v.view["channels"]]
    rgb = composite_channels([(left, views[0]), (dim, views[1])], (256, 256))
    np.testing.assert_array_equal(rgb, v.renderer.render_rgba(0, 3, 0, 0, 0, 0, views)[..., :3])

    content, buffers = replies.wait("c2")  # level 0, right half: DIM
    assert (content["w"], content["h"], content["channels"]) == (256, 256, [0])
    assert (np.frombuffer(buffers[0], "<u2") == DIM).all()

    error = replies.wait("bad")[0]
    assert error["type"] == "error" and "no channel 2" in error["message"]


def test_cancelled_requests_are_skipped(image_path: Path) -> None:
    v, replies = _viewer(image_path)
    send = _message(v)
    send({"type": "cancel", "ids": ["gone"]})
    send(
        {
            "type": "tile",
            "id": "gone",
            "scene": 0,
            "level": 3,
            "t": 0,
            "z": 0,
            "tx": 0,
            "ty": 0,
            "channels": [],
        }
    )
    send(
        {
            "type": "tile",
            "id": "kept",
            "scene": 0,
            "level": 3,
            "t": 0,
            "z": 0,
            "tx": 0,
            "ty": 0,
            "channels": [],
        }
    )
    replies.wait("kept")
    assert "gone" not in replies.items


def test_view_can_be_set_partially_and_is_validated(image_path: Path) -> None:
    v, _ = _viewer(
        image_path,
        view={"zoom": 2.0, "center_x": 100, "channels": [{"index": 1, "visible": False}]},
    )
    assert v.view["zoom"] == 2.0 and v.view["center_x"] == 100
    assert v.view["channels"][1]["visible"] is False
    assert v.view["channels"][0]["color"] == "FF0000"  # merged with the default view
    v.go_to(512, 256, zoom=4)
    assert (v.view["center_x"], v.view["center_y"], v.view["zoom"]) == (512.0, 256.0, 4.0)
    v.set_channel(0, min=0, max=1000)
    assert v.view["channels"][0]["max"] == 1000
    v.fit()
    assert v.view["zoom"] is None
    with pytest.raises(Exception, match="unknown view keys"):
        v.view = {"where": "there"}
    with pytest.raises(Exception, match="colour"):
        v.view = {"channels": [{"index": 0, "color": "red"}]}


def test_view_assignment_is_whole_and_a_scene_change_opens_the_scene_default(
    tmp_path: Path,
) -> None:
    """``v.view`` is always a whole view; a scene changed from Python opens at that scene's own
    default view (its auto contrast), with only the keys given a new value laid over it; a
    view from the browser is taken as the browser shows it."""
    import fixtures

    path = tmp_path / "planes.ome.tif"
    fixtures.ome_tiff_planes(path)
    v, _ = _viewer(path)
    scene0, scene1 = (v._scene_info(s)["default_view"] for s in (0, 1))
    assert scene0["channels"][0]["max"] == 1000 and scene1["channels"][0]["max"] == 3000
    v.view = {"t": 2}
    assert v.view == {**scene0, "t": 2}
    v.set_channel(0, max=500)
    v.view = {**v.view, "scene": 1}
    assert v.view == scene1 and v.info["scene"] == 1
    v.view = {**v.view, "scene": 0, "t": 2, "channels": [{"index": 1, "visible": False}]}
    assert v.view["channels"][0] == scene0["channels"][0] and v.info["scene"] == 0
    assert (v.view["t"], v.view["z"], v.view["channels"][1]["visible"]) == (2, 1, False)
    assert scene0["channels"][1]["visible"] is True  # the cached default is not changed
    # The browser's view after its scene picker (and a T key pressed at once) is kept whole.
    shown = {**scene1, "t": 2}
    v.set_state({"view": shown})
    assert v.view == shown and v.info["scene"] == 1


def test_synced_state_has_no_url_or_secret(
    image_path: Path, http_server: Callable[[Path], str]
) -> None:
    base = http_server(image_path.parent)
    url = f"{base}/{image_path.name}?X-Amz-Signature=SECRET123"
    v, replies = _viewer(url)
    state = v.get_state()
    assert "SECRET123" not in str(state.pop("_esm"))
    text = json.dumps(state, default=lambda _: "<binary>")
    for secret in ("SECRET123", "127.0.0.1", "http:", "X-Amz"):
        assert secret not in text, secret
    assert v.info["source"] == "img.ome.tif"
    _message(v)(
        {"type": "values", "id": "x", "scene": 0, "t": 0, "z": 0, "x": IMAGE_SIZE + 5, "y": 0}
    )
    message = replies.wait("x")[0]["message"]
    assert "SECRET123" not in message and "127.0.0.1" not in message, message
    assert np.isfinite(v.view["channels"][0]["max"])


# -- in the browser ------------------------------------------------------------------------------

# The cell's viewer root, and RGBA of canvas pixels at level-0 image positions.
_ROOT = (
    "(i) => document.querySelectorAll('.jp-Notebook .jp-Cell')[i].querySelector('.bioimnb-viewer')"
)
READ_PIXELS = f"([cell, points]) => ({PIXELS_AT})(({_ROOT})(cell), points)"
DATA = f"(i) => ({{...({_ROOT})(i).dataset}})"
# Arms a MutationObserver: resolves once data-complete went "false" and back to "true".
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
# Counts the tile requests every Viewer of the kernel receives, by format (TILES) and, for
# channel tiles, by the channels asked for (SETS).
COUNTING_CELL = """\
import collections, json
import bioimnb
from bioimnb.widgets.viewer import Viewer
TILES, SETS = collections.Counter(), collections.Counter()
_on_msg = Viewer._on_msg
def _counting(self, widget, content, buffers):
    if isinstance(content, dict) and content.get("type") == "tile":
        TILES[content.get("fmt", "png")] += 1
        if content.get("fmt") == "channels":
            SETS[",".join(str(c) for c in content["channels"])] += 1
    return _on_msg(self, widget, content, buffers)
Viewer._on_msg = _counting
v = bioimnb.view("img.ome.tif"); v"""
REPORT_CELL = (
    'print("REPORT", json.dumps({"tiles": dict(TILES), "sets": dict(SETS),'
    ' "channels": v.view["channels"]}))'
)
LEFT, RIGHT = [IMAGE_SIZE // 4, IMAGE_SIZE // 2], [3 * IMAGE_SIZE // 4, IMAGE_SIZE // 2]


def _expected_left(channels: list[dict[str, Any]]) -> list[int]:
    """The documented composite of the left half's pixel (channel 0 BRIGHT, channel 1 DIM)."""
    views = [ChannelView.from_dict(c) for c in channels]
    planes = [np.full((1, 1), BRIGHT, np.uint16), np.full((1, 1), DIM, np.uint16)]
    rgb = composite_channels(list(zip(planes, views, strict=True)), (1, 1))
    return [int(x) for x in rgb[0, 0]] + [255]


@pytest.mark.browser
@pytest.mark.timeout(240)
def test_contrast_changes_are_composited_in_the_browser(lab: Lab, browser: Any) -> None:
    write_notebook(
        lab.root / "contrast.ipynb",
        [
            COUNTING_CELL,
            REPORT_CELL,
            "v.set_channel(0, max=8000)",
            'w = bioimnb.view("demo/tissue.ome.zarr"); w',
            'u = bioimnb.view("img.ome.tif", view={"channels": [{"index": 1, "visible": False}]}); u',
        ],
    )
    page = browser.new_page()
    try:
        page.goto(f"{lab.url}lab/tree/contrast.ipynb")
        page.wait_for_selector(".jp-Notebook .jp-Cell .jp-InputArea-editor")
        page.wait_for_function(KERNEL_IDLE, timeout=60_000)

        def run(index: int) -> None:
            page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-InputArea-editor").click()
            page.keyboard.press("Control+Enter")

        def report() -> dict[str, Any]:
            page.wait_for_function(KERNEL_IDLE)
            run(1)
            out = page.locator(".jp-Notebook .jp-Cell").nth(1).locator(".jp-OutputArea-output")
            page.wait_for_function(
                "el => /REPORT .*\\}\\s*$/.test(el.textContent)", arg=out.first.element_handle()
            )
            text = out.first.inner_text()
            result: dict[str, Any] = json.loads(text[text.index("REPORT") + 7 :])
            page.evaluate(
                "() => { const nb = window.jupyterapp.shell.currentWidget.content;"
                " nb.widgets[1].model.outputs.clear(); }"
            )
            return result

        def wait_complete(cell: int) -> None:
            page.wait_for_function(f"(i) => ({_ROOT})(i)?.dataset.complete === 'true'", arg=cell)

        def change(action: Callable[[], None], cell: int = 0) -> dict[str, str]:
            """Run ``action`` and wait until the viewer repainted after it."""
            page.evaluate(ARM_REPAINT, cell)
            action()
            page.wait_for_function("() => window.__repaint.done", timeout=30_000)
            return dict(page.evaluate(DATA, cell))

        def slider(label: str, value: float) -> None:
            page.locator(f'.bioimnb-viewer input[aria-label="{label}"]').first.evaluate(
                "(el, v) => { el.value = String(v); el.dispatchEvent(new Event('input'));"
                " el.dispatchEvent(new Event('change')); }",
                value,
            )

        run(0)
        wait_complete(0)
        page.wait_for_timeout(500)  # histograms, the view echo to the kernel
        wait_complete(0)
        first = report()
        requested = page.evaluate(DATA, 0)["tilesRequested"]
        # Multichannel image, no labels: only raw channel tiles were asked for.
        assert set(first["tiles"]) == {"channels"} and first["tiles"]["channels"] >= 1, first
        assert int(requested) == first["tiles"]["channels"]
        left, right = page.evaluate(READ_PIXELS, [0, [LEFT, RIGHT]])
        assert left == _expected_left(first["channels"]) == [255, 0, 0, 255], left
        assert right == [0, 0, 0, 255], right

        # From Python: set_channel changes the synced view; the browser recomposites.
        data = change(lambda: run(2))
        after = report()
        assert after["channels"][0]["max"] == 8000
        left, right = page.evaluate(READ_PIXELS, [0, [LEFT, RIGHT]])
        expected = _expected_left(after["channels"])
        assert 100 < expected[0] < 255 and expected[1:3] == [0, 0], expected
        assert left == expected, (left, expected)
        assert right == [0, 0, 0, 255], right
        print(f"\nset_channel from Python: repainted in {data.get('repaintMs')} ms (viewer)")

        # From the panel: the maximum slider, a colour and visibility.
        data = change(lambda: slider("Left maximum", 6000))
        print(f"slider: repainted in {data.get('repaintMs')} ms (viewer)")
        assert float(data["repaintMs"]) < 1000
        page.wait_for_timeout(400)  # the view reaches the kernel (debounced)
        now = report()
        assert now["channels"][0]["max"] == 6000
        assert page.evaluate(READ_PIXELS, [0, [LEFT]])[0] == _expected_left(now["channels"])
        change(lambda: page.locator('input[aria-label="Show Left"]').first.uncheck())
        assert page.evaluate(READ_PIXELS, [0, [LEFT]])[0] == [0, 0, 0, 255]
        change(lambda: page.locator('input[aria-label="Show Left"]').first.check())
        page.locator('input[aria-label="Colour of Left"]').first.evaluate(
            "el => { el.value = '#ff00ff'; el.dispatchEvent(new Event('change')); }"
        )
        page.wait_for_timeout(400)  # the view reaches the kernel (debounced)
        wait_complete(0)
        now = report()
        assert now["channels"][0]["color"] == "FF00FF"
        magenta = _expected_left(now["channels"])
        assert magenta[0] == magenta[2] > 100, magenta
        assert page.evaluate(READ_PIXELS, [0, [LEFT]])[0] == magenta

        # None of that asked the kernel for a tile.
        assert now["tiles"] == first["tiles"], (now["tiles"], first["tiles"])
        assert page.evaluate(DATA, 0)["tilesRequested"] == requested

        # Zooming in still fetches finer levels (coarse first), and the values readout works.
        before_levels = set(page.evaluate(DATA, 0)["levelsRequested"].split(","))
        box = page.locator(".bioimnb-viewer canvas.bioimnb-canvas").first.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        for _ in range(6):
            page.mouse.wheel(0, -300)
            page.wait_for_timeout(60)
        page.wait_for_function(
            f"(i) => {{ const d = ({_ROOT})(i).dataset;"
            " return d.targetLevel === '0' && d.complete === 'true'; }",
            arg=0,
            timeout=30_000,
        )
        zoomed = page.evaluate(DATA, 0)
        assert "0" in zoomed["levelsRequested"].split(",") and "0" not in before_levels
        status = page.locator(".bioimnb-viewer .bioimnb-status").first
        page.mouse.move(box["x"] + box["width"] / 2 - 20, box["y"] + box["height"] / 2)
        page.wait_for_function(
            "el => /Left \\d+/.test(el.textContent)", arg=status.element_handle()
        )
        assert f"Left {BRIGHT}" in status.inner_text() or f"Left {DIM}" in status.inner_text()
        more = report()["tiles"]
        assert set(more) == {"channels"} and more["channels"] > first["tiles"]["channels"]

        # Label overlays keep the kernel's RGBA tiles; switching them off needs no request.
        run(3)
        wait_complete(3)
        page.wait_for_timeout(300)
        wait_complete(3)
        labels = page.evaluate(DATA, 3)
        box3 = (
            page.locator(".jp-Notebook .jp-Cell").nth(3).locator('input[aria-label="Label nuclei"]')
        )
        change(lambda: box3.check(), cell=3)
        with_labels = report()["tiles"]
        assert with_labels.get("raw", 0) >= 1, with_labels
        assert int(page.evaluate(DATA, 3)["tilesRequested"]) > int(labels["tilesRequested"])
        change(lambda: box3.uncheck(), cell=3)
        page.wait_for_timeout(300)
        sets = report()
        assert sets["tiles"] == with_labels

        # A channel shown for the first time is fetched, alone; the others are not fetched again.
        def delta(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
            return {k: b.get(k, 0) - a.get(k, 0) for k in b if b.get(k, 0) != a.get(k, 0)}

        run(4)
        wait_complete(4)
        page.wait_for_timeout(300)
        wait_complete(4)
        shown = report()
        first_paint = delta(sets["sets"], shown["sets"])
        assert set(first_paint) == {"0"}, first_paint  # channel 1 hidden: not asked for
        dim = page.locator(".jp-Notebook .jp-Cell").nth(4).locator('input[aria-label="Show Dim"]')
        change(lambda: dim.check(), cell=4)
        both = delta(shown["sets"], report()["sets"])
        assert set(both) == {"1"} and 1 <= both["1"] <= first_paint["0"], both
    finally:
        page.close()
