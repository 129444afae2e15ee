"""convert(): round trips checked pixel for pixel at every level, by other tools' readers too."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

import bioimnb
from bioimnb.core.convert import convert
from bioimnb.core.errors import BioimnbError, CorruptFile


def mean2(a: np.ndarray) -> np.ndarray:
    """Independent 2x2 mean (round half up) with edge replication, over the last two axes."""
    pad = [(0, 0)] * (a.ndim - 2) + [(0, a.shape[-2] % 2), (0, a.shape[-1] % 2)]
    p = np.pad(a, pad, mode="edge").astype(np.uint64)
    s = p[..., ::2, ::2] + p[..., 1::2, ::2] + p[..., ::2, 1::2] + p[..., 1::2, 1::2]
    return ((s + 2) // 4).astype(a.dtype)


def expected_pyramid(level0: np.ndarray, n: int) -> list[np.ndarray]:
    out = [level0]
    for _ in range(1, n):
        out.append(mean2(out[-1]))
    return out


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("ngff", ["0.5", "0.4"])
def test_ome_tiff_to_ngff_every_level_and_other_readers(images, tmp_path, ngff):
    src, truth = images["ome_tiff"]
    before = sha(src)
    dest = tmp_path / f"out{ngff}.ome.zarr"
    report = convert(src, dest, ngff=ngff, chunks=128)
    assert sha(src) == before, "the source must never change"
    assert any("validation passed" in c for c in report.checks)
    assert any("checksums" in c for c in report.checks)
    out = bioimnb.open_image(dest)
    assert out.status().get("incomplete") is None
    assert out.scenes == ["scene-0", "scene-1"]
    for s in range(2):
        scene = out.select_scene(s)
        assert scene.channel_names == ["DAPI", "GFP"]
        assert pytest.approx(0.325) == scene.physical_size.X
        level0 = truth[s][0][None, :, None]  # TCZYX
        exp = expected_pyramid(level0, scene.n_levels)
        assert [lv.shape[-2:] for lv in exp][-1] == scene.level_shapes[-1][-2:]
        assert max(scene.level_shapes[-1][-2:]) <= 256
        for lv, e in zip(scene.levels, exp, strict=True):
            np.testing.assert_array_equal(lv.compute(), e)
    # Other tools read the same pixels: ome-zarr-py and bioio-ome-zarr.
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    series = dest / "1"
    nodes = list(Reader(parse_url(str(series)))())
    np.testing.assert_array_equal(np.asarray(nodes[0].data[1]), expected_pyramid(truth[1][0][None, :, None], 2)[1])
    from bioio import BioImage

    bio = BioImage(str(series), reader=__import__("bioio_ome_zarr").Reader)
    np.testing.assert_array_equal(bio.get_image_data("CYX", T=0, Z=0), truth[1][0])
    # The full source OME-XML travels along in the bioformats2raw layout.
    from ome_types import from_xml

    ome = from_xml((dest / "OME" / "METADATA.ome.xml").read_text())
    assert [i.name for i in ome.images] == ["scene-0", "scene-1"]
    prov = out.status()["provenance"]
    assert prov["source"] == str(src) and prov["size"] == src.stat().st_size and prov["tool"].startswith("bioimnb")


def test_single_scene_goes_to_root_with_omero_and_scale(images, tmp_path):
    src, truth = images["ngff04"]
    dest = tmp_path / "single.ome.zarr"
    convert(src, dest, chunks=64, shards=128, compression="blosc-lz4")
    root = zarr.open_group(str(dest), mode="r")
    ome = root.attrs["ome"]
    assert ome["version"] == "0.5"
    ms = ome["multiscales"][0]
    assert ms["datasets"][0]["coordinateTransformations"][0]["scale"] == [1.0, 1.0, 0.5, 0.25, 0.25]
    assert ms["datasets"][1]["coordinateTransformations"][0]["scale"] == [1.0, 1.0, 0.5, 0.5, 0.5]
    assert [c["label"] for c in ome["omero"]["channels"]] == ["DAPI", "GFP"]
    assert [c["color"] for c in ome["omero"]["channels"]] == ["0000FF", "00FF00"]
    window = ome["omero"]["channels"][0]["window"]
    assert 0 <= window["start"] < window["end"] <= 4000
    arr = root["0"]
    assert arr.chunks == (1, 1, 1, 64, 64) and arr.shards == (1, 1, 1, 128, 128)
    out = bioimnb.open_image(dest)
    np.testing.assert_array_equal(out.levels[0].compute()[0], truth["image"][0])


def test_labels_with_mode_downsampling(tmp_path):
    labels = np.zeros((1, 1, 1, 300, 300), np.uint16)
    labels[..., 10:150, 10:150] = 7
    labels[..., 151:290, 100:290] = 3
    src = tmp_path / "labels.tif"
    tifffile.imwrite(src, labels[0, 0, 0])
    dest = tmp_path / "labels.ome.zarr"
    convert(src, dest, downsample="mode", chunks=64)
    out = bioimnb.open_image(dest)
    assert set(np.unique(out.levels[1].compute())) <= {0, 3, 7}


def test_rgb_slide_to_ome_tiff_read_back_by_tifffile_and_bioio(images, tmp_path):
    src, truth = images["svs"]
    dest = tmp_path / "slide.ome.tif"
    report = convert(src, dest, chunks=256)
    assert report.format == "OME-TIFF"
    assert not (tmp_path / "slide.ome.tif.partial").exists()
    assert not (tmp_path / "slide.ome.tif.bioimnb-work.zarr").exists()
    with tifffile.TiffFile(dest) as tf:
        assert tf.is_ome and tf.pages[0].is_tiled
        levels = tf.series[0].levels
        assert len(levels) >= 3
        exp = expected_pyramid(truth[0].transpose(2, 0, 1), len(levels))
        for lv, e in zip(levels, exp, strict=True):
            np.testing.assert_array_equal(lv.asarray().reshape(e.shape), e)
        from ome_types import from_xml

        ome = from_xml(tf.ome_metadata, validate=True)
        # One RGB channel of 3 samples per pixel (what Fiji, OMERO and Bio-Formats expect).
        channels = ome.images[0].pixels.channels
        assert [(c.name, c.samples_per_pixel) for c in channels] == [("RGB", 3)]
        assert tf.pages[0].photometric == tifffile.PHOTOMETRIC.RGB
        assert ome.images[0].pixels.physical_size_x == pytest.approx(0.499)
        assert any(a.namespace.endswith("provenance") for a in ome.structured_annotations.map_annotations)
    from bioio import BioImage

    bio = BioImage(str(dest), reader=__import__("bioio_ome_tiff").Reader)
    np.testing.assert_array_equal(bio.get_image_data("YXS", T=0, C=0, Z=0), truth[0])


@pytest.mark.parametrize("name", ["S3_1Pos_2Mosaic_T1_Z1_CH1.czi", "CellDivision_T3_Z5_CH2_X240_Y170_comp1.czi", "DAPI_GFP.czi"])
def test_shared_czi_round_trip(shared_data, tmp_path, name):
    src = shared_data / "czi" / name
    dest = tmp_path / "czi.ome.zarr"
    convert(src, dest)
    a, b = bioimnb.open_image(src), bioimnb.open_image(dest)
    assert a.scenes == b.scenes
    for s in range(len(a.scenes)):
        np.testing.assert_array_equal(a.select_scene(s).levels[0].compute(), b.select_scene(s).levels[0].compute())


def test_shared_dv_to_ome_tiff(shared_data, tmp_path):
    src = shared_data / "dv" / "toxo.dv"
    dest = tmp_path / "toxo.ome.tif"
    convert(src, dest)
    a, b = bioimnb.open_image(src), bioimnb.open_image(dest)
    assert b.shape == a.shape and pytest.approx(0.3, rel=1e-4) == b.physical_size.Z
    np.testing.assert_array_equal(a.levels[0].compute(), b.levels[0].compute())


def test_refuses_overwrite_and_overlap(images, tmp_path):
    src = images["flat"][0]
    dest = tmp_path / "once.ome.zarr"
    convert(src, dest, levels=2)
    stamp = (dest / "zarr.json").stat().st_mtime_ns
    with pytest.raises(BioimnbError, match="destination exists"):
        convert(src, dest)
    assert (dest / "zarr.json").stat().st_mtime_ns == stamp
    convert(src, dest, overwrite=True, levels=3)
    assert bioimnb.open_image(dest).n_levels == 3
    with pytest.raises(BioimnbError, match="overlaps the source"):
        convert(images["ngff05"][0], images["ngff05"][0] / "inner.ome.zarr")
    with pytest.raises(BioimnbError, match="nothing to resume"):
        convert(src, dest, resume=True)


def test_bad_source_leaves_nothing(tmp_path):
    (tmp_path / "fake.tif").write_text("not an image at all")
    with pytest.raises(CorruptFile):
        convert(tmp_path / "fake.tif", tmp_path / "fake.ome.zarr")
    assert not (tmp_path / "fake.ome.zarr").exists()


def _convert_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "bioimnb", "convert", *args]


def test_kill_mid_way_then_resume_equals_uninterrupted(tmp_path):
    import fixtures

    src = tmp_path / "big.tif"
    fixtures.flat_tiff(src, shape=(6144, 6144), rowsperstrip=64)
    dest = tmp_path / "resumed.ome.zarr"
    journal = dest / ".bioimnb" / "journal"
    proc = subprocess.Popen(
        _convert_cmd(str(src), str(dest), "--chunks", "256", "--shards", "512", "--workers", "1", "--quiet"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.exists() and sum(1 for _ in journal.rglob("*-*")) >= 20:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the conversion finished before it could be interrupted"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    info = subprocess.run([sys.executable, "-m", "bioimnb", "info", str(dest), "--json"], capture_output=True, text=True)
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout).get("incomplete") is True
    text = subprocess.run([sys.executable, "-m", "bioimnb", "info", str(dest)], capture_output=True, text=True).stdout
    assert "incomplete" in text.lower() and "--resume" in text
    done = subprocess.run(_convert_cmd(str(src), str(dest), "--resume", "--json", "--quiet"), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["resumed_blocks"] >= 20 and report["written_blocks"] > 0
    reference = tmp_path / "straight.ome.zarr"
    convert(src, reference, chunks=256, shards=512)
    a, b = bioimnb.open_image(dest), bioimnb.open_image(reference)
    assert a.status().get("incomplete") is None
    assert a.level_shapes == b.level_shapes
    for la, lb in zip(a.levels, b.levels, strict=True):
        np.testing.assert_array_equal(la.compute(), lb.compute())


def test_cancel_event_marks_incomplete(images, tmp_path):
    import threading

    from bioimnb.core.convert import ConversionCancelled

    cancel = threading.Event()
    seen = []

    def progress(p):
        seen.append(p)
        if p.done >= 2:
            cancel.set()

    dest = tmp_path / "cancelled.ome.zarr"
    with pytest.raises(ConversionCancelled):
        convert(images["flat"][0], dest, chunks=256, shards=512, workers=1, progress=progress, cancel=cancel)
    assert bioimnb.open_image(dest).status()["incomplete"] is True
    assert seen[0].total > seen[-1].done
    report = convert(images["flat"][0], dest, resume=True)
    assert report.resumed_blocks >= 2
    np.testing.assert_array_equal(bioimnb.open_image(dest).levels[0].compute()[0, 0, 0], images["flat"][1])


def test_s3_output(s3, images, tmp_path):
    bucket = s3.make_bucket("convert")
    src, truth = images["ome_tiff"]
    url = f"s3://{bucket}/out.ome.zarr"
    report = convert(src, url, scenes=["scene-1"], dest_options=s3.storage_options, source_options={})
    assert any("validation passed" in c for c in report.checks)
    out = bioimnb.open_image(url, **s3.storage_options)
    assert out.scenes == ["scene-1"]
    np.testing.assert_array_equal(out.levels[1].compute()[0, :, 0], mean2(truth[1][0]))
    v2_url = f"s3://{bucket}/out04.ome.zarr"  # NGFF 0.4: one object per chunk, written by the workers
    report = convert(src, v2_url, ngff="0.4", scenes=[1], chunks=32, dest_options=s3.storage_options, source_options={})
    assert any("v04 validation passed" in c for c in report.checks)
    np.testing.assert_array_equal(bioimnb.open_image(v2_url, **s3.storage_options).levels[0].compute()[0, :, 0], truth[1][0])
    from bioimnb.core.convert.shards import ChunkFiles, block_codec
    from bioimnb.core.convert.stores import open_store
    from bioimnb.core.storage import resolve

    v2_array = zarr.open_array(open_store(v2_url, s3.storage_options, read_only=True), path="0", mode="r")
    assert isinstance(block_codec(v2_array, resolve(v2_url, **s3.storage_options)), ChunkFiles)
    tiff_url = f"s3://{bucket}/out.ome.tif"
    convert(src, tiff_url, scenes=[0], dest_options=s3.storage_options, source_options={})
    back = bioimnb.open_image(tiff_url, **s3.storage_options)
    np.testing.assert_array_equal(back.levels[0].compute()[0, :, 0], truth[0][0])


def test_dask_local_cluster(images, tmp_path):
    from distributed import LocalCluster

    src, truth = images["ngff05"]
    dest = tmp_path / "cluster.ome.zarr"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1") as cluster:
        report = convert(src, dest, scheduler=cluster.scheduler_address, chunks=64, shards=128)
    assert report.written_blocks > 0
    out = bioimnb.open_image(dest)
    np.testing.assert_array_equal(out.levels[0].compute()[0], truth["image"][0])
    np.testing.assert_array_equal(out.levels[1].compute()[0], mean2(truth["image"][0]))


def test_cli_flags_contract(images, tmp_path):
    src = images["ome_tiff"][0]
    dest = tmp_path / "flags.ome.zarr"
    proc = subprocess.run(
        _convert_cmd(
            str(src), str(dest), "--to", "ome-zarr", "--ngff", "0.4", "--scenes", "0", "--chunks", "128",
            "--compression", "zlib", "--compression-level", "4", "--downsample", "nearest", "--levels", "2",
            "--no-verify", "--json", "--quiet",
        ),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["checks"] == [] and report["scenes"][0]["levels"] == [[1, 2, 1, 600, 800], [1, 2, 1, 300, 400]]
    arr = zarr.open_group(str(dest), mode="r")["0"]
    assert arr.metadata.zarr_format == 2 and arr.chunks == (1, 1, 1, 128, 128)
    again = subprocess.run(_convert_cmd(str(src), str(dest)), capture_output=True, text=True)
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "destination exists" in again.stderr


@pytest.mark.parametrize("ngff", ["0.5", "0.4"])
def test_plate_source_becomes_ngff_plate(images, tmp_path, ngff):
    src, truth = images["plate"]
    dest = tmp_path / "plate.ome.zarr"
    report = convert(src, dest, ngff=ngff)
    assert any("HCS plate" in c for c in report.checks)
    root = zarr.open_group(str(dest), mode="r")
    attrs = root.attrs["ome"] if ngff == "0.5" else root.attrs.asdict()
    assert [w["path"] for w in attrs["plate"]["wells"]] == ["A/1", "A/2"]
    out = bioimnb.open_image(dest)
    assert out.format == "OME-Zarr plate"
    for name, data in truth.items():
        np.testing.assert_array_equal(out.select_scene(name).levels[0].compute()[0, :, 0], data)


def test_ome_tiff_describing_a_plate_becomes_ngff_plate(images, tmp_path):
    from ome_types import from_xml
    from ome_types.model import ImageRef, Plate, Well, WellSample

    src = tmp_path / "plate.ome.tif"
    src.write_bytes(images["ome_tiff"][0].read_bytes())
    with tifffile.TiffFile(src) as tf:
        ome = from_xml(tf.ome_metadata)
    ome.plates = [
        Plate(
            id="Plate:0",
            name="screen-1",
            wells=[
                Well(id=f"Well:{i}", row=1, column=i, well_samples=[WellSample(id=f"WellSample:{i}", index=i, image_ref=ImageRef(id=ome.images[i].id))])
                for i in range(2)
            ],
        )
    ]
    tifffile.tiffcomment(src, ome.to_xml().encode())
    dest = tmp_path / "screen.ome.zarr"
    convert(src, dest)
    out = bioimnb.open_image(dest)
    assert out.scenes == ["B/1/0", "B/2/0"]
    np.testing.assert_array_equal(out.select_scene("B/2/0").levels[0].compute()[0, :, 0], images["ome_tiff"][1][1][0])


def test_verification_mismatch_is_an_error_and_output_stays_incomplete(images, tmp_path, monkeypatch):
    """A block that reads back different from the source fails the conversion."""
    from bioimnb.core.convert import engine, work

    def corrupted(job, block):
        arr = work.open_dest_array(job.dest, job.dest_options, job.array_path)
        data = np.array(arr[block.t, block.c, block.z, block.y0 : block.y1, block.x0 : block.x1])
        if block.c == 1:
            data[0, 0] ^= 1  # one flipped bit, as a bad disk or a buggy codec would produce
        return block.key, work.block_digest(data)

    monkeypatch.setattr(engine, "verify_block", corrupted)
    dest = tmp_path / "bad.ome.zarr"
    with pytest.raises(CorruptFile, match="verification failed: 1 level-0 block"):
        convert(images["ome_tiff"][0], dest, scenes=[0])
    assert bioimnb.open_image(dest).status()["incomplete"] is True


def test_unknown_z_spacing_is_not_invented(tmp_path):
    """X/Y sizes known, Z unknown: the output says µm for X/Y only and reads back Z = None."""
    import tifffile

    src = tmp_path / "xy.ome.tif"
    tifffile.imwrite(src, np.arange(2 * 64 * 64, dtype=np.uint16).reshape(2, 64, 64), metadata={"axes": "ZYX", "PhysicalSizeX": 0.3, "PhysicalSizeY": 0.3})
    dest = tmp_path / "xy.ome.zarr"
    convert(src, dest, levels=2)
    axes = zarr.open_group(str(dest), mode="r").attrs["ome"]["multiscales"][0]["axes"]
    assert [a.get("unit") for a in axes[2:]] == [None, "micrometer", "micrometer"]
    size = bioimnb.open_image(dest).physical_size
    assert size.Z is None and size.X == size.Y == 0.3
