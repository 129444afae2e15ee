"""What a first scan of an S3 prefix asks the store for: no request that the listing or an
earlier read already answered (issue 8's remote scan speed is mostly requests)."""

from __future__ import annotations

import collections
import json

import numpy as np
import obstore
import pytest
import s3fs.core

import bioimnb
from bioimnb.core.classify import ZARR_METADATA_LIMIT
from bioimnb.core.facts import scan


@pytest.fixture(scope="module")
def bucket(s3, images):
    name = s3.make_bucket("requests")
    fs = s3.fs
    for key in ("ngff05", "ome_tiff"):
        local = images[key][0]
        fs.put(str(local), f"{name}/ok/{local.name}", recursive=local.is_dir())
    return name


@pytest.fixture
def calls(monkeypatch):
    seen: collections.Counter[tuple[str, str]] = collections.Counter()
    original = s3fs.core.S3FileSystem._call_s3

    async def counting(self, method, *args, **kwargs):
        name = getattr(method, "__name__", str(method))
        seen[(name, str(kwargs.get("Key") or kwargs.get("Prefix") or ""))] += 1
        return await original(self, method, *args, **kwargs)

    monkeypatch.setattr(s3fs.core.S3FileSystem, "_call_s3", counting)
    # Ranged GETs made through obstore (core/objects.py) count the same.
    get_range, get_range_async = obstore.get_range, obstore.get_range_async

    def ranged(store, path, **kwargs):
        seen[("get_object", path)] += 1
        return get_range(store, path, **kwargs)

    async def ranged_async(store, path, **kwargs):
        seen[("get_object", path)] += 1
        return await get_range_async(store, path, **kwargs)

    listing = obstore.list

    def listed(store, prefix=None, **kwargs):
        seen[("list_objects_v2", prefix or "")] += 1
        return listing(store, prefix=prefix, **kwargs)

    monkeypatch.setattr(obstore, "list", listed)
    monkeypatch.setattr(obstore, "get_range", ranged)
    monkeypatch.setattr(obstore, "get_range_async", ranged_async)
    return seen


@pytest.mark.s3
def test_first_scan_makes_no_head_requests_and_no_zarr_v2_probes(s3, bucket, calls, images):
    rows = list(scan(f"s3://{bucket}/ok", cache=False, **s3.storage_options))
    kinds = sorted((r.format, r.error) for r in rows)
    assert kinds == [("OME-TIFF", None), ("OME-Zarr", None)]
    methods = collections.Counter(name for name, _ in calls.elements())
    assert methods["head_object"] == 0, calls  # sizes come from the listing
    probed = [key for (name, key) in calls if key.rsplit("/", 1)[-1] in (".zattrs", ".zgroup", ".zarray", ".zmetadata")]
    assert probed == [], probed  # a zarr v3 store is opened as v3: no v2 documents asked for
    root_doc = [n for (name, key), n in calls.items() if name == "get_object" and key.endswith("v05.ome.zarr/zarr.json")]
    assert sum(root_doc) == 1  # the listing's classification; the reader is handed what it read
    # The zarr is listed once (its size and age); a document that listing shows absent
    # (labels/zarr.json here) is not asked for, and every present one is read once.
    listed = {key for (name, key) in calls if name == "list_objects_v2" and "v05.ome.zarr" in key}
    assert len(listed) == 1 and sum(calls[("list_objects_v2", k)] for k in listed) == 1, calls
    gets = {key for (name, key) in calls if name == "get_object" and "v05.ome.zarr/" in key}
    on_store = {p.relative_to(images["ngff05"][0]).as_posix() for p in images["ngff05"][0].rglob("zarr.json")}
    assert {g.split("v05.ome.zarr/", 1)[1] for g in gets} <= on_store, gets
    assert all(calls[("get_object", g)] == 1 for g in gets), calls
    # ...and the images read through those fewer requests are still the right pixels.
    img = bioimnb.open_image(f"s3://{bucket}/ok/v05.ome.zarr", **s3.storage_options)
    np.testing.assert_array_equal(img.levels[1].compute()[0], images["ngff05"][1]["image"][1])


@pytest.mark.s3
def test_oversized_zarr_json_on_s3_is_refused_without_reading_it_whole(s3, bucket, calls):
    big = {"zarr_format": 3, "node_type": "group", "attributes": {"pad": "x" * (ZARR_METADATA_LIMIT + 10)}}
    s3.fs.pipe(f"{bucket}/big/huge.zarr/zarr.json", json.dumps(big).encode())
    (entry,) = list(scan(f"s3://{bucket}/big", cache=False, **s3.storage_options))
    assert entry.error and "too large for metadata" in entry.error and "zarr.json" in entry.error


def test_oversized_zarr_json_over_http_is_refused(tmp_path, http_server):
    store = tmp_path / "served" / "huge.zarr"
    store.mkdir(parents=True)
    big = {"zarr_format": 3, "node_type": "group", "attributes": {"pad": "x" * (ZARR_METADATA_LIMIT + 10)}}
    (store / "zarr.json").write_text(json.dumps(big))
    base = http_server(tmp_path / "served")
    (entry,) = bioimnb.browse(base + "/").list().entries
    assert entry.kind == "image" and entry.error and "too large for metadata" in entry.error
