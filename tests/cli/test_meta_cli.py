"""`bioimnb meta show|set|validate`: the contract scripts rely on (exit codes, one-line errors,
nothing written when a field is invalid), checked on real files re-read by other readers."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from ome_types import from_tiff, from_xml

import bioimnb
from bioimnb.cli import main

ENV = {**os.environ, "AWS_EC2_METADATA_DISABLED": "true"}


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bioimnb", *args], capture_output=True, text=True, timeout=timeout, env=ENV, stdin=subprocess.DEVNULL)


@pytest.fixture
def tif(tmp_path: Path) -> Path:
    path = tmp_path / "cells.ome.tif"
    data = np.arange(2 * 96 * 128, dtype=np.uint16).reshape(2, 96, 128)
    tifffile.imwrite(path, data, ome=True, tile=(32, 32), metadata={"axes": "CYX", "Name": "cells", "PhysicalSizeX": 0.2, "PhysicalSizeY": 0.2, "Channel": {"Name": ["DAPI", "Ch2"]}})
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_show_text_json_xml(tif: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["meta", "show", str(tif)]) == 0
    out = capsys.readouterr().out
    assert "channel[1]: 'Ch2'" in out and "physical size: X 0.2 µm, Y 0.2 µm" in out and "edits are saved in place" in out
    assert main(["meta", "show", str(tif), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["kind"] == "ome-tiff" and data["saved_to"] == str(tif)
    assert [c["name"] for c in data["ome"]["images"][0]["pixels"]["channels"]] == ["DAPI", "Ch2"]
    assert data["ome"]["images"][0]["pixels"]["physical_size_x"] == 0.2
    assert main(["meta", "show", str(tif), "--xml"]) == 0
    xml = capsys.readouterr().out
    assert 'xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"' in xml
    assert from_xml(xml, validate=True).images[0].pixels.channels[1].name == "Ch2"


def test_set_then_other_readers_see_it(tif: Path) -> None:
    proc = run("meta", "set", str(tif), "images[0].pixels.channels[1].name=GFP", "images[0].pixels.physical_size_x=325", "images[0].pixels.physical_size_x_unit=nm", "map.Organism=Danio rerio")
    assert proc.returncode == 0, proc.stderr
    assert "saved 4 changes" in proc.stdout and "images[0].pixels.channels[1].name: 'Ch2' -> 'GFP'" in proc.stdout
    with tifffile.TiffFile(tif) as t:
        assert 'Name="GFP"' in (t.ome_metadata or "")
    px = from_tiff(tif).images[0].pixels
    assert px.channels[1].name == "GFP" and px.physical_size_x == 325 and px.physical_size_x_unit.value == "nm"
    assert bioimnb.open_image(tif).channel_names == ["DAPI", "GFP"]


def test_set_invalid_field_refused_one_line_nothing_written(tif: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = sha(tif)
    proc = run("meta", "set", str(tif), "channel[0].name=Hoechst", "channel[1].emission_wavelength=-5")
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("bioimnb: error: channel[1].emission_wavelength: ") and "nothing was changed" in lines[0]
    assert sha(tif) == before
    for bad, field in (("pixel_size_x_unit=parsecs-ish", "pixel_size_x_unit"), ("images[0].pixels.channels[9].name=x", "images[0].pixels.channels[9].name"), ("size_t=two", "size_t"), ("nonsense", "nonsense")):
        assert main(["meta", "set", str(tif), bad]) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].startswith(f"bioimnb: error: {field}: "), err
        assert sha(tif) == before


def test_validate_exit_codes(shared_data: Path, tif: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["meta", "validate", str(tif)]) == 0
    assert "valid OME 2016-06" in capsys.readouterr().out
    bad = shared_data / "ome-xml" / "bad.ome.xml"
    proc = run("meta", "validate", str(bad))
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines and all(line.startswith(f"{bad}: ") for line in lines)
    assert any("InvalidName" in line for line in lines) and any("size_c is 3" in line for line in lines)
    evil = tmp_path / "evil.ome.xml"
    evil.write_text('<?xml version="1.0"?><!DOCTYPE OME [<!ENTITY x SYSTEM "file:///etc/passwd">]><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">&x;</OME>')
    for source in (evil, tmp_path / "missing.ome.tif"):
        assert main(["meta", "validate", str(source)]) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and len(captured.err.splitlines()) == 1
        assert captured.err.startswith(f"bioimnb: error: {source}: ")


def test_set_on_a_proprietary_format_says_where_edits_go(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dv = tmp_path / "toxo.dv"
    shutil.copy(shared_data / "dv" / "toxo.dv", dv)
    before = sha(dv)
    assert main(["meta", "set", str(dv), "channel[0].name=GFP"]) == 0
    captured = capsys.readouterr()
    assert f"the companion file {dv}.ome.xml" in captured.out
    assert "edits are saved to the companion file toxo.dv.ome.xml" in captured.err
    assert sha(dv) == before
    assert from_xml(Path(f"{dv}.ome.xml").read_text(encoding="utf-8")).images[0].pixels.channels[0].name == "GFP"
    assert main(["meta", "show", str(dv)]) == 0
    assert "channel[0]: 'GFP'" in capsys.readouterr().out
