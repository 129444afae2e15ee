"""NGFF (OME-Zarr 0.4 / 0.5) metadata and array layout for conversion outputs."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..metadata.units import NGFF_MICROMETER
from ..readers.base import Channel, PhysicalSize
from .options import ConvertOptions
from .plan import ScenePlan

__all__ = ["codecs_for", "image_attrs", "wrap", "window_for"]


def wrap(attrs: dict[str, Any], version: str) -> dict[str, Any]:
    """0.5 keeps OME metadata under ``"ome"`` (with the version); 0.4 at the top level."""
    if version == "0.5":
        return {"ome": {"version": "0.5", **attrs}}
    return attrs


def codecs_for(opts: ConvertOptions, dtype: np.dtype) -> dict[str, Any]:
    """``create_array`` keyword arguments for the chosen compression."""
    level = int(opts.compression_level or 0)
    if opts.ngff == "0.4":
        import numcodecs

        if opts.compression == "none":
            return {"compressors": None}
        if opts.compression == "zstd":
            return {"compressors": numcodecs.Zstd(level=level)}
        if opts.compression == "zlib":
            return {"compressors": numcodecs.Zlib(level=level)}
        return {"compressors": numcodecs.Blosc(cname="lz4", clevel=level, shuffle=numcodecs.Blosc.BITSHUFFLE if dtype.itemsize == 1 else numcodecs.Blosc.SHUFFLE)}
    from zarr.codecs import BloscCodec, GzipCodec, ZstdCodec

    if opts.compression == "none":
        return {"compressors": None}
    if opts.compression == "zstd":
        return {"compressors": ZstdCodec(level=level)}
    if opts.compression == "zlib":
        # zarr v3 has no bare zlib codec; gzip is the same DEFLATE stream with a small header.
        return {"compressors": GzipCodec(level=level)}
    return {"compressors": BloscCodec(cname="lz4", clevel=level, shuffle="bitshuffle" if dtype.itemsize == 1 else "shuffle")}


def image_attrs(
    plan: ScenePlan,
    physical: PhysicalSize,
    channels: list[Channel],
    opts: ConvertOptions,
    windows: list[tuple[float, float]] | None = None,
) -> dict[str, Any]:
    known = physical.X is not None and physical.Y is not None
    axes: list[dict[str, Any]] = [{"name": "t", "type": "time"}, {"name": "c", "type": "channel"}]
    for name in "zyx":
        ax: dict[str, Any] = {"name": name, "type": "space"}
        # An unknown Z spacing gets no unit: its scale of 1 is a placeholder, not 1 µm (readers
        # such as bioimnb's then report Z as unknown instead of an invented 1 µm).
        if known and (name != "z" or physical.Z):
            ax["unit"] = NGFF_MICROMETER
        axes.append(ax)
    base = (
        physical.Z if (known and physical.Z) else 1.0,
        physical.Y if known else 1.0,
        physical.X if known else 1.0,
    )
    datasets = [
        {"path": str(k), "coordinateTransformations": [{"type": "scale", "scale": plan.scale(k, base)}]}  # type: ignore[arg-type]
        for k in range(len(plan.shapes))
    ]
    multiscale: dict[str, Any] = {
        "name": plan.name,
        "axes": axes,
        "datasets": datasets,
        "type": {"mean": "local_mean", "mode": "mode", "nearest": "nearest"}[opts.downsample],
        "metadata": {"method": f"bioimnb.convert ({opts.downsample})"},
    }
    if opts.ngff == "0.4":
        multiscale["version"] = "0.4"
    info = np.iinfo(plan.dtype) if np.issubdtype(plan.dtype, np.integer) else None
    lo, hi = (float(info.min), float(info.max)) if info else (0.0, 1.0)
    names = _channel_names(plan, channels)
    colors = _channel_colors(plan, channels)
    omero_channels = []
    for i, (name, color) in enumerate(zip(names, colors, strict=True)):
        start, end = windows[i] if windows and i < len(windows) else (lo, hi)
        omero_channels.append(
            {
                "label": name,
                "color": color,
                "active": True,
                "coefficient": 1.0,
                "family": "linear",
                "inverted": False,
                "window": {"start": start, "end": end, "min": lo, "max": hi},
            }
        )
    omero: dict[str, Any] = {
        "channels": omero_channels,
        "rdefs": {"model": "color" if len(names) > 1 else "greyscale", "defaultT": 0, "defaultZ": plan.shapes[0][2] // 2},
    }
    if opts.ngff == "0.4":
        omero["version"] = "0.4"
    return {"multiscales": [multiscale], "omero": omero}


def _channel_names(plan: ScenePlan, channels: list[Channel]) -> list[str]:
    if plan.samples > 1:
        rgb = ["R", "G", "B", "A"][: plan.samples]
        return [f"{ch.name} {s}" if len(channels) > 1 else s for ch in channels for s in rgb]
    return [ch.name for ch in channels]


def _channel_colors(plan: ScenePlan, channels: list[Channel]) -> list[str]:
    if plan.samples > 1:
        rgb = ["FF0000", "00FF00", "0000FF", "FFFFFF"][: plan.samples]
        return [c for _ in channels for c in rgb]
    return [ch.color for ch in channels]


def window_for(data: np.ndarray) -> tuple[float, float]:
    """Display window from the coarsest level: 0.1 and 99.9 percentiles of non-empty pixels."""
    flat = np.asarray(data).ravel()
    if flat.size == 0:
        return (0.0, 1.0)
    lo, hi = np.percentile(flat, [0.1, 99.9])
    if hi <= lo:
        hi = lo + 1
    return (float(lo), float(hi))
