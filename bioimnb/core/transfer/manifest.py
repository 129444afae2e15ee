"""Inventories: ``FOLDER/manifest-sha256.txt`` (BagIt manifest syntax) and its companion
``FOLDER/bioimnb-manifest.json`` (sizes, and for images their format and dimensions).

The data are only read, never moved or modified.  The two files are written atomically (a
temporary name, then a rename) and never list themselves.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import BioimnbError, display_source
from ..jobs import Executor, Progress, Task, run_tasks
from ..storage import Resolved, resolve, storage_errors
from ..version import VERSION
from .bag import manifest_text
from .checksums import Digests
from .plan import Item, fresh, plan

__all__ = ["JSON_NAME", "MANIFEST_NAME", "ManifestReport", "hash_items", "manifest"]

MANIFEST_NAME = "manifest-sha256.txt"
JSON_NAME = "bioimnb-manifest.json"


class NotAFolder(BioimnbError, NotADirectoryError):
    """A manifest or a fixity check was asked of something that is not a folder."""


@dataclass
class ManifestReport:
    folder: str
    files: int = 0
    bytes: int = 0
    created: str = ""
    seconds: float = 0.0
    entries: list[dict[str, Any]] = field(default_factory=list, repr=False)
    images: list[dict[str, Any]] = field(default_factory=list, repr=False)
    failures: list[dict[str, str]] = field(default_factory=list)
    written: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def document(self) -> dict[str, Any]:
        """The companion JSON, as written."""
        return {
            "created": self.created,
            "tool": f"bioimnb {VERSION}",
            "algorithm": "sha256",
            "files": self.files,
            "bytes": self.bytes,
            "entries": self.entries,
            "images": self.images,
        }

    def to_dict(self) -> dict[str, Any]:
        out = self.document()
        out.pop("entries")
        return {
            "folder": self.folder,
            **out,
            "written": self.written,
            "failures": self.failures,
            "seconds": round(self.seconds, 3),
        }

    def summary(self) -> str:
        head = f"{self.files} files, {self.bytes / 2**20:.1f} MiB, {len(self.images)} images: {', '.join(self.written)}"
        return "\n".join([head] + [f"  {f['path']}: {f['reason']}" for f in self.failures])


def _hash_item(res: Resolved, item: Item) -> tuple[Item, str | None, int, str | None]:
    """(item, sha256, size, error reason)."""
    from .checksums import block_size

    d = Digests()
    block = block_size()
    try:
        with storage_errors(item.rel):
            if res.local:
                from ..storage import open_confined

                fh: Any = open_confined(item.path, None, item.rel)
            else:
                fh = res.fs.open(item.path, "rb", block_size=block)
            with fh:
                while True:
                    data = fh.read(block)
                    if not data:
                        break
                    d.update(data)
    except BioimnbError as exc:
        return item, None, 0, exc.reason
    except OSError as exc:
        return item, None, 0, " ".join((exc.strerror or str(exc) or type(exc).__name__).split())
    return item, d.sha256, d.size, None


def hash_items(
    res: Resolved,
    items: list[Item],
    *,
    workers: int | None = None,
    progress: Callable[[Progress], None] | None = None,
    cancel: Any = None,
    phase: str = "hash",
) -> dict[str, tuple[str | None, int, str | None]]:
    """``{rel: (sha256, size, error)}`` for every item, hashed on a few threads."""
    out: dict[str, tuple[str | None, int, str | None]] = {}
    start = time.monotonic()
    done = 0
    nbytes = 0
    with Executor(None, workers or (4 if res.local else 8), name="bioimnb-hash") as ex:
        tasks = (Task(i.rel, _hash_item, (res, i)) for i in items)
        for _task, (item, digest, size, error) in run_tasks(ex, tasks, cancel=cancel):
            out[item.rel] = (digest, size, error)
            done += 1
            nbytes += size
            if progress is not None:
                progress(Progress(phase, done, len(items), nbytes, time.monotonic() - start))
    if cancel is not None and cancel.is_set():
        from .copy import TransferCancelled

        raise TransferCancelled(res.url, "cancelled")
    return out


def _image_facts(folder: str, storage_options: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{path as the scan gives it: facts dict}`` for every image below ``folder``."""
    from ..facts import scan

    out: dict[str, dict[str, Any]] = {}
    for facts in scan(folder, recursive=True, **storage_options):
        if facts.kind == "image":
            out[facts.path] = facts.to_dict()
    return out


def _rel_of(res: Resolved, path: str) -> str:
    if res.local:
        return os.path.relpath(path, res.path).replace(os.sep, "/")
    if "://" in path:
        path = str(res.fs._strip_protocol(path))
    return path[len(res.path.rstrip("/")) :].lstrip("/")


def _write(res: Resolved, name: str, data: bytes) -> str:
    with storage_errors(res.url):
        if res.local:
            path = os.path.join(res.path, name)
            tmp = os.path.join(res.path, f".{name}.tmp")
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
            return path
        path = res.path.rstrip("/") + "/" + name
        res.fs.pipe_file(path, data)
        return path


def manifest(
    folder: str | os.PathLike[str],
    *,
    workers: int | None = None,
    progress: Callable[[Progress], None] | None = None,
    cancel: Any = None,
    images: bool = True,
    **storage_options: Any,
) -> ManifestReport:
    """Write ``FOLDER/manifest-sha256.txt`` and ``FOLDER/bioimnb-manifest.json`` for every file
    below ``folder`` (a local folder or a prefix of an object store); returns a
    :class:`ManifestReport`.  ``images=False`` skips the image facts (format, shape, dims), which
    the scan reads from the images' headers."""
    start = time.perf_counter()
    res = fresh(resolve(folder, **storage_options))
    kind, items = plan(res, exclude_own=True, **storage_options)
    if kind == "file":
        raise NotAFolder(res.url, "not a folder; a manifest describes a folder")
    hashed = hash_items(res, items, workers=workers, progress=progress, cancel=cancel, phase="manifest")
    report = ManifestReport(display_source(res.url))
    facts = _image_facts(res.url if not res.local else res.path, storage_options) if images else {}
    by_rel = {_rel_of(res, path): f for path, f in facts.items()}
    digests: dict[str, str] = {}
    for item in items:
        digest, size, error = hashed[item.rel]
        if digest is None:
            report.failures.append({"path": item.rel, "reason": error or "cannot be read"})
            continue
        digests[item.rel] = digest
        entry: dict[str, Any] = {"path": item.rel, "size": size, "sha256": digest}
        f = by_rel.get(item.rel)
        if f is not None:
            entry.update(_image_fields(f))
        report.entries.append(entry)
        report.files += 1
        report.bytes += size
    for rel, f in sorted(by_rel.items()):
        report.images.append({"path": rel or ".", **_image_fields(f), "bytes": f.get("bytes"), "files": f.get("files")})
    report.created = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    report.written = [
        _write(res, MANIFEST_NAME, manifest_text(digests).encode()),
        _write(res, JSON_NAME, (json.dumps(report.document(), indent=1, ensure_ascii=False) + "\n").encode()),
    ]
    report.seconds = time.perf_counter() - start
    return report


def _image_fields(f: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"format": f.get("format")}
    scenes = f.get("scenes") or []
    if scenes:
        out["shape"] = scenes[0].get("shape")
        out["dims"] = scenes[0].get("axes")
        if len(scenes) > 1:
            out["scenes"] = len(scenes)
    if f.get("error"):
        out["error"] = f["error"]
    return out
