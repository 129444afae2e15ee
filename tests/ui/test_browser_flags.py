"""JupyterLab's file browser shows bioimnb's classification: an unfinished conversion is marked
incomplete, an unreadable image is marked, and a folder that is an OME-Zarr by its metadata
(whatever its name) opens in the viewer on double-click."""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest
from uilab import Lab

pytestmark = pytest.mark.browser

OME_V3 = {
    "zarr_format": 3,
    "node_type": "group",
    "attributes": {"ome": {"version": "0.5", "multiscales": [{"datasets": [{"path": "0"}]}]}},
}


@pytest.fixture(scope="module")
def flags_folder(lab: Lab) -> str:
    folder = lab.root / "flags"
    folder.mkdir()
    half = folder / "half.ome.zarr"
    half.mkdir()
    attrs = {**OME_V3["attributes"], "bioimnb": {"status": "incomplete"}}
    (half / "zarr.json").write_text(json.dumps({**OME_V3, "attributes": attrs}))
    (folder / "text.tif").write_text("a text file with an image's name\n")
    (folder / "fine.ome.tif").write_bytes((lab.root / "img.ome.tif").read_bytes())
    # An OME-Zarr whose name says nothing: recognised by its metadata.
    shutil.copytree(lab.root / "demo" / "tissue.ome.zarr", folder / "tissue-no-suffix")
    (folder / "plain.zarr").mkdir()  # a name is not metadata: an ordinary folder
    (folder / "plain.zarr" / "notes.txt").write_text("hello")
    return "flags"


def _row(page: Any, name: str) -> Any:
    return page.locator(".jp-DirListing-item", has=page.get_by_text(name, exact=True))


def test_rows_carry_the_classification(lab: Lab, browser: Any, flags_folder: str) -> None:
    page = browser.new_page()
    try:
        page.goto(f"{lab.url}lab/tree/{flags_folder}")
        page.wait_for_selector(".jp-DirListing-item.bioimnb-incomplete", timeout=60_000)
        incomplete = page.eval_on_selector_all(
            ".jp-DirListing-item.bioimnb-incomplete .jp-DirListing-itemText", "els => els.map(e => e.textContent)"
        )
        unreadable = page.eval_on_selector_all(
            ".jp-DirListing-item.bioimnb-error .jp-DirListing-itemText", "els => els.map(e => e.textContent)"
        )
        images = page.eval_on_selector_all(
            '.jp-DirListing-item[data-bioimnb-kind="image"] .jp-DirListing-itemText', "els => els.map(e => e.textContent)"
        )
        assert incomplete == ["half.ome.zarr"]
        assert unreadable == ["text.tif"]
        assert sorted(images) == ["fine.ome.tif", "half.ome.zarr", "text.tif", "tissue-no-suffix"]
        title = _row(page, "text.tif").locator(".jp-DirListing-itemText").get_attribute("title") or ""
        assert "the content is text" in title
        # The marks survive JupyterLab's own refresh of the listing.
        page.evaluate("() => window.jupyterapp.commands.execute('filebrowser:refresh')")
        page.wait_for_timeout(500)
        assert _row(page, "half.ome.zarr").get_attribute("class").count("bioimnb-incomplete") == 1
        after = page.evaluate("() => getComputedStyle(document.querySelector("
                              "'.bioimnb-incomplete .jp-DirListing-itemText'), '::after').content")
        assert "incomplete" in after
    finally:
        page.close()


def test_a_folder_that_is_an_ome_zarr_by_metadata_opens_in_the_viewer(
    lab: Lab, browser: Any, flags_folder: str
) -> None:
    page = browser.new_page()
    try:
        page.goto(f"{lab.url}lab/tree/{flags_folder}")
        page.wait_for_selector('.jp-DirListing-item[data-bioimnb-kind="image"]', timeout=60_000)
        _row(page, "tissue-no-suffix").dblclick()
        viewer = '.bioimnb-document:has(.bioimnb-title:text("tissue-no-suffix")) .bioimnb-viewer'
        page.wait_for_selector(f'{viewer}[data-state="ready"]', timeout=60_000)
        # A folder named *.zarr without metadata is entered, not opened.
        _row(page, "plain.zarr").dblclick()
        page.wait_for_selector(".jp-DirListing-item:has-text('notes.txt')", timeout=30_000)
    finally:
        page.close()
