"""One table of length units for every reader (core/metadata/units.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tifffile

import bioimnb
from bioimnb.core.metadata.units import LENGTH_UM, to_micrometres, unit_factor


@pytest.mark.parametrize(
    ("value", "unit", "um"),
    [
        (2, "nm", 0.002), (1, "micrometer", 1.0), (1, "micrometers", 1.0), (3, "µm", 3.0),
        (3, "\u03bcm", 3.0), (1, "MILLIMETER", 1000.0), (0.5, None, 0.5), (0.5, "", 0.5),
        (1, "Å", 1e-4), (1, "inch", 25400.0),
    ],
)
def test_known_units(value, unit, um):
    assert to_micrometres(value, unit) == pytest.approx(um)


@pytest.mark.parametrize(("value", "unit"), [(1, "furlong"), (0, "um"), (-1, "um"), (math.nan, "um"), ("x", "um")])
def test_unknown_or_unusable_is_none(value, unit):
    assert to_micrometres(value, unit) is None


def test_every_ngff_space_unit_is_known():
    ngff = ["angstrom", "attometer", "centimeter", "decimeter", "exameter", "femtometer", "foot", "gigameter",
            "hectometer", "inch", "kilometer", "megameter", "meter", "micrometer", "mile", "millimeter",
            "nanometer", "parsec", "petameter", "picometer", "terameter", "yard", "yoctometer",
            "yottameter", "zeptometer", "zettameter"]
    assert all(unit_factor(u) == LENGTH_UM[u] for u in ngff)


def test_ome_tiff_in_nanometres_and_an_unknown_unit(tmp_path):
    data = np.zeros((8, 8), np.uint8)
    nm = tmp_path / "nm.ome.tif"
    tifffile.imwrite(nm, data, metadata={"axes": "YX", "PhysicalSizeX": 65.0, "PhysicalSizeXUnit": "nm",
                                          "PhysicalSizeY": 65.0, "PhysicalSizeYUnit": "nm"})
    px = bioimnb.open_image(nm).physical_size
    assert pytest.approx(0.065) == px.X and pytest.approx(0.065) == px.Y
