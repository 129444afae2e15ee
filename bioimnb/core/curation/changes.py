"""Edits of an OME model as a change list: ``FIELD=VALUE`` items, checked all together first.

A FIELD is a dotted path with ome-types' attribute names and list indexes, e.g.
``images[0].pixels.channels[1].name`` or ``instruments[0].objectives[0].lens_na``.  Shorter
aliases name the same fields:

==================================  ===============================================
alias                               field
==================================  ===============================================
``name``, ``acquisition_date``, ...  ``images[0].<that>`` (any Image attribute)
``image[2].name``                   ``images[2].name``
``channel[1].name``                 ``images[0].pixels.channels[1].name``
``pixel_size_x`` (``_y``, ``_z``)   ``images[0].pixels.physical_size_x``
``pixel_size_x_unit``               ``images[0].pixels.physical_size_x_unit``
``size_x``, ``dimension_order``...  ``images[0].pixels.<that>`` (any Pixels attribute)
``objective[0].lens_na``            ``instruments[0].objectives[0].lens_na``
``map.KEY`` / ``image[1].map.KEY``  the key-value pair KEY of the image's map annotation
==================================  ===============================================

Key-value pairs live in a MapAnnotation in OMERO's client namespace
(``openmicroscopy.org/omero/client/mapAnnotation``) linked to the image, which OMERO shows
and lets people edit.  An empty VALUE unsets an optional field or removes a pair.

Values are checked by the model itself (ome-types' pydantic types: numbers, positive sizes,
enumerations, dates, colours) and units by :mod:`bioimnb.core.metadata.units`; an invalid item
is refused naming its field, and nothing of the list is applied.

This module is the grammar (fields, aliases, value spellings) and the reading of key-value
pairs; :mod:`bioimnb.core.curation.xmltree` applies a change list and computes diffs, on the
document's XML (:func:`bioimnb.core.curation.edit.apply_changes` does it for a model).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from ..errors import BioimnbError

if TYPE_CHECKING:  # pragma: no cover
    pass

__all__ = [
    "OMERO_CLIENT_NS",
    "Change",
    "InvalidField",
    "canonical_field",
    "get_map",
    "parse_assignments",
]

OMERO_CLIENT_NS = "openmicroscopy.org/omero/client/mapAnnotation"
PROVENANCE_NS = "https://bioimnb.org/metadata-edit"
"""Namespace of the MapAnnotation each save adds (see :mod:`bioimnb.core.curation.edit`)."""

_STEP = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\[(-?\d+)\])?$")
_PIXEL_ALIASES = {
    "pixel_size_x": "physical_size_x",
    "pixel_size_y": "physical_size_y",
    "pixel_size_z": "physical_size_z",
    "pixel_size_x_unit": "physical_size_x_unit",
    "pixel_size_y_unit": "physical_size_y_unit",
    "pixel_size_z_unit": "physical_size_z_unit",
}


class InvalidField(BioimnbError, ValueError):
    """A FIELD=VALUE item that cannot be applied: unknown field, bad value, index out of range."""


@dataclass(frozen=True)
class Change:
    """One applied edit: the canonical field, the value before and after (display strings)."""

    field: str
    old: Any
    new: Any

    def __str__(self) -> str:
        return f"{self.field}: {_show(self.old)} -> {_show(self.new)}"

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "old": _plain(self.old), "new": _plain(self.new)}


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Enum):
        return value.value
    if hasattr(value, "as_rgb_tuple"):
        from ..metadata.ome import color_hex

        return color_hex(value)
    return str(value)


def _show(value: Any) -> str:
    plain = _plain(value)
    return "(unset)" if plain is None else repr(plain)


def parse_assignments(items: Iterable[str] | Mapping[str, Any]) -> list[tuple[str, Any]]:
    """``["FIELD=VALUE", ...]`` (or a mapping) as ``(field, value)`` pairs, in order."""
    if isinstance(items, Mapping):
        return [(str(k), v) for k, v in items.items()]
    out: list[tuple[str, Any]] = []
    for item in items:
        fieldname, sep, value = str(item).partition("=")
        if not sep or not fieldname.strip():
            raise InvalidField(item, "expected FIELD=VALUE, e.g. channel[0].name=DAPI")
        out.append((fieldname.strip(), value))
    return out


# -- field paths ---------------------------------------------------------------------------------


def _steps(fieldname: str) -> list[tuple[str, int | None]]:
    steps: list[tuple[str, int | None]] = []
    for part in fieldname.split("."):
        m = _STEP.match(part.strip())
        if not m:
            raise InvalidField(fieldname, f"not a field path ({part!r} is not NAME or NAME[INDEX])")
        steps.append((m.group(1), None if m.group(2) is None else int(m.group(2))))
    return steps


def canonical_field(fieldname: str) -> tuple[list[tuple[str, int | None]], str | None]:
    """The field as ome-types steps from the OME root, and the map-annotation key (or None)."""
    from ome_types import OME
    from ome_types.model import Image, Pixels

    if "map." in fieldname or fieldname.startswith("map."):
        head, _, key = fieldname.partition("map.")
        if not key:
            raise InvalidField(fieldname, "a key-value field is map.KEY")
        head = head.rstrip(".")
        steps = _expand(_steps(head) if head else [], OME, Image, Pixels, fieldname)
        if len(steps) != 1 or steps[0][0] != "images":
            raise InvalidField(fieldname, "key-value pairs belong to an image: map.KEY or image[N].map.KEY")
        return steps, key
    return _expand(_steps(fieldname), OME, Image, Pixels, fieldname), None


def _expand(steps: list[tuple[str, int | None]], OME: Any, Image: Any, Pixels: Any, fieldname: str) -> list[tuple[str, int | None]]:
    if not steps:
        return [("images", 0)]
    name, index = steps[0]
    if name == "image":
        steps = [("images", 0 if index is None else index), *steps[1:]]
    elif name in ("instrument", "plate", "experimenter", "dataset", "project", "screen", "roi", "rois"):
        plural = {"roi": "rois", "rois": "rois"}.get(name, name + "s")
        steps = [(plural, 0 if index is None else index), *steps[1:]]
    elif name == "objective":
        steps = [("instruments", 0), ("objectives", 0 if index is None else index), *steps[1:]]
    elif name not in OME.model_fields:
        steps = [("images", 0), *steps]
    # Inside an image: channel[i] and the Pixels attributes may skip ``pixels``.
    if steps[0][0] == "images" and len(steps) > 1:
        sub, sub_index = steps[1]
        sub = _PIXEL_ALIASES.get(sub, sub)
        if sub in ("channel", "channels"):
            steps = [steps[0], ("pixels", None), ("channels", 0 if sub_index is None else sub_index), *steps[2:]]
        elif sub not in Image.model_fields and sub in Pixels.model_fields:
            steps = [steps[0], ("pixels", None), (sub, sub_index), *steps[2:]]
        elif sub != steps[1][0]:
            steps = [steps[0], (sub, sub_index), *steps[2:]]
        if len(steps) > 2 and steps[1][0] == "pixels":
            last, last_index = steps[2]
            steps = [*steps[:2], (_PIXEL_ALIASES.get(last, last), last_index), *steps[3:]]
    return steps


def field_text(steps: Sequence[tuple[str, int | None]], key: str | None = None) -> str:
    text = ".".join(f"{n}[{i}]" if i is not None else n for n, i in steps)
    return f"{text}.map.{key}" if key is not None else text


# -- values --------------------------------------------------------------------------------------


def _unit_value(enum: type[Enum], value: Any, fieldname: str) -> Any:
    """A length unit as OME's symbol, accepting every spelling units.py knows (um, micron, ...)."""
    from ..metadata.units import LENGTH_UM, unit_factor

    text = str(getattr(value, "value", value)).strip()
    factor = unit_factor(text) if text else None
    if factor is None:
        raise InvalidField(fieldname, f"unknown length unit {text!r} (e.g. µm, nm, mm)")
    members = {m.value: m for m in enum}  # type: ignore[attr-defined]
    if text in members:
        return members[text]
    for symbol, member in members.items():
        if symbol in LENGTH_UM and abs(LENGTH_UM[symbol] - factor) <= 1e-12 * max(factor, 1e-30):
            return member
    raise InvalidField(fieldname, f"length unit {text!r} has no OME symbol")  # pragma: no cover


