"""Statistics a viewer shows: auto-contrast windows and histograms of sampled pixels, and pixel
values as JSON.

Samples come from the coarsest level (see :meth:`~bioimnb.core.tiles.TileRenderer.auto_contrast`):
at most a centred ``AUTO_MAX_EDGE``-square of a plane, at most ``AUTO_MAX_PLANES`` planes, and
only the channels asked for.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "AUTO_CONTRAST_PERCENTILES",
    "AUTO_MAX_EDGE",
    "AUTO_MAX_PLANES",
    "finite_values",
    "histogram_of",
    "json_number",
    "percentile_window",
]

AUTO_CONTRAST_PERCENTILES = (0.1, 99.9)
AUTO_MAX_EDGE = 2048
"""Auto contrast and histograms read at most a centred ``AUTO_MAX_EDGE``-square of a plane."""
AUTO_MAX_PLANES = 8
"""With ``z=None``, auto contrast samples at most this many evenly spaced Z planes."""


def finite_values(values: np.ndarray) -> np.ndarray:
    """``values`` flattened, without NaN and infinities (booleans as uint8)."""
    flat = values.ravel()
    if flat.dtype.kind == "f":
        flat = flat[np.isfinite(flat)]
    elif flat.dtype.kind == "b":
        flat = flat.astype(np.uint8)
    return flat


def json_number(value: Any) -> Any:
    """A numpy scalar as a JSON-friendly Python number (NaN and infinities as ``None``)."""
    if isinstance(value, np.ndarray):
        return [json_number(v) for v in value.tolist()]
    if isinstance(value, list):
        return [json_number(v) for v in value]
    item = value.item() if hasattr(value, "item") else value
    if isinstance(item, float) and not math.isfinite(item):
        return None
    if isinstance(item, complex):
        return abs(item)
    return item


def percentile_window(row: np.ndarray) -> tuple[float, float]:
    """``(lo, hi)``: the 0.1 and 99.9 percentiles of the finite values of ``row``, widened to
    ``(p, p + 1)`` when they coincide; ``(0, 1)`` when nothing is finite."""
    values = finite_values(row)
    if values.size == 0:
        return (0.0, 1.0)
    lo, hi = np.percentile(values, AUTO_CONTRAST_PERCENTILES)
    lo, hi = float(lo), float(hi)
    if hi <= lo:
        hi = lo + 1.0
    return (lo, hi)


def histogram_of(row: np.ndarray, bins: int) -> dict[str, Any]:
    """``{"edges": [bins + 1], "counts": [bins], "min", "max"}`` of the finite values of
    ``row``.  Integers with fewer distinct possible values than ``bins`` between their minimum
    and maximum get one bin per integer value."""
    if bins < 1:
        raise ValueError(f"bins must be positive, not {bins}")
    values = finite_values(row)
    if values.size == 0:
        return {"edges": [0.0, 1.0], "counts": [0], "min": None, "max": None}
    vmin, vmax = values.min().item(), values.max().item()
    if values.dtype.kind in "uib":
        if vmax - vmin + 1 <= bins:
            edges = np.arange(vmin, vmax + 2, dtype=np.float64)
            counts = np.bincount((values - vmin).astype(np.int64), minlength=len(edges) - 1)
        else:
            counts, edges = np.histogram(values, bins=bins, range=(vmin, vmax + 1))
    else:
        hi = vmax if vmax > vmin else vmin + 1.0
        counts, edges = np.histogram(values, bins=bins, range=(vmin, hi))
    return {
        "edges": [float(e) for e in edges],
        "counts": [int(c) for c in counts],
        "min": json_number(vmin),
        "max": json_number(vmax),
    }
