"""The workshop notebooks run top to bottom, as a student would run them."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "notebooks"
    work.mkdir()
    shutil.copy(path, work / path.name)
    # A beginner's kernel may not have the environment's scripts on PATH (`make lab`, a hub, a
    # kernel registered from another shell): the notebooks' command-line cells must not need it.
    env_bin = os.path.dirname(sys.executable)
    dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d and os.path.realpath(d) != os.path.realpath(env_bin)]
    monkeypatch.setenv("PATH", os.pathsep.join(dirs))
    nb = nbformat.read(work / path.name, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(work)}})
    client.execute()
    errors = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors
    text = "\n".join(
        str(out.get("text", "")) + str(out.get("data", {}).get("text/plain", ""))
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    )
    assert "Traceback" not in text
    if path.name.startswith("01-"):
        assert "same pixels as the local copy: True" in text
        assert "error: " in text and "broken.tif" in text
        assert "tissue.ome.zarr" in text and "'images'" in text  # the scan section ran
        images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
        assert len(images) >= 4, "the notebook should draw its figures"
