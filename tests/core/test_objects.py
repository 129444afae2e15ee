"""S3 reads through obstore (core/objects.py): which options it takes, the pixels it reads,
and the errors it reports, against SeaweedFS on 127.0.0.1."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import numpy as np
import obstore
import pytest
import tifffile

import bioimnb
from bioimnb.core import objects
from bioimnb.core.errors import AccessDenied, SourceNotFound, StorageUnreachable
from bioimnb.core.objects import object_reader
from bioimnb.core.storage import resolve, storage_errors


@pytest.fixture(autouse=True)
def _no_session_token(monkeypatch):
    """A session token in the environment would send these reads back to s3fs (by design)."""
    for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[np.ndarray]]:
    """A tiled 3-level OME-TIFF pyramid of about 12 MiB: read in blocks, not whole."""
    path = tmp_path_factory.mktemp("objects") / "big.ome.tif"
    rng = np.random.default_rng(7)
    base = rng.integers(0, 60000, (2, 2048, 1536), dtype=np.uint16)
    levels = [base, base[:, ::2, ::2].copy(), base[:, ::4, ::4].copy()]
    with tifffile.TiffWriter(path, ome=True) as tw:
        tw.write(levels[0], tile=(256, 256), subifds=2, metadata={"axes": "CYX"}, compression="zlib")
        for lv in levels[1:]:
            tw.write(lv, tile=(256, 256), subfiletype=1, compression="zlib")
    return path, levels


@pytest.fixture(scope="module")
def bucket(s3, big) -> str:
    name = s3.make_bucket("objects")
    s3.fs.put(str(big[0]), f"{name}/big.ome.tif")
    s3.fs.pipe({f"{name}/small.bin": bytes(range(256)) * 4})
    return name


@pytest.fixture
def ranged(monkeypatch) -> list[tuple[str, int, int]]:
    """Every range obstore is asked for (key, start, end)."""
    seen: list[tuple[str, int, int]] = []
    original = obstore.get_range

    def counting(store, path, *, start, end=None, length=None):
        seen.append((path, start, end))
        return original(store, path, start=start, end=end, length=length)

    monkeypatch.setattr(obstore, "get_range", counting)
    return seen


@pytest.mark.s3
def test_large_ome_tiff_on_s3_reads_in_blocks_through_obstore(s3, bucket, big, ranged):
    path, levels = big
    size = path.stat().st_size
    assert size > 2 * 2**20  # larger than one block: the block-cached file, not a whole read
    img = bioimnb.open_image(f"s3://{bucket}/big.ome.tif", **s3.storage_options)
    assert img.level_shapes == [(1, 2, 1, *lv.shape[1:]) for lv in levels]
    np.testing.assert_array_equal(img.levels[2].compute()[0, :, 0], levels[2])
    np.testing.assert_array_equal(img.read(0, t=0, z=0, y=slice(700, 900), x=slice(1000, 1300)), levels[0][:, 700:900, 1000:1300])
    assert ranged and all(k == "big.ome.tif" for k, _, _ in ranged)
    assert all(end - start <= 2**20 for _, start, end in ranged)  # blocks of 1 MiB, never the whole file
    assert sum(end - start for _, start, end in ranged) < size


@pytest.mark.s3
def test_small_objects_are_one_request(s3, bucket, ranged):
    reader = object_reader(resolve(f"s3://{bucket}/small.bin", **s3.storage_options))
    assert reader is not None
    with reader.open(1024, 2**20) as fh:
        assert fh.read() == bytes(range(256)) * 4
        fh.seek(-4, 2)
        assert fh.read() == bytes([252, 253, 254, 255])
    assert ranged == [("small.bin", 0, 1024)]


@pytest.mark.s3
def test_errors_are_the_usual_one_line_errors(s3, bucket):
    missing = resolve(f"s3://{bucket}/absent.bin", **s3.storage_options)
    with pytest.raises(SourceNotFound), storage_errors(missing.url):
        object_reader(missing).read(0, 10)  # type: ignore[union-attr]
    denied = resolve(f"s3://{bucket}/small.bin", **{**s3.storage_options, "secret": "not-the-secret"})
    with pytest.raises(AccessDenied), storage_errors(denied.url):
        object_reader(denied).read(0, 10)  # type: ignore[union-attr]
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    gone = resolve(f"s3://{bucket}/small.bin", **{**s3.storage_options, "endpoint_url": f"http://127.0.0.1:{port}"})
    start = time.monotonic()
    with pytest.raises(StorageUnreachable), storage_errors(gone.url):
        object_reader(gone).read(0, 10)  # type: ignore[union-attr]
    assert time.monotonic() - start < 20


@pytest.mark.parametrize(
    "options, used",
    [
        ({"key": "k", "secret": "s", "endpoint_url": "http://127.0.0.1:9"}, True),
        ({"anon": True, "endpoint_url": "https://example.org"}, True),
        ({"key": "k", "secret": "s", "client_kwargs": {"region_name": "eu-west-1"}}, True),
        ({"key": "k", "secret": "s"}, False),  # no region and no endpoint: s3fs finds the region
        ({"endpoint_url": "http://127.0.0.1:9"}, False),  # credentials from files or roles
        ({"profile": "lab", "endpoint_url": "http://127.0.0.1:9"}, False),
        ({"key": "k", "secret": "s", "endpoint_url": "http://127.0.0.1:9", "requester_pays": True}, False),
        ({"key": "k", "secret": "s", "endpoint_url": "http://x", "config_kwargs": {"signature_version": "s3"}}, False),
    ],
)
def test_only_options_obstore_can_be_given_exactly(options, used, monkeypatch):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", *objects._CA_BUNDLES):
        monkeypatch.delenv(name, raising=False)
    assert (objects._store_config(options) is not None) is used
    if used:
        monkeypatch.setenv("AWS_CA_BUNDLE", "/etc/ssl/private-ca.pem")  # botocore's, not obstore's
        plain_http = str(options.get("endpoint_url", "")).startswith("http://")
        assert (objects._store_config(options) is not None) is plain_http  # no TLS, no CA needed
        monkeypatch.setenv("AWS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")  # the system's
        assert objects._store_config(options) is not None
        monkeypatch.delenv("AWS_CA_BUNDLE")
        monkeypatch.setenv("AWS_SESSION_TOKEN", "from-the-environment")
        expect = "token" in options or "anon" in options
        assert (objects._store_config(options) is not None) is expect


def test_addressing_follows_botocore(monkeypatch):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", *objects._CA_BUNDLES):
        monkeypatch.delenv(name, raising=False)
    aws = {"key": "k", "secret": "s", "client_kwargs": {"region_name": "eu-west-1"}}
    assert objects._store_config(aws, "lab-data")["virtual_hosted_style_request"] is True
    assert objects._store_config(aws, "lab.data")["virtual_hosted_style_request"] is False  # dots: paths
    path_style = {**aws, "config_kwargs": {"s3": {"addressing_style": "path"}}}
    assert objects._store_config(path_style, "lab-data")["virtual_hosted_style_request"] is False
    own = {"key": "k", "secret": "s", "endpoint_url": "http://127.0.0.1:9"}
    config = objects._store_config(own, "lab-data")
    assert config["skip_signature"] is False  # set, so AWS_SKIP_SIGNATURE in the environment cannot unsign
    assert config["virtual_hosted_style_request"] is False and config["client_options"]["allow_http"] is True
