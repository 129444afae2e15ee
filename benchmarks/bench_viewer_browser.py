"""Benchmark: the notebook viewer in a real JupyterLab, measured in Chromium.

Claims checked (from the project's Preview issue; reported, never asserted):

* "from ``view()`` to the first full viewport painted in Chromium under 1 s";
* "a contrast change repaints under 100 ms";
* the first-viewport time compared, as a ratio, with the naive route (bioio
  ``get_image_dask_data`` + downsample + PNG shown as an image output in the same notebook).

Run:  .venv/bin/python benchmarks/bench_viewer_browser.py           (demo 4096^2 OME-TIFF, demo
                                                                    OME-Zarr, a large pyramid)
      .venv/bin/python benchmarks/bench_viewer_browser.py --quick   (small demo data, < 90 s)

Set-up: the same as the browser tests (``tests/ui``): a real ``jupyter lab`` subprocess (token
auth, base URL /user/test/, this checkout's prebuilt lab extension first on the extension path,
isolated config/data/settings dirs) and Debian's Chromium driven by Playwright (headless, 1400 x
1000 window, ``--disable-gpu``: canvas work is done in software).  One notebook with three cells:
a set-up cell (imports bioimnb, bioio, numpy, imagecodecs; opens a small warm-up image with both
bioimnb and bioio; installs the kernel-side timers described below), a *runner* cell whose
source is replaced before each run, and an auxiliary cell.  The kernel is warm: imports are
*excluded* from every timing.  Before the timed runs one untimed viewer is shown (so the first
load of the widget's ES module in the page is excluded too; its time is printed).

First viewport (per run, a new viewer): the runner cell's outputs are cleared, its source set
to ``v = bioimnb.view(PATH); display(v)``, its editor clicked and Ctrl+Enter pressed (run in
place).  Start: the ``timeStamp`` of that keydown event (a capture listener in the page,
``performance.now()`` clock).  End: the first time the new viewer's root node has
``data-complete="true"``, seen by a MutationObserver.  The viewer sets that attribute at the end
of the animation-frame callback that drew *every* tile of the current viewport at the target
level (``levelComplete`` in ``labextension/src/viewer/viewer.ts``): all of them were received,
composited (raw channel tiles, in the browser) or decoded (RGBA tiles, ``createImageBitmap``)
and ``drawImage``-d into the canvas.  Pixels reach the screen at
the next compositor frame (<= ~17 ms later; not included).  Each case is run ``--runs`` times
"warm" (the image's files in the OS page cache, as after any earlier look at them) and
``--runs`` times "cold" (files evicted with ``posix_fadvise(DONTNEED)`` just before the
keypress); both are reported.  Every run is a new ``Viewer`` (new renderer, empty tile caches
in kernel and browser) replacing the previous one in the same cell.

Contrast change: on the last viewer of a case, channel 0's *maximum* slider is set to a new
value (a different one every time, so no browser-cache hit) and ``input`` + ``change`` events
dispatched, as when a user releases the slider.  Start: ``performance.now()`` just before the
dispatch; end: ``data-complete`` back to ``"true"`` (same signal: every visible tile drawn with
the new window; the widget composites multichannel tiles in the browser from the raw channel
tiles it keeps, so normally no tile is fetched; "tiles fetched" in the report counts any).  The
viewer's own ``data-repaint-ms`` is printed next to it.  From Python: the auxiliary cell runs
``v.set_channel(0, max=...)`` with Ctrl+Enter; start = keydown, end = same signal (so the
cell's execution and the model sync to the browser are included).

Naive route (only the demo OME-TIFF: bioio reads whole level-0 planes, and the large pyramid
does not fit in RAM): the runner cell does ``BioImage(path).get_image_dask_data("CYX")``, a
strided downsample to the viewer's canvas size (``d[:, ::s, ::s].compute()``), a 0.1-99.9 %
percentile contrast per channel, an additive colour composite, ``imagecodecs.png_encode`` and
``display(Image(png))``.  End: the output ``<img>`` fired ``load`` and ``img.decode()`` resolved.

Where the time goes (per run, medians printed): kernel-side timers (``time.time()``, wall clock,
same machine as the browser's ``performance.timeOrigin + now()``): the ``view()`` call itself,
``TileRenderer.raw_tile`` / ``render_rgba`` per tile, each tile message's arrival at the
kernel, queue wait and read+send; browser-side: ``createImageBitmap`` per RGBA tile (wrapped by
an init script; none for channel tiles, which are composited into canvases).  The benchmark only wraps functions from outside; bioimnb is not modified.

Data (under --workdir, reused): ``bioimnb.core.demo.make_demo_data`` (4096^2 2-channel
OME-TIFF ``cells.ome.tif``, 2048^2 OME-Zarr ``tissue.ome.zarr``; with --quick the small set,
1024^2 / 512^2); the large pyramid is the first that exists of ``tiles_100000.ome.tif``
(bench_tiles), ``bench_50000.ome.tif`` (bench_open_read), else a 20000^2 2-channel one is
written here tile by tile (``--big PATH`` picks another, ``--no-big`` skips it).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "ui"))
sys.path.insert(0, str(HERE.parent / "tests"))

from common import (  # noqa: E402
    base_parser,
    evict,
    median,
    ms,
    p90,
    print_machine,
    progress,
    ratio,
    table,
)
from uilab import CHROMIUM, CHROMIUM_ARGS, REPO, Lab, LabError, start_lab, write_notebook  # noqa: E402

FIRST_TARGET_S = 1.0
LOADS: list[float] = []  # 1-min load average after each run (other work on the machine)
CONTRAST_TARGET_S = 0.100

# -- kernel side -------------------------------------------------------------------------------

SETUP_CELL = r"""
import json, math, time
import numpy as np, imagecodecs
from IPython.display import Image, display
import bioimnb
from bioio import BioImage
from bioimnb.core.tiles import TileRenderer
from bioimnb.widgets import viewer as _bv

