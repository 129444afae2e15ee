"""Hostile images in the document viewer: the work they cause stays bounded and the user is told
why when nothing can be shown.

* 1,200 channels: the panel lists the first 1,000 (and says so) and asks the server for the
  histograms of the first 16 only; showing another channel asks for that one's histogram.
* 1 x 1 chunks: every tile would open tens of thousands of chunks; the server refuses them and
  the viewer shows its reason ("... the file's chunks are too small to preview").
"""

from __future__ import annotations

import time
import urllib.parse
from typing import Any

import numpy as np
import pytest
import zarr
from uilab import Lab

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

DOCUMENT = ".bioimnb-document .bioimnb-viewer"


def _open_from_browser(page: Any, lab: Lab, name: str) -> str:
    """Double-click ``name`` in the file browser's root listing; the viewer's selector."""
    page.goto(f"{lab.url}lab?reset")
    page.wait_for_function(
        "() => !!window.jupyterapp && window.jupyterapp.commands.hasCommand('filebrowser:go-to-path')"
    )
    page.evaluate("() => window.jupyterapp.commands.execute('filebrowser:go-to-path', {path: '/'})")
    page.locator(".jp-DirListing-item", has=page.get_by_text(name, exact=True)).dblclick()
    return f'.bioimnb-document:has(.bioimnb-title:text("{name}")) .bioimnb-viewer'


def test_many_channels_list_1000_and_load_16_histograms(lab: Lab, browser: Any) -> None:
    n = 1200
    data = np.zeros((n, 1, 64, 64), dtype=np.uint8)
    data[:, 0, :, :32] = (np.arange(n) % 200 + 20).astype(np.uint8)[:, None, None]
    arr = zarr.create_array(
        str(lab.root / "many.zarr"), shape=data.shape, chunks=data.shape, dtype="uint8"
    )
    arr[...] = data
    page = browser.new_page()
    histograms: list[int] = []

    def on_request(request: Any) -> None:
        if "/bioimnb/api/histogram?" in request.url:
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(request.url).query)
            histograms.append(int(query["channel"][0]))

    page.on("request", on_request)
    try:
        viewer = _open_from_browser(page, lab, "many.zarr")
        page.wait_for_selector(f'{viewer}[data-complete="true"]', timeout=60_000)
        assert page.locator(f"{viewer} .bioimnb-channel").count() == 1000
        title = page.locator(f"{viewer} .bioimnb-section-title", has_text="Channels").text_content()
        assert title == "Channels (first 1000 of 1200)"
        loaded = page.locator(f'{viewer} .bioimnb-channel[data-histogram="loaded"]')
        deadline = time.monotonic() + 60
        while loaded.count() < 16 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # nothing else arrives later
        assert sorted(histograms) == list(range(16))
        page.locator(
            f'{viewer} .bioimnb-channel[data-channel="500"] input[type="checkbox"]'
        ).check()
        page.wait_for_selector(
            f'{viewer} .bioimnb-channel[data-channel="500"][data-histogram="loaded"]'
        )
        assert sorted(histograms) == [*range(16), 500]
    finally:
        page.close()


def test_tiny_chunks_say_why_nothing_is_shown(lab: Lab, browser: Any) -> None:
    zarr.create_array(
        str(lab.root / "dust.zarr"), shape=(20000, 20000), chunks=(1, 1), dtype="uint8"
    )
    page = browser.new_page()
    try:
        viewer = _open_from_browser(page, lab, "dust.zarr")
        error = page.locator(f"{viewer} .bioimnb-error")
        error.wait_for(state="visible", timeout=60_000)
        text = error.inner_text()
        assert "the file's chunks are too small to preview" in text, text
        assert "over the limit of 4,096" in text, text
    finally:
        page.close()
