"""Which readers exist, which formats each reads, how each format is recognised: as data.

This module is the one place that knows formats.  ``open_image`` dispatch, listings, the scan,
the server's list of openable types and the lab extension's file types (generated from
:func:`lab_file_types`) all ask it.  A reader is one :class:`ReaderRecord`; each format it reads is
a :class:`Format` with its extensions and a content test (``sniff``) on the first bytes.

Third-party readers register through the ``bioimnb.readers`` entry-point group, as bioio plugins
do: the entry point names a :class:`ReaderRecord` (or a function returning one)::

    [project.entry-points."bioimnb.readers"]
    myformat = "my_package.bioimnb_reader:READER"

A record's ``open`` is called as ``open(res, fmt, size)`` with the resolved source
(:class:`~bioimnb.core.storage.Resolved`), the recognised :class:`Format` and the file size
(0 for folders), and returns a :class:`~bioimnb.core.readers.base.Backend`.  When several formats
match a file's content, the highest ``priority`` wins; a name match breaks ties between formats
of the same content family (``.svs`` over plain TIFF).
"""

from __future__ import annotations

import importlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .readers.base import Backend
    from .storage import Resolved

__all__ = [
    "ENTRY_POINT_GROUP",
    "Format",
    "ReaderRecord",
    "format_by_name",
    "format_for_content",
    "format_for_name",
    "format_status",
    "formats",
    "lab_file_types",
    "readers",
    "register",
    "sniff_family",
    "unregister",
]

ENTRY_POINT_GROUP = "bioimnb.readers"
HEAD_BYTES = 512
"""How many leading bytes the content tests look at."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Format:
    name: str
    """Human name shown in listings and ``info``: ``OME-TIFF``, ``CZI``, ..."""
    extensions: tuple[str, ...]
    """Lower-case suffixes, longest match wins (``.ome.tif`` before ``.tif``)."""
    sniff: Callable[[bytes], bool] | None = None
    """Content test on the first :data:`HEAD_BYTES` bytes; ``None``: recognised by name only."""
    directory: bool = False
    """Stored as a folder (OME-Zarr)."""
    companion_folder: bool = False
    """A file whose pixels live in a sibling folder of the same stem (MRXS)."""
    needs_name: bool = False
    """The content test alone does not make a file this format: its name must say so too
    (an SVS is a TIFF by content; a TIFF named ``.svs`` is an SVS)."""
    reader: str = ""
    """Name of the :class:`ReaderRecord` that opens it (filled in by :func:`register`)."""


@dataclass(frozen=True)
class ReaderRecord:
    name: str
    """The reader as ``info`` reports it: ``tifffile``, ``zarr``, ``openslide``, ``bioio-czi``."""
    formats: tuple[Format, ...]
    open: Callable[[Resolved, Format, int], Backend]
    priority: int = 0
    pyramids: bool = False
    """Reads resolution levels stored in the file."""
    scenes: bool = False
    """Reads several images (series, positions, wells) of one file."""
    remote: bool = False
    """Opens sources on object stores and HTTP, not only local files."""
    metadata_write: bool = False
    """Can write metadata back without touching pixels."""
    plugin: str | None = field(default=None, compare=False)
    """The entry point it came from, for third-party readers."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "formats": [
                {"name": f.name, "extensions": list(f.extensions), "directory": f.directory}
                for f in self.formats
            ],
            "priority": self.priority,
            "pyramids": self.pyramids,
            "scenes": self.scenes,
            "remote": self.remote,
            "metadata_write": self.metadata_write,
            "plugin": self.plugin,
        }


# --------------------------------------------------------------------------------------------
# Content tests
# --------------------------------------------------------------------------------------------

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def _is_tiff(head: bytes) -> bool:
    return head[:4] in _TIFF_MAGIC


def _is_czi(head: bytes) -> bool:
    return head.startswith(b"ZISRAWFILE")


def _is_png(head: bytes) -> bool:
    return head.startswith(b"\x89PNG\r\n\x1a\n")


def _is_jpeg(head: bytes) -> bool:
    return head.startswith(b"\xff\xd8\xff")


def _is_nd2(head: bytes) -> bool:
    return head.startswith(b"\xda\xce\xbe\x0a") or head[4:12] == b"jP  \r\n\x87\n"


def _is_lif(head: bytes) -> bool:
    return head[:4] == b"\x70\x00\x00\x00" and head[8:9] == b"\x2a"


def _is_dv(head: bytes) -> bool:
    return len(head) >= 98 and head[96:98] in (b"\xc0\xa0", b"\xa0\xc0")


def _is_hdf5(head: bytes) -> bool:
    return head.startswith(b"\x89HDF\r\n\x1a\n")


