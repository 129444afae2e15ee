"""Writable zarr stores and small-object I/O for conversion outputs (local or any fsspec URL)."""

from __future__ import annotations

from typing import Any

from ..storage import resolve

__all__ = ["open_store"]


def open_store(dest: str, options: dict[str, Any], read_only: bool = False) -> Any:
    from zarr.storage import FsspecStore, LocalStore

    res = resolve(dest, **options)
    if res.local:
        return LocalStore(res.path, read_only=read_only)
    if getattr(res.fs, "async_impl", False):
        return FsspecStore.from_url(res.url, storage_options=res.options, read_only=read_only)
    from fsspec.implementations.asyn_wrapper import AsyncFileSystemWrapper

    return FsspecStore(AsyncFileSystemWrapper(res.fs), read_only=read_only, path=res.path)
