"""The REMBI study form (``bioimnb.widgets.rembi.StudyForm``): fill, pick terms, validate, save,
reload, inherit: the widget's logic driven from Python."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from bioimnb.core.curation import rembi
from bioimnb.widgets.rembi import StudyForm


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fill(form: StudyForm) -> None:
    form.set_value("study.title", "Zebrafish neural crest")
    form.set_value("study.description", "Time lapse of neural crest migration.")
    form.set_value("study.keywords", "zebrafish\nneural crest")
    form.set_value("study.licence", "CC-BY-4.0")
    form.set_value("study.authors", "Ada Lovelace | https://orcid.org/0000-0002-1825-0097 | ada@example.org | EMBL\nAlan Turing")
    form.set_value("study_component.name", "Live imaging")
    form.set_value("study_component.description", "Light sheet time lapse, 24-48 hpf.")
    form.set_value("biosample.biological_entity_description", "Whole embryos")
    form.set_value("specimen.sample_preparation_protocol", "Mounted in 1% low-melt agarose.")
    form.set_value("image_acquisition.imaging_instrument_description", "Zeiss Lightsheet 7")


def test_fill_pick_validate_save_reload(tmp_path: Path) -> None:
    form = StudyForm(tmp_path, online=False)
    assert form.missing() == rembi.required_fields()
    assert "Required by REMBI, still empty" in form.validation.value
    _fill(form)

    organism = form.pickers["biosample.organism_classification"]
    result = organism.search("zebrafish")
    assert result.source == "offline" and "off" in (result.note or "")
    assert "offline list" in organism.note.value
    assert organism.results[0].id == "NCBITaxon:7955"
    organism.found.value = 0
    organism.add_selected()
    method = form.pickers["image_acquisition.fbbi_id"]
    method.search("light sheet")
    chosen = next(t for t in method.results if t.id == "FBbi:00000369")  # SPIM
    method.add(chosen)
    assert [t.id for t in method.terms] == ["FBbi:00000369"]

    assert form.problems() == []
    assert form.missing() == []
    assert "All REMBI required fields are filled in." in form.validation.value
    path = form.save()
    assert path == str(tmp_path / "rembi.json")
    assert "saved" in form.status.value
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    assert doc["biosample"]["organism_classification"] == [{"scientific_name": "Danio rerio", "ncbi_id": "NCBITaxon:7955", "common_name": "zebrafish"}]
    assert doc["image_acquisition"]["fbbi_id"] == ["FBbi:00000369"]
    assert doc["image_acquisition"]["imaging_method_name"] == ["SPIM"]
    assert doc["study"]["authors"] == [
        {"display_name": "Ada Lovelace", "orcid": "0000-0002-1825-0097", "contact_email": "ada@example.org", "affiliation": ["EMBL"]},
        {"display_name": "Alan Turing"},
    ]
    assert doc["study"]["keywords"] == ["zebrafish", "neural crest"]
    assert rembi.load(tmp_path).missing() == []  # type: ignore[union-attr]

    # A new form on the folder shows what was saved, and gives back the same study.
    again = StudyForm(tmp_path, online=False)
    assert again.widgets["study.title"].value == "Zebrafish neural crest"
    assert [t.id for t in again.pickers["biosample.organism_classification"].terms] == ["NCBITaxon:7955"]
    assert again.study() == rembi.load(tmp_path, inherit=False)

    # Removing the organism makes it missing again.
    again.pickers["biosample.organism_classification"].remove("NCBITaxon:7955")
    assert again.missing() == ["biosample.organism_classification"]


def test_invalid_value_is_named_and_nothing_is_written(tmp_path: Path) -> None:
    form = StudyForm(tmp_path, online=False)
    form.set_value("study.title", "T")
    form.set_value("study.release_date", "next week")
    assert form.problems() == ["study.release_date: 'next week' is not a date (YYYY-MM-DD)"]
    assert "study.release_date" in form.validation.value
    assert form.save_button.disabled
    with pytest.raises(rembi.RembiError, match="study.release_date"):
        form.save()
    form._save_clicked()  # the button's handler shows the error instead of raising
    assert "study.release_date" in form.status.value
    assert not (tmp_path / "rembi.json").exists()
    form.set_value("study.release_date", "2025-02-03")
    assert form.problems() == [] and not form.save_button.disabled
    form.save()
    assert json.loads((tmp_path / "rembi.json").read_text())["study"] == {"title": "T", "release_date": "2025-02-03"}


def test_subfolder_form_inherits(tmp_path: Path) -> None:
    top = StudyForm(tmp_path, online=False)
    _fill(top)
    top.save()
    sub = tmp_path / "embryo-2"
    sub.mkdir()
    form = StudyForm(sub, online=False)
    assert form.inherited == [str(tmp_path / "rembi.json")]
    assert "inherits from" in form.children[0].value
    # Only what the parent lacks is missing; the own sidecar holds only what is set here.
    assert form.missing() == ["biosample.organism_classification", "image_acquisition.imaging_method_name", "image_acquisition.fbbi_id"]
    form.set_value("study_component.name", "Embryo 2")
    form.save()
    own = json.loads((sub / "rembi.json").read_text())
    assert own == {"rembi_sidecar_version": 1, "study_component": {"name": "Embryo 2"}}
    effective = rembi.load(sub)
    assert effective is not None and effective.get("study.title") == "Zebrafish neural crest"
    assert effective.get("study_component.name") == "Embryo 2"


def test_picker_says_when_ols_is_unreachable(tmp_path: Path) -> None:
    form = StudyForm(tmp_path, ols_url=f"http://127.0.0.1:{_closed_port()}/ols4")
    picker = form.pickers["image_acquisition.fbbi_id"]
    result = picker.search("confocal")
    assert result.source == "offline"
    assert "unreachable" in picker.note.value and "offline list" in picker.note.value
    assert picker.results[0].label == "confocal microscopy"