def _is_text(head: bytes) -> bool:
    sample = head[:HEAD_BYTES]
    return all(32 <= b < 127 or b in (9, 10, 13) for b in sample) or sample.startswith(
        (b"\xef\xbb\xbf", b"<")
    )


def _is_ome_xml(head: bytes) -> bool:
    text = head[:HEAD_BYTES].lstrip(b"\xef\xbb\xbf \t\r\n")
    return text.startswith(b"<") and b"OME" in head


def sniff_family(head: bytes) -> str | None:
    """A coarse name for what the first bytes are when no format claims them: ``empty``,
    ``text``, ``hdf5`` or ``None`` (unknown binary)."""
    if not head:
        return "empty"
    if _is_hdf5(head):
        return "hdf5"
    if _is_text(head):
        return "text"
    return None


# --------------------------------------------------------------------------------------------
# The built-in readers (their modules are imported only when a file is opened)
# --------------------------------------------------------------------------------------------


def _lazy(target: str, call: Callable[[Any, Resolved, Format, int], Backend]) -> Callable[[Resolved, Format, int], Backend]:
    """An opener that imports its reader module on first use (``"module:function"``), so the
    registry stays below the readers (and cheap to import)."""
    module, name = target.split(":")

    def open_(res: Resolved, fmt: Format, size: int) -> Backend:
        return call(getattr(importlib.import_module(module), name), res, fmt, size)

    open_.__qualname__ = open_.__name__ = f"open<{target}>"
    return open_


_open_bioformats = _lazy(
    "bioimnb.core.readers.bioformats:open_bioformats", lambda f, res, fmt, size: f(res, fmt, size)
)

# Suffixes Bio-Formats' readers list that name no image format of their own (companion,
# text, log or generic data files) or that desktop tools own (JupyterLab shows GIF/BMP itself);
# a file with one of these is only read by Bio-Formats when asked for: reader="bioformats".
_BIOFORMATS_GENERIC = frozenset(
    (
        "txt", "csv", "xml", "html", "htm", "log", "cfg", "ini", "dat", "raw", "img", "hdr", "inf",
        "bin", "db", "h5", "hdf", "zip", "pattern", "fake", "wav", "env", "par", "set", "rec", "map",
        "mod", "st", "v", "hx", "labels", "grey", "exp", "res", "mea", "lut", "pty", "ps", "eps",
        "epsi", "mov", "avi", "jpe", "thm", "dib", "seq", "ips", "ali", "scan", "spl", "ome", "mdb",
        "gif", "bmp", "tim",
        # companions: the pixel files of a header that is the image (.ics + .ids, .vsi + .ets)
        "ids", "ets",
    )
)  # fmt: skip


def _bioformats_formats(taken: set[str], names: set[str]) -> tuple[Format, ...]:
    """Bio-Formats' own format list (``readers/bioformats_formats.json``, generated from the jar
    by ``python -m bioimnb.core.readers.bioformats``; a test keeps it equal to the jar's), minus
    every suffix a Python reader already reads (``taken``), generic suffixes, and formats whose
    name a Python reader uses.  Each suffix goes to the first Bio-Formats reader listing it (the
    order Bio-Formats itself tries them).  Recognised by name only: Bio-Formats checks content."""
    import json
    from pathlib import Path

    path = Path(__file__).parent / "readers" / "bioformats_formats.json"
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # pragma: no cover - a broken install
        log.warning("Bio-Formats format list %s cannot be read", path)
        return ()
    seen = {s.lower() for s in taken}
    lower_names = {n.lower() for n in names}
    out = []
    for entry in entries:
        name = str(entry["format"])
        if name.lower() in lower_names:
            continue
        suffixes = []
        for raw in entry["suffixes"]:
            suffix = str(raw).strip().lower()
            if not suffix or not all(ch.isalnum() or ch in "._" for ch in suffix):
                continue
            if suffix.rsplit(".", 1)[-1] in _BIOFORMATS_GENERIC or "." + suffix in seen:
                continue
            seen.add("." + suffix)
            suffixes.append("." + suffix)
        if suffixes:
            lower_names.add(name.lower())
            out.append(Format(name, tuple(suffixes), None))
    return tuple(out)


_BIOIO_FAMILY = {"ND2": "nd2", "LIF": "lif", "DeltaVision": "dv", "PNG": "png", "JPEG": "jpeg"}
_open_tiff = _lazy("bioimnb.core.readers.tiff:open_tiff", lambda f, res, fmt, size: f(res, size))
_open_zarr = _lazy("bioimnb.core.readers.zarr_ngff:open_zarr", lambda f, res, fmt, size: f(res))
_open_slide = _lazy("bioimnb.core.readers.slide:OpenSlideBackend", lambda f, res, fmt, size: f(res, fmt.name))
_open_czi = _lazy("bioimnb.core.readers.bioio_formats:open_czi", lambda f, res, fmt, size: f(res))
_open_bioio = _lazy(
    "bioimnb.core.readers.bioio_formats:BioioBackend",
    lambda f, res, fmt, size: f(res, _BIOIO_FAMILY[fmt.name], fmt.name),
)


