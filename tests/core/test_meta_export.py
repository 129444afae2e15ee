"""Exports: BIA file list TSV, REMBI JSON, IDR-style annotation CSV, from real files."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from meta_fixtures import FULL, ome_tiff  # noqa: E402

from bioimnb.core.curation import export as ex  # noqa: E402
from bioimnb.core.curation import rembi  # noqa: E402
from bioimnb.core.errors import BioimnbError  # noqa: E402

STUDY = {
    "study": {"title": "Export test", "licence": "CC0"},
    "biosample": {"organism_classification": [{"scientific_name": "Danio rerio", "ncbi_id": "7955"}]},
}


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    ome_tiff(root / "day 1" / "fish.ome.tif", **FULL, annotations={"Gene": "sox10", "Strain": "AB"})
    ome_tiff(root / "day 1" / "plain.ome.tif", size=(None, None, None), channels=[None])
    ome_tiff(root / "day 2" / "deep" / "fish2.ome.tif", **FULL, annotations={"Gene": "mitfa", "Treatment": "DMSO\tcontrol"})
    (root / "notes.txt").write_text("lab notes\n")
    rembi.save(root, STUDY)
    return root


def _tsv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")), delimiter="\t"))


def test_bia_filelist(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "files.tsv"
    result = ex.export(tree, bia_filelist_path=out, cache=False)
    assert result == {"bia_filelist": {"path": str(out), "rows": 4}}
    text = out.read_text(encoding="utf-8")
    header = text.splitlines()[0].split("\t")
    assert header[0] == "Files"
    assert header[1 : 1 + len(ex.BIA_COLUMNS)] == list(ex.BIA_COLUMNS)
    assert header[1 + len(ex.BIA_COLUMNS) :] == ["Gene", "Strain", "Treatment"]  # map annotation keys
    table = {r["Files"]: r for r in _tsv(out)}
    # One row per file, relative, forward slashes; the REMBI sidecar is not a data file.
    assert sorted(table) == ["day 1/fish.ome.tif", "day 1/plain.ome.tif", "day 2/deep/fish2.ome.tif", "notes.txt"]
    fish = table["day 1/fish.ome.tif"]
    assert fish["Format"] == "OME-TIFF"
    assert fish["Channels"] == "DAPI, GFP"
    assert fish["Pixel size (µm)"] == "X=0.2 Y=0.2"
    assert fish["Dimensions"] == "C=2 x Y=16 x X=16"
    assert fish["Acquisition date"] == "2024-05-06T10:11:12"
    assert fish["Instrument"] == "Zeiss LSM 980"
    assert fish["Objective"] == "Zeiss Plan-Apochromat 63x NA 1.4"
    assert fish["Size (bytes)"] == str((tree / "day 1" / "fish.ome.tif").stat().st_size)
    assert (fish["Gene"], fish["Strain"], fish["Treatment"]) == ("sox10", "AB", "")
    # A tab inside a value must not make a new column.
    assert table["day 2/deep/fish2.ome.tif"]["Treatment"] == "DMSO control"
    notes = table["notes.txt"]
    assert notes["Format"] == "" and notes["Size (bytes)"] == "10"
    assert all(len(line.split("\t")) == len(header) for line in text.splitlines())


def test_idr_annotations_csv(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "annotations.csv"
    result = ex.export(tree, idr_annotations_path=out, cache=False)
    assert result["idr_annotations"]["rows"] == 2
    with open(out, newline="", encoding="utf-8") as fh:
        got = list(csv.reader(fh))
    assert got == [
        ["Dataset Name", "Image Name", "Gene", "Strain", "Treatment"],
        ["day 1", "fish.ome.tif", "sox10", "AB", ""],
        ["day 2/deep", "fish2.ome.tif", "mitfa", "", "DMSO\tcontrol"],
    ]


def test_rembi_json_is_the_effective_study(tree: Path, tmp_path: Path) -> None:
    child = rembi.RembiStudy()
    child.set("specimen.sample_preparation_protocol", "Whole mount, fixed in PFA")
    rembi.save(tree / "day 2", child)
    out = tmp_path / "study.json"
    result = ex.export(tree / "day 2" / "deep", rembi_path=out)
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["study"] == {"title": "Export test", "licence": "CC0-1.0"}
    assert doc["biosample"]["organism_classification"] == [{"scientific_name": "Danio rerio", "ncbi_id": "NCBITaxon:7955"}]
    assert doc["specimen"] == {"sample_preparation_protocol": "Whole mount, fixed in PFA"}
    assert rembi.parse(doc) == rembi.load(tree / "day 2" / "deep")
    assert result["rembi"]["missing"] == rembi.parse(doc).missing()
    assert "specimen.sample_preparation_protocol" not in result["rembi"]["missing"]


def test_no_study_no_output(tmp_path: Path) -> None:
    folder = tmp_path / "bare"
    folder.mkdir()
    out = tmp_path / "study.json"
    with pytest.raises(rembi.RembiError) as info:
        ex.export(folder, rembi_path=out, bia_filelist_path=tmp_path / "f.tsv", root=folder)
    assert str(info.value).startswith(f"{folder}: no REMBI study applies")
    assert not out.exists() and not (tmp_path / "f.tsv").exists()


def test_map_annotations_reader_is_safe_and_linked_only() -> None:
    xml = (
        '<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">'
        '<Image ID="Image:0" Name="a"><AnnotationRef ID="Annotation:1"/><Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="uint8" SizeX="1" SizeY="1" SizeZ="1" SizeC="1" SizeT="1"/></Image>'
        '<Image ID="Image:1" Name="b"><Pixels ID="Pixels:1" DimensionOrder="XYZCT" Type="uint8" SizeX="1" SizeY="1" SizeZ="1" SizeC="1" SizeT="1"/></Image>'
        "<StructuredAnnotations>"
        '<MapAnnotation ID="Annotation:1"><Value><M K="k1">v1</M><M K="k2">v2</M></Value></MapAnnotation>'
        '<MapAnnotation ID="Annotation:2"><Value><M K="unlinked">x</M></Value></MapAnnotation>'
        "</StructuredAnnotations></OME>"
    )
    assert ex.map_annotations(xml, "doc") == [("a", [("k1", "v1"), ("k2", "v2")])]
    evil = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]><OME>&e;</OME>'
    with pytest.raises(BioimnbError, match="DOCTYPE or ENTITY"):
        ex.map_annotations(evil, "evil.ome.xml")


def test_shared_ome_xml_map_annotations(shared_data: Path) -> None:
    xml = (shared_data / "ome-xml" / "mapannotation.ome.xml").read_text(encoding="utf-8")
    found = ex.map_annotations(xml, "mapannotation.ome.xml")
    from ome_types import from_xml

    ome: Any = from_xml(xml)
    by_id = {a.id: a for a in ome.structured_annotations.map_annotations}
    expected = []
    for image in ome.images:
        pairs = [(m.k or "", m.value or "") for ref in image.annotation_refs if ref.id in by_id for m in by_id[ref.id].value.ms]
        if pairs:
            expected.append((image.name or "", [(k.strip(), v.strip()) for k, v in pairs]))
    assert found == expected
    assert found[0][1][0] == ("SampleKeyA", "SampleValueA")


def test_nothing_requested_is_an_error(tree: Path) -> None:
    with pytest.raises(ex.ExportError, match="nothing to export"):
        ex.export(tree)
