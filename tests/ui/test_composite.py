"""The browser's compositing (``labextension/src/viewer/composite.ts``, as built into
``labextension/lib``) gives exactly the bytes of the kernel's ``composite_channels``, run with
Node on random tiles of every dtype, odd windows (steps, inverted, beyond float32), NaN and
infinities, and colours with every kind of weight."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from uilab import REPO

from bioimnb.core.tiles import ChannelView, channel_dtype, composite_channels

COMPOSITE_JS = REPO / "labextension" / "lib" / "viewer" / "composite.js"

DRIVER = """
import { compositeTile } from './composite.mjs';
import fs from 'fs';
const cases = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const out = cases.map(c => {
  const Ctor = { uint8: Uint8Array, uint16: Uint16Array, float32: Float32Array }[c.dtype];
  const layers = c.data.map((hex, k) => {
    const buf = Buffer.from(hex, 'hex');
    const data = new Ctor(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    return { tile: { channel: k, w: c.w, h: c.h, dtype: c.dtype, data }, view: c.views[k] };
  });
  const rgba = new Uint8ClampedArray(c.w * c.h * 4);
  compositeTile(layers, c.w, c.h, rgba);
  return Buffer.from(rgba.buffer).toString('hex');
});
process.stdout.write(JSON.stringify(out));
"""


def _plane(rng: np.random.Generator, dtype: str, shape: tuple[int, int]) -> np.ndarray:
    if np.dtype(dtype).kind in "ui":
        info = np.iinfo(dtype)
        return rng.integers(info.min, int(info.max) + 1, shape, dtype=np.int64).astype(dtype)
    plane = (rng.standard_normal(shape) * 10 ** rng.uniform(-3, 4)).astype(dtype)
    plane.flat[:5] = [np.nan, np.inf, -np.inf, 0.0, -0.0]
    return plane


def _cases(rng: np.random.Generator) -> list[tuple[list[np.ndarray], list[ChannelView]]]:
    dtypes = ["uint8", "uint16", "float32", "int8", "int16", "int32", "uint32", "float64"]
    cases = []
    for i in range(64):
        dtype = dtypes[i % len(dtypes)]
        planes, views = [], []
        for c in range(1 + i % 4):
            plane = _plane(rng, dtype, (29, 41))
            finite = plane.astype(np.float64)[np.isfinite(plane.astype(np.float64))]
            lo, hi = (float(x) for x in np.percentile(finite, sorted(rng.uniform(0, 100, 2))))
            lo += rng.uniform(-0.5, 0.5) * 1e-3 * abs(lo)  # not on a value
            if c == 1 and i % 5 == 0:
                hi = lo  # a step
            elif c == 2 and i % 3 == 0:
                lo, hi = hi, lo  # inverted: a step too
            elif c == 3 and i % 4 == 3:
                lo, hi = -1e39, 1e39  # beyond float32
            weights = rng.choice([0, 255, *rng.integers(1, 255, 3)], 3)
            color = "".join(f"{int(v):02X}" for v in weights)
            planes.append(plane)
            views.append(ChannelView(c, bool(rng.random() > 0.15), color, lo, hi))
        cases.append((planes, views))
    # Every uint16 value through windows with fractional ends and 127/1 weights (rounding edges).
    ramp = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    for lo, hi, color in [
        (0.3, 65534.7, "7F0180"),
        (1000.25, 1255.75, "FF7FFE"),
        (7, 8, "FFFFFF"),
        (-1e300, 1e300, "FFFFFF"),  # 1 / (hi - lo) is 0 in float32: inf * 0
        (0.0, 1e-45, "FF00FF"),  # ... and inf: 0 * inf
    ]:
        cases.append(([ramp, ramp[::-1]], [ChannelView(0, True, color, lo, hi), ChannelView(1)]))
    return cases


def test_browser_compositing_matches_the_kernel_byte_for_byte(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js not found: it builds the front end and runs this test", pytrace=False)
    if not COMPOSITE_JS.is_file():
        pytest.fail(
            f"{COMPOSITE_JS.relative_to(REPO)} missing: run `cd labextension && jlpm build`",
            pytrace=False,
        )
    shutil.copy(COMPOSITE_JS, tmp_path / "composite.mjs")
    (tmp_path / "driver.mjs").write_text(DRIVER)
    cases = _cases(np.random.default_rng(20261125))
    payload, expected = [], []
    for planes, views in cases:
        h, w = planes[0].shape
        sent = [np.ascontiguousarray(p, dtype=channel_dtype(p.dtype)) for p in planes]
        payload.append(
            {
                "w": w,
                "h": h,
                "dtype": sent[0].dtype.name,
                "data": [p.tobytes().hex() for p in sent],
                "views": [v.to_dict() for v in views],
            }
        )
        expected.append(composite_channels(list(zip(planes, views, strict=True)), (h, w)))
    (tmp_path / "cases.json").write_text(json.dumps(payload))
    run = subprocess.run(
        [node, "driver.mjs", "cases.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout)
    assert len(results) == len(cases)
    for i, (hexed, rgb) in enumerate(zip(results, expected, strict=True)):
        rgba = np.frombuffer(bytes.fromhex(hexed), np.uint8).reshape(*rgb.shape[:2], 4)
        assert (rgba[..., 3] == 255).all()
        if not np.array_equal(rgba[..., :3], rgb):
            diff = np.argwhere(rgba[..., :3] != rgb)[0]
            views = cases[i][1]
            raise AssertionError(
                f"case {i} ({payload[i]['dtype']}, {views}): first difference at {tuple(diff)}: "
                f"browser {rgba[tuple(diff[:2])]}, kernel {rgb[tuple(diff[:2])]}"
            )
