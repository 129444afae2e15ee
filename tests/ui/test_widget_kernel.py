"""The kernel side of the notebook viewer, without a browser: the messages the front end sends
get the replies it expects, and the synced state never carries a storage URL or a secret."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from uilab import BRIGHT, IMAGE_SIZE, write_test_image

import bioimnb
from bioimnb.core.tiles import ChannelView
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
