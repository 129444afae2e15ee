"""Conversions on a Dask Gateway cluster: a real ``dask-gateway-server`` (local backend) on
loopback, a ``GatewayCluster`` with one worker process, and ``convert(..., scheduler=cluster)``.

Proves: the blocks run on the gateway's worker (the scheduler saw the tasks), the output equals
the source pixel for pixel (read back with tifffile and zarr), progress is reported as locally, a
cancel stops the run with a resumable output that ``resume=True`` on the same cluster finishes;
the configured default (``BIOIMNB_DASK_SCHEDULER=gateway:NAME`` with dask-gateway's own config)
is used when no scheduler is given; and a conversion started in a notebook kernel runs there too.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest
import tifffile
import zarr
from hubkit import Gateway, HubError, start_gateway
from nbclient import NotebookClient

import bioimnb
from bioimnb.core.jobs import Cancelled, Progress

pytestmark = [pytest.mark.hub, pytest.mark.timeout(300)]

SIZE = 1024


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    try:
        with start_gateway(tmp_path_factory.mktemp("gateway")) as gw:
            yield gw
    except HubError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def cluster(gateway: Gateway) -> Iterator[Any]:
    client = gateway.client()
    cluster = client.new_cluster()
    try:
        cluster.scale(1)
        yield cluster
    finally:
        cluster.shutdown()  # the Gateway client closes itself when collected (closing it twice warns)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A flat 2-channel uint16 TIFF with varied pixels (every block differs)."""
    rng = np.random.default_rng(15)
    data = rng.integers(0, 60000, size=(2, SIZE, SIZE), dtype=np.uint16)
    path = tmp_path_factory.mktemp("src") / "field.ome.tif"
    tifffile.imwrite(path, data, ome=True, tile=(256, 256), metadata={"axes": "CYX"})
    return path, data


def _level0(path: Path) -> np.ndarray:
    group = zarr.open_group(str(path), mode="r")
    return np.asarray(group["0"][:]).reshape(2, SIZE, SIZE)


def _transitions(cluster: Any) -> int:
    """How many task state transitions the cluster's scheduler has made so far."""
    client = cluster.get_client(set_as_default=False)
    try:
        return int(client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.transition_counter))
    finally:
        client.close()


