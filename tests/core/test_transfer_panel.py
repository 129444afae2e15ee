"""``%bioim transfer`` (through a real IPython shell) shows a progress panel; ``%bioim fixity``
and ``%bioim manifest`` print their summaries; errors are one-line UsageErrors."""

from __future__ import annotations

import hashlib
import os
import threading
import time

import pytest


@pytest.fixture(scope="module")
def ip():
    from IPython.testing.globalipapp import get_ipython

    shell = get_ipython()
    shell.run_line_magic("load_ext", "bioimnb")
    return shell


def test_transfer_magic_panel_bag_then_fixity(ip, tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    (src / "x.raw").write_bytes(os.urandom(40_000))
    (src / "<b>.txt").write_text("escaped in the panel")
    panel = ip.run_line_magic("bioim", f"transfer {src} {tmp_path / 'bag'} --bag")
    report = panel.wait(60)
    assert report.ok and report.copied == 2 and report.bag
    assert panel.bar.value == 1.0 and panel.bar.bar_style == "success"
    assert "copied 2" in panel.result.value and "bag written" in panel.result.value
    got = (tmp_path / "bag" / "data" / "x.raw").read_bytes()
    assert hashlib.sha256(got).digest() == hashlib.sha256((src / "x.raw").read_bytes()).digest()
    rep = ip.run_line_magic("bioim", f"fixity {tmp_path / 'bag'}")
    assert rep.intact and ": intact (bag, sha256)" in capsys.readouterr().out
    # a conflict shows in the panel, names escaped
    (tmp_path / "bag" / "data" / "<b>.txt").write_text("changed")
    panel = ip.run_line_magic("bioim", f"transfer {src} {tmp_path / 'bag'} --bag")
    report = panel.wait(60)
    assert not report.ok and panel.bar.bar_style == "warning"
    assert "<code>&lt;b&gt;.txt</code>" in panel.result.value
    rep = ip.run_line_magic("bioim", f"manifest {src}")
    assert rep.files == 2 and (src / "manifest-sha256.txt").exists()


def test_transfer_magic_errors_are_usage_errors(ip, tmp_path):
    from IPython.core.error import UsageError

    panel = ip.run_line_magic("bioim", f"transfer {tmp_path / 'missing'} {tmp_path / 'd'}")
    with pytest.raises(Exception, match="no such file or directory"):
        panel.wait(30)
    assert panel.bar.bar_style == "danger" and "missing: no such file or directory" in panel.status.value
    with pytest.raises(UsageError, match="nothing to check against"):
        ip.run_line_magic("bioim", f"fixity {tmp_path}")
    with pytest.raises(UsageError, match="--bag and --sync are for one-off transfers"):
        ip.run_line_magic("bioim", f"transfer {tmp_path} {tmp_path / 'o'} --watch --bag")


def test_watch_panel_stops_on_its_button(ip, tmp_path):
    acq = tmp_path / "acq"
    acq.mkdir()
    panel = ip.run_line_magic("bioim", f"transfer {acq} {tmp_path / 'out'} --watch --settle 0.2")
    (acq / "frame.tif").write_bytes(b"pixels")
    deadline = time.monotonic() + 20
    while not (tmp_path / "out" / "frame.tif").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (tmp_path / "out" / "frame.tif").read_bytes() == b"pixels"
    threading.Timer(0.2, panel.cancel_button.click).start()
    report = panel.wait(20)
    assert report.copied == 1 and panel.done
