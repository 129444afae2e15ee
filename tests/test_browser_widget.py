"""The storage browser widget's logic, without a browser: a real SeaweedFS bucket with 10,000
small objects, an OME-Zarr and an OME-TIFF; listing, paging, sorting, filtering, thumbnails,
selection, actions, errors, and that no credential reaches the widget's state or messages."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
import pytest
import tifffile

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fixtures  # noqa: E402

import bioimnb  # noqa: E402
from bioimnb.core.images import open_image  # noqa: E402
from bioimnb.core.locations import Location  # noqa: E402
from bioimnb.widgets.browser import BrowsableLocation  # noqa: E402
from bioimnb.widgets.browser_ui import Browser  # noqa: E402

MANY = 10_000


def populate(s3: Any, tmp: Path) -> str:
    """A bucket: ``many/`` with 10,000 small objects, an OME-TIFF (``cells.ome.tif``, 2
    channels, 800 x 600, 3 levels) and an OME-Zarr (``tissue.ome.zarr``); made once per
    session's S3 server (the server-route tests use the same bucket)."""
    made = getattr(s3, "_browse_bucket", None)
    if made:
        return str(made)
    bucket = s3.make_bucket("browse")
    tif = tmp / "cells.ome.tif"
    fixtures.ome_tiff_subifd(tif, scenes=1, levels=3)
    zarr = tmp / "tissue.ome.zarr"
    fixtures.ngff_image(zarr, "0.4", levels=3)
    objects = {f"many/obj-{i:05d}.bin": b"x" * (i % 97 + 1) for i in range(MANY)}
    s3.put(bucket, objects)
    fs = s3.fs
    fs.put(str(tif), f"{bucket}/many/cells.ome.tif")
    fs.put(str(zarr), f"{bucket}/many/tissue.ome.zarr", recursive=True)
    s3._browse_bucket = bucket
    return bucket


