"""``bioimnb transfer | manifest | fixity``: the exit codes and outputs the issue fixes
(transfer 0 / 1 with failures / 2 user error; fixity 0 intact / 1 not / 2 cannot run)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import bagit

from bioimnb.cli import main


def source(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "a.raw").write_bytes(os.urandom(20_000))
    (root / "sub" / "b.txt").write_text("b")
    return root


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("bioimnb: error: "), err
    return lines[0]


def test_transfer_exit_codes_and_json(tmp_path, capsys):
    src = source(tmp_path / "src")
    assert main(["transfer", str(src), str(tmp_path / "dest"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["copied"], out["failed"], out["files"], out["ok"]) == (2, 0, 2, True)
    assert (tmp_path / "dest" / "a.raw").read_bytes() == (src / "a.raw").read_bytes()
    # a conflicting destination file: exit 1, named on stderr, left as it is
    (tmp_path / "dest" / "sub" / "b.txt").write_text("other")
    assert main(["transfer", str(src), str(tmp_path / "dest"), "--quiet"]) == 1
    cap = capsys.readouterr()
    assert cap.out == ""
    assert cap.err.strip().splitlines() == [
        "bioimnb: failed: sub/b.txt: the destination exists with different content; left as it is (overwrite to replace it)"
    ]
    assert (tmp_path / "dest" / "sub" / "b.txt").read_text() == "other"
    assert main(["transfer", str(src), str(tmp_path / "dest"), "--overwrite"]) == 0
    assert "copied 1" in capsys.readouterr().out
    assert (tmp_path / "dest" / "sub" / "b.txt").read_text() == "b"


def test_transfer_user_errors_are_one_line_exit_2(tmp_path, capsys):
    assert main(["transfer", str(tmp_path / "missing"), str(tmp_path / "d")]) == 2
    assert one_error_line(capsys.readouterr().err).endswith("missing: no such file or directory")
    src = source(tmp_path / "src")
    assert main(["transfer", str(src), str(src / "inside")]) == 2
    assert "the destination lies inside the source" in one_error_line(capsys.readouterr().err)
    assert main(["transfer", str(src), "http://127.0.0.1:9/x"]) == 2
    assert "HTTP is a source only" in one_error_line(capsys.readouterr().err)


def test_bag_manifest_and_fixity_exit_codes(tmp_path, capsys):
    src = source(tmp_path / "src")
    bag = tmp_path / "bag"
    assert main(["transfer", str(src), str(bag), "--bag", "--quiet"]) == 0
    bagit.Bag(str(bag)).validate()
    assert main(["fixity", str(bag), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["intact"] is True and rep["kind"] == "bag" and rep["checked"] == 2
    (bag / "data" / "sub" / "b.txt").write_text("B")
    assert main(["fixity", str(bag)]) == 1
    out = capsys.readouterr().out
    assert "NOT intact" in out and "changed: data/sub/b.txt" in out

    assert main(["manifest", str(src), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["files"] == 2 and rep["algorithm"] == "sha256"
    assert (src / "manifest-sha256.txt").is_file() and (src / "bioimnb-manifest.json").is_file()
    assert main(["fixity", str(src)]) == 0
    assert ": intact (manifest, sha256): 2 of 2 files checked" in capsys.readouterr().out
    (src / "a.raw").unlink()
    assert main(["fixity", str(src), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["missing"] == ["a.raw"]


def test_fixity_cannot_run_exit_2(tmp_path, capsys):
    (tmp_path / "plain").mkdir()
    assert main(["fixity", str(tmp_path / "plain")]) == 2
    assert "nothing to check against" in one_error_line(capsys.readouterr().err)
    assert main(["fixity", str(tmp_path / "nope")]) == 2
    assert "no such file or directory" in one_error_line(capsys.readouterr().err)
    (tmp_path / "plain" / "manifest-sha256.txt").write_bytes(b"\xff\xfe garbage\n")
    assert main(["fixity", str(tmp_path / "plain")]) == 2
    assert "manifest-sha256.txt: is not UTF-8 text" in one_error_line(capsys.readouterr().err)
    (tmp_path / "f.txt").write_text("x")
    assert main(["fixity", str(tmp_path / "f.txt")]) == 2
    assert "not a folder" in one_error_line(capsys.readouterr().err)
    assert main(["manifest", str(tmp_path / "f.txt")]) == 2
    assert "not a folder" in one_error_line(capsys.readouterr().err)


def test_watch_transfers_new_files_and_stops_on_ctrl_c(tmp_path):
    acq, out = tmp_path / "acq", tmp_path / "out"
    acq.mkdir()
    env = {**os.environ}
    env.pop("BIOIMNB_DEBUG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bioimnb", "transfer", str(acq), str(out), "--watch", "--settle", "0.3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        time.sleep(1.0)
        (acq / "t0.tif").write_bytes(b"frame")
        deadline = time.monotonic() + 30
        while not (out / "t0.tif").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (out / "t0.tif").read_bytes() == b"frame"
    finally:
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "copied 1" in stdout
    assert "Traceback" not in stderr