# warm-up (not timed): first open of each reader, first render, first PNG encode
_w = bioimnb.view(WARMUP); _w.renderer.render(0, len(_w.info["levels"]) - 1, 0, 0, 0, 0, [], [], "png"); _w.close()
BioImage(WARMUP).get_image_dask_data("CYX")[:, :8, :8].compute()

# benchmark timers, wrapped from outside (bioimnb itself is unchanged)
_B = {"render": [], "run": [], "ctor": []}
if not hasattr(TileRenderer, "_bench_orig"):
    TileRenderer._bench_orig = {}
    def _timed(name):
        orig = TileRenderer._bench_orig[name] = getattr(TileRenderer, name)
        def timed(self, *a, **k):
            t = time.time(); out = orig(self, *a, **k)
            _B["render"].append([t, time.time()]); return out
        setattr(TileRenderer, name, timed)
    # render_rgba: composited tiles (render() calls it); raw_tile: the widget's channel tiles
    for _name in ("render_rgba", "raw_tile"):
        if hasattr(TileRenderer, _name):
            _timed(_name)
    _bv.Viewer._bench_on_msg = _bv.Viewer._on_msg
    def _on_msg(self, w, content, buffers):
        if isinstance(content, dict):
            content["_t_recv"] = time.time()
        return _bv.Viewer._bench_on_msg(self, w, content, buffers)
    _bv.Viewer._on_msg = _on_msg
    _bv.Viewer._bench_run = _bv.Viewer._run
    def _run(self, handler, mid, content):
        t = time.time(); _bv.Viewer._bench_run(self, handler, mid, content)
        _B["run"].append([content.get("type"), content.get("_t_recv"), t, time.time()])
    _bv.Viewer._run = _run

def _bench_take():
    out = {k: list(v) for k, v in _B.items()}
    for v in _B.values():
        v.clear()
    print(json.dumps(out))

_viewers = []
print("SETUP-OK")
"""

VIEW_CELL = (
    "_t = time.time(); v = bioimnb.view({path!r}{extra}); _B['ctor'].append([_t, time.time()])\n"
    "_viewers.append(v); display(v)"
)

NAIVE_CELL = """\
img = BioImage({path!r})
d = img.get_image_dask_data("CYX")
H, W = d.shape[-2:]
s = max(1, math.ceil(max(H / {vh}, W / {vw})))
small = np.asarray(d[:, ::s, ::s].compute(), dtype=np.float32)
rgb = np.zeros(small.shape[1:] + (3,), np.float32)
for c, colour in zip(range(small.shape[0]), [(0, 0, 1), (0, 1, 0), (1, 0, 0), (1, 0, 1)]):
    lo, hi = np.percentile(small[c], (0.1, 99.9))
    rgb += np.clip((small[c] - lo) / max(hi - lo, 1e-9), 0, 1)[..., None] * np.array(colour, np.float32)
