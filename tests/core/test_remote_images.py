"""open_image over real remote storage: SeaweedFS (S3) and an HTTP server, both on 127.0.0.1."""

from __future__ import annotations

import json

import numpy as np
import pytest

import bioimnb
from bioimnb.core.errors import AccessDenied, SourceNotFound


@pytest.fixture(scope="module")
def bucket(s3, images):
    name = s3.make_bucket("images")
    fs = s3.fs
    for key in ("ngff05", "ngff04", "ome_tiff", "svs"):
        local = images[key][0]
        fs.put(str(local), f"{name}/{local.name}", recursive=local.is_dir())
    return name


def test_s3_ngff05_levels_and_labels(s3, bucket, images):
    img = bioimnb.open_image(f"s3://{bucket}/v05.ome.zarr", **s3.storage_options)
    truth = images["ngff05"][1]
    assert img.format == "OME-Zarr" and img.channel_names == ["DAPI", "GFP"]
    for lv, expected in zip(img.levels, truth["image"], strict=True):
        np.testing.assert_array_equal(lv.compute()[0], expected)
    np.testing.assert_array_equal(img.label("cells").levels[1].compute()[0, 0], truth["cells"][1])
    region = img.read(0, t=0, c=1, z=2, y=slice(130, 260), x=slice(10, 300))
    np.testing.assert_array_equal(region, truth["image"][0][1, 2, 130:260, 10:300])


def test_s3_ome_tiff_tiles(s3, bucket, images):
    img = bioimnb.open_image(f"s3://{bucket}/pyramid.ome.tif", scene="scene-1", **s3.storage_options)
    truth = images["ome_tiff"][1][1]
    assert img.level_shapes[1] == (1, 2, 1, 300, 400)
    np.testing.assert_array_equal(img.read(1, t=0, z=0, y=slice(0, 128), x=slice(128, 384)), [t[0:128, 128:384] for t in truth[1]])
    np.testing.assert_array_equal(img.levels[2].compute()[0, :, 0], truth[2])


def test_s3_slide(s3, bucket, images):
    img = bioimnb.open_image(f"s3://{bucket}/slide.svs", **s3.storage_options)
    assert img.format == "SVS" and pytest.approx(0.499) == img.physical_size.X
    np.testing.assert_array_equal(img.levels[-1].compute()[0, 0, 0], images["svs"][1][-1])


def test_credentials_stay_out_of_descriptions(s3, bucket):
    img = bioimnb.open_image(f"s3://{bucket}/v05.ome.zarr", **s3.storage_options)
    text = repr(img) + json.dumps(img.describe())
    assert s3.secret not in text and s3.key not in text


def test_s3_wrong_credentials_and_missing_key(s3, bucket):
    bad = {**s3.storage_options, "secret": "not-the-secret"}
    with pytest.raises(AccessDenied):
        bioimnb.open_image(f"s3://{bucket}/pyramid.ome.tif", **bad)
    with pytest.raises(SourceNotFound):
        bioimnb.open_image(f"s3://{bucket}/absent.ome.tif", **s3.storage_options)


def test_http_ngff04_and_ome_tiff(http_server, images):
    base = http_server(images["dir"])
    z = bioimnb.open_image(f"{base}/v04.ome.zarr")
    for lv, expected in zip(z.levels, images["ngff04"][1]["image"], strict=True):
        np.testing.assert_array_equal(lv.compute()[0], expected)
    t = bioimnb.open_image(f"{base}/pyramid.ome.tif")
    truth = images["ome_tiff"][1][0]
    np.testing.assert_array_equal(t.read(0, t=0, c=0, z=0, y=slice(200, 456), x=slice(300, 556)), truth[0][0, 200:456, 300:556])
    with pytest.raises(SourceNotFound):
        bioimnb.open_image(f"{base}/nothing-here.ome.tif")


def test_s3_czi_through_a_presigned_url(s3, shared_data):
    """bioio-czi reads no S3 credentials; bioimnb hands it a short-lived presigned URL."""
    name = s3.make_bucket("czi")
    src = shared_data / "czi" / "CellDivision_T3_Z5_CH2_X240_Y170_comp1.czi"
    s3.put(name, {"cells.czi": src.read_bytes(), "broken.czi": b"ZISRAWFILE" + b"\0" * 200})
    remote = bioimnb.open_image(f"s3://{name}/cells.czi", **s3.storage_options)
    local = bioimnb.open_image(src)
    assert remote.shape == local.shape and remote.reader == "bioio-czi"
    np.testing.assert_array_equal(remote.read(0, t=1, z=2), local.read(0, t=1, z=2))
    with pytest.raises(bioimnb.BioimnbError) as info:
        bioimnb.open_image(f"s3://{name}/broken.czi", **s3.storage_options)
    text = str(info.value)
    assert text.startswith(f"s3://{name}/broken.czi: ") and "Signature" not in text and s3.key not in text
