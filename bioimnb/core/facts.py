"""Image facts (what an image holds, from headers only) and ``scan``: facts for every image and
file under a folder or prefix.

:class:`ImageFacts` is small and serialisable: format, reader, bytes on storage, file count,
scenes (shaped as in ``bioimnb info --json``), NGFF version, the incomplete flag, acquisition
date, instrument and objective where the metadata says, and ``error`` when the image cannot be
opened.  Browse, DMP snippets, metadata completeness and transfer manifests all read it.

``scan`` walks a tree (:func:`bioimnb.core.locations.walk`), classifies every entry
(:mod:`bioimnb.core.classify`), and opens images on a small thread pool with a bounded number in
flight, so memory does not grow with the tree.  Facts are cached by (path, size, mtime or ETag)
in a SQLite file, so a re-scan of an unchanged tree opens nothing again.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import sqlite3
import threading
import time
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from .classify import ZARR_MARKERS, ZARR_METADATA_NAMES, Classified
from .errors import BioimnbError
from .jobs import Executor
from .version import VERSION

__all__ = ["FactsCache", "ImageFacts", "Scan", "ScanProgress", "image_facts", "scan"]

CACHE_SCHEMA = 1


@dataclass
class ImageFacts:
    path: str
    """As the listing gives it: a full path or URL, or root-relative under a root."""
    kind: str
    """``image``, ``file`` (folders are walked, not reported)."""
    format: str | None = None
    reader: str | None = None
    bytes: int | None = None
    """Bytes on storage (all files of the image)."""
    files: int | None = None
    """How many files the image is made of (1 for a single file)."""
    incomplete: bool = False
    error: str | None = None
    scenes: list[dict[str, Any]] | None = None
    """For images: per scene as ``bioimnb info --json`` gives it."""
    ngff_version: str | None = None
    acquired: str | None = None
    """Acquisition date (ISO 8601) of the first scene that states one."""
    instrument: str | None = None
    objective: str | None = None
    modified: str | None = None
    """Last modification (ISO 8601, UTC) as the storage lists it; for an image made of many
    files (OME-Zarr), its oldest file.  None when the storage gives none."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.kind != "image":
            for key in ("scenes", "ngff_version", "acquired", "instrument", "objective"):
                data.pop(key)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageFacts:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class ScanProgress:
    entries: int = 0
    images: int = 0
    files: int = 0
    bytes: int = 0
    errors: int = 0
    cached: int = 0
    started: float = field(default_factory=time.perf_counter)

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started

    def summary(self) -> dict[str, Any]:
        return {
            "images": self.images,
            "files": self.files,
            "bytes": self.bytes,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
        }


# --------------------------------------------------------------------------------------------
# Facts of one image
# --------------------------------------------------------------------------------------------


def _tag(el: ET.Element) -> str:
    return el.tag.rsplit("}", 1)[-1]


def ome_acquisition(xml: str | bytes | None, source: object) -> dict[str, str | None]:
    """Acquisition date, instrument and objective of the first image in OME-XML (safe parsing;
    None where the document is silent or unreadable).  The instrument and objective are those
    the image refers to (``InstrumentRef``, ``ObjectiveSettings``); without a reference, the
    document's first."""
    out: dict[str, str | None] = {"acquired": None, "instrument": None, "objective": None}
    if not xml:
        return out
    from .metadata.ome import check_xml

    try:
        root = ET.fromstring(check_xml(xml, source))
    except (BioimnbError, ET.ParseError):
        return out
    by_id: dict[tuple[str, str], ET.Element] = {}
    firsts: dict[str, ET.Element] = {}
    image: ET.Element | None = None
    for el in root.iter():
        name = _tag(el)
        if name in ("Instrument", "Objective", "Microscope"):
            firsts.setdefault(name, el)
            if el.get("ID"):
                by_id.setdefault((name, el.get("ID") or ""), el)
        elif name == "Image" and image is None:
            image = el
    instrument = objective = None
    if image is not None:
        for el in image:
            name = _tag(el)
            if name == "AcquisitionDate" and (el.text or "").strip():
                out["acquired"] = (el.text or "").strip()
            elif name == "InstrumentRef":
                instrument = by_id.get(("Instrument", el.get("ID") or ""))
            elif name == "ObjectiveSettings":
                objective = by_id.get(("Objective", el.get("ID") or ""))
    if out["acquired"] is None:
        for el in root.iter():
            if _tag(el) == "AcquisitionDate" and (el.text or "").strip():
                out["acquired"] = (el.text or "").strip()
                break
    microscope = None
    if instrument is not None:
        microscope = next((el for el in instrument if _tag(el) == "Microscope"), None)
    microscope = microscope if microscope is not None else firsts.get("Microscope")
    if microscope is not None:
        text = " ".join(w for w in (microscope.get("Manufacturer"), microscope.get("Model")) if w)
        out["instrument"] = text or None
    objective = objective if objective is not None else firsts.get("Objective")
    if objective is not None:
        parts = [objective.get("Manufacturer"), objective.get("Model")]
        mag, na = _number(objective.get("NominalMagnification")), _number(objective.get("LensNA"))
        if mag is not None:
            parts.append(f"{mag:g}x")
        if na is not None:
            parts.append(f"NA {na:g}")
        out["objective"] = " ".join(p for p in parts if p) or None
    return out