display(Image(data=imagecodecs.png_encode((np.clip(rgb, 0, 1) * 255).astype(np.uint8))))"""

# -- browser side ------------------------------------------------------------------------------

INIT_SCRIPT = """
window.__bench = {t0: null, bitmaps: []};
window.addEventListener('keydown', e => {
  if (e.key === 'Enter' && (e.ctrlKey || e.shiftKey)) { window.__bench.t0 = e.timeStamp; }
}, true);
const __cib = window.createImageBitmap.bind(window);
window.createImageBitmap = async function (...args) {
  const s = performance.now();
  const r = await __cib(...args);
  window.__bench.bitmaps.push([s, performance.now()]);
  return r;
};
"""

# Arms the observers of cell `index`: viewer node appears / ready / complete, or <img> decoded.
ARM = """
([index, kind]) => {
  const b = window.__bench;
  Object.assign(b, {t0: null, tDom: null, tReady: null, tDone: null, data: null, bitmaps: []});
  const cell = document.querySelectorAll('.jp-Notebook .jp-Cell')[index];
  if (b.mo) { b.mo.disconnect(); }
  const check = () => {
    const err = cell.querySelector('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]');
    if (err && !b.error) { b.error = err.textContent.slice(-1500); }
    if (kind === 'viewer') {
      const v = cell.querySelector('.jp-OutputArea-output .bioimnb-viewer');
      if (!v) { return; }
      const now = performance.now();
      if (b.tDom === null) { b.tDom = now; }
      if (b.tReady === null && v.dataset.state === 'ready') { b.tReady = now; }
      if (v.dataset.state === 'error') { b.error = v.dataset.error || 'error'; }
      if (b.tDone === null && v.dataset.complete === 'true') {
        b.tDone = now; b.data = {...v.dataset}; b.mo.disconnect();
      }
    } else {
      const img = cell.querySelector('.jp-OutputArea-output img');
      if (!img || img.__bench) { return; }
      img.__bench = true;
      b.tDom = performance.now();
      const done = () => img.decode().then(() => {
        b.tDone = performance.now(); b.data = {w: img.naturalWidth, h: img.naturalHeight};
      });
      if (img.complete && img.naturalWidth) { done(); } else { img.addEventListener('load', done); }
      b.mo.disconnect();
    }
  };
  b.mo = new MutationObserver(check);
  b.mo.observe(cell, {subtree: true, childList: true, attributes: true,
                      attributeFilter: ['data-complete', 'data-state']});
}
"""

SET_SOURCE = """
([index, code]) => {
  const nb = window.jupyterapp.shell.currentWidget.content;
  const cell = nb.widgets[index];
  cell.model.outputs.clear();
  cell.model.sharedModel.setSource(code);
}
"""

KERNEL_IDLE = (
    "() => { const w = window.jupyterapp.shell.currentWidget;"
    " const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;"
    " return !!k && k.status === 'idle'; }"
)

KERNEL_EXEC = """
async (code) => {
  const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  let out = '';
  const fut = k.requestExecute({code, store_history: false});
  fut.onIOPub = msg => {
    const t = msg.header.msg_type;
    if (t === 'stream') { out += msg.content.text; }
    if (t === 'error') { out += 'ERROR ' + msg.content.ename + ': ' + msg.content.evalue; }
  };
  await fut.done;
  return out;
}
"""

CONTRAST_SLIDER = """
async ([index, f]) => {
  const root = document.querySelectorAll('.jp-Notebook .jp-Cell')[index]
    .querySelector('.bioimnb-viewer');
  const slider = root.querySelector('[data-channel="0"] input[aria-label$="maximum"]');
  const lo = Number(slider.min), hi = Number(slider.max);
  const value = Math.round(lo + (hi - lo) * f);
  window.__bench.bitmaps = [];
  const before = Number(root.dataset.tilesReceived);
  return await new Promise(resolve => {
    let t0 = 0;
    const timer = setTimeout(() => { mo.disconnect(); resolve({error: 'timeout', value}); }, 30000);
    const mo = new MutationObserver(() => {
      if (root.dataset.complete === 'true') {
        const t1 = performance.now();
        mo.disconnect(); clearTimeout(timer);
        resolve({ms: t1 - t0, t0, t1, value, repaintMs: Number(root.dataset.repaintMs),
                 tiles: Number(root.dataset.tilesReceived) - before,
                 bitmaps: window.__bench.bitmaps.slice()});
      }
    });
    mo.observe(root, {attributes: true, attributeFilter: ['data-complete']});
    slider.value = String(value);
    t0 = performance.now();
    slider.dispatchEvent(new Event('input'));
    slider.dispatchEvent(new Event('change'));
  });
}
"""

# Waits until the viewer in cell `index` changed to incomplete and back to complete.
WAIT_RECOMPLETE = """
([index]) => {
  const root = document.querySelectorAll('.jp-Notebook .jp-Cell')[index]
    .querySelector('.bioimnb-viewer');
  const b = window.__bench;
  Object.assign(b, {t0: null, tDone: null, sawFalse: false, bitmaps: []});
  if (b.mo) { b.mo.disconnect(); }
  b.mo = new MutationObserver(() => {
    if (root.dataset.complete === 'false') { b.sawFalse = true; }
    else if (b.sawFalse && b.tDone === null) {
      b.tDone = performance.now(); b.data = {...root.dataset}; b.mo.disconnect();
    }
  });
  b.mo.observe(root, {attributes: true, attributeFilter: ['data-complete']});
}
"""

VIEWER_SIZE = """
(index) => {
  const root = document.querySelectorAll('.jp-Notebook .jp-Cell')[index]
    .querySelector('.bioimnb-viewer');
  const r = root.querySelector('.bioimnb-stage').getBoundingClientRect();
  return [Math.round(r.width), Math.round(r.height), window.devicePixelRatio];
}
"""

# -- data --------------------------------------------------------------------------------------


def write_big(path: Path, size: int = 20_000, tile: int = 512) -> None:
    """A ``size``^2 2-channel uint16 pyramidal OME-TIFF written tile by tile (never in memory)."""
    import tifffile

    sizes = [size]
    while sizes[-1] > tile:
        sizes.append(-(-sizes[-1] // 2))

    def tiles(n: int, c: int) -> Iterator[np.ndarray]:
        step = size / n
        for y0 in range(0, n, tile):
            for x0 in range(0, n, tile):
                yy, xx = np.mgrid[y0 : y0 + tile, x0 : x0 + tile].astype(np.float32) * step
                v = 1500 + 1000 * np.sin(xx / (300 + 200 * c)) * np.cos(yy / 410)
                v += 400 * np.sin((xx + yy) / 37)
                yield (v.astype(np.uint16) // 32 * 32)

    def level(n: int) -> Iterator[np.ndarray]:
        for c in range(2):
            yield from tiles(n, c)

    tmp = path.with_name(path.name + ".partial")
    opts: dict[str, Any] = {"tile": (tile, tile), "compression": "zlib", "dtype": "uint16"}
    with tifffile.TiffWriter(tmp, bigtiff=True, ome=True) as tw:
        tw.write(
            level(sizes[0]),
            shape=(2, sizes[0], sizes[0]),
            subifds=len(sizes) - 1,
            metadata={"axes": "CYX", "Channel": {"Name": ["A", "B"]}},
            photometric="minisblack",
            **opts,
        )
        for n in sizes[1:]:
            tw.write(level(n), shape=(2, n, n), subfiletype=1, photometric="minisblack", **opts)
    tmp.rename(path)


def pick_big(workdir: Path, given: Path | None) -> Path:
    if given:
        return given
    for name in ("tiles_100000.ome.tif", "bench_50000.ome.tif"):
        if (workdir / name).is_file():
            return workdir / name
    path = workdir / "viewer_20000.ome.tif"
    if not path.is_file():
        progress(f"writing {path} (20000^2 x 2, tile by tile)")
        write_big(path)
    return path


def data_files(path: Path) -> list[Path]:
    return [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]


# -- JupyterLab --------------------------------------------------------------------------------


@contextlib.contextmanager
def jupyter_lab(base: Path) -> Iterator[Lab]:
    """A JupyterLab like the browser tests' ``lab`` fixture (root = ``base / 'root'``)."""
    ext = REPO / "bioimnb" / "labextension"
    if not (ext / "package.json").is_file() or not (REPO / "bioimnb/static/viewer.js").is_file():
        raise SystemExit(
            "the front end is not built: cd labextension && jlpm install && jlpm build"
        )
    if base.exists():
        shutil.rmtree(base)
    root = base / "root"
    root.mkdir(parents=True)
    try:
        with start_lab(base, root) as lab:
            yield lab
    except LabError as exc:
        raise SystemExit(str(exc)) from None


