"""What every location knows about itself: its filesystem, path, root and how it names things.
The listers (one module per storage family) and the root confinement build on it."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import fsspec

from ..errors import display_source
from ..storage import is_local


def _backend(fs: fsspec.AbstractFileSystem) -> str:
    if is_local(fs):
        return "local"
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    if "s3" in protocols or "s3a" in protocols:
        return "s3"
    if "http" in protocols or "https" in protocols:
        return "http"
    return "generic"


class LocationBase:
    """A folder, bucket, prefix or HTTP index that can be listed page by page.

    Make one with :func:`browse`.  A rooted location never reaches outside its root.
    """

    def __init__(
        self,
        fs: fsspec.AbstractFileSystem,
        path: str,
        *,
        root: str | None = None,
        rel: str = "",
        show_hidden: bool = False,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        self._fs = fs
        self._backend = _backend(fs)
        self._path = path
        self._root = root
        self._root_real = (
            os.path.realpath(root) if root is not None and self._backend == "local" else None
        )
        self._rel = rel
        self.show_hidden = show_hidden
        self.sniff = True
        """Object stores and HTTP: read the first bytes of image-named files to classify them by
        content (one request each).  A scan turns it off: it opens every image anyway."""
        self.storage_options: dict[str, Any] = dict(storage_options or {})
        self._etags: dict[str, str] = {}  # S3 keys of the page being listed -> ETag
        self._modified: dict[str, Any] = {}  # S3 keys of the page being listed -> LastModified
        self._objects: dict[str, Any] = {}  # S3 bucket -> an obstore reader, or None when s3fs reads

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        """The fsspec filesystem (credentials inside; never show it)."""
        return self._fs

    @property
    def path(self) -> str:
        """The location's path on :attr:`fs` (a URL for HTTP)."""
        return self._path

    @property
    def rooted(self) -> bool:
        return self._root is not None

    @property
    def relpath(self) -> str | None:
        """Path relative to the root (posix, ``""`` at the root), ``None`` when unrooted."""
        return self._rel if self.rooted else None

    @property
    def url(self) -> str:
        """The location as it may be shown: absolute path or URL, credentials stripped."""
        if self._backend == "s3" and not self._path:
            return "s3://"
        return display_source(self._full(self._path))

    @property
    def _error_source(self) -> str:
        """How errors name this location: the URL, or the root-relative path under a root (a
        server extension can pass such messages to its clients without disclosing the root)."""
        return (self._rel or ".") if self.rooted else self.url

    @property
    def name(self) -> str:
        """The last component of the location (``""`` at the top of a filesystem or server)."""
        if self._backend == "local":
            return os.path.basename(self._path.rstrip(os.sep))
        if self._backend == "http":
            return unquote(urlsplit(self._path).path.rstrip("/").rsplit("/", 1)[-1])
        return self._path.rstrip("/").rsplit("/", 1)[-1]

    def __repr__(self) -> str:
        where = f", rel={self._rel!r}" if self.rooted else ""
        return f"Location({self.url!r}{where})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LocationBase):
            return NotImplemented
        return (self._fs, self._path, self._root) == (other._fs, other._path, other._root)

    def __hash__(self) -> int:
        return hash((self._path, self._root))

    def _full(self, fs_path: str) -> str:
        """A path on the fs as a user passes it back: absolute path or full URL."""
        if self._backend in ("local", "http"):
            return fs_path
        if self._backend == "s3":
            return "s3://" + fs_path
        return str(self._fs.unstrip_protocol(fs_path))

    def _join(self, base: str, parts: list[str]) -> str:
        if not parts:
            return base
        if self._backend == "local":
            return os.path.join(base, *parts)
        if self._backend == "http":
            return (
                base.rstrip("/") + "/" + "/".join(quote(p, safe="!$&'()*+,;=:@~-._") for p in parts)
            )
        if not base:
            return "/".join(parts)
        return base.rstrip("/") + "/" + "/".join(parts)

    def _entry_path(self, name: str, fs_path: str) -> str:
        if self.rooted:
            return f"{self._rel}/{name}" if self._rel else name
        return self._full(fs_path)

    def _visible(self, name: str) -> bool:
        return bool(name) and (self.show_hidden or not name.startswith("."))
