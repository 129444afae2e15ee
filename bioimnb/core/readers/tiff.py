"""TIFF family through tifffile: OME-TIFF (SubIFD and page pyramids, multi-scene), ImageJ,
plain TIFF, and TIFF-based whole-slide formats (SVS, NDPI, SCN, QPTIFF, generic tiled pyramids).

Why not bioio-ome-tiff: it reports a SubIFD pyramid as one level and its dask array has one
chunk per whole plane (a 256 x 256 preview tile of a 16k x 16k plane decodes the whole plane).
tifffile's zarr view reads exactly the TIFF tiles or strips a region touches.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, BinaryIO

import numpy as np
import tifffile
import zarr

from ..axes import AxisMap
from ..errors import BioimnbError, CorruptFile, PathEscapesRoot, UnsupportedFormat
from ..limits import limits
from ..metadata.ome import (
    OmeImageSummary,
    check_xml,
    color_hex,
    parse_ome_xml,
    summarize_ome_xml,
    synthesize_ome,
)
from ..metadata.units import LENGTH_UM, to_micrometres, unit_factor
from ..objects import object_reader
from ..storage import Resolved, inside, open_confined, read_confined, read_head, storage_errors
from .base import (
    Backend,
    Channel,
    Level,
    PhysicalSize,
    SceneData,
    check_declared_size,
    default_colors,
    virtual_pyramid,
)
from .tiff_direct import _FD, FilePool, decode_limit_error, direct_level

log = logging.getLogger(__name__)

_ASSOCIATED = {"thumbnail", "label", "macro", "map", "overview"}

_WHOLE_REMOTE_FILE = 2 * 2**20
"""Remote TIFFs up to this size are fetched as one block (one request)."""

class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _parse(xml: str | bytes, source: object) -> ET.Element:
    data = check_xml(xml, source)
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        raise CorruptFile(source, f"invalid OME-XML metadata ({exc})") from exc


def companion_ome_members(xml_bytes: str | bytes) -> list[str]:
    """The ``FileName`` of every file an OME-XML document (a ``.companion.ome`` file or a
    master OME-TIFF's XML) names in its ``TiffData/UUID`` elements, in order, each once, as
    written (relative to the document's folder unless absolute).  Opens nothing; unsafe or
    malformed XML gives an empty list.  For classifiers: a ``.companion.ome`` whose content is
    OME-XML naming members is an image, opened by :func:`open_tiff_set`."""
    try:
        root = _parse(xml_bytes, "OME-XML")
    except CorruptFile:
        return []
    if _local(root.tag) != "OME":
        return []
    out: list[str] = []
    for el in root.iter():
        name = el.get("FileName") if _local(el.tag) == "UUID" else None
        if name and name not in out:
            out.append(name)
    return out


def _member(name: str, base: str, res: Resolved, what: str = "companion file") -> tuple[str, bool]:
    """(real path, exists) of a file an OME-XML names, relative to ``base``; refused when it
    lies outside ``res.root`` (links resolved) or is not a regular file.  Opens nothing."""
    try:
        real = os.path.realpath(os.path.join(base, name))
    except (ValueError, OSError) as exc:  # an embedded NUL, a link loop, ...
        raise CorruptFile(res.url, f"{what} {name!r}: {exc}") from None
    if res.root is not None and not inside(real, res.root):
        raise PathEscapesRoot(res.url, f"{what} {name!r} lies outside the root")
    try:
        st = os.stat(real)
    except FileNotFoundError:
        return real, False
    except (OSError, ValueError) as exc:
        raise CorruptFile(res.url, f"{what} {name!r}: {getattr(exc, 'strerror', None) or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise CorruptFile(res.url, f"{what} {name!r} is not a regular file")
    return real, True


@dataclass
class FileSet:
    """The files of a (multi-file) OME-TIFF, found from the OME-XML that describes it."""

    xml: str
    """The OME-XML describing the image, as written (the master's or the companion file's)."""
    holder: str
    """Real path of the file holding ``xml``."""
    members: list[str] = field(default_factory=list)
    """Real paths of the TIFF members, in the order the XML names them."""
    missing: list[str] = field(default_factory=list)
    """``FileName`` values of members that do not exist (their planes read as zeros)."""
    tifffile_xml: str | None = None
    """The XML handed to tifffile: every member's ``FileName`` made absolute after the checks,
    the root UUID set to the opened file's own; None when tifffile can read the file as is."""


def plan_fileset(xml: str, holder: str, opened: str, res: Resolved, *, own: bool, holder_is_tiff: bool = True) -> FileSet:
    """Check every member an OME-XML names (inside the root, regular file) and prepare the
    XML tifffile opens ``opened`` with.  ``own``: ``xml`` is ``opened``'s own description;
    ``holder_is_tiff``: the file holding the XML is a TIFF (its UUID names its own planes)."""
    root = _parse(xml, res.url)
    base = os.path.dirname(holder)
    root_uuid = (root.get("UUID") or "").strip() or None
    out = FileSet(xml, holder)
    opened_uuid: str | None = None
    checked: dict[str, tuple[str, bool]] = {}  # one check per distinct name, however many planes
    for el in root.iter():
        if _local(el.tag) != "UUID" or el.get("FileName") is None:
            continue
        name = el.get("FileName") or ""
        text = (el.text or "").strip()
        if holder_is_tiff and root_uuid is not None and text == root_uuid:
            real, exists = holder, True  # the UUID of the file holding the XML, whatever its name now
        else:
            if name not in checked:
                checked[name] = _member(name, base, res)
            real, exists = checked[name]
        if real == opened and text:
            opened_uuid = text
        if not exists and name not in out.missing:
            out.missing.append(name)
        elif exists and real not in out.members:
            out.members.append(real)
        el.set("FileName", real)
    if opened not in out.members:
        out.members.insert(0, opened)
    if own and out.members == [opened] and not out.missing:
        return out  # a single-file OME-TIFF (perhaps renamed): tifffile reads it as it is
    # Otherwise tifffile gets absolute, checked names: it would resolve the XML's own names
    # against the current directory, as it never learns the folder of a file it reads via a handle.
    if opened_uuid is not None:
        root.set("UUID", opened_uuid)
    else:
        root.attrib.pop("UUID", None)
    out.tifffile_xml = ET.tostring(root, encoding="unicode")
    return out


def _xml_of(real: str, res: Resolved) -> tuple[str, bool]:
    """(the OME-XML held by a master TIFF (its first ImageDescription) or a companion file,
    whether that file is a TIFF)."""
    with open_confined(real, res.root, res.url) as fh:
        head = fh.read(4)
        if head not in _TIFF_MAGIC:
            fh.close()
            return read_confined(real, res.root, res.url).decode("utf-8", errors="replace"), False
        fh.seek(0)
        try:
            with tifffile.TiffFile(fh, name=os.path.basename(real)) as t:
                return t.pages.first.description or "", True
        except Exception as exc:  # noqa: BLE001 - tifffile fails in many ways on hostile headers
            raise CorruptFile(res.url, f"metadata file {os.path.basename(real)!r} is not a valid TIFF ({_first(exc)})") from exc


def _binary_only(desc: str, opened: str, res: Resolved) -> tuple[str, str, bool] | None:
    """For a ``BinaryOnly`` member: (the set's OME-XML, the real path of the file holding it,
    whether that file is a TIFF)."""
    if "BinaryOnly" not in desc[:65536]:
        return None
    try:
        root = _parse(desc, res.url)
    except CorruptFile:
        return None
    block = next((el for el in root if _local(el.tag) == "BinaryOnly"), None)
    name = block.get("MetadataFile") if block is not None else None
    if not name:
        return None
    real, exists = _member(name, os.path.dirname(opened), res, "metadata file")
    if not exists:
        raise CorruptFile(res.url, f"metadata file {name!r} of this BinaryOnly OME-TIFF does not exist")
    if real == opened:
        return None
    xml, is_tiff = _xml_of(real, res)
    if not xml.rstrip().endswith("OME>") or "BinaryOnly" in xml[:65536]:
        raise CorruptFile(res.url, f"metadata file {name!r} holds no OME-XML")
    return xml, real, is_tiff


def _refuse_remote_set(xml: str, res: Resolved) -> None:
    """Members of a multi-file set are found next to the file on a local disk only; remotely
    their planes would silently read as zeros, so such a set is refused in one line."""
    if "FileName" not in xml and "BinaryOnly" not in xml[:65536]:
        return
    try:
        root = _parse(xml, res.url)
    except CorruptFile:
        return
    if any(_local(el.tag) == "BinaryOnly" for el in root):
        raise UnsupportedFormat(res.url, "is a member of a multi-file OME-TIFF set; such sets are read from local storage only")
    root_uuid = (root.get("UUID") or "").strip()
    for el in root.iter():
        name = el.get("FileName") if _local(el.tag) == "UUID" else None
        if name and (el.text or "").strip() != root_uuid and os.path.basename(name) != res.name:
            raise UnsupportedFormat(
                res.url, f"is a multi-file OME-TIFF set (member {name!r}); such sets are read from local storage only"
            )


class _Guarded:
    """A zarr view whose every chunk read first checks the decode limit (read time, so a
    limit changed with ``configure`` applies)."""

    def __init__(self, arr: Any, segment_bytes: int, kind: str, source: object) -> None:
        self.arr = arr
        self.shape = arr.shape
        self.dtype = arr.dtype
        self.ndim = arr.ndim
        self.chunks = arr.chunks
        self.segment_bytes = segment_bytes
        self.kind = kind
        self.source = source

    def __getitem__(self, key: Any) -> Any:
        if self.segment_bytes > limits().max_decode_bytes:
            raise decode_limit_error(self.source, self.kind, self.segment_bytes)
        try:
            return self.arr[key]
        except MemoryError:
            raise BioimnbError(self.source, "the region asked for does not fit in memory; read a smaller one") from None
        except (BioimnbError, IndexError, OSError):
            raise
        except Exception as exc:  # noqa: BLE001 - codec and structure errors of a damaged file
            raise CorruptFile(self.source, f"cannot read a {self.kind} ({type(exc).__name__}: {_first(exc)})") from exc


class _LazyView:
    """A TIFF level's zarr view, built on first read: tifffile's zarr store serialises the
    chunk index of every page (milliseconds per level), which shapes, dtypes and facts never
    need.  Shape and dtype come from the series; a level that cannot be viewed fails at its
    first read with the same one-line error as at open."""

    def __init__(self, series: Any, level: int, source: object) -> None:
        lv = series.levels[level]
        self._series = series
        self._level = level
        self.source = source
        self.shape = tuple(int(n) for n in lv.shape)
        self.dtype = np.dtype(lv.dtype)
        self.ndim = len(self.shape)
        self._view: _Guarded | None = None
        self._lock = threading.Lock()

    def _build(self) -> _Guarded:
        with self._lock:
            if self._view is None:
                lv = self._series.levels[self._level]
                try:
                    with storage_errors(self.source):
                        # a writable stream (memory://) would make the store read-write
                        store = self._series.aszarr(level=self._level, read_only=True)
                        arr = zarr.open_array(store, mode="r")
                except BioimnbError:
                    raise
                except Exception as exc:  # noqa: BLE001 - tifffile fails in many ways on hostile headers
                    raise CorruptFile(
                        self.source, f"malformed TIFF level {self._level} ({type(exc).__name__}: {_first(exc)})"
                    ) from exc
                kf = lv.keyframe
                segment = int(np.prod(kf.chunks, dtype=np.int64)) * np.dtype(lv.dtype).itemsize
                self._view = _Guarded(arr, segment, "tile" if kf.is_tiled else "strip", self.source)
            return self._view

    @property
    def chunks(self) -> tuple[int, ...]:
        return tuple(self._build().chunks)

    def __getitem__(self, key: Any) -> Any:
        return self._build()[key]


def _first(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _aperio_name(page: Any) -> str | None:
    lines = (page.description or "").splitlines()
    words = lines[1].split() if len(lines) > 1 else []
    return words[0].lower() if words else None


class TiffBackend(Backend):
    reader_name = "tifffile"

    def __init__(self, res: Resolved, size: int, *, tiff_path: str | None = None, preset: FileSet | None = None) -> None:
        """``tiff_path``: the TIFF to open when it is not ``res.path`` (a set opened from its
        ``.companion.ome`` file); ``preset``: that set's XML, already read."""
        super().__init__(res.url)
        self.res = res
        self.size = size
        self._fh: Any = None
        self._master_fh: BinaryIO | None = None
        self._pool: FilePool | None = None
        self.fileset: FileSet | None = preset
        self._companion: str | None = res.path if preset is not None else None
        self._warnings: list[str] = []
        capture = _Capture()
        tlog = logging.getLogger("tifffile")
        tlog.addHandler(capture)
        try:
            with storage_errors(res.url):
                if res.local:
                    self.tif = self._open_local(tiff_path or res.path)
                    self._xml: str | None = self.fileset.xml if self.fileset else self.tif.ome_metadata
                else:
                    # Blocks of 1 MiB, a few kept: a pyramid's IFDs are spread through the file
                    # and read back and forth (one block re-fetched per jump with read-ahead);
                    # the known size saves the HEAD request.  A file of up to 2 MiB is one
                    # block: its IFDs usually sit at both ends, so one request instead of two.
                    block = size if size and size <= _WHOLE_REMOTE_FILE else 2**20
                    fast = object_reader(res) if size else None
                    if fast is not None and size:
                        # S3 through obstore: the same blocks, a fifth of the CPU per request.
                        self._fh = fast.open(size, block)
                    else:
                        self._fh = res.fs.open(
                            res.path, "rb", block_size=block, cache_type="blockcache",
                            cache_options={"maxblocks": 8}, size=size or None,
                        )
                    if size and getattr(self._fh, "_details", False) is None:
                        # s3fs asks for ``details`` (a HEAD request) on the first range read
                        # even when the size is given: what the listing said is enough.
                        self._fh.details = {"name": res.path, "size": size, "type": "file"}
                    self.tif = tifffile.TiffFile(self._fh, name=res.name)
                    self._xml = self.tif.ome_metadata if self.tif.is_ome else None
                    if self._xml:
                        _refuse_remote_set(self._xml, res)
                series = list(self.tif.series)
        except BioimnbError:
            self._close_files()
            raise
        except tifffile.TiffFileError as exc:
            self._close_files()
            raise CorruptFile(res.url, f"not a valid TIFF file ({exc})") from exc
        except MemoryError:
            self._close_files()
            raise
        except Exception as exc:  # noqa: BLE001 - tifffile fails in many ways on hostile headers
            self._close_files()
            raise CorruptFile(res.url, f"malformed TIFF structure ({type(exc).__name__}: {_first(exc)})") from exc
        except BaseException:
            self._close_files()
            raise
        finally:
            tlog.removeHandler(capture)
        self._log = capture.messages
        if self.fileset and self.fileset.missing:
            shown = ", ".join(repr(n) for n in self.fileset.missing[:5])
            self._warnings.append(f"member file(s) {shown} of this OME-TIFF set are missing; their planes read as zeros")
        self._fd: _FD | None = None
        self.format_name = self._format_name()
        self._associated: dict[str, Any] = {}
        try:
            svs = self._svs_series() if self.format_name == "SVS" else None
        except Exception:  # noqa: BLE001 - a damaged SVS keeps tifffile's own grouping
            svs = None
        if svs is not None:
            self.series, self._associated = svs
        else:
            self.series = [s for s in series if (s.name or "").strip().lower() not in _ASSOCIATED or s is series[0]]
            self._associated = {
                (s.name or f"image{i}").strip().lower(): s for i, s in enumerate(series) if s not in self.series
            }
        if not self.series:
            self._close_files()
            raise CorruptFile(res.url, "TIFF holds no image data")
        try:
            try:
                self._check_integrity()
            except BioimnbError:
                raise
            except Exception as exc:  # noqa: BLE001 - tifffile fails in many ways on hostile headers
                raise CorruptFile(res.url, f"malformed TIFF structure ({type(exc).__name__}: {_first(exc)})") from exc
            if res.local and self._master_fh is not None:
                self._pool = FilePool(self.tif, _FD(self._master_fh), res.root, res.url)
                if self.fileset is not None and self.fileset.tifffile_xml is not None:
                    self._confine_members()
        except BaseException:
            self._close_files()
            raise

    def _confine_members(self) -> None:
        """tifffile opened the other members of the set by path (after :func:`plan_fileset`
        checked them) and would reopen them by path for every read: give each its own confined
        descriptor instead, shared with the direct reader, so later reads cannot be redirected
        by a link or FIFO swapped in."""
        assert self._pool is not None
        parents: dict[int, Any] = {}
        for s in self.series:
            for lvl in s.levels:
                kf = lvl.keyframe
                for page in lvl.pages:
                    parent = getattr(page, "parent", None)
                    if parent is None or parent is self.tif:
                        continue
                    parents.setdefault(id(parent), parent)
                    # Frames were checked against the keyframe by tifffile; whole pages were not.
                    if isinstance(page, tifffile.TiffPage) and page is not kf and page.hash != kf.hash:
                        raise CorruptFile(
                            self.res.url,
                            f"member {parent.filehandle.name!r} stores its planes differently (compression, "
                            "tiling or pixel type) from the rest of the set; such sets are not supported",
                        )
        for parent in parents.values():
            handle = parent.filehandle
            fobj = open_confined(handle.path, self.res.root, self.res.url)
            if all(hasattr(handle, a) for a in ("_fh", "_file", "_close")):
                old, handle._fh, handle._file, handle._close = handle._fh, fobj, fobj, False
                if old is not None and old is not fobj:
                    old.close()
            self._pool.add(parent, _FD(fobj))

    def _open_local(self, path: str) -> Any:
        """Open the TIFF at ``path`` confined (regular file, inside the root; never blocks on a
        FIFO) and, for an OME-TIFF naming other files, check them all before tifffile opens any."""
        self._master_fh = open_confined(path, self.res.root, self.res.url)
        name = os.path.basename(path)
        opened = os.path.realpath(path)
        tif = tifffile.TiffFile(self._master_fh, name=name)
        fs = self.fileset
        if fs is None and tif.is_ome:
            desc = tif.pages.first.description or ""
            if "FileName" in desc or "BinaryOnly" in desc[:65536]:
                other = _binary_only(desc, opened, self.res)
                if other is not None:
                    xml, holder, holder_tiff = other
                    if not holder_tiff:
                        self._companion = holder
                    fs = plan_fileset(xml, holder, opened, self.res, own=False, holder_is_tiff=holder_tiff)
                else:
                    fs = plan_fileset(desc, opened, opened, self.res, own=True)
        elif fs is not None:
            fs = plan_fileset(fs.xml, fs.holder, opened, self.res, own=False, holder_is_tiff=False)
        self.fileset = fs
        if fs is not None and fs.tifffile_xml is not None:
            tif.close()
            self._master_fh.seek(0)  # tifffile takes a stream's current position as the file's start
            tif = tifffile.TiffFile(self._master_fh, name=name, omexml=fs.tifffile_xml)
        return tif

    def _close_files(self) -> None:
        for closer in (
            lambda: self.tif.close() if hasattr(self, "tif") else None,
            lambda: self._fh.close() if self._fh is not None else None,
            lambda: self._pool.close() if self._pool is not None else None,
            lambda: self._master_fh.close() if self._master_fh is not None else None,
        ):
            try:
                closer()
            except Exception:  # noqa: BLE001 - closing must not mask the real error
                log.debug("close failed", exc_info=True)

    def _svs_series(self) -> tuple[list[Any], dict[str, Any]] | None:
        """Levels and associated images of an Aperio SVS, counted as OpenSlide counts them:
        every tiled page is a pyramid level; of the others, page 1 is the thumbnail and the rest
        are named by the first word of their description's second line ("label", "macro")."""
        try:
            pages = [self.tif.pages[i] for i in range(len(self.tif.pages))]
        except (IndexError, ValueError, KeyError):
            return None
        tiled = [p for p in pages if getattr(p, "is_tiled", False)]
        if not tiled or pages[0] is not tiled[0]:
            return None
        widths = [int(p.imagewidth) for p in tiled]
        if any(b >= a for a, b in zip(widths, widths[1:], strict=False)):
            return None  # focal planes or an unusual order: keep tifffile's grouping
        base = tifffile.TiffPageSeries([tiled[0]], tiled[0].shape, tiled[0].dtype, tiled[0].axes, name="Baseline", kind="svs")
        for p in tiled[1:]:
            base.levels.append(tifffile.TiffPageSeries([p], p.shape, p.dtype, p.axes, name="Resolution", kind="svs"))
        associated: dict[str, Any] = {}
        for i, p in enumerate(pages):
            if getattr(p, "is_tiled", False):
                continue
            name = "thumbnail" if i == 1 else _aperio_name(p)
            if name and name not in associated:
                associated[name] = tifffile.TiffPageSeries([p], p.shape, p.dtype, p.axes, name=name, kind="svs")
        return [base], associated

    # -- facts about the file -------------------------------------------------------------
    def _format_name(self) -> str:
        t = self.tif
        for flag, name in (
            ("is_ome", "OME-TIFF"),
            ("is_svs", "SVS"),
            ("is_ndpi", "NDPI"),
            ("is_scn", "SCN"),
            ("is_qpi", "QPTIFF"),
            ("is_lsm", "LSM"),
            ("is_stk", "STK"),
            ("is_imagej", "ImageJ TIFF"),
        ):
            if getattr(t, flag, False):
                return name
        return "TIFF"

    def _check_integrity(self) -> None:
        """Declared sizes are plausible and the first and last page of every level lie inside
        the file they live in (each member of a multi-file set has its own size)."""
        for s in self.series:
            check_declared_size(self.res.url, tuple(s.shape), s.dtype)
            for lvl in s.levels:
                pages = lvl.pages
                seen: set[int] = set()
                for p in (pages[0], pages[-1]) if len(pages) else ():
                    if p is None or id(p) in seen:
                        continue
                    seen.add(id(p))
                    parent = getattr(p, "parent", None)
                    if parent is None or parent is self.tif:
                        fsize, fname = self.size, "the file"
                    else:
                        fsize, fname = int(parent.filehandle.size), f"member {parent.filehandle.name!r}"
                    if fsize <= 0:
                        continue
                    offsets = np.asarray(getattr(p, "dataoffsets", ()) or (), dtype=np.uint64)
                    counts = np.asarray(getattr(p, "databytecounts", ()) or (), dtype=np.uint64)
                    if offsets.size and offsets.size == counts.size:
                        end = int((offsets + counts).max())
                        if end > fsize:
                            raise CorruptFile(
                                self.res.url, f"truncated: image data runs to byte {end} but {fname} has {fsize} bytes"
                            )
        for message in self._log:
            low = message.lower()
            if "offset" in low and ("invalid" in low or "out of range" in low or "beyond" in low):
                raise CorruptFile(self.res.url, f"truncated or corrupt TIFF ({message.splitlines()[0]})")

    @cached_property
    def _summary(self) -> list[OmeImageSummary] | None:
        """The OME-XML's images (names, sizes, channels), or None without usable OME-XML."""
        xml = self._xml
        if not xml:
            return None
        try:
            # An XML without images (a BinaryOnly block whose set could not be used) describes
            # nothing here: sizes and channels then come from the TIFF itself, never defaults.
            return summarize_ome_xml(xml, self.res.url) or None
        except CorruptFile as exc:
            log.warning("%s", exc)
            self._warnings.append(f"OME-XML not used: {exc.reason}; pixels are read, metadata is synthesised")
            return None

    @cached_property
    def _ome(self) -> Any:
        """The full ome-types model (built only when ``img.ome`` is asked for)."""
        if self._summary is None:
            return None
        try:
            return parse_ome_xml(self._xml or "", self.res.url)
        except CorruptFile as exc:
            log.warning("%s", exc)
            self._warnings.append(f"OME-XML not used: {exc.reason}; metadata is synthesised")
            return None

    def status(self) -> dict[str, Any]:
        self._summary  # noqa: B018 - read now so that a refused OME-XML is reported
        out: dict[str, Any] = {}
        if self._warnings:
            out["warnings"] = list(self._warnings)
        if self._associated:
            out["associated"] = list(self._associated)
        return out

    def ome_xml(self) -> str | None:
        return self._xml

    def files(self) -> list[str]:
        """The opened file, then every other member of its OME-TIFF set and the
        ``.companion.ome`` file describing it (real paths)."""
        out = [self.source]
        if not self.res.local:
            return out
        seen = {os.path.realpath(self.res.path)}
        extra = list(self.fileset.members) if self.fileset else []
        if self._companion:
            extra.append(self._companion)
        for path in extra:
            real = os.path.realpath(path)
            if real not in seen:
                seen.add(real)
                out.append(real)
        return out

    def associated_names(self) -> list[str]:
        """Names of the associated images (thumbnail, label, macro, ...): not levels, not scenes."""
        return list(self._associated)

    def associated(self, name: str) -> np.ndarray:
        """An associated image as a (Y, X, 3) uint8 RGB array."""
        series = self._associated.get(name)
        if series is None:
            shown = ", ".join(repr(n) for n in self._associated) or "none"
            raise BioimnbError(self.source, f"no associated image {name!r}; associated images: {shown}")
        nbytes = int(np.prod(series.shape, dtype=np.int64)) * np.dtype(series.dtype).itemsize
        if nbytes > limits().max_decode_bytes:
            raise decode_limit_error(self.source, "associated image", nbytes)
        try:
            with storage_errors(self.source):
                arr = np.asarray(series.asarray())
        except BioimnbError:
            raise
        except Exception as exc:  # noqa: BLE001 - codec errors of a damaged page
            raise CorruptFile(self.source, f"cannot read associated image {name!r} ({type(exc).__name__}: {exc})") from exc
        return _as_rgb8(arr)

    @property
    def scene_names(self) -> list[str]:
        names = []
        for i, s in enumerate(self.series):
            name = (s.name or "").strip()
            if self.format_name in ("SVS", "NDPI") and name.lower() == "baseline":
                name = ""
            names.append(name or f"Image:{i}")
        return names

    # -- one scene -----------------------------------------------------------------------
    def _native(self, series_index: int, level: int) -> tuple[Any, tuple[int, ...] | None]:
        s = self.series[series_index]
        lv = s.levels[level]
        if (
            self.res.local
            and len(s.levels) == 1
            and lv.dataoffset is not None
            and lv.keyframe.compression == 1
            and lv.keyframe.predictor == 1
            and lv.keyframe.fillorder == 1
        ):
            # Contiguous, uncompressed: a memory map reads only the pages a region touches.
            need = int(lv.dataoffset) + int(np.prod(lv.shape, dtype=np.int64)) * np.dtype(lv.dtype).itemsize
            if need > self.size:
                raise CorruptFile(self.res.url, f"truncated: image data runs to byte {need} but the file has {self.size} bytes")
            mm = np.memmap(
                self.res.path,
                dtype=np.dtype(lv.dtype).newbyteorder(self.tif.byteorder),
                mode="r",
                offset=lv.dataoffset,
                shape=tuple(lv.shape),
            )
            return mm, None
        if self._pool is not None and os.environ.get("BIOIMNB_TIFF_READER", "direct") == "direct":
            direct = direct_level(lv, self._pool, self.res.url)
            if direct is not None:
                return direct, direct.chunks
        return _LazyView(s, level, self.res.url), None


    def _load_scene(self, index: int) -> SceneData:
        try:
            return self._load_scene_unchecked(index)
        except BioimnbError:
            raise
        except Exception as exc:  # noqa: BLE001 - tifffile fails in many ways on hostile headers
            raise CorruptFile(self.res.url, f"malformed TIFF ({type(exc).__name__}: {_first(exc)})") from exc

    def _load_scene_unchecked(self, index: int) -> SceneData:
        s = self.series[index]
        axis_map = AxisMap(s.axes, self.res.url)
        levels = []
        for k in range(len(s.levels)):
            try:
                with storage_errors(self.res.url):
                    native, chunks = self._native(index, k)
            except BioimnbError:
                raise
            except Exception as exc:  # noqa: BLE001 - tifffile fails in many ways on hostile headers
                raise CorruptFile(self.res.url, f"malformed TIFF level {k} ({type(exc).__name__}: {_first(exc)})") from exc
            levels.append(Level(native, AxisMap(s.levels[k].axes, self.res.url), chunks=chunks, name="tiff"))
        virtual = False
        if len(levels) == 1:
            extra = virtual_pyramid(levels[0])
            virtual = bool(extra)
            levels += extra
        shape = levels[0].shape
        physical, channels = self._scene_metadata(index, shape, axis_map)
        name = self.scene_names[index]

        def build_ome() -> Any:
            if self._ome is not None:
                return self._ome
            return synthesize_ome([(name, shape, levels[0].dtype, physical, channels)])

        return SceneData(
            name=name,
            levels=levels,
            physical_size=physical,
            channels=channels,
            ome=build_ome,
            virtual_pyramid=virtual,
        )

    def _ome_image(self, index: int) -> OmeImageSummary | None:
        images = self._summary
        if not images:
            return None
        name = (self.series[index].name or "").strip()
        for img in images:
            if name and img.name == name:
                return img
        return images[index] if index < len(images) else None

    def _scene_metadata(
        self, index: int, shape: tuple[int, ...], axis_map: AxisMap
    ) -> tuple[PhysicalSize, list[Channel]]:
        nc = shape[1]
        rgb = "S" in axis_map.target
        names = [f"C{i}" for i in range(nc)] if not (rgb and nc == 1) else ["RGB"]
        colors = default_colors(nc)
        phys = PhysicalSize()
        img = self._ome_image(index)
        if img is not None:
            phys = PhysicalSize(_ome_len(*img.size_x), _ome_len(*img.size_y), _ome_len(*img.size_z))
            for i, (ch_name, ch_color) in enumerate(img.channels[:nc]):
                if ch_name:
                    names[i] = ch_name
                colors[i] = color_hex(ch_color) or colors[i]
        elif self.tif.is_imagej:
            phys = self._imagej_size()
        elif self.format_name == "SVS":
            phys = self._svs_size()
        else:
            phys = self._resolution_size()
        return phys, [Channel(n, c) for n, c in zip(names, colors, strict=True)]

    def _resolution_size(self, unit_override: float | None = None) -> PhysicalSize:
        page = self.tif.pages.first
        xres = page.tags.get("XResolution")
        yres = page.tags.get("YResolution")
        unit = page.tags.get("ResolutionUnit")
        if xres is None or yres is None:
            return PhysicalSize()
        per_unit_um = unit_override
        if per_unit_um is None:
            code = int(unit.value) if unit is not None else 2
            if code == 3:
                per_unit_um = LENGTH_UM["cm"]
            elif code == 2:
                per_unit_um = LENGTH_UM["in"]
            else:
                return PhysicalSize()

        def size(tag: Any) -> float | None:
            num, den = tag.value if isinstance(tag.value, tuple) else (tag.value, 1)
            if not num or not den:
                return None
            pixels_per_unit = num / den
            um = per_unit_um / pixels_per_unit
            # Inch-based values of 1200 dpi or less are display/print defaults (72, 96, 300 dpi),
            # not the sampling of a microscope.
            if unit_override is None and per_unit_um == LENGTH_UM["in"] and pixels_per_unit <= 1200:
                return None
            return PhysicalSize.clean(um)

        return PhysicalSize(size(xres), size(yres), None)

    def _imagej_size(self) -> PhysicalSize:
        meta = self.tif.imagej_metadata or {}
        unit = str(meta.get("unit", "")).strip().lower().replace("\\u00b5", "µ")
        factor = unit_factor(unit) if unit else None  # no unit: pixels, not a measurement
        if factor is None:
            return PhysicalSize()
        xy = self._resolution_size(unit_override=factor)
        z = PhysicalSize.clean(meta.get("spacing"))
        return PhysicalSize(xy.X, xy.Y, z * factor if z else None)

    def _svs_size(self) -> PhysicalSize:
        desc = self.tif.pages.first.description or ""
        m = re.search(r"MPP\s*=\s*([0-9.eE+-]+)", desc)
        mpp = PhysicalSize.clean(m.group(1)) if m else None
        return PhysicalSize(mpp, mpp, None)

    def close(self) -> None:
        self._close_files()


def _ome_len(value: Any, unit: Any) -> float | None:
    """An OME length (the unit defaults to µm, as in the schema); an unknown unit: None."""
    return to_micrometres(value, unit)


def struct_error() -> type[Exception]:
    import struct

    return struct.error


def _as_rgb8(arr: np.ndarray) -> np.ndarray:
    a = np.squeeze(arr)
    if a.ndim == 3 and a.shape[0] in (3, 4) and a.shape[-1] not in (3, 4):
        a = np.moveaxis(a, 0, -1)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=-1)
    if a.ndim != 3 or a.shape[-1] < 3:
        a = np.repeat(a.reshape(a.shape[0], -1)[..., :1], 3, axis=-1) if a.ndim >= 2 else np.zeros((1, 1, 3), np.uint8)
    a = a[..., :3]
    if a.dtype != np.uint8:
        lo, hi = float(a.min()), float(a.max())
        a = np.zeros(a.shape, np.uint8) if hi <= lo else ((a.astype(np.float64) - lo) * (255.0 / (hi - lo))).astype(np.uint8)
    return np.ascontiguousarray(a)


def open_tiff(res: Resolved, size: int) -> TiffBackend:
    if size == 0:
        raise CorruptFile(res.url, "file is empty (0 bytes)")
    if res.local and read_head(res, 8).lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        return open_tiff_set(res)  # OME-XML, not a TIFF: a .companion.ome file describing a set
    try:
        return TiffBackend(res, size)
    except UnsupportedFormat:
        raise
    except MemoryError as exc:
        raise CorruptFile(res.url, "declares sizes too large to read") from exc


def open_tiff_set(res: Resolved) -> TiffBackend:
    """A multi-file OME-TIFF opened from its ``.companion.ome`` file (OME-XML naming the TIFF
    members): the whole set, as from any of its members.  Local files only."""
    if not res.local:
        raise UnsupportedFormat(res.url, "OME-TIFF sets described by a .companion.ome file are read from local storage only")
    with storage_errors(res.url):
        xml = read_confined(res.path, res.root, res.url).decode("utf-8", errors="replace")
    holder = os.path.realpath(res.path)
    root = _parse(xml, res.url)
    if _local(root.tag) != "OME":
        raise CorruptFile(res.url, f"not OME-XML (root element is <{_local(root.tag)}>)")
    names = companion_ome_members(xml)
    first = None
    for name in names:
        real, exists = _member(name, os.path.dirname(holder), res)
        if exists:
            first = real
            break
    if first is None:
        shown = ", ".join(repr(n) for n in names[:3]) or "none"
        raise CorruptFile(res.url, f"none of the TIFF files this companion file names exists ({shown})")
    try:
        return TiffBackend(res, os.stat(first).st_size, tiff_path=first, preset=FileSet(xml, holder))
    except MemoryError as exc:
        raise CorruptFile(res.url, "declares sizes too large to read") from exc


__all__ = ["FileSet", "TiffBackend", "companion_ome_members", "open_tiff", "open_tiff_set", "plan_fileset"]
