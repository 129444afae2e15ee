"""Argument definitions shared by the ``bioimnb`` command and the ``%bioim`` magic.

Both front ends accept the same flags for the same subcommands; defining them once here keeps
the contract (the flags scripts rely on) in one place.  No UI imports.
"""

from __future__ import annotations

import argparse
import errno
import os
from typing import Any

__all__ = [
    "add_convert_args",
    "add_storage_args",
    "convert_kwargs",
    "failure_line",
    "scenes_arg",
    "storage_options",
]


def add_storage_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("storage")
    group.add_argument("--endpoint-url", help="S3-compatible endpoint (default: AWS or AWS_ENDPOINT_URL)")
    group.add_argument("--anon", action="store_true", help="anonymous access to public buckets")
    group.add_argument(
        "--storage-option",
        action="append",
        metavar="KEY=VALUE",
        help="extra fsspec storage option (repeatable); credentials are best left to the environment",
    )


def storage_options(args: argparse.Namespace) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    if getattr(args, "endpoint_url", None):
        opts["endpoint_url"] = args.endpoint_url
    if getattr(args, "anon", False):
        opts["anon"] = True
    for item in getattr(args, "storage_option", None) or []:
        key, _, value = item.partition("=")
        parsed: Any = value
        if value.lower() in ("true", "false"):
            parsed = value.lower() == "true"
        opts[key] = parsed
    return opts


def scenes_arg(text: str | None) -> list[int | str] | None:
    if not text:
        return None
    out: list[int | str] = []
    for part in text.split(","):
        part = part.strip()
        if part:
            out.append(int(part) if part.lstrip("-").isdigit() else part)
    return out


def add_convert_args(conv: argparse.ArgumentParser) -> None:
    conv.add_argument("source", help="any image bioimnb reads (path or URL)")
    conv.add_argument("dest", help="output path or URL (e.g. out.ome.zarr, s3://bucket/out.ome.zarr, out.ome.tif)")
    conv.add_argument("--to", choices=["ome-zarr", "ome-tiff"], default=None, help="output format (default: from DEST's extension, else ome-zarr)")
    conv.add_argument("--ngff", choices=["0.4", "0.5"], default="0.5", help="NGFF version (0.5: zarr v3 + sharding; 0.4: zarr v2)")
    conv.add_argument("--scenes", help="comma-separated scene indices or names (default: all)")
    conv.add_argument("--chunks", type=int, default=512, metavar="N", help="chunk (tile) edge in Y and X")
    conv.add_argument("--shards", type=int, default=None, metavar="N", help="shard edge in Y and X (NGFF 0.5; default 8 chunks)")
    conv.add_argument("--compression", choices=["zstd", "blosc-lz4", "zlib", "none"], default=None)
    conv.add_argument("--compression-level", type=int, default=None, metavar="L")
    conv.add_argument("--downsample", choices=["mean", "mode", "nearest"], default="mean", help="mean for intensities, mode/nearest for labels")
    conv.add_argument("--downsample-z", action="store_true", help="also halve Z at each level")
    conv.add_argument("--levels", type=int, default=None, metavar="N", help="pyramid levels (default: until a level fits 256 px)")
    conv.add_argument("--overwrite", action="store_true", help="replace an existing destination")
    conv.add_argument("--resume", action="store_true", help="finish an interrupted conversion, keeping written blocks")
    conv.add_argument("--no-verify", action="store_true", help="skip the level-0 checksum comparison and validation")
    conv.add_argument("--scheduler", default=None, metavar="ADDRESS", help="dask.distributed scheduler address (default: local threads)")
    conv.add_argument("--workers", type=int, default=None, metavar="N", help="local worker threads (default: CPU count)")
    add_storage_args(conv)


def convert_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``bioimnb.convert`` keyword arguments from parsed convert flags (source/dest excluded)."""
    return {
        "to": args.to,
        "ngff": args.ngff,
        "scenes": scenes_arg(args.scenes),
        "chunks": args.chunks,
        "shards": args.shards,
        "compression": args.compression,
        "compression_level": args.compression_level,
        "downsample": args.downsample,
        "levels": args.levels,
        "downsample_z": args.downsample_z,
        "overwrite": args.overwrite,
        "resume": args.resume,
        "verify": not args.no_verify,
        "scheduler": args.scheduler,
        "workers": args.workers,
        **storage_options(args),
    }


_WRITE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EROFS, errno.EDQUOT}


def failure_line(exc: BaseException, source: object = None, dest: object = None) -> str:
    """``"<source>: <reason>"``, one line, for any exception a subcommand raised.

    The last resort of both front ends: a :class:`~bioimnb.core.errors.BioimnbError` is its own
    line; an ``OSError`` names its file and the system's reason (a full disk, a symbolic link
    loop, a folder that cannot be created); ``MemoryError`` says so; anything else a reader
    raised is "cannot be read" naming ``source`` (the image or URL the command was given).  An
    ``OSError`` without a file name is named after ``dest`` when it is a writing error (a full
    disk, a file too large, a read-only file system) and a ``dest`` is given.  Credentials in URLs are never shown.
    """
    from .core.errors import BioimnbError, display_source

    if isinstance(exc, BioimnbError):
        return str(exc)
    shown = display_source(source) if source is not None else "bioimnb"
    if isinstance(exc, MemoryError):
        reason = "not enough memory (the image declares more data than this machine can hold)"
    elif isinstance(exc, OSError) and (exc.strerror or exc.filename):
        if exc.filename is not None:
            shown = display_source(os.fsdecode(exc.filename))
        elif dest is not None and exc.errno in _WRITE_ERRNOS:
            shown = display_source(dest)
        reason = exc.strerror or _first_line(exc)
        if exc.filename2 is not None:
            reason = f"{reason} ({display_source(os.fsdecode(exc.filename2))})"
    else:
        reason = f"cannot be read: {type(exc).__name__}: {_first_line(exc)}"
    return " ".join(f"{shown}: {reason}".split())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
