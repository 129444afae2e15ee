"""Folders, buckets and prefixes, listed one level and one page at a time, images as one entry.

>>> loc = browse("s3://bucket/project/", endpoint_url="http://127.0.0.1:8333")  # doctest: +SKIP
>>> page = loc.list(page_size=50)                                                 # doctest: +SKIP
>>> page.entries[0]                                                               # doctest: +SKIP
Entry(name='plate.ome.zarr', path='s3://bucket/project/plate.ome.zarr', kind='image', ...)
>>> loc.list(page_size=50, page=page.next_page)                                  # doctest: +SKIP

What counts as one entry
    * a folder named ``*.zarr``, or a folder with ``zarr.json``, ``.zattrs`` or ``.zgroup`` at its
      top, is one ``image`` entry (format ``OME-Zarr``, size and file count unknown: its chunks are
      never walked);
    * ``slide.mrxs`` and its sibling folder ``slide/`` are one ``image`` entry (format ``MRXS``,
      ``files`` = 1 + the files directly in the folder, ``size`` = their total); the folder is not
      listed on its own;
    * a file whose extension names a format (``.ome.tif``, ``.czi``, ...) is an ``image``; any
      other file is a ``file``; any other folder is a ``folder`` (size ``None``);
    * names starting with ``.`` are skipped unless ``show_hidden``.

Cost
    Only the requested page is classified: local folders are scanned for names only
    (``os.scandir``; the page is picked with a bounded heap) and then only the page's entries are
    stat-ed; S3 prefixes are listed with real paged ``ListObjectsV2`` requests (``Delimiter="/"``,
    ``MaxKeys``, ``ContinuationToken``); HTTP index pages and other fsspec filesystems are listed
    with one ``ls`` and sliced.  A folder costs at most three existence checks (zarr markers).

Order and page tokens
    Entries are sorted by name (code point order).  On S3 the order across pages is the server's
    (AWS sorts by key, so ``a-b`` comes before folder ``a/``; SeaweedFS sorts by name); each
    page is sorted by name.  ``next_page`` is an opaque token; pass it back unchanged.  It is
    ``None`` on the last page.

Roots
    ``browse(path, root=R)`` confines a location (and everything reached from it through
    :meth:`Location.child`, :meth:`Location.resolve` and :attr:`Location.parent`) to ``R``:
    absolute paths, ``..`` components, and (local) symlinks whose target lies outside ``R`` are
    refused with :class:`~bioimnb.core.errors.PathEscapesRoot`.  In a rooted listing, a symlink
    pointing outside the root is listed as a plain ``file`` with ``format`` and ``size`` ``None``
    (never as a folder or image), so a client can show it exists but cannot follow it.
    Entry paths, and :attr:`ListingPage.location`, are then relative to the root (posix, no
    leading slash, ``""`` for the root itself) so the root itself is never disclosed.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import PathEscapesRoot
from ..storage import resolve, storage_errors
from .base import _backend
from .entries import Entry, InvalidPageToken, Kind, ListingPage, NotAFolder
from .generic import FsspecLister
from .local import LocalLister
from .paths import Confined, _http_dir_url, _is_absolute
from .s3 import S3Lister

__all__ = [
    "Entry",
    "InvalidPageToken",
    "Kind",
    "ListingPage",
    "Location",
    "NotAFolder",
    "browse",
    "walk",
]


def browse(
    url: str | os.PathLike[str] = ".",
    *,
    root: str | os.PathLike[str] | None = None,
    show_hidden: bool = False,
    **storage_options: Any,
) -> Location:
    """A location to list: a local folder, ``s3://bucket/prefix``, an HTTP index, any fsspec URL.

    With ``root``, the location is confined to that folder: ``url`` is then a path relative to
    the root (``"."``, the default, is the root itself), or an absolute path or URL inside it;
    anything resolving outside raises :class:`~bioimnb.core.errors.PathEscapesRoot`.

    Nothing is read until :meth:`Location.list` (except resolving symlinks under a local root).
    """
    if root is None:
        res = resolve(url, **storage_options)
        path = res.path
        if _backend(res.fs) == "http":
            path = _http_dir_url(path)
        elif not res.local:
            path = path.rstrip("/")
        return Location(
            res.fs, path, show_hidden=show_hidden, storage_options=dict(storage_options)
        )

    root_res = resolve(root, **storage_options)
    backend = _backend(root_res.fs)
    if backend == "local":
        root_path = root_res.path
    elif backend == "http":
        root_path = _http_dir_url(root_res.path)
    else:
        root_path = root_res.path.rstrip("/")
    top = Location(
        root_res.fs,
        root_path,
        root=root_path,
        rel="",
        show_hidden=show_hidden,
        storage_options=dict(storage_options),
    )
    if top._backend == "local" and not os.path.isdir(root_path):
        # A root must be a folder; say so now rather than at the first listing.
        with storage_errors(root_path):
            os.stat(root_path)
        raise NotAFolder(root_path, "not a folder (a root must be a folder)")
    text = os.fspath(url)
    if text in ("", "."):
        return top
    return top.child(top._rel_from_absolute(text) if _is_absolute(text) else text)


class Location(Confined, LocalLister, S3Lister, FsspecLister):
    """A folder, bucket, prefix or HTTP index that can be listed page by page.

    Make one with :func:`browse`.  A rooted location never reaches outside its root.
    """

    def resolve(self, relpath: str | os.PathLike[str] = "") -> str:
        """The path on :attr:`fs` of ``relpath`` below this location (a URL for HTTP).

        Under a root: absolute paths, ``..`` and symlinks leading outside raise
        :class:`~bioimnb.core.errors.PathEscapesRoot`; local paths come back fully resolved
        (``os.path.realpath``), so what is checked is what gets opened.
        """
        if self.rooted:
            _, fs_path = self._confined(relpath)
            return os.path.realpath(fs_path) if self._backend == "local" else fs_path
        return self._unrooted_join(os.fspath(relpath))

    def source(self, relpath: str | os.PathLike[str] = "") -> str:
        """Like :meth:`resolve`, but as a full path or URL for ``open_image``/``browse`` (with
        this location's ``storage_options``)."""
        return self._full(self.resolve(relpath))

    def _unrooted_join(self, text: str) -> str:
        if not text or text == ".":
            return self._path
        if self._backend == "local":
            return os.path.normpath(os.path.join(self._path, os.path.expanduser(text)))
        if "://" in text:
            other = resolve(text, **self.storage_options)
            return _http_dir_url(other.path) if self._backend == "http" else other.path.rstrip("/")
        if self._backend == "http":
            parts = urlsplit(self._path)
            joined = posixpath.normpath(posixpath.join(parts.path or "/", text))
            return _http_dir_url(urlunsplit((parts.scheme, parts.netloc, joined, "", "")))
        joined = posixpath.normpath(posixpath.join("/" + self._path, text)).lstrip("/")
        return joined

    def child(self, relpath: str | os.PathLike[str]) -> Location:
        """The location ``relpath`` below this one (confined to the root when rooted)."""
        if self.rooted:
            new_rel, fs_path = self._confined(relpath)
            return self._sibling(fs_path, new_rel)
        return self._sibling(self._unrooted_join(os.fspath(relpath)), "")

    def _sibling(self, fs_path: str, rel: str) -> Location:
        sibling = Location(
            self._fs,
            fs_path,
            root=self._root,
            rel=rel,
            show_hidden=self.show_hidden,
            storage_options=self.storage_options,
        )
        sibling.sniff = self.sniff
        return sibling

    @property
    def parent(self) -> Location | None:
        """The enclosing folder; ``None`` at the root (rooted) or at the top of the storage."""
        if self.rooted:
            if not self._rel:
                return None
            rel = self._rel.rsplit("/", 1)[0] if "/" in self._rel else ""
            parts = rel.split("/") if rel else []
            assert self._root is not None
            return self._sibling(self._join(self._root, parts), rel)
        if self._backend == "local":
            up = os.path.dirname(self._path.rstrip(os.sep) or os.sep)
            return None if up == self._path else self._sibling(up, "")
        if self._backend == "http":
            split = urlsplit(self._path)
            if split.path in ("", "/"):
                return None
            up = posixpath.dirname(split.path.rstrip("/"))
            return self._sibling(
                _http_dir_url(urlunsplit((split.scheme, split.netloc, up, "", ""))), ""
            )
        path = self._path.strip("/")
        if "/" not in path:
            return None  # a bucket (or the top of the filesystem)
        return self._sibling(path.rsplit("/", 1)[0], "")

    def list(self, page_size: int = 100, page: str | None = None) -> ListingPage:
        """One page of entries, sorted by name; pass ``next_page`` back as ``page`` for more."""
        if not isinstance(page_size, int) or isinstance(page_size, bool) or page_size < 1:
            raise ValueError(f"page_size must be a positive integer, not {page_size!r}")
        with storage_errors(self._error_source):
            if self._backend == "local":
                entries, next_page = self._list_local(page_size, page)
            elif self._backend == "s3" and self._fs.split_path(self._path)[0]:
                entries, next_page = self._list_s3(page_size, page)
            else:
                entries, next_page = self._list_fsspec(page_size, page)
        location = self._rel if self.rooted else self.url
        return ListingPage(location=location, entries=entries, next_page=next_page)


def walk(
    url: str | os.PathLike[str] = ".",
    *,
    recursive: bool = True,
    root: str | os.PathLike[str] | None = None,
    show_hidden: bool = False,
    page_size: int = 1000,
    stamps: bool = False,
    sniff: bool = True,
    **storage_options: Any,
) -> Iterator[Any]:
    """Every entry below ``url``, folder by folder in name order, paged (memory bounded by a
    page and the folders still to visit); images (an OME-Zarr folder, an MRXS set) are entries,
    never descended into.  Folders are yielded before their contents.

    Yields :class:`Entry`; with ``stamps=True``, ``(entry, source, stamp)`` where ``source`` is
    what to pass to ``open_image`` and ``stamp`` is :attr:`Entry.stamp`.
    """
    top = browse(url, root=root, show_hidden=show_hidden, **storage_options)
    top.sniff = sniff
    stack: list[Location] = [top]
    while stack:
        loc = stack.pop()
        token: str | None = None
        folders: list[str] = []
        while True:
            page = loc.list(page_size=page_size, page=token)
            for entry in page.entries:
                if entry.kind == "folder":
                    folders.append(entry.name)
                if stamps:
                    source: str | None = entry.path
                    if loc.rooted:
                        try:
                            source = loc.source(entry.name)
                        except PathEscapesRoot:
                            source = None  # listed (as a plain file), never opened
                    yield entry, source, entry.stamp
                else:
                    yield entry
            token = page.next_page
            if token is None:
                break
        if recursive:
            stack.extend(loc.child(name) for name in reversed(folders))
