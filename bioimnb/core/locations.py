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

import asyncio
import base64
import binascii
import heapq
import os
import posixpath
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import fsspec

from .classify import (
    MRXS_SUFFIX,
    ZARR_MARKERS,
    Classified,
    classify_local,
    file_kind,
    zarr_metadata,
)
from .errors import BioimnbError, PathEscapesRoot, SourceNotFound, display_source
from .registry import HEAD_BYTES, format_for_name
from .storage import is_local, resolve, storage_errors

__all__ = [
    "Entry",
    "walk",
    "InvalidPageToken",
    "ListingPage",
    "Location",
    "NotAFolder",
    "browse",
]

Kind = Literal["folder", "image", "file"]

_MRXS_SUFFIX = MRXS_SUFFIX
_S3_MAX_KEYS = 1000
_PEEK_KEYS = 50
_PEEK_ROUNDS = 4
_CONCURRENCY = 16  # simultaneous requests per page (zarr markers, sizes) to HTTP servers


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

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("stamp")
        return data

    @classmethod
    def of(cls, name: str, path: str, found: Classified) -> Entry:
        """The entry for a classification (one decision for every lister)."""
        size = None if found.kind == "folder" or found.is_dir else found.size
        return cls(name, path, found.kind, found.format, size, found.files, found.incomplete, found.error)


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

_TOKEN_AFTER = "n"  # resume after this name (local, HTTP, other fsspec filesystems)
_TOKEN_S3 = "c"  # an S3 ContinuationToken


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


# --------------------------------------------------------------------------------------------
# browse / Location
# --------------------------------------------------------------------------------------------


def _backend(fs: fsspec.AbstractFileSystem) -> str:
    if is_local(fs):
        return "local"
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    if "s3" in protocols or "s3a" in protocols:
        return "s3"
    if "http" in protocols or "https" in protocols:
        return "http"
    return "generic"


def _split_rel(text: str, local: bool) -> list[str]:
    """Components of a relative path ("" and "." dropped); ``..`` and absolute paths refused
    by the caller."""
    if local and os.sep != "/":
        text = text.replace(os.sep, "/")
    return [part for part in text.split("/") if part not in ("", ".")]


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


def _is_absolute(text: str) -> bool:
    return "://" in text or os.path.isabs(text) or text.startswith(("/", "\\"))


def _posix_rel(path: str, start: str) -> str:
    rel = os.path.relpath(path, start)
    return "" if rel == os.curdir else rel.replace(os.sep, "/")


