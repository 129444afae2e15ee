"""What a path or URL is: a folder, an image (which format, which reader, which file set) or a
plain file, decided from content, reading a few KB at most.

This is the one place that decides it.  ``open_image``, every lister, the server and the scan
ask here, so they agree: a ``.zarr`` folder without metadata is a folder; a zarr whose
``zarr.json`` is broken, a 0-byte or text ``.tif`` are image entries carrying an ``error``; an
OME-Zarr is recognised by its metadata, not its name; a conversion still being written carries
``incomplete``.

The decisions are pure functions over what was read (:func:`zarr_metadata`, :func:`file_kind`),
so listers that fetch bytes their own way (paged S3 requests, concurrent HTTP calls) reach the
same answer as :func:`classify`, which fetches them itself.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from .errors import BioimnbError
from .registry import HEAD_BYTES, Format, format_for_content, format_for_name, sniff_family
from .storage import Resolved, open_confined, read_confined, resolve, storage_errors

__all__ = [
    "MRXS_SUFFIX",
    "ZARR_MARKERS",
    "ZARR_METADATA_NAMES",
    "Classified",
    "classify",
    "classify_resolved",
    "docs_stamp",
    "file_kind",
    "zarr_metadata",
]

Kind = Literal["folder", "image", "file"]

ZARR_MARKERS = ("zarr.json", ".zattrs", ".zgroup", ".zarray")
ZARR_METADATA_NAMES = frozenset({*ZARR_MARKERS, ".zmetadata"})
"""Every zarr metadata document name (the markers plus v2 consolidated metadata)."""
"""Files whose presence at the top of a folder makes it a zarr node (v3; v2 attributes, group,
array), in the order they are read."""
OME_KEYS = ("multiscales", "plate", "well", "bioformats2raw.layout", "labels")
MRXS_SUFFIX = ".mrxs"
ZARR_METADATA_LIMIT = 4 * 2**20
"""Top-level zarr metadata larger than this is not read by a classification (4 MiB)."""


@dataclass(frozen=True)
class Classified:
    kind: Kind
    format: str | None = None
    """Image format (``OME-TIFF``, ``OME-Zarr``, ``Zarr array``, ...); for plain zarr folders
    the node type (``zarr group``)."""
    reader: str | None = None
    size: int | None = None
    """Bytes on storage (file size; MRXS: the index plus its folder); None when unknown."""
    files: int | None = None
    """Files of a multi-file image (MRXS), else None."""
    incomplete: bool = False
    """A conversion that has not finished (bioimnb's own marker in the metadata)."""
    error: str | None = None
    """Why an image-looking entry cannot be opened (empty, text, broken metadata, ...)."""
    ngff_version: str | None = None
    is_dir: bool = False
    stamp: str | None = None
    """Changes when the entry changes: size and mtime of a local file, a digest of a zarr's
    top-level metadata.  Caches (the scan's facts) key on it."""
    sniffed: bool = True
    """False when a file was classified by its name and size only (its content not read)."""
    modified: float | None = None
    """Last modification (POSIX seconds) when the listing gave it: the stat of a local file, an
    S3 object's ``LastModified``; None for folders (a zarr dates from its oldest object)."""
    documents: dict[str, bytes] | None = field(default=None, repr=False, compare=False)
    """A zarr folder's top-level metadata documents as the classification read them (so opening
    it does not read them again); not part of :meth:`to_dict`."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("documents")
        return data

    @property
    def format_record(self) -> Format | None:
        from .registry import format_by_name

        return format_by_name(self.format) if self.format else None


# --------------------------------------------------------------------------------------------
# Pure decisions over bytes already read
# --------------------------------------------------------------------------------------------


def _ngff_version(attrs: dict[str, Any], zarr_format: int | None) -> str | None:
    version = attrs.get("version")
    if version is None:
        for key in ("multiscales", "plate", "well"):
            block = attrs.get(key)
            if isinstance(block, list) and block and isinstance(block[0], dict):
                version = block[0].get("version")
            elif isinstance(block, dict):
                version = block.get("version")
            if version is not None:
                break
    if version is None and zarr_format == 3:
        version = "0.5"
    return None if version is None else str(version)


def docs_stamp(docs: dict[str, Any]) -> str:
    """A digest of a zarr's top-level metadata documents."""
    import hashlib

    digest = hashlib.sha1(usedforsecurity=False)
    for marker in sorted(docs):
        data = docs[marker]
        digest.update(marker.encode() + b"\0" + (data if isinstance(data, bytes) else b"") + b"\0")
    return "meta:" + digest.hexdigest()


def zarr_metadata(docs: dict[str, Any]) -> Classified | None:
    """Classify a folder from its top-level zarr metadata documents (``{marker: bytes}`` for the
    markers present; ``None`` bytes = present but unreadable).  ``None`` when no marker is
    present (not a zarr)."""
    found = _zarr_metadata(docs)
    if found is None:
        return None
    kept = {k: v for k, v in docs.items() if isinstance(v, bytes)}
    return replace(found, stamp=docs_stamp(docs), documents=kept or None)


def _zarr_metadata(docs: dict[str, Any]) -> Classified | None:
    present = [m for m in ZARR_MARKERS if m in docs]
    if not present:
        return None
    attrs: dict[str, Any] = {}
    node_type: str | None = None
    zarr_format: int | None = None
    for marker in present:
        data = docs[marker]
        if data is None or isinstance(data, Exception):
            why = data.reason if isinstance(data, BioimnbError) else (str(data) if data else "cannot be read")
            error = why if why.startswith(marker) else f"{marker}: {why}"
            return Classified("image", "OME-Zarr", "zarr", error=error, is_dir=True)
        try:
            meta = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            return Classified("image", "OME-Zarr", "zarr", error=f"{marker}: invalid JSON ({exc})", is_dir=True)
        if not isinstance(meta, dict):
            return Classified("image", "OME-Zarr", "zarr", error=f"{marker}: not a JSON object", is_dir=True)
        if marker == "zarr.json":
            zarr_format = 3
            node_type = str(meta.get("node_type") or "")
            raw = meta.get("attributes") or {}
            attrs = raw if isinstance(raw, dict) else {}
            break
        zarr_format = 2
        if marker == ".zattrs":
            attrs = meta
        elif marker == ".zarray":
            node_type = "array"
        elif node_type is None:
            node_type = "group"
    ome = attrs.get("ome", attrs)
    ome = ome if isinstance(ome, dict) else {}
    state = attrs.get("bioimnb")
    incomplete = isinstance(state, dict) and state.get("status") not in (None, "complete")
    if any(k in ome for k in OME_KEYS):
        fmt = "OME-Zarr plate" if "plate" in ome else "OME-Zarr"
        return Classified(
            "image", fmt, "zarr", incomplete=incomplete, ngff_version=_ngff_version(ome, zarr_format), is_dir=True
        )
    if node_type == "array":
        return Classified("image", "Zarr array", "zarr", incomplete=incomplete, is_dir=True)
    if incomplete:  # a conversion that has not yet written its OME metadata
        return Classified("image", "OME-Zarr", "zarr", incomplete=True, is_dir=True)
    return Classified("folder", "zarr group", is_dir=True)


def file_kind(name: str, size: int | None, head: bytes | None) -> Classified:
    """Classify a file from its name, size and first bytes (``head`` ``None``: not read, then
    the name alone decides)."""
    by_name = format_for_name(name)
    if head is None:
        if by_name is None:
            return Classified("file", size=size, sniffed=False)
        error = "file is empty (0 bytes)" if size == 0 else None
        return Classified("image", by_name.name, by_name.reader, size=size, error=error, sniffed=False)
    fmt = format_for_content(head, name)
    if fmt is not None and not (size == 0 and fmt.sniff is not None):
        return Classified("image", fmt.name, fmt.reader, size=size)
    if by_name is None:
        return Classified("file", size=size)
    family = sniff_family(head)
    article = "an" if by_name.name[:1] in "AEIOU" or by_name.name.startswith(("OME", "ND", "LSM", "SVS", "SCN", "STK", "MRXS")) else "a"
    expected = f"{article} {by_name.name} file"
    if family == "empty" or size == 0:
        error = "file is empty (0 bytes)"
    elif family == "text":
        error = f"not {expected}: the content is text"
    elif family == "hdf5":
        error = "HDF5-based image formats (Imaris .ims, ...) are not supported yet"
    else:
        error = f"not {expected}: unrecognised content signature {head[:8]!r}"
    return Classified("image", by_name.name, by_name.reader, size=size, error=error)


# --------------------------------------------------------------------------------------------
# Local paths
# --------------------------------------------------------------------------------------------


def _local_zarr_docs(folder: str, root: str | None) -> dict[str, Any]:
    """``{marker: bytes}`` for the metadata files present; an unreadable one maps to the
    exception saying why (a link out of the root, a FIFO, too large, ...)."""
    docs: dict[str, Any] = {}
    for marker in ZARR_MARKERS:
        path = os.path.join(folder, marker)
        try:
            os.lstat(path)
        except OSError:
            continue
        try:
            docs[marker] = read_confined(path, root, marker, limit=ZARR_METADATA_LIMIT)
        except BioimnbError as exc:
            docs[marker] = exc
        except OSError as exc:
            docs[marker] = OSError(exc.strerror or str(exc))
        if marker == "zarr.json":
            break  # v3: the one document that says everything
    return docs


def _mrxs(path: str, name: str, size: int, root: str | None) -> Classified:
    folder = os.path.join(os.path.dirname(path), name[: -len(MRXS_SUFFIX)])
    files, total = 1, size
    if not os.path.isdir(folder):
        missing = f"its data folder {name[: -len(MRXS_SUFFIX)]}/ is missing"
        return Classified("image", "MRXS", "openslide", size=size, files=1, error=missing)
    try:
        if root is not None and not _inside(folder, root):
            return Classified("image", "MRXS", "openslide", size=size, files=1, error="its data folder lies outside the root")
        with os.scandir(folder) as it:
            for de in it:
                if de.is_file(follow_symlinks=False):
                    files += 1
                    total += de.stat(follow_symlinks=False).st_size
    except FileNotFoundError:
        return Classified("image", "MRXS", "openslide", size=size, files=1, error=f"its data folder {name[: -len(MRXS_SUFFIX)]}/ is missing")
    except OSError:
        pass
    return Classified("image", "MRXS", "openslide", size=total, files=files)


def _inside(path: str, root: str) -> bool:
    from .storage import inside

    return inside(os.path.realpath(path), root)


def classify_local(path: str, *, root: str | None = None, content: bool = True) -> Classified:
    """Classify a local path (links followed, but never out of ``root`` when given).

    ``content=False`` decides files by name and size only (no read).
    """
    name = os.path.basename(path.rstrip(os.sep)) or path
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        if root is not None and not _inside(path, root):
            return Classified("file", error="a link leading outside the root")
        try:
            st = os.stat(path)
        except OSError:
            return Classified("file", error="a broken link")
    if stat.S_ISDIR(st.st_mode):
        found = zarr_metadata(_local_zarr_docs(path, root))
        return found if found is not None else Classified("folder", is_dir=True)
    if not stat.S_ISREG(st.st_mode):
        by_name = format_for_name(name)
        return Classified(
            "image" if by_name else "file",
            by_name.name if by_name else None,
            by_name.reader if by_name else None,
            error="not a regular file (a FIFO, device or socket)",
        )
    size = st.st_size
    stamp = f"{size}:{st.st_mtime_ns}"
    when = st.st_mtime
    by_name = format_for_name(name)
    if by_name is not None and by_name.companion_folder:
        return replace(_mrxs(path, name, size, root), stamp=stamp, modified=when)
    if not content or size == 0:
        return replace(file_kind(name, size, None if not content else b""), stamp=stamp, modified=when)
    try:
        with open_confined(path, root, path) as fh:
            head = fh.read(HEAD_BYTES)
    except BioimnbError as exc:
        return replace(file_kind(name, size, None), error=exc.reason, stamp=stamp, modified=when)
    except OSError as exc:
        return replace(file_kind(name, size, None), error=exc.strerror or str(exc), stamp=stamp, modified=when)
    return replace(file_kind(name, size, head), stamp=stamp, modified=when)


# --------------------------------------------------------------------------------------------
# Any source
# --------------------------------------------------------------------------------------------


def _remote(res: Resolved) -> Classified:
    fs, path, name = res.fs, res.path, res.name
    is_zarr_name = format_for_name(name, is_dir=True) is not None
    info: dict[str, Any] | None
    try:
        info = fs.info(path)
    except FileNotFoundError:
        info = None
        if not is_zarr_name:
            raise
    is_dir = info is None or info.get("type") == "directory"
    size = None if info is None else info.get("size")
    as_file: Classified | None = None
    if not is_dir:
        known = None if size is None else int(size)
        head = fs.cat_file(path) if known is not None and known <= HEAD_BYTES else fs.cat_file(path, start=0, end=HEAD_BYTES)
        http = bool({"http", "https"} & set(fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)))
        index_page = http and sniff_family(head) == "text" and format_for_content(head, name) is None
        as_file = file_kind(name, known, head)
        if not index_page:
            return as_file
        # An HTTP "file" that is a folder's index page: a zarr folder when it holds metadata.
    base = path.rstrip("/")
    docs: dict[str, bytes | None] = {}
    for marker in ZARR_MARKERS:
        try:
            docs[marker] = fs.cat_file(f"{base}/{marker}")
        except FileNotFoundError:
            continue
        except Exception:  # noqa: BLE001 - unreadable metadata is reported as such
            docs[marker] = None
        if marker == "zarr.json":
            break
    found = zarr_metadata(docs)
    if found is not None:
        return found
    if as_file is not None:
        return as_file
    if info is None:
        raise FileNotFoundError(path)
    return Classified("folder", is_dir=True)


def classify_resolved(res: Resolved) -> Classified:
    """Classify an already resolved source (see :func:`classify`)."""
    with storage_errors(res.url):
        if res.local:
            return classify_local(res.path, root=res.root)
        return _remote(res)


def classify(
    source: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None, **storage_options: Any
) -> Classified:
    """What ``source`` is: ``folder``, ``image`` (with its format and reader) or ``file``.

    Reads at most the first 512 bytes of a file, or a folder's top-level zarr metadata.
    Missing sources raise :class:`~bioimnb.core.errors.SourceNotFound`.
    """
    return classify_resolved(resolve(source, root=root, **storage_options))
