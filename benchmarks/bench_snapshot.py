"""Benchmark: the still picture a viewer output carries (notebooks that travel).

Claims measured:

* Displaying a viewer with its still picture costs little more than displaying it without one:
  ``view(path)`` + the widget's mime bundle, with the picture (``Viewer._repr_mimebundle_``) vs
  without (anywidget's own bundle).  Ratio of medians.
* The picture is cheaper than making the same static picture by hand the usual way: open the
  image, read the pyramid level of a <= 512 px picture with numpy, ``matplotlib`` ``imshow`` of the
  two channels as an RGB composite (same contrast windows) and ``savefig`` to PNG.  Ratio of
  medians, fitted view and a 1:1 view (the hand-made route crops level 0).

Images: the demo data (``bioimnb.core.demo.make_demo_data``): ``cells.ome.tif`` (2 channels,
uint16, 4096 px, pyramid), ``slide.svs`` (RGB pyramid), ``tissue.ome.zarr`` (NGFF with labels);
``--quick`` makes the small set (1024 px).  Files are in the page cache (warm): the figure shows
CPU cost, not disk reads.  Every run opens the image anew (no tile cache is reused between runs).

Run:  .venv/bin/python benchmarks/bench_snapshot.py [--runs 15] [--quick]
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import base_parser, median, ms, print_machine, progress, ratio, table  # noqa: E402


def _viewer_without_picture(path: Path) -> None:
    import anywidget

    import bioimnb

    v = bioimnb.view(path)
    anywidget.AnyWidget._repr_mimebundle_(v)
    v.close()


def _viewer_with_picture(path: Path) -> None:
    import bioimnb

    v = bioimnb.view(path)
    data, _ = v._repr_mimebundle_()
    assert "image/png" in data
    v.close()


def _by_hand(path: Path, view: dict[str, Any], zoom_1: bool) -> None:
    """The usual hand-made still: numpy read of the level, matplotlib composite, PNG."""
    import matplotlib

    matplotlib.use("agg")
    import matplotlib.pyplot as plt

    import bioimnb

    with bioimnb.open_image(path) as img:
        h0, w0 = img.shape[3], img.shape[4]
        if zoom_1:  # the 800 x 520 centre of level 0
            ys = slice(max(0, h0 // 2 - 260), h0 // 2 + 260)
            xs = slice(max(0, w0 // 2 - 400), w0 // 2 + 400)
            level = 0
        else:
            level = next(
                (i for i, s in enumerate(img.level_shapes) if max(s[3], s[4]) <= 1024),
                img.n_levels - 1,
            )
            ys, xs = slice(None), slice(None)
        z = img.shape[2] // 2
        planes = np.asarray(img.read(level, t=0, z=z, y=ys, x=xs), dtype=np.float32)
        if planes.ndim == 4:  # RGB samples: (C, h, w, S)
            rgb = planes[0, ..., :3] / 255.0
        else:
            rgb = np.zeros((*planes.shape[1:], 3), np.float32)
            for ch in view["channels"]:
                if not ch["visible"] or ch["index"] >= planes.shape[0]:
                    continue
                colour = np.array([int(ch["color"][i : i + 2], 16) / 255 for i in (0, 2, 4)])
                scaled = (planes[ch["index"]] - ch["min"]) / max(1e-9, ch["max"] - ch["min"])
                rgb += np.clip(scaled, 0, 1)[..., None] * colour
        h, w = rgb.shape[:2]
        dpi = 100
        scale = min(1.0, 512 / max(h, w))
        fig = plt.figure(figsize=(w * scale / dpi, h * scale / dpi), dpi=dpi)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.imshow(np.clip(rgb, 0, 1), interpolation="nearest")
        ax.axis("off")
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
        plt.close(fig)


def _picture(path: Path, zoom_1: bool) -> None:
    import bioimnb

    v = bioimnb.view(path)
    if zoom_1:
        h0, w0 = v.info["levels"][0]["shape"]
        v.go_to(w0 / 2, h0 / 2, zoom=1.0)
    v.snapshot().png()
    v.close()


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs per route and image")
    args = parser.parse_args(argv)
    runs = 3 if args.quick else args.runs
    work: Path = args.workdir / ("snapshot-small" if args.quick else "snapshot")
    work.mkdir(parents=True, exist_ok=True)
    print_machine(work)

    from bioimnb.core.demo import make_demo_data
    from bioimnb.widgets.viewer import view

    paths = [p for p in make_demo_data(work, small=args.quick) if "flat" not in p.name]
    import matplotlib

    matplotlib.use("agg")
    import matplotlib.pyplot  # noqa: F401 - imported once, outside the timings

    rows: list[list[str]] = []
    ratios: list[tuple[str, float, float, float, float, float, float]] = []
    from common import repeat

    for path in paths:
        progress(f"{path.name}: {runs} runs per route")
        default = view(path).view
        for fn in (_viewer_without_picture, _viewer_with_picture):  # warm-up (imports, page cache)
            fn(path)
        plain = repeat(lambda p=path: _viewer_without_picture(p), runs)
        shown = repeat(lambda p=path: _viewer_with_picture(p), runs)
        fit = repeat(lambda p=path: _picture(p, False), runs)
        fit_hand = repeat(lambda p=path, d=default: _by_hand(p, d, False), runs)
        one = repeat(lambda p=path: _picture(p, True), runs)
        one_hand = repeat(lambda p=path, d=default: _by_hand(p, d, True), runs)
        rows.append(
            [
                path.name,
                ms(median(plain)),
                ms(median(shown)),
                ms(median(fit)),
                ms(median(fit_hand)),
                ms(median(one)),
                ms(median(one_hand)),
            ]
        )
        ratios.append(
            (
                path.name,
                median(shown),
                median(plain),
                median(fit),
                median(fit_hand),
                median(one),
                median(one_hand),
            )
        )
    table(
        [
            "image",
            "view() without picture ms",
            "view() with picture ms",
            "picture fitted ms",
            "by hand fitted ms",
            "picture 1:1 ms",
            "by hand 1:1 ms",
        ],
        rows,
        title=f"medians of {runs} runs (each opens the image anew)",
    )
    print("Ratios of medians:")
    for name, shown_s, plain_s, fit_s, hand_s, one_s, one_hand_s in ratios:
        print(
            f"  {name}: display with / without picture {ratio(shown_s, plain_s)}; "
            f"picture / by hand: fitted {ratio(fit_s, hand_s)}, 1:1 {ratio(one_s, one_hand_s)}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
