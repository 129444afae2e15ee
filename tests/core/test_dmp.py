"""Data management plans computed from the data: measured facts, answers, advice, costs, maDMP.

Every folder here is generated with known contents, and the numbers the plan states are
asserted exactly against what is on disk.  Every maDMP produced is validated against the RDA
schema in ``../shared/schemas`` (the bundled copy when that folder is absent; they must match).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import fixtures  # noqa: E402

import bioimnb  # noqa: E402
from bioimnb.core.dmp import (  # noqa: E402
    Answers,
    InvalidAnswer,
    Plan,
    aggregate,
    dmp,
    load_answers,
    make_answers,
)
from bioimnb.core.dmp.answers import orcid_ok  # noqa: E402
from bioimnb.core.dmp.madmp import SCHEMA_PATH  # noqa: E402
from bioimnb.core.facts import ImageFacts  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SHARED_SCHEMA = REPO.parent / "shared" / "schemas" / "maDMP-schema-1.2.json"
GB = 10**9


def validated(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` after validating it against the RDA maDMP 1.2 schema, formats checked."""
    import jsonschema

    path = SHARED_SCHEMA if SHARED_SCHEMA.is_file() else SCHEMA_PATH
    schema = json.loads(path.read_text())
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER).validate(doc)
    return doc


def ome_tiff(path: Path, date: str, *, t: int = 1, c: int = 1, instrument: str = "Scope 1") -> None:
    """A single-file OME-TIFF whose OME-XML states an acquisition date, a microscope and an objective."""
    channels = "".join(f'<Channel ID="Channel:0:{i}" SamplesPerPixel="1"/>' for i in range(c))
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">'
        f'<Instrument ID="Instrument:0"><Microscope Manufacturer="Acme" Model="{instrument}"/>'
        '<Objective ID="Objective:0:0" Manufacturer="Acme" Model="Plan" NominalMagnification="40" LensNA="0.95"/></Instrument>'
        f'<Image ID="Image:0" Name="x"><AcquisitionDate>{date}</AcquisitionDate><InstrumentRef ID="Instrument:0"/>'
        f'<Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint8" SizeX="64" SizeY="48" SizeZ="1" SizeC="{c}" SizeT="{t}">'
        f"{channels}<TiffData/></Pixels></Image></OME>"
    )
    data = np.arange(t * c * 48 * 64, dtype=np.uint8).reshape(t * c, 48, 64)
    tifffile.imwrite(path, data, description=xml, photometric="minisblack", metadata=None)


