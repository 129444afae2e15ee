"""OME metadata: safe parsing of OME-XML and an OME model for files that carry none.

OME-XML comes from untrusted files.  Documents with a DOCTYPE (the vehicle of entity-expansion
and external-entity attacks) or larger than :func:`~bioimnb.core.limits.limits`
``.max_metadata_bytes`` are refused before any parser sees them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import CorruptFile
from ..limits import limits

if TYPE_CHECKING:  # pragma: no cover
    from ome_types import OME

    from ..readers.base import Channel, PhysicalSize

__all__ = [
    "OmeImageSummary",
    "add_map_annotation",
    "check_xml",
    "color_hex",
    "ome_tiff_metadata",
    "parse_ome_xml",
    "signed_rgba",
    "summarize_ome_xml",
    "synthesize_ome",
]

_DOCTYPE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


def check_xml(xml: str | bytes, source: object) -> bytes:
    data = xml.encode("utf-8") if isinstance(xml, str) else bytes(xml)
    cap = limits().max_metadata_bytes
    if len(data) > cap:
        raise CorruptFile(source, f"XML metadata of {len(data)} bytes is larger than the {cap} byte limit")
    if _DOCTYPE.search(data[:65536]) or _DOCTYPE.search(data):
        raise CorruptFile(source, "XML metadata declares a DOCTYPE or ENTITY; refused as unsafe")
    return data


def parse_ome_xml(xml: str | bytes, source: object) -> OME:
    """Parse OME-XML into an ome-types model, refusing unsafe or malformed documents."""
    from ome_types import from_xml

    data = check_xml(xml, source)
    try:
        return from_xml(data.decode("utf-8", errors="replace"), validate=False)
    except Exception as exc:  # ome-types raises several parser-specific errors
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CorruptFile(source, f"invalid OME-XML metadata ({first[:200]})") from exc


@dataclass(frozen=True)
class OmeImageSummary:
    """What opening an image needs from one OME ``Image``: its name, physical pixel sizes and
    channel names/colours (attribute strings as written; units default to µm)."""

    name: str | None
    size_x: tuple[str | None, str | None] = (None, None)
    """(PhysicalSizeX, PhysicalSizeXUnit)"""
    size_y: tuple[str | None, str | None] = (None, None)
    size_z: tuple[str | None, str | None] = (None, None)
    channels: list[tuple[str | None, int | None]] = field(default_factory=list)
    """(Name, Color as the signed 32-bit RGBA integer, None when absent) per channel, in order."""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def summarize_ome_xml(xml: str | bytes, source: object) -> list[OmeImageSummary]:
    """The images of an OME-XML document, read with the standard library's XML parser.

    Why not ome-types here: importing it costs ~0.6 s, and opening an image needs only a few
    attributes; the full model (:func:`parse_ome_xml`) is built when ``img.ome`` is asked for.
    The same safety checks apply (no DOCTYPE/ENTITY, size limit), so expat never sees an entity
    declaration.
    """
    import xml.etree.ElementTree as ET

    data = check_xml(xml, source)
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise CorruptFile(source, f"invalid OME-XML metadata ({exc})") from exc
    if _local(root.tag) != "OME":
        raise CorruptFile(source, f"invalid OME-XML metadata (root element is <{_local(root.tag)}>, not <OME>)")
    out = []
    for image in root:
        if _local(image.tag) != "Image":
            continue
        pixels = next((child for child in image if _local(child.tag) == "Pixels"), None)
        if pixels is None:
            out.append(OmeImageSummary(image.get("Name")))
            continue
        channels: list[tuple[str | None, int | None]] = []
        for ch in pixels:
            if _local(ch.tag) != "Channel":
                continue
            # No Color attribute: None, so the reader picks OMERO-like defaults (red, green, ...)
            # instead of the schema's -1 (white) that ome-types fills in, which would composite
            # a multichannel image white on white.
            color: int | None = None
            try:
                color = int(ch.get("Color", ""))
            except ValueError:
                color = None
            channels.append((ch.get("Name"), color))
        out.append(
            OmeImageSummary(
                name=image.get("Name"),
                size_x=(pixels.get("PhysicalSizeX"), pixels.get("PhysicalSizeXUnit")),
                size_y=(pixels.get("PhysicalSizeY"), pixels.get("PhysicalSizeYUnit")),
                size_z=(pixels.get("PhysicalSizeZ"), pixels.get("PhysicalSizeZUnit")),
                channels=channels,
            )
        )
    return out


def color_hex(color: Any) -> str | None:
    """An OME/ome-types/NGFF colour as ``RRGGBB``; None when absent or unreadable."""
    if color is None:
        return None
    if hasattr(color, "as_rgb_tuple"):
        r, g, b = color.as_rgb_tuple()[:3]
        return f"{r:02X}{g:02X}{b:02X}"
    if isinstance(color, int):  # OME signed 32-bit RGBA
        value = color & 0xFFFFFFFF
        return f"{value >> 24 & 255:02X}{value >> 16 & 255:02X}{value >> 8 & 255:02X}"
    text = str(color).strip().lstrip("#")
    if re.fullmatch(r"[0-9a-fA-F]{6}([0-9a-fA-F]{2})?", text):
        return text[:6].upper()
    return None


_PIXEL_TYPES = {
    "int8": "int8",
    "int16": "int16",
    "int32": "int32",
    "uint8": "uint8",
    "uint16": "uint16",
    "uint32": "uint32",
    "float32": "float",
    "float64": "double",
    "complex64": "complexfloat",
    "complex128": "complexdouble",
    "bool": "bit",
}


def synthesize_ome(
    scenes: Sequence[tuple[str, tuple[int, ...], Any, PhysicalSize, Sequence[Channel]]],
) -> OME:
    """An OME model for files that carry no OME-XML, from what the reader knows.

    Each scene is ``(name, TCZYX(S) shape, dtype, physical size, channels)``.
    """
    from ome_types import OME
    from ome_types.model import Channel as OMEChannel
    from ome_types.model import Color, Image, Pixels

    images = []
    for index, (name, shape, dtype, phys, channels) in enumerate(scenes):
        t, c, z, y, x = shape[:5]
        samples = shape[5] if len(shape) > 5 else 1
        pixel_type = _PIXEL_TYPES.get(np.dtype(dtype).name, "uint16")
        ome_channels = [
            OMEChannel(
                id=f"Channel:{index}:{i}",
                name=ch.name,
                samples_per_pixel=samples,
                color=Color("#" + ch.color),
            )
            for i, ch in enumerate(channels)
        ]
        extra: dict[str, Any] = {}
        if phys.X is not None:
            extra["physical_size_x"] = phys.X
        if phys.Y is not None:
            extra["physical_size_y"] = phys.Y
        if phys.Z is not None:
            extra["physical_size_z"] = phys.Z
        fields: dict[str, Any] = {"dimension_order": "XYZCT", "type": pixel_type, "metadata_only": True}
        pixels = Pixels(
            id=f"Pixels:{index}",
            size_x=x,
            size_y=y,
            size_z=z,
            size_c=c * samples,
            size_t=t,
            channels=ome_channels,
            **fields,
            **extra,
        )
        images.append(Image(id=f"Image:{index}", name=name, pixels=pixels))
    return OME(images=images, creator="bioimnb")


# -- writing ------------------------------------------------------------------------------------


def signed_rgba(hex6: str) -> int:
    """An ``RRGGBB`` colour as OME's signed 32-bit RGBA integer (alpha opaque)."""
    value = (int(hex6, 16) << 8) | 0xFF
    return value - (1 << 32) if value >= 1 << 31 else value


