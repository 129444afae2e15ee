"""Demo images made on the spot (no download): what the workshop notebooks open.

``make_demo_data(folder)`` writes a small but realistic set: a pyramidal two-channel OME-TIFF,
an OME-Zarr (NGFF 0.5) with a label image, an RGB whole-slide-style pyramid, a flat TIFF with no
pyramid and a plain text file (the odd one out every real folder has).  Existing files are kept.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["make_demo_data", "nuclei"]


def nuclei(shape: tuple[int, int], n: int, radius: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic fluorescence field: Gaussian blobs on a dim noisy background, and their labels."""
    rng = np.random.default_rng(seed)
    h, w = shape
    img = rng.normal(300, 30, shape).astype(np.float32)
    labels = np.zeros(shape, np.uint16)
    cy, cx = rng.uniform(0, h, n), rng.uniform(0, w, n)
    r = rng.uniform(0.6, 1.4, n) * radius
    amp = rng.uniform(1500, 9000, n)
    for i in range(n):
        y0, y1 = int(max(0, cy[i] - 3 * r[i])), int(min(h, cy[i] + 3 * r[i] + 1))
        x0, x1 = int(max(0, cx[i] - 3 * r[i])), int(min(w, cx[i] + 3 * r[i] + 1))
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1]
        d2 = (yy - cy[i]) ** 2 + (xx - cx[i]) ** 2
        img[y0:y1, x0:x1] += amp[i] * np.exp(-d2 / (2 * (r[i] / 1.6) ** 2))
        labels[y0:y1, x0:x1][d2 <= r[i] ** 2] = i + 1
    return np.clip(img, 0, 65535).astype(np.uint16), labels


def _downsample(a: np.ndarray) -> np.ndarray:
    h, w = a.shape[-2] // 2 * 2, a.shape[-1] // 2 * 2
    a = a[..., :h, :w].astype(np.float32)
    return ((a[..., ::2, ::2] + a[..., 1::2, ::2] + a[..., ::2, 1::2] + a[..., 1::2, 1::2]) / 4).astype(np.uint16)


def _pyramid(a: np.ndarray, min_edge: int = 256) -> list[np.ndarray]:
    out = [a]
    while max(out[-1].shape[-2:]) > min_edge:
        out.append(_downsample(out[-1]))
    return out


