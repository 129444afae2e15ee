"""HTTP index pages and any other fsspec filesystem: one ``ls`` sliced into pages; per page,
zarr metadata, sizes and file heads fetched concurrently on async filesystems."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

import fsspec

from ..classify import MRXS_SUFFIX, ZARR_MARKERS, ZARR_METADATA_LIMIT, file_kind, zarr_metadata
from ..errors import CorruptFile, SourceNotFound
from ..registry import HEAD_BYTES, format_for_name
from .base import LocationBase
from .entries import _TOKEN_AFTER, Entry, NotAFolder, _decode_token, _encode_token

_MRXS_SUFFIX = MRXS_SUFFIX
_CONCURRENCY = 16  # simultaneous requests per page (zarr markers, sizes) to HTTP servers
_Page = tuple[list[Entry], str | None]
_Entries = list[Entry]
_Infos = list[dict[str, Any]]
_Results = list[Any]


class FsspecLister(LocationBase):
    """Listing of HTTP indexes and other fsspec filesystems (mixed into
    :class:`~bioimnb.core.locations.Location`)."""

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
                    checks[f"meta:{name}:{marker}"] = self._call(
                        fs, "cat_file", f"{full}/{marker}", start=0, end=ZARR_METADATA_LIMIT + 1
                    )
                continue
            fmt = format_for_name(name)
            if size is None:
                checks[f"size:{name}"] = self._call(fs, "size", full)
            if fmt is not None and fmt.companion_folder:
                stem = name[: -len(_MRXS_SUFFIX)]
                if stem in by_name and by_name[stem][0]:
                    checks[f"mrxs:{name}"] = self._call(fs, "ls", by_name[stem][2], detail=True)
            elif fmt is not None and not self.sniff:
                pass  # classified by name; opening it will tell
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
                docs: dict[str, Any] = {}
                for marker in ZARR_MARKERS:
                    data = results.get(f"meta:{name}:{marker}")
                    if isinstance(data, bytes) and len(data) > ZARR_METADATA_LIMIT:
                        # A ranged read: a larger document is refused, never parsed.
                        docs[marker] = CorruptFile(marker, f"{marker} is larger than {ZARR_METADATA_LIMIT} bytes, too large for metadata")
                        break
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
