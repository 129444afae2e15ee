"""S3 prefixes: real paged ``ListObjectsV2`` requests (``Delimiter="/"``, ``MaxKeys``,
``ContinuationToken``), zarr metadata and file heads fetched concurrently for the page."""

from __future__ import annotations

import asyncio
from typing import Any

import fsspec

from ..classify import MRXS_SUFFIX, ZARR_METADATA_LIMIT, file_kind, zarr_metadata
from ..errors import BioimnbError, CorruptFile, SourceNotFound
from ..objects import ObjectReader, object_reader
from ..registry import HEAD_BYTES, format_for_name
from .base import LocationBase
from .entries import (
    _TOKEN_S3,
    Entry,
    InvalidPageToken,
    NotAFolder,
    _decode_token,
    _encode_token,
)

_MRXS_SUFFIX = MRXS_SUFFIX
_S3_MAX_KEYS = 1000
_PEEK_KEYS = 50
_PEEK_ROUNDS = 4
_Page = tuple[list[Entry], str | None]
_Items = list[tuple[str, bool, int | None]]
"""(name, is_folder, size) rows of an S3 listing."""


class S3Lister(LocationBase):
    """Listing of S3 buckets and prefixes (mixed into :class:`~bioimnb.core.locations.Location`)."""

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
            # A folder is an MRXS companion when "<name>.mrxs" exists.  When this call has seen
            # the folder from its start to its end, every such name is known; otherwise it may
            # be on another page (AWS puts "x.mrxs" before "x/", SeaweedFS after): ask.
            if not (first_page and not truncated):
                unknown = [
                    n for n, is_dir, _ in batch
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
                if obj.get("LastModified") is not None:
                    self._modified[obj["Key"]] = obj["LastModified"]
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

    async def _s3_markers(self, bucket: str, inner: str) -> dict[str, Any]:
        """The zarr metadata documents directly under ``inner``: ``zarr.json`` asked for
        directly (one request for a zarr v3 folder), else the v2 names from one listing."""
        try:
            doc = await self._s3_doc(f"{bucket}/{inner}zarr.json", "zarr.json", missing_ok=False)
        except FileNotFoundError:
            pass
        else:
            return {"zarr.json": doc}  # None: there but unreadable (the classification says so)
        resp = await self._s3_call("list_objects_v2", Bucket=bucket, Prefix=inner + ".z", MaxKeys=16)
        keys = {obj["Key"] for obj in resp.get("Contents") or []}
        names = [n for n in (".zattrs", ".zgroup", ".zarray") if inner + n in keys]
        datas = await asyncio.gather(*(self._s3_doc(f"{bucket}/{inner}{n}", n) for n in names))
        return dict(zip(names, datas))

    def _reader(self, key: str) -> ObjectReader | None:
        """An obstore reader of ``bucket/key`` when the options allow one (see core/objects)."""
        bucket, _, rest = key.partition("/")
        if bucket not in self._objects:
            from ..storage import resolve

            try:
                self._objects[bucket] = object_reader(resolve(f"s3://{bucket}/{rest}", **self.storage_options))
            except BioimnbError:
                self._objects[bucket] = None
        known: ObjectReader | None = self._objects[bucket]
        return None if known is None else known.sibling(rest)

    async def _s3_read(self, key: str, end: int | None = None, *, missing_ok: bool = True) -> bytes | None:
        """The object (its first ``end`` bytes); None when it cannot be read.  With
        ``missing_ok=False`` an object that does not exist raises FileNotFoundError."""
        try:
            fast = self._reader(key) if end else None
            if fast is not None and end:
                return await fast.read_async(0, end)  # a fifth of botocore's CPU per GET
            data: bytes = await self._fs._cat_file(key, start=0 if end else None, end=end)
            return data
        except FileNotFoundError:
            if not missing_ok:
                raise
            return None
        except Exception:  # noqa: BLE001 - unreadable: the classification says so
            return None

    async def _s3_doc(self, key: str, name: str, *, missing_ok: bool = True) -> bytes | BioimnbError | None:
        """A zarr metadata document, read as one ranged GET capped at the classification's
        limit (no HEAD request for its size; a larger document is refused, not read whole)."""
        data = await self._s3_read(key, ZARR_METADATA_LIMIT + 1, missing_ok=missing_ok)
        if data is not None and len(data) > ZARR_METADATA_LIMIT:
            return CorruptFile(name, f"{name} is larger than {ZARR_METADATA_LIMIT} bytes, too large for metadata")
        return data

    async def _s3_entry(
        self, bucket: str, prefix: str, name: str, is_dir: bool, size: int | None
    ) -> Entry:
        fs_path = f"{bucket}/{prefix}{name}"
        path = self._entry_path(name, fs_path)
        if is_dir:
            inner = f"{prefix}{name}/"
            found = zarr_metadata(await self._s3_markers(bucket, inner))
            if not found:
                return Entry(name, path, "folder")
            return Entry.of(name, path, found)
        fmt = format_for_name(name)
        if fmt is None:
            entry = Entry(name, path, "file", None, size)
            entry.modified = _seconds(self._modified.get(f"{prefix}{name}"))
            return entry
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
        if size == 0:
            head: bytes | None = b""
        elif not self.sniff:
            head = None  # classified by name; opening it will tell
        else:
            head = await self._s3_read(fs_path, None if small else HEAD_BYTES)
        entry = Entry.of(name, path, file_kind(name, size, head))
        etag = self._etags.get(f"{prefix}{name}")
        entry.stamp = f"{size}:{etag}" if etag else None
        entry.modified = _seconds(self._modified.get(f"{prefix}{name}"))
        return entry


def _seconds(value: Any) -> float | None:
    """POSIX seconds of a listing's ``LastModified`` (a datetime; None when absent)."""
    try:
        return float(value.timestamp())
    except (AttributeError, TypeError, ValueError, OverflowError):
        return None


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
