"""What a file or folder is, from its name and its first bytes.

Listings classify by name only (cheap, no I/O per entry); opening an image also checks the
magic bytes, so a text file named ``.tif`` or a CZI renamed ``.tiff`` is recognised for what it is.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FORMATS", "Format", "format_for_name", "sniff", "zarr_like_name"]


@dataclass(frozen=True)
class Format:
    name: str
    """Human name shown in listings and ``info``: "OME-TIFF", "CZI", ..."""
    family: str
    """The reader family that opens it: tiff, zarr, slide, czi, bioio."""
    extensions: tuple[str, ...]
    directory: bool = False
    """An image stored as a folder (OME-Zarr)."""
    companion_folder: bool = False
    """A file whose pixels live in a sibling folder of the same stem (MRXS)."""


FORMATS: tuple[Format, ...] = (
    Format("OME-Zarr", "zarr", (".ome.zarr", ".zarr"), directory=True),
    Format("OME-TIFF", "tiff", (".ome.tif", ".ome.tiff", ".ome.tf2", ".ome.tf8", ".ome.btf")),
    Format("SVS", "tiff", (".svs",)),
    Format("NDPI", "tiff", (".ndpi",)),
    Format("SCN", "tiff", (".scn",)),
    Format("QPTIFF", "tiff", (".qptiff",)),
    Format("LSM", "tiff", (".lsm",)),
    Format("STK", "tiff", (".stk",)),
    Format("TIFF", "tiff", (".tif", ".tiff", ".btf", ".tf2", ".tf8")),
    Format("MRXS", "slide", (".mrxs",), companion_folder=True),
    Format("VMS", "slide", (".vms",)),
    Format("BIF", "slide", (".bif",)),
    Format("CZI", "czi", (".czi",)),
    Format("ND2", "bioio", (".nd2",)),
    Format("LIF", "bioio", (".lif",)),
    Format("DeltaVision", "bioio", (".dv", ".r3d")),
    Format("PNG", "bioio", (".png",)),
    Format("JPEG", "bioio", (".jpg", ".jpeg")),
)

_BY_SUFFIX = sorted(
    ((ext, fmt) for fmt in FORMATS for ext in fmt.extensions), key=lambda item: -len(item[0])
)


def format_for_name(name: str, *, is_dir: bool = False) -> Format | None:
    """The format a name suggests (longest matching suffix wins: ``.ome.tif`` before ``.tif``)."""
    lower = name.rstrip("/").lower()
    for ext, fmt in _BY_SUFFIX:
        if lower.endswith(ext) and fmt.directory == is_dir:
            return fmt
    return None


def zarr_like_name(name: str) -> bool:
    return name.rstrip("/").lower().endswith(".zarr")


def sniff(head: bytes) -> str | None:
    """The family of a file from its first bytes (at least 100 bytes for DeltaVision).

    Returns one of ``tiff``, ``czi``, ``png``, ``jpeg``, ``nd2``, ``lif``, ``dv``, ``hdf5``,
    ``text``, ``empty`` or ``None`` when nothing is recognised.
    """
    if not head:
        return "empty"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head.startswith(b"ZISRAWFILE"):
        return "czi"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\xda\xce\xbe\x0a") or head[4:12] == b"jP  \r\n\x87\n":
        return "nd2"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "hdf5"
    if head[:4] == b"\x70\x00\x00\x00" and head[8:9] == b"\x2a":
        return "lif"
    if len(head) >= 98 and head[96:98] in (b"\xc0\xa0", b"\xa0\xc0"):
        return "dv"
    sample = head[:512]
    if all(32 <= b < 127 or b in (9, 10, 13) for b in sample) or sample.startswith(
        (b"\xef\xbb\xbf", b"<")
    ):
        return "text"
    return None