# -- measurements ------------------------------------------------------------------------------


class Session:
    """The benchmark notebook open in Chromium: cell 0 set-up, cell 1 runner, cell 2 auxiliary."""

    RUNNER = 1
    AUX = 2

    def __init__(self, page: Any) -> None:
        self.page = page

    def dump(self, what: str) -> None:
        """Screenshot and state on failure (to help whoever reads the error)."""
        shot = Path(os.environ.get("TMPDIR", "/tmp")) / "bench_viewer_browser_failure.png"
        with contextlib.suppress(Exception):
            self.page.screenshot(path=str(shot))
            cells = self.page.locator(".jp-Notebook .jp-Cell")
            texts = [cells.nth(i).inner_text()[-800:] for i in range(cells.count())]
            progress(f"{what} failed; screenshot {shot}; bench state {self.bench()}; cells {texts}")

    def kernel(self, code: str) -> str:
        return str(self.page.evaluate(KERNEL_EXEC, code))

    def wait_idle(self, timeout: float = 120_000) -> None:
        self.page.wait_for_function(KERNEL_IDLE, timeout=timeout)

    def press_run(self, index: int) -> None:
        cell = self.page.locator(".jp-Notebook .jp-Cell").nth(index)
        cell.locator(".jp-InputArea-editor").click()
        self.page.keyboard.press("Control+Enter")

    def bench(self) -> dict[str, Any]:
        return dict(
            self.page.evaluate(
                "() => { const b = window.__bench;"
                " return {...b, mo: undefined, epoch: performance.timeOrigin}; }"
            )
        )

    def take_kernel_log(self) -> dict[str, Any]:
        text = self.kernel("_bench_take()")
        try:
            return dict(json.loads(text.strip().splitlines()[-1]))
        except (ValueError, IndexError):
            return {"render": [], "run": [], "ctor": [], "raw": text}

    def run_cell(self, code: str, kind: str, timeout: float = 120_000) -> dict[str, Any]:
        """Run `code` in the runner cell by keyboard; wait for its viewer/image to be done."""
        self.wait_idle()
        self.page.evaluate(SET_SOURCE, [self.RUNNER, code])
        self.page.wait_for_timeout(150)  # let the cleared output and new source settle
        self.kernel("_bench_take()")  # drop earlier kernel records
        self.page.evaluate(ARM, [self.RUNNER, kind])
        self.press_run(self.RUNNER)
        try:
            self.page.wait_for_function(
                "() => window.__bench.tDone !== null || !!window.__bench.error", timeout=timeout
            )
        except Exception:
            self.dump("run_cell")
            raise
        b = self.bench()
        if b.get("error"):
            raise RuntimeError(f"cell error: {b['error']}")
        self.wait_idle()
        self.page.wait_for_timeout(300)  # stragglers (histograms) reach the kernel log
        b["kernel"] = self.take_kernel_log()
        LOADS.append(os.getloadavg()[0])
        if kind == "viewer":  # did the viewer stay complete (no relayout asking for more)?
            later = self.page.evaluate(
                "(i) => ({...document.querySelectorAll('.jp-Notebook .jp-Cell')[i]"
                ".querySelector('.bioimnb-viewer').dataset})",
                self.RUNNER,
            )
            b["late_tiles"] = int(later["tilesRequested"]) - int(b["data"]["tilesRequested"])
            b["late_complete"] = later["complete"]
        return b