def test_convert_on_gateway_cluster_equals_source(cluster: Any, source: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    src, data = source
    before = _transitions(cluster)
    seen: list[Progress] = []
    report = bioimnb.convert(src, tmp_path / "out.ome.zarr", chunks=256, shards=256, scheduler=cluster, progress=seen.append)
    assert report.written_blocks >= 32
    assert any("checksums" in c for c in report.checks), report.checks
    np.testing.assert_array_equal(_level0(tmp_path / "out.ome.zarr"), data)
    # The work ran on the cluster: its scheduler moved at least every block through its states.
    assert _transitions(cluster) - before >= report.written_blocks, "the blocks did not run on the gateway cluster"
    # Progress as locally: increasing counts up to the total.
    level0 = [p for p in seen if p.total and p.done]
    assert level0 and level0[-1].done == level0[-1].total
    assert [p.done for p in level0] == sorted(p.done for p in level0)

    # And to OME-TIFF: the TIFF writer's blocks go the same way.
    bioimnb.convert(src, tmp_path / "out.ome.tif", scheduler=cluster)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out.ome.tif", level=0).reshape(2, SIZE, SIZE), data)


def test_cancel_on_gateway_then_resume(cluster: Any, source: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    src, data = source
    dest = tmp_path / "cancelled.ome.zarr"
    cancel = threading.Event()
    counts: list[int] = []

    def stop_after_three(p: Progress) -> None:
        counts.append(p.done)
        if p.done >= 3:
            cancel.set()

    with pytest.raises(Cancelled) as info:
        bioimnb.convert(src, dest, chunks=128, shards=128, scheduler=cluster, progress=stop_after_three, cancel=cancel)
    message = str(info.value)
    assert "\n" not in message and str(dest.name) in message and "cancelled" in message
    assert bioimnb.open_image(dest).status().get("incomplete") is True
    total = 2 * (SIZE // 128) ** 2
    assert max(counts) < total, "the cancel came too late to stop anything"

    report = bioimnb.convert(src, dest, resume=True, scheduler=cluster)
    assert report.resumed_blocks >= 3
    np.testing.assert_array_equal(_level0(dest), data)
    assert not bioimnb.open_image(dest).status().get("incomplete")


def test_configured_default_scheduler(
    gateway: Gateway, cluster: Any, source: tuple[Path, np.ndarray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ``scheduler=``: BIOIMNB_DASK_SCHEDULER names the running gateway cluster, and
    dask-gateway's own config (what a hub admin sets) says where the gateway is."""
    import dask.config

    src, data = source
    before = _transitions(cluster)
    monkeypatch.setenv("BIOIMNB_DASK_SCHEDULER", f"gateway:{cluster.name}")
    settings = {
        "gateway.address": gateway.address,
        "gateway.proxy-address": gateway.proxy_address,
        "gateway.auth.type": "basic",
        "gateway.auth.kwargs": {"username": "student", "password": gateway.password},
    }
    with dask.config.set(settings):
        report = bioimnb.convert(src, tmp_path / "default.ome.zarr")
    np.testing.assert_array_equal(_level0(tmp_path / "default.ome.zarr"), data)
    assert _transitions(cluster) - before >= report.written_blocks, "the default scheduler was not used"


def test_convert_from_a_notebook_kernel(gateway: Gateway, cluster: Any, source: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    """What a hub user types: a kernel connects to the gateway and converts on its cluster."""
    src, data = source
    dest = tmp_path / "from-notebook.ome.zarr"
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "from dask_gateway import Gateway, BasicAuth\n"
            f"gw = Gateway({gateway.address!r}, proxy_address={gateway.proxy_address!r},"
            f" auth=BasicAuth('student', {gateway.password!r}))\n"
            f"cluster = gw.connect({cluster.name!r})"
        ),
        nbformat.v4.new_code_cell(
            "import bioimnb, json\n"
            "steps = []\n"
            f"report = bioimnb.convert({str(src)!r}, {str(dest)!r}, scheduler=cluster, progress=steps.append)\n"
            "print(json.dumps({'blocks': report.written_blocks, 'steps': len(steps), 'checks': report.checks}))"
        ),
    ]
    NotebookClient(nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    out = [o for o in nb.cells[1].outputs if o.get("output_type") == "stream"]
    result = json.loads(out[-1]["text"].strip().splitlines()[-1])
    assert result["blocks"] >= 1 and result["steps"] >= 1
    assert any("checksums" in c for c in result["checks"])
    np.testing.assert_array_equal(_level0(dest), data)


def test_scan_on_gateway_cluster_equals_local_scan(cluster: Any, tmp_path: Path) -> None:
    """``scan(..., scheduler=cluster)``: the headers are read on the cluster, the facts are those
    of a local scan."""
    from bioimnb.core.demo import make_demo_data

    make_demo_data(tmp_path / "data", small=True)
    (tmp_path / "data" / "broken.tif").write_bytes(b"not a TIFF at all")

    def facts(**kwargs: Any) -> dict[str, tuple[Any, ...]]:
        return {
            Path(f.path).name: (f.kind, f.format, f.bytes, json.dumps(f.scenes, sort_keys=True), bool(f.error))
            for f in bioimnb.scan(tmp_path / "data", cache=False, **kwargs)
        }

    before = _transitions(cluster)
    remote = facts(scheduler=cluster)
    assert _transitions(cluster) - before >= 4, "the scan did not run on the gateway cluster"
    assert remote == facts(scheduler="threads")
    assert remote["broken.tif"][-1] is True and remote["cells.ome.tif"][1] == "OME-TIFF"


def test_scheduler_gateway_makes_and_shuts_down_its_own_cluster(
    gateway: Gateway, source: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    """``scheduler="gateway"``: a new cluster from dask-gateway's config, adapting from one
    worker, used for the job and shut down after it."""
    import dask.config

    src, data = source
    client = gateway.client()
    settings = {
        "gateway.address": gateway.address,
        "gateway.proxy-address": gateway.proxy_address,
        "gateway.auth.type": "basic",
        "gateway.auth.kwargs": {"username": "student", "password": gateway.password},
        "bioimnb.gateway-max-workers": 1,
    }
    running = {c.name for c in client.list_clusters()}
    with dask.config.set(settings):
        report = bioimnb.convert(src, tmp_path / "own.ome.zarr", chunks=256, shards=256, scheduler="gateway")
    assert report.written_blocks >= 32
    np.testing.assert_array_equal(_level0(tmp_path / "own.ome.zarr"), data)
    # No cluster of ours is left running.
    assert {c.name for c in client.list_clusters()} <= running
