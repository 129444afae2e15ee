"""The plan in real Chromium.

* The HTML plan (a standalone file on a file:// URL): the measured numbers are in
  the table cells a reader sees, and the embedded charts decode to real pictures (not blank,
  with the format colours).
* ``DmpPanel`` in a real JupyterLab (the ``lab``/``browser`` fixtures): typing an answer redraws
  the plan; the download buttons save its Markdown and its maDMP JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from uilab import write_notebook

from bioimnb.core.dmp import dmp


def test_plan_html_in_chromium(browser: Any, tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    tifffile.imwrite(data / "cells.ome.tif", np.arange(2 * 64 * 64, dtype=np.uint16).reshape(2, 64, 64), ome=True, metadata={"axes": "CYX"})
    tifffile.imwrite(data / "plain.tif", np.ones((48, 48), np.uint8))
    (data / "readme.txt").write_text("about these images\n")
    plan = dmp(data, cache=False, completeness=None, title="Browser check <b>bold?</b>", licence="CC-BY-4.0", price_per_tb_year=50)
    total = sum(p.stat().st_size for p in data.iterdir())
    out = tmp_path / "plan.html"
    plan.save(out)

    page = browser.new_page()
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
    page.close()


KERNEL_IDLE = (
    "() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
    " const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;"
    " return !!k && k.status === 'idle'; }"
)


def test_panel_in_jupyterlab_edits_and_downloads(lab: Any, browser: Any, tmp_path: Path):
    """DmpPanel in a real lab: an answer typed in the form redraws the plan, and the download
    buttons save the plan's Markdown and its validated maDMP JSON."""
    import json

    import jsonschema

    from bioimnb.core.dmp.madmp import SCHEMA_PATH

    demo = lab.root / "demo"
    # the scan skips hidden files (the demo's .bioimnb-demo.json marker)
    total = sum(p.stat().st_size for p in demo.rglob("*") if p.is_file() and not p.relative_to(demo).parts[0].startswith("."))
    write_notebook(lab.root / "dmp.ipynb", ['import bioimnb\np = bioimnb.DmpPanel("demo", cache=False, completeness=None)\np'])
    page = browser.new_page()
    try:
        page.goto(f"{lab.url}lab/tree/dmp.ipynb")
        page.wait_for_selector(".jp-Notebook .jp-Cell .jp-InputArea-editor")
        page.wait_for_function(KERNEL_IDLE, timeout=60_000)
        page.locator(".jp-Notebook .jp-Cell").first.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Control+Enter")
        page.wait_for_selector(".bioimnb-dmp-actions button", timeout=60_000)
        plan = page.locator(".bioimnb-dmp").first
        assert f"{total:,} bytes" in plan.inner_text()
        # type a title into the form; the plan on the right follows
        title = page.locator(".widget-text", has=page.locator("label", has_text="Title")).locator("input")
        title.fill("Atlas typed in the browser")
        title.press("Enter")
        page.wait_for_function(
            "() => /Atlas typed in the browser/.test(document.querySelector('.bioimnb-dmp h1')?.textContent || '')",
            timeout=30_000,
        )
        with page.expect_download() as md_download:
            page.get_by_role("button", name="Download .md").click()
        assert md_download.value.suggested_filename == "Atlas-typed-in-the-browser.md"
        md = Path(md_download.value.path()).read_text()
        assert md.startswith("# Data management plan: Atlas typed in the browser")
        assert f"| Bytes on storage | {total:,} bytes |" in md
        with page.expect_download() as json_download:
            page.get_by_role("button", name="Download maDMP .json").click()
        doc = json.loads(Path(json_download.value.path()).read_text())
        jsonschema.Draft202012Validator(
            json.loads(SCHEMA_PATH.read_text()), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        ).validate(doc)
        assert doc["dmp"]["title"] == "Data management plan: Atlas typed in the browser"
        assert sum(d["byte_size"] for d in doc["dmp"]["dataset"][0]["distribution"]) == total
    finally:
        page.close()