def breakdown(b: dict[str, Any]) -> dict[str, float]:
    """Seconds of the phases of one first-viewport run (see the module docstring)."""
    epoch = float(b["epoch"]) / 1e3  # performance.timeOrigin, s since the Unix epoch

    def wall(t: float | None) -> float:
        return epoch + float(t) / 1e3 if t is not None else float("nan")

    k = b["kernel"]
    out: dict[str, float] = {"total": (b["tDone"] - b["t0"]) / 1e3}
    t0 = wall(b["t0"])
    if k.get("ctor"):
        c0, c1 = k["ctor"][0]
        out["key->view() starts"] = c0 - t0
        out["view() call"] = c1 - c0
        out["view() done->viewer node"] = wall(b["tDom"]) - c1
    out["viewer node->complete"] = (b["tDone"] - b["tDom"]) / 1e3
    tiles = [r for r in k.get("run", []) if r[0] == "tile" and r[1] is not None]
    done = wall(b["tDone"])
    tiles = [r for r in tiles if r[1] <= done]
    renders = [e - s for s, e in k.get("render", []) if s <= done]
    if tiles:
        out["tiles"] = len(tiles)
        out["queue wait (median)"] = median([s - r for _, r, s, _ in tiles])
        out["render+send (median)"] = median([e - s for _, _, s, e in tiles])
        out["first tile msg at kernel (from node)"] = min(r for _, r, _, _ in tiles) - wall(
            b["tDom"]
        )
        out["kernel tile span (first msg->last sent)"] = max(e for *_, e in tiles) - min(
            r for _, r, _, _ in tiles
        )
    if renders:
        out["TileRenderer raw_tile/render_rgba (median)"] = median(renders)
        out["TileRenderer raw_tile/render_rgba (sum)"] = sum(renders)
    bm = [(s, e) for s, e in b.get("bitmaps", []) if e <= b["tDone"]]
    if bm:
        out["createImageBitmap (median)"] = median([(e - s) / 1e3 for s, e in bm])
        out["last decode->complete"] = (b["tDone"] - max(e for _, e in bm)) / 1e3
        if tiles:
            out["last tile sent->its decode start (transfer, approx)"] = wall(
                max(s for s, _ in bm)
            ) - max(e for *_, e in tiles)
    return out


