"""Completeness: per image and per folder, against the stated minimum, from the scan's facts."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from meta_fixtures import FULL, ome_tiff  # noqa: E402

from bioimnb.core.curation import completeness as comp  # noqa: E402
from bioimnb.core.curation import rembi  # noqa: E402
from bioimnb.core.facts import image_facts, scan  # noqa: E402

IMAGE_FIELDS = [
    "physical_size_x",
    "physical_size_y",
    "physical_size_z",
    "channel_names",
    "objective_na",
    "objective_magnification",
    "acquisition_date",
    "instrument",
]


def _study(**values: object) -> rembi.RembiStudy:
    s = rembi.RembiStudy()
    s.update(values)
    return s


FULL_STUDY = {
    "study.title": "Mitosis in HeLa",
    "study.description": "Live imaging of mitosis.",
    "study.keywords": ["mitosis", "HeLa"],
    "study.licence": "CC0",
    "study.authors": [{"display_name": "Ada Lovelace", "orcid": "0000-0002-1825-0097"}],
    "study_component.name": "Time lapse",
    "study_component.description": "Confocal time lapse of H2B-GFP cells.",
    "biosample.organism_classification": [{"scientific_name": "Homo sapiens", "ncbi_id": "NCBITaxon:9606"}],
    "biosample.biological_entity_description": "HeLa cells",
    "specimen.sample_preparation_protocol": "Live cells in glass-bottom dishes.",
    "image_acquisition.imaging_instrument_description": "Zeiss LSM 980, 63x/1.4 oil",
    "image_acquisition.imaging_method_name": ["confocal microscopy"],
    "image_acquisition.fbbi_id": ["FBbi:00000251"],
}


def test_the_minimum_is_stated_with_sources() -> None:
    assert comp.minimum_fields() == IMAGE_FIELDS
    assert all(r.source for r in comp.MINIMUM)
    assert comp.minimum_fields(True) == IMAGE_FIELDS + rembi.required_fields()
    assert "biosample.organism_classification" in rembi.required_fields()


def test_complete_image_scores_one(tmp_path: Path) -> None:
    facts = image_facts(str(ome_tiff(tmp_path / "full.ome.tif", **FULL)))
    assert facts.error is None
    assert comp.assess(facts) == {"score": 1.0, "missing": []}


def test_missing_fields_are_named_exactly(tmp_path: Path) -> None:
    # A Z stack without a Z step, one unnamed channel, an objective with an NA but no
    # magnification, no date, no microscope.
    path = ome_tiff(tmp_path / "stack.ome.tif", z=3, channels=[None], objective={"LensNA": "0.8"})
    result = comp.assess(image_facts(str(path)))
    assert result["missing"] == ["physical_size_z", "channel_names", "objective_magnification", "acquisition_date", "instrument"]
    assert result["score"] == pytest.approx(3 / 8, abs=1e-4)  # 8 fields apply to a stack, 3 present


def test_z_step_applies_to_stacks_only(tmp_path: Path) -> None:
    flat = comp.assess(image_facts(str(ome_tiff(tmp_path / "flat.ome.tif", **{**FULL, "size": (0.2, 0.2, None)}))))
    assert flat == {"score": 1.0, "missing": []}
    stack = comp.assess(image_facts(str(ome_tiff(tmp_path / "stack.ome.tif", **{**FULL, "z": 4, "size": (0.2, 0.2, 0.5)}))))
    assert stack == {"score": 1.0, "missing": []}
    no_xy = comp.assess(image_facts(str(ome_tiff(tmp_path / "noxy.ome.tif", **{**FULL, "size": (None, None, None)}))))
    assert no_xy["missing"] == ["physical_size_x", "physical_size_y"]
    assert no_xy["score"] == pytest.approx(5 / 7, abs=1e-4)


def test_placeholder_channel_names_count_as_missing(tmp_path: Path) -> None:
    facts = image_facts(str(ome_tiff(tmp_path / "c.ome.tif", **{**FULL, "channels": ["DAPI", None]})))
    assert facts.scenes and facts.scenes[0]["channels"][1] == "C1"  # the reader's placeholder
    assert comp.assess(facts)["missing"] == ["channel_names"]


def test_unreadable_image_scores_zero(tmp_path: Path) -> None:
    bad = tmp_path / "broken.ome.tif"
    bad.write_bytes(b"II*\x00" + b"\x00" * 10)
    facts = image_facts(str(bad))
    assert facts.kind == "image" and facts.error
    assert comp.assess(facts) == {"score": 0.0, "missing": ["readable"]}


def test_summary_over_a_folder(tmp_path: Path) -> None:
    ome_tiff(tmp_path / "a" / "full.ome.tif", **FULL)
    ome_tiff(tmp_path / "a" / "bare.ome.tif", size=(None, None, None), channels=[None])
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "broken.tif").write_bytes(b"II*\x00" + b"\x00" * 10)
    facts = list(scan(tmp_path, cache=False))
    out = comp.summarize(facts, studies=False)
    assert out["images"] == 3  # notes.txt is not an image
    assert out["complete"] == 1
    assert out["unreadable"] == 1
    assert out["minimum"] == IMAGE_FIELDS
    # bare: everything but Z (not a stack) is missing -> score 0
    assert out["missing"] == {
        "physical_size_x": 1,
        "physical_size_y": 1,
        "channel_names": 1,
        "objective_na": 1,
        "objective_magnification": 1,
        "acquisition_date": 1,
        "instrument": 1,
        "readable": 1,
    }
    assert out["score"] == pytest.approx((1.0 + 0.0 + 0.0) / 3, abs=1e-4)
    json.dumps(out)  # serialisable as it is


def test_rembi_sidecar_adds_study_fields_to_images_below_it(tmp_path: Path) -> None:
    ome_tiff(tmp_path / "top.ome.tif", **FULL)
    ome_tiff(tmp_path / "sub" / "deep" / "inner.ome.tif", **FULL)
    rembi.save(tmp_path / "sub", _study(**{"study.title": "Partial"}))
    facts = list(scan(tmp_path, cache=False))
    out = comp.summarize(facts)
    required = rembi.required_fields()
    assert out["with_study"] == 1
    assert out["minimum"] == IMAGE_FIELDS + required
    assert out["complete"] == 1  # top.ome.tif: no sidecar applies, image metadata complete
    inner_missing = [f for f in required if f != "study.title"]
    assert out["missing"] == {name: 1 for name in inner_missing}
    applies = 7 + len(required)
    inner = (applies - len(inner_missing)) / applies
    assert out["score"] == pytest.approx((1.0 + inner) / 2, abs=1e-3)

    # A complete study in the subfolder completes the image; the parent's title stays inherited.
    full = dict(FULL_STUDY)
    full.pop("study.title")
    rembi.save(tmp_path / "sub" / "deep", _study(**full))
    out = comp.summarize(scan(tmp_path, cache=False))
    assert out["complete"] == 2 and out["missing"] == {} and out["score"] == 1.0
    # studies=False: image metadata only
    assert comp.summarize(scan(tmp_path, cache=False), studies=False)["minimum"] == IMAGE_FIELDS


def test_invalid_sidecar_does_not_apply_and_is_reported(tmp_path: Path) -> None:
    ome_tiff(tmp_path / "x.ome.tif", **FULL)
    (tmp_path / "rembi.json").write_text('{"study": {"licence": "all rights reserved"}}')
    out = comp.completeness(tmp_path, cache=False)
    assert out["with_study"] == 0 and out["complete"] == 1
    assert len(out["sidecar_errors"]) == 1
    line = out["sidecar_errors"][0]
    assert "\n" not in line and line.startswith(str(tmp_path / "rembi.json")) and "study.licence" in line


def test_completeness_per_folder_and_cached_second_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    ome_tiff(data / "a" / "1.ome.tif", **FULL)
    ome_tiff(data / "a" / "2.ome.tif", **{**FULL, "acquired": None})
    ome_tiff(data / "b" / "3.ome.tif", **FULL)
    cache = tmp_path / "facts.sqlite"
    seen: list[tuple[str, list[str]]] = []
    first = comp.completeness(data, cache=cache, per_image=lambda f, r: seen.append((Path(f.path).name, r["missing"])))
    assert sorted(seen) == [("1.ome.tif", []), ("2.ome.tif", ["acquisition_date"]), ("3.ome.tif", [])]
    assert first["folders"] == {
        str(data / "a"): {"score": pytest.approx((1 + 6 / 7) / 2, abs=1e-4), "images": 2, "complete": 1},
        str(data / "b"): {"score": 1.0, "images": 1, "complete": 1},
    }

    # Second run: every image's facts come from the cache; opening any image would fail.
    import bioimnb.core.facts as facts_mod

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("an image was opened again")

    monkeypatch.setattr(facts_mod, "_facts_task", refuse)
    second = comp.completeness(data, cache=cache)
    assert second == first


def test_root_relative_facts_find_their_sidecars(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ome_tiff(tmp_path / "proj" / "x.ome.tif", **FULL)
    rembi.save(tmp_path / "proj", _study(**FULL_STUDY))
    rembi.save(tmp_path, _study(**{"study.title": "above the root"}))
    facts = list(scan("proj", root=tmp_path, cache=False))
    assert [f.path for f in facts if f.kind == "image"] == ["proj/x.ome.tif"]
    monkeypatch.chdir(tmp_path.parent)  # relative paths must not be read against the cwd
    out = comp.summarize(facts, root=tmp_path)
    assert out["with_study"] == 1 and out["complete"] == 1
    # Without the root, relative paths have no known folder: image metadata only, never the cwd's.
    assert comp.summarize(facts)["with_study"] == 0


def test_completeness_of_one_image(tmp_path: Path) -> None:
    path = ome_tiff(tmp_path / "one.ome.tif", **{**FULL, "acquired": None})
    out = comp.completeness(path, cache=False, studies=False)
    assert out["images"] == 1 and out["missing"] == {"acquisition_date": 1}
    assert out["folders"] == {str(tmp_path): {"score": pytest.approx(6 / 7, abs=1e-4), "images": 1, "complete": 0}}
    from bioimnb.core.errors import SourceNotFound

    with pytest.raises(SourceNotFound):
        comp.completeness(tmp_path / "missing.ome.tif", cache=False)


def test_magnification_in_a_model_name_is_not_a_stated_magnification(tmp_path: Path) -> None:
    objective = {"Manufacturer": "Zeiss", "Model": "Plan-Apochromat 63x/1.40 Oil"}
    facts = image_facts(str(ome_tiff(tmp_path / "m.ome.tif", **{**FULL, "objective": objective})))
    assert facts.objective == "Zeiss Plan-Apochromat 63x/1.40 Oil"
    assert comp.assess(facts)["missing"] == ["objective_na", "objective_magnification"]
    assert comp.objective_parts("Zeiss Plan-Apochromat 63x NA 1.4") == (63.0, 1.4)
    assert comp.objective_parts("LSM 40x") == (40.0, None)
