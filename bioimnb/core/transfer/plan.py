"""What a transfer (or a manifest) covers: every file below a source, as paths relative to it.

The tree is walked with :func:`bioimnb.core.locations.walk`, so the listing rules are the
browser's and the scan's: an OME-Zarr folder (or an MRXS slide and its data folder) is one image
entry, which this module then expands into the files that make it up, because a copy has to move
every byte.  A single file (an image or not) is a plan of one.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import unquote

from ..classify import MRXS_SUFFIX, classify_resolved
from ..errors import SourceNotFound
from ..locations import walk
from ..storage import Resolved, storage_errors

__all__ = ["JOURNAL_FOLDER", "OWN_NAMES", "Item", "files_below", "fresh", "plan"]

JOURNAL_FOLDER = ".bioimnb-transfer"
"""The folder at a local destination that holds the resume journal and the files being written."""
OWN_NAMES = frozenset({"manifest-sha256.txt", "bioimnb-manifest.json"})
"""The inventory's own files (written into the folder they describe, never listed in it)."""


@dataclass(frozen=True)
class Item:
    """One file to copy or hash."""

    rel: str
    """Path relative to the source folder, ``/``-separated (a single file: its name)."""
    path: str
    """Path on the source filesystem."""
    size: int | None = None
    """Size as listed (None when the listing does not say)."""
    stamp: str | None = None
    """What changes when a remote file is rewritten (its ETag, else its modification time), as
    listed; None for local files (their size and mtime are read when they are opened)."""


def fresh(res: Resolved) -> Resolved:
    """``res`` with its filesystem's listing cache dropped: filesystem objects are shared
    within a process, and a transfer or a fixity check must see the store as it is now."""
    if not res.local:
        res.fs.invalidate_cache()
    return res


def _fs_path(res: Resolved, entry_path: str) -> str:
    if res.local or "://" not in entry_path:
        return entry_path
    if res.url.startswith(("http://", "https://")):
        return entry_path
    return str(res.fs._strip_protocol(entry_path))


def _rel(res: Resolved, base: str, path: str) -> str:
    if res.local:
        return os.path.relpath(path, base).replace(os.sep, "/")
    rel = path[len(base) :].lstrip("/") if path.startswith(base) else posixpath.basename(path)
    return unquote(rel) if res.url.startswith(("http://", "https://")) else rel


def _remote_stamp(info: dict[str, Any]) -> str | None:
    value = info.get("ETag") or info.get("etag") or info.get("LastModified") or info.get("mtime") or info.get("last_modified")
    return None if value is None else str(value).strip('"')


def files_below(res: Resolved, folder: str) -> Iterator[tuple[str, int | None, str | None]]:
    """Every file below ``folder`` on ``res.fs`` (an image folder's chunks, an MRXS data folder),
    hidden ones included, with its size and (remote files) its stamp."""
    with storage_errors(res.url):
        if res.local:
            for top, dirs, names in os.walk(folder):
                dirs.sort()
                for name in sorted(names):
                    full = os.path.join(top, name)
                    try:
                        size: int | None = os.stat(full).st_size
                    except OSError:
                        size = None
                    yield full, size, None
            return
        found = res.fs.find(folder, detail=True)
        for name, info in sorted(found.items()):
            if info.get("type") == "directory":
                continue
            yield name, info.get("size"), _remote_stamp(info)


def plan(res: Resolved, *, exclude_own: bool = False, **storage_options: Any) -> tuple[str, list[Item]]:
    """``(kind, items)``: ``kind`` is ``file`` (one item named after it), ``image`` (an image
    folder: all its files) or ``folder``; items are sorted by relative path.  The journal folder
    of an earlier transfer into this tree is left out, and with ``exclude_own`` the manifest's own
    two files at the top."""
    with storage_errors(res.url):
        found = classify_resolved(res)
    http_folder = res.url.startswith(("http://", "https://")) and res.url.endswith("/") and found.kind == "file"
    if http_folder:  # an index page: HTTP has no folders, the listing reads its links
        found = replace(found, kind="folder", is_dir=True)
    if not found.is_dir and found.kind != "folder":
        stamp = None
        if not res.local:
            with storage_errors(res.url):
                stamp = _remote_stamp(res.fs.info(res.path))
        return "file", [Item(res.name, res.path, found.size, stamp)]
    base = res.path.rstrip("/") if not res.local else res.path
    items: list[Item] = []
    if found.kind == "image":
        for path, size, stamp in files_below(res, res.path):
            items.append(Item(_rel(res, base, path), path, size, stamp))
        return "image", sorted(items, key=lambda i: i.rel)
    seen: set[str] = set()
    source = res.url if not res.local else res.path
    for entry in walk(source, recursive=True, show_hidden=True, sniff=False, **storage_options):
        if entry.kind == "folder":
            continue
        path = _fs_path(res, entry.path)
        info = entry.found
        if entry.kind == "image" and info is not None and info.is_dir:
            for sub, size, stamp in files_below(res, path):
                items.append(Item(_rel(res, base, sub), sub, size, stamp))
            continue
        items.append(Item(_rel(res, base, path), path, entry.size, None if res.local else entry.stamp))
        if entry.kind == "image" and entry.format == "MRXS" and path.lower().endswith(MRXS_SUFFIX):
            folder = path[: -len(MRXS_SUFFIX)]
            with storage_errors(res.url):
                is_dir = os.path.isdir(folder) if res.local else res.fs.isdir(folder)
            if is_dir:
                for sub, size, stamp in files_below(res, folder):
                    items.append(Item(_rel(res, base, sub), sub, size, stamp))
    out = []
    for item in items:
        top = item.rel.split("/", 1)[0]
        if top == JOURNAL_FOLDER or item.rel in seen:
            continue
        if exclude_own and item.rel in OWN_NAMES:
            continue
        seen.add(item.rel)
        out.append(item)
    if not out and not (os.path.isdir(res.path) if res.local else True):
        raise SourceNotFound(res.url, "no such file or directory")
    return found.kind if found.kind == "image" else "folder", sorted(out, key=lambda i: i.rel)