def _number(text: str | None) -> float | None:
    """A finite number from an attribute, None when it is not one (hostile or broken XML)."""
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def _facts_task(
    source: str, root: str | None, shown: str, found: Classified | None, storage_options: dict[str, Any]
) -> ImageFacts:
    """:func:`image_facts` as a picklable job task (for a Dask cluster)."""
    return image_facts(source, root=root, shown=shown, found=found, **storage_options)


def image_facts(
    source: str,
    *,
    root: str | None = None,
    shown: str | None = None,
    found: Classified | None = None,
    **storage_options: Any,
) -> ImageFacts:
    """Facts of one image, from its headers (never pixels).  Errors become ``error``.
    ``found``: the source's classification when the caller has it (a listing did it)."""
    from .classify import classify_resolved
    from .images import open_resolved
    from .storage import resolve

    path = shown or source
    try:
        res = resolve(source, root=root, **storage_options)
        if found is None:
            found = classify_resolved(res)
    except BioimnbError as exc:
        return ImageFacts(path, "file", error=exc.reason)
    if found.kind != "image":
        return ImageFacts(path, found.kind, bytes=found.size, files=1, error=found.error)
    facts = ImageFacts(
        path,
        "image",
        found.format,
        found.reader,
        found.size,
        found.files or 1,
        found.incomplete,
        found.error,
        ngff_version=found.ngff_version,
    )
    if found.error:
        return facts
    if found.is_dir and _object_store(res):
        # A zarr in an object store is listed first (its size and age need it anyway): opening
        # it then asks for no metadata document the listing shows absent (an S3 listing is
        # complete, unlike HTTP's), nor for those the classification read.
        listing = _store_listing(source, storage_options)
        facts.bytes, facts.files = listing.bytes, listing.files
        facts.modified = iso_time(listing.oldest)
        keys = listing.metadata_keys
        if keys is not None and not keys & set(ZARR_MARKERS):
            keys = None  # the listing does not show what the classification read: trust neither
        res = replace(res, prefetched=found.documents, listed=keys)
    try:
        with open_resolved(res, found=found) as img:
            fill_from_image(facts, img, source)
    except BioimnbError as exc:
        facts.error = exc.reason
    except Exception as exc:  # noqa: BLE001 - a scan reports every unreadable file and goes on
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        facts.error = f"cannot be read ({type(exc).__name__}: {first[:200]})"
    if facts.error and not found.sniffed:
        # Classified by name only: the content-based classification says best what is wrong.
        try:
            precise = classify_resolved(res)
        except BioimnbError:
            precise = None
        if precise is not None and precise.error:
            facts.error = precise.error
    if found.is_dir and facts.bytes is None:
        listing = _store_listing(source, storage_options)
        facts.bytes, facts.files = listing.bytes, listing.files
        facts.modified = facts.modified or iso_time(listing.oldest)
    return facts


def _object_store(res: Any) -> bool:
    protocol = getattr(res.fs, "protocol", ())
    return bool({"s3", "s3a", "gs", "gcs", "az", "abfs"} & set((protocol,) if isinstance(protocol, str) else protocol))


def iso_time(seconds: float | None) -> str | None:
    """POSIX seconds as the ISO 8601 UTC text facts keep (None stays None)."""
    if seconds is None:
        return None
    try:
        return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return None


def fill_from_image(facts: ImageFacts, img: Any, source: object) -> ImageFacts:
    """Complete ``facts`` from an opened image's headers (scenes, format, files, acquisition):
    for callers that have the image open already (a browser making its thumbnail)."""
    info = img.describe()
    facts.format = img.format
    facts.reader = img.reader
    facts.scenes = info["scenes"]
    facts.incomplete = bool(info.get("incomplete")) or facts.incomplete
    facts.ngff_version = info.get("ngff_version") or facts.ngff_version
    files = img.files
    if len(files) > 1:
        facts.files = len(files)
        facts.bytes = _sizes(files, facts.bytes)
    facts.__dict__.update(ome_acquisition(img.ome_xml, source))
    return facts


