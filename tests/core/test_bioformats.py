"""The Bio-Formats reader (issue 10): conformance on shared samples and generated fixtures,
cross-checks against the Python readers, OME-TIFF output read back by Bio-Formats, fixtures
written by Bio-Formats' own writers, the registry entries, and bad input as one line.

These tests need Java, JPype1 and the Bio-Formats jar.  They are skipped only when Java or the
jar is genuinely absent and ``BIOIMNB_REQUIRE_BIOFORMATS`` is not set (``make test`` sets it,
so CI fails instead of skipping).  Tests that check what happens *without* Java run anyway.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import fixtures  # noqa: E402
from conformance import ReaderTests  # noqa: E402

import bioimnb  # noqa: E402
from bioimnb.core import registry  # noqa: E402
from bioimnb.core.errors import BioimnbError, CorruptFile, PathEscapesRoot, UnsupportedFormat  # noqa: E402
from bioimnb.core.readers import bioformats as bf  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
RNG = np.random.default_rng(10)


@pytest.fixture(scope="module")
def jvm() -> None:
    """The JVM with Bio-Formats, or a skip (a failure under BIOIMNB_REQUIRE_BIOFORMATS)."""
    try:
        bf.start_jvm()
    except UnsupportedFormat as exc:
        if os.environ.get("BIOIMNB_REQUIRE_BIOFORMATS"):
            pytest.fail(f"Bio-Formats is required here but unavailable: {exc}")
        reason = str(exc)
        if "Java" not in reason and "jar" not in reason and "JPype" not in reason:
            raise
        pytest.skip(f"Bio-Formats unavailable (Java or the jar is missing): {reason}")


@pytest.fixture(scope="module")
def jar() -> str:
    """The Bio-Formats jar (for tests that simulate a missing or broken Java)."""
    found = bf.find_jar()
    if found is None:
        if os.environ.get("BIOIMNB_REQUIRE_BIOFORMATS"):
            pytest.fail(f"the Bio-Formats jar is required here but not installed ({bf.INSTALL_JAR})")
        pytest.skip(f"the Bio-Formats jar is not installed ({bf.INSTALL_JAR})")
    return found


def bfopen(source: Any, **kw: Any) -> bioimnb.MultiscaleImage:
    return bioimnb.open_image(source, reader="bioformats", **kw)


def run_cli(
    *args: str, env: dict[str, str] | None = None, code: str | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    full_env.pop("BIOIMNB_DEBUG", None)
    cmd = [sys.executable, "-c", code] if code else [sys.executable, "-m", "bioimnb.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=timeout, cwd=REPO)


# -- Bio-Formats' own writers: fixtures for formats no Python library writes -----------------------


def bf_write(path: Path, data: np.ndarray, writer: str, *, names: tuple[str, ...] = (), sizes: tuple[float, float, float] = (0.5, 0.5, 2.0)) -> None:
    """Write a TCZYX uint16 array with a Bio-Formats writer (``loci.formats.out.<writer>``)."""
    import jpype

    bf.start_jvm()
    mt = jpype.JClass("loci.formats.MetadataTools")
    units = jpype.JClass("ome.units.UNITS")
    length = jpype.JClass("ome.units.quantity.Length")
    t, c, z, y, x = data.shape
    meta = mt.createOMEXMLMetadata()
    mt.populateMetadata(meta, 0, path.stem, True, "XYZCT", "uint16", x, y, z, c, t, 1)
    meta.setPixelsPhysicalSizeX(length(sizes[0], units.MICROMETER), 0)
    meta.setPixelsPhysicalSizeY(length(sizes[1], units.MICROMETER), 0)
    meta.setPixelsPhysicalSizeZ(length(sizes[2], units.MICROMETER), 0)
    for i, name in enumerate(names):
        meta.setChannelName(name, 0, i)
    w = jpype.JClass(f"loci.formats.out.{writer}")()
    w.setMetadataRetrieve(meta)
    w.setId(str(path))
    try:
        index = 0
        for tt in range(t):  # XYZCT: Z fastest, then C, then T
            for cc in range(c):
                for zz in range(z):
                    plane = np.ascontiguousarray(data[tt, cc, zz].astype("<u2")).view(np.int8).ravel()
                    w.saveBytes(index, jpype.JArray(jpype.JByte)(plane))
                    index += 1
    finally:
        w.close()


@pytest.fixture(scope="module")
def ics(jvm: None, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A 2-file ICS (``.ics`` header + ``.ids`` pixels) written by Bio-Formats' ICSWriter."""
    d = tmp_path_factory.mktemp("ics")
    data = RNG.integers(0, 4000, (2, 2, 3, 40, 50), dtype=np.uint16)
    bf_write(d / "cells.ids", data, "ICSWriter")
    assert sorted(p.name for p in d.iterdir()) == ["cells.ics", "cells.ids"]
    return d / "cells.ics", data


# -- conformance ------------------------------------------------------------------------------------


