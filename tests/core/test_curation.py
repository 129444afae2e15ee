"""Metadata editing (issue 12, part 1): load, change lists, validation and writing back.

Every edit is checked by re-reading with independent readers (tifffile, ome-types, zarr JSON,
bioimnb's own reader), and pixel data by hashing every strip and tile before and after.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from ome_types import from_tiff, from_xml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import fixtures  # noqa: E402

import bioimnb  # noqa: E402
from bioimnb.core.curation.changes import (  # noqa: E402
    OMERO_CLIENT_NS,
    InvalidField,
    canonical_field,
    field_text,
    get_map,
)
from bioimnb.core.curation.edit import (  # noqa: E402
    PROVENANCE_NS,
    EditSession,
    apply_changes,
    edit_history,
    revert,
    set_fields,
)
from bioimnb.core.curation.model import load, parse_document  # noqa: E402
from bioimnb.core.curation.validate import semantic_problems, validate  # noqa: E402
from bioimnb.core.errors import BioimnbError, CorruptFile, UnsupportedFormat  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def tiff_pixel_hashes(path: Path) -> list[tuple[int, int, str]]:
    """(offset, length, sha256) of every strip and tile of every IFD and SubIFD."""
    seen: dict[tuple[int, int], str] = {}
    with tifffile.TiffFile(path) as tif, open(path, "rb") as fh:
        pages = list(tif.pages)
        for series in tif.series:
            for level in series.levels:
                pages.extend(p for p in level.pages if p is not None)
        for page in pages:
            for offset, count in zip(page.dataoffsets, page.databytecounts, strict=True):
                if (offset, count) not in seen:
                    fh.seek(offset)
                    seen[(offset, count)] = hashlib.sha256(fh.read(count)).hexdigest()
    return sorted((o, n, h) for (o, n), h in seen.items())


def file_hashes(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in skip
    }


@pytest.fixture
def pyramid(tmp_path: Path) -> Path:
    path = tmp_path / "two.ome.tif"
    fixtures.ome_tiff_subifd(path, scenes=2, levels=3)
    return path


def dump(items: list) -> list:
    return [item.model_dump() for item in items]


# -- the shared OME-XML documents ------------------------------------------------------------


def _documents(shared_data: Path) -> list[Path]:
    docs = sorted((shared_data / "ome-xml").glob("*.ome.xml"))
    assert len(docs) >= 12
    return docs


def test_round_trip_every_shared_document(shared_data: Path, tmp_path: Path) -> None:
    """parse -> write -> parse gives an equal model; bad.ome.xml is reported, not silently fixed."""
    for doc_path in _documents(shared_data):
        doc = load(doc_path)
        again, _, _ = parse_document(doc.ome.to_xml(), doc_path.name)
        assert again == doc.ome, doc_path.name
        if doc_path.name == "bad.ome.xml":
            report = validate(doc_path)
            assert not report.valid
            assert any("InvalidName" in p and p.startswith("line 6:") for p in report.problems), report.problems
            assert any("InvalidName" in n for n in doc.notes)
        else:
            assert validate(doc_path).valid, doc_path.name


def test_edit_and_save_preserves_what_bioimnb_does_not_edit(shared_data: Path, tmp_path: Path) -> None:
    """ROIs, instruments, structured annotations and plates survive an edit and save."""
    for name in ("ROI.ome.xml", "instrument.ome.xml", "hcs.ome.xml", "mapannotation.ome.xml", "commentannotation.ome.xml", "spim.ome.xml"):
        path = tmp_path / name
        shutil.copy(shared_data / "ome-xml" / name, path)
        path.chmod(0o644)
        before = load(path).ome
        result = set_fields(path, ["image[0].description=edited by the test"])
        assert [c.field for c in result.changes] == ["images[0].description"]
        after = from_xml(path.read_text(encoding="utf-8"))
        assert after.images[0].description == "edited by the test"
        # (compared as dumps: references such as a well's image_ref link to the edited image)
        for part in ("rois", "instruments", "plates", "screens", "experimenters", "datasets", "projects"):
            assert dump(getattr(after, part)) == dump(getattr(before, part)), (name, part)
        kept = [a for a in after.structured_annotations if getattr(a, "namespace", None) != PROVENANCE_NS]
        assert dump(kept) == dump(list(before.structured_annotations or [])), name
        after.images[0].description = before.images[0].description
        assert dump(after.images) == dump(before.images)


def test_older_schema_upgraded_unknown_refused(shared_data: Path, tmp_path: Path) -> None:
    text = (shared_data / "ome-xml" / "single-image.ome.xml").read_text(encoding="utf-8")
    old = tmp_path / "old.ome.xml"
    old.write_text(text.replace("OME/2016-06", "OME/2015-01"), encoding="utf-8")
    doc = load(old)
    assert doc.schema.endswith("2015-01") and any("2015-01 is upgraded to 2016-06" in n for n in doc.notes)
    set_fields(old, ["image[0].name=upgraded"])
    saved = old.read_text(encoding="utf-8")
    assert "Schemas/OME/2016-06" in saved and "2015-01" not in saved
    assert from_xml(saved).images[0].name == "upgraded"
    future = tmp_path / "future.ome.xml"
    future.write_text(text.replace("OME/2016-06", "OME/2099-01"), encoding="utf-8")
    with pytest.raises(UnsupportedFormat) as err:
        load(future)
    assert "2099-01" in str(err.value) and "\n" not in str(err.value)


# -- security ------------------------------------------------------------------------------------

XXE = """<?xml version="1.0"?>
<!DOCTYPE OME [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image ID="Image:0" Name="&xxe;">
<Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="uint8" SizeX="1" SizeY="1" SizeZ="1" SizeC="1" SizeT="1"><MetadataOnly/></Pixels>
</Image></OME>"""

LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
    + ']>\n<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image ID="Image:0" Name="&lol9;"/></OME>'
)


@pytest.mark.parametrize("payload", [XXE, LAUGHS], ids=["xxe", "billion-laughs"])
def test_xxe_and_billion_laughs_refused(tmp_path: Path, payload: str) -> None:
    path = tmp_path / "evil.ome.xml"
    path.write_text(payload, encoding="utf-8")
    for call in (load, validate):
        with pytest.raises(CorruptFile) as err:
            call(path)
        text = str(err.value)
        assert text.startswith(f"{path}: ") and "DOCTYPE" in text and "\n" not in text
        assert "root:" not in text  # /etc/passwd never read
    # The same payload inside an OME-TIFF's ImageDescription.
    tif = tmp_path / "evil.ome.tif"
    tifffile.imwrite(tif, np.zeros((8, 8), np.uint8), description=payload, metadata=None)
    with pytest.raises(BioimnbError) as err:
        load(tif)
    assert "DOCTYPE" in str(err.value)


# -- change lists --------------------------------------------------------------------------------


def test_aliases_name_the_ome_types_fields() -> None:
    cases = {
        "channel[1].name": "images[0].pixels.channels[1].name",
        "pixel_size_x": "images[0].pixels.physical_size_x",
        "pixel_size_z_unit": "images[0].pixels.physical_size_z_unit",
        "image[2].channel[0].color": "images[2].pixels.channels[0].color",
        "name": "images[0].name",
        "acquisition_date": "images[0].acquisition_date",
        "objective[0].lens_na": "instruments[0].objectives[0].lens_na",
        "images[0].pixels.channels[1].name": "images[0].pixels.channels[1].name",
        "images[1].pixels.physical_size_x_unit": "images[1].pixels.physical_size_x_unit",
    }
    for alias, full in cases.items():
        steps, key = canonical_field(alias)
        assert key is None and field_text(steps) == full, alias
    steps, key = canonical_field("image[1].map.Organism")
    assert field_text(steps, key) == "images[1].map.Organism"


@pytest.mark.parametrize(
    ("item", "field", "reason"),
    [
        ("pixel_size_x=-0.5", "pixel_size_x", "greater than 0"),
        ("pixel_size_x=abc", "pixel_size_x", "valid number"),
        ("pixel_size_x_unit=furlong", "pixel_size_x_unit", "unknown length unit"),
        ("channel[7].name=GFP", "channel[7].name", "index 7 out of range"),
        ("images[3].name=x", "images[3].name", "index 3 out of range"),
        ("size_x=1.5", "size_x", "integer"),
        ("images[0].pixels.nonsense=1", "images[0].pixels.nonsense", "no field 'nonsense'"),
        ("images[0].pixels.channels=x", "images[0].pixels.channels", "is a list"),
        ("acquisition_date=yesterday", "acquisition_date", "datetime"),
        ("images[0].pixels.dimension_order=ABC", "images[0].pixels.dimension_order", "XYZCT"),
    ],
)
def test_invalid_values_refused_with_field_named_nothing_written(pyramid: Path, item: str, field: str, reason: str) -> None:
    before = hashlib.sha256(pyramid.read_bytes()).hexdigest()
    with pytest.raises(InvalidField) as err:
        set_fields(pyramid, ["channel[0].name=Fine", item])
    text = str(err.value)
    assert text.startswith(f"{field}: ") and reason in text and "\n" not in text, text
    assert hashlib.sha256(pyramid.read_bytes()).hexdigest() == before


def test_units_accept_every_spelling_units_knows(pyramid: Path) -> None:
    doc = load(pyramid)
    for spelling, symbol in (("um", "µm"), ("micron", "µm"), ("micrometer", "µm"), ("nanometers", "nm"), ("mm", "mm")):
        new, _ = apply_changes(doc.ome, [("pixel_size_y_unit", spelling)])
        assert new.images[0].pixels.physical_size_y_unit.value == symbol, spelling


# -- OME-TIFF in place ------------------------------------------------------------------------


def test_ome_tiff_edit_in_place_pixels_identical(pyramid: Path) -> None:
    hashes = tiff_pixel_hashes(pyramid)
    size = pyramid.stat().st_size
    result = set_fields(
        pyramid,
        ["channel[1].name=EGFP", "pixel_size_x=650", "pixel_size_x_unit=nm", "image[1].channel[0].name=Hoechst", "map.Organism=Mus musculus"],
    )
    assert result.kind == "ome-tiff" and len(result.changes) == 5
    # Only the new XML (plus the 16-byte entry) was written; nothing else moved.
    grown = pyramid.stat().st_size - size
    assert 0 < grown <= result.bytes_written < 64 * 1024
    assert tiff_pixel_hashes(pyramid) == hashes
    with tifffile.TiffFile(pyramid) as tif:
        xml = tif.ome_metadata
    assert xml is not None and 'Name="EGFP"' in xml
    ome = from_tiff(pyramid)  # validates against the schema
    px = ome.images[0].pixels
    assert px.channels[1].name == "EGFP" and px.physical_size_x == 650 and px.physical_size_x_unit.value == "nm"
    assert ome.images[1].pixels.channels[0].name == "Hoechst"
    assert len(px.tiff_data_blocks) == len(load(pyramid).ome.images[0].pixels.tiff_data_blocks) > 0
    img = bioimnb.open_image(pyramid)
    assert img.channel_names == ["DAPI", "EGFP"] and pytest.approx(0.65) == img.physical_size.X
    np.testing.assert_array_equal(img.levels[2].compute()[0, :, 0], img.read(2, t=0, z=0))
    # key-value pair in OMERO's client namespace, linked to the image
    ann = [a for a in ome.structured_annotations.map_annotations if a.namespace == OMERO_CLIENT_NS]
    assert len(ann) == 1 and ann[0].id in {r.id for r in ome.images[0].annotation_refs}
    assert [(m.k, m.value) for m in ann[0].value.ms] == [("Organism", "Mus musculus")]
    # provenance: what, when, which tool, where the old XML is
    (record,) = edit_history(ome)
    assert record["tool"].startswith("bioimnb ") and record["time"] and record["previous_xml"].startswith("offset=")
    assert "images[0].pixels.channels[1].name: 'GFP' -> 'EGFP'" in record["changed"]


def test_ome_tiff_revert_points_back_at_the_old_xml(pyramid: Path) -> None:
    hashes = tiff_pixel_hashes(pyramid)
    set_fields(pyramid, ["channel[0].name=first"])
    set_fields(pyramid, ["channel[0].name=second"])
    size = pyramid.stat().st_size
    back = revert(pyramid)
    assert [str(c) for c in back.changes if c.field.endswith("name")] == ["images[0].pixels.channels[0].name: 'second' -> 'first'"]
    assert pyramid.stat().st_size == size  # one pointer write, nothing appended
    assert from_tiff(pyramid).images[0].pixels.channels[0].name == "first"
    assert tiff_pixel_hashes(pyramid) == hashes


def test_classic_tiff_edit(tmp_path: Path) -> None:
    path = tmp_path / "classic.ome.tif"
    data = np.arange(3 * 50 * 70, dtype=np.uint8).reshape(3, 50, 70)
    tifffile.imwrite(path, data, ome=True, metadata={"axes": "CYX", "Channel": {"Name": ["a", "b", "c"]}}, rowsperstrip=7)
    hashes = tiff_pixel_hashes(path)
    set_fields(path, ["channel[2].name=Cy5", "pixel_size_y=0.2"])
    assert tiff_pixel_hashes(path) == hashes and not tifffile.TiffFile(path).is_bigtiff
    assert from_tiff(path).images[0].pixels.channels[2].name == "Cy5"
    np.testing.assert_array_equal(tifffile.imread(path), data)


KILL_SCRIPT = """
import sys
from bioimnb.core.curation.edit import EditSession
path = sys.argv[1]
import shutil
i = 0
shutil.copy(path, path + ".warm")  # imports and first-use costs paid before the clock starts
warm = EditSession(path + ".warm")
warm.set("channel[0].name=warm")
warm.save()
print("ready", flush=True)
while True:
    s = EditSession(path)
    s.set(f"channel[0].name=N{i}", "image[0].description=" + ("x" * 3_000_000) + str(i))
    s.save()
    i += 1
"""


def test_kill_9_mid_save_leaves_a_valid_file(tmp_path: Path) -> None:
    path = tmp_path / "victim.ome.tif"
    tifffile.imwrite(path, np.full((2, 256, 256), 7, np.uint16), ome=True, bigtiff=True, tile=(128, 128), metadata={"axes": "CYX", "Channel": {"Name": ["DAPI", "GFP"]}})
    hashes = tiff_pixel_hashes(path)
    script = tmp_path / "saver.py"
    script.write_text(textwrap.dedent(KILL_SCRIPT))
    names = set()
    for delay in (0.7, 1.2):
        proc = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(delay)
        proc.kill()  # SIGKILL, wherever it is
        proc.wait(timeout=30)
        ome = from_tiff(path)  # parses and validates against the schema
        name = ome.images[0].pixels.channels[0].name
        assert name == "DAPI" or (name or "").startswith("N"), name
        names.add(name)
        assert tiff_pixel_hashes(path) == hashes
        np.testing.assert_array_equal(tifffile.imread(path), np.full((2, 256, 256), 7, np.uint16))
    assert names != {"DAPI"}, "no save finished in any run: the test proved nothing"


def test_edits_seen_by_bioformats(pyramid: Path) -> None:
    from bioimnb.core.readers import bioformats as bf

    try:
        bf.start_jvm()
    except UnsupportedFormat as exc:
        import os

        if os.environ.get("BIOIMNB_REQUIRE_BIOFORMATS"):
            raise
        pytest.skip(f"Bio-Formats unavailable: {exc}")
    set_fields(pyramid, ["channel[1].name=mNeonGreen", "pixel_size_x=0.5", "pixel_size_y=0.5"])
    img = bioimnb.open_image(pyramid, reader="bioformats")
    assert img.reader == "bioformats"
    assert img.channel_names == ["DAPI", "mNeonGreen"] and pytest.approx(0.5) == img.physical_size.X


# -- edit sessions: diff, undo, map annotations ------------------------------------------------


def test_session_diff_undo_and_map_annotations(pyramid: Path) -> None:
    s = EditSession(pyramid)
    s.set("channel[0].name=Hoechst")
    s.set_map("Strain", "C57BL/6")
    s.set_map("Sex", "female")
    assert [str(c) for c in s.diff()] == [
        "images[0].pixels.channels[0].name: 'DAPI' -> 'Hoechst'",
        "images[0].map.Strain: (unset) -> 'C57BL/6'",
        "images[0].map.Sex: (unset) -> 'female'",
    ]
    assert s.undo() and [c.field for c in s.diff()] == ["images[0].pixels.channels[0].name", "images[0].map.Strain"]
    s.save()
    assert not s.pending and get_map(from_tiff(pyramid), 0) == [("Strain", "C57BL/6")]
    s.set_map("Strain", "BALB/c")
    s.set_map("Age", "8 weeks")
    s.remove_map("Strain")
    s.save()
    ome = from_tiff(pyramid)
    assert get_map(ome, 0) == [("Age", "8 weeks")]
    assert sum(a.namespace == OMERO_CLIENT_NS for a in ome.structured_annotations.map_annotations) == 1
    # undo reaches back past a save; saving again writes the older state
    for _ in range(3):  # remove Strain, add Age, change Strain
        assert s.undo()
    assert [str(c) for c in s.diff()] == ["images[0].map.Age: '8 weeks' -> (unset)", "images[0].map.Strain: (unset) -> 'C57BL/6'"]
    s.save()
    assert get_map(from_tiff(pyramid), 0) == [("Strain", "C57BL/6")]
    assert len(edit_history(from_tiff(pyramid))) == 3


def test_semantic_problems_named(shared_data: Path) -> None:
    ome = load(shared_data / "ome-xml" / "single-image.ome.xml").ome
    from ome_types.model import AnnotationRef

    assert semantic_problems(ome) == []
    ome.images[0].pixels.size_c = 3
    ome.images[0].annotation_refs.append(AnnotationRef(id="Annotation:404"))
    problems = semantic_problems(ome)
    assert any(p.startswith("images[0].pixels.channels:") and "size_c is 3" in p for p in problems)
    assert "images[0].annotation_refs[0]: annotation 'Annotation:404' does not exist" in problems


# -- OME-Zarr ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_attrs_and_xml_updated_together(tmp_path: Path, version: str) -> None:
    root = tmp_path / f"img{version}.ome.zarr"
    truth = fixtures.ngff_image(root, version)
    pixels = file_hashes(root, skip=("zarr.json", ".zattrs", ".zgroup", ".zarray", "METADATA.ome.xml"))
    arrays_meta = {k: v for k, v in file_hashes(root).items() if k.split("/")[-1] in (".zarray",)}
    result = set_fields(root, ["channel[1].name=EGFP", "channel[1].color=FF00FF", "pixel_size_x=500", "pixel_size_x_unit=nm", "map.Stain=none"])
    assert result.kind == "ome-zarr"
    attrs_file = root / ("zarr.json" if version == "0.5" else ".zattrs")
    attrs = json.loads(attrs_file.read_text())
    holder = attrs["attributes"]["ome"] if version == "0.5" else attrs
    assert [c["label"] for c in holder["omero"]["channels"]] == ["DAPI", "EGFP"]
    assert holder["omero"]["channels"][1]["color"] == "FF00FF"
    scales = [ds["coordinateTransformations"][0]["scale"][-1] for ds in holder["multiscales"][0]["datasets"]]
    assert scales == pytest.approx([0.5, 1.0, 2.0])  # µm (the axis unit), level ratios kept
    assert [ds["coordinateTransformations"][0]["scale"][-2] for ds in holder["multiscales"][0]["datasets"]] == pytest.approx([0.25, 0.5, 1.0])
    xml = (root / "OME" / "METADATA.ome.xml").read_text(encoding="utf-8")
    ome = from_xml(xml)
    assert ome.images[0].pixels.channels[1].name == "EGFP" and get_map(ome, 0) == [("Stain", "none")]
    assert file_hashes(root, skip=("zarr.json", ".zattrs", ".zgroup", ".zarray", "METADATA.ome.xml")) == pixels
    assert {k: v for k, v in file_hashes(root).items() if k.split("/")[-1] in (".zarray",)} == arrays_meta
    img = bioimnb.open_image(root)
    assert img.channel_names == ["DAPI", "EGFP"] and img.channel_colors[1] == "FF00FF"
    assert pytest.approx(0.5) == img.physical_size.X and pytest.approx(0.25) == img.physical_size.Y
    np.testing.assert_array_equal(img.levels[0].compute()[0], truth["image"][0])
    # a second load starts from the saved XML, and no temporary files are left behind
    assert load(root).ome.images[0].pixels.channels[1].name == "EGFP"
    assert not list(root.rglob(".bioimnb-*"))


def test_ome_zarr_on_s3(s3, tmp_path: Path) -> None:
    local = tmp_path / "remote.ome.zarr"
    fixtures.ngff_image(local, "0.5")
    bucket = s3.make_bucket("meta")
    s3.fs.put(str(local), f"{bucket}/remote.ome.zarr", recursive=True)
    url = f"s3://{bucket}/remote.ome.zarr"
    result = set_fields(url, ["channel[0].name=Hoechst 33342", "pixel_size_y=0.3"], **s3.storage_options)
    assert result.kind == "ome-zarr" and result.source == url
    fs = s3.fs
    fs.invalidate_cache()
    attrs = json.loads(fs.cat_file(f"{bucket}/remote.ome.zarr/zarr.json"))["attributes"]["ome"]
    assert attrs["omero"]["channels"][0]["label"] == "Hoechst 33342"
    assert attrs["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"][-2] == pytest.approx(0.3)
    ome = from_xml(fs.cat_file(f"{bucket}/remote.ome.zarr/OME/METADATA.ome.xml").decode("utf-8"))
    assert ome.images[0].pixels.channels[0].name == "Hoechst 33342"
    img = bioimnb.open_image(url, **s3.storage_options)
    assert img.channel_names[0] == "Hoechst 33342" and pytest.approx(0.3) == img.physical_size.Y
    assert load(url, **s3.storage_options).ome.images[0].pixels.physical_size_y == pytest.approx(0.3)


def test_plate_fields_edited_by_position(tmp_path: Path) -> None:
    root = tmp_path / "plate.ome.zarr"
    fixtures.ngff_plate(root, "0.4")
    doc = load(root)
    assert doc.kind == "ome-zarr" and doc.scene_paths == ["A/1/0", "A/1/1", "A/2/0", "A/2/1"]
    set_fields(root, ["image[2].pixel_size_x=2.5"])
    attrs = json.loads((root / "A" / "2" / "0" / ".zattrs").read_text())
    assert attrs["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"][-1] == pytest.approx(2.5)
    other = json.loads((root / "A" / "1" / "0" / ".zattrs").read_text())
    assert other["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"][-1] == pytest.approx(1.0)


# -- read-only formats: companion sidecar ------------------------------------------------------


def test_proprietary_format_edits_go_to_a_sidecar(shared_data: Path, tmp_path: Path) -> None:
    czi = tmp_path / "cells.czi"
    shutil.copy(shared_data / "czi" / "CellDivision_T3_Z5_CH2_X240_Y170_comp1.czi", czi)
    czi.chmod(0o444)
    before = hashlib.sha256(czi.read_bytes()).hexdigest()
    doc = load(czi)
    assert doc.kind == "sidecar" and doc.target == str(czi) + ".ome.xml"
    assert any("CZI files are not rewritten" in n and "cells.czi.ome.xml" in n for n in doc.notes)
    result = set_fields(czi, ["channel[1].name=H2B-GFP", "map.Treatment=none"])
    assert result.kind == "sidecar" and "companion file" in result.summary()
    assert hashlib.sha256(czi.read_bytes()).hexdigest() == before
    side = from_xml(Path(str(czi) + ".ome.xml").read_text(encoding="utf-8"))
    assert side.images[0].pixels.channels[1].name == "H2B-GFP" and get_map(side, 0) == [("Treatment", "none")]
    again = load(czi)
    assert again.ome.images[0].pixels.channels[1].name == "H2B-GFP"
    assert any("comes from the companion file" in n for n in again.notes)
    # the companion file is not mistaken for an image of its own
    from bioimnb.core.classify import classify

    assert classify(str(czi) + ".ome.xml").kind == "file"


def test_bioformats2raw_series_and_convert_with_edits(pyramid: Path, shared_data: Path, tmp_path: Path) -> None:
    """A multi-scene conversion (bioformats2raw layout): the second series' attributes and the
    OME-XML change together; a CZI's companion-file edits are carried into its conversion."""
    from bioimnb.core.curation.edit import convert_with_edits

    zarr_out = tmp_path / "series.ome.zarr"
    bioimnb.convert(pyramid, zarr_out, verify=False)
    doc = load(zarr_out)
    assert doc.kind == "ome-zarr" and len(doc.scene_paths) == 2 and doc.xml is not None
    set_fields(zarr_out, ["image[1].channel[0].name=Hoechst", "image[1].pixel_size_y=0.9"])
    series = doc.scene_paths[1]
    attrs = json.loads((zarr_out / series / "zarr.json").read_text())["attributes"]["ome"]
    assert [c["label"] for c in attrs["omero"]["channels"]] == ["Hoechst", "GFP"]
    assert attrs["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"][-2] == pytest.approx(0.9)
    first = json.loads((zarr_out / doc.scene_paths[0] / "zarr.json").read_text())["attributes"]["ome"]
    assert [c["label"] for c in first["omero"]["channels"]] == ["DAPI", "GFP"]
    ome = from_xml((zarr_out / "OME" / "METADATA.ome.xml").read_text(encoding="utf-8"))
    assert ome.images[1].pixels.channels[0].name == "Hoechst" and ome.images[0].pixels.channels[0].name == "DAPI"
    assert bioimnb.open_image(zarr_out, scene=1).channel_names == ["Hoechst", "GFP"]

    czi = tmp_path / "cells.czi"
    shutil.copy(shared_data / "czi" / "CellDivision_T3_Z5_CH2_X240_Y170_comp1.czi", czi)
    set_fields(czi, ["channel[1].name=H2B-GFP", "map.Treatment=none"])
    report, result = convert_with_edits(EditSession(czi), tmp_path / "cells.ome.tif")
    assert result.kind == "ome-tiff" and {c.field for c in result.changes} == {"images[0].pixels.channels[1].name", "images[0].map.Treatment"}
    out = from_tiff(tmp_path / "cells.ome.tif")
    assert out.images[0].pixels.channels[1].name == "H2B-GFP" and get_map(out, 0) == [("Treatment", "none")]


def test_remote_ome_tiff_edits_go_to_a_companion_object(s3, tmp_path: Path) -> None:
    local = tmp_path / "cells.ome.tif"
    tifffile.imwrite(local, np.zeros((2, 64, 64), np.uint16), ome=True, metadata={"axes": "CYX", "Channel": {"Name": ["a", "b"]}})
    bucket = s3.make_bucket("metaside")
    s3.fs.put(str(local), f"{bucket}/cells.ome.tif")
    url = f"s3://{bucket}/cells.ome.tif"
    doc = load(url, **s3.storage_options)
    assert doc.kind == "sidecar" and doc.target == url + ".ome.xml"
    assert any("remote OME-TIFFs are not rewritten in place" in n for n in doc.notes)
    set_fields(url, ["channel[0].name=DAPI"], **s3.storage_options)
    s3.fs.invalidate_cache()
    assert s3.fs.cat_file(f"{bucket}/cells.ome.tif") == local.read_bytes()
    side = from_xml(s3.fs.cat_file(f"{bucket}/cells.ome.tif.ome.xml").decode("utf-8"))
    assert side.images[0].pixels.channels[0].name == "DAPI"
    assert load(url, **s3.storage_options).ome.images[0].pixels.channels[0].name == "DAPI"


@pytest.mark.parametrize("companion", [False, True], ids=["master-tiff", "companion-ome"])
def test_multifile_set_member_edits_go_to_the_file_holding_the_xml(tmp_path: Path, companion: bool) -> None:
    made = fixtures.ome_tiff_multifile(tmp_path, companion=companion)
    member = Path(made["paths"][1])
    holder = Path(made["companion"]) if companion else Path(made["paths"][0])
    member_bytes = member.read_bytes()
    doc = load(member)
    assert doc.target == str(holder) and any(holder.name in n for n in doc.notes)
    result = set_fields(member, ["channel[0].name=renamed"])
    assert result.target == str(holder) and str(holder) in result.summary()
    assert member.read_bytes() == member_bytes  # the member's BinaryOnly block is untouched
    assert bioimnb.open_image(member).channel_names[0] == "renamed"
    text = holder.read_text(encoding="utf-8", errors="replace") if companion else tifffile.TiffFile(holder).ome_metadata
    assert 'Name="renamed"' in (text or "")


def test_ome_zarr_display_windows(tmp_path: Path, pyramid: Path) -> None:
    root = tmp_path / "win.ome.zarr"
    fixtures.ngff_image(root, "0.5")
    holder = json.loads((root / "zarr.json").read_text())["attributes"]["ome"]
    holder["omero"]["channels"][1]["window"] = {"start": 0, "end": 4000, "min": 0, "max": 65535}
    (root / "zarr.json").write_text(json.dumps({**json.loads((root / "zarr.json").read_text()), "attributes": {"ome": holder}}))
    s = EditSession(root)
    assert s.stored_windows()[(0, 1)] == (0.0, 4000.0)
    changes = s.set("channel[1].window=100,2500", "channel[0].name=Nuclei")
    assert {str(c) for c in changes} == {"images[0].pixels.channels[1].window: '0,4000' -> '100,2500'", "images[0].pixels.channels[0].name: 'DAPI' -> 'Nuclei'"}
    assert s.undo() and s.diff() == []
    s.set("channel[1].window=100:2500")
    s.save()
    saved = json.loads((root / "zarr.json").read_text())["attributes"]["ome"]["omero"]["channels"][1]["window"]
    assert (saved["start"], saved["end"]) == (100.0, 2500.0)
    assert any("window" in c for c in edit_history(from_xml((root / "OME" / "METADATA.ome.xml").read_text()))[-1]["changed"])
    for bad, reason in (("channel[1].window=5,1", "START must be below END"), ("channel[1].window=abc", "START,END"), ("channel[7].window=1,2", "no NGFF channel 7")):
        with pytest.raises(InvalidField) as err:
            s.set(bad)
        assert reason in str(err.value) and str(err.value).startswith("channel[")
    with pytest.raises(InvalidField) as err:
        EditSession(pyramid).set("channel[0].window=1,2")
    assert "OME-Zarr" in str(err.value)


def test_read_only_files_get_a_companion_file(pyramid: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file or store the user cannot write (tests run as root, who can write anything, so
    the permission answer is simulated): edits go to NAME.ome.xml, the image is untouched."""
    import bioimnb.core.curation.model as model

    root = tmp_path / "ro.ome.zarr"
    fixtures.ngff_image(root, "0.4")
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (pyramid,)}
    zattrs = (root / ".zattrs").read_bytes()
    real_access = os.access
    monkeypatch.setattr(model.os, "access", lambda path, mode: False if mode == os.W_OK else real_access(path, mode))
    for source in (pyramid, root):
        doc = load(source)
        assert doc.kind == "sidecar" and doc.target == f"{source}.ome.xml"
        assert f"{source.name} is read-only" in doc.notes[0]
        set_fields(source, ["channel[0].name=Hoechst"])
        assert from_xml(Path(f"{source}.ome.xml").read_text(encoding="utf-8")).images[0].pixels.channels[0].name == "Hoechst"
        assert load(source).ome.images[0].pixels.channels[0].name == "Hoechst"
    assert hashlib.sha256(pyramid.read_bytes()).hexdigest() == before[pyramid]
    assert (root / ".zattrs").read_bytes() == zattrs and not (root / "OME").exists()


def test_save_keeps_old_problems_and_refuses_new_ones(shared_data: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.ome.xml"
    bad.write_bytes((shared_data / "ome-xml" / "bad.ome.xml").read_bytes())
    set_fields(bad, ["name=still bad"])  # the invalid ID was there before: kept, not a reason to refuse
    assert any("InvalidName" in p for p in validate(bad).problems)
    set_fields(bad, ["images[0].pixels.channels[0].id=Channel:0:0"])  # ... and can be fixed
    assert not any("InvalidName" in p for p in validate(bad).problems)
    good = tmp_path / "multi.ome.xml"
    good.write_bytes((shared_data / "ome-xml" / "multi-channel-z-series-time-series.ome.xml").read_bytes())
    before = good.read_bytes()
    first_id = load(good).ome.images[0].pixels.channels[0].id
    with pytest.raises(CorruptFile) as err:
        set_fields(good, [f"images[0].pixels.channels[1].id={first_id}"])  # a duplicate ID: new problem
    assert "would not be valid OME-XML" in str(err.value) and "nothing was written" in str(err.value)
    assert good.read_bytes() == before


def test_http_sources_are_shown_but_not_saved(http_server, pyramid: Path) -> None:
    base = http_server(pyramid.parent)
    url = f"{base}/{pyramid.name}"
    doc = load(url)
    assert doc.ome.images[0].pixels.channels[1].name == "GFP"
    s = EditSession(url)
    s.set("channel[1].name=EGFP")
    with pytest.raises(BioimnbError) as err:
        s.save()
    assert "HTTP storage is read-only" in str(err.value) and str(err.value).startswith(url)