@pytest.fixture(scope="module")
def bucket(s3: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    return populate(s3, tmp_path_factory.mktemp("browse-data"))


@pytest.fixture(scope="module")
def listed(s3: Any, bucket: str) -> tuple[Browser, Sent]:
    """One browser on the 10,000-object prefix, fully listed (shared: listing it costs seconds)."""
    widget, sent = _browser(f"s3://{bucket}/many/", **s3.storage_options)
    widget.wait(120)
    return widget, sent


class Sent:
    """Collects what the panel sends to the front end (custom messages and buffers)."""

    def __init__(self) -> None:
        self.items: list[tuple[dict[str, Any], list[bytes]]] = []
        self.cond = threading.Condition()

    def __call__(self, content: dict[str, Any], buffers: list[bytes] | None = None) -> None:
        with self.cond:
            self.items.append((content, [bytes(b) for b in buffers or []]))
            self.cond.notify_all()

    def wait(self, test: Any, timeout: float = 60) -> tuple[dict[str, Any], list[bytes]]:
        with self.cond:
            found: list[Any] = []

            def ready() -> bool:
                found[:] = [x for x in self.items if test(x[0])]
                return bool(found)

            assert self.cond.wait_for(ready, timeout), "no such message"
            return found[0]


def _browser(url: str, **options: Any) -> tuple[Browser, Sent]:
    b = bioimnb.browse(url, **options)
    widget = b.widget
    sent = Sent()
    widget.panel.send = sent  # type: ignore[method-assign]
    return widget, sent


def _msg(widget: Browser, content: dict[str, Any]) -> None:
    widget.panel._handle_custom_msg(content, [])  # as the comm delivers a front-end message


def test_browse_is_a_location_for_code_and_a_widget_when_shown(s3: Any, bucket: str) -> None:
    loc = bioimnb.browse(f"s3://{bucket}/many/", **s3.storage_options)
    assert isinstance(loc, Location) and isinstance(loc, BrowsableLocation)
    page = loc.list(page_size=100)
    assert len(page.entries) == 100 and page.next_page
    assert loc._browser is None  # nothing built until it is shown
    bundle = loc._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "application/vnd.jupyter.widget-view+json" in data
    assert isinstance(loc.widget, Browser) and loc.widget is loc.widget


def test_listing_paging_sort_filter_of_10000_objects(listed: tuple[Browser, Sent], bucket: str) -> None:
    widget, sent = listed
    p = widget.panel
    assert p.complete and not p.loading and p.error == ""
    assert p.loaded == p.total == MANY + 2
    assert p.location == f"s3://{bucket}/many"
    assert [c["label"] for c in p.crumbs][-2:] == [bucket, "many"]
    # The front end asks for a window of rows; only those come back.
    _msg(widget, {"type": "rows", "id": "a", "start": 5000, "count": 50})
    reply, _ = sent.wait(lambda m: m.get("id") == "a")
    assert [r["i"] for r in reply["rows"]] == list(range(5000, 5050))
    assert len(json.dumps(reply)) < 20_000
    names = [r["name"] for r in widget.rows(0, 3)]
    assert names == ["cells.ome.tif", "obj-00000.bin", "obj-00001.bin"]  # case-insensitive name order
    # Images: one entry each (the OME-Zarr's chunks are not listed), classified.
    widget.filter(kind="image")
    rows = widget.rows(0, 10)
    assert [(r["name"], r["kind"], r["format"]) for r in rows] == [
        ("cells.ome.tif", "image", "OME-TIFF"),
        ("tissue.ome.zarr", "image", "OME-Zarr"),
    ]
    assert p.total == 2 and sorted(p.formats) == ["OME-TIFF", "OME-Zarr"]
    widget.filter(text="obj-0999")
    assert p.total == 10 and widget.rows(0, 1)[0]["name"] == "obj-09990.bin"
    widget.filter(format="OME-Zarr")
    assert [r["name"] for r in widget.rows(0, 5)] == ["tissue.ome.zarr"]
    widget.filter()
    widget.sort("size", descending=True)
    top = widget.rows(0, 2)
    assert top[0]["name"] == "cells.ome.tif" and top[1]["size"] == 97
    last = widget.rows(p.total - 1, 1)[0]
    assert last["name"] == "tissue.ome.zarr" and last["size"] is None  # unknown size last
    widget.sort("kind")
    assert widget.rows(0, 1)[0]["kind"] == "image"
    with pytest.raises(ValueError):
        widget.sort("colour")
    widget.sort("name")


def test_thumbnails_and_facts_of_s3_images(s3: Any, bucket: str, listed: tuple[Browser, Sent]) -> None:
    widget, sent = listed
    _msg(widget, {"type": "thumb", "name": "cells.ome.tif"})
    reply, buffers = sent.wait(lambda m: m.get("type") == "thumb" and m.get("name") == "cells.ome.tif")
    assert reply["summary"] == {"dims": "800 x 600", "levels": 3, "channels": 2, "dtype": "uint16", "scenes": 1, "completeness": reply["summary"]["completeness"]}
    png = imagecodecs.png_decode(buffers[0])
    # From the coarsest level (200 x 150), reduced to at most 128 a side.
    assert png.shape == (75, 100, 4)
    with open_image(f"s3://{bucket}/many/cells.ome.tif", **s3.storage_options) as img:
        coarse = img.levels[-1].compute()[0, 0, 0]
    bright = coarse[::2, ::2] > np.percentile(coarse, 99.9)
    assert (png[..., 0][bright] == 255).all()  # channel 0 is red, saturated at its auto maximum
    png2, summary = widget.thumbnail("tissue.ome.zarr")
    assert png2 is not None and summary["levels"] == 3
    assert widget.rows(0, 1)[0]["dims"] == "800 x 600"  # rows carry the summary once known
    widget.panel.facts = {}
    widget.select(["cells.ome.tif"])
    deadline = time.monotonic() + 60
    while widget.panel.facts.get("loading", True) and time.monotonic() < deadline:
        time.sleep(0.05)
    facts = widget.panel.facts
    assert facts["format"] == "OME-TIFF" and facts["scenes"][0]["shape"] == [1, 2, 1, 600, 800]
    assert facts["incomplete"] is False and facts["error"] is None
    # The metadata completeness of the selected image, as the curation module assesses it.
    from bioimnb.core.curation.completeness import assess
    from bioimnb.core.facts import image_facts

    want = assess(image_facts(f"s3://{bucket}/many/cells.ome.tif", **s3.storage_options))
    assert want["missing"], "the test image lacks some metadata (an objective, a date...)"
    assert facts["completeness"] == f"{100 * want['score']:.0f} % (missing: {', '.join(want['missing'])})"
    # ...and the listing's column: the same score, from the headers opened for the thumbnail.
    _, summary = widget.thumbnail("cells.ome.tif")
    assert summary["completeness"] == round(100 * want["score"]) and 0 < summary["completeness"] < 100
    row = next(r for r in widget.rows(0, 50) if r["name"] == "cells.ome.tif")
    assert row["completeness"] == summary["completeness"]
    assert {a["name"] for a in widget.panel.actions} >= {"preview", "convert"}


def test_selection_round_trip_and_actions(
    s3: Any, bucket: str, tmp_path: Path, listed: tuple[Browser, Sent]
) -> None:
    widget, _ = listed
    # What the front end sets on a Ctrl-click multi-select:
    widget.panel.selection = ["cells.ome.tif", "tissue.ome.zarr", "obj-00001.bin"]
    chosen = widget.selected
    assert [s.url for s in chosen] == [
        f"s3://{bucket}/many/cells.ome.tif",
        f"s3://{bucket}/many/tissue.ome.zarr",
        f"s3://{bucket}/many/obj-00001.bin",
    ]
    assert chosen[0].storage_options == s3.storage_options
    assert s3.secret not in repr(chosen) and s3.key not in repr(chosen)
    with chosen[1].open() as img:
        assert img.format == "OME-Zarr"
    # Preview: the viewer below the listing, on the selected image.
    viewer = widget.preview("cells.ome.tif")
    assert viewer is not None and widget.output.children[-1] is viewer
    # Convert: an S3 image to a local OME-Zarr, pixels identical.
    panel = widget.convert("cells.ome.tif", str(tmp_path / "out.ome.zarr"), chunks=128, levels=2)
    panel.wait(120)
    with open_image(tmp_path / "out.ome.zarr") as out, chosen[0].open() as src:
        np.testing.assert_array_equal(out.levels[0].compute(), src.levels[0].compute())


def test_navigation_and_errors_show_in_the_widget(s3: Any, bucket: str, tmp_path: Path) -> None:
    widget, _ = _browser(f"s3://{bucket}/", **s3.storage_options)
    widget.wait(60)
    assert [r["name"] for r in widget.rows(0, 5)] == ["many"]
    widget.open_entry("many")
    widget.wait(120)
    assert widget.url == f"s3://{bucket}/many" and widget.panel.can_back
    widget.back()
    widget.wait(60)
    assert widget.url == f"s3://{bucket}" and widget.panel.total == 1
    widget.go(f"s3://no-such-bucket-{bucket}/x/")
    widget.wait(60)
    assert "no-such-bucket" in widget.error and "\n" not in widget.error
    # Wrong credentials: access denied, said in one line, the secret not in it.
    wrong, _ = _browser(f"s3://{bucket}/", endpoint_url=s3.endpoint_url, key=s3.key, secret="WRONGSECRET99")
    wrong.wait(60)
    assert wrong.error and "WRONGSECRET99" not in wrong.error
    # The credentials form: the front end sends them once; the listing works, state has none.
    wrong.set_credentials(key=s3.key, secret=s3.secret)
    wrong.wait(60)
    assert wrong.error == "" and wrong.panel.total == 1
    # Endpoint down.
    down, _ = _browser(f"s3://{bucket}/", endpoint_url="http://127.0.0.1:9", key="k", secret="s")
    down.wait(120)
    assert down.error.startswith(f"s3://{bucket}") and "\n" not in down.error
    # Local folders: up, crumbs.
    (tmp_path / "sub").mkdir()
    local, _ = _browser(str(tmp_path / "sub"))
    local.wait(30)
    local.up()
    local.wait(30)
    assert local.url == str(tmp_path) and "sub" in [r["name"] for r in local.rows(0, 10)]


def test_no_credential_in_widget_state_or_messages(
    s3: Any, bucket: str, listed: tuple[Browser, Sent]
) -> None:
    widget, sent = listed
    widget.select([])
    widget.select(["cells.ome.tif"])
    _msg(widget, {"type": "thumb", "name": "cells.ome.tif"})
    _msg(widget, {"type": "rows", "id": "z", "start": 0, "count": 100})
    sent.wait(lambda m: m.get("type") == "thumb")
    sent.wait(lambda m: m.get("id") == "z")
    deadline = time.monotonic() + 60
    while widget.panel.facts.get("loading", True) and time.monotonic() < deadline:
        time.sleep(0.05)
    states = [widget.panel.get_state(), widget.get_state(), widget.output.get_state()]
    for state in states:
        state.pop("_esm", None)
    text = json.dumps(states, default=lambda _: "<binary>") + json.dumps(
        [m for m, _ in sent.items], default=str
    )
    for secret in (s3.key, s3.secret):
        assert secret not in text
        assert all(secret.encode() not in b for _, bufs in sent.items for b in bufs)
    assert s3.secret not in repr(widget) and s3.secret not in repr(bioimnb.browse(f"s3://{bucket}/", **s3.storage_options))


def test_http_ome_zarr_is_browsed_as_one_image(http_server: Any, tmp_path: Path) -> None:
    site = tmp_path / "site"
    fixtures.ngff_image(site / "remote.ome.zarr", "0.4", levels=2)
    (site / "readme.txt").write_text("hello")
    widget, _ = _browser(http_server(site) + "/")
    widget.wait(60)
    rows = {r["name"]: r for r in widget.rows(0, 10)}
    assert (rows["remote.ome.zarr"]["kind"], rows["remote.ome.zarr"]["format"]) == ("image", "OME-Zarr")
    assert rows["readme.txt"]["kind"] == "file"
    png, summary = widget.thumbnail("remote.ome.zarr")
    assert png is not None and summary["levels"] == 2


@pytest.fixture(scope="module")
def ip() -> Any:
    from IPython.testing.globalipapp import get_ipython

    shell = get_ipython()
    shell.run_line_magic("load_ext", "bioimnb")
    return shell


def test_magics_help_browse_info_and_unknown(ip: Any, tmp_path: Path, capsys: Any) -> None:
    from IPython.core.error import UsageError

    from bioimnb.magics import _commands, _parser

    names = list(_commands(_parser()))
    assert {"help", "info", "ls", "scan", "convert", "view", "browse"} <= set(names)
    for line in ("", "help"):
        assert ip.run_line_magic("bioim", line) is None
        out = capsys.readouterr().out
        listed = [row.split()[0] for row in out.splitlines() if row.startswith("  ")]
        assert listed == names  # every registered subcommand, one line each
    ip.run_line_magic("bioim", "help convert")
    out = capsys.readouterr().out
    assert "--ngff" in out and "--resume" in out and "usage: %bioim convert" in out
    with pytest.raises(UsageError) as info:
        ip.run_line_magic("bioim", "frobnicate x")
    message = str(info.value)
    assert "\n" not in message and "'frobnicate'" in message and all(n in message for n in names)
    with pytest.raises(UsageError):
        ip.run_line_magic("bioim", "help frobnicate")
    fixtures.ome_tiff_subifd(tmp_path / "m.ome.tif", scenes=1)
    assert ip.run_line_magic("bioim", f"info {tmp_path / 'm.ome.tif'}") is None
    out = capsys.readouterr().out
    assert "OME-TIFF" in out and "MultiscaleImage" not in out
    shown = ip.run_line_magic("bioim", f"browse {tmp_path}")
    assert isinstance(shown, Browser)
    shown.wait(30)
    assert [r["name"] for r in shown.rows(0, 5)] == ["m.ome.tif"]
    with pytest.raises(UsageError, match="no such file"):
        ip.run_line_magic("bioim", f"info {tmp_path / 'missing.czi'}")


def test_metadata_copy_and_dmp_actions_call_the_public_api(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    fixtures.ome_tiff_subifd(src / "m.ome.tif", scenes=1)
    widget, _ = _browser(str(src))
    widget.wait(30)
    widget.select(["m.ome.tif"])
    assert [a["name"] for a in widget.panel.actions] == ["preview", "convert", "metadata", "copy", "dmp"]
    _msg(widget, {"type": "action", "name": "metadata"})
    assert widget.error == "" and len(widget.output.children) == 2
    _msg(widget, {"type": "action", "name": "copy"})
    dest_field, button = widget.output.children[1], widget.output.children[2]
    dest_field.value = str(tmp_path / "copy")
    button.click()
    assert widget.error == "", widget.error
    copied = [p for p in (tmp_path / "copy").rglob("m.ome.tif")]
    assert copied and copied[0].read_bytes() == (src / "m.ome.tif").read_bytes()
    _msg(widget, {"type": "action", "name": "dmp"})
    assert widget.error == "", widget.error
    assert len(widget.output.children) == 2


def test_thumbnails_of_rows_scrolled_away_are_not_made(tmp_path: Path, monkeypatch: Any) -> None:
    """The front end cancels thumbnails of rows that left the view: one queued behind busy
    threads is never made nor sent; one already made is sent as usual."""
    from bioimnb.widgets import browser_ui

    for i in range(browser_ui.THUMB_THREADS + 3):
        tifffile.imwrite(tmp_path / f"img{i:02d}.tif", np.full((16, 16), i, np.uint8))
    widget, sent = _browser(str(tmp_path))
    widget.wait(60)
    release = threading.Event()
    started: list[str] = []
    made: list[str] = []
    original = type(widget).thumbnail

    def slow(self: Any, name: str) -> Any:
        started.append(name)
        release.wait(30)
        made.append(name)
        return original(self, name)

    monkeypatch.setattr(type(widget), "thumbnail", slow)
    names = [f"img{i:02d}.tif" for i in range(browser_ui.THUMB_THREADS + 3)]
    for name in names:
        _msg(widget, {"type": "thumb", "name": name})
    deadline = time.monotonic() + 30
    while len(started) < browser_ui.THUMB_THREADS:  # every thread busy, the rest queued
        assert time.monotonic() < deadline
        time.sleep(0.01)
    busy = list(started)
    queued = [n for n in names if n not in busy]
    for name in queued[:2]:
        _msg(widget, {"type": "thumb-cancel", "name": name})
    _msg(widget, {"type": "thumb-cancel", "name": busy[0]})  # already running: still sent
    release.set()
    for name in [*busy, queued[2]]:
        sent.wait(lambda m, n=name: m.get("type") == "thumb" and m.get("name") == n)
    time.sleep(0.5)
    replied = {m.get("name") for m, _ in sent.items if m.get("type") == "thumb"}
    assert replied == {*busy, queued[2]} and not set(queued[:2]) & set(made), (replied, made)
    assert widget._thumb_jobs == {}