def _http_dir_url(url: str) -> str:
    """An HTTP URL without query, fragment or trailing slash (``http://host`` for the top)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


# ``Location.list`` shadows the builtin inside the class body, hence these aliases.
_Entries = list[Entry]
_Page = tuple[list[Entry], str | None]
_Items = list[tuple[str, bool, int | None]]
"""(name, is_folder, size) rows of an S3 listing."""
_Infos = list[dict[str, Any]]
_Names = list[str]
_Results = list[Any]


class Location:
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
        self.storage_options: dict[str, Any] = dict(storage_options or {})
        self._etags: dict[str, str] = {}  # S3 keys of the page being listed -> ETag

    # -- identity -----------------------------------------------------------------------------

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
        if not isinstance(other, Location):
            return NotImplemented
        return (self._fs, self._path, self._root) == (other._fs, other._path, other._root)

    def __hash__(self) -> int:
        return hash((self._path, self._root))

    # -- navigation ---------------------------------------------------------------------------

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

    @staticmethod
    def _escape(requested: str, why: str) -> PathEscapesRoot:
        """The refusal, naming the requested path (never the root itself)."""
        return PathEscapesRoot(requested or ".", f"path escapes the root ({why})")

    def _inside_root(self, fs_path: str) -> bool:
        """For a local root: does ``fs_path`` resolve (symlinks followed) inside the root?"""
        if self._root_real is None:
            return True
        real = os.path.realpath(fs_path)
        return real == self._root_real or real.startswith(self._root_real.rstrip(os.sep) + os.sep)

    def _confined(self, relpath: str | os.PathLike[str]) -> tuple[str, str]:
        """``(new rel, fs path)`` for ``relpath`` taken relative to this location under its root."""
        text = os.fspath(relpath)
        if "\x00" in text:
            raise self._escape(repr(text), "NUL character in path")
        if _is_absolute(text):
            raise self._escape(text, "absolute paths are not allowed under a root")
        parts = _split_rel(text, self._backend == "local")
        if ".." in parts:
            raise self._escape(text, "'..' is not allowed under a root")
        assert self._root is not None
        # Relative paths hold names as listed (URL-decoded for HTTP); _join quotes them.
        new_parts = [*(self._rel.split("/") if self._rel else []), *parts]
        new_rel = "/".join(new_parts)
        fs_path = self._join(self._root, new_parts)
        if not self._inside_root(fs_path):
            raise self._escape(new_rel, "a symlink leads outside the root")
        return new_rel, fs_path

    def _rel_from_absolute(self, text: str) -> str:
        """The root-relative form of an absolute path or URL inside the root (else refused)."""
        assert self._root is not None
        if self._backend == "local":
            if "://" in text and not text.startswith("file://"):
                raise self._escape(text, "not under the root")
            path = os.path.abspath(os.path.expanduser(text.removeprefix("file://")))
            root = self._root.rstrip(os.sep) or os.sep
            if path == root or path.startswith(root.rstrip(os.sep) + os.sep):
                return _posix_rel(path, root)
            assert self._root_real is not None
            real = os.path.realpath(path)
            if real == self._root_real or real.startswith(self._root_real.rstrip(os.sep) + os.sep):
                return _posix_rel(real, self._root_real)
            raise self._escape(text, "not under the root")
        other = resolve(text, **self.storage_options)
        if _backend(other.fs) != self._backend:
            raise self._escape(text, "not under the root")
        path = _http_dir_url(other.path) if self._backend == "http" else other.path.rstrip("/")
        if path == self._root:
            return ""
        base = self._root.rstrip("/") + "/"
        if path.startswith(base):
            rel = path[len(base) :]
            return "/".join(unquote(p) for p in rel.split("/")) if self._backend == "http" else rel
        raise self._escape(text, "not under the root")

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
        return Location(
            self._fs,
            fs_path,
            root=self._root,
            rel=rel,
            show_hidden=self.show_hidden,
            storage_options=self.storage_options,
        )

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

    # -- listing ------------------------------------------------------------------------------

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

    def _entry_path(self, name: str, fs_path: str) -> str:
        if self.rooted:
            return f"{self._rel}/{name}" if self._rel else name
        return self._full(fs_path)

    def _visible(self, name: str) -> bool:
        return bool(name) and (self.show_hidden or not name.startswith("."))

    # local ------------------------------------------------------------------------------------

    def _list_local(self, page_size: int, page: str | None) -> _Page:
        source = self._path
        after = _decode_token(page, _TOKEN_AFTER, self._error_source) if page is not None else None
        want = page_size + 1  # one more than shown tells whether another page exists
        stems: set[str] = set()
        counted = [0]  # names the last scan offered to the heap

        def names(exclude: Callable[[os.DirEntry[str]], bool] | None) -> Iterator[str]:
            try:
                it = os.scandir(source)
            except NotADirectoryError:
                raise NotAFolder(self._error_source, "not a folder") from None
            with it:
                for de in it:
                    name = de.name
                    if not self._visible(name):
                        continue
                    if name.lower().endswith(_MRXS_SUFFIX):
                        stems.add(name[: -len(_MRXS_SUFFIX)])
                    if after is not None and name <= after:
                        continue
                    if exclude is not None and exclude(de):
                        continue
                    counted[0] += 1
                    yield name

        chosen = heapq.nsmallest(want, names(None))
        # An MRXS companion folder may sort before its .mrxs, so it is only known as one once
        # the whole scan has seen every .mrxs name: drop it now, rescan if that left a gap.
        companions = {n for n in chosen if n in stems and os.path.isdir(os.path.join(source, n))}
        if companions:
            chosen = [n for n in chosen if n not in companions]
            if len(chosen) < want and counted[0] > want:  # names beyond the heap may fill it
                known = set(stems)
                chosen = heapq.nsmallest(want, names(lambda de: de.name in known and de.is_dir()))
        more = len(chosen) > page_size
        chosen = chosen[:page_size]
        entries = [self._local_entry(name) for name in chosen]
        next_page = _encode_token(_TOKEN_AFTER, chosen[-1]) if more and chosen else None
        return entries, next_page

    def _local_entry(self, name: str) -> Entry:
        full = os.path.join(self._path, name)
        path = self._entry_path(name, full)
        try:
            found = classify_local(full, root=self._root_real)
        except FileNotFoundError:  # vanished since the scan
            return Entry(name, path, "file")
        if found.kind == "file" and found.error and "link" in found.error:
            return Entry(name, path, "file")  # a link out of the root or a broken one: never followable
        entry = Entry.of(name, path, found)
        entry.stamp = _local_stamp(full, found.is_dir)
        return entry

    # S3 ---------------------------------------------------------------------------------------

    def _list_s3(self, page_size: int, page: str | None) -> _Page:
        cont = _decode_token(page, _TOKEN_S3, self._error_source) if page is not None else None
        fs = self._fs
        bucket, key, _ = fs.split_path(self._path)
        key = key.strip("/")
        prefix = f"{key}/" if key else ""
        try:
            return fsspec.asyn.sync(fs.loop, self._s3_page, bucket, key, prefix, cont, page_size)
        except BioimnbError:
            raise
        except Exception as exc:
            code = _s3_code(exc)
            if cont is not None and code in ("InvalidArgument", "InvalidToken", "400"):
                raise InvalidPageToken(
                    self._error_source, "invalid page token (pass back next_page unchanged)"
                ) from exc
            raise

    async def _s3_call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self._fs._call_s3(method, **kwargs)
        return result

    async def _s3_page(
        self, bucket: str, key: str, prefix: str, cont: str | None, page_size: int
    ) -> _Page:
        first_page = cont is None
        items: _Items = []  # (name, is_folder, size) in server order
        mrxs_stems: set[str] = set()
        seen_any = False
        truncated = True
        while truncated and len(items) < page_size:
            kwargs: dict[str, Any] = {
                "Bucket": bucket,
                "Prefix": prefix,
                "Delimiter": "/",
                "MaxKeys": min(_S3_MAX_KEYS, page_size - len(items)),
            }
            if cont is not None:
                kwargs["ContinuationToken"] = cont
            elif prefix:
                # Skip the folder marker "prefix/" itself: SeaweedFS reports a page holding only
                # that marker as the last one (IsTruncated false).
                kwargs["StartAfter"] = prefix
            resp = await self._s3_call("list_objects_v2", **kwargs)
            truncated = bool(resp.get("IsTruncated"))
            cont = resp.get("NextContinuationToken")
            if truncated and not cont:
                truncated = False  # a server that cannot continue: stop rather than loop
            batch = self._s3_batch(resp, prefix)
            seen_any = seen_any or bool(resp.get("Contents") or resp.get("CommonPrefixes"))
            mrxs_stems.update(
                n[: -len(_MRXS_SUFFIX)]
                for n, is_dir, _ in batch
                if not is_dir and n.lower().endswith(_MRXS_SUFFIX)
            )
            # A folder is an MRXS companion when "<name>.mrxs" exists; it may be listed on
            # another page (AWS puts "x.mrxs" before "x/", SeaweedFS after), so ask when unseen.
            unknown = [
                n
                for n, is_dir, _ in batch
                if is_dir and n not in mrxs_stems and format_for_name(n, is_dir=True) is None
            ]
            found = await asyncio.gather(*(self._s3_has_mrxs(bucket, prefix, n) for n in unknown))
            mrxs_stems.update(n for n, has in zip(unknown, found) if has)
            items.extend(item for item in batch if not (item[1] and item[0] in mrxs_stems))

        if first_page and key and not seen_any:
            await self._s3_check_empty(bucket, key)

        next_page = None
        if truncated and cont is not None and await self._s3_more(bucket, prefix, cont):
            next_page = _encode_token(_TOKEN_S3, cont)
        items.sort(key=lambda item: item[0])
        entries = await asyncio.gather(*(self._s3_entry(bucket, prefix, *item) for item in items))
        return list(entries), next_page

    def _s3_batch(self, resp: dict[str, Any], prefix: str) -> _Items:
        batch: _Items = []
        for common in resp.get("CommonPrefixes") or []:
            name = common["Prefix"][len(prefix) :].rstrip("/")
            if self._visible(name) and "/" not in name:
                batch.append((name, True, None))
        for obj in resp.get("Contents") or []:
            name = obj["Key"][len(prefix) :]
            if self._visible(name) and "/" not in name:  # skips the folder marker "prefix/"
                batch.append((name, False, int(obj.get("Size", 0))))
                if obj.get("ETag"):
                    self._etags[obj["Key"]] = str(obj["ETag"])
        return batch

    async def _s3_has_mrxs(self, bucket: str, prefix: str, name: str) -> bool:
        resp = await self._s3_call(
            "list_objects_v2", Bucket=bucket, Prefix=f"{prefix}{name}.", Delimiter="/", MaxKeys=100
        )
        want = f"{name}{_MRXS_SUFFIX}"
        return any(
            obj["Key"][len(prefix) :].lower() == want.lower() for obj in resp.get("Contents") or []
        )

    async def _s3_more(self, bucket: str, prefix: str, cont: str) -> bool:
        """Whether anything visible follows ``cont`` (so the last page gets ``next_page=None``
        even when only hidden keys or folder markers remain)."""
        for _ in range(_PEEK_ROUNDS):
            resp = await self._s3_call(
                "list_objects_v2",
                Bucket=bucket,
                Prefix=prefix,
                Delimiter="/",
                MaxKeys=_PEEK_KEYS,
                ContinuationToken=cont,
            )
            if self._s3_batch(resp, prefix):
                return True
            if not resp.get("IsTruncated") or not resp.get("NextContinuationToken"):
                return False
            cont = resp["NextContinuationToken"]
        return True

    async def _s3_check_empty(self, bucket: str, key: str) -> None:
        """Nothing listed below ``key/``: an empty folder (only its marker), a file, or nothing."""
        source = self._error_source
        marker = await self._s3_call("list_objects_v2", Bucket=bucket, Prefix=f"{key}/", MaxKeys=1)
        if marker.get("Contents") or marker.get("CommonPrefixes"):
            return
        try:
            await self._s3_call("head_object", Bucket=bucket, Key=key)
        except Exception as exc:
            if isinstance(exc, FileNotFoundError) or _s3_code(exc) in (
                "404",
                "NoSuchKey",
                "NotFound",
            ):
                raise SourceNotFound(source, "no such folder or prefix") from None
            raise
        raise NotAFolder(source, "not a folder (it is a file)")

    async def _s3_markers(self, bucket: str, inner: str) -> _Names:
        """The zarr metadata files directly under ``inner`` (two small listing requests)."""
        found: _Names = []
        for probe, names in (("zarr.json", ("zarr.json",)), (".z", (".zattrs", ".zgroup", ".zarray"))):
            resp = await self._s3_call("list_objects_v2", Bucket=bucket, Prefix=inner + probe, MaxKeys=16)
            keys = {obj["Key"] for obj in resp.get("Contents") or []}
            found += [n for n in names if inner + n in keys]
            if found:
                break  # v3 needs nothing more
        return found

    async def _s3_read(self, key: str, end: int | None = None) -> bytes | None:
        try:
            data: bytes = await self._fs._cat_file(key, start=0 if end else None, end=end)
            return data
        except Exception:  # noqa: BLE001 - unreadable: the classification says so
            return None

    async def _s3_entry(
        self, bucket: str, prefix: str, name: str, is_dir: bool, size: int | None
    ) -> Entry:
        fs_path = f"{bucket}/{prefix}{name}"
        path = self._entry_path(name, fs_path)
        if is_dir:
            inner = f"{prefix}{name}/"
            markers = await self._s3_markers(bucket, inner)
            datas = await asyncio.gather(*(self._s3_read(f"{bucket}/{inner}{m}") for m in markers))
            docs: dict[str, bytes | None] = dict(zip(markers, datas))
            found = zarr_metadata(docs)
            if not found:
                return Entry(name, path, "folder")
            entry = Entry.of(name, path, found)
            entry.stamp = _docs_stamp(docs)
            return entry
        fmt = format_for_name(name)
        if fmt is None:
            return Entry(name, path, "file", None, size)
        if fmt.companion_folder:
            total, files = size or 0, 1
            folder = f"{prefix}{name[: -len(_MRXS_SUFFIX)]}/"
            cont: str | None = None
            while True:
                kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": folder, "Delimiter": "/"}
                if cont:
                    kwargs["ContinuationToken"] = cont
                resp = await self._s3_call("list_objects_v2", **kwargs)
                for obj in resp.get("Contents") or []:
                    if obj["Key"] != folder:
                        files += 1
                        total += int(obj.get("Size", 0))
                cont = resp.get("NextContinuationToken")
                if not resp.get("IsTruncated") or not cont:
                    break
            return Entry(name, path, "image", fmt.name, total, files)
        # A small object is read whole: some servers refuse a range past the end.
        small = size is not None and size <= HEAD_BYTES
        head = b"" if size == 0 else await self._s3_read(fs_path, None if small else HEAD_BYTES)
        entry = Entry.of(name, path, file_kind(name, size, head))
        etag = self._etags.get(f"{prefix}{name}")
        entry.stamp = f"{size}:{etag}" if etag else None
        return entry

    # HTTP and other fsspec filesystems ---------------------------------------------------------

    def _list_fsspec(self, page_size: int, page: str | None) -> _Page:
        after = _decode_token(page, _TOKEN_AFTER, self._error_source) if page is not None else None
        fs = self._fs
        listed = self._fsspec_ls()
        by_name: dict[str, tuple[bool, int | None, str]] = {}
        for info in listed:
            full = str(info["name"])
            is_dir = info.get("type") == "directory"
            name = full.rstrip("/").rsplit("/", 1)[-1]
            if self._backend == "http":
                name = unquote(name)
                full = full.rstrip("/")
            if not self._visible(name) or name in ("..", "."):
                continue
            size = info.get("size")
            by_name[name] = (is_dir, None if is_dir or size is None else int(size), full)
        stems = {
            n[: -len(_MRXS_SUFFIX)]
            for n, v in by_name.items()
            if not v[0] and n.lower().endswith(_MRXS_SUFFIX)
        }
        names = sorted(n for n, v in by_name.items() if not (v[0] and n in stems))
        if after is not None:
            names = [n for n in names if n > after]
        more = len(names) > page_size
        chosen = names[:page_size]
        next_page = _encode_token(_TOKEN_AFTER, chosen[-1]) if more and chosen else None

        # Everything below is per page: zarr metadata of folders (read, not only looked for:
        # one GET per marker, a missing one fails fast), sizes (HTTP gives none in its index),
        # the first bytes of image-named files, the files of MRXS companion folders.
        checks: dict[str, Awaitable[Any] | Callable[[], Any]] = {}
        for name in chosen:
            is_dir, size, full = by_name[name]
            if is_dir:
                for marker in ZARR_MARKERS:
                    checks[f"meta:{name}:{marker}"] = self._call(fs, "cat_file", f"{full}/{marker}")
                continue
            fmt = format_for_name(name)
            if size is None:
                checks[f"size:{name}"] = self._call(fs, "size", full)
            if fmt is not None and fmt.companion_folder:
                stem = name[: -len(_MRXS_SUFFIX)]
                if stem in by_name and by_name[stem][0]:
                    checks[f"mrxs:{name}"] = self._call(fs, "ls", by_name[stem][2], detail=True)
            elif fmt is not None and size is not None and size <= HEAD_BYTES:
                checks[f"head:{name}"] = self._call(fs, "cat_file", full)
            elif fmt is not None:
                checks[f"head:{name}"] = self._call(fs, "cat_file", full, start=0, end=HEAD_BYTES)
        results = self._run(checks)

        entries: _Entries = []
        for name in chosen:
            is_dir, size, full = by_name[name]
            path = self._entry_path(name, full)
            if is_dir:
                docs: dict[str, bytes | None] = {}
                for marker in ZARR_MARKERS:
                    data = results.get(f"meta:{name}:{marker}")
                    if isinstance(data, bytes):
                        docs[marker] = data
                        if marker == "zarr.json":
                            break
                found = zarr_metadata(docs)
                entries.append(Entry.of(name, path, found) if found else Entry(name, path, "folder"))
                continue
            if size is None:
                known = results.get(f"size:{name}")
                size = int(known) if isinstance(known, int) else None
            fmt = format_for_name(name)
            if fmt is not None and fmt.companion_folder:
                entries.append(self._fsspec_mrxs(name, path, size, results.get(f"mrxs:{name}")))
                continue
            head = results.get(f"head:{name}")
            entries.append(Entry.of(name, path, file_kind(name, size, head if isinstance(head, bytes) else None)))
        return entries, next_page

    def _fsspec_ls(self) -> _Infos:
        fs = self._fs
        if self._backend == "http":
            # HEAD first: ls() of a file would download it looking for links.
            info = fs.info(self._path)
            if info.get("mimetype") not in ("text/html", None):
                raise NotAFolder(self._error_source, "not a folder (not an HTML index page)")
            listed: _Infos = fs.ls(self._path + "/", detail=True)
            return listed
        if self._backend == "s3":  # the top of an S3 endpoint: its buckets (fs.ls hides errors)
            resp = fs.call_s3("list_buckets")
            return [
                {"name": b["Name"], "type": "directory", "size": None}
                for b in resp.get("Buckets") or []
            ]
        if self._path and not fs.isdir(self._path):
            if fs.exists(self._path):
                raise NotAFolder(self._error_source, "not a folder")
            raise SourceNotFound(self._error_source, "no such folder")
        listed = fs.ls(self._path, detail=True)
        return listed

    def _fsspec_mrxs(self, name: str, path: str, size: int | None, listed: Any) -> Entry:
        files, total = 1, size
        if isinstance(listed, list):
            members = [info for info in listed if info.get("type") != "directory"]
            files += len(members)
            sizes = [info.get("size") for info in members]
            if self._backend == "http" and members:
                found = self._run(
                    {
                        str(i): self._call(self._fs, "size", info["name"])
                        for i, info in enumerate(members)
                    }
                )
                sizes = [found.get(str(i)) for i in range(len(members))]
            if total is not None and all(isinstance(s, int) for s in sizes):
                total += sum(int(s) for s in sizes if s is not None)
            else:
                total = None
        return Entry(name, path, "image", "MRXS", total, files)

    @staticmethod
    def _call(fs: fsspec.AbstractFileSystem, method: str, *args: Any, **kwargs: Any) -> Any:
        """A pending filesystem call: a coroutine for async filesystems, else a thunk."""
        if getattr(fs, "async_impl", False) and hasattr(fs, "_" + method):
            return getattr(fs, "_" + method)(*args, **kwargs)
        return lambda: getattr(fs, method)(*args, **kwargs)

    def _run(self, calls: dict[str, Any]) -> dict[str, Any]:
        """Run pending calls (concurrently on async filesystems); failures become ``None``,
        except an unreachable or refusing storage, which is raised."""
        if not calls:
            return {}
        keys = list(calls)
        coros = [calls[k] for k in keys if asyncio.iscoroutine(calls[k])]
        results: dict[str, Any] = {}
        if coros:

            async def gather() -> _Results:
                limit = asyncio.Semaphore(_CONCURRENCY)

                async def one(coro: Awaitable[Any]) -> Any:
                    async with limit:
                        return await coro

                return await asyncio.gather(*(one(c) for c in coros), return_exceptions=True)

            done = iter(fsspec.asyn.sync(self._fs.loop, gather))
            for k in keys:
                if asyncio.iscoroutine(calls[k]):
                    results[k] = next(done)
        for k in keys:
            if not asyncio.iscoroutine(calls[k]):
                try:
                    results[k] = calls[k]()
                except Exception as exc:
                    results[k] = exc
        for k, value in results.items():
            if isinstance(value, BaseException):
                if isinstance(value, (PermissionError, ConnectionError, TimeoutError)):
                    raise value
                results[k] = None
        return results


def _s3_code(exc: BaseException) -> str | None:
    """The S3 error code of an exception or of what it wraps."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        response = getattr(current, "response", None)
        if isinstance(response, dict):
            code = response.get("Error", {}).get("Code")
            if code:
                return str(code)
        current = current.__cause__ or current.__context__
    return None