def _stamp(path: Path, day: str) -> None:
    when = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC).timestamp()
    os.utime(path, (when, when))


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two OME-TIFFs dated by their metadata (Jan and Mar 2024), a flat TIFF and an SVS dated by
    their modification times (Feb and Mar 2024), a text-as-TIFF, an empty CZI and a text file."""
    root = tmp_path_factory.mktemp("dmp") / "collection"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    ome_tiff(root / "a" / "t1.ome.tif", "2024-01-15T10:00:00", t=3)
    ome_tiff(root / "a" / "t2.ome.tif", "2024-03-02T09:30:00", c=2)
    fixtures.flat_tiff(root / "b" / "flat.tif", shape=(256, 320))
    _stamp(root / "b" / "flat.tif", "2024-02-10T12:00:00")
    fixtures.svs_like(root / "b" / "slide.svs")
    _stamp(root / "b" / "slide.svs", "2024-03-20T12:00:00")
    (root / "broken.tif").write_text("not a tiff")
    (root / "zero.czi").write_bytes(b"")
    (root / "notes.txt").write_text("lab notes\n")
    return root


def sizes(root: Path, *names: str) -> int:
    return sum((root / n).stat().st_size for n in names)


@pytest.fixture(scope="module")
def plan(collection: Path) -> Plan:
    return dmp(collection, cache=False, completeness=None, title="Mitosis atlas", licence="CC-BY-4.0", price_per_tb_year=120, backup_copies=2)


# --------------------------------------------------------------------------------------------
# facts


def test_facts_are_measured_exactly(plan: Plan, collection: Path):
    f = plan.facts
    every = [p for p in collection.rglob("*") if p.is_file()]
    assert f.entries == 7 and f.files == 7
    assert f.bytes == sum(p.stat().st_size for p in every)
    assert f.images == 4 and f.scenes == 4
    assert f.other_files == 1 and f.other_bytes == len("lab notes\n")
    assert set(f.formats) == {"OME-TIFF", "TIFF", "SVS"}
    ome, tif, svs = f.formats["OME-TIFF"], f.formats["TIFF"], f.formats["SVS"]
    assert (ome.images, ome.files, ome.bytes, ome.open) == (2, 2, sizes(collection, "a/t1.ome.tif", "a/t2.ome.tif"), True)
    assert (tif.images, tif.bytes, tif.open) == (1, sizes(collection, "b/flat.tif"), True)
    assert (svs.images, svs.bytes, svs.open) == (1, sizes(collection, "b/slide.svs"), False)
    assert ome.readers == ["tifffile"] and ome.media_type == "image/tiff"
    assert f.open_images == 3 and f.proprietary_images == 1
    assert f.proprietary_bytes == svs.bytes and f.open_bytes == ome.bytes + tif.bytes
    # XYZCT from the headers: 64x48 OME-TIFFs, a 320x256 TIFF, a 2048x1536 RGB slide (RGB is
    # one channel of 3 samples, as the readers report it)
    assert f.dims == {"X": [64, 2048], "Y": [48, 1536], "Z": [1, 1], "C": [1, 2], "T": [1, 3]}
    assert (f.time_series, f.z_stacks, f.multichannel) == (1, 0, 1)
    assert f.raw_bytes == 3 * 48 * 64 + 2 * 48 * 64 + 256 * 320 * 2 + 2048 * 1536 * 3
    assert f.instruments == {"Acme Scope 1": 2} and f.objectives == {"Acme Plan 40x NA 0.95": 2}


def test_unreadable_files_are_counted_and_listed_never_fatal(plan: Plan, collection: Path):
    failures = {Path(r["path"]).name: r["error"] for r in plan.facts.failures}
    assert failures == {"broken.tif": "not a TIFF file: the content is text", "zero.czi": "file is empty (0 bytes)"}
    md = plan.markdown()
    assert "2 files [" in md and "Appendix B: files that could not be opened" in md
    assert f"| `{collection / 'zero.czi'}` | file is empty (0 bytes) |" in md


def test_growth_from_acquisition_dates_else_modification_times(plan: Plan, collection: Path):
    f = plan.facts
    assert (f.dated_by_acquisition, f.dated_by_mtime) == (2, 2)
    assert f.growth_basis == "acquisition dates and file modification times"
    assert (f.acquired_first, f.acquired_last) == ("2024-01-15", "2024-03-20")
    jan, feb = sizes(collection, "a/t1.ome.tif"), sizes(collection, "b/flat.tif")
    mar = sizes(collection, "a/t2.ome.tif", "b/slide.svs")
    assert f.growth == {
        "2024-01": {"images": 1, "bytes": jan},
        "2024-02": {"images": 1, "bytes": feb},
        "2024-03": {"images": 2, "bytes": mar},
    }
    assert f.growth_bytes_per_month == pytest.approx((jan + feb + mar) / 3)


def test_zarr_estimate_follows_the_stated_rule(plan: Plan, collection: Path):
    z = plan.facts.zarr_estimate
    raw = 2048 * 1536 * 3
    src = sizes(collection, "b/slide.svs")
    assert z["source_bytes"] == src and z["raw_bytes"] == raw
    assert z["estimated_bytes"] == round(raw * 4 / 3 * min(1.0, src / raw))
    assert z["upper_bound_bytes"] == round(raw * 4 / 3)
    assert z["after_conversion_total_bytes"] == plan.facts.bytes - src + z["estimated_bytes"]
    assert "4/3" in plan.markdown()


def test_storage_cost_formula_and_assumptions(plan: Plan):
    f, c = plan.facts, plan.cost
    projected = round(f.bytes + f.growth_bytes_per_month * 12)
    assert c.projected_bytes == projected and c.copies == 3 and c.retention_years == 10
    assert c.total == pytest.approx(projected / 1e12 * 3 * 10 * 120)
    md = plan.markdown()
    assert f"{c.total:,.2f} EUR" in md
    assert "copies: 3 (the working copy and 2 backups)" in md


def test_every_figure_is_traceable_to_the_appendix(plan: Plan):
    md = plan.markdown()
    body, appendix = md.split("## Appendix A: measured facts")
    used = set(re.findall(r"\[(F\d+)\]", body))
    rows = dict(re.findall(r"^\| (F\d+) \| ([^|]+) \|", appendix, flags=re.M))
    assert used and used <= set(rows)
    assert f"| Bytes on storage | {plan.facts.bytes:,} bytes |" in appendix
    for title in ("Data description and collection", "Documentation and data quality", "Storage and backup",
                  "Legal and ethical requirements", "Data sharing and long-term preservation",
                  "Data management responsibilities and resources"):
        assert title in body


def test_madmp_validates_with_measured_sizes_and_media_types(plan: Plan):
    doc = validated(plan.madmp())
    ds = doc["dmp"]["dataset"]
    assert len(ds) == 1
    dists = ds[0]["distribution"]
    assert sum(d["byte_size"] for d in dists) == plan.facts.bytes
    by_title = {d["title"].split(" at ")[0]: d for d in dists}
    assert by_title["OME-TIFF"]["format"] == ["image/tiff", "OME-TIFF"]
    assert by_title["OME-TIFF"]["byte_size"] == plan.facts.formats["OME-TIFF"].bytes
    assert by_title["SVS"]["format"] == ["image/tiff", "SVS"]
    assert by_title["unreadable"]["byte_size"] == len("not a tiff")
    standards = {m["metadata_standard_id"]["identifier"] for m in ds[0]["metadata"]}
    assert standards == {
        "https://www.openmicroscopy.org/Schemas/OME/2016-06",
        "https://ngff.openmicroscopy.org/",
        "https://doi.org/10.1038/s41592-021-01166-8",
    }
    assert ds[0]["personal_data"] == "unknown" and ds[0]["sensitive_data"] == "unknown"
    assert doc["dmp"]["cost"][0]["value"] == round(plan.cost.total, 2)
    assert any(d.get("license") == [{"license_ref": "https://creativecommons.org/licenses/by/4.0/",
                                     "start_date": dt.date.today().isoformat()}] for d in dists)


def test_bundled_schema_is_the_shared_one():
    if SHARED_SCHEMA.is_file():
        assert json.loads(SCHEMA_PATH.read_text()) == json.loads(SHARED_SCHEMA.read_text())
    else:
        assert json.loads(SCHEMA_PATH.read_text())["title"].startswith("RDA DMP Common Standard")


def test_answers_flow_into_text_and_madmp(plan: Plan):
    p = plan.with_answers(
        personal_data=False,
        health_data="yes",
        embargo_months=6,
        repository="Zenodo",
        funder="Wellcome Trust",
        grant_id="220000/Z/20/Z",
        contacts=[{"name": "Ada Lovelace", "email": "ada@example.org", "orcid": "https://orcid.org/0000-0002-1825-0097", "role": "data manager"}],
    )
    assert p.facts is plan.facts  # no new scan
    doc = validated(p.madmp())
    d = doc["dmp"]
    assert d["contact"] == {"name": "Ada Lovelace", "mbox": "ada@example.org",
                            "contact_id": {"identifier": "https://orcid.org/0000-0002-1825-0097", "type": "orcid"}}
    assert d["ethical_issues_exist"] == "yes"
    ds = d["dataset"][0]
    assert (ds["personal_data"], ds["sensitive_data"]) == ("no", "yes")
    deposit = [x for x in ds["distribution"] if x["title"] == "Deposit in Zenodo"][0]
    assert deposit["host"] == {"title": "Zenodo", "url": "https://zenodo.org/", "pid_system": ["doi"]}
    assert deposit["data_access"] == "closed" and deposit["byte_size"] == plan.facts.bytes
    assert deposit["license"][0]["start_date"] > dt.date.today().isoformat()  # embargo
    md = p.markdown()
    assert "do not include personal data and include protected health information" in md
    assert "[0000-0002-1825-0097](https://orcid.org/0000-0002-1825-0097)" in md
    assert "An embargo of 6 months" in md and "Wellcome Trust (grant 220000/Z/20/Z)" in md


# --------------------------------------------------------------------------------------------
# answers


@pytest.mark.parametrize(
    ("answers", "line"),
    [
        ({"licence": "CC-BY-5.0"}, "answers: licence: 'CC-BY-5.0' is not a known SPDX licence id (known: CC0-1.0, "),
        ({"price_per_tb_year": -3}, "answers: price_per_tb_year: -3 is negative (a price per TB per year is 0 or more)"),
        ({"price_per_tb": "cheap"}, "answers: price_per_tb_year: 'cheap' is not a number"),
        ({"contacts": [{"name": "A", "orcid": "0000-0002-1825-0098"}]},
         "answers: contacts[0].orcid: '0000-0002-1825-0098' is not a valid ORCID iD (0000-0000-0000-000X with a correct check digit)"),
        ({"contacts": [{"name": "A", "orcid": "0000-0002-1825"}]}, "answers: contacts[0].orcid: '0000-0002-1825' is not a valid ORCID iD"),
        ({"contacts": [{"name": "A", "email": "not-an-address"}]}, "answers: contacts[0].email: 'not-an-address' is not an e-mail address"),
        ({"titel": "x"}, "answers: titel: unknown field (known: "),
        ({"personal_data": "maybe"}, "answers: personal_data: 'maybe' is not one of yes, no, unknown"),
        ({"retention_years": 0}, "answers: retention_years: 0 must be at least 1"),
        ({"backup_copies": 1.5}, "answers: backup_copies: 1.5 is not a whole number"),
        ({"project_end": "next year"}, "answers: project_end: 'next year' is not a date (YYYY-MM-DD)"),
    ],
)
def test_bad_answers_are_refused_with_the_field_named(answers: dict[str, Any], line: str):
    with pytest.raises(InvalidAnswer) as exc:
        make_answers(answers)
    text = str(exc.value)
    assert "\n" not in text and text.startswith(line)


def test_bad_answers_are_refused_before_any_scan(tmp_path: Path):
    with pytest.raises(InvalidAnswer, match="licence"):
        dmp(tmp_path / "does-not-exist", licence="GPL-banana")


def test_orcid_checksum_iso_7064():
    assert orcid_ok("0000-0002-1825-0097") and orcid_ok("0000-0001-5109-3700") and orcid_ok("0000-0002-1694-233X")
    assert not orcid_ok("0000-0002-1694-2339") and not orcid_ok("0000-0002-1825-0097 ")


def test_answers_from_yaml_and_json_files(tmp_path: Path):
    y = tmp_path / "answers.yaml"
    y.write_text("title: Atlas\nlicense: cc0-1.0\npersonal_data: no\ncontacts:\n  - name: Ann\n    orcid: 0000-0001-5109-3700\n")
    a = load_answers(y)
    assert (a.title, a.licence, a.personal_data, a.contacts[0].orcid) == ("Atlas", "CC0-1.0", "no", "0000-0001-5109-3700")
    j = tmp_path / "answers.json"
    j.write_text(json.dumps({"price_per_tb_year": -1}))
    with pytest.raises(InvalidAnswer) as exc:
        load_answers(j)
    assert str(exc.value) == f"{j}: price_per_tb_year: -1 is negative (a price per TB per year is 0 or more)"
    bad = tmp_path / "bad.yaml"
    bad.write_text("title: [unclosed\n")
    with pytest.raises(InvalidAnswer, match=r"bad.yaml: not valid YAML or JSON"):
        load_answers(bad)


# --------------------------------------------------------------------------------------------
# repository advice on both sides of each limit (synthetic facts: no 50 GB written)


def synthetic(nbytes: int, *, t: int = 1, instrument: str | None = None, n: int = 1) -> list[ImageFacts]:
    scene = {"index": 0, "axes": "TCZYX", "shape": [t, 1, 1, 1024, 1024], "dtype": "uint16"}
    return [
        ImageFacts(f"/data/img{i}.czi", "image", "CZI", "bioio-czi", nbytes // n, 1, scenes=[scene], instrument=instrument)
        for i in range(n)
    ]


def advice(facts: list[ImageFacts], **answers: Any) -> dict[str, Any]:
    plan = Plan(aggregate(facts, sources=["/data"]), make_answers(answers))
    validated(plan.madmp())
    return {a.name: a for a in plan.advice}


@pytest.mark.parametrize(("gb", "status"), [(49, "suitable"), (51, "unsuitable")])
def test_zenodo_50_gb_per_dataset(gb: int, status: str):
    z = advice(synthetic(gb * GB, n=7))["Zenodo"]
    assert z.status == status
    assert any(f"{gb:,}.0 GB measured is" in r and "50.0 GB limit" in r for r in z.reasons)


@pytest.mark.parametrize(("gb", "status"), [(299, "suitable"), (301, "unsuitable")])
def test_dryad_300_gb(gb: int, status: str):
    assert advice(synthetic(gb * GB))["Dryad"].status == status


@pytest.mark.parametrize(("gb", "charged"), [(49, False), (51, True)])
def test_dryad_costs_money_over_50_gb(gb: int, charged: bool):
    reasons = " ".join(advice(synthetic(gb * GB))["Dryad"].reasons)
    assert ("costs money" in reasons) is charged and ("free of charge: " in reasons) is not charged


def test_empiar_electron_microscopy_only():
    assert advice(synthetic(GB, instrument="FEI Titan Krios electron microscope"))["EMPIAR"].status == "suitable"
    assert advice(synthetic(GB), modality="light microscopy")["EMPIAR"].status == "unsuitable"
    assert advice(synthetic(GB), modality="electron microscopy")["EMPIAR"].status == "suitable"
    assert advice(synthetic(GB))["EMPIAR"].status == "check"


def test_protected_health_data():
    a = advice(synthetic(GB), health_data="yes")
    for name in ("BioImage Archive", "IDR", "Dryad"):
        assert a[name].status == "unsuitable", name
    assert a["Zenodo"].status == "suitable"
    b = advice(synthetic(GB), health_data="no")
    assert b["BioImage Archive"].status == "suitable"


def test_ssbd_takes_biological_dynamics():
    assert advice(synthetic(GB, t=20))["SSBD:repository"].status == "suitable"
    assert advice(synthetic(GB, t=1))["SSBD:repository"].status == "unsuitable"


def test_doi_and_cost_are_stated():
    a = advice(synthetic(GB))
    assert a["Zenodo"].doi is True and a["BioImage Archive"].doi is None
    assert "no DOI stated" in a["BioImage Archive"].reasons and "DOI for each entry" in a["IDR"].reasons


# --------------------------------------------------------------------------------------------
# empty folder, manifests, completeness, charts, cache, S3


def test_empty_folder_says_so(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    p = dmp(tmp_path / "empty", cache=False)
    assert p.facts.empty and p.facts.bytes == 0 and p.charts == {}
    md = p.markdown()
    assert "**The scanned locations hold no files yet**" in md
    assert all(a.status == "check" for a in p.advice)
    doc = validated(p.madmp())
    assert doc["dmp"]["dataset"][0]["distribution"] == []
    assert "<strong>The scanned locations hold no files yet</strong>" in p.html()


def test_cites_a_transfer_manifest(tmp_path: Path, collection: Path):
    folder = tmp_path / "copied"
    shutil.copytree(collection / "a", folder)
    (folder / "manifest-sha256.txt").write_text("0" * 64 + "  t1.ome.tif\n" + "1" * 64 + "  t2.ome.tif\n")
    (folder / "bioimnb-manifest.json").write_text(json.dumps({
        "created": "2024-04-01T08:00:00+00:00", "tool": "bioimnb 0.1.0", "algorithm": "sha256",
        "files": 2, "bytes": 17586, "entries": [{"path": "t1.ome.tif"}, {"path": "t2.ome.tif"}],
    }))
    p = dmp(folder, cache=False, completeness=None)
    assert p.facts.manifests == [{
        "kind": "bioimnb transfer manifest", "folder": str(folder), "file": "manifest-sha256.txt",
        "created": "2024-04-01T08:00:00+00:00", "tool": "bioimnb 0.1.0", "algorithm": "sha256", "files": 2, "bytes": 17586,
    }]
    md = p.markdown()
    assert "Fixity: a bioimnb transfer manifest at" in md and "2024-04-01T08:00:00+00:00 [" in md
    assert "2 files [" in md and "17,586 bytes [" in md and "with sha256 checksums" in md
    doc = validated(p.madmp())
    assert "bioimnb transfer manifest" in doc["dmp"]["dataset"][0]["data_quality_assurance"][0]


def test_cites_a_bagit_bag(tmp_path: Path, collection: Path):
    import bagit

    folder = tmp_path / "bag"
    shutil.copytree(collection / "a", folder)
    payload = sizes(folder, "t1.ome.tif", "t2.ome.tif")
    bagit.make_bag(str(folder), {"Bagging-Date": "2024-05-06", "Contact-Name": "Ann"}, checksums=["sha256"])
    p = dmp(folder, cache=False, completeness=None)
    [bag] = p.facts.manifests
    assert (bag["kind"], bag["created"], bag["files"], bag["bytes"], bag["algorithm"]) == ("BagIt bag", "2024-05-06", 2, payload, "sha256")
    assert f"{payload:,} bytes [" in p.markdown()
    validated(p.madmp())


def test_completeness_summary_is_shown(plan: Plan):
    fake = {"score": 0.625, "images": 4, "complete": 1, "missing": {"physical_size_x": 3, "channel_names": 1},
            "minimum": ["physical_size_x", "channel_names"]}
    p = Plan(aggregate([], sources=["/x"], completeness=fake), Answers())
    md = p.markdown()
    assert "Metadata completeness: 0.62 [" in md or "Metadata completeness: 0.63 [" in md
    assert "1 of 4 images [" in md and "physical\\_size\\_x (3)" in md
    validated(p.madmp())
    # with a function, as the curation module's summarize is called
    seen: list[int] = []
    q = aggregate(synthetic(GB, n=3), completeness=lambda facts: seen.append(len(facts)) or fake)
    assert seen == [3] and q.completeness == fake


def test_real_completeness_module_when_present(collection: Path):
    p = dmp(collection, cache=False)
    comp = p.facts.completeness
    assert comp is not None and {"score", "images", "complete", "missing", "minimum"} <= set(comp)
    assert comp["images"] >= 4


def test_charts_are_real_pngs(plan: Plan):
    import matplotlib.image as mpimg

    assert set(plan.charts) == {"volume_by_format", "growth"}
    for png in plan.charts.values():
        pixels = mpimg.imread(io.BytesIO(png), format="png")
        assert pixels.shape[0] > 100 and pixels.shape[1] > 300
        assert pixels[..., :3].std() > 0.05  # bars and text, not a blank canvas
    html = plan.html()
    assert html.count('src="data:image/png;base64,') == 2


def test_html_escapes_answers(plan: Plan):
    p = plan.with_answers(title="<script>alert(1)</script>", storage="<img src=x onerror=alert(2)>")
    html = p.html()
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in html


def test_save_writes_charts_beside_the_plan(plan: Plan, tmp_path: Path):
    written = plan.save(tmp_path / "out" / "plan.md")
    names = sorted(p.name for p in written)
    assert names == ["plan-growth.png", "plan-volume-by-format.png", "plan.md"]
    text = (tmp_path / "out" / "plan.md").read_text()
    assert "![Volume by format](plan-volume-by-format.png)" in text
    validated(json.loads(Path(plan.save(tmp_path / "plan.json")[0]).read_text()))


def test_second_plan_comes_from_the_scan_cache(collection: Path, tmp_path: Path):
    cache = tmp_path / "facts.sqlite"
    first = dmp(collection, cache=cache, completeness=None)
    again = dmp(collection, cache=cache, completeness=None)
    # every image-looking entry comes from the cache: the 4 images and the 2 that fail to open
    assert first.facts.cached == 0 and again.facts.cached == first.facts.images + len(first.facts.failures) == 6
    assert again.facts.to_dict()["formats"] == first.facts.to_dict()["formats"]


def test_public_api_and_notebook_display(collection: Path):
    p = bioimnb.dmp(collection, cache=False, completeness=None)
    assert isinstance(p, Plan)
    assert p._repr_html_().startswith('<div class="bioimnb-dmp">') and p._repr_markdown_().startswith("# Data management plan")


def test_several_locations_and_an_s3_prefix(collection: Path, s3: Any):
    bucket = s3.make_bucket("dmp")
    objects = {f"lab/{p.relative_to(collection).as_posix()}": p.read_bytes() for p in collection.rglob("*") if p.is_file()}
    s3.put(bucket, objects)
    url = f"s3://{bucket}/lab/"
    p = dmp([url], cache=False, completeness=None, storage_options=s3.storage_options)
    local = dmp(collection, cache=False, completeness=None)
    f = p.facts
    assert (f.images, f.files, f.bytes) == (local.facts.images, local.facts.files, local.facts.bytes)
    assert {k: (v.images, v.bytes) for k, v in f.formats.items()} == {k: (v.images, v.bytes) for k, v in local.facts.formats.items()}
    assert {Path(r["path"]).name for r in f.failures} == {"broken.tif", "zero.czi"}
    # dates: two from the OME metadata, two from the objects' LastModified (uploaded today)
    assert (f.dated_by_acquisition, f.dated_by_mtime) == (2, 2)
    assert f.acquired_last == dt.datetime.now(dt.UTC).date().isoformat()
    doc = validated(p.madmp())
    dists = doc["dmp"]["dataset"][0]["distribution"]
    assert sum(d["byte_size"] for d in dists) == f.bytes and all(d.get("access_url") == url for d in dists)
    assert all(d["host"] == {"title": "S3 object store", "url": url, "storage_type": "object store"} for d in dists)
    # two locations: one dataset each
    both = dmp([collection, url], cache=False, completeness=None, storage_options=s3.storage_options)
    assert both.facts.bytes == 2 * local.facts.bytes and both.facts.images == 2 * local.facts.images
    assert len(validated(both.madmp())["dmp"]["dataset"]) == 2


def test_a_single_file(collection: Path):
    p = dmp(collection / "b" / "slide.svs", cache=False, completeness=None)
    f = p.facts
    assert (f.images, f.files, f.bytes, f.proprietary_images) == (1, 1, sizes(collection, "b/slide.svs"), 1)
    assert "are 1 image [" in p.markdown() and "in 1 file [" in p.markdown()
    validated(p.madmp())


def test_hostile_manifests_are_reported_never_fatal(tmp_path: Path, collection: Path):
    bag = tmp_path / "bag"
    shutil.copytree(collection / "a", bag)
    (bag / "bag-info.txt").write_text("Bagging-Date: 2024-05-06\nPayload-Oxum: 10.1\n")
    os.mkfifo(bag / "bagit.txt")  # would block a reader that opens it
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest-sha256.txt").write_text("")
    (broken / "bioimnb-manifest.json").write_text("{not json")
    p = dmp([bag, broken], cache=False, completeness=None)
    cited = {Path(m["folder"]).name: m for m in p.facts.manifests}
    assert cited["bag"]["kind"] == "unreadable manifest" and cited["bag"]["error"] == "bagit.txt is not a regular file"
    assert cited["broken"]["kind"] == "unreadable manifest" and cited["broken"]["error"].startswith("Expecting property name")
    md = p.markdown()
    assert "(`bag-info.txt`) could not be read: bagit.txt is not a regular file." in md
    validated(p.madmp())
