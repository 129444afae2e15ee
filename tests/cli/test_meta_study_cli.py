"""``bioimnb meta export`` and ``bioimnb meta completeness``: the contract scripts rely on, through
the real command (a subprocess), local and on S3."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "core"))
from meta_fixtures import FULL, ome_tiff  # noqa: E402

from bioimnb.core.curation import rembi  # noqa: E402


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "AWS_EC2_METADATA_DISABLED": "true", **(env or {})}
    environ.pop("BIOIMNB_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "bioimnb", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environ,
        stdin=subprocess.DEVNULL,
    )


def one_line(proc: subprocess.CompletedProcess[str], *parts: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-500:], proc.stderr[-2000:])
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("bioimnb: error: ") and "Traceback" not in proc.stderr
    for part in parts:
        assert part in lines[0], (part, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("meta-cli") / "data"
    ome_tiff(d / "a" / "full.ome.tif", **FULL, annotations={"Gene": "sox10"})
    ome_tiff(d / "a" / "bare.ome.tif", size=(None, None, None), channels=[None])
    ome_tiff(d / "b" / "stack.ome.tif", **{**FULL, "z": 3, "size": (0.2, 0.2, None)})
    (d / "readme.txt").write_text("hello")
    return d


@pytest.fixture()
def cache_env(tmp_path: Path) -> dict[str, str]:
    return {"BIOIMNB_CACHE_DIR": str(tmp_path / "cache")}


def test_completeness_json_lines(folder: Path, cache_env: dict[str, str]) -> None:
    proc = run("meta", "completeness", str(folder), "--json", env=cache_env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    images = {Path(o["path"]).name: o for o in lines[:-1]}
    assert images == {
        "full.ome.tif": {"path": str(folder / "a" / "full.ome.tif"), "score": 1.0, "missing": []},
        "bare.ome.tif": {
            "path": str(folder / "a" / "bare.ome.tif"),
            "score": 0.0,
            "missing": ["physical_size_x", "physical_size_y", "channel_names", "objective_na", "objective_magnification", "acquisition_date", "instrument"],
        },
        "stack.ome.tif": {"path": str(folder / "b" / "stack.ome.tif"), "score": 0.875, "missing": ["physical_size_z"]},
    }
    summary = lines[-1]["summary"]
    assert summary["images"] == 3 and summary["complete"] == 1
    assert summary["score"] == pytest.approx((1 + 0 + 0.875) / 3, abs=1e-4)
    assert summary["missing"]["physical_size_z"] == 1 and summary["missing"]["instrument"] == 1
    assert summary["folders"][str(folder / "b")] == {"score": 0.875, "images": 1, "complete": 0}
    # The second run reads the facts cache and gives the same answer.
    again = run("meta", "completeness", str(folder), "--json", env=cache_env)
    assert again.stdout == proc.stdout


def test_completeness_text_names_what_is_missing(folder: Path, cache_env: dict[str, str]) -> None:
    proc = run("meta", "completeness", str(folder), env=cache_env)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert any(line.endswith(f"{folder / 'b' / 'stack.ome.tif'}  missing: physical_size_z") for line in out)
    assert any(line.endswith(f"{folder / 'a' / 'full.ome.tif'}  complete") for line in out)
    assert "completeness 62% over 3 image(s); 1 complete, 0 unreadable, 0 with a REMBI study" in out
    assert "  missing physical_size_x: 1 of 3" in out


def test_export_all_three(folder: Path, tmp_path: Path, cache_env: dict[str, str]) -> None:
    rembi.save(folder / "a", {"study": {"title": "CLI study", "licence": "CC-BY-4.0"}})
    try:
        tsv, js, idr = tmp_path / "files.tsv", tmp_path / "study.json", tmp_path / "ann.csv"
        proc = run("meta", "export", str(folder / "a"), "--bia-filelist", str(tsv), "--rembi", str(js), "--idr-annotations", str(idr), env=cache_env)
        assert proc.returncode == 0, proc.stderr
        assert f"BIA file list: 2 row(s) -> {tsv}" in proc.stdout
        rows = list(csv.reader(io.StringIO(tsv.read_text(encoding="utf-8")), delimiter="\t"))
        assert rows[0][0] == "Files" and rows[0][-1] == "Gene"
        assert sorted(r[0] for r in rows[1:]) == ["bare.ome.tif", "full.ome.tif"]
        assert json.loads(js.read_text(encoding="utf-8"))["study"] == {"title": "CLI study", "licence": "CC-BY-4.0"}
        assert idr.read_text(encoding="utf-8").splitlines() == ["Dataset Name,Image Name,Gene", ".,full.ome.tif,sox10"]
        as_json = run("meta", "export", str(folder / "a"), "--rembi", str(js), "--json", env=cache_env)
        assert json.loads(as_json.stdout)["rembi"]["path"] == str(js)
    finally:
        (folder / "a" / "rembi.json").unlink()


def test_user_errors_are_one_line_exit_2(folder: Path, tmp_path: Path, cache_env: dict[str, str]) -> None:
    one_line(run("meta", "export", str(folder)), "nothing to export")
    one_line(run("meta", "export", str(folder), "--rembi", str(tmp_path / "s.json")), str(folder), "no REMBI study applies")
    assert not (tmp_path / "s.json").exists()
    one_line(run("meta", "export", str(tmp_path / "missing"), "--bia-filelist", str(tmp_path / "f.tsv")), "missing", "no such folder")
    one_line(run("meta", "export", str(folder), "--bia-filelist", str(tmp_path / "no" / "f.tsv")), "cannot be written")
    one_line(run("meta", "completeness", str(tmp_path / "missing"), env=cache_env), str(tmp_path / "missing"))
    bad = tmp_path / "badstudy"
    bad.mkdir()
    (bad / "rembi.json").write_text('{"biosample": {"organism_classification": [{"ncbi_id": "mouse"}]}}')
    one_line(run("meta", "export", str(bad), "--rembi", str(tmp_path / "s.json")), "rembi.json", "biosample.organism_classification[0].ncbi_id")
    usage = run("meta", "completeness")
    assert usage.returncode == 2 and "usage:" in usage.stderr


def test_completeness_and_export_on_s3(s3: Any, tmp_path: Path, cache_env: dict[str, str]) -> None:
    bucket = s3.make_bucket("metacli")
    local = tmp_path / "up"
    data = {
        "run/x.ome.tif": ome_tiff(local / "x.ome.tif", **FULL, annotations={"Plate": "P1"}).read_bytes(),
        "run/y.ome.tif": ome_tiff(local / "y.ome.tif", acquired="2024-01-01T00:00:00").read_bytes(),
    }
    s3.put(bucket, data)
    url = f"s3://{bucket}/run"
    rembi.save(url, {"study": {"title": "On S3"}}, **s3.storage_options)
    flags = ["--endpoint-url", s3.endpoint_url]
    env = {**cache_env, "AWS_ACCESS_KEY_ID": s3.key, "AWS_SECRET_ACCESS_KEY": s3.secret}
    proc = run("meta", "completeness", url, "--json", *flags, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    by_name = {o["path"].rsplit("/", 1)[-1]: o for o in lines[:-1]}
    required = rembi.required_fields()
    assert by_name["x.ome.tif"]["missing"] == [f for f in required if f != "study.title"]
    assert by_name["y.ome.tif"]["missing"][:4] == ["objective_na", "objective_magnification", "instrument", "study.description"]
    assert lines[-1]["summary"]["with_study"] == 2
    tsv = tmp_path / "s3.tsv"
    proc = run("meta", "export", url, "--bia-filelist", str(tsv), *flags, env=env)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(tsv.read_text(encoding="utf-8")), delimiter="\t"))
    assert [(r["Files"], r["Plate"]) for r in rows] == [("x.ome.tif", "P1"), ("y.ome.tif", "")]
