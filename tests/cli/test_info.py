"""`bioimnb info`: the JSON contract, and one-line errors with exit status 2 for bad input."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import fixtures  # noqa: E402

ENV = {
    **os.environ,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_ACCESS_KEY_ID": "test-key",
    "AWS_SECRET_ACCESS_KEY": "test-secret",
}


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bioimnb", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENV,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def pyramid(tmp_path_factory) -> tuple[Path, list]:
    d = tmp_path_factory.mktemp("cli")
    truth = fixtures.ome_tiff_subifd(d / "two.ome.tif")
    return d / "two.ome.tif", truth


def test_info_json_contract(pyramid):
    path, truth = pyramid
    proc = run("info", str(path), "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert {"source", "format", "scenes"} <= set(data)
    assert data["source"] == str(path) and data["format"] == "OME-TIFF"
    assert len(data["scenes"]) == 2
    scene = data["scenes"][1]
    assert {"name", "axes", "shape", "dtype", "levels", "physical_size_um", "channels"} <= set(scene)
    assert scene["name"] == "scene-1"
    assert scene["axes"] == "TCZYX"
    assert scene["shape"] == [1, 2, 1, 600, 800]
    assert scene["dtype"] == "uint16"
    assert scene["levels"] == [[1, 2, 1, 600, 800], [1, 2, 1, 300, 400], [1, 2, 1, 150, 200]]
    assert scene["physical_size_um"] == {"X": 0.325, "Y": 0.325, "Z": None}
    assert scene["channels"] == ["DAPI", "GFP"]


def test_info_text(pyramid):
    proc = run("info", str(pyramid[0]))
    assert proc.returncode == 0, proc.stderr
    assert "OME-TIFF" in proc.stdout and "600x800, 300x400, 150x200" in proc.stdout
    assert "DAPI, GFP" in proc.stdout


def assert_user_error(proc: subprocess.CompletedProcess[str], name: str, reason: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert name in lines[0] and reason in lines[0], lines[0]
    assert lines[0].startswith("bioimnb: error: ")


def test_missing_file(tmp_path):
    assert_user_error(run("info", str(tmp_path / "absent.czi")), "absent.czi", "no such file or directory")


def test_empty_file(tmp_path):
    (tmp_path / "empty.ome.tif").write_bytes(b"")
    assert_user_error(run("info", str(tmp_path / "empty.ome.tif")), "empty.ome.tif", "file is empty")


def test_truncated_tiff(tmp_path, pyramid):
    data = pyramid[0].read_bytes()
    (tmp_path / "cut.ome.tif").write_bytes(data[: int(len(data) * 0.7)])
    assert_user_error(run("info", str(tmp_path / "cut.ome.tif")), "cut.ome.tif", "truncated")


def test_tiff_cut_inside_the_header(tmp_path, pyramid):
    (tmp_path / "stub.tif").write_bytes(pyramid[0].read_bytes()[:12])
    proc = run("info", str(tmp_path / "stub.tif"))
    assert_user_error(proc, "stub.tif", "TIFF")


def test_text_named_tif(tmp_path):
    (tmp_path / "readme.tif").write_text("Just some notes about the experiment.\n" * 20)
    assert_user_error(run("info", str(tmp_path / "readme.tif")), "readme.tif", "not a TIFF file: the content is text")


def test_unsupported_format(tmp_path):
    (tmp_path / "data.bin").write_bytes(os.urandom(4096))
    assert_user_error(run("info", str(tmp_path / "data.bin")), "data.bin", "unsupported format")


def test_permission_denied(tmp_path, pyramid):
    target = tmp_path / "locked.ome.tif"
    target.write_bytes(pyramid[0].read_bytes())
    target.chmod(0)
    if os.geteuid() != 0:
        assert_user_error(run("info", str(target)), "locked.ome.tif", "permission denied")
        return
    # Root reads everything: load the code as root, then drop to 'nobody' before opening.
    code = (
        "import os, sys\n"
        "import bioimnb.cli, bioimnb.core.images, bioimnb.core.readers.tiff, bioimnb.core.storage\n"
        "os.setgid(65534); os.setuid(65534)\n"
        f"sys.exit(bioimnb.cli.main(['info', {str(target)!r}]))\n"
    )
    tmp_path.chmod(0o755)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=ENV)
    assert_user_error(proc, "locked.ome.tif", "permission denied")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_endpoint():
    port = _closed_port()
    start = time.monotonic()
    proc = run("info", "s3://nowhere/image.ome.tif", "--endpoint-url", f"http://127.0.0.1:{port}")
    assert_user_error(proc, "s3://nowhere/image.ome.tif", "cannot reach the storage endpoint")
    assert time.monotonic() - start < 30


def test_unreachable_http():
    port = _closed_port()
    proc = run("info", f"http://127.0.0.1:{port}/image.ome.tif")
    assert_user_error(proc, f"http://127.0.0.1:{port}/image.ome.tif", "cannot reach the storage endpoint")


def test_credentials_never_printed(tmp_path):
    proc = run("info", "https://alice:s3cr3t@127.0.0.1:1/x.ome.tif?X-Amz-Signature=abc")
    assert proc.returncode == 2
    assert "s3cr3t" not in proc.stderr and "X-Amz-Signature" not in proc.stderr
