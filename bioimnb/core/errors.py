"""User-facing errors of the shared core.

Every error a user can cause (a missing file, a truncated TIFF, a path that escapes a root)
is a :class:`BioimnbError`: its ``str()`` is one line, ``"<source>: <reason>"``, with any
credential removed from the source.  Front ends print that line; they never need a traceback.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "AccessDenied",
    "BioimnbError",
    "CorruptFile",
    "PathEscapesRoot",
    "SourceNotFound",
    "StorageUnreachable",
    "UnsupportedFormat",
    "display_source",
]


def display_source(source: object) -> str:
    """The source as it may be shown to a person: no user:password, no query string.

    Query strings are dropped because presigned URLs carry signatures and tokens there.
    """
    text = str(source)
    if "://" not in text:
        return text
    try:
        parts = urlsplit(text)
    except ValueError:
        return re.sub(r"//[^/@]*@", "//", text.split("?", 1)[0])
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class BioimnbError(Exception):
    """An error caused by the input, reported as one line naming the source and the reason."""

    def __init__(self, source: object, reason: str) -> None:
        self.source = display_source(source)
        # Keep the message on one line whatever the underlying library said.
        self.reason = " ".join(str(reason).split())
        super().__init__(f"{self.source}: {self.reason}")

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


class SourceNotFound(BioimnbError, FileNotFoundError):
    """The file, folder, key or URL does not exist."""


class UnsupportedFormat(BioimnbError, ValueError):
    """No reader understands the content."""


class CorruptFile(BioimnbError, ValueError):
    """The content claims a format but is empty, truncated or malformed."""


class AccessDenied(BioimnbError, PermissionError):
    """The storage refused access (file permissions, S3 credentials, HTTP 401/403)."""


class StorageUnreachable(BioimnbError, ConnectionError):
    """The storage endpoint did not answer."""


class PathEscapesRoot(BioimnbError, PermissionError):
    """A path resolves outside the root a location is confined to."""
