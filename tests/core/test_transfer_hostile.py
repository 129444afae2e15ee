"""Transfer and manifests meet a FIFO in the source folder: reported by name, never a hang."""

from __future__ import annotations

import os
import threading

import bioimnb


def _source(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("hello\n")
    os.mkfifo(src / "pipe")
    return src


def test_a_fifo_is_a_named_failure_and_the_rest_is_copied(tmp_path):
    src = _source(tmp_path)
    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(r=bioimnb.transfer(str(src), str(tmp_path / "dst"))), daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "transfer blocked on a FIFO"
    report = result["r"].to_dict()
    assert [(f["path"], "not a regular file" in f["reason"]) for f in report["failures"]] == [("pipe", True)]
    assert (tmp_path / "dst" / "a.txt").read_text() == "hello\n"
    assert not (tmp_path / "dst" / "pipe").exists()
