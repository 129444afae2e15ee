"""%bioim magics (through a real IPython shell) and the conversion panel."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fixtures  # noqa: E402


@pytest.fixture(scope="module")
def ip():
    from IPython.testing.globalipapp import get_ipython

    shell = get_ipython()
    shell.run_line_magic("load_ext", "bioimnb")
    return shell


@pytest.fixture(scope="module")
def src(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("magic")
    fixtures.ome_tiff_subifd(d / "m.ome.tif", scenes=1)
    return d / "m.ome.tif"


def test_info_and_ls(ip, src, capsys):
    shown = ip.run_line_magic("bioim", f"info {src}")
    out = capsys.readouterr().out
    assert "OME-TIFF" in out and "600x800, 300x400, 150x200" in out and "(1, 2, 1, 600, 800)" in out
    assert shown is None  # the description only, no repr of an image object after it
    ip.run_line_magic("bioim", f"ls {src.parent}")
    assert "m.ome.tif" in capsys.readouterr().out


def test_errors_are_usage_errors(ip, tmp_path):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="no such file"):
        ip.run_line_magic("bioim", f"info {tmp_path / 'missing.czi'}")
    with pytest.raises(UsageError):
        ip.run_line_magic("bioim", "frobnicate x")


def test_convert_magic_panel(ip, src, tmp_path):
    import bioimnb

    panel = ip.run_line_magic("bioim", f"convert {src} {tmp_path / 'o.ome.zarr'} --chunks 128 --levels 2")
    report = panel.wait(120)
    assert panel.bar.value == 1.0 and panel.bar.bar_style == "success"
    assert "validation passed" in panel.result.value
    assert report.written_blocks > 0
    out = bioimnb.open_image(tmp_path / "o.ome.zarr")
    np.testing.assert_array_equal(out.levels[0].compute(), bioimnb.open_image(src).levels[0].compute())


def test_panel_cancel_leaves_resumable_output(tmp_path):
    from bioimnb.widgets.convert import ConvertPanel

    big = tmp_path / "big.tif"
    fixtures.flat_tiff(big, shape=(4096, 4096), rowsperstrip=64)
    panel = ConvertPanel(big, tmp_path / "c.ome.zarr", chunks=256, shards=256, workers=1)
    panel.cancel()  # cancelled before the first block: nothing may be reported as complete
    panel.start()
    with pytest.raises(Exception, match="cancelled"):
        panel.wait(120)
    assert panel.bar.bar_style == "warning" and "resume" in panel.status.value
    import bioimnb

    assert bioimnb.open_image(tmp_path / "c.ome.zarr").status()["incomplete"] is True


def test_scan_magic(ip, src, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("BIOIMNB_CACHE_DIR", str(tmp_path / "cache"))
    (src.parent / "notes.txt").write_text("hi")
    found = ip.run_line_magic("bioim", f"scan {src.parent}")
    out = capsys.readouterr().out
    assert "OME-TIFF" in out and "m.ome.tif" in out and "1 image(s), 1 other file(s)" in out
    by = {Path(f.path).name: f for f in found}
    assert by["m.ome.tif"].scenes[0]["shape"] == [1, 2, 1, 600, 800]