def ome_tiff_metadata(
    name: str,
    physical: PhysicalSize,
    channel_names: Sequence[str],
    channel_colors: Sequence[str],
    *,
    rgb: bool = False,
) -> dict[str, Any]:
    """The ``metadata`` tifffile writes as OME-XML for one TCZYX image (``rgb``: TZSYX, one
    channel of 3 samples): name, physical sizes in micrometres (only those known) and channel
    names and colours."""
    from .units import OME_MICROMETER

    meta: dict[str, Any] = {"axes": "TZSYX" if rgb else "TCZYX", "Name": name}
    for axis, value in (("X", physical.X), ("Y", physical.Y), ("Z", physical.Z)):
        if value is not None:
            meta[f"PhysicalSize{axis}"] = value
            meta[f"PhysicalSize{axis}Unit"] = OME_MICROMETER
    meta["Channel"] = {"Name": list(channel_names)}
    if channel_colors:
        meta["Channel"]["Color"] = [signed_rgba(c) for c in channel_colors]
    return meta


def add_map_annotation(xml: str, annotation_id: str, namespace: str, pairs: dict[str, Any]) -> str:
    """``xml`` with a MapAnnotation (key/value pairs, e.g. provenance) added to its structured
    annotations."""
    from ome_types.model import Map, MapAnnotation, StructuredAnnotations

    ome = parse_ome_xml(xml, "OME-XML")
    value = Map(ms=[Map.M(k=str(k), value=str(v)) for k, v in pairs.items()])
    if ome.structured_annotations is None:
        ome.structured_annotations = StructuredAnnotations()
    ome.structured_annotations.map_annotations.append(MapAnnotation(id=annotation_id, namespace=namespace, value=value))
    return str(ome.to_xml())
