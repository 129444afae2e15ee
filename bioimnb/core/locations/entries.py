"""Listing entries, pages, page tokens and change stamps: what every lister produces."""

from __future__ import annotations

import base64
import binascii
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ..classify import Classified
from ..errors import BioimnbError

Kind = Literal["folder", "image", "file"]

_TOKEN_AFTER = "n"  # resume after this name (local, HTTP, other fsspec filesystems)
_TOKEN_S3 = "c"  # an S3 ContinuationToken



class NotAFolder(BioimnbError, NotADirectoryError):
    """A listing was asked of something that is a file, not a folder."""


class InvalidPageToken(BioimnbError, ValueError):
    """A ``page`` token that no listing of this location produced."""


@dataclass
class Entry:
    """One row of a listing."""

    name: str
    """The last path component, as a person reads it (URL-decoded for HTTP)."""
    path: str
    """What to pass back: a full path or URL (unrooted) or a path relative to the root (rooted)."""
    kind: Kind
    """``folder``, ``image`` (a file or folder a reader understands) or ``file``."""
    format: str | None = None
    """Format name (``OME-TIFF``, ``OME-Zarr``, ``MRXS``, ...) for images, else ``None``."""
    size: int | None = None
    """Bytes; ``None`` for folders, zarr images and whenever unknown."""
    files: int | None = None
    """File count of multi-file images (MRXS: the ``.mrxs`` plus its folder's files), else None."""
    incomplete: bool = False
    """A conversion that has not finished writing (OME-Zarr written by bioimnb)."""
    error: str | None = None
    """Why an image-looking entry cannot be opened (empty, text, broken metadata, ...)."""
    stamp: str | None = field(default=None, repr=False, compare=False)
    """A token that changes when the entry changes (size and mtime, ETag, or a digest of a
    zarr's metadata); None when the storage gives none.  Not part of the listing's JSON."""

    found: Classified | None = field(default=None, repr=False, compare=False)
    """The classification behind the entry (not part of the listing's JSON)."""
    modified: float | None = field(default=None, repr=False, compare=False)
    """Last modification (POSIX seconds) when the storage's listing gives it (not part of the
    listing's JSON)."""

    def to_dict(self) -> dict[str, Any]:
        found, self.found = self.found, None
        try:
            data = asdict(self)
        finally:
            self.found = found
        data.pop("stamp")
        data.pop("found")
        data.pop("modified")
        return data

    @classmethod
    def of(cls, name: str, path: str, found: Classified) -> Entry:
        """The entry for a classification (one decision for every lister)."""
        size = None if found.kind == "folder" or found.is_dir else found.size
        return cls(
            name, path, found.kind, found.format, size, found.files, found.incomplete, found.error, found.stamp, found,
            found.modified,
        )


@dataclass
class ListingPage:
    """One page of a listing."""

    location: str
    """The listed location: its display URL or path, or its path relative to the root."""
    entries: list[Entry]
    next_page: str | None
    """Token for the next page, ``None`` on the last page."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "entries": [entry.to_dict() for entry in self.entries],
            "next_page": self.next_page,
        }


# --------------------------------------------------------------------------------------------
# Page tokens
# --------------------------------------------------------------------------------------------



def _encode_token(kind: str, value: str) -> str:
    raw = kind.encode() + b":" + value.encode("utf-8", "surrogateescape")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode_token(token: str, kind: str, source: str) -> str:
    try:
        text = token.strip()
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        prefix, sep, value = raw.partition(b":")
        if not sep or prefix.decode("ascii") != kind or not value:
            raise ValueError(token)
        return value.decode("utf-8", "surrogateescape")
    except (ValueError, binascii.Error, UnicodeError):
        raise InvalidPageToken(
            source, "invalid page token (pass back next_page unchanged)"
        ) from None
