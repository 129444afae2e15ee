"""Ranged reads of S3 objects through obstore, for the readers' file handles.

Why not s3fs here: a ranged GET through s3fs and botocore costs about 0.7 ms of CPU under the
GIL (request building, signing, event hooks, response parsing); obstore's (Rust, the GIL
released while it waits) costs about 0.15 ms.  A first scan of an S3 prefix is mostly such
reads, so this is what decides its speed on a small machine (BENCHMARKS §13).  Listings,
writes and everything else stay with s3fs.

:func:`object_reader` gives a reader only for options it can hand to obstore exactly
(explicit keys or anonymous access, an endpoint or a known region, timeouts); anything else
(profiles, sessions, other botocore settings, credentials from files) returns None and the
caller reads through s3fs as before.  Errors come out as the built-in exceptions
:func:`bioimnb.core.storage.translate` knows (missing, denied, unreachable).
"""

from __future__ import annotations

import datetime as dt
import io
import os
import threading
from collections.abc import Iterator
from typing import Any

from .storage import Resolved

__all__ = ["ObjectReader", "RangeFile", "object_reader"]

_KNOWN = frozenset({"key", "secret", "token", "anon", "endpoint_url", "client_kwargs", "config_kwargs"})
_CONFIG = frozenset({"connect_timeout", "read_timeout", "retries", "s3"})
_CA_BUNDLES = ("AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE")
_STORES: dict[tuple[Any, ...], Any] = {}
_LOCK = threading.Lock()


class ObjectReader:
    """Reads of one S3 object (``bucket/key``) through a shared obstore store."""

    def __init__(self, store: Any, key: str) -> None:
        self._store = store
        self.key = key

    def read(self, start: int, end: int) -> bytes:
        """Bytes ``start`` to ``end`` (exclusive)."""
        import obstore

        if end <= start:
            return b""
        try:
            return bytes(obstore.get_range(self._store, self.key, start=start, end=end))
        except Exception as exc:  # noqa: BLE001 - obstore's errors as the built-ins the callers translate
            raise _builtin(exc) from exc

    async def read_async(self, start: int, end: int) -> bytes:
        """:meth:`read` in an event loop (the listing's)."""
        import obstore

        if end <= start:
            return b""
        try:
            return bytes(await obstore.get_range_async(self._store, self.key, start=start, end=end))
        except Exception as exc:  # noqa: BLE001 - obstore's errors as the built-ins the callers translate
            raise _builtin(exc) from exc

    def below(self) -> Iterator[tuple[str, int, float | None]]:
        """(key, bytes, modified POSIX seconds) of every object below this key taken as a
        folder, in pages (memory bounded by a page, not by the folder)."""
        import obstore

        try:
            for page in obstore.list(self._store, prefix=self.key.rstrip("/") + "/", chunk_size=1000):
                for meta in page:
                    when = meta.get("last_modified")
                    yield str(meta["path"]), int(meta.get("size") or 0), when.timestamp() if when is not None else None
        except Exception as exc:  # noqa: BLE001 - obstore's errors as the built-ins the callers translate
            raise _builtin(exc) from exc

    def sibling(self, key: str) -> ObjectReader:
        """A reader of another object in the same bucket."""
        return ObjectReader(self._store, key)

    def open(self, size: int, block_size: int, maxblocks: int = 8) -> io.BufferedReader | io.BytesIO:
        """A seekable binary file: the whole object in memory when it is one block, else
        blocks of ``block_size`` fetched on demand and a few kept (fsspec's block cache)."""
        if size <= block_size:
            return io.BytesIO(self.read(0, size))
        return io.BufferedReader(RangeFile(self, size, block_size, maxblocks), buffer_size=64 * 1024)


class RangeFile(io.RawIOBase):
    """A read-only, seekable file over an :class:`ObjectReader`, blocks cached."""

    def __init__(self, reader: ObjectReader, size: int, block_size: int, maxblocks: int) -> None:
        from fsspec.caching import BlockCache

        super().__init__()
        self._cache = BlockCache(block_size, reader.read, size, maxblocks=maxblocks)
        self._size = size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        end = min(self._size, self._pos + len(view))
        if end <= self._pos:
            return 0
        data = self._cache._fetch(self._pos, end)
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)


