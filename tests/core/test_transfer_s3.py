"""Transfers to and from a real SeaweedFS S3 store: round trips with checksums, multipart uploads
whose ETag is predicted, 10,000 small files, bags on S3, corrupted objects caught."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import bagit
import pytest

from bioimnb.core.errors import SourceNotFound
from bioimnb.core.transfer import fixity, manifest, transfer

LARGE_MB = int(os.environ.get("BIOIMNB_TEST_LARGE_MB", "64"))
"""Size of the "large file" of the round trip (the issue's 1 GiB runs in the benchmark)."""


def sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(2**20):
            h.update(block)
    return h.hexdigest()


def local_tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): sha(p) for p in sorted(root.rglob("*")) if p.is_file() and ".bioimnb-transfer" not in p.parts}


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    # journals of remote destinations live in the cache folder: keep them per test
    monkeypatch.setenv("BIOIMNB_CACHE_DIR", str(tmp_path / "cache"))


def test_local_to_s3_and_back_keeps_every_checksum(s3, tmp_path):
    bucket = s3.make_bucket("tx")
    src = tmp_path / "src"
    (src / "plate.ome.zarr" / "0").mkdir(parents=True)
    (src / "plate.ome.zarr" / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group", "attributes": {"ome": {"version": "0.5", "multiscales": []}}}')
    (src / "plate.ome.zarr" / "0" / "c0").write_bytes(os.urandom(70_000))
    (src / "notes" / "a b.txt").parent.mkdir(parents=True)
    (src / "notes" / "a b.txt").write_text("lab notes")
    (src / "raw.bin").write_bytes(os.urandom(9 * 2**20 + 17))  # more than one part: multipart
    so = s3.storage_options
    up = transfer(src, f"s3://{bucket}/project", **so)
    assert up.ok, up.summary()
    assert up.copied == 4
    fs = s3.fs
    remote = {k.split("/project/", 1)[1]: hashlib.sha256(fs.cat_file(k)).hexdigest() for k in fs.find(f"{bucket}/project")}
    assert remote == local_tree(src)
    # the SHA-256 travels with the object
    head = fs.call_s3("head_object", Bucket=bucket, Key="project/raw.bin")
    assert head["ETag"].strip('"').endswith("-2")  # a multipart upload, verified by its predicted ETag
    down = transfer(f"s3://{bucket}/project", tmp_path / "back", **so)
    assert down.ok and down.copied == 4
    assert local_tree(tmp_path / "back") == local_tree(src)
    again = transfer(src, f"s3://{bucket}/project", **so)
    assert (again.copied, again.skipped) == (0, 4)


def test_large_file_round_trip(s3, tmp_path):
    bucket = s3.make_bucket("big")
    big = tmp_path / "big.raw"
    block = os.urandom(2**20)
    with open(big, "wb") as fh:
        for i in range(LARGE_MB):
            fh.write(block[i:] + block[:i])
    so = s3.storage_options
    up = transfer(big, f"s3://{bucket}/big.raw", **so)
    assert up.ok and up.bytes_copied == LARGE_MB * 2**20
    assert up.checksums["big.raw"] == sha(big)
    down = transfer(f"s3://{bucket}/big.raw", tmp_path / "copy.raw", **so)
    assert down.ok and sha(tmp_path / "copy.raw") == sha(big)


def test_corrupted_object_is_reported_by_a_rerun_and_by_fixity(s3, tmp_path):
    bucket = s3.make_bucket("bad")
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.tif").write_bytes(os.urandom(100_000))
    (src / "b.tif").write_bytes(os.urandom(1000))
    so = s3.storage_options
    assert transfer(src, f"s3://{bucket}/bag", bag=True, **so).ok
    fx = fixity(f"s3://{bucket}/bag", **so)
    assert fx.intact and fx.kind == "bag" and fx.checked == 2
    # the bag on S3 is a valid bag once downloaded
    s3.fs.get(f"{bucket}/bag", str(tmp_path / "dl"), recursive=True)
    bagit.Bag(str(tmp_path / "dl")).validate()
    data = bytearray((src / "a.tif").read_bytes())
    data[500] ^= 0xFF
    s3.fs.pipe_file(f"{bucket}/bag/data/a.tif", bytes(data))
    fx = fixity(f"s3://{bucket}/bag", **so)
    assert not fx.intact and fx.changed == ["data/a.tif"]
    r = transfer(src, f"s3://{bucket}/bag", bag=True, **so)
    assert [(f.path, f.kind) for f in r.failures] == [("a.tif", "conflict")]
    assert s3.fs.cat_file(f"{bucket}/bag/data/a.tif") == bytes(data)  # not replaced silently
    assert transfer(src, f"s3://{bucket}/bag", bag=True, overwrite=True, **so).ok
    assert fixity(f"s3://{bucket}/bag", **so).intact


def test_manifest_of_an_s3_prefix(s3, tmp_path):
    bucket = s3.make_bucket("man")
    s3.put(bucket, {"p/x.txt": b"x", "p/y/z.txt": b"zz"})
    m = manifest(f"s3://{bucket}/p", images=False, **s3.storage_options)
    assert m.files == 2
    text = s3.fs.cat_file(f"{bucket}/p/manifest-sha256.txt").decode()
    assert text == f"{hashlib.sha256(b'x').hexdigest()}  x.txt\n{hashlib.sha256(b'zz').hexdigest()}  y/z.txt\n"
    assert fixity(f"s3://{bucket}/p", **s3.storage_options).intact


def test_http_source_to_local(http_server, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "scan.bin").write_bytes(os.urandom(300_000))
    base = http_server(site)
    r = transfer(f"{base}/scan.bin", tmp_path / "got.bin")
    assert r.ok and sha(tmp_path / "got.bin") == sha(site / "scan.bin")


def test_missing_bucket_is_one_line_error(s3, tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(SourceNotFound, match="no such bucket"):
        transfer(tmp_path / "f", f"s3://{s3.new_bucket()}/x", **s3.storage_options)


def test_http_folder_source_to_local(http_server, tmp_path):
    site = tmp_path / "site"
    (site / "run 1").mkdir(parents=True)
    (site / "run 1" / "t0.bin").write_bytes(os.urandom(20_000))
    (site / "index-free.txt").write_text("no index.html here: the server lists the folder")
    base = http_server(site)
    r = transfer(f"{base}/", tmp_path / "got")
    assert r.ok and r.copied == 2, r.summary()
    assert local_tree(tmp_path / "got") == local_tree(site)


def test_s3_destination_inside_the_s3_source_is_refused(s3, tmp_path):
    from bioimnb.core.errors import BioimnbError

    bucket = s3.make_bucket("in")
    s3.put(bucket, {"a/x.txt": b"x"})
    with pytest.raises(BioimnbError, match="the destination is the source or lies inside it"):
        transfer(f"s3://{bucket}/a", f"s3://{bucket}/a/copy", **s3.storage_options)
