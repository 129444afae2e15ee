"""``scan``: facts for every image and file under a folder or prefix, headers only, cached."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

import bioimnb
from bioimnb.core import facts as facts_mod
from bioimnb.core.facts import image_facts, ome_acquisition, scan
from bioimnb.core.locations import walk

REPO = Path(__file__).resolve().parents[2]
SCAN_KEYS = {"path", "kind", "format", "bytes", "files", "incomplete", "error"}


@pytest.fixture
def tree(tmp_path: Path, images: dict) -> Path:
    root = tmp_path / "tree"
    (root / "sub" / "deeper").mkdir(parents=True)
    shutil.copy(images["ome_tiff"][0], root / "pyramid.ome.tif")
    shutil.copytree(images["ngff05"][0], root / "sub" / "v05.ome.zarr")
    shutil.copy(images["flat"][0], root / "sub" / "deeper" / "flat.tif")
    (root / "notes.txt").write_text("hello")
    (root / "broken.tif").write_text("not a tiff")
    (root / "zero.czi").write_bytes(b"")
    return root


def run(where: Any, **kw: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    it = scan(where, cache=kw.pop("cache", False), **kw)
    rows = [f.to_dict() for f in it]
    return rows, it.summary()


def test_scan_reports_every_image_and_file(tree: Path, images: dict):
    rows, summary = run(tree)
    by = {Path(r["path"]).relative_to(tree).as_posix(): r for r in rows}
    assert set(by) == {
        "broken.tif", "notes.txt", "pyramid.ome.tif", "zero.czi",
        "sub/v05.ome.zarr", "sub/deeper/flat.tif",
    }
    for r in rows:
        assert set(r) >= SCAN_KEYS
    ome = by["pyramid.ome.tif"]
    with bioimnb.open_image(tree / "pyramid.ome.tif") as img:
        assert ome["scenes"] == img.describe()["scenes"]  # shaped as in info --json
    assert ome["bytes"] == (tree / "pyramid.ome.tif").stat().st_size and ome["files"] == 1
    zarr = by["sub/v05.ome.zarr"]
    on_disk = [p for p in (tree / "sub" / "v05.ome.zarr").rglob("*") if p.is_file()]
    assert zarr["bytes"] == sum(p.stat().st_size for p in on_disk) and zarr["files"] == len(on_disk)
    assert zarr["ngff_version"] == "0.5" and zarr["format"] == "OME-Zarr"
    assert by["broken.tif"]["error"] == "not a TIFF file: the content is text"
    assert by["zero.czi"]["error"] == "file is empty (0 bytes)"
    def iso(p: Path) -> str:
        return dt.datetime.fromtimestamp(int(p.stat().st_mtime), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    assert by["notes.txt"] == {"path": str(tree / "notes.txt"), "kind": "file", "format": None, "reader": None,
                               "bytes": 5, "files": 1, "incomplete": False, "error": None,
                               "modified": iso(tree / "notes.txt")}
    # Modification times come from the listing; a zarr dates from its oldest file.
    assert ome["modified"] == iso(tree / "pyramid.ome.tif")
    assert zarr["modified"] == min(iso(p) for p in on_disk)
    assert summary["images"] == 5 and summary["files"] == 1 and summary["errors"] == 2
    assert summary["bytes"] == sum(r["bytes"] or 0 for r in rows)


def test_no_recursive_stays_in_the_folder(tree: Path):
    rows, _ = run(tree, recursive=False)
    assert sorted(Path(r["path"]).name for r in rows) == ["broken.tif", "notes.txt", "pyramid.ome.tif", "zero.czi"]


def test_rescan_of_an_unchanged_tree_opens_nothing(tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    cache = tmp_path / "facts.sqlite"
    first, _ = run(tree, cache=cache)
    opened: list[str] = []
    real = facts_mod.image_facts

    def spy(source: str, **kw: Any) -> Any:
        opened.append(source)
        return real(source, **kw)

    monkeypatch.setattr(facts_mod, "image_facts", spy)
    again, _ = run(tree, cache=cache)
    assert opened == [] and again == first
    # Change one file: only that one is opened again.
    flat = tree / "sub" / "deeper" / "flat.tif"
    tifffile.imwrite(flat, np.zeros((32, 48), np.uint8))
    third, _ = run(tree, cache=cache)
    assert [Path(p).name for p in opened] == ["flat.tif"]
    row = next(r for r in third if r["path"].endswith("flat.tif"))
    assert row["scenes"][0]["shape"][-2:] == [32, 48]


def test_unreadable_files_are_entries_not_failures(tree: Path):
    bad = tree / "trunc.ome.tif"
    bad.write_bytes((tree / "pyramid.ome.tif").read_bytes()[:300])
    os.mkfifo(tree / "fifo.tif")
    rows, summary = run(tree)
    by = {Path(r["path"]).name: r for r in rows}
    assert by["trunc.ome.tif"]["error"] and by["trunc.ome.tif"]["kind"] == "image"
    assert "not a regular file" in by["fifo.tif"]["error"]
    assert summary["errors"] == 4


def test_scan_under_a_root_gives_relative_paths_and_never_follows_links_out(tree: Path, tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(tree / "pyramid.ome.tif", outside / "secret.ome.tif")
    (tree / "link.ome.tif").symlink_to(outside / "secret.ome.tif")
    (tree / "linkdir").symlink_to(outside)
    rows, _ = run(".", root=tree)
    paths = {r["path"] for r in rows}
    assert "pyramid.ome.tif" in paths and "sub/v05.ome.zarr" in paths
    assert not any("secret" in p for p in paths)
    link = next(r for r in rows if r["path"] == "link.ome.tif")
    assert link["kind"] == "file" and link["scenes"] if "scenes" in link else link["kind"] == "file"


def test_walk_pages_and_descends_folders_not_images(tree: Path):
    names = [e.path for e in walk(tree, page_size=2)]
    rel = [Path(p).relative_to(tree).as_posix() for p in names]
    assert "sub/v05.ome.zarr" in rel and not any(r.startswith("sub/v05.ome.zarr/") for r in rel)
    assert rel.index("sub") < rel.index("sub/deeper") < rel.index("sub/deeper/flat.tif")


def test_facts_of_ome_acquisition_metadata(tmp_path: Path):
    xml = (
        '<?xml version="1.0"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">'
        '<Instrument ID="Instrument:0"><Microscope Manufacturer="Zeiss" Model="LSM 980"/>'
        '<Objective ID="Objective:0" Model="Plan-Apochromat" NominalMagnification="63" LensNA="1.4"/></Instrument>'
        '<Image ID="Image:0" Name="x"><AcquisitionDate>2024-05-01T10:00:00</AcquisitionDate>'
        '<Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint8" SizeX="16" SizeY="8" SizeC="1" SizeZ="1" SizeT="1">'
        '<Channel ID="Channel:0:0" SamplesPerPixel="1"/><TiffData/></Pixels></Image></OME>'
    )
    path = tmp_path / "x.ome.tif"
    tifffile.imwrite(path, np.zeros((8, 16), np.uint8), description=xml, metadata=None)
    f = image_facts(str(path))
    assert (f.acquired, f.instrument, f.objective) == ("2024-05-01T10:00:00", "Zeiss LSM 980", "Plan-Apochromat 63x NA 1.4")


def test_acquisition_facts_follow_the_image_references():
    ns = 'xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"'
    two = (
        f'<OME {ns}>'
        '<Instrument ID="Instrument:0"><Microscope Manufacturer="Nikon" Model="Ti2"/>'
        '<Objective ID="Objective:0:0" Model="Plan Fluor" NominalMagnification="10" LensNA="0.3"/></Instrument>'
        '<Instrument ID="Instrument:1"><Microscope Manufacturer="Zeiss" Model="LSM 980"/>'
        '<Objective ID="Objective:1:0" Model="Plan-Apochromat" NominalMagnification="20"/>'
        '<Objective ID="Objective:1:1" Model="C-Apochromat" NominalMagnification="40" LensNA="1.2"/></Instrument>'
        '<Image ID="Image:0"><AcquisitionDate>2025-01-02T03:04:05</AcquisitionDate>'
        '<InstrumentRef ID="Instrument:1"/><ObjectiveSettings ID="Objective:1:1"/></Image></OME>'
    )
    assert ome_acquisition(two, "x") == {
        "acquired": "2025-01-02T03:04:05", "instrument": "Zeiss LSM 980", "objective": "C-Apochromat 40x NA 1.2",
    }
    # No references: the document's first; numbers that are not numbers are left out, not fatal.
    hostile = (
        f'<OME {ns}><Instrument ID="Instrument:0"><Objective ID="Objective:0" Model="M" '
        'NominalMagnification="lots" LensNA="nan"/></Instrument><Image ID="Image:0"/></OME>'
    )
    assert ome_acquisition(hostile, "x") == {"acquired": None, "instrument": None, "objective": "M"}


def test_cli_scan_json_lines_contract(tree: Path, tmp_path: Path):
    env = {**os.environ, "BIOIMNB_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "bioimnb", "scan", str(tree), "--json"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    *entries, last = lines
    assert list(last) == ["summary"] and set(last["summary"]) == {"images", "files", "bytes", "errors", "seconds"}
    assert len(entries) == 6 and all(set(e) >= SCAN_KEYS for e in entries)
    assert all("scenes" in e for e in entries if e["kind"] == "image")
    flat = subprocess.run([sys.executable, "-m", "bioimnb", "scan", str(tree), "--json", "--no-recursive"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert len(flat.stdout.splitlines()) == 5
    missing = subprocess.run([sys.executable, "-m", "bioimnb", "scan", str(tree / "nope")],
                             capture_output=True, text=True, env=env, timeout=60)
    assert missing.returncode == 2 and len(missing.stderr.splitlines()) == 1
    assert missing.stderr.startswith("bioimnb: error: ")


@pytest.mark.s3
def test_scan_s3_prefix(s3: Any, images: dict, tmp_path: Path):
    bucket = s3.make_bucket("scan")
    objects = {"p/notes.txt": b"hi", "p/bad.tif": b"text", "p/a/pyramid.ome.tif": Path(images["ome_tiff"][0]).read_bytes()}
    root = Path(images["ngff05"][0])
    for f in root.rglob("*"):
        if f.is_file():
            objects[f"p/a/v05.ome.zarr/{f.relative_to(root).as_posix()}"] = f.read_bytes()
    s3.put(bucket, objects)
    cache = tmp_path / "facts.sqlite"
    rows = [f.to_dict() for f in scan(f"s3://{bucket}/p", cache=cache, **s3.storage_options)]
    by = {r["path"].split(f"{bucket}/p/")[1]: r for r in rows}
    assert set(by) == {"notes.txt", "bad.tif", "a/pyramid.ome.tif", "a/v05.ome.zarr"}
    assert by["a/v05.ome.zarr"]["format"] == "OME-Zarr" and by["a/v05.ome.zarr"]["scenes"]
    assert by["a/pyramid.ome.tif"]["scenes"][0]["shape"][-2:] == [600, 800]
    assert by["bad.tif"]["error"] == "not a TIFF file: the content is text"
    # Modification times from the listing's LastModified; a zarr dates from its oldest object.
    listed = s3.fs.find(f"{bucket}/p", detail=True)

    def iso(key: str) -> str:
        return listed[key]["LastModified"].astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    for name in ("notes.txt", "bad.tif", "a/pyramid.ome.tif"):
        assert by[name]["modified"] == iso(f"{bucket}/p/{name}")
    assert by["a/v05.ome.zarr"]["modified"] == min(iso(k) for k in listed if "/v05.ome.zarr/" in k)
    again = [f.to_dict() for f in scan(f"s3://{bucket}/p", cache=cache, **s3.storage_options)]
    assert again == rows


def test_cancel_stops_the_walk_and_a_scheduler_can_be_chosen(tree: Path):
    import threading

    stop = threading.Event()
    seen = []
    for facts in scan(tree, cache=False, cancel=stop, scheduler="synchronous"):
        seen.append(facts.path)
        stop.set()
    full, _ = run(tree)
    assert 1 <= len(seen) < len(full)
