"""Fixity: re-check a folder against its ``manifest-sha256.txt``, or a BagIt bag against its
manifests, and list what is missing, added or changed."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import BioimnbError, SourceNotFound, display_source
from ..jobs import Progress
from ..storage import Resolved, resolve, storage_errors
from .bag import read_bag_info
from .checksums import parse_manifest
from .manifest import MANIFEST_NAME, NotAFolder, hash_items
from .plan import Item, fresh, plan

__all__ = ["FixityError", "FixityReport", "fixity"]

ALGORITHMS = ("sha512", "sha256", "sha1", "md5")
"""Manifest algorithms a bag may use, strongest first; the strongest present is checked."""


class FixityError(BioimnbError):
    """A fixity check cannot run: no manifest, or one that cannot be read."""


@dataclass
class FixityReport:
    path: str
    kind: str = "manifest"
    """``bag`` or ``manifest``."""
    algorithm: str = "sha256"
    files: int = 0
    """Files listed in the manifest."""
    checked: int = 0
    bytes: int = 0
    missing: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unreadable: list[dict[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """Bag-level findings (a tag file changed, a wrong Payload-Oxum)."""
    seconds: float = 0.0

    @property
    def intact(self) -> bool:
        return not (self.missing or self.added or self.changed or self.unreadable or self.problems)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "algorithm": self.algorithm,
            "intact": self.intact,
            "files": self.files,
            "checked": self.checked,
            "bytes": self.bytes,
            "missing": self.missing,
            "added": self.added,
            "changed": self.changed,
            "unreadable": self.unreadable,
            "problems": self.problems,
            "seconds": round(self.seconds, 3),
        }

    def summary(self) -> str:
        state = "intact" if self.intact else "NOT intact"
        head = (
            f"{self.path}: {state} ({self.kind}, {self.algorithm}): {self.checked} of {self.files} files checked, "
            f"{len(self.missing)} missing, {len(self.added)} added, {len(self.changed)} changed"
        )
        lines = [head]
        lines += [f"  missing: {p}" for p in self.missing]
        lines += [f"  added: {p}" for p in self.added]
        lines += [f"  changed: {p}" for p in self.changed]
        lines += [f"  unreadable: {u['path']}: {u['reason']}" for u in self.unreadable]
        lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


def _exists(res: Resolved, path: str) -> bool:
    with storage_errors(res.url):
        return os.path.isfile(path) if res.local else bool(res.fs.isfile(path))


def _read_text(res: Resolved, path: str, shown: str) -> str:
    with storage_errors(shown):
        data = open(path, "rb").read() if res.local else res.fs.cat_file(path)  # noqa: SIM115
    try:
        return bytes(data).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FixityError(shown, "is not UTF-8 text") from None


def _join(res: Resolved, *parts: str) -> str:
    if res.local:
        return os.path.join(res.path, *parts)
    return "/".join([res.path.rstrip("/"), *parts])


def _load(res: Resolved, name: str) -> dict[str, str]:
    shown = display_source(_join(res, name) if res.local else res.url.rstrip("/") + "/" + name)
    text = _read_text(res, _join(res, name), shown)
    try:
        return parse_manifest(text)
    except ValueError as exc:
        raise FixityError(shown, str(exc)) from None


def _hash_with(res: Resolved, items: list[Item], algorithm: str, workers: int | None, progress: Any) -> dict[str, tuple[str | None, int, str | None]]:
    if algorithm == "sha256":
        return hash_items(res, items, workers=workers, progress=progress, phase="fixity")
    import hashlib

    out: dict[str, tuple[str | None, int, str | None]] = {}
    for item in items:
        h = hashlib.new(algorithm)
        size = 0
        try:
            with storage_errors(item.rel):
                fh: Any = open(item.path, "rb") if res.local else res.fs.open(item.path, "rb")  # noqa: SIM115
                with fh:
                    while block := fh.read(2**20):
                        h.update(block)
                        size += len(block)
            out[item.rel] = (h.hexdigest(), size, None)
        except (BioimnbError, OSError) as exc:
            out[item.rel] = (None, 0, getattr(exc, "reason", None) or str(exc))
    return out


def fixity(
    folder_or_bag: str | os.PathLike[str],
    *,
    workers: int | None = None,
    progress: Callable[[Progress], None] | None = None,
    **storage_options: Any,
) -> FixityReport:
    """Re-check a bag (a folder with ``bagit.txt``) or a folder with ``manifest-sha256.txt``;
    returns a :class:`FixityReport` (``.intact``).  Raises :class:`FixityError` when there is
    nothing to check against or the manifest cannot be read."""
    start = time.perf_counter()
    res = fresh(resolve(folder_or_bag, **storage_options))
    with storage_errors(res.url):
        is_dir = os.path.isdir(res.path) if res.local else bool(res.fs.isdir(res.path))
        if not is_dir:
            if (os.path.exists(res.path) if res.local else res.fs.exists(res.path)):
                raise NotAFolder(res.url, "not a folder; fixity checks a folder with a manifest or a bag")
            raise SourceNotFound(res.url, "no such file or directory")
    report = FixityReport(display_source(res.url))
    if _exists(res, _join(res, "bagit.txt")):
        report.kind = "bag"
        algorithm = next((a for a in ALGORITHMS if _exists(res, _join(res, f"manifest-{a}.txt"))), None)
        if algorithm is None:
            raise FixityError(res.url, "a bag without a payload manifest (manifest-<algorithm>.txt)")
        report.algorithm = algorithm
        listed = _load(res, f"manifest-{algorithm}.txt")
        payload: dict[str, str] = {}
        for rel, digest in listed.items():
            if not rel.startswith("data/"):
                report.problems.append(f"manifest-{algorithm}.txt lists {rel}, outside data/")
                continue
            payload[rel[len("data/") :]] = digest
        data = resolve(_join(res, "data") if res.local else res.url.rstrip("/") + "/data", **storage_options)
        present = plan(data, **storage_options)[1] if _exists_dir(data) else []
        _compare(report, data, payload, present, algorithm, workers, progress)
        report.missing = [f"data/{p}" for p in report.missing]
        report.added = [f"data/{p}" for p in report.added]
        report.changed = [f"data/{p}" for p in report.changed]
        for u in report.unreadable:
            u["path"] = f"data/{u['path']}"
        _check_tags(report, res, storage_options)
    elif _exists(res, _join(res, MANIFEST_NAME)):
        listed = _load(res, MANIFEST_NAME)
        present = plan(res, exclude_own=True, **storage_options)[1]
        _compare(report, res, listed, present, "sha256", workers, progress)
    else:
        raise FixityError(res.url, f"neither {MANIFEST_NAME} nor bagit.txt here: nothing to check against (write one with bioimnb manifest)")
    report.seconds = time.perf_counter() - start
    return report


def _exists_dir(res: Resolved) -> bool:
    with storage_errors(res.url):
        return os.path.isdir(res.path) if res.local else bool(res.fs.isdir(res.path))


def _compare(report: FixityReport, res: Resolved, listed: dict[str, str], present: list[Item], algorithm: str, workers: int | None, progress: Any) -> None:
    report.files = len(listed)
    by_rel = {i.rel: i for i in present}
    report.missing = sorted(set(listed) - set(by_rel))
    report.added = sorted(set(by_rel) - set(listed))
    todo = [by_rel[rel] for rel in sorted(set(listed) & set(by_rel))]
    hashed = _hash_with(res, todo, algorithm, workers, progress)
    for item in todo:
        digest, size, error = hashed[item.rel]
        if digest is None:
            report.unreadable.append({"path": item.rel, "reason": error or "cannot be read"})
            continue
        report.checked += 1
        report.bytes += size
        if digest != listed[item.rel]:
            report.changed.append(item.rel)


def _check_tags(report: FixityReport, res: Resolved, storage_options: dict[str, Any]) -> None:
    """Tag manifest entries and Payload-Oxum, as a BagIt validator checks them."""
    import hashlib

    for algorithm in ALGORITHMS:
        name = f"tagmanifest-{algorithm}.txt"
        if not _exists(res, _join(res, name)):
            continue
        for rel, digest in _load(res, name).items():
            path = _join(res, *rel.split("/")) if res.local else _join(res, rel)
            if not _exists(res, path):
                report.problems.append(f"tag file {rel} is missing")
                continue
            with storage_errors(res.url):
                data = open(path, "rb").read() if res.local else res.fs.cat_file(path)  # noqa: SIM115
            if hashlib.new(algorithm, data).hexdigest() != digest:
                report.problems.append(f"tag file {rel} changed ({name})")
    info_path = _join(res, "bag-info.txt")
    if _exists(res, info_path):
        info = read_bag_info(_read_text(res, info_path, display_source(res.url)))
        oxum = str(info.get("Payload-Oxum", ""))
        if oxum and not (report.missing or report.added or report.unreadable):
            total, _, count = oxum.partition(".")
            if count.isdigit() and total.isdigit() and (int(count), int(total)) != (report.checked, report.bytes):
                report.problems.append(f"Payload-Oxum {oxum} differs from the payload ({report.bytes}.{report.checked})")
