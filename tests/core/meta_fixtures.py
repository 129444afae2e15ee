"""OME-TIFFs with chosen metadata for the completeness and export tests (written with tifffile,
the OME-XML spelled out so each test states exactly what a file carries)."""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np
import tifffile

OME_NS = "http://www.openmicroscopy.org/Schemas/OME/2016-06"


def ome_tiff(
    path: Path,
    *,
    size: tuple[float | None, float | None, float | None] = (0.325, 0.325, None),
    channels: list[str | None] | None = None,
    z: int = 1,
    objective: dict[str, str] | None = None,
    microscope: dict[str, str] | None = None,
    acquired: str | None = None,
    annotations: dict[str, str] | None = None,
    yx: tuple[int, int] = (16, 16),
) -> Path:
    """A single-image OME-TIFF (C x Z planes of ``yx`` uint8) whose OME-XML states exactly the
    given metadata: physical sizes (None = absent), channel names (None = no Name), an
    Instrument with Microscope/Objective, an AcquisitionDate and a MapAnnotation."""
    channels = ["DAPI"] if channels is None else channels
    nc = len(channels)
    path.parent.mkdir(parents=True, exist_ok=True)
    parts = [f'<OME xmlns="{OME_NS}" Creator="bioimnb tests">']
    if objective is not None or microscope is not None:
        parts.append('<Instrument ID="Instrument:0">')
        if microscope is not None:
            parts.append("<Microscope " + " ".join(f"{k}={quoteattr(v)}" for k, v in microscope.items()) + "/>")
        if objective is not None:
            attrs = " ".join(f"{k}={quoteattr(v)}" for k, v in objective.items())
            parts.append(f'<Objective ID="Objective:0" {attrs}/>')
        parts.append("</Instrument>")
    parts.append('<Image ID="Image:0" Name="img">')
    if acquired:
        parts.append(f"<AcquisitionDate>{acquired}</AcquisitionDate>")
    if objective is not None or microscope is not None:
        parts.append('<InstrumentRef ID="Instrument:0"/>')
    px = [f'ID="Pixels:0" DimensionOrder="XYZCT" Type="uint8" SizeX="{yx[1]}" SizeY="{yx[0]}" SizeZ="{z}" SizeC="{nc}" SizeT="1"']
    for axis, value in zip("XYZ", size):
        if value is not None:
            px.append(f'PhysicalSize{axis}="{value}" PhysicalSize{axis}Unit="µm"')
    parts.append(f"<Pixels {' '.join(px)}>")
    for i, name in enumerate(channels):
        named = f" Name={quoteattr(name)}" if name is not None else ""
        parts.append(f'<Channel ID="Channel:0:{i}" SamplesPerPixel="1"{named}/>')
    parts.append(f'<TiffData IFD="0" PlaneCount="{nc * z}"/>')
    parts.append("</Pixels>")
    if annotations:
        parts.append('<AnnotationRef ID="Annotation:0"/>')
    parts.append("</Image>")
    if annotations:
        parts.append('<StructuredAnnotations><MapAnnotation ID="Annotation:0" Namespace="openmicroscopy.org/omero/client/mapAnnotation"><Value>')
        for k, v in annotations.items():
            parts.append(f"<M K={quoteattr(k)}>{v}</M>")
        parts.append("</Value></MapAnnotation></StructuredAnnotations>")
    parts.append("</OME>")
    xml = "".join(parts)
    data = np.arange(nc * z * yx[0] * yx[1], dtype=np.uint8).reshape(nc * z, *yx)
    tifffile.imwrite(path, data, description=xml.encode("utf-8"), metadata=None, photometric="minisblack")
    return path


FULL = {
    "size": (0.2, 0.2, None),
    "channels": ["DAPI", "GFP"],
    "objective": {"Manufacturer": "Zeiss", "Model": "Plan-Apochromat", "NominalMagnification": "63", "LensNA": "1.4"},
    "microscope": {"Manufacturer": "Zeiss", "Model": "LSM 980"},
    "acquired": "2024-05-06T10:11:12",
}
"""Everything the image minimum asks for."""
