"""Helpers of the browser tests: the test image, notebooks, a running JupyterLab's handle.

The fixtures using them live in ``conftest.py``; this module has a name of its own so that test
modules can import it (``conftest`` is ambiguous in a suite with several).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
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

# JS: RGBA of a viewer's canvas at level-0 image positions, from the viewer's own centre and
# zoom (``root`` is the ``.bioimnb-viewer`` element). Tests wrap it: ``f"... ({PIXELS_AT})(root, points)"``.
PIXELS_AT = """
(root, points) => {
  const canvas = root.querySelector('canvas.bioimnb-canvas');
  const rect = root.querySelector('.bioimnb-stage').getBoundingClientRect();
  const zoom = Number(root.dataset.zoom), cx = Number(root.dataset.centerX);
  const cy = Number(root.dataset.centerY);
  const w = Math.round(rect.width), h = Math.round(rect.height);
  const dpr = canvas.width / w;
  const ctx = canvas.getContext('2d');
  return points.map(([x, y]) => {
    const sx = (x - cx) * zoom + w / 2, sy = (y - cy) * zoom + h / 2;
    return Array.from(ctx.getImageData(Math.round(sx * dpr), Math.round(sy * dpr), 1, 1).data);
  });
}
"""
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


class LabError(RuntimeError):
    """JupyterLab did not start; the message ends with the tail of its log."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def start_lab(base: Path, root: Path) -> Iterator[Lab]:
    """A real JupyterLab on a free loopback port under ``BASE_URL`` with token auth, serving
    ``root``, with config, data, settings and workspaces isolated under ``base``, and this
    checkout's lab extension build first on the extension path (first match wins over the
    environment's copy).  Stopped, with the kernels it started, on exit."""
    ext_path = base / "labextensions"
    ext_path.mkdir()
    (ext_path / "bioimnb").symlink_to(REPO / "bioimnb" / "labextension", target_is_directory=True)
    token = secrets.token_hex(16)
    port = _free_port()
    env = dict(os.environ)
    env.update(
        PATH=str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""),
        JUPYTER_CONFIG_DIR=str(base / "config"),
        JUPYTER_DATA_DIR=str(base / "data"),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"),
        IPYTHONDIR=str(base / "ipython"),
        JUPYTER_PLATFORM_DIRS="1",
        PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    log = base / "jupyter.log"
    cmd = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser",
        f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        f"--ServerApp.base_url={BASE_URL}", "--allow-root",
        "--LabApp.expose_app_in_browser=True",
        f"--LabApp.extra_labextensions_path={ext_path}",
        f"--LabApp.user_settings_dir={base / 'settings'}",
        f"--LabApp.workspaces_dir={base / 'workspaces'}",
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    lab = Lab(f"http://127.0.0.1:{port}{BASE_URL}", token, root, log)
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise LabError(f"JupyterLab exited with {proc.returncode}:\n{lab.log_tail()}")
            try:
                json.loads(lab.get("api/status"))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise LabError(
                        f"JupyterLab did not answer /api/status in 90 s:\n{lab.log_tail()}"
                    ) from None
                time.sleep(0.3)
        yield lab
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the server and the kernels it started
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        # A symlink into the checkout left under it (the benchmark's lab lives in
        # benchmarks/_work) makes hatchling leave bioimnb/labextension out of the sdist.
        with contextlib.suppress(OSError):
            (ext_path / "bioimnb").unlink()
