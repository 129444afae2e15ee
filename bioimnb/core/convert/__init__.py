"""Conversion to open formats: OME-Zarr (NGFF 0.4 / 0.5) and pyramidal OME-TIFF."""

from .engine import ConversionCancelled, ConversionReport, Progress, convert
from .labels import add_labels
from .options import COMPRESSIONS, ConvertOptions
from .pipeline import SourceChanged

__all__ = ["COMPRESSIONS", "add_labels", "ConversionCancelled", "ConversionReport", "ConvertOptions", "Progress", "SourceChanged", "convert"]
