"""Lengths, in one table: every spelling a file may use (NGFF's UDUNITS names, OME's symbols,
TIFF resolution units, ImageJ's ``micron``) and its factor to micrometres.

``to_micrometres(value, unit)`` is what every reader asks; writers name micrometres as
:data:`NGFF_MICROMETER` (NGFF axes) or :data:`OME_MICROMETER` (OME ``PhysicalSize*Unit``).
An unknown unit gives ``None``: a size nobody can interpret is unknown, never guessed.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["LENGTH_UM", "NGFF_MICROMETER", "OME_MICROMETER", "to_micrometres", "unit_factor"]

NGFF_MICROMETER = "micrometer"
OME_MICROMETER = "µm"

LENGTH_UM: dict[str, float] = {
    # SI names as NGFF writes them (UDUNITS-2), singular and plural
    "angstrom": 1e-4,
    "attometer": 1e-12,
    "centimeter": 1e4,
    "decimeter": 1e5,
    "exameter": 1e24,
    "femtometer": 1e-9,
    "foot": 304800.0,
    "gigameter": 1e15,
    "hectometer": 1e8,
    "inch": 25400.0,
    "kilometer": 1e9,
    "megameter": 1e12,
    "meter": 1e6,
    "micrometer": 1.0,
    "micron": 1.0,
    "mile": 1.609344e9,
    "millimeter": 1e3,
    "nanometer": 1e-3,
    "parsec": 3.0857e22,
    "petameter": 1e21,
    "picometer": 1e-6,
    "terameter": 1e18,
    "yard": 914400.0,
    "yoctometer": 1e-18,
    "yottameter": 1e30,
    "zeptometer": 1e-15,
    "zettameter": 1e27,
    # OME symbols and common abbreviations
    "Å": 1e-4,
    "am": 1e-12,
    "cm": 1e4,
    "dm": 1e5,
    "fm": 1e-9,
    "ft": 304800.0,
    "in": 25400.0,
    "km": 1e9,
    "m": 1e6,
    "mm": 1e3,
    "nm": 1e-3,
    "pm": 1e-6,
    "um": 1.0,
    "µm": 1.0,  # MICRO SIGN
    "\u03bcm": 1.0,  # GREEK SMALL LETTER MU
}
_PLURALS = {name + "s": factor for name, factor in LENGTH_UM.items() if name.isalpha() and len(name) > 3}


def unit_factor(unit: Any) -> float | None:
    """Micrometres per ``unit`` (an OME enum, a string; ``None`` or ``""``: micrometres)."""
    if unit is None:
        return 1.0
    text = str(getattr(unit, "value", unit)).strip()
    if not text:
        return 1.0
    for key in (text, text.lower()):
        if key in LENGTH_UM:
            return LENGTH_UM[key]
        if key in _PLURALS:
            return _PLURALS[key]
    return None


def to_micrometres(value: Any, unit: Any = None) -> float | None:
    """A length in micrometres, or ``None`` when the value or its unit is unusable (zero,
    negative, NaN, not a number, an unknown unit)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    factor = unit_factor(unit)
    if factor is None or not math.isfinite(v) or v <= 0:
        return None
    return v * factor