def first_viewport(
    s: Session, name: str, path: Path, runs: int, results: dict[str, Any], view: str = ""
) -> None:
    code = VIEW_CELL.format(path=str(path), extra=f", view={view}" if view else "")
    for mode in ("warm", "cold"):
        totals: list[float] = []
        phases: list[dict[str, float]] = []
        runs_raw: list[dict[str, Any]] = []
        for i in range(runs):
            if mode == "cold":
                s.wait_idle()
                evict(data_files(path))
            b = s.run_cell(code, "viewer")
            runs_raw.append(b)
            ph = breakdown(b)
            totals.append(ph["total"])
            phases.append(ph)
            progress(
                f"{name} {mode} #{i + 1}: {ms(ph['total'])} ms (viewer firstPaintMs "
                f"{b['data'].get('firstPaintMs')}, tiles {b['data'].get('tilesReceived')}, "
                f"target level {b['data'].get('targetLevel')}; after: +{b['late_tiles']} tiles "
                f"requested, complete={b['late_complete']})"
            )
        raw = results.setdefault("raw", {})
        raw[f"{name} ({mode})"] = runs_raw
        results["first"][f"{name} ({mode})"] = {
            "times": totals,
            "phases": phases,
            "data": b["data"],
        }


def contrast(s: Session, name: str, changes: int, results: dict[str, Any]) -> None:
    page = s.page
    s.wait_idle()
    page.wait_for_timeout(800)  # histograms arrive and widen the sliders
    slider, viewer_ms, tiles, decodes = [], [], [], []
    for i in range(changes):
        f = 0.30 + 0.6 * ((i * 0.618) % 1.0)  # distinct values (no browser-cache hits)
        r = page.evaluate(CONTRAST_SLIDER, [Session.RUNNER, f])
        if r.get("error"):
            progress(f"contrast {name}: {r}")
            continue
        slider.append(r["ms"] / 1e3)
        viewer_ms.append(r["repaintMs"] / 1e3)
        tiles.append(r["tiles"])
        decodes += [(e - st) / 1e3 for st, e in r["bitmaps"]]
        page.wait_for_timeout(100)
    results["contrast"][f"{name}: slider (in browser)"] = {
        "times": slider, "viewer": viewer_ms, "tiles": tiles, "decode": decodes,
    }  # fmt: skip
    # The same from Python, in the auxiliary cell (Ctrl+Enter).
    py = []
    for i in range(changes):
        s.wait_idle()
        value = 500 + 97 * i
        page.evaluate(SET_SOURCE, [Session.AUX, f"v.set_channel(0, max={value})"])
        page.wait_for_timeout(100)
        page.evaluate(WAIT_RECOMPLETE, [Session.RUNNER])
        s.press_run(Session.AUX)
        page.wait_for_function("() => window.__bench.tDone !== null", timeout=30_000)
        b = s.bench()
        py.append((b["tDone"] - b["t0"]) / 1e3)
    results["contrast"][f"{name}: v.set_channel from Python"] = {"times": py}
    progress(f"contrast {name}: slider median {ms(median(slider))} ms, python {ms(median(py))} ms")


def naive(s: Session, name: str, path: Path, size: tuple[int, int], runs: int,
          results: dict[str, Any]) -> None:  # fmt: skip
    code = NAIVE_CELL.format(path=str(path), vw=size[0], vh=size[1])
    for mode in ("warm", "cold"):
        totals = []
        for i in range(runs):
            if mode == "cold":
                s.wait_idle()
                evict(data_files(path))
            b = s.run_cell(code, "img", timeout=600_000)
            totals.append((b["tDone"] - b["t0"]) / 1e3)
            progress(f"naive {name} {mode} #{i + 1}: {ms(totals[-1])} ms ({b['data']})")
        results["naive"][f"{name} ({mode})"] = {"times": totals}