class _BioFormatsReaderTests(ReaderTests):
    """ReaderTests with the reader chosen by name."""

    @pytest.fixture(autouse=True)
    def _jvm(self, jvm: None) -> None:
        pass

    def open(self, case: dict[str, Any], **kw: Any) -> bioimnb.MultiscaleImage:
        return bioimnb.open_image(case["source"], reader="bioformats", **kw, **case.get("options", {}))


class TestBioFormatsCzi(_BioFormatsReaderTests):
    @pytest.fixture
    def case(self, shared_data: Path) -> dict[str, Any]:
        return {"source": shared_data / "czi" / "DAPI_GFP.czi", "format": "Zeiss CZI", "scenes": 1}


class TestBioFormatsCziMosaic(_BioFormatsReaderTests):
    @pytest.fixture
    def case(self, shared_data: Path) -> dict[str, Any]:
        return {"source": shared_data / "czi" / "S3_1Pos_2Mosaic_T1_Z1_CH1.czi", "format": "Zeiss CZI", "scenes": 3, "physical_x": 1.6}


class TestBioFormatsDeltaVision(_BioFormatsReaderTests):
    @pytest.fixture
    def case(self, shared_data: Path) -> dict[str, Any]:
        return {"source": shared_data / "dv" / "toxo.dv", "format": "Deltavision", "scenes": 1, "physical_x": 0.13262000679969788}


class TestBioFormatsOmeTiffPyramid(_BioFormatsReaderTests):
    @pytest.fixture
    def case(self, images: dict) -> dict[str, Any]:
        path, truth = images["ome_tiff"]
        return {"source": path, "format": "OME-TIFF", "scenes": 2, "level0": truth[0][0][None, :, None], "physical_x": 0.325}


