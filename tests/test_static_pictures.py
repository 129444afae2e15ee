"""Notebooks that travel: a viewer's output holds a still picture of its view (``image/png``)
and a caption (``text/plain``) next to the widget view, rendered in the kernel; a headless run
stores the picture of the last view."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import dask.array as da
import nbformat
import numpy as np
import pytest
import tifffile
from nbclient import NotebookClient
from PIL import Image

import bioimnb
from bioimnb.core.images import open_image
from bioimnb.core.tiles import TileRenderer
from bioimnb.core.tiles.snapshot import snapshot

WIDGET = "application/vnd.jupyter.widget-view+json"
SIZE = 2048
RED, GREEN, YELLOW, BLACK = (255, 0, 0), (0, 255, 0), (255, 255, 0), (0, 0, 0)


def quadrants(path: Path) -> None:
    """2-channel uint16 pyramid (2048 .. 256 px, 256-px tiles): channel 0 is 1000 on the left
    half, channel 1 is 1000 on the top half, 0 elsewhere.  Red + green with a 0..1000 window:
    yellow top left, green top right, red bottom left, black bottom right."""
    ch0 = np.zeros((SIZE, SIZE), np.uint16)
    ch0[:, : SIZE // 2] = 1000
    ch1 = np.zeros((SIZE, SIZE), np.uint16)
    ch1[: SIZE // 2] = 1000
    levels = [np.stack([ch0, ch1])]
    while levels[-1].shape[-1] > 256:
        levels.append(np.ascontiguousarray(levels[-1][:, ::2, ::2]))
    opts = {"tile": (256, 256), "compression": "zlib", "photometric": "minisblack"}
    with tifffile.TiffWriter(path, bigtiff=True, ome=True) as tw:
        tw.write(
            levels[0],
            subifds=len(levels) - 1,
            metadata={"axes": "CYX", "Name": "quadrants"},
            **opts,
        )
        for level in levels[1:]:
            tw.write(level, subfiletype=1, **opts)


CHANNELS = [
    {"index": 0, "visible": True, "color": "FF0000", "min": 0, "max": 1000},
    {"index": 1, "visible": True, "color": "00FF00", "min": 0, "max": 1000},
]


def decode(bundle: dict) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(bundle["image/png"]))).convert("RGBA"))


@pytest.fixture(scope="module")
def quad(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("quad") / "quad.ome.tif"
    quadrants(path)
    return path


def test_bundle_holds_widget_png_and_caption(quad: Path) -> None:
    v = bioimnb.view(quad, view={"channels": CHANNELS})
    data, metadata = v._repr_mimebundle_()
    assert data[WIDGET]["model_id"] == v.model_id  # the live widget is still there
    assert data["text/plain"] == "bioimnb viewer: quad.ome.tif, scene 0, level 2, 512 x 512 px"
    assert metadata["image/png"] == {"width": 512, "height": 512}
    px = decode(data)
    assert px.shape == (512, 512, 4)
    assert (px[..., 3] == 255).all()
    # fitted: the whole image from level 2 (512 px): exact quadrants, edges at 256
    assert (px[:256, :256, :3] == YELLOW).all()
    assert (px[:256, 256:, :3] == GREEN).all()
    assert (px[256:, :256, :3] == RED).all()
    assert (px[256:, 256:, :3] == BLACK).all()
    v.close()


def test_picture_follows_view_channels_and_contrast(quad: Path) -> None:
    v = bioimnb.view(quad, view={"channels": CHANNELS})
    v.go_to(1024, 1024, zoom=1.0)  # an 800 x 520 screen: x 624..1424, y 764..1284 of level 0
    v.set_channel(1, visible=False)
    data, _ = v._repr_mimebundle_()
    assert data["text/plain"] == (
        "bioimnb viewer: quad.ome.tif, scene 0, level 0, x 624-1424, y 764-1284, 512 x 333 px"
    )
    px = decode(data)[..., :3]
    assert px.shape == (333, 512, 3)
    # output px j shows level-0 x = 624 + (j + 0.5) * 800 / 512: the left half (x < 1024) is
    # red up to j = 255, black from 256
    assert (px[:, :256] == RED).all() and (px[:, 256:] == BLACK).all()
    v.set_channel(0, max=2000)  # half the contrast: 1000 shows at 128 (rounded)
    px = decode(v._repr_mimebundle_()[0])[..., :3]
    assert set(map(tuple, px[:, :256].reshape(-1, 3))) == {(128, 0, 0)}
    v.close()


def test_picture_is_never_larger_than_the_view(quad: Path) -> None:
    """Zoomed in 4x, a region 200 x 130 px of level 0 gives a 512 x 333 picture sampled from
    level 0 (nearest neighbour); the 4x screen is cut to what fits 512 px."""
    with open_image(quad) as img:
        r = TileRenderer(img)
        view = {"center_x": 1024, "center_y": 1024, "zoom": 4.0, "channels": CHANNELS}
        shot = snapshot(r, view)
        assert (shot.level, shot.width, shot.height) == (0, 512, 333)
        assert shot.region == (924.0, 959.0, 1124.0, 1089.0)
        # a small image at 1:1 is not blown up
        shot = snapshot(r, {"center_x": 100, "center_y": 100, "zoom": 1.0, "channels": CHANNELS})
        assert shot.region == (0.0, 0.0, 500.0, 360.0)
        assert (shot.width, shot.height) == (500, 360)


def test_lazy_array_picture_computes_only_visible_chunks() -> None:
    """A 20,000-px dask array opens at 1:1 in its centre: the picture computes the chunks under
    the 800 x 520 screen only (the in-memory viewer's bound), never the whole array."""
    computed: list[tuple[int, ...]] = []

    def count(block: np.ndarray, block_info: dict | None = None) -> np.ndarray:
        if block_info is not None:
            computed.append(tuple(block_info[0]["chunk-location"]))  # type: ignore[index]
        return block

    lazy = da.ones((20000, 20000), dtype=np.uint16, chunks=512).map_blocks(count, dtype=np.uint16)
    v = bioimnb.view(lazy)
    assert v.view["zoom"] == 1.0
    v.go_to(3000, 3000)  # away from the centre the contrast was sampled from
    computed.clear()
    data, _ = v._repr_mimebundle_()
    # screen: x 2600..3400, y 2740..3260 -> chunk columns and rows 5..6
    assert sorted(computed) == [(y, x) for y in (5, 6) for x in (5, 6)]
    assert decode(data).shape == (333, 512, 4)
    v.close()


def test_failed_picture_still_shows_the_widget(quad: Path) -> None:
    v = bioimnb.view(quad, view={"channels": CHANNELS})

    def broken(*_a: object, **_k: object) -> None:
        raise OSError(f"{quad}: read failed")

    v._renderer.render_rgba = broken  # type: ignore[method-assign]
    data, _ = v._repr_mimebundle_()
    assert WIDGET in data and "image/png" not in data
    assert data["text/plain"] == (
        "bioimnb viewer: quad.ome.tif, scene 0 (no still picture: quad.ome.tif: OSError: quad.ome.tif: read failed)"
    )
    assert str(quad.parent) not in data["text/plain"]  # display name only
    v.close()


def _viewer_notebook(quad: Path, *later: str) -> nbformat.NotebookNode:
    """A notebook whose first cell shows the viewer of ``quad`` (as ``v``), then ``later``
    cells, executed headless by nbclient."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            f"import bioimnb\nv = bioimnb.view({str(quad)!r}, view={{'channels': {CHANNELS!r}}})\nv"
        ),
        *(nbformat.v4.new_code_cell(code) for code in later),
    ]
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    return nb


def test_headless_run_stores_the_last_view(quad: Path, tmp_path: Path) -> None:
    """nbclient (no browser): the viewer's output holds widget + picture + caption; a later cell
    that moves the view updates that output, so the saved notebook shows the last view."""
    nb = _viewer_notebook(quad, "v.go_to(1024, 1024, zoom=1.0)\nv.set_channel(1, visible=False)", "print('unrelated')")
    path = tmp_path / "saved.ipynb"
    nbformat.write(nb, path)
    saved = nbformat.read(path, as_version=4)
    outs = saved.cells[0].outputs
    assert len(outs) == 1 and outs[0].output_type == "display_data"
    data = outs[0].data
    assert WIDGET in data
    assert data["text/plain"].startswith(
        "bioimnb viewer: quad.ome.tif, scene 0, level 0, x 624-1424"
    )
    px = decode(data)[..., :3]
    assert px.shape == (333, 512, 3)
    assert (px[:, :256] == RED).all() and (px[:, 256:] == BLACK).all()
    assert outs[0].metadata["image/png"] == {"width": 512, "height": 333}
    assert not saved.cells[1].outputs  # the update went to the viewer's output, not a new one


def test_convert_panel_output_holds_its_final_state(quad: Path, tmp_path: Path) -> None:
    """A ConvertPanel displayed headless: its output's text and static HTML end at "done" with
    the report (updated after the cell that waited), and a failed one shows its error line."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            f"import bioimnb\npanel = bioimnb.ConvertPanel({str(quad)!r}, {str(tmp_path / 'q.ome.zarr')!r})\n"
            "panel.start()\npanel"
        ),
        nbformat.v4.new_code_cell("report = panel.wait()\nprint(report.format)"),
        nbformat.v4.new_code_cell(
            f"bad = bioimnb.ConvertPanel({str(tmp_path / 'missing.tif')!r}, {str(tmp_path / 'm.ome.zarr')!r})\n"
            "bad.start()\nbad._thread.join()\nbad"
        ),
    ]
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    (out,) = nb.cells[0].outputs
    assert WIDGET in out.data
    assert out.data["text/plain"].startswith(
        f"bioimnb convert: {quad} -> {tmp_path / 'q.ome.zarr'}: "
    )
    assert " done in " in out.data["text/plain"] and out.data["text/plain"].count("\n") == 0
    html = out.data["text/html"]
    assert "<b>Convert</b>" in html and "<li>" in html and 'value="1.000"' in html
    (bad,) = nb.cells[2].outputs
    text = bad.data["text/plain"]
    assert text.startswith(f"bioimnb convert: {tmp_path / 'missing.tif'} -> ")
    assert text.endswith(
        f"m.ome.zarr: \u26a0 {tmp_path / 'missing.tif'}: no such file or directory"
    )
    assert "bioimnb-convert-error" in bad.data["text/html"]


