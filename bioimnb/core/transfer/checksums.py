"""Checksums computed while streaming, in fixed-size blocks, and the BagIt manifest syntax.

Every file is read once, block by block (:data:`block_size`, 8 MiB by default); each block
updates a SHA-256 and, when the destination is an S3 store, an MD5 of the whole file and an MD5
of the current upload part, from which the ETag the store should answer is predicted
(:meth:`Digests.etag`).  Memory stays at a block or a part per stream, whatever the file size.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Digests",
    "block_size",
    "decode_path",
    "encode_path",
    "parse_manifest",
    "part_size",
    "test_delay",
]

MiB = 2**20
DEFAULT_BLOCK = 8 * MiB
MIN_PART = 8 * MiB
"""S3 multipart parts: at least 5 MiB (the protocol's minimum), 8 MiB here, at most 10,000 parts."""
MAX_PARTS = 10_000


def block_size() -> int:
    """Bytes read (and hashed) at a time: ``BIOIMNB_TRANSFER_BLOCK`` or 8 MiB (at least 64 KiB)."""
    text = os.environ.get("BIOIMNB_TRANSFER_BLOCK", "").strip()
    try:
        value = int(float(text)) if text else DEFAULT_BLOCK
    except ValueError:
        value = DEFAULT_BLOCK
    return max(64 * 1024, value)


def test_delay() -> float:
    """Seconds to sleep after each block (``BIOIMNB_TRANSFER_DELAY``): lets tests interrupt a
    transfer in the middle or change a source while it is read.  0 unless set."""
    try:
        return max(0.0, float(os.environ.get("BIOIMNB_TRANSFER_DELAY", "") or 0))
    except ValueError:
        return 0.0


def part_size(size: int) -> int:
    """The S3 part size for a file of ``size`` bytes: 8 MiB, or more (whole MiB) when the file
    would need more than 10,000 parts.  The same size always gives the same parts, so an ETag
    can be predicted again on a later run."""
    need = -(-size // MAX_PARTS)
    return max(MIN_PART, -(-need // MiB) * MiB)


@dataclass
class Digests:
    """SHA-256 of a whole file, plus (``md5=True``) the MD5 of each S3 part of ``part`` bytes,
    from which the ETag of a single PUT (one part) or of a multipart upload follows."""

    md5: bool = False
    part: int = MIN_PART
    """Part size for the ETag."""
    size: int = 0
    _sha: Any = field(default_factory=hashlib.sha256, repr=False)
    _part_md5: Any = field(default=None, repr=False)
    _part_fill: int = 0
    parts: list[bytes] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if self.md5:
            self._part_md5 = hashlib.md5(usedforsecurity=False)

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._sha.update(data)
        self.size += len(data)
        if not self.md5:
            return
        view = memoryview(data)
        while len(view):
            take = min(len(view), self.part - self._part_fill)
            self._part_md5.update(view[:take])
            self._part_fill += take
            view = view[take:]
            if self._part_fill == self.part:
                self.parts.append(self._part_md5.digest())
                self._part_md5 = hashlib.md5(usedforsecurity=False)
                self._part_fill = 0

    @property
    def sha256(self) -> str:
        return str(self._sha.hexdigest())

    def _all_parts(self) -> list[bytes]:
        parts = list(self.parts)
        if self._part_fill or not parts:
            parts.append(self._part_md5.digest())
        return parts

    def etag(self, multipart: bool) -> str | None:
        """The ETag an S3 store gives this content: the MD5 for a single PUT (known when the file
        fits one part); for a multipart upload with parts of :attr:`part` bytes, the MD5 of the
        parts' MD5s and ``-<count>``."""
        if not self.md5:
            return None
        parts = self._all_parts()
        if not multipart:
            return parts[0].hex() if len(parts) == 1 else None
        return hashlib.md5(b"".join(parts), usedforsecurity=False).hexdigest() + f"-{len(parts)}"


# -- BagIt manifest syntax ------------------------------------------------------------------------


def encode_path(rel: str) -> str:
    """A relative path as a BagIt 1.0 manifest line holds it: forward slashes, and ``%``, CR, LF
    percent-encoded (``%25``, ``%0D``, ``%0A``; ``%`` first, so decoding is unambiguous)."""
    return rel.replace(os.sep, "/").replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def decode_path(text: str) -> str:
    """The inverse of :func:`encode_path` (upper or lower case hex, as BagIt readers accept)."""
    out = []
    i = 0
    while i < len(text):
        chunk = text[i : i + 3]
        if chunk.upper() == "%0D":
            out.append("\r")
            i += 3
        elif chunk.upper() == "%0A":
            out.append("\n")
            i += 3
        elif chunk == "%25":
            out.append("%")
            i += 3
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def parse_manifest(text: str) -> dict[str, str]:
    """``{relative path: checksum}`` from a BagIt-style manifest (``<checksum> <path>``, any
    whitespace between; blank lines ignored).  Raises ValueError on a malformed line."""
    out: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.rstrip("\r").split(None, 1)
        if len(parts) != 2 or not parts[1]:
            raise ValueError(f"line {number} is not '<checksum>  <path>'")
        digest, rel = parts
        rel = decode_path(rel)
        if rel.startswith("*"):
            rel = rel[1:]  # sha256sum's binary-mode marker
        if rel.startswith("./"):
            rel = rel[2:]
        out[rel] = digest.lower()
    return out
