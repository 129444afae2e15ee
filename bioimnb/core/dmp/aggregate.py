"""Facts -> numbers: what a data management plan states about the data, measured by a scan.

:func:`gather` scans each folder, bucket or prefix with :func:`bioimnb.core.facts.scan` (headers
only, through the scan's facts cache) and :func:`aggregate` turns the :class:`ImageFacts` into a
:class:`DmpFacts`: counts, bytes, formats (open or proprietary, and the reader that opens them),
dimensions, instruments, the acquisition date range and growth per month, what failed to open,
the metadata completeness and any transfer manifest or BagIt bag found in the data.

Every number of the plan's text comes from a :class:`DmpFacts` field, and the plan's appendix
lists them, so each figure can be traced back to the scan that measured it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import BioimnbError
from ..facts import ImageFacts, scan

__all__ = ["DmpFacts", "FormatStats", "aggregate", "count", "format_info", "gather", "size"]

HERE = Path(__file__).resolve().parent
PYRAMID_FACTOR = 4 / 3
"""Extra bytes of a pyramid whose levels halve X and Y: 1 + 1/4 + 1/16 + ... < 4/3."""

MANIFEST_NAMES = ("bioimnb-manifest.json", "bag-info.txt")


def size(n: float) -> str:
    """Decimal units, as storage is sold and repositories state their limits."""
    for div, unit in ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if n >= div:
            return f"{n / div:,.2f} {unit}"
    return f"{int(n):,} bytes"


def count(n: int, word: str) -> str:
    """``1 image``, ``2 images``, ``1,000 files`` (``word`` in the singular)."""
    if n == 1:
        return f"1 {word}"
    plural = word[:-1] + "ies" if word.endswith("y") else (word if word.endswith("series") else word + "s")
    return f"{n:,} {plural}"


@lru_cache(maxsize=1)
def _modalities() -> dict[str, Any]:
    return dict(json.loads((HERE / "modalities.json").read_text(encoding="utf-8")))


def format_info(name: str) -> dict[str, Any]:
    """Open or proprietary, media type and vendor of a format: the registry decides
    (:func:`bioimnb.core.registry.format_status`)."""
    from ..registry import format_status

    return format_status(name)


@dataclass
class FormatStats:
    name: str
    open: bool
    readers: list[str] = field(default_factory=list)
    images: int = 0
    files: int = 0
    bytes: int = 0
    raw_bytes: int = 0
    """Uncompressed pixel bytes of level 0 (all scenes)."""
    media_type: str | None = None
    vendor: str | None = None


@dataclass
class DmpFacts:
    """The measured facts a plan states.  ``to_dict()`` is JSON (the plan's appendix)."""

    sources: list[str]
    scanned_at: str
    entries: int = 0
    """Scan entries: images (however many files each) and other files."""
    images: int = 0
    """Images that opened."""
    scenes: int = 0
    files: int = 0
    """Files on storage (an OME-Zarr counts every chunk file)."""
    bytes: int = 0
    image_bytes: int = 0
    other_files: int = 0
    other_bytes: int = 0
    formats: dict[str, FormatStats] = field(default_factory=dict)
    open_bytes: int = 0
    proprietary_bytes: int = 0
    open_images: int = 0
    proprietary_images: int = 0
    raw_bytes: int = 0
    dims: dict[str, list[int]] = field(default_factory=dict)
    """Axis (X, Y, Z, C, T) -> [smallest, largest] size over all scenes."""
    time_series: int = 0
    """Images with more than one time point."""
    z_stacks: int = 0
    multichannel: int = 0
    dtypes: dict[str, int] = field(default_factory=dict)
    instruments: dict[str, int] = field(default_factory=dict)
    objectives: dict[str, int] = field(default_factory=dict)
    modalities: dict[str, int] = field(default_factory=dict)
    """From the metadata (instrument names); the answers may add one."""
    acquired_first: str | None = None
    acquired_last: str | None = None
    dated_by_acquisition: int = 0
    dated_by_mtime: int = 0
    growth: dict[str, dict[str, int]] = field(default_factory=dict)
    """``YYYY-MM`` -> {"images", "bytes"}, every month from the first to the last."""
    growth_basis: str = "none"
    """``acquisition dates``, ``file modification times``, ``acquisition dates and file
    modification times`` or ``none``."""
    growth_bytes_per_month: float = 0.0
    failures: list[dict[str, str]] = field(default_factory=list)
    """``{"path", "error"}`` for everything that could not be opened (never fatal)."""
    incomplete: list[str] = field(default_factory=list)
    zarr_estimate: dict[str, Any] = field(default_factory=dict)
    completeness: dict[str, Any] | None = None
    manifests: list[dict[str, Any]] = field(default_factory=list)
    by_source: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    """Location -> format (or ``other files``, ``unreadable``) -> [bytes, count]: the maDMP's
    distributions."""
    scan_seconds: float = 0.0
    cached: int = 0

    @property
    def empty(self) -> bool:
        return self.entries == 0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["formats"] = {k: asdict(v) for k, v in self.formats.items()}
        return out


# --------------------------------------------------------------------------------------------


def _parse_date(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _itemsize(dtype: str | None) -> int:
    import numpy as np

    try:
        return int(np.dtype(str(dtype)).itemsize)
    except TypeError:
        return 1


def _months(first: str, last: str) -> list[str]:
    y, m = int(first[:4]), int(first[5:7])
    out = []
    while f"{y:04d}-{m:02d}" <= last:
        out.append(f"{y:04d}-{m:02d}")
        m += 1
        if m > 12:
            y, m = y + 1, 1
    return out


def aggregate(
    facts: Iterable[ImageFacts],
    *,
    sources: list[str] | None = None,
    mtime: Callable[[ImageFacts], dt.datetime | None] | None = None,
    completeness: dict[str, Any] | Callable[[list[ImageFacts]], dict[str, Any] | None] | None = None,
    manifests: list[dict[str, Any]] | None = None,
    source_of: Callable[[ImageFacts], str] | None = None,
) -> DmpFacts:
    """The plan's numbers from scan facts (any iterable of :class:`ImageFacts`, real or made up).

    ``mtime(facts)`` gives a file's modification time, used for growth when the metadata states
    no acquisition date.  ``completeness``: a summary dict, or a function of the facts list
    returning one (the curation module's ``summarize``).  ``source_of(facts)``: which of
    ``sources`` an entry came from (default: the first).
    """
    out = DmpFacts(sources=list(sources or []), scanned_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    kept: list[ImageFacts] = []
    dims: dict[str, list[int]] = {}
    dtypes: Counter[str] = Counter()
    instruments: Counter[str] = Counter()
    objectives: Counter[str] = Counter()
    modalities: Counter[str] = Counter()
    months: dict[str, dict[str, int]] = {}
    dates: list[dt.datetime] = []
    zarr_raw = zarr_est = zarr_src = 0
    em_words = tuple(_modalities()["electron_microscopy_words"])
    default_source = out.sources[0] if out.sources else "data"
    for s in out.sources:
        out.by_source[s] = {}
    for f in facts:
        kept.append(f)
        out.entries += 1
        size = int(f.bytes or 0)
        nfiles = int(f.files or 1)
        group = "unreadable" if f.error else ("other files" if f.kind != "image" else (f.format or "unknown"))
        slot_b = out.by_source.setdefault(source_of(f) if source_of else default_source, {}).setdefault(group, [0, 0])
        slot_b[0] += size
        slot_b[1] += 1
        out.bytes += size
        out.files += nfiles
        if f.error:
            out.failures.append({"path": f.path, "error": f.error})
        if f.kind != "image" or f.error:
            out.other_files += nfiles if f.kind != "image" else 0
            out.other_bytes += size if f.kind != "image" else 0
            if f.kind == "image":  # an unreadable image still occupies storage
                out.image_bytes += size
            continue
        out.images += 1
        out.image_bytes += size
        if f.incomplete:
            out.incomplete.append(f.path)
        name = f.format or "unknown"
        info = format_info(name)
        st = out.formats.get(name)
        if st is None:
            st = out.formats[name] = FormatStats(name, info["open"], media_type=info["media_type"], vendor=info["vendor"])
        if f.reader and f.reader not in st.readers:
            st.readers.append(f.reader)
        st.images += 1
        st.files += nfiles
        st.bytes += size
        raw = 0
        shapes: list[dict[str, int]] = []
        for scene in f.scenes or []:
            out.scenes += 1
            shape = scene.get("shape") or []
            axes = str(scene.get("axes") or "")
            sizes = dict(zip(axes.upper(), (int(s) for s in shape)))
            shapes.append(sizes)
            count = 1
            for s in shape:
                count *= int(s)
            raw += count * _itemsize(scene.get("dtype"))
            dtypes[str(scene.get("dtype"))] += 1
            for ax in "XYZCT":
                n = sizes.get(ax, 1)
                lo_hi = dims.setdefault(ax, [n, n])
                lo_hi[0], lo_hi[1] = min(lo_hi[0], n), max(lo_hi[1], n)
        st.raw_bytes += raw
        out.raw_bytes += raw
        if any(s.get("T", 1) > 1 for s in shapes):
            out.time_series += 1
        if any(s.get("Z", 1) > 1 for s in shapes):
            out.z_stacks += 1
        if any(s.get("C", 1) > 1 for s in shapes):
            out.multichannel += 1
        if info["open"]:
            out.open_bytes += size
            out.open_images += 1
        else:
            out.proprietary_bytes += size
            out.proprietary_images += 1
            # OME-Zarr estimate (the rule is stated in the plan): uncompressed level-0 pixels x
            # 4/3 for the pyramid x the source's own compression ratio (capped at 1: an
            # uncompressed source is expected to stay about its raw size).
            ratio = min(1.0, size / raw) if raw else 1.0
            zarr_raw += raw
            zarr_est += int(round(raw * PYRAMID_FACTOR * ratio))
            zarr_src += size
        if f.instrument:
            instruments[f.instrument] += 1
        if f.objective:
            objectives[f.objective] += 1
        words = f" {(f.instrument or '')} {(f.objective or '')} ".lower()
        if any(w in words for w in em_words):
            modalities["electron microscopy"] += 1
        when = _parse_date(f.acquired)
        if when is not None:
            out.dated_by_acquisition += 1
        elif mtime is not None:
            when = mtime(f)
            if when is not None:
                out.dated_by_mtime += 1
        if when is not None:
            dates.append(when)
            key = when.strftime("%Y-%m")
            slot = months.setdefault(key, {"images": 0, "bytes": 0})
            slot["images"] += 1
            slot["bytes"] += size
    out.dims = dims
    out.dtypes = dict(dtypes.most_common())
    out.instruments = dict(instruments.most_common())
    out.objectives = dict(objectives.most_common())
    out.modalities = dict(modalities.most_common())
    if dates:
        out.acquired_first = min(dates).date().isoformat()
        out.acquired_last = max(dates).date().isoformat()
        keys = _months(min(months), max(months))
        out.growth = {k: months.get(k, {"images": 0, "bytes": 0}) for k in keys}
        dated_bytes = sum(v["bytes"] for v in months.values())
        out.growth_bytes_per_month = dated_bytes / len(keys)
    if out.dated_by_acquisition and out.dated_by_mtime:
        out.growth_basis = "acquisition dates and file modification times"
    elif out.dated_by_acquisition:
        out.growth_basis = "acquisition dates"
    elif out.dated_by_mtime:
        out.growth_basis = "file modification times"
    out.zarr_estimate = {
        "proprietary_images": out.proprietary_images,
        "source_bytes": zarr_src,
        "raw_bytes": zarr_raw,
        "upper_bound_bytes": int(round(zarr_raw * PYRAMID_FACTOR)),
        "estimated_bytes": zarr_est,
        "after_conversion_total_bytes": out.bytes - zarr_src + zarr_est,
        "rule": (
            "each proprietary image: uncompressed level-0 pixel bytes x 4/3 (pyramid levels halving X and Y) "
            "x the file's own compression ratio (file bytes / pixel bytes, at most 1); open-format files stay as they are"
        ),
    }
    out.formats = dict(sorted(out.formats.items(), key=lambda kv: -kv[1].bytes))
    if callable(completeness):
        try:
            out.completeness = completeness(kept)
        except Exception as exc:  # noqa: BLE001 - a plan without completeness beats no plan
            out.completeness = {"error": f"{type(exc).__name__}: {exc}"}
    else:
        out.completeness = completeness
    out.manifests = list(manifests or [])
    return out


# --------------------------------------------------------------------------------------------
# gather: scan -> aggregate
# --------------------------------------------------------------------------------------------


def default_completeness(facts: list[ImageFacts], root: str | None = None) -> dict[str, Any] | None:
    """The curation module's metadata completeness summary (``root``: what relative paths of
    facts scanned under a root are relative to, so the folders' REMBI sidecars apply)."""
    from ..curation.completeness import summarize

    return dict(summarize(facts, root=root))


def _local_mtime(root: str | None) -> Callable[[ImageFacts], dt.datetime | None]:
    def mtime(f: ImageFacts) -> dt.datetime | None:
        path = f.path if root is None else os.path.join(root, f.path)
        try:
            st = os.stat(path)
        except OSError:
            return None
        return dt.datetime.fromtimestamp(st.st_mtime, dt.UTC)

    return mtime


def _remote_mtime(url: str, storage_options: dict[str, Any]) -> Callable[[ImageFacts], dt.datetime | None]:
    """Modification times of objects under ``url`` from one listing (no request per object),
    made on first use only (a tree whose images all state an acquisition date needs none); an
    image made of many objects (OME-Zarr) dates from its oldest object."""
    import bisect

    from ..storage import resolve

    keys: list[str] = []
    times: list[dt.datetime | None] = []
    listed = False

    def listing() -> None:
        nonlocal listed
        listed = True
        try:
            res = resolve(url, **storage_options)
            found = res.fs.find(res.path, detail=True)
        except Exception:  # noqa: BLE001 - growth then has no dates, the plan says so
            found = {}
        for k in sorted(found):
            info = found[k]
            value = info.get("LastModified") or info.get("mtime") or info.get("last_modified")
            if isinstance(value, (int, float)):
                value = dt.datetime.fromtimestamp(value, dt.UTC)
            elif isinstance(value, str):
                value = _parse_date(value)
            keys.append(k)
            times.append(value if isinstance(value, dt.datetime) else None)

    protocol = url.split("://", 1)[0] + "://"

    def mtime(f: ImageFacts) -> dt.datetime | None:
        if not listed:
            listing()
        path = f.path.split("://", 1)[1] if f.path.startswith(protocol) else f.path
        i = bisect.bisect_left(keys, path)
        if i < len(keys) and keys[i] == path:
            return times[i]
        prefix = path.rstrip("/") + "/"
        found = []
        j = bisect.bisect_left(keys, prefix)
        while j < len(keys) and keys[j].startswith(prefix):
            if times[j] is not None:
                found.append(times[j])
            j += 1
        return min(found) if found else None  # type: ignore[type-var]

    return mtime


def _regular_files(folder: str, names: list[str], root: str | None) -> None:
    """Refuse (CorruptFile / PathEscapesRoot) any of ``names`` in ``folder`` that is not a plain
    regular file inside ``root``: a FIFO named like a tag file would block the reader, a link
    could lead outside the root."""
    import stat

    from ..errors import CorruptFile, PathEscapesRoot
    from ..storage import inside

    for name in names:
        path = os.path.join(folder, name)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(st.st_mode):
            raise CorruptFile(path, f"{name} is not a regular file")
        if root is not None and not inside(os.path.realpath(path), root):
            raise PathEscapesRoot(path, f"{name}: lies outside the root")


def _manifest(path: str, root: str | None = None) -> dict[str, Any] | None:
    """What a plan cites of a transfer manifest or bag found at ``path`` (local files only; read
    only when they are regular files inside ``root``)."""
    from ..storage import read_confined

    folder = os.path.dirname(path)
    name = os.path.basename(path)
    root_real = None if root is None else os.path.realpath(root)
    try:
        if name == "bioimnb-manifest.json":
            if not os.path.isfile(os.path.join(folder, "manifest-sha256.txt")):
                return None
            data = json.loads(read_confined(path, root_real))
            if not isinstance(data, dict):
                return None
            return {
                "kind": "bioimnb transfer manifest",
                "folder": folder,
                "file": "manifest-sha256.txt",
                "created": str(data.get("created") or ""),
                "tool": str(data.get("tool") or ""),
                "algorithm": str(data.get("algorithm") or "sha256"),
                "files": int(data.get("files") or len(data.get("entries") or [])),
                "bytes": int(data.get("bytes") or 0),
            }
        if name == "bag-info.txt":
            import bagit

            tags = [n for n in os.listdir(folder) if n in ("bagit.txt", "bag-info.txt", "fetch.txt") or
                    (n.endswith(".txt") and (n.startswith("manifest-") or n.startswith("tagmanifest-")))]
            _regular_files(folder, tags, root_real)
            bag = bagit.Bag(folder)
            oxum = str(bag.info.get("Payload-Oxum") or "")
            nbytes, _, nfiles = oxum.partition(".")
            algorithms = sorted(bag.algorithms)
            return {
                "kind": "BagIt bag",
                "folder": folder,
                "file": "bag-info.txt",
                "created": str(bag.info.get("Bagging-Date") or ""),
                "tool": str(bag.info.get("Bag-Software-Agent") or ""),
                "algorithm": ", ".join(algorithms),
                "files": int(nfiles) if nfiles.isdigit() else 0,
                "bytes": int(nbytes) if nbytes.isdigit() else 0,
            }
    except Exception as exc:  # noqa: BLE001 - BioimnbError, OSError, bagit.BagError, bad JSON: cite nothing, say why
        reason = exc.reason if isinstance(exc, BioimnbError) else (str(exc).splitlines() or [type(exc).__name__])[0]
        return {"kind": "unreadable manifest", "folder": folder, "file": name, "error": reason or type(exc).__name__}
    return None


def gather(
    sources: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    recursive: bool = True,
    cache: bool | str | os.PathLike[str] = True,
    root: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    completeness: Any = "auto",
    progress: Callable[[Any], None] | None = None,
    storage_options: dict[str, Any] | None = None,
) -> DmpFacts:
    """Scan every source (folder, bucket or prefix; headers only, through the facts cache) and
    aggregate.  Unreadable files are counted and listed, never fatal; a missing source is an
    error (:class:`~bioimnb.core.errors.BioimnbError`).  ``completeness="auto"`` asks the
    curation module when it exists; pass a dict or a function to use another."""
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    names = [os.fspath(s) for s in sources]
    so = dict(storage_options or {})
    everything: list[ImageFacts] = []
    stampers: list[tuple[int, int, Callable[[ImageFacts], dt.datetime | None]]] = []
    manifests: list[dict[str, Any]] = []
    seconds = 0.0
    cached = 0
    root_text = None if root is None else os.fspath(root)
    for url in names:
        remote = "://" in url and not url.startswith("file://")
        start = len(everything)
        single = None if remote else (url if root_text is None else os.path.join(root_text, url))
        if single is not None and os.path.isfile(single):
            # One file: its facts directly (a scan walks folders only).
            from ..facts import image_facts

            everything.append(image_facts(url, root=root_text, **so))
        else:
            run = scan(url, recursive=recursive, root=root, workers=workers, cache=cache, progress=progress, **so)
            everything.extend(run)
            seconds += run.progress.seconds
            cached += run.progress.cached
        stamper = _remote_mtime(url, so) if remote else _local_mtime(root_text)
        stampers.append((start, len(everything), stamper))
        if not remote:
            for f in everything[start:]:
                if f.kind == "file" and os.path.basename(f.path) in MANIFEST_NAMES:
                    full = f.path if root_text is None else os.path.join(root_text, f.path)
                    cited = _manifest(full, root_text)
                    if cited is not None:
                        manifests.append(cited)
    index = {id(f): i for i, f in enumerate(everything)}

    def mtime(f: ImageFacts) -> dt.datetime | None:
        if f.modified:  # as the scan's listing gave it: no request, no stat
            when = _parse_date(f.modified)
            if when is not None:
                return when
        i = index.get(id(f), -1)
        for lo, hi, stamper in stampers:
            if lo <= i < hi:
                return stamper(f)
        return None

    summary: Any = (lambda found: default_completeness(found, root_text)) if completeness == "auto" else completeness
    def source_of(f: ImageFacts) -> str:
        i = index.get(id(f), -1)
        return next((names[k] for k, (lo, hi, _) in enumerate(stampers) if lo <= i < hi), names[0])

    out = aggregate(
        everything, sources=names, mtime=mtime, completeness=summary, manifests=manifests, source_of=source_of
    )
    out.scan_seconds = round(seconds, 3)
    out.cached = cached
    return out
