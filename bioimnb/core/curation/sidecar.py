"""Companion OME-XML files: where edits of read-only and proprietary formats (CZI, DeltaVision,
slides, remote OME-TIFFs, ...) are kept, and how OME-XML documents themselves are saved.

The companion of ``scan.czi`` is ``scan.czi.ome.xml`` next to it: a full OME 2016-06 document
(the image's model with the edits and their provenance).  :func:`bioimnb.core.curation.model.load`
reads it instead of the image's own metadata when it exists, so every later view and edit starts
from it.  The name ends in ``.ome.xml`` (not ``.companion.ome``, which names a multi-file
OME-TIFF set and would make the companion look like an image of its own).
"""

from __future__ import annotations

from ..storage import Resolved
from .model import sidecar_path
from .write_zarr import atomic_write

__all__ = ["sidecar_path", "write_xml_document"]


def write_xml_document(res: Resolved, path: str, xml: bytes) -> int:
    """Replace the XML document at ``path`` atomically; returns the bytes written."""
    return atomic_write(res, path, xml)
