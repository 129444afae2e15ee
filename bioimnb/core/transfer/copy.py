"""Copy files, images and folders between local disks, S3 stores and HTTP (as a source), with a
SHA-256 per file computed while streaming and checked at the destination, resumable, without
silent overwrites.

How each file travels (:func:`transfer`)
    The source is read once, in fixed-size blocks (:func:`~.checksums.block_size`), and each
    block is hashed and written on at once, so memory stays at a block (an S3 part) per stream.

    * Local destination: the bytes go to a temporary file inside the journal folder
      (``DEST/.bioimnb-transfer/parts/``), which is synced, read back and hashed; only when the
      SHA-256 matches is it renamed to its name (a rename is atomic), so a file at its final
      name is always complete and verified, whatever interrupted the run.
    * S3 destination: a file up to one part (8 MiB) is one PUT whose ETag must equal the MD5
      computed in the same stream; a larger file is a multipart upload (parts of
      :func:`~.checksums.part_size`), whose ETag must equal the MD5 of the parts' MD5s.  When the
      store answers another ETag (encryption, another scheme), the object is read back and its
      SHA-256 compared.  S3 objects appear only when complete (a multipart upload is invisible
      until it is completed), so a partial object is never mistaken for a finished one.  Up to
      four parts of a file are sent at once while the next is read, and at most eight parts
      are held in memory by the whole process.  An unfinished upload of the same key (a run
      killed in the middle) is aborted first.  A single-PUT object also carries its SHA-256
      as metadata (``x-amz-meta-sha256``).
    * Other fsspec stores: a temporary name, read back, then moved.

Resume
    A :class:`~bioimnb.core.jobs.Journal` records each verified file with its SHA-256 and the
    identity (size, modification time or ETag) its source had.  It lives at a local destination
    (``DEST/.bioimnb-transfer``), and for remote destinations in the user's cache folder (a
    journal of one small object per file would double the requests of a transfer of many small
    files).  A re-run skips a journalled file whose source is unchanged and whose destination has
    the recorded size, without reading either.  Every other file already at the destination is
    verified by content (both sides hashed, or the ETag predicted) and skipped when equal.  The
    journal is removed when a run finishes without failures, so a later run re-verifies every
    file: a corrupted destination is then reported.

No silent overwrite
    A destination file that differs from its source is a failure (a conflict) and is left as it
    is, unless ``overwrite=True``.  A source that changes while it is read (its size or
    modification time moves) is reported and nothing is written for it; a source that changed
    since an interrupted run copied it is named as such in its conflict.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import contextlib
import datetime as _dt
import hashlib
import io
import json
import os
import posixpath
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from ..errors import BioimnbError, SourceNotFound, display_source
from ..jobs import Cancelled, Executor, Journal, Progress, Runner, Task
from ..storage import Resolved, open_confined, resolve, storage_errors, translate
from .checksums import Digests, block_size, part_size, test_delay
from .plan import JOURNAL_FOLDER, Item, fresh, plan

__all__ = ["Failure", "TransferCancelled", "TransferError", "TransferReport", "transfer"]


class TransferError(BioimnbError):
    """A transfer cannot start (a destination inside the source, a missing bucket, ...)."""


class TransferCancelled(Cancelled):
    """A transfer was cancelled or interrupted; verified files are kept, a re-run resumes."""


@dataclass
class Failure:
    path: str
    """Relative path of the file (as in the source)."""
    reason: str
    """One line."""
    kind: str = "error"
    """``conflict`` (destination differs), ``changed`` (source changed), ``verify`` (the copy
    did not match) or ``error`` (storage error)."""

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason, "kind": self.kind}


@dataclass
class TransferReport:
    """What a transfer did."""

    source: str
    dest: str
    files: int = 0
    """Files in the source."""
    bytes: int = 0
    """Their bytes."""
    copied: int = 0
    bytes_copied: int = 0
    skipped: int = 0
    """Files already at the destination and verified (or journalled by an interrupted run)."""
    failures: list[Failure] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    """With ``sync``: destination files no longer in the source, removed."""
    seconds: float = 0.0
    bag: bool = False
    verified: bool = True
    checksums: dict[str, str] = field(default_factory=dict, repr=False)
    """``{relative path: sha256}`` of every file copied or verified in this run."""
    sizes: dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def throughput(self) -> float:
        """Bytes copied per second."""
        return self.bytes_copied / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "dest": self.dest,
            "files": self.files,
            "bytes": self.bytes,
            "copied": self.copied,
            "bytes_copied": self.bytes_copied,
            "skipped": self.skipped,
            "failed": len(self.failures),
            "failures": [f.to_dict() for f in self.failures],
            "deleted": list(self.deleted),
            "seconds": round(self.seconds, 3),
            "throughput": round(self.throughput, 1),
            "bag": self.bag,
            "verified": self.verified,
            "ok": self.ok,
        }

    def summary(self) -> str:
        """A few lines for people: totals, then one line per failure."""
        mib = self.bytes_copied / 2**20
        rate = self.throughput / 2**20
        head = (
            f"{self.files} files ({self.bytes / 2**20:.1f} MiB): copied {self.copied} ({mib:.1f} MiB), "
            f"skipped {self.skipped} already verified, {len(self.failures)} failed, "
            f"{self.seconds:.1f} s, {rate:.1f} MiB/s"
        )
        if self.deleted:
            head += f", deleted {len(self.deleted)} no longer in the source"
        if self.bag and self.ok:
            head += "; bag written"
        lines = [head] + [f"  {f.path}: {f.reason}" for f in self.failures]
        return "\n".join(lines)


@dataclass
class _Outcome:
    item: Item
    status: str  # copied | skipped | failed
    size: int = 0
    sha256: str | None = None
    failure: Failure | None = None
    record: dict[str, Any] | None = None


# -- sources ----------------------------------------------------------------------------------


class SourceChanged(Exception):
    pass


class _Reader:
    """A source file read block by block; knows whether it changed while being read."""

    def __init__(self, src: Resolved, item: Item) -> None:
        self.src = src
        self.item = item
        self.block = block_size()
        self.delay = test_delay()
        self.before: dict[str, Any] = {}
        self.fh: BinaryIO | Any
        if src.local:
            self.fh = open_confined(item.path, None, item.path)
            st = os.fstat(self.fh.fileno())
            self.before = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
        elif item.size is not None and item.size <= self.block:
            with storage_errors(src.url):  # a small object: one GET, no HEAD
                self.fh = io.BytesIO(src.fs.cat_file(item.path))
            self.before = {"size": item.size, "stamp": item.stamp}
        else:
            with storage_errors(src.url):
                self.fh = src.fs.open(item.path, "rb", block_size=self.block)
            self.before = {"size": item.size, "stamp": item.stamp}
        self.read_bytes = 0

    @property
    def expected(self) -> int | None:
        size = self.before.get("size")
        return int(size) if size is not None else None

    def read(self, n: int | None = None) -> bytes:
        data = self.fh.read(n or self.block)
        self.read_bytes += len(data)
        if data and self.delay:
            time.sleep(self.delay)
        return bytes(data)

    def readinto(self, view: memoryview) -> int:
        k = self.fh.readinto(view) if hasattr(self.fh, "readinto") else _copy_into(view, self.fh.read(len(view)))
        k = k or 0
        self.read_bytes += k
        if k and self.delay:
            time.sleep(self.delay)
        return k

    def blocks(self) -> Iterable[bytes]:
        while True:
            data = self.read()
            if not data:
                return
            yield data

    def check(self) -> None:
        """Raise :class:`SourceChanged` when the file changed while it was read."""
        if self.src.local:
            st = os.stat(self.item.path)
            now = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
            if now != self.before or self.read_bytes != st.st_size:
                raise SourceChanged("source changed while being copied (its size or modification time moved); nothing was written for it")
        elif self.expected is not None and self.read_bytes != self.expected:
            raise SourceChanged(f"source changed while being copied ({self.read_bytes} bytes read, {self.expected} listed)")

    def close(self) -> None:
        self.fh.close()

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()


def _copy_into(view: memoryview, data: bytes) -> int:
    view[: len(data)] = data
    return len(data)


def _source_identity(src: Resolved, item: Item) -> dict[str, Any]:
    if src.local:
        st = os.stat(item.path)
        return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    return {"size": item.size, "stamp": item.stamp}


def _hash_source(src: Resolved, item: Item, md5: bool = False) -> tuple[Digests, dict[str, Any]]:
    """Digests of a source file (read once), and its identity at that time."""
    with _Reader(src, item) as r:
        d = Digests(md5=md5, part=part_size(r.expected or 0))
        for block in r.blocks():
            d.update(block)
        r.check()
        return d, dict(r.before)


def _hash_file(fs: Any, path: str, local: bool) -> str:
    h = hashlib.sha256()
    block = block_size()
    opener = open(path, "rb", buffering=0) if local else fs.open(path, "rb", block_size=block)  # noqa: SIM115
    with opener as fh:
        while True:
            data = fh.read(block)
            if not data:
                break
            h.update(data)
    return h.hexdigest()


# -- destinations -----------------------------------------------------------------------------


@dataclass
class _Context:
    src: Resolved
    dst: Resolved
    root: str
    """Destination folder path on ``dst.fs`` that items' relative paths hang from."""
    journal_base: str
    overwrite: bool
    verify: bool
    existing: dict[str, dict[str, Any]] | None = None
    """Remote destinations: the objects already there, listed once."""
    journalled: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def s3(self) -> bool:
        return type(self.dst.fs).__name__ == "S3FileSystem"

    def dest_path(self, rel: str) -> str:
        if self.dst.local:
            return os.path.join(self.root, *rel.split("/"))
        return self.root.rstrip("/") + "/" + rel

    def part_path(self, rel: str) -> str:
        return os.path.join(self.journal_base, "parts", _task_id(rel).replace("/", ""))

    # -- what is at the destination now
    def existing_info(self, rel: str) -> dict[str, Any] | None:
        path = self.dest_path(rel)
        if self.dst.local:
            try:
                st = os.stat(path)
            except FileNotFoundError:
                return None
            except NotADirectoryError:
                return {"size": -1, "blocked": True}
            if not os.path.isfile(path):
                return {"size": -1, "blocked": True}
            return {"size": st.st_size}
        if self.existing is not None:
            return self.existing.get(path)
        with storage_errors(self.dst.url):
            try:
                info = dict(self.dst.fs.info(path))
            except FileNotFoundError:
                return None
        if info.get("type") == "directory":
            return {"size": -1, "blocked": True}
        return info

    def matches(self, rel: str, info: dict[str, Any], d: Digests) -> bool:
        """Whether the destination file holds exactly the bytes hashed into ``d``."""
        if int(info.get("size", -1)) != d.size:
            return False
        path = self.dest_path(rel)
        if self.s3:
            etag = str(info.get("ETag") or info.get("etag") or "").strip('"')
            if etag and etag in (d.etag(False), d.etag(True)):
                return True
        with storage_errors(self.dst.url):
            return _hash_file(self.dst.fs, path, self.dst.local) == d.sha256

    # -- writing
    def write(self, reader: _Reader, rel: str) -> Digests:
        if self.dst.local:
            return self._write_local(reader, rel)
        if self.s3:
            return self._write_s3(reader, rel)
        return self._write_generic(reader, rel)

    def _write_local(self, reader: _Reader, rel: str) -> Digests:
        final = self.dest_path(rel)
        part = self.part_path(rel)
        os.makedirs(os.path.dirname(part), exist_ok=True)
        d = Digests()
        try:
            with open(part, "wb") as out:
                for block in reader.blocks():
                    d.update(block)
                    out.write(block)
                reader.check()
                out.flush()
                os.fsync(out.fileno())
            if self.verify and _hash_file(None, part, True) != d.sha256:
                raise _VerifyFailed("the copy read back does not match the source's SHA-256; nothing was kept")
            os.makedirs(os.path.dirname(final), exist_ok=True)
            if self.src.local:
                st = reader.before
                os.utime(part, ns=(st["mtime_ns"], st["mtime_ns"]))
            os.replace(part, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(part)
            raise
        return d

    def _write_s3(self, reader: _Reader, rel: str) -> Digests:
        fs = self.dst.fs
        bucket, key, _ = fs.split_path(self.dest_path(rel))
        psize = part_size(reader.expected or 0)
        d = Digests(md5=True, part=psize)
        # A file listed smaller than a part is one PUT and takes no part slot (its memory is
        # bounded by the streams); a larger one reads each part only once a slot is free.
        small = reader.expected is not None and reader.expected < psize
        first = _read_exactly(reader, psize, d) if small else _read_part(reader, psize, d)
        if len(first) < psize:  # the whole file fits one PUT
            try:
                reader.check()
                with storage_errors(self.dst.url):
                    resp = fs.call_s3("put_object", Bucket=bucket, Key=key, Body=first, Metadata={"sha256": d.sha256})
            finally:
                if not small:
                    _PART_SLOTS.release()
            etag, multipart = str(resp.get("ETag", "")).strip('"'), False
        else:
            if small:
                _PART_SLOTS.acquire()  # it grew past a part since it was listed
            try:
                _abort_stale_uploads(fs, bucket, key)
                with storage_errors(self.dst.url):
                    upload = fs.call_s3("create_multipart_upload", Bucket=bucket, Key=key)
            except BaseException:
                _PART_SLOTS.release()
                raise
            resp = self._multipart(reader, d, bucket, key, upload["UploadId"], first)
            etag, multipart = str(resp.get("ETag", "")).strip('"'), True
        fs.invalidate_cache(self.dest_path(rel))
        if self.verify and etag != d.etag(multipart):
            # The store's ETag is no MD5 of ours (encrypted at rest, another scheme): read back.
            with storage_errors(self.dst.url):
                back = _hash_file(fs, self.dest_path(rel), False)
            if back != d.sha256:
                with storage_errors(self.dst.url):
                    fs.rm_file(self.dest_path(rel))
                raise _VerifyFailed("the object read back does not match the source's SHA-256; it was removed")
        return d

    def _multipart(self, reader: _Reader, d: Digests, bucket: str, key: str, uid: str, first: bytearray) -> dict[str, Any]:
        """Upload parts while the next ones are read and hashed: up to :data:`PART_WINDOW` parts
        of a file in flight, and :data:`PARTS_IN_FLIGHT` in the whole process (a part is held
        in memory until it is sent), then complete the upload.  Any failure aborts it, so no
        partial object ever appears."""
        fs = self.dst.fs
        pool = _part_pool()
        pending: collections.deque[tuple[int, cf.Future[Any]]] = collections.deque()
        parts: list[dict[str, Any]] = []

        def collect() -> None:
            n, fut = pending.popleft()
            parts.append({"PartNumber": n, "ETag": fut.result()["ETag"]})

        try:
            data: bytearray | None = first
            number = 1
            while data:
                pending.append((number, pool.submit(_upload_part, fs, bucket, key, uid, number, data)))
                data = None
                while len(pending) >= PART_WINDOW:
                    collect()
                number += 1
                data = _read_part(reader, d.part, d)
                if not data:
                    _PART_SLOTS.release()
            while pending:
                collect()
            reader.check()
            return dict(fs.call_s3("complete_multipart_upload", Bucket=bucket, Key=key, UploadId=uid, MultipartUpload={"Parts": parts}))
        except BaseException as exc:
            for _, fut in pending:
                if fut.cancel():
                    _PART_SLOTS.release()  # never ran: its slot was not given back
                else:
                    cf.wait([fut])
            with contextlib.suppress(Exception):  # the first error is the one to report
                fs.call_s3("abort_multipart_upload", Bucket=bucket, Key=key, UploadId=uid)
            if isinstance(exc, Exception) and not isinstance(exc, (SourceChanged, BioimnbError, _VerifyFailed)):
                mapped = translate(self.dst.url, exc)
                if mapped is not None:
                    raise mapped from exc
            raise

    def _write_generic(self, reader: _Reader, rel: str) -> Digests:
        fs = self.dst.fs
        final = self.dest_path(rel)
        tmp = final + ".bioimnb-part"
        d = Digests()
        with storage_errors(self.dst.url):
            parent = posixpath.dirname(final)
            if parent:
                fs.makedirs(parent, exist_ok=True)
            with fs.open(tmp, "wb") as out:
                for block in reader.blocks():
                    d.update(block)
                    out.write(block)
            reader.check()
            if self.verify and _hash_file(fs, tmp, False) != d.sha256:
                fs.rm_file(tmp)
                raise _VerifyFailed("the copy read back does not match the source's SHA-256; nothing was kept")
            fs.mv(tmp, final)
        return d

    def remove(self, rel: str) -> None:
        path = self.dest_path(rel)
        with storage_errors(self.dst.url):
            if self.dst.local:
                os.unlink(path)
            else:
                self.dst.fs.rm_file(path)


class _VerifyFailed(Exception):
    pass


PART_WINDOW = 4
"""Parts of one file uploaded at once (rclone's default upload concurrency too)."""
PARTS_IN_FLIGHT = 8
"""Parts held in memory across the whole process (read, or being sent): with 8 MiB parts, 64 MiB."""
_PART_SLOTS = threading.BoundedSemaphore(PARTS_IN_FLIGHT)
_POOL_LOCK = threading.Lock()
_POOL: cf.ThreadPoolExecutor | None = None


def _part_pool() -> cf.ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = cf.ThreadPoolExecutor(PARTS_IN_FLIGHT, thread_name_prefix="bioimnb-s3-part")
        return _POOL


def _abort_stale_uploads(fs: Any, bucket: str, key: str) -> None:
    """Abort unfinished multipart uploads of ``key`` (an earlier run killed in the middle leaves
    one behind: invisible, but its parts take space until aborted).  Best effort."""
    with contextlib.suppress(Exception):
        found = fs.call_s3("list_multipart_uploads", Bucket=bucket, Prefix=key)
        for upload in found.get("Uploads") or []:
            if upload.get("Key") == key and upload.get("UploadId"):
                fs.call_s3("abort_multipart_upload", Bucket=bucket, Key=key, UploadId=upload["UploadId"])


def _upload_part(fs: Any, bucket: str, key: str, uid: str, number: int, data: bytearray) -> Any:
    try:
        return fs.call_s3("upload_part", Bucket=bucket, Key=key, UploadId=uid, PartNumber=number, Body=data)
    finally:
        _PART_SLOTS.release()


def _read_part(reader: _Reader, n: int, d: Digests) -> bytearray:
    """The next part, read once a slot is free (:data:`PARTS_IN_FLIGHT`); the caller gives the
    slot back when the part is sent (or at once when it is empty)."""
    _PART_SLOTS.acquire()
    try:
        return _read_exactly(reader, n, d)
    except BaseException:
        _PART_SLOTS.release()
        raise


def _read_exactly(reader: _Reader, n: int, d: Digests) -> bytearray:
    """Up to ``n`` bytes (fewer only at the end of the file), hashed into ``d``, read into one
    buffer sized by what the listing said is left (a 4 KiB file does not get an 8 MiB buffer);
    a file that grew past its listed size is read on regardless."""
    left = None if reader.expected is None else max(0, reader.expected - reader.read_bytes)
    size = n if left is None else min(n, left + 1)
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    while got < size:
        k = reader.readinto(view[got : got + min(reader.block, size - got)])
        if not k:
            break
        d.update(view[got : got + k])
        got += k
    view.release()
    if got < size:
        del buf[got:]
    elif size < n:
        while got < n:
            data = reader.read(min(reader.block, n - got))
            if not data:
                break
            d.update(data)
            buf += data
            got += len(data)
    return buf


def _task_id(rel: str) -> str:
    digest = hashlib.sha1(rel.encode("utf-8", "surrogateescape"), usedforsecurity=False).hexdigest()
    return f"{digest[:2]}/{digest[2:]}"


# -- one file -----------------------------------------------------------------------------------


def _copy_one(ctx: _Context, item: Item) -> _Outcome:
    rel = item.rel
    try:
        return _copy_one_inner(ctx, item)
    except SourceChanged as exc:
        return _Outcome(item, "failed", failure=Failure(rel, str(exc), "changed"))
    except _VerifyFailed as exc:
        return _Outcome(item, "failed", failure=Failure(rel, str(exc), "verify"))
    except BioimnbError as exc:
        return _Outcome(item, "failed", failure=Failure(rel, exc.reason, "error"))
    except OSError as exc:
        mapped = translate(rel, exc)
        reason = mapped.reason if mapped is not None else (exc.strerror or str(exc) or type(exc).__name__)
        return _Outcome(item, "failed", failure=Failure(rel, " ".join(str(reason).split()), "error"))


def _copy_one_inner(ctx: _Context, item: Item) -> _Outcome:
    rel = item.rel
    info = ctx.existing_info(rel)
    note = ""
    if info is not None and info.get("blocked"):
        return _Outcome(item, "failed", failure=Failure(rel, "the destination has a folder (or a file in its path) where this file goes", "conflict"))
    if info is not None:
        rec = ctx.journalled.get(rel)
        if rec is not None:
            now = _source_identity(ctx.src, item)
            if now == rec.get("source") and int(info.get("size", -1)) == rec.get("size"):
                return _Outcome(item, "skipped", rec["size"], rec["sha256"], record=rec)
            if now != rec.get("source"):
                note = f"the source changed since an earlier run copied it ({rec.get('time', '?')}); "
        d, ident = _hash_source(ctx.src, item, md5=ctx.s3)
        if ctx.matches(rel, info, d):
            return _Outcome(item, "skipped", d.size, d.sha256, record=_record(rel, d, ident))
        if not ctx.overwrite:
            reason = f"{note}the destination exists with different content; left as it is (overwrite to replace it)"
            return _Outcome(item, "failed", failure=Failure(rel, reason, "changed" if note else "conflict"))
    with _Reader(ctx.src, item) as reader:
        d = ctx.write(reader, rel)
        ident = dict(reader.before)
    return _Outcome(item, "copied", d.size, d.sha256, record=_record(rel, d, ident))


def _record(rel: str, d: Digests, ident: dict[str, Any]) -> dict[str, Any]:
    return {
        "rel": rel,
        "sha256": d.sha256,
        "size": d.size,
        "source": ident,
        "time": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


# -- the whole transfer ---------------------------------------------------------------------


def _journal_home(dst: Resolved, top: str) -> Resolved:
    """Where the journal lives: in the destination folder when it is local, else in the user's
    cache folder under a name derived from the destination URL."""
    if dst.local:
        return resolve(top)
    from ..facts import default_cache_path

    key = hashlib.sha256(f"{dst.url.rstrip('/')}|{top}".encode()).hexdigest()[:32]
    return resolve(str(default_cache_path().parent / "transfers" / key))


def _split_options(storage_options: dict[str, Any], src_options: dict[str, Any] | None, dest_options: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    a = {**storage_options, **(src_options or {})}
    b = {**storage_options, **(dest_options or {})}
    return a, b


def _prepare_dest(dst: Resolved) -> None:
    if dst.local:
        return
    if type(dst.fs).__name__ == "S3FileSystem":
        bucket = dst.path.split("/", 1)[0]
        with storage_errors(dst.url):
            try:
                dst.fs.call_s3("head_bucket", Bucket=bucket)
            except FileNotFoundError:
                raise SourceNotFound(dst.url, "no such bucket") from None
    elif dst.url.startswith(("http://", "https://")):
        raise TransferError(dst.url, "HTTP is a source only; copy to a local folder or an object store")


def _list_existing(dst: Resolved, root: str) -> dict[str, dict[str, Any]]:
    fs = dst.fs
    with storage_errors(dst.url):
        fs.invalidate_cache()
        try:
            found = fs.find(root, detail=True)
        except FileNotFoundError:
            return {}
    return {k: v for k, v in found.items() if v.get("type") != "directory"}


def transfer(
    src: str | os.PathLike[str] | list[str | os.PathLike[str]] | tuple[str | os.PathLike[str], ...],
    dest: str | os.PathLike[str],
    *,
    sync: bool = False,
    overwrite: bool = False,
    bag: bool = False,
    workers: int | None = None,
    progress: Callable[[Progress], None] | None = None,
    cancel: Any = None,
    verify: bool = True,
    files: Iterable[str] | None = None,
    src_options: dict[str, Any] | None = None,
    dest_options: dict[str, Any] | None = None,
    **storage_options: Any,
) -> TransferReport:
    """Copy a file, an image (an OME-Zarr folder counts as one) or a folder from ``src`` to
    ``dest``, with a SHA-256 per file checked at the destination; returns a :class:`TransferReport`.

    Where things go: a folder's (or an image folder's) contents become ``dest``'s, like
    ``rclone copy``; a file goes to ``dest`` itself, or into it when ``dest`` is an existing
    folder or ends with ``/``.  With ``bag=True`` they go under ``dest/data/`` and ``dest``
    becomes a BagIt 1.0 bag (:mod:`.bag`).

    ``sync`` also removes destination files that are no longer in the source; ``overwrite``
    replaces destination files that differ (otherwise they are reported as conflicts);
    ``verify=False`` skips the read-back or ETag check (the SHA-256 is still computed).
    ``workers`` parallel streams (default 4 locally, 16 with a remote side: object stores are
    latency-bound); ``progress``
    receives :class:`~bioimnb.core.jobs.Progress` (files done, bytes copied); ``cancel`` (an
    object with ``is_set()``) stops after the files in flight.  ``files`` limits the run to those
    relative paths (watch mode).  Storage options go to both sides unless ``src_options`` /
    ``dest_options`` give a side its own.
    """
    if isinstance(src, (list, tuple)):
        return _transfer_many(
            list(src), dest, sync=sync, overwrite=overwrite, bag=bag, workers=workers, progress=progress, cancel=cancel,
            verify=verify, src_options=src_options, dest_options=dest_options, **storage_options,
        )
    start = time.perf_counter()
    so_src, so_dst = _split_options(storage_options, src_options, dest_options)
    src_text, dest_text = os.fspath(src), os.fspath(dest)
    src_res = fresh(resolve(src_text, **so_src))
    dst_res = fresh(resolve(dest_text, **so_dst))
    if src_res.local and dst_res.local:
        real_src, real_dst = os.path.realpath(src_res.path), os.path.realpath(dst_res.path)
        if real_dst == real_src or real_dst.startswith(real_src.rstrip(os.sep) + os.sep):
            if os.path.isdir(real_src):
                raise TransferError(dest_text, "the destination lies inside the source")
            if real_dst == real_src:
                raise TransferError(dest_text, "the destination is the source")
    elif (
        not src_res.local
        and type(src_res.fs) is type(dst_res.fs)
        and src_res.options.get("endpoint_url") == dst_res.options.get("endpoint_url")
    ):
        a, b = src_res.path.rstrip("/"), dst_res.path.rstrip("/")
        if b == a or b.startswith(a + "/"):
            raise TransferError(dest_text, "the destination is the source or lies inside it")
    _prepare_dest(dst_res)
    kind, items = plan(src_res, **so_src)
    if files is not None:
        wanted = set(files)
        items = [i for i in items if i.rel in wanted]

    # Where items go.
    dest_is_folder = dest_text.endswith(("/", os.sep)) or (
        os.path.isdir(dst_res.path) if dst_res.local else _remote_isdir(dst_res)
    )
    top = dst_res.path.rstrip("/") if not dst_res.local else dst_res.path
    if kind == "file" and not bag and not dest_is_folder:
        root = os.path.dirname(top) if dst_res.local else posixpath.dirname(top)
        items = [Item(posixpath.basename(top), items[0].path, items[0].size, items[0].stamp)] if items else []
        top = root
    else:
        root = top
    if bag:
        root = os.path.join(top, "data") if dst_res.local else top + "/data"

    journal = Journal(_journal_home(dst_res, top), JOURNAL_FOLDER if dst_res.local else "journal")
    ctx = _Context(src_res, dst_res, root, journal.base if dst_res.local else os.path.join(journal.res.path, "journal"), overwrite, verify)
    if not dst_res.local and (kind != "file" or bag):
        # one listing for a folder's worth of files; a single file asks for its own key only
        # (listing its parent could mean listing a whole bucket)
        ctx.existing = _list_existing(dst_res, root)
    for raw in journal.load().values():
        try:
            found = json.loads(raw)
        except ValueError:
            continue  # a batch cut short by a crash: its files are verified by content instead
        for rec in found if isinstance(found, list) else [found]:
            if isinstance(rec, dict) and "rel" in rec:
                ctx.journalled[rec["rel"]] = rec
    batch = _JournalBatch(journal)

    report = TransferReport(display_source(src_text), display_source(dest_text), bag=bag, verified=verify)
    report.files = len(items)
    report.bytes = sum(i.size or 0 for i in items)
    n_workers = workers or (4 if src_res.local and dst_res.local else 16)
    with Executor(None, n_workers, name="bioimnb-transfer") as ex:
        runner = Runner(
            ex,
            journal=None,
            progress=progress,
            cancel=cancel,
            total=len(items),
            source=display_source(src_text),
            cancelled=TransferCancelled,
            interrupted_reason="interrupted; verified files are kept, run the transfer again to resume",
            cancelled_reason="cancelled; verified files are kept, run the transfer again to resume",
        )
        tasks = (Task(_task_id(i.rel), _copy_one, (ctx, i)) for i in items)

        def measure(out: _Outcome) -> tuple[str, int]:
            return out.sha256 or "", out.size if out.status == "copied" else 0

        try:
            for _task, out in runner.run(tasks, phase="transfer", measure=measure):
                _account(report, ctx, batch, out)
        finally:
            batch.flush()
    report.failures.sort(key=lambda f: f.path)

    source_rels = {i.rel for i in items}
    if files is None and (sync or bag) and (kind != "file" or bag):
        extra = sorted(_dest_files(ctx) - source_rels)
        if sync:
            for rel in extra:
                ctx.remove(rel)
                report.deleted.append(rel)
        elif bag and extra:
            report.failures.append(
                Failure(extra[0], f"the bag's payload holds {len(extra)} file(s) not in the source; use sync to remove them", "conflict")
            )
    if bag and report.ok:
        from .bag import write_bag

        write_bag(dst_res, top, {rel: (report.checksums[rel], report.sizes[rel]) for rel in source_rels})
    if report.ok:
        journal.clear()
    report.seconds = time.perf_counter() - start
    return report


def _transfer_many(sources: list[Any], dest: Any, *, bag: bool, **options: Any) -> TransferReport:
    """Several sources (a selection in the browser): each goes to ``dest/<its name>``; one
    report for all.  Not as a bag: a bag holds one payload."""
    if bag:
        raise TransferError(display_source(os.fspath(dest)), "a bag is made of one source; copy the files into one folder first")
    dest_text = os.fspath(dest)
    report = TransferReport(", ".join(display_source(os.fspath(s)) for s in sources), display_source(dest_text))
    start = time.perf_counter()
    sep = "/" if "://" in dest_text else os.sep
    for source in sources:
        name = os.fspath(source).rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]
        part = transfer(source, dest_text.rstrip("/\\") + sep + name, **options)
        for key in ("files", "bytes", "copied", "bytes_copied", "skipped"):
            setattr(report, key, getattr(report, key) + getattr(part, key))
        report.failures += [Failure(f"{name}/{f.path}" if f.path != name else name, f.reason, f.kind) for f in part.failures]
        report.deleted += [f"{name}/{d}" for d in part.deleted]
        report.checksums.update({f"{name}/{k}": v for k, v in part.checksums.items()})
    report.seconds = time.perf_counter() - start
    return report


def _account(report: TransferReport, ctx: _Context, batch: _JournalBatch, out: _Outcome) -> None:
    if out.status == "failed":
        assert out.failure is not None
        report.failures.append(out.failure)
        return
    assert out.sha256 is not None and out.record is not None
    report.checksums[out.item.rel] = out.sha256
    report.sizes[out.item.rel] = out.size
    if out.status == "copied":
        report.copied += 1
        report.bytes_copied += out.size
    else:
        report.skipped += 1
    if out.status == "copied" or out.item.rel not in ctx.journalled:
        batch.add(out.record)


class _JournalBatch:
    """Journal records written in batches (every 256 files or every second), one journal entry
    per batch: a journal of one entry per file would cost as much as the copy of a small file.
    A crash loses at most the last batch; its files are then verified by content, not copied."""

    def __init__(self, journal: Journal, size: int = 256, seconds: float = 1.0) -> None:
        self.journal = journal
        self.size = size
        self.seconds = seconds
        self.records: list[dict[str, Any]] = []
        self.last = time.monotonic()
        self.count = 0
        self.tag = f"{os.getpid()}-{time.time_ns()}"

    def add(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        if len(self.records) >= self.size or time.monotonic() - self.last >= self.seconds:
            self.flush()

    def flush(self) -> None:
        if self.records:
            self.journal.mark(f"batch-{self.tag}-{self.count:06d}", json.dumps(self.records, sort_keys=True))
            self.count += 1
            self.records = []
        self.last = time.monotonic()


def _remote_isdir(dst: Resolved) -> bool:
    with storage_errors(dst.url):
        try:
            return bool(dst.fs.isdir(dst.path))
        except FileNotFoundError:
            return False


def _dest_files(ctx: _Context) -> set[str]:
    """Relative paths of the files under the destination root (journal and parts excluded)."""
    out: set[str] = set()
    if ctx.dst.local:
        if not os.path.isdir(ctx.root):
            return out
        for top, dirs, names in os.walk(ctx.root):
            if top == ctx.root and JOURNAL_FOLDER in dirs:
                dirs.remove(JOURNAL_FOLDER)
            for name in names:
                out.add(os.path.relpath(os.path.join(top, name), ctx.root).replace(os.sep, "/"))
        return out
    base = ctx.root.rstrip("/") + "/"
    for path in _list_existing(ctx.dst, ctx.root):
        if path.startswith(base):
            out.add(path[len(base) :])
    return out
