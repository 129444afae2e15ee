"""Resource limits of the whole process, in one place: what one decode may produce, what a
metadata document may weigh, how much all caches together may hold, how long one read may take.

Every reader, cache and route asks here; nothing else hard-codes a budget.  Each limit can be
set with an environment variable (bytes or seconds, read when this module is first imported)
or changed at run time with :func:`configure` (a server sets them from its own config).

Defaults are sized for a shared JupyterHub user server of a few GiB:

``BIOIMNB_MEMORY_BUDGET``      all caches of the process together (tiles, virtual levels): 512 MiB
``BIOIMNB_MAX_DECODE_BYTES``   one chunk, tile or strip decoded into memory: 256 MiB
``BIOIMNB_MAX_METADATA_BYTES`` one metadata document (zarr.json, .zattrs, OME-XML): 64 MiB
``BIOIMNB_READ_TIMEOUT``       one blocking read of a local file before it is abandoned: 30 s
``BIOIMNB_MAX_CHUNKS_PER_REQUEST``  storage chunks one tile or region request may touch: 4096
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace

__all__ = ["Limits", "configure", "limits"]


@dataclass(frozen=True)
class Limits:
    memory_budget: int = 512 * 2**20
    max_decode_bytes: int = 256 * 2**20
    max_metadata_bytes: int = 64 * 2**20
    read_timeout: float = 30.0
    max_chunks_per_request: int = 4096


_ENV = {
    "memory_budget": "BIOIMNB_MEMORY_BUDGET",
    "max_decode_bytes": "BIOIMNB_MAX_DECODE_BYTES",
    "max_metadata_bytes": "BIOIMNB_MAX_METADATA_BYTES",
    "read_timeout": "BIOIMNB_READ_TIMEOUT",
    "max_chunks_per_request": "BIOIMNB_MAX_CHUNKS_PER_REQUEST",
}


def _from_env() -> Limits:
    values: dict[str, float | int] = {}
    for f in fields(Limits):
        text = os.environ.get(_ENV[f.name], "").strip()
        if not text:
            continue
        try:
            value = float(text)
        except ValueError:
            continue  # a malformed setting keeps the default rather than breaking start-up
        if value > 0:
            values[f.name] = value if f.type in ("float", float) else int(value)
    return Limits(**values)  # type: ignore[arg-type]


_current = _from_env()


def limits() -> Limits:
    """The limits in force now."""
    return _current


def configure(**changes: float | int) -> Limits:
    """Change some limits for the whole process; returns the new limits."""
    global _current
    unknown = set(changes) - {f.name for f in fields(Limits)}
    if unknown:
        raise TypeError(f"unknown limits: {sorted(unknown)}")
    _current = replace(_current, **changes)  # type: ignore[arg-type]
    return _current
