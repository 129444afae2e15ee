"""Where bytes live: local paths and any fsspec URL (s3://, http(s)://, gs://, memory://, ...).

``resolve(source, **storage_options)`` gives an fsspec filesystem and a path on it.  Credentials
and endpoints come from ``storage_options`` or from the usual environment and config files
(``AWS_*``, ``~/.aws``); they stay inside the filesystem object and are never logged or shown:
errors name the source through :func:`bioimnb.core.errors.display_source`.

Remote filesystems get short connect timeouts and few retries, so an unreachable endpoint is
reported within seconds instead of after minutes of back-off.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import fsspec
from fsspec.implementations.local import LocalFileSystem

from .errors import (
    AccessDenied,
    BioimnbError,
    CorruptFile,
    PathEscapesRoot,
    SourceNotFound,
    StorageUnreachable,
)

__all__ = [
    "Resolved",
    "inside",
    "is_local",
    "open_confined",
    "read_confined",
    "read_head",
    "resolve",
    "storage_errors",
]

_S3_DEFAULTS: dict[str, Any] = {
    "config_kwargs": {
        "connect_timeout": 5,
        "read_timeout": 60,
        "retries": {"max_attempts": 2, "mode": "standard"},
    },
}


@dataclass(frozen=True)
class Resolved:
    fs: fsspec.AbstractFileSystem
    path: str
    """Path on ``fs`` (no protocol for remote filesystems, absolute for local ones)."""
    url: str
    """The source as given, normalised (absolute for local paths)."""
    options: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """The storage options the filesystem was made with (may hold credentials: never show)."""
    root: str | None = None
    """Local sources only: the real path of the folder that every file a reader opens for this
    source (chunks, companion files, sidecars) must lie in, symlinks resolved; None = anywhere.
    Readers open files through :func:`open_confined`, which enforces it."""
    prefetched: dict[str, bytes] | None = field(default=None, repr=False, compare=False)
    """Folder stores: metadata documents the caller has read already, by key in the store."""
    listed: frozenset[str] | None = field(default=None, repr=False, compare=False)
    """Folder stores: every metadata document's key, when the caller has listed the store (a
    document not in it is known absent, and not asked for)."""

    @property
    def local(self) -> bool:
        return is_local(self.fs)

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    return isinstance(fs, LocalFileSystem)


def _merge(defaults: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    out = dict(defaults)
    for key, value in options.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _http_defaults() -> dict[str, Any]:
    import aiohttp

    return {"client_kwargs": {"timeout": aiohttp.ClientTimeout(total=None, connect=5, sock_read=60)}}


def resolve(
    source: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None, **storage_options: Any
) -> Resolved:
    """Split a source into (filesystem, path).  Local paths are made absolute.

    ``root`` (local sources only) confines every file opened for this source to that folder.
    """
    text = os.fspath(source)
    if "://" not in text or text.startswith("file://"):
        if text.startswith("file://"):
            text = text[len("file://") :]
        path = os.path.abspath(os.path.expanduser(text))
        root_real = None
        if root is not None:
            root_real = os.path.realpath(os.path.expanduser(os.fspath(root)))
            if not inside(os.path.realpath(path), root_real):
                raise PathEscapesRoot(path, "path escapes the root")
        return Resolved(LocalFileSystem(), path, path, root=root_real)
    protocol = text.split("://", 1)[0].lower()
    if protocol in ("s3", "s3a"):
        options = _merge(_S3_DEFAULTS, storage_options)
    elif protocol in ("http", "https"):
        options = _merge(_http_defaults(), storage_options)
    else:
        options = dict(storage_options)
    with storage_errors(text):
        fs, path = fsspec.core.url_to_fs(text, **_with_session(protocol, options))
    return Resolved(fs, path, text, options)


def async_twin(res: Resolved) -> fsspec.AbstractFileSystem:
    """An ``asynchronous=True`` filesystem for ``res`` (what zarr's stores need), one per
    process and set of options.  fsspec caches asynchronous instances per thread, so each
    scan thread would otherwise build its own S3 client (about 0.1 s of CPU each)."""
    protocol = res.url.split("://", 1)[0].lower()
    key = (os.getpid(), protocol, fsspec.utils.tokenize(res.options))
    with _TWINS_LOCK:
        fs = _TWINS.get(key)
        if fs is None:
            options = _with_session(protocol, {**res.options, "asynchronous": True, "skip_instance_cache": True})
            fs, _ = fsspec.core.url_to_fs(res.url, **options)
            if len(_TWINS) >= 16:
                _TWINS.pop(next(iter(_TWINS)))
            _TWINS[key] = fs
    return fs


_TWINS: dict[tuple[int, str, str], fsspec.AbstractFileSystem] = {}
_TWINS_LOCK = threading.Lock()
_SESSIONS: dict[tuple[int, bool], Any] = {}
_SESSIONS_LOCK = threading.Lock()


def _with_session(protocol: str, options: dict[str, Any]) -> dict[str, Any]:
    """S3 options plus a shared botocore session whose responses parse timestamps quickly
    (botocore parses every ``LastModified`` with dateutil: about 80 us each, 1,000 per listing
    page).  Options that choose a session or a profile are left as they are.  Synchronous and
    asynchronous filesystems get one session each: their clients are made on different event
    loop threads, and a botocore session is not safe to share between threads."""
    if protocol not in ("s3", "s3a") or "session" in options or "profile" in options:
        return options
    key = (os.getpid(), bool(options.get("asynchronous")))
    with _SESSIONS_LOCK:
        session = _SESSIONS.get(key)
        if session is None:
            from aiobotocore.session import AioSession

            session = AioSession()
            session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_timestamp)
            _SESSIONS[key] = session
    return {**options, "session": session}


def _timestamp(value: str) -> Any:
    """botocore's timestamp parser, fast for the two forms S3 sends (ISO 8601 in listings,
    RFC 7231 in headers); anything else goes to botocore's own parser."""
    import datetime as dt

    try:
        if value[-1:] == "Z" and "T" in value:
            return dt.datetime.fromisoformat(value)
        if value[-4:] == " GMT":
            from email.utils import parsedate_to_datetime

            return parsedate_to_datetime(value)
    except (ValueError, TypeError, IndexError):
        pass
    from botocore.utils import parse_timestamp

    return parse_timestamp(value)


