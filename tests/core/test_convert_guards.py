"""What convert refuses before any work, and how a failed write ends: destination types it does
not write, folders it cannot create or write, destinations overlapping the source's file set,
a disk that fills up midway (one line; the output stays incomplete; resume finishes it)."""

from __future__ import annotations

import errno
import hashlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tifffile

import bioimnb
from bioimnb.core.convert import convert
from bioimnb.core.errors import AccessDenied, BioimnbError


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bioimnb", "convert", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def small(tmp_path):
    src = tmp_path / "a.tif"
    data = np.random.default_rng(0).integers(0, 4000, (600, 500), dtype=np.uint16)
    tifffile.imwrite(src, data)
    return src, data


@pytest.mark.parametrize("name", ["a.png", "a.jpg", "out/a.h5", "a.ome.png"])
def test_destination_types_it_does_not_write_are_refused(small, tmp_path, name):
    src, _ = small
    dest = tmp_path / name
    with pytest.raises(BioimnbError) as info:
        convert(src, dest)
    suffix = "." + name.rsplit(".", 1)[1]
    assert str(info.value) == f"{dest}: a {suffix} destination is not written by bioimnb; use .ome.zarr or .ome.tif"
    assert not dest.exists() and not (tmp_path / "out").exists()
    proc = cli(str(src), str(dest))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "is not written by bioimnb" in proc.stderr
    assert not dest.exists()


@pytest.mark.parametrize("name", ["a.ome.zarr", "a.zarr", "a.ome.tif", "a.ome.tiff", "plain_folder", "run.2024.01"])
def test_destination_names_it_writes_are_accepted(small, tmp_path, name):
    src, data = small
    dest = tmp_path / name
    report = convert(src, dest, levels=2)
    assert report.format == ("OME-TIFF" if ".tif" in name else "OME-Zarr 0.5")
    np.testing.assert_array_equal(bioimnb.open_image(dest).levels[0].compute()[0, 0, 0], data)


def test_to_contradicting_the_name_is_refused(small, tmp_path):
    src, _ = small
    with pytest.raises(BioimnbError, match=r"a \.zarr destination does not hold ome-tiff"):
        convert(src, tmp_path / "a.ome.zarr", to="ome-tiff")
    with pytest.raises(BioimnbError, match=r"a \.tif destination does not hold ome-zarr"):
        convert(src, tmp_path / "a.ome.tif", to="ome-zarr")


def test_a_folder_that_cannot_be_created_is_one_line_before_any_work(small, tmp_path):
    src, _ = small
    proc = cli(str(src), "/proc/nope/a.ome.zarr")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "/proc/nope/a.ome.zarr: cannot create the destination folder /proc/nope" in proc.stderr
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(BioimnbError, match="cannot create the destination folder"):
        convert(src, blocker / "a.ome.zarr")


def test_a_read_only_folder_is_refused_before_any_work(small, tmp_path, monkeypatch):
    src, _ = small
    import tempfile

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    dest = tmp_path / "ro" / "a.ome.zarr"
    with pytest.raises(AccessDenied) as info:
        convert(src, dest)
    assert str(info.value) == f"{dest}: cannot write into {tmp_path / 'ro'} (Read-only file system)"
    assert not dest.exists()


def test_overwrite_guard_covers_multi_file_ome_tiff_sets(tmp_path):
    import fixtures

    fs = fixtures.ome_tiff_multifile(tmp_path / "mf", members="full")
    part1, part2 = fs["paths"]
    img = bioimnb.open_image(part1)
    assert str(part2) in img.files, "the reader must list the whole file set"
    before = sha(part2)
    with pytest.raises(BioimnbError) as info:
        convert(part1, part2, overwrite=True)
    assert str(info.value) == f"{part2}: destination overlaps {part2}, part of the source's file set; refusing to write there"
    proc = cli(str(part1), str(part2), "--overwrite")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "part of the source's file set" in proc.stderr
    assert sha(part2) == before
    assert not list((tmp_path / "mf").glob("*.partial")) and not list((tmp_path / "mf").glob("*work*"))
    # the other way round, too: the master is a member of the set part2 opens
    with pytest.raises(BioimnbError, match="part of the source's file set"):
        convert(part2, part1, overwrite=True)
    # and a multi-file set converts to the right pixels (checked against tifffile)
    report = convert(part1, tmp_path / "mf.ome.zarr")
    assert any("equal to the source" in c for c in report.checks)
    truth = np.concatenate([tifffile.imread(p, is_ome=False) for p in fs["paths"]])  # each file alone
    np.testing.assert_array_equal(truth, fs["truth"])
    np.testing.assert_array_equal(bioimnb.open_image(tmp_path / "mf.ome.zarr").levels[0].compute()[0, 0], truth)