def _builtin() -> list[ReaderRecord]:
    python = [
        ReaderRecord(
            "tifffile",
            (
                Format("OME-TIFF", (".ome.tif", ".ome.tiff", ".ome.tf2", ".ome.tf8", ".ome.btf"), _is_tiff, needs_name=True),
                Format("OME-TIFF fileset", (".companion.ome",), _is_ome_xml, needs_name=True),
                Format("SVS", (".svs",), _is_tiff, needs_name=True),
                Format("NDPI", (".ndpi",), _is_tiff, needs_name=True),
                Format("SCN", (".scn",), _is_tiff, needs_name=True),
                Format("QPTIFF", (".qptiff",), _is_tiff, needs_name=True),
                Format("LSM", (".lsm",), _is_tiff, needs_name=True),
                Format("STK", (".stk",), _is_tiff, needs_name=True),
                # Named by its content once opened (an ImageJ hyperstack is a .tif).
                Format("ImageJ TIFF", (), _is_tiff, needs_name=True),
                Format("TIFF", (".tif", ".tiff", ".btf", ".tf2", ".tf8"), _is_tiff),
            ),
            _open_tiff,
            pyramids=True,
            scenes=True,
            remote=True,
        ),
        ReaderRecord(
            "zarr",
            (Format("OME-Zarr", (".ome.zarr", ".zarr"), None, directory=True),),
            _open_zarr,
            pyramids=True,
            scenes=True,
            remote=True,
        ),
        ReaderRecord(
            "openslide",
            (
                # MRXS and VMS index files have no signature of their own (OpenSlide goes by name
                # too); BIF is a TIFF that only OpenSlide reads right, so it outranks tifffile.
                Format("MRXS", (".mrxs",), None, companion_folder=True),
                Format("VMS", (".vms",), None),
                Format("BIF", (".bif",), _is_tiff, needs_name=True),
            ),
            _open_slide,
            priority=10,
            pyramids=True,
        ),
        ReaderRecord(
            "bioio-czi",
            (Format("CZI", (".czi",), _is_czi),),
            _open_czi,
            pyramids=True,
            scenes=True,
            remote=True,
        ),
        ReaderRecord(
            "bioio",
            (
                Format("ND2", (".nd2",), _is_nd2),
                Format("LIF", (".lif",), _is_lif),
                Format("DeltaVision", (".dv", ".r3d"), _is_dv),
                Format("PNG", (".png",), _is_png),
                Format("JPEG", (".jpg", ".jpeg"), _is_jpeg),
            ),
            _open_bioio,
            scenes=True,
            remote=True,
        ),
    ]
    taken = {ext for rec in python for fmt in rec.formats for ext in fmt.extensions}
    names = {fmt.name for rec in python for fmt in rec.formats}
    bioformats = ReaderRecord(
        "bioformats",
        _bioformats_formats(taken, names),
        _open_bioformats,
        # A fallback: every Python reader wins for the formats it reads.
        priority=-10,
        pyramids=True,
        scenes=True,
    )
    return [*python, bioformats]


# --------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------

_lock = threading.RLock()
_readers: list[ReaderRecord] = []
_loaded = False
_by_suffix: list[tuple[str, Format]] = []
_suffix_map: dict[tuple[bool, str], Format] = {}
"""(is a folder, ``.suffix``) -> format, the first of ``_by_suffix`` for that suffix: a name is
looked up once per dot in it, not compared with every extension (a scan asks for every file)."""


def _stamp(record: ReaderRecord) -> ReaderRecord:
    formats = tuple(
        f if f.reader == record.name else Format(**{**f.__dict__, "reader": record.name})
        for f in record.formats
    )
    return ReaderRecord(**{**record.__dict__, "formats": formats})


def _rebuild() -> None:
    global _by_suffix, _suffix_map
    pairs = [(ext.lower(), fmt, rec.priority) for rec in _readers for fmt in rec.formats for ext in fmt.extensions]
    # Longest suffix first; among equal suffixes, the higher-priority reader.
    pairs.sort(key=lambda item: (-len(item[0]), -item[2]))
    _by_suffix = [(ext, fmt) for ext, fmt, _ in pairs]
    table: dict[tuple[bool, str], Format] = {}
    for ext, fmt in _by_suffix:
        table.setdefault((fmt.directory, ext), fmt)
    _suffix_map = table


def _load_plugins() -> None:
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
            record = obj() if callable(obj) and not isinstance(obj, ReaderRecord) else obj
            if not isinstance(record, ReaderRecord):
                raise TypeError(f"{ep.value} is not a ReaderRecord")
            register(ReaderRecord(**{**record.__dict__, "plugin": ep.value}))
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break bioimnb
            log.warning("bioimnb reader plugin %s could not be loaded: %s", ep.name, exc)