# -- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=6, help="first-viewport runs per case & mode")
    parser.add_argument("--changes", type=int, default=12, help="contrast changes per case")
    parser.add_argument("--naive-runs", type=int, default=5, help="naive-route runs per mode")
    parser.add_argument("--big", type=Path, default=None, help="large pyramid to use")
    parser.add_argument("--no-big", action="store_true", help="skip the large pyramid")
    parser.add_argument("--headed", action="store_true", help="show the browser")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.changes, args.naive_runs, args.no_big = 2, 3, 2, True
    workdir: Path = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)

    info = print_machine(workdir)
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"chromium: {CHROMIUM} (headless={not args.headed}, args {' '.join(CHROMIUM_ARGS)})\n")
    del info

    from bioimnb.core.demo import make_demo_data

    demo_dir = workdir / ("viewer_demo_small" if args.quick else "viewer_demo")
    progress(f"demo data in {demo_dir}")
    make_demo_data(demo_dir, small=args.quick)
    demo_tif, demo_zarr = demo_dir / "cells.ome.tif", demo_dir / "tissue.ome.zarr"
    warm_dir = workdir / "viewer_demo_small"
    make_demo_data(warm_dir, small=True)
    warmup = warm_dir / "cells.ome.tif"  # 1024^2: warms readers, render, PNG, the ES module
    cases: list[tuple[str, Path]] = [
        (f"demo OME-TIFF {_shape(demo_tif)}", demo_tif),
        (f"demo OME-Zarr {_shape(demo_zarr)}", demo_zarr),
    ]
    if not args.no_big:
        big = pick_big(workdir, args.big)
        cases.append((f"large {big.name} {_shape(big)}", big))

    results: dict[str, Any] = {"first": {}, "contrast": {}, "naive": {}}
    from playwright.sync_api import sync_playwright

    with jupyter_lab(workdir / "viewer_browser_lab") as lab, sync_playwright() as pw:
        progress(f"JupyterLab at {lab.url}")
        setup = SETUP_CELL.replace("WARMUP", repr(str(warmup)))
        write_notebook(lab.root / "bench.ipynb", [setup, "# runner", "# aux"])
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=not args.headed, args=CHROMIUM_ARGS
        )
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(120_000)
        context.add_init_script(INIT_SCRIPT)
        page = context.new_page()
        page.goto(f"{lab.url}lab?token={lab.token}", wait_until="domcontentloaded")
        page.goto(f"{lab.url}lab/tree/bench.ipynb")
        page.wait_for_selector(".jp-Notebook .jp-Cell .jp-InputArea-editor")
        s = Session(page)
        s.wait_idle(timeout=90_000)
        s.press_run(0)
        page.wait_for_function(
            "() => { const o = document.querySelectorAll('.jp-Notebook .jp-Cell')[0]"
            ".querySelector('.jp-OutputArea'); return !!o && /SETUP-OK|Error/.test(o.textContent); }",
            timeout=120_000,
        )
        out0 = page.locator(".jp-Notebook .jp-Cell").nth(0).locator(".jp-OutputArea").inner_text()
        if "SETUP-OK" not in out0:
            raise SystemExit(f"set-up cell failed:\n{out0[-3000:]}")

        # One untimed viewer: loads the widget's ES module in the page.
        b = s.run_cell(VIEW_CELL.format(path=str(warmup), extra=""), "viewer")
        size = page.evaluate(VIEWER_SIZE, Session.RUNNER)
        print(
            f"untimed first viewer in the page (ES module load included): "
            f"{ms((b['tDone'] - b['t0']) / 1e3)} ms; viewer canvas {size[0]} x {size[1]} CSS px, "
            f"devicePixelRatio {size[2]}\n"
        )

        for name, path in cases:
            first_viewport(s, name, path, args.runs, results)
            contrast(s, name, args.changes, results)
            if name.startswith("large"):
                # Worst case for the first viewport: level 0 (zoom 1) in the middle of the image.
                shape = _shape(path).split("x")
                centre = f"{{'zoom': 1.0, 'center_x': {int(shape[2]) // 2}, 'center_y': {int(shape[1]) // 2}}}"
                first_viewport(s, f"{name}, zoom 1 at centre", path, args.runs, results, centre)
        naive(s, cases[0][0], demo_tif, (size[0], size[1]), args.naive_runs, results)
        browser.close()

    raw_path = workdir / "viewer_browser_runs.json"
    raw_path.write_text(json.dumps(results.pop("raw", {}), default=str))
    report(results, cases, args)
    print(f"\nper-run records (browser marks, kernel timers): {raw_path}")
    load = os.getloadavg()
    print(f"\nload average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if LOADS:
        print(
            f"1-min load during the runs: median {median(LOADS):.2f}, "
            f"min {min(LOADS):.2f}, max {max(LOADS):.2f} ({len(LOADS)} samples)"
        )
    return 0


def _shape(path: Path) -> str:
    """``CxYxX`` of level 0 (a label only)."""
    try:
        from bioimnb.core.images import open_image

        with open_image(str(path)) as img:
            shape = dict(zip(img.axes, img.shape))
        return f"{shape.get('C', 1)}x{shape['Y']}x{shape['X']}"
    except Exception:  # noqa: BLE001 - only a label
        return ""


def _row(name: str, xs: list[float], target: float | None) -> list[str]:
    verdict = "-"
    if target is not None and xs:
        verdict = "pass" if median(xs) < target else "miss"
    return [name, ms(median(xs)), ms(p90(xs)), ms(min(xs)) if xs else "-", str(len(xs)), verdict]


def report(results: dict[str, Any], cases: list[tuple[str, Path]], args: Any) -> None:
    print()
    headers = ["case", "median ms", "p90 ms", "min ms", "n", "target"]
    rows = [_row(k, v["times"], FIRST_TARGET_S) for k, v in results["first"].items()]
    rows += [_row(f"naive route, {k}", v["times"], None) for k, v in results["naive"].items()]
    table(
        headers,
        rows,
        "First full viewport: keypress (Ctrl+Enter) -> all viewport tiles drawn (target < 1 s)",
    )

    rows = [_row(k, v["times"], CONTRAST_TARGET_S) for k, v in results["contrast"].items()]
    table(headers, rows, "Contrast change -> repaint complete (target < 100 ms)")
    extra = []
    for k, v in results["contrast"].items():
        if "viewer" in v:
            extra.append([k, ms(median(v["viewer"])), f"{median(v['tiles']):.0f}",
                          ms(median(v["decode"])) if v["decode"] else "-"])  # fmt: skip
    table(["case", "viewer data-repaint-ms (median)", "tiles fetched", "decode/tile ms"],
          extra, "Contrast change, viewer's own numbers")  # fmt: skip

    # Where the time goes: medians over the runs of each case.
    keys: list[str] = []
    for v in results["first"].values():
        for ph in v["phases"]:
            keys += [k for k in ph if k not in keys]
    rows = []
    for key in keys:
        row = [key]
        for v in results["first"].values():
            xs = [ph[key] for ph in v["phases"] if key in ph and ph[key] == ph[key]]
            row.append(f"{median(xs):.0f}" if key == "tiles" else ms(median(xs)))
        rows.append(row)
    table(
        ["phase (median, ms)"] + list(results["first"]), rows, "First viewport: where the time goes"
    )

    print("### Ratios of medians")
    rows = []
    for mode in ("warm", "cold"):
        view_key = f"{cases[0][0]} ({mode})"
        naive_key = f"{cases[0][0]} ({mode})"
        if view_key in results["first"] and naive_key in results["naive"]:
            a = median(results["naive"][naive_key]["times"])
            b = median(results["first"][view_key]["times"])
            rows.append([f"naive route / bioimnb.view, {cases[0][0]} ({mode})", ratio(a, b)])
    for name, path in cases[1:]:
        if "large" in name:
            rows.append([f"naive route, {name}", "skipped: bioio reads whole level-0 planes "
                         f"({_gib(path)} GiB raw) > RAM"])  # fmt: skip
    for k, v in results["first"].items():
        rows.append(
            [f"first viewport / 1 s target, {k}", ratio(median(v["times"]), FIRST_TARGET_S)]
        )
    for k, v in results["contrast"].items():
        rows.append([f"repaint / 100 ms target, {k}", ratio(median(v["times"]), CONTRAST_TARGET_S)])
    table(["ratio", "value"], rows)


def _gib(path: Path) -> str:
    try:
        import tifffile

        with tifffile.TiffFile(path) as tf:
            s = tf.series[0]
            return f"{math.prod(s.shape) * s.dtype.itemsize / 2**30:.0f}"
    except Exception:  # noqa: BLE001
        return "?"


if __name__ == "__main__":
    sys.exit(main())