def test_overwrite_guard_covers_folders_of_the_file_set(small, tmp_path, monkeypatch):
    """A destination inside, or containing, a folder of the file set (an MRXS data folder) is refused."""
    from bioimnb.core.images import MultiscaleImage

    src, _ = small
    data_folder = tmp_path / "outer" / "a"
    data_folder.mkdir(parents=True)
    (data_folder / "Data0000.dat").write_bytes(b"slide data")
    monkeypatch.setattr(MultiscaleImage, "files", property(lambda self: [str(src), str(data_folder)]))
    for dest in (data_folder / "inside.ome.zarr", tmp_path / "outer"):
        with pytest.raises(BioimnbError, match="part of the source's file set"):
            convert(src, dest, overwrite=True)
    assert (data_folder / "Data0000.dat").read_bytes() == b"slide data"


def test_destination_inside_a_source_zarr_store_is_refused(images, tmp_path):
    store = images["ngff05"][0]
    files = sorted(p for p in store.rglob("*") if p.is_file())
    stamps = [p.stat().st_mtime_ns for p in files]
    for dest in (store / "0" / "x.ome.zarr", store / "labels.ome.zarr"):
        with pytest.raises(BioimnbError, match="overlaps"):
            convert(store, dest, overwrite=True)
    assert sorted(p for p in store.rglob("*") if p.is_file()) == files
    assert [p.stat().st_mtime_ns for p in files] == stamps


def _disk_full_after(n: int):
    """A patch for ShardWriter.add that fails with ENOSPC from its n-th call on."""
    from bioimnb.core.convert import shards

    original = shards.ShardWriter.add
    calls = {"n": 0}

    def add(self, rows):
        calls["n"] += 1
        if calls["n"] >= n:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, rows)

    return add


def test_disk_full_is_one_line_output_stays_incomplete_and_resume_finishes(small, tmp_path, monkeypatch):
    from bioimnb.core.convert import shards

    src, data = small
    dest = tmp_path / "full.ome.zarr"
    with monkeypatch.context() as m:
        m.setattr(shards.ShardWriter, "add", _disk_full_after(6))
        with pytest.raises(BioimnbError) as info:
            convert(src, dest, chunks=64, shards=128, workers=1)
    msg = str(info.value)
    assert msg == f"{dest}: writing the output failed (No space left on device); it is marked incomplete: fix that, then finish it with resume=True (--resume)"
    assert bioimnb.open_image(dest).status()["incomplete"] is True
    report = convert(src, dest, resume=True)
    assert report.resumed_blocks > 0
    out = bioimnb.open_image(dest)
    assert out.status().get("incomplete") is None
    np.testing.assert_array_equal(out.levels[0].compute()[0, 0, 0], data)


def test_disk_full_from_the_cli_is_one_line_exit_2(small, tmp_path):
    src, _ = small
    dest = tmp_path / "cli-full.ome.zarr"
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(__import__("pathlib").Path(__file__).parent)!r})
        from test_convert_guards import _disk_full_after
        from bioimnb.core.convert import shards
        shards.ShardWriter.add = _disk_full_after(3)
        from bioimnb.cli import main
        sys.exit(main(["convert", {str(src)!r}, {str(dest)!r}, "--chunks", "64", "--shards", "128", "--workers", "1"]))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "No space left on device" in proc.stderr and "--resume" in proc.stderr
    done = cli(str(src), str(dest), "--resume", "--quiet")
    assert done.returncode == 0, done.stderr
