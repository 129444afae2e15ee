"""OME-TIFF: replace the OME-XML in place, pixels untouched, crash-safe, old XML kept for undo.

How a save works (two writes, each made durable before the next):

1. the new XML (NUL-terminated, word-aligned) is appended at the end of the file, then ``fsync``;
2. the first IFD's ImageDescription entry is pointed at it: its count and offset are rewritten
   in one ``pwrite`` of 8 bytes (16 in a BigTIFF), then ``fsync``.

A crash or ``kill -9`` before step 2 leaves the old entry, which still names the old XML: the
file is the old one plus unreferenced bytes at its end, which readers ignore.  After step 2 it is
the new one.  Nothing else in the file moves: strips, tiles and every other IFD stay where they
are, byte for byte, so a 4 GiB image is saved by writing the XML and 8 bytes.  The previous XML
stays in the file, unreferenced, and its location is recorded in the save's provenance, so
:func:`restore_previous` can point back at it with one more small write.

Why not tifffile's ``tiffcomment`` / ``TiffTag.overwrite``: they overwrite the old value in place
when the new one fits, which a crash can leave half-written, and that loses the old XML.
tifffile is still what finds the entry (``TiffTag.offset``) and reads the header.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from ..errors import CorruptFile, UnsupportedFormat

__all__ = ["DescriptionLocation", "description_location", "read_description", "restore_previous", "write_description"]

IMAGE_DESCRIPTION = 270
CLASSIC_LIMIT = 2**32 - 1


@dataclass(frozen=True)
class DescriptionLocation:
    """Where the first IFD's ImageDescription entry and its value are."""

    entry: int
    """File offset of the 12- or 20-byte IFD entry."""
    offset: int
    """File offset of the value (the XML)."""
    count: int
    """Byte count of the value, NUL included."""
    byteorder: str
    offsetsize: int
    """4 for a classic TIFF, 8 for a BigTIFF."""

    def text(self) -> str:
        return f"offset={self.offset} length={self.count}"


def description_location(path: str) -> DescriptionLocation:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            tag = page.tags.get(IMAGE_DESCRIPTION)
            if tag is None:
                raise UnsupportedFormat(path, "the first IFD has no ImageDescription (no OME-XML to edit)")
            if tag.count <= tif.tiff.offsetsize:
                raise UnsupportedFormat(path, "the ImageDescription is too short to be OME-XML")
            return DescriptionLocation(int(tag.offset), int(tag.valueoffset), int(tag.count), tif.byteorder, int(tif.tiff.offsetsize))
    except (UnsupportedFormat, CorruptFile):
        raise
    except tifffile.TiffFileError as exc:
        raise CorruptFile(path, f"not a readable TIFF ({exc})") from None


def read_description(path: str, loc: DescriptionLocation | None = None) -> bytes:
    loc = loc or description_location(path)
    with open(path, "rb", buffering=0) as fh:
        fh.seek(loc.offset)
        data = fh.read(loc.count)
    return data.rstrip(b"\0")


def _point(fd: int, loc: DescriptionLocation, offset: int, count: int) -> None:
    fmt = loc.byteorder + ("II" if loc.offsetsize == 4 else "QQ")
    packed = struct.pack(fmt, count, offset)
    if os.pwrite(fd, packed, loc.entry + 4) != len(packed):  # pragma: no cover - a short write of 8 bytes
        raise OSError(f"short write of the ImageDescription entry at byte {loc.entry}")
    os.fsync(fd)


def write_description(path: str, xml: bytes, loc: DescriptionLocation | None = None) -> tuple[DescriptionLocation, int]:
    """Append ``xml`` and point the first IFD's ImageDescription at it.

    Returns the location before the save and the number of bytes written.
    """
    loc = loc or description_location(path)
    data = xml.rstrip(b"\0") + b"\0"
    fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
    try:
        end = os.fstat(fd).st_size
        pad = end % 2  # TIFF values start on a word boundary
        start = end + pad
        if loc.offsetsize == 4 and start + len(data) > CLASSIC_LIMIT:
            raise UnsupportedFormat(path, "a classic (non-Big) TIFF cannot hold more data past 4 GiB; edit a copy saved as BigTIFF")
        payload = b"\0" * pad + data
        written = 0
        while written < len(payload):
            written += os.pwrite(fd, payload[written:], end + written)
        os.fsync(fd)
        _point(fd, loc, start, len(data))
    finally:
        os.close(fd)
    return loc, len(payload) + (8 if loc.offsetsize == 4 else 16)


def restore_previous(path: str, offset: int, count: int) -> DescriptionLocation:
    """Point the ImageDescription back at an earlier XML still in the file (undo of a save).

    The bytes there must be an OME-XML document; returns the location that was current."""
    loc = description_location(path)
    size = os.path.getsize(path)
    if not (offset > 0 and count > 0 and offset + count <= size):
        raise CorruptFile(path, f"no earlier OME-XML at offset {offset} (length {count})")
    with open(path, "rb", buffering=0) as fh:
        fh.seek(offset)
        head = fh.read(min(count, 4096)).lstrip()
    if not head.startswith(b"<") or b"OME" not in head:
        raise CorruptFile(path, f"the bytes at offset {offset} are not an OME-XML document")
    fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
    try:
        _point(fd, loc, offset, count)
    finally:
        os.close(fd)
    return loc
