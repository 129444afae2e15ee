"""The HTML plan rendered in real Chromium: the measured numbers are in the table cells a reader
sees, and the embedded charts decode to real pictures (not blank, with the format colours).

A plain Chromium page on a file:// URL: the plan is a standalone file (no lab needed)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
from uilab import CHROMIUM, CHROMIUM_ARGS

from bioimnb.core.dmp import dmp


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory):
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)) and not shutil.which(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's chromium package", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1200, "height": 900})
        finally:
            browser.close()


def test_plan_html_in_chromium(page, tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    tifffile.imwrite(data / "cells.ome.tif", np.arange(2 * 64 * 64, dtype=np.uint16).reshape(2, 64, 64), ome=True, metadata={"axes": "CYX"})
    tifffile.imwrite(data / "plain.tif", np.ones((48, 48), np.uint8))
    (data / "readme.txt").write_text("about these images\n")
    plan = dmp(data, cache=False, completeness=None, title="Browser check <b>bold?</b>", licence="CC-BY-4.0", price_per_tb_year=50)
    total = sum(p.stat().st_size for p in data.iterdir())
    out = tmp_path / "plan.html"
    plan.save(out)

    page.goto(out.as_uri())
    assert page.title() == "Browser check <b>bold?</b>"
    # the title's markup is shown as text, never interpreted
    assert page.locator("h1").inner_text() == "Data management plan: Browser check <b>bold?</b>"
    assert page.locator("h1 b").count() == 0
    # the appendix row a reader checks: the measured bytes in its own cell
    row = page.locator("table tr", has=page.locator("td", has_text="Bytes on storage"))
    cells = row.locator("td").all_inner_texts()
    assert cells[1:3] == ["Bytes on storage", f"{total:,} bytes"]
    # the format table: one row per format with its measured bytes
    ome_row = page.locator("table tr", has=page.locator("td", has_text="OME-TIFF")).first.locator("td").all_inner_texts()
    assert ome_row[:5] == ["OME-TIFF", "open", "1", "1", f"{(data / 'cells.ome.tif').stat().st_size:,}"]
    # both charts decode in the browser, are not blank, and show the "open" colour of the bars
    stats = page.evaluate(
        """() => Array.from(document.querySelectorAll('figure.bioimnb-chart img')).map(img => {
            const c = document.createElement('canvas');
            c.width = img.naturalWidth; c.height = img.naturalHeight;
            const g = c.getContext('2d'); g.drawImage(img, 0, 0);
            const d = g.getImageData(0, 0, c.width, c.height).data;
            let nonWhite = 0, teal = 0;
            for (let i = 0; i < d.length; i += 4) {
              if (d[i] < 240 || d[i + 1] < 240 || d[i + 2] < 240) nonWhite++;
              if (Math.abs(d[i] - 0x2a) < 8 && Math.abs(d[i + 1] - 0x9d) < 8 && Math.abs(d[i + 2] - 0x8f) < 8) teal++;
            }
            return {name: img.closest('figure').dataset.chart, w: img.naturalWidth, h: img.naturalHeight,
                    nonWhite: nonWhite / (c.width * c.height), teal};
        })"""
    )
    assert {s["name"] for s in stats} == {"volume_by_format", "growth"}
    for s in stats:
        assert s["w"] >= 600 and s["h"] >= 150
        assert 0.02 < s["nonWhite"] < 0.9, s
        assert s["teal"] > 500, s