def _sizes(files: list[str], fallback: int | None) -> int | None:
    total = 0
    for f in files:
        try:
            total += os.path.getsize(f) if os.path.isfile(f) else _store_listing(f, {}).bytes or 0
        except OSError:
            return fallback
    return total


@dataclass(frozen=True)
class _Listing:
    bytes: int | None = None
    files: int | None = None
    oldest: float | None = None
    """The oldest file's modification time (POSIX seconds)."""
    metadata_keys: frozenset[str] | None = None
    """Keys (relative to the store) of every zarr metadata document in it."""


def _store_listing(source: str, storage_options: dict[str, Any]) -> _Listing:
    """Size, file count, oldest modification and metadata documents of a folder store (a zarr),
    by listing it: no file is read.  Unknown (all None) when it cannot be listed."""
    from .objects import object_reader
    from .storage import resolve

    try:
        res = resolve(source, **storage_options)
        oldest: float | None = None
        total = count = 0
        if res.local:
            stack = [res.path]
            while stack:
                with os.scandir(stack.pop()) as it:
                    for de in it:
                        if de.is_dir(follow_symlinks=False):
                            stack.append(de.path)
                        elif de.is_file(follow_symlinks=False):
                            st = de.stat(follow_symlinks=False)
                            total += st.st_size
                            count += 1
                            oldest = st.st_mtime if oldest is None else min(oldest, st.st_mtime)
            return _Listing(total, count, oldest)
        top = res.path.rstrip("/") + "/"
        keys = set()
        fast = object_reader(res)
        if fast is not None:
            bucket = res.path.split("/", 1)[0]
            for key, size, when in fast.below():
                total += size
                count += 1
                if when is not None:
                    oldest = when if oldest is None else min(oldest, when)
                path = f"{bucket}/{key}"
                if path.rsplit("/", 1)[-1] in ZARR_METADATA_NAMES and path.startswith(top):
                    keys.add(path[len(top) :])
            return _Listing(total, count, oldest, frozenset(keys))
        for path, info in res.fs.find(res.path, withdirs=False, detail=True).items():
            total += int(info.get("size") or 0)
            count += 1
            when = _seconds(info.get("LastModified") or info.get("mtime") or info.get("last_modified"))
            if when is not None:
                oldest = when if oldest is None else min(oldest, when)
            if path.rsplit("/", 1)[-1] in ZARR_METADATA_NAMES and path.startswith(top):
                keys.add(path[len(top) :])
        return _Listing(total, count, oldest, frozenset(keys))
    except Exception:  # noqa: BLE001 - unknown rather than wrong
        return _Listing()


