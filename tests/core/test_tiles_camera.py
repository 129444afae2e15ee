"""ONE level-choice rule: the browser's camera (``labextension/src/viewer/camera.ts``, as built
into ``labextension/lib``) picks the level and the visible tiles the Python core picks, checked
with Node's test runner on a table of random and boundary cases computed here by
:class:`TileRenderer` (``level_for_zoom``, ``downsamples``) and ``bioimnb.core.tiles.grid``."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bioimnb.core.tiles import TileRenderer, level_for_zoom, tile_range, viewport_rect

REPO = Path(__file__).resolve().parents[2]
CAMERA_JS = REPO / "labextension" / "lib" / "viewer" / "camera.js"
CAMERA_TEST = REPO / "labextension" / "test" / "camera.test.mjs"
PIXEL_RATIOS = [1.0, 1.25, 1.5, 2.0, 2.625, 3.0]


class _Shapes:
    """The part of a MultiscaleImage that TileRenderer's geometry reads."""

    scene_index = 0

    def __init__(self, shapes: list[tuple[int, int]]) -> None:
        self.level_shapes = [(1, 1, 1, h, w) for h, w in shapes]


def _pyramid(rng: np.random.Generator) -> list[tuple[int, int]]:
    h, w = (int(v) for v in np.exp(rng.uniform(0, math.log(200_000), 2)))
    shapes = [(h, w)]
    factor = [2, 2, 2, 3, 4][int(rng.integers(0, 5))]
    for _ in range(int(rng.integers(0, 10))):
        h, w = shapes[-1]
        if rng.random() < 0.5:
            h, w = -(-h // factor), -(-w // factor)  # ceil, as most writers
        else:
            h, w = max(1, h // factor), max(1, w // factor)
        shapes.append((h, w))
        if rng.random() < 0.05:
            shapes.append((h, w))  # a repeated level: ties go to the first
    return shapes


def _cases(rng: np.random.Generator) -> dict[str, list[dict[str, Any]]]:
    levels, views = [], []
    for _ in range(600):
        shapes = _pyramid(rng)
        tile = [128, 256, 512][int(rng.integers(0, 3))]
        r = TileRenderer(_Shapes(shapes), tile_size=tile)  # type: ignore[arg-type]
        downsamples = r.downsamples(0)
        dx = [d[1] for d in downsamples]
        for _ in range(4):
            pr = PIXEL_RATIOS[int(rng.integers(0, len(PIXEL_RATIOS)))]
            zooms = [float(math.exp(rng.uniform(math.log(1e-6), math.log(100))))]
            # Boundaries: the zoom at which each level stops or starts being the choice.
            d = dx[int(rng.integers(0, len(dx)))]
            edge = 1.1 / d / min(pr, 2.0)
            zooms += [edge, float(np.nextafter(edge, 0)), float(np.nextafter(edge, math.inf))]
            for zoom in zooms:
                level = r.level_for_zoom(0, zoom, pr)
                assert level == level_for_zoom(dx, zoom, pr)
                levels.append({"downsamples": dx, "zoom": zoom, "pixel_ratio": pr, "level": level})
        pr = PIXEL_RATIOS[int(rng.integers(0, len(PIXEL_RATIOS)))]
        width, height = (int(v) for v in rng.integers(1, 3000, 2))
        h0, w0 = shapes[0]
        zoom = float(math.exp(rng.uniform(math.log(1e-5), math.log(64))))
        cx = float(rng.uniform(-0.2, 1.2) * w0)
        cy = float(rng.uniform(-0.2, 1.2) * h0)
        rect = viewport_rect(cx, cy, zoom, width, height)
        ranges: list[list[int] | None] = []
        for lv, (h, w) in enumerate(shapes):
            found = tile_range(h, w, downsamples[lv], tile, rect)
            listed = r.tiles_for_viewport(0, lv, *rect)
            if found is None:
                assert listed == []
                ranges.append(None)
            else:
                tx0, tx1, ty0, ty1 = found
                assert listed[0] == (tx0, ty0) and listed[-1] == (tx1, ty1)
                ranges.append(list(found))
        views.append(
            {
                "shapes": [list(s) for s in shapes],
                "tile_size": tile,
                "downsamples": [list(d) for d in downsamples],
                "pixel_ratio": pr,
                "width": width,
                "height": height,
                "zoom": zoom,
                "cx": cx,
                "cy": cy,
                "rect": list(rect),
                "level": r.level_for_zoom(0, zoom, pr),
                "ranges": ranges,
            }
        )
    return {"levels": levels, "views": views}


def test_python_rule_examples() -> None:
    """The rule itself, on a 1, 2, 4 pyramid (the browser's numbers come from the same function)."""
    d = [1.0, 2.0, 4.0]
    zooms = (8.0, 1.0, 0.9, 0.5, 0.52, 0.3, 0.25, 0.001)
    assert [level_for_zoom(d, z) for z in zooms] == [0, 0, 0, 1, 1, 1, 2, 2]
    # On a 2x screen the same zoom needs one level finer; 3x screens count as 2x.
    assert level_for_zoom(d, 0.5, 2.0) == 0
    assert level_for_zoom(d, 0.25, 2.0) == 1
    assert level_for_zoom(d, 0.25, 3.0) == level_for_zoom(d, 0.25, 2.0)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            level_for_zoom(d, bad)
        with pytest.raises(ValueError):
            level_for_zoom(d, 1.0, bad)


def test_browser_camera_matches_the_core(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js not found: it builds the front end and runs this test", pytrace=False)
    if not CAMERA_JS.is_file():
        pytest.fail(
            f"{CAMERA_JS.relative_to(REPO)} missing: run `cd labextension && jlpm build`",
            pytrace=False,
        )
    shutil.copy(CAMERA_JS, tmp_path / "camera.mjs")
    shutil.copy(CAMERA_TEST, tmp_path / "camera.test.mjs")
    (tmp_path / "cases.json").write_text(json.dumps(_cases(np.random.default_rng(20261130))))
    run = subprocess.run(
        [node, "--test", "camera.test.mjs"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin", "CAMERA_CASES": str(tmp_path / "cases.json")},
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    passed = re.search(r"^# pass (\d+)$", run.stdout, re.M)
    failed = re.search(r"^# fail (\d+)$", run.stdout, re.M)
    assert passed and failed, run.stdout
    assert (int(passed.group(1)), int(failed.group(1))) == (10, 0), run.stdout
