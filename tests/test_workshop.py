"""What a room of beginners hits in the first hour, checked.

* The workshop notebooks' own cells (taken from the notebooks, not copies) run in a kernel whose
  ``PATH`` does NOT hold the environment's ``bin`` folder: the command-line cells still work;
  notebook 01's HTTP cell prints no server log lines; notebook 03's single tile is not black and
  the view values it shows are rounded.  (tests/test_notebooks.py runs every notebook in full
  under the same PATH.)
* No notebook calls a bare ``bioimnb`` command, nothing calls a released notebook "coming".
* ConvertPanel: "verifying" once every block is written (never "ETA 0s" while verification runs),
  errors shown in full, wrapped and styled as errors, Cancel hidden once the run ended.
* ``%bioim convert``: the panel states the life cycle; ``--wait`` waits and an interrupt cancels
  cleanly; an output left incomplete is reported in one line saying how to finish it, and
  ``--resume`` finishes it with the source's pixels.
* Running the notebooks leaves the repository clean: what they write is git-ignored, and
  ``make lab`` installs a git filter that keeps saved outputs out of the checkout.
"""

from __future__ import annotations

import _thread
import base64
import io
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fixtures  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
#: The workshop's first hour (later notebooks belong to their capabilities' own tests).
WORKSHOP = ["01-open-any-image.ipynb", "02-convert.ipynb", "03-preview.ipynb"]


