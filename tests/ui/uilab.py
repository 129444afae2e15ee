"""Helpers of the browser tests: the test image, notebooks, a running JupyterLab's handle.

The fixtures using them live in ``conftest.py``; this module has a name of its own so that test
modules can import it (``conftest`` is ambiguous in a suite with several).
"""

from __future__ import annotations

import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("BIOIMNB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BASE_URL = "/user/test/"

#: Geometry of the generated test image (see ``write_test_image``).
IMAGE_SIZE = 2048
BRIGHT = 4000
DIM = 100


def write_test_image(path: Path) -> None:
    """A 2-channel uint16 pyramidal OME-TIFF (2048, 1024, 512, 256 px; 256-px tiles).

    Channel 0 (red) is ``BRIGHT`` on the left half and ``DIM`` on the right half; channel 1
    (green) is ``DIM`` everywhere.  With auto contrast the left half renders pure red and the
    right half black.
    """
    import tifffile

    ch0 = np.full((IMAGE_SIZE, IMAGE_SIZE), DIM, np.uint16)
    ch0[:, : IMAGE_SIZE // 2] = BRIGHT
    ch1 = np.full((IMAGE_SIZE, IMAGE_SIZE), DIM, np.uint16)
    data = np.stack([ch0, ch1])
    levels = [data]
    while levels[-1].shape[-1] > 256:
        levels.append(np.ascontiguousarray(levels[-1][:, ::2, ::2]))
    opts = {"tile": (256, 256), "compression": "zlib", "photometric": "minisblack"}
    with tifffile.TiffWriter(path, bigtiff=True, ome=True) as tw:
        tw.write(
            levels[0],
            subifds=len(levels) - 1,
            metadata={
                "axes": "CYX",
                "Name": "halves",
                "PhysicalSizeX": 0.5,
                "PhysicalSizeY": 0.5,
                "Channel": {"Name": ["Left", "Dim"], "Color": [-16776961, 0x00FF00FF]},
            },
            **opts,
        )
        for level in levels[1:]:
            tw.write(level, subfiletype=1, **opts)


def write_notebook(path: Path, cells: list[str]) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    nbformat.write(nb, path)


@dataclass
class Lab:
    url: str  # http://127.0.0.1:<port>/user/test/
    token: str
    root: Path
    log: Path

    def get(self, path: str) -> bytes:
        req = urllib.request.Request(
            self.url + path, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return bytes(resp.read())

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""
