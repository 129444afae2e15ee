"""``bioimnb dmp PATH... [--answers FILE] [--format md|html|madmp] [--output FILE]``: the contract
scripts rely on (standard output unless --output, exit 2 and one line on stderr for bad input)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

REPO = Path(__file__).resolve().parents[2]
SHARED_SCHEMA = REPO.parent / "shared" / "schemas" / "maDMP-schema-1.2.json"
ENV = {**os.environ, "AWS_EC2_METADATA_DISABLED": "true"}
ENV.pop("BIOIMNB_DEBUG", None)


def validated(doc: dict[str, Any]) -> dict[str, Any]:
    import jsonschema

    from bioimnb.core.dmp.madmp import SCHEMA_PATH

    schema = json.loads((SHARED_SCHEMA if SHARED_SCHEMA.is_file() else SCHEMA_PATH).read_text())
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER).validate(doc)
    return doc


class Result:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """``cli(*args)``: ``bioimnb`` in this process (``main()``, as the console script calls it)."""
    from bioimnb.cli import main

    monkeypatch.setenv("BIOIMNB_CACHE_DIR", str(tmp_path / "cache"))

    def call(*args: str) -> Result:
        capsys.readouterr()
        code = main(list(args))
        out = capsys.readouterr()
        return Result(code, out.out, out.err)

    return call


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The real command in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "bioimnb", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**ENV, "BIOIMNB_CACHE_DIR": str(cwd or REPO / "benchmarks" / "_work")},
        stdin=subprocess.DEVNULL,
        cwd=cwd,
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dmpcli") / "data"
    root.mkdir()
    tifffile.imwrite(root / "a.ome.tif", np.zeros((2, 64, 80), np.uint16), ome=True, metadata={"axes": "CYX"})
    tifffile.imwrite(root / "b.tif", np.ones((32, 32), np.uint8))
    (root / "bad.tif").write_text("text, not a TIFF")
    return root


def test_markdown_on_standard_output(data: Path, tmp_path: Path):
    proc = run("dmp", str(data), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    total = sum(p.stat().st_size for p in data.iterdir())
    out = proc.stdout
    assert out.startswith("# Data management plan: Imaging data of ")
    assert f"| Bytes on storage | {total:,} bytes |" in out
    assert "are 2 images [" in out and "1 file [" in out  # two images open, one file fails
    assert "| OME-TIFF | open | 1 | 1 |" in out and "| TIFF | open | 1 | 1 |" in out
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("facts")) == []  # nothing written


def test_madmp_on_standard_output_validates(data: Path, tmp_path: Path, cli: Any):
    answers = tmp_path / "answers.yaml"
    answers.write_text(
        "title: Cell atlas\nlicence: CC0-1.0\npersonal_data: no\nhealth_data: no\nrepository: BioImage Archive\n"
        "contacts:\n  - name: Ann Example\n    email: ann@example.org\n    orcid: 0000-0002-1825-0097\n"
    )
    proc = cli("dmp", str(data), "--answers", str(answers), "--format", "madmp")
    assert proc.returncode == 0, proc.stderr
    doc = validated(json.loads(proc.stdout))["dmp"]
    assert doc["title"] == "Data management plan: Cell atlas"
    assert doc["contact"]["contact_id"] == {"identifier": "https://orcid.org/0000-0002-1825-0097", "type": "orcid"}
    dists = doc["dataset"][0]["distribution"]
    deposit = [d for d in dists if d["title"] == "Deposit in BioImage Archive"][0]
    assert deposit["byte_size"] == sum(p.stat().st_size for p in data.iterdir())
    assert deposit["license"][0]["license_ref"] == "https://creativecommons.org/publicdomain/zero/1.0/"


def test_output_file_and_charts_beside_it(data: Path, tmp_path: Path, cli: Any):
    out = tmp_path / "plans" / "plan.html"
    proc = cli("dmp", str(data), "--format", "html", "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr.splitlines()[0] == str(out)  # what was written, on stderr
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>") and 'data:image/png;base64,' in html
    pngs = sorted(p.name for p in out.parent.glob("*.png"))
    assert pngs == ["plan-growth.png", "plan-volume-by-format.png"]
    assert all((out.parent / p).read_bytes().startswith(b"\x89PNG\r\n\x1a\n") for p in pngs)


def test_format_from_the_output_extension(data: Path, tmp_path: Path, cli: Any):
    out = tmp_path / "plan.json"
    assert cli("dmp", str(data), "--output", str(out)).returncode == 0
    validated(json.loads(out.read_text()))


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("licence: CC-BY-9.9\n", "licence: 'CC-BY-9.9' is not a known SPDX licence id"),
        ("price_per_tb_year: -10\n", "price_per_tb_year: -10 is negative"),
        ("contacts:\n  - name: A\n    orcid: 0000-0002-1825-0096\n", "contacts[0].orcid: '0000-0002-1825-0096' is not a valid ORCID iD"),
    ],
)
def test_bad_answers_exit_2_with_one_line(data: Path, tmp_path: Path, cli: Any, content: str, reason: str):
    answers = tmp_path / "answers.yaml"
    answers.write_text(content)
    proc = cli("dmp", str(data), "--answers", str(answers))
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"bioimnb: error: {answers}: {reason}")


def test_missing_path_and_empty_folder(tmp_path: Path, cli: Any):
    proc = run("dmp", str(tmp_path / "nope"), cwd=tmp_path)  # the real command: one line, status 2
    assert proc.returncode == 2 and proc.stderr == f"bioimnb: error: {tmp_path / 'nope'}: no such file or directory\n"
    (tmp_path / "empty").mkdir()
    proc2 = cli("dmp", str(tmp_path / "empty"), "--format", "madmp")
    assert proc2.returncode == 0
    assert validated(json.loads(proc2.stdout))["dmp"]["dataset"][0]["distribution"] == []
    md = cli("dmp", str(tmp_path / "empty")).stdout
    assert "The scanned locations hold no files yet" in md