_UNREACHABLE_NAMES = {
    "EndpointConnectionError",
    "ConnectTimeoutError",
    "ConnectionClosedError",
    "ClientConnectorError",
    "ClientConnectionError",
    "ServerDisconnectedError",
    "ServerTimeoutError",
    "ConnectionRefusedError",
    "ConnectionResetError",
    "TimeoutError",
    "ReadTimeoutError",
    "NoCredentialsError",
}
_DENIED_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "401"}


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def translate(source: object, exc: BaseException) -> BioimnbError | None:
    """The user-facing error for a storage exception, or None when it is not one we know."""
    if isinstance(exc, BioimnbError):
        return exc
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, FileNotFoundError) and cause is not None and cause is not exc:
        # fsspec's HTTP filesystem reports any failure of HEAD and GET as FileNotFoundError.
        inner = translate(source, cause)
        if isinstance(inner, (StorageUnreachable, AccessDenied)):
            return inner
    names = _names(exc)
    status = getattr(exc, "status", None) or getattr(exc, "code", None)
    response = getattr(exc, "response", None)
    code = None
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
    if isinstance(exc, FileNotFoundError) or status == 404 or code in ("NoSuchKey", "NoSuchBucket", "404"):
        if code == "NoSuchBucket" or "NoSuchBucket" in str(exc) or "bucket does not exist" in str(exc):
            return SourceNotFound(source, "no such bucket")
        return SourceNotFound(source, "no such file or directory")
    if isinstance(exc, PermissionError) or status in (401, 403) or code in _DENIED_CODES:
        return AccessDenied(source, "permission denied")
    if "NoCredentialsError" in names:
        return AccessDenied(source, "no credentials found for this storage")
    if names & _UNREACHABLE_NAMES or isinstance(exc, ConnectionError):
        return StorageUnreachable(source, f"cannot reach the storage endpoint ({_first_line(exc)})")
    if isinstance(exc, OSError) and exc.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH):
        return StorageUnreachable(source, f"cannot reach the storage endpoint ({_first_line(exc)})")
    if isinstance(exc, IsADirectoryError):
        return SourceNotFound(source, "is a directory, not a file")
    return None


@contextmanager
def storage_errors(source: object) -> Iterator[None]:
    """Turn storage exceptions (missing, denied, unreachable) into one-line user errors."""
    try:
        yield
    except BioimnbError:
        raise
    except Exception as exc:
        mapped = translate(source, exc)
        if mapped is None:
            raise
        raise mapped from exc


def inside(real: str, root_real: str) -> bool:
    """Whether the resolved path ``real`` is ``root_real`` or lies below it."""
    return real == root_real or real.startswith(root_real.rstrip(os.sep) + os.sep)


def open_confined(path: str, root: str | None = None, source: object = None) -> BinaryIO:
    """Open a local file for reading, but only a regular file, and only inside ``root``.

    The file is opened without blocking (a FIFO or device never hangs the caller), then checked
    with ``fstat``: anything but a regular file is refused with :class:`CorruptFile`.  Under a
    root, the opened file must be the one its resolved path names inside the root (symlinks
    followed, then compared by device and inode, so a link swapped in between is caught too);
    otherwise :class:`PathEscapesRoot`.  Errors name ``source`` (default: the path).
    """
    shown = path if source is None else source
    name = os.path.basename(path.rstrip(os.sep)) or path
    real = None
    if root is not None:
        # Refused before it is opened: opening some devices already acts (a tape rewinds).
        real = os.path.realpath(path)
        if not inside(real, root):
            raise PathEscapesRoot(shown, f"{name}: lies outside the root (through a link)")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise CorruptFile(shown, f"{name}: too many levels of symbolic links") from None
        mapped = translate(shown, exc)
        if mapped is not None:
            raise mapped from None
        raise CorruptFile(shown, f"{name}: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            what = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file (a FIFO, device or socket)"
            raise CorruptFile(shown, f"{name} is {what}")
        if real is not None:
            st_real = os.stat(real)
            if (st_real.st_dev, st_real.st_ino) != (st.st_dev, st.st_ino):
                raise PathEscapesRoot(shown, f"{name}: changed while being opened")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise


def read_confined(path: str, root: str | None = None, source: object = None, *, limit: int | None = None) -> bytes:
    """The whole of a small local file (metadata) through :func:`open_confined`, refusing files
    larger than ``limit`` (default: :func:`~bioimnb.core.limits.limits` ``.max_metadata_bytes``)."""
    from .limits import limits

    cap = limits().max_metadata_bytes if limit is None else limit
    with open_confined(path, root, source) as fh:
        data = fh.read(cap + 1)
    if len(data) > cap:
        name = os.path.basename(path)
        raise CorruptFile(path if source is None else source, f"{name} is larger than {cap} bytes, too large for metadata")
    return data


def read_head(res: Resolved, size: int = 512) -> bytes:
    """The first ``size`` bytes of a file (fewer when the file is shorter)."""
    with storage_errors(res.url):
        if res.local:
            with open_confined(res.path, res.root, res.url) as fh:
                return fh.read(size)
        with res.fs.open(res.path, "rb", block_size=max(size, 2**16)) as fh:
            return fh.read(size)