def _convert(model: Any, name: str, value: Any, fieldname: str) -> Any:
    from ome_types.model import UnitsLength

    info = type(model).model_fields.get(name)
    if info is None:
        fields = ", ".join(sorted(k for k in type(model).model_fields if not k.startswith("_")))
        raise InvalidField(fieldname, f"{type(model).__name__} has no field {name!r} (fields: {fields})")
    if isinstance(value, str) and value.strip() == "":
        if info.is_required():
            raise InvalidField(fieldname, "is required and cannot be unset")
        return info.get_default(call_default_factory=True) if name.endswith("_unit") else None
    annotation = info.annotation
    if annotation is UnitsLength:
        return _unit_value(UnitsLength, value, fieldname)
    if name == "color" and isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"[0-9a-fA-F]{6}([0-9a-fA-F]{2})?", text):
            return "#" + text
        if re.fullmatch(r"-?\d+", text):
            return int(text)
    if isinstance(value, str):
        return value.strip()
    return value


def _error_text(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            first = errors()[0]
            msg = str(first.get("msg", exc))
            if len(msg) > 160:
                msg = msg[:157] + "..."
            return f"{msg} (got {first.get('input')!r})"
        except Exception:  # noqa: BLE001 - fall back to the exception's text
            pass
    return str(exc).splitlines()[0]


def _is_pairs(items: Any) -> bool:
    if isinstance(items, (Mapping, str)):
        return False
    items = list(items) if not isinstance(items, list) else items
    return all(isinstance(i, tuple) and len(i) == 2 for i in items) and bool(items)


# -- key-value (map) annotations --------------------------------------------------------------


def _client_annotation(ome: Any, image: Any) -> Any | None:
    refs = {r.id for r in image.annotation_refs}
    sa = ome.structured_annotations
    if sa is None:
        return None
    for ann in sa.map_annotations:
        if ann.id in refs and ann.namespace == OMERO_CLIENT_NS:
            return ann
    return None


def get_map(ome: Any, image_index: int = 0) -> list[tuple[str, str]]:
    """The key-value pairs of an image's OMERO client map annotation, in order."""
    if not 0 <= image_index < len(ome.images):
        return []
    ann = _client_annotation(ome, ome.images[image_index])
    if ann is None:
        return []
    return [(m.k or "", m.value) for m in ann.value.ms]