def object_reader(res: Resolved) -> ObjectReader | None:
    """An obstore reader for an S3 source, or None when s3fs should read it (not S3, obstore
    missing, or options obstore cannot be given exactly)."""
    if res.local or res.url.split("://", 1)[0].lower() not in ("s3", "s3a"):
        return None
    bucket, _, key = res.path.partition("/")
    if not bucket or not key:
        return None
    config = _store_config(res.options, bucket)
    if config is None:
        return None
    try:
        import obstore  # noqa: F401
        from obstore.store import S3Store
    except ImportError:
        return None
    cache_key = (os.getpid(), bucket, tuple(sorted((k, str(v)) for k, v in config.items())))
    with _LOCK:
        store = _STORES.get(cache_key)
        if store is None:
            client = config.pop("client_options")
            store = S3Store(
                bucket,
                client_options=client,
                retry_config={"max_retries": 2, "retry_timeout": dt.timedelta(seconds=30)},
                **config,
            )
            if len(_STORES) >= 16:
                _STORES.pop(next(iter(_STORES)))
            _STORES[cache_key] = store
    return ObjectReader(store, key)


def _store_config(options: dict[str, Any], bucket: str = "") -> dict[str, Any] | None:
    """obstore settings equal to these s3fs options, or None when there are none."""
    if set(options) - _KNOWN:
        return None
    if not str(options.get("endpoint_url") or "").startswith("http://") and _private_ca():
        return None  # a certificate authority botocore is told about and obstore is not
    client_kwargs = dict(options.get("client_kwargs") or {})
    region = client_kwargs.pop("region_name", None) or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if client_kwargs:
        return None
    config_kwargs = dict(options.get("config_kwargs") or {})
    if set(config_kwargs) - _CONFIG:
        return None
    style = (config_kwargs.get("s3") or {}).get("addressing_style")
    if set(config_kwargs.get("s3") or {}) - {"addressing_style"}:
        return None
    endpoint = options.get("endpoint_url")
    if not endpoint and not region:
        return None  # s3fs finds a bucket's region; obstore would sign for the wrong one
    out: dict[str, Any] = {"region": region or "us-east-1"}
    if options.get("anon"):
        out["skip_signature"] = True
    elif options.get("key") and options.get("secret"):
        out["skip_signature"] = False  # whatever AWS_SKIP_SIGNATURE says: these keys sign
        out["access_key_id"] = str(options["key"])
        out["secret_access_key"] = str(options["secret"])
        if options.get("token"):
            out["session_token"] = str(options["token"])
        elif os.environ.get("AWS_SESSION_TOKEN") or os.environ.get("AWS_SECURITY_TOKEN"):
            return None  # obstore would add the environment's token to these keys
    else:
        return None  # credentials from files, profiles or instance roles: botocore finds them
    client: dict[str, Any] = {}
    if endpoint:
        out["endpoint"] = str(endpoint)
        client["allow_http"] = str(endpoint).startswith("http://")
        out["virtual_hosted_style_request"] = style == "virtual"
    else:
        # AWS itself: virtual-hosted addressing as botocore uses it, except where botocore
        # falls back to paths (names with dots, which TLS certificates do not cover).
        out["virtual_hosted_style_request"] = style != "path" and "." not in bucket
    if config_kwargs.get("connect_timeout") is not None:
        client["connect_timeout"] = f"{float(config_kwargs['connect_timeout']):g}s"
    if config_kwargs.get("read_timeout") is not None:
        client["timeout"] = f"{float(config_kwargs['read_timeout']):g}s"
    out["client_options"] = client
    return out


def _private_ca() -> bool:
    """Whether botocore is pointed at a CA bundle other than the system's (obstore trusts the
    system's certificates only)."""
    system = {
        os.path.realpath(p)
        for p in (os.environ.get("SSL_CERT_FILE") or "", "/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")
        if p
    }
    return any(
        os.environ.get(name) and os.path.realpath(os.environ[name]) not in system for name in _CA_BUNDLES
    )


def _builtin(exc: BaseException) -> BaseException:
    """An obstore error as the built-in exception that means the same (obstore raises some
    built-ins itself: those are kept, their first line only)."""
    name = type(exc).__name__
    text = (str(exc).strip().splitlines() or [name])[0][:300]
    if isinstance(exc, FileNotFoundError) or name == "NotFoundError" or " 404 " in text:
        return FileNotFoundError(text)
    if isinstance(exc, PermissionError) or name in ("PermissionDeniedError", "UnauthenticatedError") or any(
        f" {code} " in text for code in ("401", "403")
    ):
        return PermissionError(text)
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return ConnectionError(text)
    lowered = text.lower()
    if any(w in lowered for w in ("error sending request", "connect", "dns error", "timed out", "timeout")):
        return ConnectionError(text)
    return OSError(text)
