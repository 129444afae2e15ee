"""Transfer between local folders, manifests, bags and fixity: checksums against hashlib,
bags against bagit-python, conflicts and changed sources reported, never silently replaced."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path

import bagit
import numpy as np
import pytest
import tifffile

from bioimnb.core.errors import BioimnbError
from bioimnb.core.transfer import fixity, manifest, transfer, watch
from bioimnb.core.transfer.checksums import decode_path, encode_path, parse_manifest


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(root: Path) -> dict[str, str]:
    """{relative posix path: sha256} of every file below root (journal folder excluded)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and ".bioimnb-transfer" not in p.parts:
            out[p.relative_to(root).as_posix()] = sha(p)
    return out


def make_source(root: Path, percent: bool = False) -> dict[str, bytes]:
    """Files and an OME-Zarr folder.  ``percent`` adds a name with ``%``, which BagIt 1.0
    manifests percent-encode and bagit-python does not (its issue #157), so bags made for
    bagit-python to validate leave it out."""
    rng = np.random.default_rng(7)
    files = {
        "a.bin": rng.integers(0, 256, 300_000, dtype=np.uint8).tobytes(),
        "sub/b.txt": b"hello\n",
        "sub/deeper/empty": b"",
        ".hidden": b"dot file",
        "name with space.txt": b"space",
    }
    if percent:
        files["100% done.txt"] = b"percent"
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    # an OME-Zarr folder (v2) is one image, copied with every file it is made of
    z = root / "img.ome.zarr"
    (z / "0").mkdir(parents=True)
    (z / ".zgroup").write_text('{"zarr_format": 2}')
    (z / ".zattrs").write_text(json.dumps({"multiscales": [{"version": "0.4", "axes": [{"name": "y"}, {"name": "x"}], "datasets": [{"path": "0"}]}]}))
    (z / "0" / ".zarray").write_text("{}")
    (z / "0" / "0.0").write_bytes(b"\x01\x02")
    return files