def _ome_tiff(path: Path, size: int) -> None:
    import tifffile

    dapi, _ = nuclei((size, size), n=size // 12, radius=9, seed=1)
    membrane, _ = nuclei((size, size), n=size // 6, radius=4, seed=2)
    pyr = _pyramid(np.stack([dapi, membrane]))
    with tifffile.TiffWriter(path, bigtiff=True, ome=True) as tw:
        opts: dict[str, Any] = {"tile": (256, 256), "compression": "zlib", "photometric": "minisblack"}
        tw.write(
            pyr[0],
            subifds=len(pyr) - 1,
            metadata={
                "axes": "CYX",
                "Name": "cells",
                "PhysicalSizeX": 0.325,
                "PhysicalSizeY": 0.325,
                "Channel": {"Name": ["DAPI", "Membrane"], "Color": [0x0000FFFF, 0x00FF00FF]},
            },
            **opts,
        )
        for level in pyr[1:]:
            tw.write(level, subfiletype=1, **opts)


def _ome_zarr(path: Path, size: int) -> None:
    import zarr

    planes = [nuclei((size, size), n=size // 10, radius=8, seed=10 + z) for z in range(3)]
    data = np.stack([np.stack([p[0] for p in planes]), np.stack([p[0] // 2 + 200 for p in planes])])  # C Z Y X
    labels = np.stack([p[1] for p in planes])  # Z Y X
    root = zarr.open_group(str(path), mode="w", zarr_format=3)
    axes: list[dict[str, Any]] = [
        {"name": "c", "type": "channel"},
        {"name": "z", "type": "space", "unit": "micrometer"},
        {"name": "y", "type": "space", "unit": "micrometer"},
        {"name": "x", "type": "space", "unit": "micrometer"},
    ]
    pyr = _pyramid(data)
    datasets: list[dict[str, Any]] = []
    for i, level in enumerate(pyr):
        arr = root.create_array(str(i), shape=level.shape, dtype=level.dtype, chunks=(1, 1, 256, 256), dimension_names=["c", "z", "y", "x"])
        arr[...] = level
        datasets.append({"path": str(i), "coordinateTransformations": [{"type": "scale", "scale": [1.0, 2.0, 0.5 * 2**i, 0.5 * 2**i]}]})
    root.attrs["ome"] = {
        "version": "0.5",
        "multiscales": [{"name": "tissue", "axes": axes, "datasets": datasets}],
        "omero": {
            "channels": [
                {"label": "Nuclei", "color": "00FFFF", "active": True, "window": {"start": 300, "end": 6000, "min": 0, "max": 65535}},
                {"label": "Autofluorescence", "color": "FF00FF", "active": True, "window": {"start": 300, "end": 3500, "min": 0, "max": 65535}},
            ]
        },
    }
    lab_root = root.create_group("labels")
    lab_root.attrs["ome"] = {"version": "0.5", "labels": ["nuclei"]}
    lab = lab_root.create_group("nuclei")
    lpyr = [labels]
    while max(lpyr[-1].shape[-2:]) > 256:
        lpyr.append(lpyr[-1][..., ::2, ::2])
    ldatasets: list[dict[str, Any]] = []
    for i, level in enumerate(lpyr):
        arr = lab.create_array(str(i), shape=level.shape, dtype=level.dtype, chunks=(1, 256, 256), dimension_names=["z", "y", "x"])
        arr[...] = level
        ldatasets.append({"path": str(i), "coordinateTransformations": [{"type": "scale", "scale": [2.0, 0.5 * 2**i, 0.5 * 2**i]}]})
    lab.attrs["ome"] = {
        "version": "0.5",
        "multiscales": [{"name": "nuclei", "axes": axes[1:], "datasets": ldatasets}],
        "image-label": {"source": {"image": "../../"}},
    }


def _slide(path: Path, h: int, w: int) -> None:
    import tifffile

    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    tissue = (np.sin(xx / 97) + np.cos(yy / 131) + np.sin((xx + yy) / 53)) > 0.4
    rgb = np.full((h, w, 3), 242, np.uint8)
    rgb[tissue] = (np.array([196, 120, 190], np.uint8))
    rng = np.random.default_rng(3)
    rgb = np.clip(rgb.astype(np.int16) + rng.integers(-12, 12, rgb.shape), 0, 255).astype(np.uint8)
    pyr = [rgb]
    while max(pyr[-1].shape[:2]) > 512:
        pyr.append(np.ascontiguousarray(pyr[-1][::2, ::2]))
    desc = f"Aperio Image Library v12.0.15 \n{w}x{h} [0,0 {w}x{h}] (256x256) JPEG/RGB Q=90|AppMag = 20|MPP = 0.5"
    with tifffile.TiffWriter(path, bigtiff=False) as tw:
        kw: dict[str, Any] = {"photometric": "rgb", "metadata": None, "compression": "jpeg", "compressionargs": {"level": 90}}
        tw.write(pyr[0], tile=(256, 256), description=desc, **kw)
        tw.write(pyr[0][::32, ::32], description="Aperio Image Library v12.0.15 \nthumbnail", **kw)
        for level in pyr[1:]:
            tw.write(level, tile=(256, 256), description="Aperio Image Library v12.0.15 \nlevel", **kw)


def _flat(path: Path, size: int) -> None:
    import tifffile

    img, _ = nuclei((size, size), n=size // 8, radius=10, seed=7)
    tifffile.imwrite(path, img, photometric="minisblack", rowsperstrip=16, compression="zlib")


def make_demo_data(folder: str | Path, *, small: bool = False) -> list[Path]:
    """Write the demo images into ``folder`` (created if needed); returns their paths."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    size = 1024 if small else 4096
    items = [
        ("cells.ome.tif", lambda p: _ome_tiff(p, size)),
        ("tissue.ome.zarr", lambda p: _ome_zarr(p, size // 2)),
        ("slide.svs", lambda p: _slide(p, size, size * 3 // 2)),
        ("flat-no-pyramid.tif", lambda p: _flat(p, size)),
    ]
    made = []
    for name, write in items:
        path = out / name
        if not path.exists():
            tmp = out / (name + ".partial")
            write(tmp)
            tmp.rename(path)
        made.append(path)
    notes = out / "README.txt"
    if not notes.exists():
        notes.write_text("Synthetic demo images made by bioimnb.core.demo; safe to delete.\n")
    (out / ".bioimnb-demo.json").write_text(json.dumps({"files": [p.name for p in made]}))
    return made