@pytest.fixture(scope="module")
def aperio(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("svs") / "aperio.svs"
    return path, fixtures.aperio_svs(path)


class TestBioFormatsSvs(_BioFormatsReaderTests):
    @pytest.fixture
    def case(self, aperio: tuple[Path, dict]) -> dict[str, Any]:
        path, truth = aperio
        return {"source": path, "format": "Aperio SVS", "scenes": 1, "level0": truth["levels"][0][None, None, None], "physical_x": 0.499}


def test_svs_label_and_macro_are_associated_images_not_scenes(jvm: None, aperio: tuple[Path, dict]) -> None:
    path, truth = aperio
    with bfopen(path) as img, bioimnb.open_image(path) as py:
        assert img.scenes == ["Image:0"] == py.scenes
        assert set(img.associated_images) == {"label", "macro"} <= set(py.associated_images)
        for name in ("label", "macro"):
            np.testing.assert_array_equal(img.associated(name), truth[name])
            np.testing.assert_array_equal(img.associated(name), py.associated(name))
        with pytest.raises(BioimnbError, match="no associated image 'nope'"):
            img.associated("nope")


class TestBioFormatsIcsByDefault(ReaderTests):
    """An ICS file (no Python reader) opens through the registry's pick: Bio-Formats."""

    @pytest.fixture
    def case(self, ics: tuple[Path, np.ndarray]) -> dict[str, Any]:
        path, data = ics
        return {"source": path, "format": "Image Cytometry Standard", "scenes": 1, "level0": data, "physical_x": 0.5}


@pytest.fixture(scope="module")
def dicom(jvm: None, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A DICOM written by Bio-Formats' DicomWriter, alone in its folder (Bio-Formats groups the
    DICOM files of a folder into one image)."""
    d = tmp_path_factory.mktemp("dicom")
    data = RNG.integers(0, 4000, (1, 2, 3, 40, 50), dtype=np.uint16)
    bf_write(d / "series.dcm", data, "DicomWriter", sizes=(0.4, 0.4, 1.0))
    return d / "series.dcm", data


class TestBioFormatsDicomByDefault(ReaderTests):
    @pytest.fixture
    def case(self, dicom: tuple[Path, np.ndarray]) -> dict[str, Any]:
        path, data = dicom
        return {"source": path, "format": "DICOM", "scenes": 1, "level0": data, "physical_x": 0.4}


# -- the registry ---------------------------------------------------------------------------------


def test_committed_format_list_is_the_jars(jvm: None) -> None:
    """bioformats_formats.json is what the installed jar says (regenerate with
    ``python -m bioimnb.core.readers.bioformats > bioimnb/core/readers/bioformats_formats.json``)."""
    committed = (REPO / "bioimnb" / "core" / "readers" / "bioformats_formats.json").read_text()
    assert committed == bf.format_list_json(bf.jar_formats())
    assert len(json.loads(committed)) >= 150


def test_registry_python_readers_keep_their_formats_bioformats_is_the_fallback() -> None:
    record = next(r for r in registry.readers() if r.name == "bioformats")
    assert record.priority < min(r.priority for r in registry.readers() if r.name != "bioformats")
    assert registry.readers()[-1].name == "bioformats"
    for name, fmt, reader in [
        ("a.czi", "CZI", "bioio-czi"),
        ("a.tif", "TIFF", "tifffile"),
        ("a.ome.tif", "OME-TIFF", "tifffile"),
        ("a.svs", "SVS", "tifffile"),
        ("a.nd2", "ND2", "bioio"),
        ("a.lif", "LIF", "bioio"),
        ("a.dv", "DeltaVision", "bioio"),
        ("a.png", "PNG", "bioio"),
        ("a.mrxs", "MRXS", "openslide"),
        ("a.oir", "Olympus OIR", "bioformats"),
        ("a.oib", "Olympus FV1000", "bioformats"),
        ("a.vsi", "CellSens VSI", "bioformats"),
        ("a.lof", "Leica Object Format", "bioformats"),
        ("a.ims", "Bitplane Imaris", "bioformats"),
        ("a.ics", "Image Cytometry Standard", "bioformats"),
        ("a.dcm", "DICOM", "bioformats"),
        ("a.nd", "Metamorph STK", "bioformats"),
        ("a.zvi", "Zeiss Vision Image (ZVI)", "bioformats"),
    ]:
        found = registry.format_for_name(name)
        assert found is not None and (found.name, found.reader) == (fmt, reader), name
    # Generic suffixes are no image format: a notes.txt or data.xml stays a plain file.
    # Companion pixel files are part of their header's image, not images of their own.
    for name in ("notes.txt", "data.xml", "table.csv", "run.log", "x.dat", "x.raw", "x.h5", "a.zip", "a.ids", "a.ets"):
        assert registry.format_for_name(name) is None, name
    names = [f.name for f in registry.formats()]
    assert len(names) == len(set(names))
    exts = [e for f in record.formats for e in f.extensions]
    assert len(exts) == len(set(exts)) and len(record.formats) >= 90


def test_lab_file_types_include_bioformats_formats() -> None:
    committed = json.loads((REPO / "labextension" / "src" / "filetypes.json").read_text())
    assert committed == registry.lab_file_types()
    assert any(ft["extensions"] == [".oir"] for ft in committed)


# -- cross-checks against the Python readers --------------------------------------------------------

# What the two readers are known to disagree on, asserted exactly (so a fix on either side shows):
KNOWN: dict[str, dict[str, Any]] = {
    # DeltaVision stores rows bottom-up; Bio-Formats (like softWoRx and Fiji) flips them, the
    # Python reader (bioio-dv) does not.  DV has no channel names: bioio-dv numbers them.
    "toxo.dv": {"flip_y": True, "channels": (["0", "1"], ["C0", "C1"])},
    # The CZI names its channels DAPI and GFP; bioio-czi's pyramid path reports C0, C1.
    "DAPI_GFP.czi": {"channels": (["C0", "C1"], ["DAPI", "GFP"])},
    # Overlapping mosaic tiles are composited in a different order (libCZI vs Bio-Formats): up to
    # 2 % of a scene's pixels differ, all of them in tile overlaps.
    "S3_1Pos_2Mosaic_T1_Z1_CH1.czi": {"mosaic": 0.03},
}


def _shared_samples() -> list[str]:
    base = REPO.parent / "shared" / "data"
    return [f"{d}/{p.name}" for d in ("czi", "dv", "ome-tiff") for p in sorted((base / d).glob("*")) if p.is_file()]


def _compare(src: Path, known: dict[str, Any]) -> None:
    with bioimnb.open_image(src) as py, bfopen(src) as bfi:
        assert py.reader != "bioformats" and bfi.reader == "bioformats"
        # Scene names follow each library's conventions (an OME Image ID, a CZI scene or well
        # name); the count and order of scenes must agree.
        assert len(py.scenes) == len(bfi.scenes)
        for s in range(len(py.scenes)):
            a, b = py.select_scene(s), bfi.select_scene(s)
            assert (a.shape, a.dtype, a.axes) == (b.shape, b.dtype, b.axes), s
            for axis in "XYZ":
                pa, pb = getattr(a.physical_size, axis), getattr(b.physical_size, axis)
                if known.get("unitless_resolution") and axis in "XY":
                    assert (pa, pb) == (None, 1.0)
                    continue
                assert (pa is None) == (pb is None) and (pa is None or pb == pytest.approx(pa, rel=1e-6)), (s, axis)
            if "channels" in known:
                assert (a.channel_names, b.channel_names) == known["channels"]
            else:
                assert a.channel_names == b.channel_names
            pa0, pb0 = a.read(0), b.read(0)
            if known.get("flip_y"):
                assert not np.array_equal(pa0, pb0)
                pb0 = pb0[..., ::-1, :]
            if "mosaic" in known:
                differ = np.count_nonzero(pa0 != pb0) / pa0.size
                assert differ <= known["mosaic"], (s, differ)
            else:
                np.testing.assert_array_equal(pa0, pb0)


@pytest.mark.parametrize("sample", _shared_samples())
def test_shared_sample_python_reader_and_bioformats_agree(jvm: None, shared_data: Path, sample: str) -> None:
    _compare(shared_data / sample, KNOWN.get(Path(sample).name, {}))


def _ome_tiff_czt(path: Path) -> np.ndarray:
    data = RNG.integers(0, 60000, (3, 2, 4, 70, 90), dtype=np.uint16)
    tifffile.imwrite(
        path,
        data,
        metadata={
            "axes": "TCZYX",
            "PhysicalSizeX": 0.25,
            "PhysicalSizeY": 0.3,
            "PhysicalSizeZ": 1.5,
            "Channel": {"Name": ["DAPI", "Actin"]},
        },
    )
    return data


def _rgb_tiff(path: Path) -> np.ndarray:
    data = RNG.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    tifffile.imwrite(path, data, photometric="rgb", tile=(64, 64))
    return data


def _float_tiff(path: Path) -> np.ndarray:
    data = RNG.random((2, 50, 60)).astype(np.float32)
    tifffile.imwrite(path, data, metadata={"axes": "CYX", "PhysicalSizeX": 0.1, "PhysicalSizeY": 0.1})
    return data


@pytest.mark.parametrize(
    "kind", ["ome_tiff_pyramid", "svs", "flat", "ome_tiff_czt", "rgb_tiff", "float_ome_tiff", "imagej"]
)
def test_generated_fixture_python_reader_and_bioformats_agree(
    jvm: None, images: dict, aperio: tuple[Path, dict], tmp_path: Path, kind: str
) -> None:
    makers = {"ome_tiff_czt": ("czt.ome.tif", _ome_tiff_czt), "rgb_tiff": ("rgb.tif", _rgb_tiff), "float_ome_tiff": ("f.ome.tif", _float_tiff)}
    if kind in makers:
        name, make = makers[kind]
        make(tmp_path / name)
        path = tmp_path / name
    elif kind == "svs":
        path = aperio[0]
    else:
        path = images[{"ome_tiff_pyramid": "ome_tiff", "flat": "flat", "imagej": "imagej"}[kind]][0]
    # A plain TIFF whose resolution tags carry no unit (tifffile's default 1/1, unit NONE) has
    # no physical size for the Python reader; Bio-Formats reports 1 µm.
    _compare(path, {"unitless_resolution": True} if kind in ("flat", "rgb_tiff") else {})


# -- interoperability: every kind of OME-TIFF bioimnb convert writes, read by Bio-Formats ------


def _check_ome_tiff_output(src: Any, out: Path, *, scenes: int) -> None:
    """The OME-TIFF that convert wrote: Bio-Formats sees the same scenes, sizes, physical sizes,
    channel names, resolution levels and pixels (every level) as bioimnb, and its OME-XML
    validates against the OME 2016-06 schema."""
    from ome_types import from_xml

    xml = tifffile.TiffFile(out).ome_metadata
    assert xml and "2016-06" in xml
    from_xml(xml, validate=True)
    with bioimnb.open_image(src) as s0, bioimnb.open_image(out) as ours, bfopen(out) as theirs:
        assert theirs.format == "OME-TIFF"
        assert len(ours.scenes) == len(theirs.scenes) == scenes
        for i in range(scenes):
            a, b, s = ours.select_scene(i), theirs.select_scene(i), s0.select_scene(i)

            assert a.level_shapes == b.level_shapes and not b.virtual_pyramid
            assert s.shape == b.shape and b.dtype == s.dtype
            assert b.channel_names == a.channel_names == s.channel_names
            for axis in "XYZ":
                pa, pb = getattr(s.physical_size, axis), getattr(b.physical_size, axis)
                assert (pa is None) == (pb is None) and (pa is None or pb == pytest.approx(pa, rel=1e-6)), axis
            np.testing.assert_array_equal(b.read(0), s.read(0))
            for level in range(len(a.levels)):
                np.testing.assert_array_equal(b.read(level), a.read(level))


@pytest.mark.parametrize("kind", ["single", "czt_stack", "time_series", "multi_scene", "rgb", "plate"])
def test_convert_ome_tiff_output_opens_in_bioformats(jvm: None, images: dict, tmp_path: Path, kind: str) -> None:
    if kind == "single":
        src: Any = tmp_path / "single.tif"
        tifffile.imwrite(src, RNG.integers(0, 60000, (700, 900), dtype=np.uint16), metadata={"axes": "YX"})
        scenes = 1
    elif kind == "czt_stack":
        src = tmp_path / "czt.ome.tif"
        _ome_tiff_czt(src)
        scenes = 1
    elif kind == "time_series":
        src = tmp_path / "ts.ome.tif"
        tifffile.imwrite(
            src,
            RNG.integers(0, 255, (5, 300, 400), dtype=np.uint8),
            metadata={"axes": "TYX", "PhysicalSizeX": 0.65, "PhysicalSizeY": 0.65},
        )
        scenes = 1
    elif kind == "multi_scene":
        src, scenes = images["ome_tiff"][0], 2
    elif kind == "rgb":
        src, scenes = images["svs"][0], 1
    else:
        src = images["plate"][0]
        with bioimnb.open_image(src) as p:
            scenes = len(p.scenes)
    out = tmp_path / f"{kind}.ome.tif"
    bioimnb.convert(src, out, to="ome-tiff", chunks=256)
    # RGB output is one channel of 3 samples per pixel, as Bio-Formats, Fiji and OMERO expect.
    _check_ome_tiff_output(src, out, scenes=scenes)


def test_rgb_ome_tiff_output_is_one_rgb_channel_in_bioformats(jvm: None, images: dict, tmp_path: Path) -> None:
    out = tmp_path / "rgb.ome.tif"
    bioimnb.convert(images["svs"][0], out, to="ome-tiff", chunks=256)
    with bfopen(out) as img:
        assert img.axes == "TCZYXS" and img.shape[1] == 1


# -- fixtures written by Bio-Formats' own writers ---------------------------------------------------


def test_ics_written_by_bioformats_opens_through_open_image(ics: tuple[Path, np.ndarray]) -> None:
    path, data = ics
    with bioimnb.open_image(path) as img:
        assert (img.reader, img.format) == ("bioformats", "Image Cytometry Standard")
        assert img.shape == data.shape and img.dtype == np.uint16
        assert (img.physical_size.X, img.physical_size.Y, img.physical_size.Z) == (0.5, 0.5, 2.0)
        np.testing.assert_array_equal(img.read(0), data)
        assert sorted(Path(f).name for f in img.files) == ["cells.ics", "cells.ids"]
        # Tile-wise region reads match the array.
        np.testing.assert_array_equal(img.read(0, t=1, c=0, z=2, y=slice(5, 33), x=slice(7, 41)), data[1, 0, 2, 5:33, 7:41])
    # The .ids (a companion, not an image of its own in listings) names the same image.
    with bfopen(path.with_suffix(".ids")) as img:
        np.testing.assert_array_equal(img.read(0), data)


def test_dicom_written_by_bioformats_opens_through_open_image(dicom: tuple[Path, np.ndarray]) -> None:
    path, data = dicom
    with bioimnb.open_image(path) as img:
        assert (img.reader, img.format) == ("bioformats", "DICOM")
        assert img.shape == data.shape
        assert pytest.approx((0.4, 0.4)) == (img.physical_size.X, img.physical_size.Y)
        np.testing.assert_array_equal(img.read(0), data)


def test_ome_model_has_the_vendor_metadata_as_a_map_annotation(jvm: None, shared_data: Path) -> None:
    with bfopen(shared_data / "czi" / "DAPI_GFP.czi") as img:
        ome = img.ome
        assert [c.name for c in ome.images[0].pixels.channels] == ["DAPI", "GFP"]
        assert ome.structured_annotations is not None
        maps = [a for a in ome.structured_annotations.map_annotations if a.namespace == "openmicroscopy.org/OriginalMetadata"]
        assert len(maps) == 1 and len(maps[0].value.ms) > 40
        assert maps[0].value.ms[0].k and any(m.k == "Information|Application|Name" for m in maps[0].value.ms)
        xml = img.ome_xml
        assert xml is not None and "2016-06" in xml


# -- threads, pools, limits -------------------------------------------------------------------------


def test_concurrent_reads_equal_serial_reads_and_close_closes_every_reader(jvm: None, images: dict) -> None:
    path, truth = images["ome_tiff"]
    img = bfopen(path)
    backend = img._backend
    expected = truth[0][0]
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for j in range(6):
                y0, x0 = (k * 37 + j * 11) % 300, (k * 53 + j * 7) % 300
                got = img.read(0, t=0, z=0, y=slice(y0, y0 + 200), x=slice(x0, x0 + 180))
                np.testing.assert_array_equal(got, expected[:, y0 : y0 + 200, x0 : x0 + 180])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    pool = backend.pool
    assert 1 <= len(pool.all) <= bf.POOL_SIZE
    img.close()
    assert pool.closed
    with pytest.raises(BioimnbError, match="closed"):
        img.read(0, t=0, z=0, y=slice(0, 10), x=slice(0, 10))


def test_reads_are_split_to_fit_the_decode_limit(jvm: None, images: dict) -> None:
    from bioimnb.core.limits import configure, limits

    path, truth = images["ome_tiff"]
    before = limits().max_decode_bytes
    calls: list[tuple[int, int]] = []
    with bfopen(path) as img:
        level = img._data.levels[0].native
        original = level._open_bytes

        def spy(reader: Any, no: int, ya: int, yb: int, xa: int, xb: int) -> np.ndarray:
            calls.append((yb - ya, xb - xa))
            return original(reader, no, ya, yb, xa, xb)

        level._open_bytes = spy
        configure(max_decode_bytes=4096)
        try:
            got = img.read(0, t=0, c=1, z=0, y=slice(0, 100), x=slice(0, 300))
        finally:
            configure(max_decode_bytes=before)
        np.testing.assert_array_equal(got, truth[0][0][1, :100, :300])
    item = np.dtype(truth[0][0].dtype).itemsize
    assert len(calls) > 1 and all(h * w * item <= 4096 for h, w in calls)


# -- bad input, confinement ---------------------------------------------------------------------------


def _one_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "java.lang" not in proc.stderr and "\tat " not in proc.stderr and "Traceback" not in proc.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("name", "content", "expect"),
    [
        ("garbage.oir", bytes(RNG.integers(0, 255, 3000, dtype=np.uint8)), "Bio-Formats cannot read this file"),
        ("truncated.ics", b"\t\nics_version\t2.0\nfilename\ttruncated\nlayout\tsizes\t16 400 400\n", "Bio-Formats"),
        ("text.dcm", b"hello, not DICOM\n" * 20, "Bio-Formats"),
    ],
)
def test_a_file_bioformats_cannot_parse_is_one_line_exit_2(jvm: None, tmp_path: Path, name: str, content: bytes, expect: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    line = _one_line(run_cli("info", str(path)))
    assert line.startswith(f"bioimnb: error: {path}: ") and expect in line
    with pytest.raises(BioimnbError) as info:
        bioimnb.open_image(path)
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)


def test_corrupt_vendor_file_chosen_by_name_is_one_line(jvm: None, tmp_path: Path, shared_data: Path) -> None:
    src = (shared_data / "czi" / "DAPI_GFP.czi").read_bytes()
    path = tmp_path / "cut.czi"
    path.write_bytes(src[:3000])
    line = _one_line(run_cli("info", str(path), "--reader", "bioformats"))
    assert line.startswith(f"bioimnb: error: {path}: Bio-Formats cannot read this file")


def test_missing_jar_is_one_line_and_other_readers_keep_working(images: dict, tmp_path: Path) -> None:
    oir = tmp_path / "a.oir"
    oir.write_bytes(b"\0" * 100)
    env = {"BIOIMNB_BIOFORMATS_JAR": str(tmp_path / "missing.jar")}
    line = _one_line(run_cli("info", str(oir), env=env))
    assert bf.INSTALL_JAR in line and str(oir) in line
    proc = run_cli("info", str(images["ome_tiff"][0]), "--json", env=env)
    assert proc.returncode == 0 and json.loads(proc.stdout)["format"] == "OME-TIFF"


def test_jvm_that_fails_to_start_is_one_line(jar: str, tmp_path: Path) -> None:
    oir = tmp_path / "a.oir"
    oir.write_bytes(b"\0" * 100)
    line = _one_line(run_cli("info", str(oir), env={"BIOIMNB_JVM_PATH": str(tmp_path / "libjvm.so")}))
    assert "Java VM did not start" in line and bf.INSTALL_JAVA in line


def test_missing_java_is_one_line(jar: str, tmp_path: Path) -> None:
    """No JVM found (JPype's search made to fail): the install command for Debian's JRE."""
    oir = tmp_path / "a.oir"
    oir.write_bytes(b"\0" * 100)
    code = (
        "import jpype, sys\n"
        "def nojvm(*a, **k):\n    raise jpype.JVMNotFoundException('No JVM shared library file (libjvm.so) found')\n"
        "jpype.getDefaultJVMPath = nojvm\n"
        "from bioimnb.cli import main\n"
        f"sys.exit(main(['info', {str(oir)!r}]))\n"
    )
    line = _one_line(run_cli(code=code))
    assert "needs Java" in line and bf.INSTALL_JAVA in line


def test_info_on_ome_tiff_and_ome_zarr_starts_no_jvm(images: dict) -> None:
    code = (
        "import sys\nfrom bioimnb.cli import main\n"
        f"assert main(['info', {str(images['ome_tiff'][0])!r}]) == 0\n"
        f"assert main(['info', {str(images['ngff05'][0])!r}]) == 0\n"
        "assert 'jpype' not in sys.modules, 'jpype imported'\n"
        "assert 'bioimnb.core.readers.bioformats' not in sys.modules\n"
        "print('NOJVM')\n"
    )
    proc = run_cli(code=code)
    assert proc.returncode == 0 and "NOJVM" in proc.stdout, proc.stderr


def test_a_folder_is_refused_in_one_line(images: dict) -> None:
    with pytest.raises(UnsupportedFormat, match="Bio-Formats reads files, not folders"):
        bfopen(images["ngff05"][0])


def test_remote_sources_are_refused_in_one_line(jvm: None) -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe("/bf/a.oir", b"\0" * 100)
    with pytest.raises(UnsupportedFormat, match="Bio-Formats reads local files only"):
        bioimnb.open_image("memory://bf/a.oir")


def test_a_companion_outside_the_root_is_refused(ics: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    """An ICS header inside the root whose .ids pixel file is a link to a canary outside."""
    path, data = ics
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    canary = outside / "secret.ids"
    canary.write_bytes(path.with_suffix(".ids").read_bytes())
    (root / "x.ics").write_bytes(path.read_bytes().replace(b"cells", b"x"))
    (root / "x.ids").symlink_to(canary)
    with pytest.raises(PathEscapesRoot, match="outside the root"):
        bioimnb.open_image(root / "x.ics", root=root)
    # Without a root it is an ordinary image.
    with bioimnb.open_image(root / "x.ics") as img:
        np.testing.assert_array_equal(img.read(0), data)


def test_a_companion_fifo_is_refused_without_blocking(ics: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    """An ICS header whose .ids pixel file is a FIFO: refused before Java could block on it."""
    path, _ = ics
    (tmp_path / "x.ics").write_bytes(path.read_bytes().replace(b"cells", b"x"))
    os.mkfifo(tmp_path / "x.ids")
    line = _one_line(run_cli("info", str(tmp_path / "x.ics"), timeout=60))
    assert "'x.ids', which is not a regular file" in line


def test_a_fifo_is_refused_without_blocking(jvm: None, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.oir"
    os.mkfifo(fifo)
    with pytest.raises(CorruptFile):
        bioimnb.open_image(fifo, root=tmp_path)
    with pytest.raises(BioimnbError):
        bioimnb.open_image(fifo, reader="bioformats")


# -- the command line ----------------------------------------------------------------------------------


def test_cli_formats_lists_every_format_and_its_reader() -> None:
    proc = run_cli("formats", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data == {"readers": [r.to_dict() for r in registry.readers()]}
    by_reader = {r["name"]: {f["name"] for f in r["formats"]} for r in data["readers"]}
    assert {"CZI"} <= by_reader["bioio-czi"] and {"Olympus OIR", "DICOM", "Image Cytometry Standard"} <= by_reader["bioformats"]
    text = run_cli("formats")
    assert text.returncode == 0
    rows = [line.split() for line in text.stdout.splitlines()]
    assert any(r[:2] == ["CZI", ".czi"] and r[-1] == "bioio-czi" for r in rows)
    assert any(r[:3] == ["Olympus", "OIR", ".oir"] and r[-1] == "bioformats" for r in rows)
    assert sum(len(r["formats"]) for r in data["readers"]) == len(text.stdout.splitlines()) - 1


def test_cli_info_reader_bioformats(jvm: None, shared_data: Path) -> None:
    src = shared_data / "czi" / "DAPI_GFP.czi"
    proc = run_cli("info", str(src), "--reader", "bioformats", "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert (info["reader"], info["format"]) == ("bioformats", "Zeiss CZI")
    assert info["scenes"][0]["shape"] == [1, 2, 1, 640, 640]
    default = json.loads(run_cli("info", str(src), "--json").stdout)
    assert default["reader"] != "bioformats"


# -- everywhere the other readers work: convert, scan ------------------------------------------------


@pytest.mark.parametrize("to", ["ome-zarr", "ome-tiff"])
def test_convert_a_bioformats_format(ics: tuple[Path, np.ndarray], tmp_path: Path, to: str) -> None:
    """An ICS (read only by Bio-Formats) converts to OME-Zarr and OME-TIFF, verified, pixels equal."""
    path, data = ics
    out = tmp_path / ("cells.ome.zarr" if to == "ome-zarr" else "cells.ome.tif")
    bioimnb.convert(path, out, to=to, chunks=32)
    with bioimnb.open_image(out) as img:
        assert img.reader != "bioformats"
        assert img.shape == data.shape and (img.physical_size.X, img.physical_size.Z) == (0.5, 2.0)
        np.testing.assert_array_equal(img.read(0), data)


def test_scan_reports_a_bioformats_image_and_a_corrupt_one(ics: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    path, data = ics
    folder = tmp_path / "tree"
    folder.mkdir()
    for suffix in (".ics", ".ids"):
        (folder / f"cells{suffix}").write_bytes(path.with_suffix(suffix).read_bytes())
    (folder / "broken.oir").write_bytes(b"\x01\x02" * 500)
    (folder / "notes.txt").write_text("hello")
    facts = {Path(f.to_dict()["path"]).name: f.to_dict() for f in bioimnb.scan(folder, cache=False)}
    assert facts["cells.ics"]["kind"] == "image" and facts["cells.ics"]["error"] is None
    assert facts["cells.ics"]["reader"] == "bioformats" and facts["cells.ics"]["scenes"][0]["shape"] == list(data.shape)
    assert facts["cells.ids"]["kind"] == "file"  # the header's pixel file: one image, not two
    broken = facts["broken.oir"]
    assert broken["kind"] == "image" and "Bio-Formats" in broken["error"] and "\n" not in broken["error"]
    assert facts["notes.txt"]["kind"] == "file"
    # The CLI's scan opens images on worker threads that call into Java; the process still exits.
    proc = run_cli("scan", str(folder), "--no-cache", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1])["summary"]


def test_viewer_tiles_of_a_bioformats_image(ics: tuple[Path, np.ndarray]) -> None:
    """The tile renderer behind the widget and the document viewer, on an image only Bio-Formats
    reads: raw tiles of level 0 put together are the image; RGBA tiles render; info works."""
    from bioimnb.core.tiles import TileRenderer

    path, data = ics
    with bioimnb.open_image(path) as img:
        r = TileRenderer(img, tile_size=16)
        cols, rows = -(-data.shape[4] // 16), -(-data.shape[3] // 16)
        whole = np.zeros(data.shape[3:], dtype=data.dtype)
        for ty in range(rows):
            for tx in range(cols):
                y0, y1, x0, x1 = r.tile_bounds(0, 0, tx, ty)
                (tile,) = r.raw_tile(0, 0, t=1, z=2, tx=tx, ty=ty, channels=[1])
                whole[y0:y1, x0:x1] = tile
        np.testing.assert_array_equal(whole, data[1, 1, 2])
        view = r.default_view(0)
        png = r.render(0, 0, 0, 0, 0, 0, view.channels)
        assert png.startswith(b"\x89PNG")
        assert r.info(0)["format"] == "Image Cytometry Standard"


def test_a_100k_image_reads_only_the_region_asked_for(jvm: None, tmp_path: Path) -> None:
    """Bio-Formats' simulated 100k x 100k image (a ``.fake`` file names its size): a 512 x 512
    read asks Bio-Formats for exactly that region; the coarsest (virtual) level reads only its
    sampled rows, one row each, never a full-resolution band."""
    path = tmp_path / "big&sizeX=100000&sizeY=100000&pixelType=uint8.fake"
    path.write_text("[GlobalMetadata]\n")
    with bfopen(path) as img:
        assert img.shape == (1, 1, 1, 100000, 100000) and img.virtual_pyramid
        level = img._data.levels[0].native
        calls: list[tuple[int, int, int, int]] = []
        original = level._open_bytes

        def spy(reader: Any, no: int, ya: int, yb: int, xa: int, xb: int) -> np.ndarray:
            calls.append((ya, yb, xa, xb))
            return original(reader, no, ya, yb, xa, xb)

        level._open_bytes = spy
        tile = img.read(0, t=0, c=0, z=0, y=slice(51200, 51712), x=slice(70000, 70512))
        assert tile.shape == (512, 512) and calls == [(51200, 51712, 70000, 70512)]
        calls.clear()
        coarse = img.read(len(img.levels) - 1)
        rows = coarse.shape[3]
        assert len(calls) == rows and all(yb - ya == 1 for ya, yb, _, _ in calls)


def test_levels_pickle_for_dask_workers(ics: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    """convert(..., scheduler=...) ships levels to worker processes: a level unpickled in a fresh
    process reopens the file there (same root) and reads the same pixels."""
    import pickle

    path, data = ics
    with bioimnb.open_image(path, root=path.parent) as img:
        blob = tmp_path / "level.pickle"
        blob.write_bytes(pickle.dumps(img._data.levels[0].native))
    code = (
        "import pickle, sys, numpy as np\n"
        f"level = pickle.loads(open({str(blob)!r}, 'rb').read())\n"
        "arr = level[1, 0, 2, 5:30, 7:40]\n"
        "assert level.backend.res.root is not None\n"
        "np.save(sys.stdout.buffer, arr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    import io

    np.testing.assert_array_equal(np.load(io.BytesIO(proc.stdout)), data[1, 0, 2, 5:30, 7:40])


def test_convert_on_a_dask_cluster(ics: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    """A Bio-Formats image converts on a local dask cluster of worker processes (each opens the
    file in its own JVM)."""
    from distributed import LocalCluster

    path, data = ics
    dest = tmp_path / "cluster.ome.zarr"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1") as cluster:
        report = bioimnb.convert(path, dest, scheduler=cluster.scheduler_address, chunks=16)
    assert report.written_blocks > 0
    with bioimnb.open_image(dest) as out:
        np.testing.assert_array_equal(out.read(0), data)


@pytest.mark.parametrize("sample", _shared_samples())
def test_bioformats_ome_xml_of_shared_samples_validates(jvm: None, shared_data: Path, sample: str) -> None:
    """The OME-XML Bio-Formats produces validates against the OME 2016-06 schema, except where
    Bio-Formats 7.3.1 itself writes an invalid ID (asserted exactly, so a fix shows)."""
    from ome_types import from_xml

    with bfopen(shared_data / sample) as img:
        xml = img.ome_xml
        assert xml is not None and "2016-06" in xml
        if Path(sample).name == "WellD6_S1.czi":
            with pytest.raises(Exception, match="Beamsplitter.2076-903"):  # Dichroic ID not 'Dichroic:...'
                from_xml(xml, validate=True)
            with pytest.warns(UserWarning, match="Casting invalid DichroicID"):
                assert img.ome.images  # the model is still built (ome-types repairs the ID)
        else:
            from_xml(xml, validate=True)
