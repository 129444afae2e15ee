"""REMBI study model: fields as data, validation naming the field, sidecars that apply to a folder
tree with per-folder overrides, atomic saves, local and S3."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from bioimnb.core.curation import rembi
from bioimnb.core.errors import BioimnbError, SourceNotFound

GOOD: dict[str, Any] = {
    "study": {
        "title": "Mitosis in HeLa",
        "description": "Live imaging of mitosis.",
        "keywords": ["mitosis", "HeLa"],
        "licence": "https://creativecommons.org/licenses/by/4.0/",
        "authors": [
            {"display_name": "Ada Lovelace", "orcid": "https://orcid.org/0000-0002-1825-0097", "affiliation": "EMBL"},
            {"display_name": "Alan Turing", "contact_email": "alan@example.org"},
        ],
        "release_date": "2025-01-31",
        "related_publications": [{"title": "A paper", "doi": "https://doi.org/10.1234/abc.5", "publication_year": "2024"}],
    },
    "study_component": {"name": "Time lapse", "description": "Confocal time lapse."},
    "biosample": {
        "organism_classification": [{"scientific_name": "Homo sapiens", "common_name": "human", "ncbi_id": "NCBI:txid9606"}],
        "biological_entity_description": "HeLa cells",
        "intrinsic_variable_description": "H2B-GFP",
    },
    "specimen": {"sample_preparation_protocol": "Live cells in glass-bottom dishes."},
    "image_acquisition": {
        "imaging_instrument_description": "Zeiss LSM 980",
        "imaging_method_name": ["confocal microscopy"],
        "fbbi_id": ["FBbi_00000251"],
    },
}


def test_fields_are_data_with_bia_names() -> None:
    names = {f.path for f in rembi.FIELDS}
    for path in (
        "study.title",
        "study.description",
        "study.keywords",
        "study.licence",
        "study.authors",
        "biosample.organism_classification",
        "biosample.biological_entity_description",
        "specimen.sample_preparation_protocol",
        "image_acquisition.imaging_instrument_description",
        "image_acquisition.imaging_method_name",
        "image_acquisition.fbbi_id",
    ):
        assert path in names
        assert rembi.field_spec(path).required  # type: ignore[union-attr]
    assert {f.section for f in rembi.FIELDS} == set(rembi.SECTIONS)
    assert rembi.field_spec("biosample.organism_classification").ontology == "ncbitaxon"  # type: ignore[union-attr]
    assert rembi.field_spec("image_acquisition.fbbi_id").ontology == "fbbi"  # type: ignore[union-attr]
    assert list(rembi.SECTIONS.values()) == [
        "Study",
        "Study Component",
        "Biosample",
        "Specimen",
        "Image Acquisition",
        "Image Data",
        "Analysed Data",
    ]


def test_parse_normalises_values() -> None:
    study = rembi.parse(GOOD, "x.json")
    assert study.missing() == []
    assert study.get("study.licence") == "CC-BY-4.0"
    assert study.get("study.authors")[0] == {"display_name": "Ada Lovelace", "orcid": "0000-0002-1825-0097", "affiliation": ["EMBL"]}
    assert study.get("study.related_publications") == [{"title": "A paper", "doi": "10.1234/abc.5", "publication_year": 2024}]
    assert study.get("biosample.organism_classification")[0]["ncbi_id"] == "NCBITaxon:9606"
    assert study.get("biosample.intrinsic_variable_description") == ["H2B-GFP"]
    assert study.get("image_acquisition.fbbi_id") == ["FBbi:00000251"]
    # Round trip through the document form.
    assert rembi.parse(study.to_dict()) == study
    assert json.loads(study.to_json())["rembi_sidecar_version"] == 1


@pytest.mark.parametrize(
    ("doc", "field", "words"),
    [
        ({"study": {"licence": "all rights reserved"}}, "study.licence", "not a licence"),
        ({"study": {"titel": "x"}}, "study.titel", "unknown field"),
        ({"stuff": {}}, "stuff", "unknown REMBI section"),
        ({"study": {"authors": [{"orcid": "0000-0002-1825-0097"}]}}, "study.authors[0].display_name", "required"),
        ({"study": {"authors": [{"display_name": "A", "orcid": "12"}]}}, "study.authors[0].orcid", "ORCID"),
        ({"study": {"authors": [{"display_name": "A", "email": "a@b.c"}]}}, "study.authors[0].email", "unknown field"),
        ({"study": {"release_date": "31/01/2025"}}, "study.release_date", "not a date"),
        ({"study": {"title": ["a"]}}, "study.title", "must be text"),
        ({"biosample": {"organism_classification": [{"ncbi_id": "human"}]}}, "biosample.organism_classification[0].ncbi_id", "NCBI Taxonomy id"),
        ({"biosample": {"organism_classification": [{"common_name": "human"}]}}, "biosample.organism_classification[0]", "scientific_name or an ncbi_id"),
        ({"image_acquisition": {"fbbi_id": ["FBbi:251"]}}, "image_acquisition.fbbi_id[0]", "FBbi id"),
        ({"study": {"see_also": ["javascript:alert(1)"]}}, "study.see_also[0]", "http(s) URL"),
        ({"study": {"related_publications": [{"doi": "nope"}]}}, "study.related_publications[0].doi", "not a DOI"),
    ],
)
def test_invalid_values_are_refused_naming_the_field(doc: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(rembi.RembiError) as info:
        rembi.parse(doc, "/data/rembi.json")
    line = str(info.value)
    assert "\n" not in line
    assert line.startswith(f"/data/rembi.json: {field}: ")
    assert words in line
    assert isinstance(info.value, BioimnbError)


def test_set_refuses_and_keeps_the_old_value() -> None:
    study = rembi.parse(GOOD)
    with pytest.raises(rembi.RembiError, match=r"study.licence: 'proprietary' is not a licence"):
        study.set("study.licence", "proprietary")
    assert study.get("study.licence") == "CC-BY-4.0"
    with pytest.raises(rembi.RembiError, match="biosample.organism: unknown REMBI field"):
        study.set("biosample.organism", "x")
    # update(): all or nothing
    with pytest.raises(rembi.RembiError, match="image_acquisition.fbbi_id"):
        study.update({"study.title": "New", "image_acquisition.fbbi_id": ["x"]})
    assert study.get("study.title") == "Mitosis in HeLa"
    study.set("study.title", "  ")  # empty clears
    assert study.get("study.title") is None and study.missing() == ["study.title"]


def test_missing_lists_required_fields_in_order() -> None:
    study = rembi.RembiStudy()
    assert study.missing() == rembi.required_fields()
    study.set("study.title", "T")
    assert "study.title" not in study.missing()


def test_sidecar_applies_to_subfolders_with_overrides(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "c").mkdir()
    top = rembi.parse(GOOD)
    rembi.save(tmp_path, top)
    override = rembi.RembiStudy()
    override.update({"biosample.organism_classification": [{"scientific_name": "Mus musculus", "ncbi_id": "10090"}], "study_component.name": "Mouse"})
    rembi.save(tmp_path / "a", override)

    deep = rembi.load(tmp_path / "a" / "b")
    assert deep is not None
    assert deep.get("biosample.organism_classification") == [{"scientific_name": "Mus musculus", "ncbi_id": "NCBITaxon:10090"}]
    assert deep.get("study_component.name") == "Mouse"
    assert deep.get("study_component.description") == "Confocal time lapse."  # inherited field by field
    assert deep.get("study.title") == "Mitosis in HeLa"
    assert deep.sources == [str(tmp_path / "rembi.json"), str(tmp_path / "a" / "rembi.json")]
    sibling = rembi.load(tmp_path / "c")
    assert sibling == top
    own = rembi.load(tmp_path / "a", inherit=False)
    assert own == override
    assert rembi.load(tmp_path / "a" / "b", inherit=False) is None
    # Under a root, sidecars above the root do not apply.
    assert rembi.load(tmp_path / "a" / "b", root=tmp_path / "a") == override

    index = rembi.StudyIndex(root=tmp_path)
    assert index.for_path("a/b/img.tif") == deep  # root-relative, as a scan under a root gives it
    assert index.for_path(str(tmp_path / "c" / "img.tif")) == top
    assert [folder for folder, _ in index] == [str(tmp_path), str(tmp_path / "a")]
    with pytest.raises(SourceNotFound):
        rembi.load(tmp_path / "nope")


def test_save_is_atomic_and_refuses_invalid(tmp_path: Path) -> None:
    path = Path(rembi.save(tmp_path, GOOD))
    before = path.read_bytes()
    bad = json.loads(json.dumps(GOOD))
    bad["study"]["licence"] = "mine"
    with pytest.raises(rembi.RembiError, match="study.licence"):
        rembi.save(tmp_path, bad)
    assert path.read_bytes() == before
    # A study whose sections were poked directly is revalidated too.
    study = rembi.parse(GOOD)
    study.sections["study"]["release_date"] = "yesterday"
    with pytest.raises(rembi.RembiError, match="study.release_date"):
        rembi.save(tmp_path, study)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["rembi.json"]  # no temporary file left behind


def test_unreadable_sidecars_are_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "rembi.json").write_text("{not json")
    with pytest.raises(rembi.RembiError) as info:
        rembi.load(tmp_path)
    assert str(info.value).startswith(f"{tmp_path / 'rembi.json'}: not valid JSON")
    (tmp_path / "rembi.json").write_text('{"rembi_sidecar_version": 7}')
    with pytest.raises(rembi.RembiError, match="rembi_sidecar_version 7 is not supported"):
        rembi.load(tmp_path)
    (tmp_path / "rembi.json").write_text("[1, 2]")
    with pytest.raises(rembi.RembiError, match="must be a JSON object"):
        rembi.load(tmp_path)
    # The index records it and goes on.
    index = rembi.StudyIndex(root=tmp_path)
    assert index.for_path(str(tmp_path / "x.tif")) is None
    assert list(index.errors) == [str(tmp_path / "rembi.json")]


def test_sidecar_on_s3(s3: Any) -> None:
    bucket = s3.make_bucket("rembi")
    s3.put(bucket, {"project/run1/img.tif": b"x"})
    url = f"s3://{bucket}/project"
    written = rembi.save(url, GOOD, **s3.storage_options)
    assert written == f"{url}/rembi.json"
    stored = json.loads(s3.fs.cat(f"{bucket}/project/rembi.json"))
    assert stored["study"]["licence"] == "CC-BY-4.0"
    child = rembi.RembiStudy()
    child.set("specimen.sample_preparation_protocol", "Fixed with PFA")
    rembi.save(f"{url}/run1", child, **s3.storage_options)
    index = rembi.StudyIndex(**s3.storage_options)
    found = index.for_path(f"{url}/run1/img.tif")
    assert found is not None
    assert found.get("specimen.sample_preparation_protocol") == "Fixed with PFA"
    assert found.get("study.title") == "Mitosis in HeLa"
    assert rembi.load(f"{url}/run1", inherit=False, **s3.storage_options) == child
