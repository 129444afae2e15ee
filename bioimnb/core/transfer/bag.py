"""BagIt 1.0 bags (RFC 8493) written by a transfer: ``bagit.txt``, ``bag-info.txt``, the payload
under ``data/``, ``manifest-sha256.txt`` and ``tagmanifest-sha256.txt``.

The tag files are written here rather than by bagit-python's ``make_bag``: ``make_bag`` turns a
local folder into a bag in place (it moves the files into ``data/`` and reads every one of them
again to hash it), while a transfer already holds each payload file's SHA-256 from the stream
that copied it, and may be writing to an object store, where nothing can be moved in place.  The
four tag files are a few lines of text; the tests validate the result with bagit-python.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
from typing import Any

from ..storage import Resolved, storage_errors
from ..version import VERSION
from .checksums import encode_path

__all__ = ["BAGIT_TXT", "TAG_FILES", "write_bag"]

BAGIT_TXT = "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
TAG_FILES = ("bagit.txt", "bag-info.txt", "manifest-sha256.txt", "tagmanifest-sha256.txt")


def manifest_text(entries: dict[str, str], prefix: str = "") -> str:
    """``<sha256>  <prefix><path>`` lines, sorted by path, BagIt-encoded."""
    return "".join(f"{digest}  {encode_path(prefix + rel)}\n" for rel, digest in sorted(entries.items()))


def bag_files(entries: dict[str, tuple[str, int]], *, extra_info: dict[str, str] | None = None) -> dict[str, bytes]:
    """The tag files of a bag whose payload is ``{relative path: (sha256, size)}``."""
    total = sum(size for _, size in entries.values())
    info = {
        "Bag-Software-Agent": f"bioimnb {VERSION}",
        "Bagging-Date": _dt.datetime.now(_dt.UTC).date().isoformat(),
        "Payload-Oxum": f"{total}.{len(entries)}",
        **(extra_info or {}),
    }
    files = {
        "bagit.txt": BAGIT_TXT.encode(),
        "bag-info.txt": "".join(f"{k}: {v}\n" for k, v in info.items()).encode(),
        "manifest-sha256.txt": manifest_text({rel: d for rel, (d, _) in entries.items()}, "data/").encode(),
    }
    tags = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    files["tagmanifest-sha256.txt"] = manifest_text(tags).encode()
    return files


def write_bag(dst: Resolved, top: str, entries: dict[str, tuple[str, int]], *, extra_info: dict[str, str] | None = None) -> None:
    """Write the tag files of a bag at ``top`` (a path on ``dst.fs``); the payload is already
    under ``top/data``.  The tag manifest is written last, so a bag cut short lacks it."""
    files = bag_files(entries, extra_info=extra_info)
    with storage_errors(dst.url):
        for name, data in files.items():
            if dst.local:
                path = os.path.join(top, name)
                tmp = path + ".tmp"
                with open(tmp, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, path)
            else:
                dst.fs.pipe_file(top.rstrip("/") + "/" + name, data)


def read_bag_info(text: str) -> dict[str, Any]:
    """``bag-info.txt`` labels (continuation lines joined); repeated labels keep the last."""
    out: dict[str, Any] = {}
    last = None
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and last is not None:
            out[last] = f"{out[last]} {line.strip()}"
            continue
        label, sep, value = line.partition(":")
        if sep:
            last = label.strip()
            out[last] = value.strip()
    return out
