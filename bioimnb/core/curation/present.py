"""The OME model as people and scripts read it: a text summary and plain JSON.

Shared by ``bioimnb meta show``, the ``%bioim meta`` magic and the editor widget, so all three
show the same facts in the same words.
"""

from __future__ import annotations

import base64
import datetime as _dt
from enum import Enum
from typing import Any

from ..metadata.ome import color_hex
from .changes import get_map

__all__ = ["image_rows", "model_json", "summary_text"]


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        # Empty lists and groups are left out: a JSON a person can read, not the schema's skeleton.
        return {k: _plain(v) for k, v in value.items() if v != [] and v != {}}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if hasattr(value, "as_rgb_tuple"):
        return "#" + (color_hex(value) or "FFFFFF")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def model_json(ome: Any) -> dict[str, Any]:
    """The model as JSON-ready data (ome-types attribute names; unset fields left out)."""
    return _plain(ome.model_dump(exclude_none=True))  # type: ignore[no-any-return]


def _size(value: Any, unit: Any) -> str:
    if value is None:
        return "unknown"
    return f"{value:g} {getattr(unit, 'value', unit) or 'µm'}"


def _objective(ome: Any, image: Any) -> str | None:
    settings = image.objective_settings
    for inst in ome.instruments:
        for obj in inst.objectives:
            if settings is None or obj.id == settings.id:
                parts = [obj.model or obj.manufacturer or obj.id]
                if obj.nominal_magnification:
                    parts.append(f"{obj.nominal_magnification:g}x")
                if obj.lens_na:
                    parts.append(f"NA {obj.lens_na:g}")
                if obj.immersion is not None:
                    parts.append(str(getattr(obj.immersion, "value", obj.immersion)))
                return ", ".join(p for p in parts if p)
    return None


def _instrument(ome: Any, image: Any) -> str | None:
    ref = image.instrument_ref
    for inst in ome.instruments:
        if ref is None or inst.id == ref.id:
            mic = inst.microscope
            if mic is not None and (mic.manufacturer or mic.model):
                return " ".join(p for p in (mic.manufacturer, mic.model) if p)
            return str(inst.id)
    return None


def image_rows(ome: Any, index: int) -> list[tuple[str, str]]:
    """(label, text) rows describing one image."""
    image = ome.images[index]
    px = image.pixels
    rows: list[tuple[str, str]] = [("name", image.name or "(none)"), ("id", image.id)]
    if image.acquisition_date is not None:
        rows.append(("acquired", image.acquisition_date.isoformat()))
    if image.description:
        rows.append(("description", image.description))
    if px is not None:
        rows.append(
            (
                "pixels",
                f"X {px.size_x} x Y {px.size_y} x Z {px.size_z}, C {px.size_c}, T {px.size_t}, "
                f"{getattr(px.type, 'value', px.type)}, {getattr(px.dimension_order, 'value', px.dimension_order)}",
            )
        )
        rows.append(
            (
                "physical size",
                f"X {_size(px.physical_size_x, px.physical_size_x_unit)}, Y {_size(px.physical_size_y, px.physical_size_y_unit)}, "
                f"Z {_size(px.physical_size_z, px.physical_size_z_unit)}",
            )
        )
        for c, ch in enumerate(px.channels):
            parts = [repr(ch.name) if ch.name is not None else "(no name)", f"colour #{color_hex(ch.color)}"]
            if ch.excitation_wavelength:
                parts.append(f"excitation {_size(ch.excitation_wavelength, ch.excitation_wavelength_unit)}")
            if ch.emission_wavelength:
                parts.append(f"emission {_size(ch.emission_wavelength, ch.emission_wavelength_unit)}")
            if ch.fluor:
                parts.append(f"fluor {ch.fluor}")
            rows.append((f"channel[{c}]", ", ".join(parts)))
    inst = _instrument(ome, image)
    if inst:
        rows.append(("instrument", inst))
    obj = _objective(ome, image)
    if obj:
        rows.append(("objective", obj))
    for key, value in get_map(ome, index):
        rows.append((f"map.{key}", value))
    return rows


def summary_text(doc: Any) -> str:
    """What ``bioimnb meta show`` prints."""
    ome = doc.ome
    where = {
        "ome-tiff": "OME-TIFF; edits are saved in place, pixels untouched",
        "ome-zarr": "OME-Zarr; edits go to the NGFF attributes and OME/METADATA.ome.xml",
        "ome-xml": "OME-XML document",
        "sidecar": f"{doc.format}; edits go to the companion file {doc.target}",
    }[doc.kind]
    lines = [f"{doc.source} ({where})"]
    lines.extend(f"note: {n}" for n in doc.notes)
    for i in range(len(ome.images)):
        lines.append(f"images[{i}]")
        lines.extend(f"  {label}: {text}" for label, text in image_rows(ome, i))
    for p, plate in enumerate(ome.plates):
        fields = sum(len(w.well_samples) for w in plate.wells)
        lines.append(f"plates[{p}]: {plate.name or plate.id}, {plate.rows or '?'} rows x {plate.columns or '?'} columns, {len(plate.wells)} wells, {fields} fields")
    counts = []
    if ome.rois:
        counts.append(f"{len(ome.rois)} ROIs")
    if ome.instruments:
        counts.append(f"{len(ome.instruments)} instruments")
    if ome.structured_annotations is not None:
        n = len(list(ome.structured_annotations))
        if n:
            counts.append(f"{n} annotations")
    if counts:
        lines.append("also: " + ", ".join(counts))
    return "\n".join(lines)
