"""``bioimnb ls``: run as a real subprocess; the JSON shape is a contract."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
ENTRY_KEYS = ["name", "path", "kind", "format", "size", "files", "incomplete", "error"]


def run_ls(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), full_env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "bioimnb", "ls", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )


def assert_user_error(proc: subprocess.CompletedProcess[str], source: str, reason: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"bioimnb: error: {source}: "), lines[0]
    assert reason in lines[0]
    assert "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli") / "data"
    (root / "img.ome.zarr" / "0").mkdir(parents=True)
    (root / "img.ome.zarr" / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group", "attributes": {"ome": {"version": "0.5", "multiscales": [{"datasets": [{"path": "0"}]}]}}}')
    for i in range(50):
        (root / "img.ome.zarr" / "0" / f"c{i}").write_bytes(b"x")
    (root / "slide.mrxs").write_bytes(b"m" * 10)
    (root / "slide").mkdir()
    (root / "slide" / "Index.dat").write_bytes(b"i" * 20)
    (root / "slide" / "Data0000.dat").write_bytes(b"d" * 30)
    (root / "a.ome.tif").write_bytes(b"t" * 2048)
    (root / "notes.txt").write_text("hi")
    (root / "sub").mkdir()
    (root / ".hidden").write_text("h")
    return root


def test_ls_json_contract(folder: Path) -> None:
    proc = run_ls(str(folder), "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert list(data) == ["location", "entries", "next_page"]
    assert data["location"] == str(folder)
    assert data["next_page"] is None
    for entry in data["entries"]:
        assert list(entry) == ENTRY_KEYS
    assert data["entries"] == [
        {
            "name": "a.ome.tif",
            "path": str(folder / "a.ome.tif"),
            "kind": "image",
            "format": "OME-TIFF",
            "size": 2048,
            "files": None,
            "incomplete": False,
            "error": "not an OME-TIFF file: the content is text",
        },
        {
            "name": "img.ome.zarr",
            "path": str(folder / "img.ome.zarr"),
            "kind": "image",
            "format": "OME-Zarr",
            "size": None,
            "files": None,
            "incomplete": False,
            "error": None,
        },
        {
            "name": "notes.txt",
            "path": str(folder / "notes.txt"),
            "kind": "file",
            "format": None,
            "size": 2,
            "files": None,
            "incomplete": False,
            "error": None,
        },
        {
            "name": "slide.mrxs",
            "path": str(folder / "slide.mrxs"),
            "kind": "image",
            "format": "MRXS",
            "size": 60,
            "files": 3,
            "incomplete": False,
            "error": None,
        },
        {
            "name": "sub",
            "path": str(folder / "sub"),
            "kind": "folder",
            "format": None,
            "size": None,
            "files": None,
            "incomplete": False,
            "error": None,
        },
    ]


def test_ls_paging_through_the_cli(folder: Path) -> None:
    names: list[str] = []
    token: str | None = None
    sizes = []
    for _ in range(10):
        args = [str(folder), "--json", "--page-size", "2"]
        if token:
            args += ["--page", token]
        proc = run_ls(*args)
        assert proc.returncode == 0, proc.stderr
        data = json.loads(proc.stdout)
        sizes.append(len(data["entries"]))
        names += [e["name"] for e in data["entries"]]
        token = data["next_page"]
        if token is None:
            break
    assert sizes == [2, 2, 1]
    assert names == ["a.ome.tif", "img.ome.zarr", "notes.txt", "slide.mrxs", "sub"]


def test_ls_human_output(folder: Path) -> None:
    proc = run_ls(str(folder), "--page-size", "4")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any("slide.mrxs (3 files)" in line and "MRXS" in line for line in lines)
    assert any(line.endswith("img.ome.zarr") and "OME-Zarr" in line for line in lines)
    assert lines[-1].startswith("... more: --page ")
    assert not any("sub/" in line for line in lines)  # fifth entry is on the next page


def test_ls_missing_folder(tmp_path: Path) -> None:
    missing = tmp_path / "does-not-exist"
    assert_user_error(run_ls(str(missing), "--json"), str(missing), "no such file or directory")


def test_ls_file_is_not_a_folder(folder: Path) -> None:
    assert_user_error(run_ls(str(folder / "notes.txt")), str(folder / "notes.txt"), "not a folder")


def test_ls_invalid_page_token(folder: Path) -> None:
    assert_user_error(run_ls(str(folder), "--page", "garbage!"), str(folder), "invalid page token")


def test_ls_s3(s3: Any) -> None:
    bucket = s3.make_bucket("cli")
    s3.put(bucket, {"p/x.ome.zarr/zarr.json": b'{"zarr_format": 3, "node_type": "group", "attributes": {"ome": {"version": "0.5", "multiscales": [{"datasets": [{"path": "0"}]}]}}}', "p/y.czi": b"c" * 7, "p/z/q": b""})
    env = {"AWS_ACCESS_KEY_ID": s3.key, "AWS_SECRET_ACCESS_KEY": s3.secret}
    proc = run_ls(f"s3://{bucket}/p/", "--json", "--endpoint-url", s3.endpoint_url, env=env)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data == {
        "location": f"s3://{bucket}/p",
        "entries": [
            {
                "name": "x.ome.zarr",
                "path": f"s3://{bucket}/p/x.ome.zarr",
                "kind": "image",
                "format": "OME-Zarr",
                "size": None,
                "files": None,
                "incomplete": False,
                "error": None,
            },
            {
                "name": "y.czi",
                "path": f"s3://{bucket}/p/y.czi",
                "kind": "image",
                "format": "CZI",
                "size": 7,
                "files": None,
                "incomplete": False,
                "error": "not a CZI file: the content is text",
            },
            {
                "name": "z",
                "path": f"s3://{bucket}/p/z",
                "kind": "folder",
                "format": None,
                "size": None,
                "files": None,
                "incomplete": False,
                "error": None,
            },
        ],
        "next_page": None,
    }
    assert s3.secret not in proc.stdout + proc.stderr
    bad = run_ls(
        f"s3://{bucket}/p/",
        "--endpoint-url",
        s3.endpoint_url,
        env={**env, "AWS_SECRET_ACCESS_KEY": "wrong"},
    )
    assert_user_error(bad, f"s3://{bucket}/p", "permission denied")


def test_ls_unreachable_endpoint() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
    start = time.monotonic()
    proc = run_ls(
        "s3://bucket/prefix/", "--endpoint-url", f"http://127.0.0.1:{port}", env=env, timeout=30
    )
    assert time.monotonic() - start < 15
    assert_user_error(proc, "s3://bucket/prefix", "cannot reach the storage endpoint")