def _docs_stamp(docs: dict[str, bytes | None]) -> str:
    import hashlib

    digest = hashlib.sha1(usedforsecurity=False)
    for marker in sorted(docs):
        digest.update(marker.encode() + b"\0" + (docs[marker] or b"") + b"\0")
    return "meta:" + digest.hexdigest()


def _local_stamp(path: str, is_dir: bool) -> str | None:
    """Size and mtime of a file; for a folder store, of its top-level metadata files."""
    try:
        if not is_dir:
            st = os.stat(path)
            return f"{st.st_size}:{st.st_mtime_ns}"
        stamps = []
        for marker in ZARR_MARKERS:
            try:
                st = os.stat(os.path.join(path, marker))
            except OSError:
                continue
            stamps.append(f"{marker}:{st.st_size}:{st.st_mtime_ns}")
        return ";".join(stamps) or None
    except OSError:
        return None


def walk(
    url: str | os.PathLike[str] = ".",
    *,
    recursive: bool = True,
    root: str | os.PathLike[str] | None = None,
    show_hidden: bool = False,
    page_size: int = 1000,
    stamps: bool = False,
    **storage_options: Any,
) -> Iterator[Any]:
    """Every entry below ``url``, folder by folder in name order, paged (memory bounded by a
    page and the folders still to visit); images (an OME-Zarr folder, an MRXS set) are entries,
    never descended into.  Folders are yielded before their contents.

    Yields :class:`Entry`; with ``stamps=True``, ``(entry, source, stamp)`` where ``source`` is
    what to pass to ``open_image`` and ``stamp`` is :attr:`Entry.stamp`.
    """
    top = browse(url, root=root, show_hidden=show_hidden, **storage_options)
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