def _ensure() -> None:
    global _loaded
    if _loaded:
        return
    with _lock:
        if _loaded:
            return
        for record in _builtin():
            _readers.append(_stamp(record))
        _rebuild()
        _loaded = True
        _load_plugins()


def register(record: ReaderRecord) -> ReaderRecord:
    """Add a reader (a plugin, or a test's toy reader); a reader of the same name is replaced."""
    _ensure()
    stamped = _stamp(record)
    with _lock:
        _readers[:] = [r for r in _readers if r.name != stamped.name]
        _readers.append(stamped)
        _rebuild()
    return stamped


def unregister(name: str) -> None:
    _ensure()
    with _lock:
        _readers[:] = [r for r in _readers if r.name != name]
        _rebuild()


def readers() -> list[ReaderRecord]:
    """Every registered reader, highest priority first."""
    _ensure()
    return sorted(_readers, key=lambda r: -r.priority)


def formats() -> list[Format]:
    return [fmt for rec in readers() for fmt in rec.formats]


def reader_for(fmt: Format) -> ReaderRecord:
    for rec in readers():
        if rec.name == fmt.reader:
            return rec
    raise KeyError(fmt.reader)


def format_by_name(name: str) -> Format | None:
    for fmt in formats():
        if fmt.name == name:
            return fmt
    return None


@lru_cache(maxsize=1)
def _status_table() -> dict[str, Any]:
    from pathlib import Path

    return dict(json.loads((Path(__file__).parent / "format_status.json").read_text(encoding="utf-8")))


def format_status(name: str) -> dict[str, Any]:
    """Whether a format is open or a vendor's, as ``{"open": bool, "media_type": str | None,
    "vendor": str | None, "listed": bool}`` (``format_status.json``; a format not listed there,
    the Bio-Formats long tail, counts as proprietary and ``listed`` is False)."""
    table = _status_table()
    if name in table["open"]:
        return {"open": True, "media_type": table["open"][name].get("media_type"), "vendor": None, "listed": True}
    rec = table["proprietary"].get(name)
    return {
        "open": False,
        "media_type": (rec or {}).get("media_type"),
        "vendor": (rec or {}).get("vendor"),
        "listed": rec is not None,
    }


def format_for_name(name: str, *, is_dir: bool = False) -> Format | None:
    """The format a name suggests (longest matching suffix wins: ``.ome.tif`` before ``.tif``)."""
    _ensure()
    lower = name.rstrip("/").lower()
    table = _suffix_map
    dot = lower.find(".")
    while dot >= 0:  # longest suffix first: ".ome.tif" before ".tif"
        fmt = table.get((is_dir, lower[dot:]))
        if fmt is not None:
            return fmt
        dot = lower.find(".", dot + 1)
    return None


def format_for_content(head: bytes, name: str = "") -> Format | None:
    """The format of a file from its first bytes, the name breaking ties.

    Formats whose content test matches compete: the name's own format wins when it is among
    them (``x.svs`` is SVS); otherwise the highest-priority reader's first matching format that
    needs no name (a TIFF named ``x.czi`` is a TIFF).  Name-only formats (no content test,
    e.g. MRXS) match by name alone.
    """
    by_name = format_for_name(name) if name else None
    if by_name is not None and by_name.sniff is None:
        return by_name
    matches = [f for rec in readers() for f in rec.formats if f.sniff is not None and not f.directory and f.sniff(head)]
    if by_name is not None and by_name in matches:
        return by_name
    for fmt in matches:
        if not fmt.needs_name:
            return fmt
    return None


def lab_file_types() -> list[dict[str, Any]]:
    """The file types the JupyterLab extension registers (``labextension/src/filetypes.json`` is
    generated from this by ``python -m bioimnb.core.registry``; a test keeps the two equal)."""
    out = []
    for fmt in formats():
        if fmt.directory or not fmt.extensions:
            continue
        # JupyterLab shows .png/.jpg itself: bioimnb is offered for those, not default.  Browsers
        # cannot decode TIFF (JupyterLab's image viewer shows a broken image), so every TIFF
        # opens in bioimnb by default.
        plain = fmt.name in ("PNG", "JPEG")
        out.append(
            {
                "name": "bioimnb-" + fmt.name.lower().replace(" ", "-"),
                "displayName": f"{fmt.name} image",
                "extensions": list(fmt.extensions),
                "default": not plain,
            }
        )
    return out


if __name__ == "__main__":  # pragma: no cover - build step of the lab extension
    import json
    import sys

    json.dump(lab_file_types(), sys.stdout, indent=2)
    sys.stdout.write("\n")