def _cell(name: str, needle: str) -> str:
    """The source of the one code cell of notebook ``name`` containing ``needle``."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    hits = [c.source for c in nb.cells if c.cell_type == "code" and needle in c.source]
    assert len(hits) == 1, f"{name}: {len(hits)} code cells contain {needle!r}"
    return hits[0]


def _path_without_env_bin() -> str:
    env_bin = os.path.dirname(sys.executable)
    parts = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and os.path.realpath(p) != os.path.realpath(env_bin)]
    return os.pathsep.join(parts or ["/usr/bin", "/bin"])


# -- static: what the notebooks say ------------------------------------------------------------


def test_notebooks_call_the_cli_of_their_own_kernel() -> None:
    for path in (NOTEBOOKS / name for name in WORKSHOP):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            for line in cell.source.splitlines():
                assert not re.match(r"\s*!\s*bioimnb\b", line), f"{path.name}: {line!r} needs bioimnb on PATH"
                if line.lstrip().startswith("!") and "bioimnb" in line:
                    assert "{sys.executable} -m bioimnb" in line, f"{path.name}: {line!r}"
        text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        assert "coming" not in text.lower(), f"{path.name} still announces something as coming"


def test_running_the_notebooks_leaves_the_checkout_clean(tmp_path: Path) -> None:
    """``make lab`` opens notebooks/ itself; what they write is git-ignored and their saved outputs
    are removed by the clean filter it installs: a notebook that was run and saved is unchanged."""
    for path in ("notebooks/converted/x.ome.zarr", "notebooks/data/cells.ome.tif"):
        out = subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO)
        assert out.returncode == 0, f"{path} is not git-ignored"
    make = subprocess.run(["make", "-n", "lab"], cwd=REPO, capture_output=True, text=True)
    assert make.returncode == 0, make.stderr
    assert "--notebook-dir=notebooks" in make.stdout and "filter.bioimnb-notebook.clean" in make.stdout, make.stdout
    # A clone of the repository with the filter installed as make lab does; run (add outputs and
    # widget state to) a notebook, save it: git sees no change.  An edited cell is a change.
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    strip = f"'{sys.executable}' '{REPO / 'tools' / 'nbstrip.py'}'"
    subprocess.run(["git", "config", "filter.bioimnb-notebook.clean", strip], cwd=clone, check=True)
    target = clone / "notebooks" / "01-open-any-image.ipynb"
    nb = nbformat.read(target, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    code[0].outputs = [nbformat.v4.new_output("stream", text="ran\n")]
    code[0].execution_count = 1
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nbformat.write(nb, target)
    # Git compares the filtered content: no difference, and staging everything stages nothing.
    # (`git status` lists a file whose size changed until it is staged: a limit of git filters.)
    assert subprocess.run(["git", "diff", "--quiet"], cwd=clone).returncode == 0
    subprocess.run(["git", "add", "-A"], cwd=clone, check=True)
    status = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True, check=True)
    assert status.stdout == "", status.stdout
    code[0].source += "\n# a participant's own line"
    nbformat.write(nb, target)
    assert subprocess.run(["git", "diff", "--quiet"], cwd=clone).returncode == 1


def test_committed_notebooks_hold_no_outputs() -> None:
    sys.path.insert(0, str(REPO / "tools"))
    try:
        from nbstrip import strip
    finally:
        sys.path.pop(0)
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        text = path.read_text(encoding="utf-8")
        assert strip(text) == text, f"{path.name} holds outputs or is not in nbformat's layout"


# -- the notebooks' own cells in a kernel without the environment's bin on PATH -------------------


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from bioimnb.core.demo import make_demo_data

    work = tmp_path_factory.mktemp("workshop")
    make_demo_data(work / "data")
    return work


def _run(work: Path, cells: list[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("PATH", _path_without_env_bin())
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(work)}}).execute()
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error", "".join(out.get("traceback", []))
    return nb


def _text(cell: Any) -> str:
    return "".join(
        str(out.get("text", "")) + str(out.get("data", {}).get("text/plain", "")) for out in cell.get("outputs", [])
    )


def test_notebook_01_cells_without_env_bin_on_path(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the kernel really lacks it: a bare `bioimnb` is not found there
    setup = "import shutil\nprint('BARE', shutil.which('bioimnb'))"
    nb = _run(
        workdir,
        [
            setup,
            "from pathlib import Path\nimport matplotlib\nmatplotlib.use('agg')\nimport matplotlib.pyplot as plt\n"
            "import numpy as np\nimport bioimnb\ndata = Path('data')",
            _cell("01-open-any-image.ipynb", 'zimg = bioimnb.open_image(data / "tissue.ome.zarr")'),
            _cell("01-open-any-image.ipynb", "http.server"),
            _cell("01-open-any-image.ipynb", "-m bioimnb info"),
        ],
        monkeypatch,
    )
    assert "BARE None" in _text(nb.cells[0])
    http_cell = nb.cells[3]
    assert "same pixels as the local copy: True" in _text(http_cell)
    assert not [o for o in http_cell.outputs if o.get("name") == "stderr"], "the HTTP server logged into the notebook"
    assert "HTTP/1" not in _text(http_cell)
    cli = _text(nb.cells[4])
    assert "command not found" not in cli and "No such file" not in cli
    assert "OME-TIFF" in cli and "cells.ome.tif" in cli and "tissue.ome.zarr" in cli


def _png_pixels(data: str) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))


def test_notebook_03_tile_is_not_black_and_view_is_rounded(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nb = _run(
        workdir,
        [
            "import bioimnb",
            _cell("03-preview.ipynb", 'v = bioimnb.view("data/cells.ome.tif")'),
            _cell("03-preview.ipynb", "def rounded("),
            _cell("03-preview.ipynb", "v.go_to(x=2048"),
            "r = v.renderer",
            _cell("03-preview.ipynb", "r.raw_tile(scene, level"),
        ],
        monkeypatch,
    )
    for index in (2, 3):
        shown = _text(nb.cells[index])
        assert "center_x" in shown or "channels" in shown or "'min'" in shown, shown
        assert not re.search(r"\d+\.\d{3,}", shown), f"unrounded values shown: {shown}"
    pngs = [o["data"]["image/png"] for o in nb.cells[5].outputs if "image/png" in o.get("data", {})]
    assert len(pngs) == 1
    rgb = _png_pixels(pngs[0])
    assert rgb.shape[:2] == (256, 256)
    # Sparse fluorescent cells on a dark background: some pixels at full colour, most not.
    lit = (rgb.max(axis=2) > 64).mean()
    assert rgb.max() >= 200 and 0.01 < lit < 0.5, f"the tile is black or washed out: max {rgb.max()}, lit {lit:.3f}"


# -- ConvertPanel ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("panel")
    fixtures.ome_tiff_subifd(d / "m.ome.tif", scenes=1)
    return d / "m.ome.tif"


def _watch(panel: Any) -> list[str]:
    seen: list[str] = []
    panel.status.observe(lambda change: seen.append(panel.status_text), names="value")
    return seen


def test_panel_says_verifying_and_hides_cancel_after_success(src: Path, tmp_path: Path) -> None:
    from bioimnb.widgets.convert import ConvertPanel

    panel = ConvertPanel(src, tmp_path / "o.ome.zarr", chunks=128, shards=128)
    seen = _watch(panel)
    assert panel.cancel_button.layout.display != "none"
    report = panel.wait(120)
    assert report.written_blocks > 0 and panel.stage == "done"
    verifying = [s for s in seen if "verifying" in s]
    assert verifying, seen
    assert seen.index(verifying[0]) < len(seen) - 1 and seen[-1].startswith("done in")
    assert not [s for s in seen if "ETA 0s" in s], seen
    assert panel.cancel_button.layout.display == "none"
    assert panel.bar.bar_style == "success"


def test_panel_error_is_whole_wrapped_and_styled(src: Path, tmp_path: Path) -> None:
    from bioimnb.widgets.convert import ConvertPanel

    deep = tmp_path / ("a-rather-long-folder-name-without-any-spaces-" * 4) / "out.png"
    panel = ConvertPanel(src, deep)
    with pytest.raises(Exception) as info:
        panel.wait(60)
    message = str(info.value)
    assert panel.stage == "failed" and panel.bar.bar_style == "danger"
    assert panel.status_text.endswith(message)  # the whole line, nothing cut
    assert "bioimnb-convert-error" in panel.status.value
    assert "overflow-wrap: anywhere" in panel.status.value and "--jp-error-color1" in panel.status.value
    assert panel.cancel_button.layout.display == "none"


# -- %bioim convert life cycle -----------------------------------------------------------------


@pytest.fixture(scope="module")
def ip() -> Any:
    from IPython.testing.globalipapp import get_ipython

    shell = get_ipython()
    shell.run_line_magic("load_ext", "bioimnb")
    return shell


def test_magic_background_panel_states_its_life_cycle(ip: Any, src: Path, tmp_path: Path) -> None:
    panel = ip.run_line_magic("bioim", f"convert {src} {tmp_path / 'bg.ome.zarr'} --chunks 128")
    assert "background" in panel.note.value and "--resume" in panel.note.value
    panel.wait(120)
    assert panel.stage == "done"


def test_magic_wait_blocks_and_interrupt_leaves_resumable_output(
    ip: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from IPython.core.error import UsageError

    import bioimnb
    from bioimnb.widgets.convert import ConvertPanel

    big = tmp_path / "big.tif"
    fixtures.flat_tiff(big, shape=(4096, 4096), rowsperstrip=64)
    dest = tmp_path / "big.ome.zarr"
    # --wait: returns only when the conversion ended; an interrupt (the stop button: SIGINT, a
    # KeyboardInterrupt in the kernel's main thread) after a few blocks cancels it.
    progress = ConvertPanel._progress
    interrupted = threading.Event()

    def progress_then_interrupt(self: Any, p: Any) -> None:
        progress(self, p)
        if p.done >= 3 and not interrupted.is_set():
            interrupted.set()
            _thread.interrupt_main()

    monkeypatch.setattr(ConvertPanel, "_progress", progress_then_interrupt)
    shown = ip.run_line_magic("bioim", f"convert {big} {dest} --chunks 128 --shards 128 --workers 1 --wait")
    monkeypatch.setattr(ConvertPanel, "_progress", progress)
    assert interrupted.is_set() and shown is None
    assert bioimnb.open_image(dest).status()["incomplete"] is True

    # The next plain run does not trip over it: one line saying how to finish it.
    with pytest.raises(UsageError) as info:
        ip.run_line_magic("bioim", f"convert {big} {dest} --chunks 128 --shards 128")
    line = str(info.value)
    assert "\n" not in line and "incomplete" in line and f"%bioim convert {big} {dest} --resume" in line

    ip.run_line_magic("bioim", f"convert {big} {dest} --chunks 128 --shards 128 --resume --wait")
    out = bioimnb.open_image(dest)
    assert not out.status().get("incomplete")
    np.testing.assert_array_equal(out.levels[0].compute(), bioimnb.open_image(big).levels[0].compute())