def test_browser_output_holds_a_static_listing(quad: Path, tmp_path: Path) -> None:
    folder = tmp_path / "shown"
    folder.mkdir()
    (folder / "quad.ome.tif").write_bytes(quad.read_bytes())
    (folder / "<i>odd&.txt").write_text("x" * 2048)
    (folder / "sub").mkdir()
    data, _ = bioimnb.browse(folder)._repr_mimebundle_()
    assert WIDGET in data
    assert data["text/plain"] == f"bioimnb browser: {folder}, 3 entries"
    html = data["text/html"]
    assert "<td>quad.ome.tif</td><td>image</td><td>OME-TIFF</td>" in html
    assert "<td>&lt;i&gt;odd&amp;.txt</td><td>file</td><td></td><td>2.0 KiB</td>" in html
    assert "<td>sub</td><td>folder</td>" in html


def test_no_update_once_a_browser_draws_the_viewer(quad: Path) -> None:
    """Once the browser has talked to the viewer (it draws it), later view changes leave the
    output alone: re-publishing it would make JupyterLab draw the widget anew under the user."""
    nb = _viewer_notebook(
        quad,
        # what the viewer's front end sends first: an info request (as a comm message would)
        "v._on_msg(v, {'type': 'info', 'id': 'first', 'scene': 0}, [])",
        "v.go_to(1024, 1024, zoom=1.0)",
    )
    (out,) = nb.cells[0].outputs
    assert out.data["text/plain"] == "bioimnb viewer: quad.ome.tif, scene 0, level 2, 512 x 512 px"
    assert WIDGET in out.data
