"""The metadata editor widget: its logic driven from Python (form fields, key-value pairs, diff,
undo, validation, save, read back by tifffile and ome-types), the ``%bioim meta`` magic, and
once in real Chromium: edit a channel name -> the diff shows it -> Save -> the file has it."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from ome_types import from_tiff, from_xml
from uilab import Lab, write_notebook

import bioimnb
from bioimnb.core.curation.changes import get_map
from bioimnb.core.errors import BioimnbError
from bioimnb.widgets.metadata import MetadataEditor

KERNEL_IDLE = (
    "() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
    " const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;"
    " return !!k && k.status === 'idle'; }"
)

SHOWS = "([sel, text]) => [...document.querySelectorAll('.bioimnb-metadata ' + sel)].some((e) => e.textContent.includes(text))"


def write_image(path: Path) -> np.ndarray:
    data = np.arange(2 * 128 * 128, dtype=np.uint16).reshape(2, 128, 128)
    tifffile.imwrite(path, data, ome=True, bigtiff=True, tile=(64, 64), metadata={"axes": "CYX", "Name": "cells", "PhysicalSizeX": 0.2, "PhysicalSizeY": 0.2, "Channel": {"Name": ["DAPI", "Ch2"]}})
    return data


def pixel_hashes(path: Path) -> list[str]:
    with tifffile.TiffFile(path) as tif, open(path, "rb") as fh:
        out = []
        for page in tif.pages:
            for offset, count in zip(page.dataoffsets, page.databytecounts, strict=True):
                fh.seek(offset)
                out.append(hashlib.sha256(fh.read(count)).hexdigest())
    return out


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "cells.ome.tif"
    write_image(path)
    return path


def test_form_edit_diff_undo_save(image: Path) -> None:
    hashes = pixel_hashes(image)
    editor = bioimnb.edit_metadata(str(image))
    assert isinstance(editor, MetadataEditor)
    assert "saved in place" in editor.title.value and "no pending changes" in editor.diff_view.value
    assert editor.save_button.disabled
    # typing into the form is a change-list item
    editor.fields["images[0].pixels.channels[1].name"].value = "GFP"
    editor.fields["images[0].pixels.physical_size_x"].value = "0.5"
    editor.fields["images[0].pixels.channels[1].color"].value = "#00ff00"
    assert sorted(c.field for c in editor.diff()) == [
        "images[0].pixels.channels[1].color",
        "images[0].pixels.channels[1].name",
        "images[0].pixels.physical_size_x",
    ]
    assert "GFP" in editor.diff_view.value and not editor.save_button.disabled
    # an invalid value is refused, named, and the field shows the model's value again
    editor.fields["images[0].pixels.physical_size_y"].value = "-2"
    assert "images[0].pixels.physical_size_y" in editor.status.value and "greater than 0" in editor.status.value
    assert editor.fields["images[0].pixels.physical_size_y"].value == "0.2"
    with pytest.raises(BioimnbError):
        editor.set("images[0].pixels.physical_size_z_unit", "furlong")
    # key-value pairs: add, edit, remove
    editor.new_key.value, editor.new_value.value = "Organism", "Danio rerio"
    editor._add_pair()
    editor.set_map("Stage", "48 hpf")
    editor.remove_map("Stage")
    assert editor.session.map() == [("Organism", "Danio rerio")]
    # undo takes back the last edit (the removal)
    assert editor.undo() and editor.session.map() == [("Organism", "Danio rerio"), ("Stage", "48 hpf")]
    assert editor.validate().valid and "valid" in editor.validation_view.value
    result = editor.save()
    assert result.kind == "ome-tiff" and len(result.changes) == 5
    assert "no pending changes" in editor.diff_view.value and "saved 5 changes" in editor.status.value
    ome = from_tiff(image)
    ch = ome.images[0].pixels.channels[1]
    assert ch.name == "GFP" and ch.color.as_hex().lower() in ("#0f0", "#00ff00") and ome.images[0].pixels.physical_size_x == 0.5
    assert get_map(ome, 0) == [("Organism", "Danio rerio"), ("Stage", "48 hpf")]
    with tifffile.TiffFile(image) as tif:
        assert 'Name="GFP"' in (tif.ome_metadata or "")
    assert pixel_hashes(image) == hashes


def test_tree_plate_instrument_and_validation_panel(shared_data: Path, tmp_path: Path) -> None:
    for name in ("hcs.ome.xml", "instrument.ome.xml", "bad.ome.xml"):
        path = tmp_path / name
        path.write_bytes((shared_data / "ome-xml" / name).read_bytes())
        editor = bioimnb.edit_metadata(str(path))
        assert "<summary>OME</summary>" in editor.tree.value
        if name == "hcs.ome.xml":
            assert "plates[0].name" in editor.fields and "Plate 0" in str([getattr(c, "value", "") for c in editor.form.children])
            editor.fields["plates[0].name"].value = "Screen plate 7"
            editor.save()
            assert from_xml(path.read_text(encoding="utf-8")).plates[0].name == "Screen plate 7"
        if name == "instrument.ome.xml":
            assert editor.fields["instruments[0].objectives[0].lens_na"].value == "1.2"
            editor.fields["instruments[0].objectives[0].lens_na"].value = "1.4"
            assert sorted(c.field for c in editor.diff()) == ["instruments[0].objectives[0].lens_na"]
        if name == "bad.ome.xml":
            report = editor.validate()
            assert not report.valid and "InvalidName" in editor.validation_view.value
            assert "InvalidName" in editor.notes.value


def test_sidecar_is_announced(shared_data: Path, tmp_path: Path) -> None:
    dv = tmp_path / "toxo.dv"
    dv.write_bytes((shared_data / "dv" / "toxo.dv").read_bytes())
    editor = bioimnb.edit_metadata(str(dv))
    assert "companion file" in editor.title.value + editor.notes.value and "toxo.dv.ome.xml" in editor.notes.value
    assert editor.convert_row.layout.display == ""
    editor.set("channel[0].name", "GFP")
    editor.save()
    assert from_xml(Path(f"{dv}.ome.xml").read_text(encoding="utf-8")).images[0].pixels.channels[0].name == "GFP"


def test_magic_returns_the_editor(image: Path) -> None:
    from IPython.testing.globalipapp import get_ipython

    ip = get_ipython()
    ip.run_line_magic("load_ext", "bioimnb")
    editor = ip.run_line_magic("bioim", f"meta {image}")
    assert isinstance(editor, MetadataEditor) and editor.session.source == str(image)
    from IPython.core.error import UsageError

    with pytest.raises(UsageError) as err:
        ip.run_line_magic("bioim", f"meta {image.parent / 'missing.ome.tif'}")
    assert "missing.ome.tif" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.browser
@pytest.mark.timeout(240)
def test_edit_diff_save_in_chromium(lab: Lab, browser: Any) -> None:
    path = lab.root / "meta.ome.tif"
    write_image(path)
    hashes = pixel_hashes(path)
    write_notebook(lab.root / "meta.ipynb", ["import bioimnb\ne = bioimnb.edit_metadata('meta.ome.tif')\ne"])
    page = browser.new_page()
    try:
        page.goto(f"{lab.url}lab/tree/meta.ipynb")
        page.wait_for_selector(".jp-Notebook .jp-Cell .jp-InputArea-editor")
        page.wait_for_function(KERNEL_IDLE, timeout=60_000)
        page.locator(".jp-Notebook .jp-Cell").nth(0).locator(".jp-InputArea-editor").click()
        page.keyboard.press("Control+Enter")
        editor = page.locator(".bioimnb-metadata").first
        editor.wait_for(timeout=60_000)
        field = editor.locator(".bioimnb-meta-field").filter(has_text="Channel 1 name").locator("input")
        assert field.input_value() == "Ch2"
        field.fill("GFP")
        field.press("Enter")
        # (the HTML widgets replace their content: wait on a selector, not on an element)
        page.wait_for_function(SHOWS, arg=[".bioimnb-meta-diff", "GFP"], timeout=30_000)
        text = editor.locator(".bioimnb-meta-diff").inner_text()
        assert "images[0].pixels.channels[1].name" in text and "Ch2" in text and "GFP" in text
        assert from_tiff(path).images[0].pixels.channels[1].name == "Ch2"  # nothing written yet
        editor.locator("button.bioimnb-meta-save").click()
        page.wait_for_function(SHOWS, arg=[".bioimnb-meta-status", "saved 1 change"], timeout=30_000)
        page.wait_for_function(SHOWS, arg=[".bioimnb-meta-diff", "no pending changes"], timeout=30_000)
    finally:
        page.close()
    assert from_tiff(path).images[0].pixels.channels[1].name == "GFP"
    with tifffile.TiffFile(path) as tif:
        assert 'Name="GFP"' in (tif.ome_metadata or "")
    assert pixel_hashes(path) == hashes
