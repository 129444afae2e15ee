"""Resuming a conversion: a source replaced in place is refused; an unchanged one resumes and is
verified against pixels read from the source (not against the journal alone)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import tifffile

import bioimnb
from bioimnb.core.convert import ConversionCancelled, SourceChanged, convert
from bioimnb.core.errors import BioimnbError

SHAPE = (1024, 1024)
OPTS = {"chunks": 128, "shards": 256, "workers": 1}  # 16 level-0 blocks


def pixels(seed: int, shape: tuple[int, int] = SHAPE) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 60000, shape, dtype=np.uint16)


def write_source(path, data) -> None:
    """Uncompressed: the same shape always gives the same file size."""
    tifffile.imwrite(path, data, photometric="minisblack")


def interrupted(src, dest) -> int:
    """Convert until half of the level-0 blocks are done, then cancel; returns blocks done."""
    cancel = threading.Event()
    seen = []

    def progress(p):
        seen.append(p.done)
        if p.done >= 8:
            cancel.set()

    with pytest.raises(ConversionCancelled):
        convert(src, dest, progress=progress, cancel=cancel, **OPTS)
    assert bioimnb.open_image(dest).status()["incomplete"] is True
    return seen[-1]


def level0(dest) -> np.ndarray:
    return bioimnb.open_image(dest).levels[0].compute()[0, 0, 0]


def test_unchanged_source_resumes_and_verifies_against_the_source(tmp_path):
    src, dest = tmp_path / "a.tif", tmp_path / "a.ome.zarr"
    truth = pixels(1)
    write_source(src, truth)
    done = interrupted(src, dest)
    assert 8 <= done < 17
    report = convert(src, dest, resume=True)
    assert report.resumed_blocks >= 8 and report.written_blocks > 0
    check = next(c for c in report.checks if c.startswith("level-0 checksums"))
    assert "16 block(s) equal to the source" in check
    # every kept block is a level-0 block (the level-2 task comes after all of them)
    assert f"({report.resumed_blocks} written by the interrupted run re-read from the source)" in check
    np.testing.assert_array_equal(level0(dest), truth)
    assert bioimnb.open_image(dest).status().get("incomplete") is None


def test_source_replaced_in_place_is_refused_and_output_stays_incomplete(tmp_path):
    src, dest = tmp_path / "b.tif", tmp_path / "b.ome.zarr"
    write_source(src, pixels(2))
    interrupted(src, dest)
    before = {p: p.stat().st_mtime_ns for p in dest.rglob("*") if p.is_file() and ".bioimnb" not in p.parts}
    write_source(src, pixels(3))  # same shape and size, other pixels, new mtime
    with pytest.raises(SourceChanged) as info:
        convert(src, dest, resume=True)
    msg = str(info.value)
    assert msg.startswith(f"{src}: changed since the interrupted conversion") and "\n" not in msg
    assert "(b.tif changed (its modification stamp differs))" in msg, "the recorded identity must catch it first"
    assert bioimnb.open_image(dest).status()["incomplete"] is True
    after = {p: p.stat().st_mtime_ns for p in dest.rglob("*") if p.is_file() and ".bioimnb" not in p.parts}
    assert after == before, "a refused resume must not write anything"
    # the CLI says the same in one line, exit 2
    proc = subprocess.run([sys.executable, "-m", "bioimnb", "convert", str(src), str(dest), "--resume"], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "changed since the interrupted conversion" in proc.stderr
    # starting again is the way out, and gives the new pixels
    convert(src, dest, overwrite=True, **OPTS)
    np.testing.assert_array_equal(level0(dest), pixels(3))


def test_same_size_and_mtime_but_other_pixels_is_caught_by_rereading_blocks(tmp_path):
    """Identity can be fooled (size kept, mtime restored, same inode): the re-read sample is not."""
    src, dest = tmp_path / "c.tif", tmp_path / "c.ome.zarr"
    write_source(src, pixels(4))
    interrupted(src, dest)
    st = src.stat()
    write_source(src, pixels(5))
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (src.stat().st_size, src.stat().st_mtime_ns, src.stat().st_ino) == (st.st_size, st.st_mtime_ns, st.st_ino)
    with pytest.raises(SourceChanged, match="differs from what was written"):
        convert(src, dest, resume=True)
    assert bioimnb.open_image(dest).status()["incomplete"] is True


def test_a_changed_block_outside_the_sample_fails_verification(tmp_path, monkeypatch):
    """With no block sampled at resume, verification still re-reads every kept block from the
    source: one changed pixel in a kept block fails the run, and the output stays incomplete."""
    from bioimnb.core.convert import pipeline

    src, dest = tmp_path / "d.tif", tmp_path / "d.ome.zarr"
    data = pixels(6)
    write_source(src, data)
    interrupted(src, dest)
    kept = sorted((dest / ".bioimnb" / "journal" / "0" / "0").iterdir())
    t, c, z, y0, x0 = (int(v) for v in kept[0].name.split("-"))
    st = src.stat()
    data = data.copy()
    data[y0 + 5, x0 + 7] ^= 1
    write_source(src, data)
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
    monkeypatch.setattr(pipeline, "RESUME_SAMPLE", 0)
    with pytest.raises(BioimnbError, match="differs from what was written") as info:
        convert(src, dest, resume=True)
    assert f"block 0/0/{kept[0].name}" in str(info.value)
    assert bioimnb.open_image(dest).status()["incomplete"] is True


def test_ome_tiff_output_resume_checks_the_source_too(tmp_path):
    """OME-TIFF output resumes through its working pyramid (blocks of 2048 px): the same checks apply."""
    big = (4096, 4096)
    src, dest = tmp_path / "e.tif", tmp_path / "e.ome.tif"
    write_source(src, pixels(7, big))
    cancel = threading.Event()

    def progress(p):
        if p.done >= 2:
            cancel.set()

    with pytest.raises(ConversionCancelled):
        convert(src, dest, progress=progress, cancel=cancel, chunks=256, workers=1)
    assert not dest.exists()
    write_source(src, pixels(8, big))
    with pytest.raises(SourceChanged, match=r"\(e.tif changed \(its modification stamp differs\)\)"):
        convert(src, dest, resume=True)
    assert not dest.exists()
    write_source(src, pixels(7, big))  # the pixels the interrupted run read again, but a new mtime
    report = None
    with pytest.raises(SourceChanged):
        report = convert(src, dest, resume=True)
    assert report is None and not dest.exists()
    report = convert(src, dest, overwrite=True, chunks=256)
    assert report.format == "OME-TIFF"
    np.testing.assert_array_equal(tifffile.imread(dest, is_ome=False, key=0), pixels(7, big))


def test_remote_source_replaced_midway_is_refused(s3, tmp_path):
    """An object replaced on S3 (same size, new ETag) between the interrupted run and the resume."""
    import fsspec

    bucket = s3.make_bucket("resume")
    fs = fsspec.filesystem("s3", **s3.storage_options)
    local = tmp_path / "r.tif"
    write_source(local, pixels(9))
    fs.put_file(str(local), f"{bucket}/r.tif")
    url, dest = f"s3://{bucket}/r.tif", tmp_path / "r.ome.zarr"
    cancel = threading.Event()

    def progress(p):
        if p.done >= 8:
            cancel.set()

    with pytest.raises(ConversionCancelled):
        convert(url, dest, progress=progress, cancel=cancel, source_options=s3.storage_options, dest_options={}, **OPTS)
    write_source(local, pixels(10))
    fs.put_file(str(local), f"{bucket}/r.tif")
    with pytest.raises(SourceChanged, match=r"\(r.tif changed \(its modification stamp differs\)\)"):
        convert(url, dest, resume=True, source_options=s3.storage_options, dest_options={})
    assert bioimnb.open_image(dest).status()["incomplete"] is True


def test_a_replaced_source_is_reopened_by_the_next_conversion_in_the_same_process(tmp_path):
    """Worker processes keep opened sources between tasks; a source replaced on disk (new file,
    other layout and pixels) must not be read through the old handle by a later conversion."""
    src = tmp_path / "s.tif"
    tifffile.imwrite(src, pixels(11), tile=(128, 128), compression="zlib")
    convert(src, tmp_path / "one.ome.zarr", **OPTS)
    np.testing.assert_array_equal(level0(tmp_path / "one.ome.zarr"), pixels(11))
    tifffile.imwrite(tmp_path / "new.tif", pixels(12), photometric="minisblack")
    os.replace(tmp_path / "new.tif", src)
    convert(src, tmp_path / "two.ome.zarr", **OPTS)
    np.testing.assert_array_equal(level0(tmp_path / "two.ome.zarr"), pixels(12))


def test_an_in_memory_conversion_resumes_when_given_the_same_array(tmp_path):
    """An interrupted conversion of an array finishes with resume=True and the same array
    (verified against it); a different array of the same shape is refused, never mixed in."""
    dest = tmp_path / "mem.ome.zarr"
    truth = pixels(5)
    cancel = threading.Event()

    def progress(p):
        if p.done >= 8:
            cancel.set()

    with pytest.raises(ConversionCancelled):
        convert(truth, dest, axes="YX", progress=progress, cancel=cancel, **OPTS)
    assert bioimnb.open_image(dest).status()["incomplete"] is True
    other = pixels(6)
    with pytest.raises(SourceChanged) as info:
        convert(other, dest, axes="YX", resume=True)
    assert "refusing to mix two versions" in str(info.value)
    assert bioimnb.open_image(dest).status()["incomplete"] is True
    report = convert(truth, dest, axes="YX", resume=True)
    assert report.resumed_blocks >= 8 and report.written_blocks > 0
    np.testing.assert_array_equal(level0(dest), truth)
    assert bioimnb.open_image(dest).status().get("incomplete") is None