def _seconds(value: Any) -> float | None:
    """POSIX seconds of a listing's modification time (a datetime, seconds, or ISO text)."""
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return _seconds(dt.datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


# --------------------------------------------------------------------------------------------
# The cache
# --------------------------------------------------------------------------------------------


def default_cache_path() -> Path:
    base = os.environ.get("BIOIMNB_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "bioimnb"
    )
    return Path(base) / "facts.sqlite"


class FactsCache:
    """Facts by (path, stamp): the stamp is size + mtime (local) or size + ETag (object stores);
    a changed file gets a new stamp and is opened again.  Thread-safe; one SQLite file."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=10)
        with self._lock, self._db:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS facts (path TEXT PRIMARY KEY, stamp TEXT, facts TEXT)"
            )
        self._pending: list[tuple[str, str, str]] = []

    @staticmethod
    def _version_stamp(stamp: str) -> str:
        return f"{CACHE_SCHEMA}:{VERSION}:{stamp}"

    def get(self, path: str, stamp: str) -> ImageFacts | None:
        with self._lock:
            row = self._db.execute("SELECT stamp, facts FROM facts WHERE path = ?", (path,)).fetchone()
        if row is None or row[0] != self._version_stamp(stamp):
            return None
        return ImageFacts.from_dict(json.loads(row[1]))

    def put(self, path: str, stamp: str, facts: ImageFacts) -> None:
        with self._lock:
            self._pending.append((path, self._version_stamp(stamp), json.dumps(asdict(facts))))
            if len(self._pending) >= 500:
                self._flush()

    def _flush(self) -> None:
        if self._pending:
            with self._db:
                self._db.executemany("INSERT OR REPLACE INTO facts VALUES (?, ?, ?)", self._pending)
            self._pending.clear()

    def close(self) -> None:
        with self._lock:
            self._flush()
            self._db.close()


# --------------------------------------------------------------------------------------------
# scan
# --------------------------------------------------------------------------------------------


class Scan:
    """An iteration over :class:`ImageFacts`; :attr:`progress` holds the counts so far (its
    :meth:`ScanProgress.summary` is the last line of ``bioimnb scan``)."""

    def __init__(self, run: Callable[[ScanProgress], Iterator[ImageFacts]]) -> None:
        self.progress = ScanProgress()
        self._it = run(self.progress)

    def __iter__(self) -> Iterator[ImageFacts]:
        return self._it

    def __next__(self) -> ImageFacts:
        return next(self._it)

    def summary(self) -> dict[str, Any]:
        return self.progress.summary()


def scan(
    url: str | os.PathLike[str] = ".",
    *,
    recursive: bool = True,
    root: str | os.PathLike[str] | None = None,
    progress: Callable[[ScanProgress], None] | None = None,
    workers: int | None = None,
    cache: bool | str | os.PathLike[str] = True,
    show_hidden: bool = False,
    scheduler: Any = None,
    cancel: Any = None,
    **storage_options: Any,
) -> Scan:
    """Facts for every image and file under ``url`` (a folder, bucket or prefix).

    Images are opened for their headers on ``workers`` threads (default 4 for local folders,
    16 for object stores and HTTP), at most ``2 * workers`` at a time; results come in walk order.  Unreadable files are entries with ``error``, never an
    exception.  ``cache``: True (the user cache file), a path to a cache file, or False.
    ``scheduler`` runs the opening elsewhere (a ``dask.distributed`` address or client, as for
    convert; default: local threads).  ``cancel`` (a ``threading.Event``) stops the walk: what
    is in flight is still reported.
    ``progress`` is called with a :class:`ScanProgress` after each entry.  The returned
    :class:`Scan` iterates; its :meth:`Scan.summary` gives the totals (``bioimnb scan`` prints it).
    """
    return Scan(
        lambda state: _scan(
            state, url, recursive, root, progress, workers, cache, show_hidden, scheduler, cancel, storage_options
        )
    )


def _scan(
    state: ScanProgress,
    url: str | os.PathLike[str],
    recursive: bool,
    root: str | os.PathLike[str] | None,
    progress: Callable[[ScanProgress], None] | None,
    workers: int | None,
    cache: bool | str | os.PathLike[str],
    show_hidden: bool,
    scheduler: Any,
    cancel: Any,
    storage_options: dict[str, Any],
) -> Iterator[ImageFacts]:
    from .locations import walk

    store: FactsCache | None = None
    if cache:
        store = FactsCache(None if cache is True else cache)
    state.started = time.perf_counter()
    root_text = None if root is None else os.fspath(root)
    pending: deque[tuple[Any, Any, str | None]] = deque()
    if workers is None:
        # Opening headers is mostly waiting on object stores and HTTP, mostly CPU locally.
        workers = 4 if "://" not in os.fspath(url) or os.fspath(url).startswith("file://") else 16
    executor = Executor(scheduler, workers=max(1, workers), name="bioimnb-scan")

    def finish(entry: Any, result: Any, stamp: str | None) -> ImageFacts:
        opened = not isinstance(result, ImageFacts)
        facts: ImageFacts = result.result() if opened else result
        if facts.modified is None and entry.modified is not None:
            facts.modified = iso_time(entry.modified)
        if store is not None and stamp is not None and opened:
            store.put(entry.path, stamp, facts)
        state.entries += 1
        if facts.kind == "image":
            state.images += 1
        else:
            state.files += 1
        state.bytes += facts.bytes or 0
        state.errors += 1 if facts.error else 0
        if progress is not None:
            progress(state)
        return facts

    try:
        remote = "://" in os.fspath(url) and not os.fspath(url).startswith("file://")
        for entry, source, stamp in walk(
            url,
            recursive=recursive,
            root=root,
            show_hidden=show_hidden,
            stamps=True,
            sniff=not remote,  # remote: no request per file for its first bytes; opening tells
            **storage_options,
        ):
            if cancel is not None and cancel.is_set():
                break
            if entry.kind == "folder":
                continue
            result: Any
            if entry.kind != "image" or source is None:
                result = ImageFacts(
                    entry.path, "file", bytes=entry.size, files=1, error=entry.error, modified=iso_time(entry.modified)
                )
            else:
                hit = store.get(entry.path, stamp) if store is not None and stamp is not None else None
                if hit is not None:
                    state.cached += 1
                    result = hit
                else:
                    result = executor.submit(_facts_task, source, root_text, entry.path, entry.found, storage_options)
            pending.append((entry, result, stamp))
            window = 2 * executor.workers
            while len(pending) > window or (pending and isinstance(pending[0][1], ImageFacts)):
                yield finish(*pending.popleft())
        while pending:
            yield finish(*pending.popleft())
    finally:
        for _, result, _ in pending:
            if not isinstance(result, ImageFacts):
                result.cancel()
        executor.close(cancel=True)
        if store is not None:
            store.close()
