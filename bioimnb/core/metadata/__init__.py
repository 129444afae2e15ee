"""Metadata: units (one table), display colours (one palette), and the OME model's reading and
writing helpers.  The Metadata capability (view, edit, validate, write back) builds on it.

Low in the core's layers: readers, tiles and the converter all ask here.
"""

from .colors import PALETTE, default_colors
from .units import NGFF_MICROMETER, OME_MICROMETER, to_micrometres

__all__ = ["NGFF_MICROMETER", "OME_MICROMETER", "PALETTE", "default_colors", "to_micrometres"]