def test_folder_copy_checksums_mtimes_and_rerun_skips(tmp_path):
    src, dest = tmp_path / "src", tmp_path / "dest"
    make_source(src)
    os.utime(src / "a.bin", ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    seen = []
    report = transfer(src, dest, progress=seen.append)
    assert report.ok, report.summary()
    assert tree(dest) == tree(src)
    assert report.files == report.copied == len(tree(src)) == 9
    assert report.bytes == report.bytes_copied == sum(p.stat().st_size for p in src.rglob("*") if p.is_file())
    assert report.checksums["a.bin"] == sha(src / "a.bin")
    assert (dest / "a.bin").stat().st_mtime_ns == 1_600_000_000_000_000_000
    assert not (dest / ".bioimnb-transfer").exists()  # journal removed after a clean run
    assert seen and seen[-1].done == seen[-1].total == 9
    d = report.to_dict()
    assert d["copied"] == 9 and d["failed"] == 0 and d["throughput"] > 0
    again = transfer(src, dest)
    assert (again.copied, again.skipped, again.failures) == (0, 9, [])


def test_single_file_to_a_file_name_and_into_a_folder(tmp_path):
    src = tmp_path / "one.bin"
    src.write_bytes(os.urandom(50_000))
    r = transfer(src, tmp_path / "copy.bin")
    assert r.copied == 1 and sha(tmp_path / "copy.bin") == sha(src)
    (tmp_path / "box").mkdir()
    transfer(src, tmp_path / "box")
    assert sha(tmp_path / "box" / "one.bin") == sha(src)
    # a single-file transfer never touches the destination folder's other files
    assert sorted(p.name for p in (tmp_path / "box").iterdir()) == ["one.bin"]


def test_existing_different_destination_is_not_overwritten_unless_asked(tmp_path):
    src, dest = tmp_path / "src", tmp_path / "dest"
    make_source(src)
    (dest / "sub").mkdir(parents=True)
    (dest / "sub" / "b.txt").write_bytes(b"someone else's file\n")
    r = transfer(src, dest)
    assert not r.ok and r.copied == 8 and len(r.failures) == 1
    f = r.failures[0]
    assert f.path == "sub/b.txt" and f.kind == "conflict" and "different content" in f.reason
    assert (dest / "sub" / "b.txt").read_bytes() == b"someone else's file\n"
    assert (dest / ".bioimnb-transfer").is_dir()  # kept: the run did not finish cleanly
    r2 = transfer(src, dest, overwrite=True)
    assert r2.ok and r2.copied == 1 and r2.skipped == 8
    assert tree(dest) == tree(src)


def test_corrupted_byte_at_destination_is_caught_by_rerun_and_fixity(tmp_path):
    src, dest = tmp_path / "src", tmp_path / "bag"
    make_source(src)
    assert transfer(src, dest, bag=True).ok
    bagit.Bag(str(dest)).validate()
    assert fixity(dest).intact
    target = dest / "data" / "a.bin"
    data = bytearray(target.read_bytes())
    data[12345] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(bagit.BagValidationError):
        bagit.Bag(str(dest)).validate()
    fx = fixity(dest)
    assert not fx.intact and fx.changed == ["data/a.bin"] and fx.missing == [] and fx.added == []
    r = transfer(src, dest, bag=True)
    assert [(f.path, f.kind) for f in r.failures] == [("a.bin", "conflict")]
    assert r.skipped == 8
    assert transfer(src, dest, bag=True, overwrite=True).ok
    bagit.Bag(str(dest)).validate()


def test_bag_is_valid_for_bagit_python_and_tampering_is_detected(tmp_path):
    src, dest = tmp_path / "src", tmp_path / "bag"
    make_source(src)
    r = transfer(src, dest, bag=True)
    assert r.ok and r.bag
    bag = bagit.Bag(str(dest))
    bag.validate()
    assert bag.info["Payload-Oxum"] == f"{r.bytes}.{r.files}"
    assert bag.info["Bag-Software-Agent"].startswith("bioimnb ")
    assert "Bagging-Date" in bag.info
    assert set(bag.payload_files()) == {f"data/{rel}" for rel in tree(src)}
    assert sorted(os.listdir(dest)) == ["bag-info.txt", "bagit.txt", "data", "manifest-sha256.txt", "tagmanifest-sha256.txt"]
    # an added payload file, then a missing one, then a changed tag file
    (dest / "data" / "extra.txt").write_text("x")
    with pytest.raises(bagit.BagValidationError):
        bagit.Bag(str(dest)).validate()
    fx = fixity(dest)
    assert fx.added == ["data/extra.txt"] and not fx.intact
    (dest / "data" / "extra.txt").unlink()
    (dest / "data" / "sub" / "b.txt").unlink()
    fx = fixity(dest)
    assert fx.missing == ["data/sub/b.txt"] and fx.to_dict()["intact"] is False
    assert transfer(src, dest, bag=True).copied == 1
    assert fixity(dest).intact
    with open(dest / "bag-info.txt", "a") as fh:
        fh.write("Contact-Name: someone\n")
    fx = fixity(dest)
    assert not fx.intact and any("bag-info.txt" in p for p in fx.problems)


def test_sync_removes_destination_files_no_longer_in_the_source(tmp_path):
    src, dest = tmp_path / "src", tmp_path / "dest"
    make_source(src)
    transfer(src, dest)
    (src / "sub" / "b.txt").unlink()
    assert transfer(src, dest).ok and (dest / "sub" / "b.txt").exists()  # copy never deletes
    r = transfer(src, dest, sync=True)
    assert r.deleted == ["sub/b.txt"] and not (dest / "sub" / "b.txt").exists()
    assert tree(dest) == tree(src)


def test_source_changed_while_being_copied_is_reported_and_not_kept(tmp_path, monkeypatch):
    src, dest = tmp_path / "src", tmp_path / "dest"
    src.mkdir()
    growing = src / "growing.raw"
    growing.write_bytes(b"\0" * (64 * 1024 * 8))
    monkeypatch.setenv("BIOIMNB_TRANSFER_BLOCK", str(64 * 1024))
    monkeypatch.setenv("BIOIMNB_TRANSFER_DELAY", "0.1")

    def append_later() -> None:
        time.sleep(0.3)
        with open(growing, "ab") as fh:
            fh.write(b"more")

    t = threading.Thread(target=append_later)
    t.start()
    r = transfer(src, dest)
    t.join()
    assert [(f.path, f.kind) for f in r.failures] == [("growing.raw", "changed")]
    assert "changed while being copied" in r.failures[0].reason
    assert not (dest / "growing.raw").exists()
    assert list((dest / ".bioimnb-transfer" / "parts").iterdir()) == []  # the partial copy is gone
    monkeypatch.delenv("BIOIMNB_TRANSFER_DELAY")
    assert transfer(src, dest).ok and sha(dest / "growing.raw") == sha(growing)


def test_source_changed_since_an_interrupted_run_is_named(tmp_path):
    src, dest = tmp_path / "src", tmp_path / "dest"
    make_source(src)
    (dest / "sub").mkdir(parents=True)
    (dest / "sub" / "b.txt").write_bytes(b"conflict keeps the journal\n")
    assert not transfer(src, dest).ok
    (src / "a.bin").write_bytes(b"a new acquisition replaced it")
    r = transfer(src, dest)
    kinds = {f.path: f for f in r.failures}
    assert kinds["a.bin"].kind == "changed" and "source changed since an earlier run" in kinds["a.bin"].reason
    assert (dest / "a.bin").stat().st_size == 300_000  # the earlier copy is left alone


def test_ten_thousand_small_files(tmp_path):
    src = tmp_path / "many"
    for d in range(10):
        sub = src / f"d{d}"
        sub.mkdir(parents=True)
        for i in range(1000):
            (sub / f"f{i:04d}.txt").write_bytes(f"{d}/{i}\n".encode())
    r = transfer(src, tmp_path / "copy")
    assert r.ok and r.copied == r.files == 10_000 and r.bytes == sum(len(f"{d}/{i}\n") for d in range(10) for i in range(1000))
    assert sum(1 for p in (tmp_path / "copy").rglob("*") if p.is_file()) == 10_000
    assert (tmp_path / "copy" / "d7" / "f0123.txt").read_bytes() == b"7/123\n"


def test_destination_inside_the_source_is_refused(tmp_path):
    make_source(tmp_path / "src")
    with pytest.raises(BioimnbError, match="inside the source"):
        transfer(tmp_path / "src", tmp_path / "src" / "backup")


def test_manifest_files_and_fixity_of_a_folder(tmp_path):
    folder = tmp_path / "study"
    make_source(folder, percent=True)
    img = np.arange(2 * 32 * 48, dtype=np.uint16).reshape(2, 32, 48)
    tifffile.imwrite(folder / "cells.ome.tif", img, metadata={"axes": "CYX"})
    stamps = {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}
    before = tree(folder)
    m = manifest(folder)
    assert m.ok and m.files == len(before) == 11
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # nothing touched
    text = (folder / "manifest-sha256.txt").read_text()
    listed = parse_manifest(text)
    assert listed == before
    assert "  100%25 done.txt\n" in text  # BagIt 1.0: % percent-encoded
    doc = json.loads((folder / "bioimnb-manifest.json").read_text())
    assert doc["algorithm"] == "sha256" and doc["tool"].startswith("bioimnb ")
    assert doc["files"] == 11 and doc["bytes"] == sum(p.stat().st_size for p in stamps)
    assert doc["created"].endswith("Z")
    entries = {e["path"]: e for e in doc["entries"]}
    assert entries["sub/b.txt"] == {"path": "sub/b.txt", "size": 6, "sha256": hashlib.sha256(b"hello\n").hexdigest()}
    tif = entries["cells.ome.tif"]
    assert tif["format"] and tif["shape"][-2:] == [32, 48] and "Y" in tif["dims"]
    assert {i["path"] for i in doc["images"]} >= {"cells.ome.tif", "img.ome.zarr"}
    # a second manifest does not list the first one's files
    assert manifest(folder).files == 11
    assert fixity(folder).intact
    (folder / "sub" / "b.txt").write_bytes(b"HELLO\n")
    (folder / "new.txt").write_text("new")
    (folder / ".hidden").unlink()
    fx = fixity(folder)
    assert (fx.changed, fx.added, fx.missing, fx.intact) == (["sub/b.txt"], ["new.txt"], [".hidden"], False)
    assert fx.kind == "manifest" and fx.checked == 10


def test_fixity_without_a_manifest_or_with_a_broken_one_cannot_run(tmp_path):
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(BioimnbError, match="nothing to check against"):
        fixity(tmp_path)
    (tmp_path / "manifest-sha256.txt").write_text("justonefield\n")
    with pytest.raises(BioimnbError, match="line 1"):
        fixity(tmp_path)


def test_bagit_path_encoding_round_trips():
    for name in ["a%b", "line\nbreak", "cr\rhere", "plain/sub dir/x.tif", "%0A literally"]:
        assert decode_path(encode_path(name)) == name
        assert "\n" not in encode_path(name) and "\r" not in encode_path(name)


def test_watch_transfers_files_once_they_stop_growing(tmp_path):
    src, dest = tmp_path / "acq", tmp_path / "central"
    src.mkdir()
    (src / "done.tif").write_bytes(b"finished before")
    stop = threading.Event()
    chunks = [os.urandom(1000) for _ in range(8)]

    def acquire() -> None:
        with open(src / "stack.raw", "wb") as fh:
            for c in chunks:
                fh.write(c)
                fh.flush()
                time.sleep(0.15)

    writer = threading.Thread(target=acquire)
    writer.start()
    reports = []
    started = time.time()
    total = watch(src, dest, settle=1.0, interval=0.1, cancel=stop, until=lambda: time.time() - started > 4.5, on_transfer=reports.append)
    writer.join()
    assert total.ok and total.copied == 2
    assert (dest / "stack.raw").read_bytes() == b"".join(chunks)  # never copied half-written
    assert (dest / "done.tif").read_bytes() == b"finished before"
    assert sum(r.copied for r in reports) == 2  # each file exactly once


def test_watch_stops_on_cancel_and_max_cycles(tmp_path):
    (tmp_path / "acq").mkdir()
    ev = threading.Event()
    ev.set()
    t = time.monotonic()
    r = watch(tmp_path / "acq", tmp_path / "out", settle=5, cancel=ev)
    assert r.copied == 0 and time.monotonic() - t < 2
    r = watch(tmp_path / "acq", tmp_path / "out", settle=0, interval=0.05, max_cycles=3)
    assert r.files == 0


def test_several_sources_each_go_under_their_name(tmp_path):
    """What the browser's "Copy to..." passes for a selection of several entries."""
    src = tmp_path / "src"
    make_source(src)
    r = transfer([src / "sub", src / "a.bin", src / "img.ome.zarr"], tmp_path / "out")
    assert r.ok and r.copied == 2 + 1 + 4
    assert tree(tmp_path / "out" / "sub") == tree(src / "sub")
    assert sha(tmp_path / "out" / "a.bin") == sha(src / "a.bin")
    assert tree(tmp_path / "out" / "img.ome.zarr") == tree(src / "img.ome.zarr")
    (tmp_path / "out" / "a.bin").write_bytes(b"other")
    r = transfer([src / "sub", src / "a.bin"], tmp_path / "out")
    assert [(f.path, f.kind) for f in r.failures] == [("a.bin", "conflict")] and r.skipped == 2
    with pytest.raises(BioimnbError, match="a bag is made of one source"):
        transfer([src / "sub", src / "a.bin"], tmp_path / "bag", bag=True)
