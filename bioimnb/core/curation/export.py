"""Exports of a folder's metadata in the forms archives ask for.

- a BioImage Archive **file list** (TSV): first column ``Files`` (the path relative to the
  folder, forward slashes), one row per file (an OME-Zarr, a folder, is one row), the file's
  attributes in further columns: what the scan knows (format, dimensions, pixel size, channels,
  acquisition date, instrument, objective) and the image's key-value (map) annotations;
- the **REMBI study** that applies to the folder, as JSON (:mod:`.rembi`);
- the key-value annotations as an **IDR-style annotation CSV**: ``Dataset Name``, ``Image Name``,
  then one column per key (IDR's bulk annotation layout).

File attributes come from the scan (cached, headers only); annotations from each image's OME
metadata (headers only, parsed with the same safety checks as every OME-XML: no DOCTYPE or
entities, a size limit).  Nothing reads pixels.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import BioimnbError, SourceNotFound
from .rembi import SIDECAR, RembiError, StudyIndex

__all__ = [
    "BIA_COLUMNS",
    "ExportError",
    "ExportRow",
    "bia_filelist",
    "export",
    "idr_annotations",
    "map_annotations",
    "rows",
]

BIA_COLUMNS = ("Format", "Dimensions", "Pixel size (µm)", "Channels", "Acquisition date", "Instrument", "Objective", "Size (bytes)")
"""The file attributes every BIA file list row carries (empty where unknown), after ``Files``."""



class ExportError(BioimnbError, ValueError):
    """An export that cannot be made: nothing asked for, an output that cannot be written."""


@dataclass
class ExportRow:
    path: str
    """Relative to the exported folder, forward slashes."""
    kind: str
    attributes: dict[str, str] = field(default_factory=dict)
    annotations: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)
    """Per scene with annotations: (scene name, [(key, value), ...])."""
    error: str | None = None


def _tag(el: ET.Element) -> str:
    return el.tag.rsplit("}", 1)[-1]


def map_annotations(xml: str | bytes | None, source: object) -> list[tuple[str, list[tuple[str, str]]]]:
    """Key-value pairs of every OME ``MapAnnotation`` an ``Image`` refers to, per image:
    ``[(image name, [(key, value), ...]), ...]`` in document order (images without any are left
    out).  Safe parsing (:func:`bioimnb.core.metadata.ome.check_xml`); an unreadable document
    raises :class:`~bioimnb.core.errors.CorruptFile`."""
    if not xml:
        return []
    from ..errors import CorruptFile
    from ..metadata.ome import check_xml

    data = check_xml(xml, source)
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise CorruptFile(source, f"invalid OME-XML metadata ({exc})") from None
    maps: dict[str, list[tuple[str, str]]] = {}
    for el in root.iter():
        if _tag(el) != "MapAnnotation" or not el.get("ID"):
            continue
        pairs: list[tuple[str, str]] = []
        for value in el:
            if _tag(value) != "Value":
                continue
            for m in value:
                if _tag(m) == "M":
                    pairs.append(((m.get("K") or "").strip(), (m.text or "").strip()))
        maps[el.get("ID") or ""] = pairs
    out: list[tuple[str, list[tuple[str, str]]]] = []
    for index, image in enumerate(el for el in root if _tag(el) == "Image"):
        pairs = []
        for ref in image:
            if _tag(ref) == "AnnotationRef" and ref.get("ID") in maps:
                pairs.extend(maps[ref.get("ID") or ""])
        if pairs:
            out.append((image.get("Name") or f"Image:{index}", pairs))
    return out


def _relative(path: str, folder: str, root: str | None) -> str:
    if root is not None and not os.path.isabs(path) and "://" not in path:
        return path.replace(os.sep, "/")
    if "://" in folder:
        base = folder.rstrip("/") + "/"
        return path[len(base) :] if path.startswith(base) else path
    rel = os.path.relpath(path, folder)
    return rel.replace(os.sep, "/")


def _attributes(facts: Any) -> dict[str, str]:
    attrs = {name: "" for name in BIA_COLUMNS}
    attrs["Size (bytes)"] = "" if facts.bytes is None else str(facts.bytes)
    if facts.kind != "image":
        return attrs
    attrs["Format"] = facts.format or ""
    scenes = facts.scenes or []
    if scenes:
        first = scenes[0]
        axes, shape = first.get("axes") or "", first.get("shape") or []
        dims = " x ".join(f"{a}={n}" for a, n in zip(axes, shape) if n != 1 or a in "YX")
        attrs["Dimensions"] = dims + (f" ({len(scenes)} scenes)" if len(scenes) > 1 else "")
        size = first.get("physical_size_um") or {}
        known = [f"{a}={size[a]:g}" for a in "XYZ" if isinstance(size.get(a), (int, float))]
        attrs["Pixel size (µm)"] = " ".join(known)
        attrs["Channels"] = ", ".join(str(c) for c in (first.get("channels") or []))
    attrs["Acquisition date"] = facts.acquired or ""
    attrs["Instrument"] = facts.instrument or ""
    attrs["Objective"] = facts.objective or ""
    return attrs


def _open_source(path: str, root: str | None) -> str:
    if root is not None and "://" not in path and not os.path.isabs(path):
        return os.path.join(root, path)
    return path


def rows(
    folder: str | os.PathLike[str],
    *,
    annotations: bool = True,
    recursive: bool = True,
    root: str | os.PathLike[str] | None = None,
    cache: bool | str | os.PathLike[str] = True,
    skip: Iterable[str] = (),
    **storage_options: Any,
) -> list[ExportRow]:
    """One :class:`ExportRow` per file or image under ``folder`` (scan order), with the
    attributes of the scan and, when ``annotations``, the images' map annotations.  The
    REMBI sidecars and the paths in ``skip`` are left out."""
    from ..facts import scan
    from ..images import open_image

    text = os.fspath(folder)
    if "://" not in text:
        text = os.path.abspath(text)
        if not os.path.isdir(text):
            raise SourceNotFound(text, "no such folder")
    root_text = None if root is None else os.path.abspath(os.fspath(root))
    skipped = {os.path.abspath(s) if "://" not in s else s for s in skip}
    out: list[ExportRow] = []
    for facts in scan(text, recursive=recursive, root=root, cache=cache, **storage_options):
        rel = _relative(facts.path, text, root_text)
        if rel.rsplit("/", 1)[-1] == SIDECAR or _open_source(facts.path, root_text) in skipped:
            continue
        row = ExportRow(rel, facts.kind, _attributes(facts), error=facts.error)
        if annotations and facts.kind == "image" and not facts.error:
            try:
                with open_image(_open_source(facts.path, root_text), root=root, **storage_options) as img:
                    row.annotations = map_annotations(img.ome_xml, facts.path)
            except BioimnbError as exc:
                row.error = exc.reason
        out.append(row)
    return out


def _clean(value: str) -> str:
    """One line per cell: tabs and newlines become spaces."""
    return " ".join(str(value).split())


def bia_filelist(table: list[ExportRow]) -> str:
    """The BioImage Archive file list (TSV) of these rows."""
    keys: list[str] = []
    for row in table:
        for _, pairs in row.annotations:
            for k, _v in pairs:
                if k and k not in keys and k not in BIA_COLUMNS and k != "Files":
                    keys.append(k)
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(["Files", *BIA_COLUMNS, *keys])
    for row in table:
        values: dict[str, list[str]] = {}
        for _, pairs in row.annotations:
            for k, v in pairs:
                if v not in values.setdefault(k, []):
                    values[k].append(v)
        writer.writerow(
            [_clean(row.path)]
            + [_clean(row.attributes.get(c, "")) for c in BIA_COLUMNS]
            + [_clean("; ".join(values.get(k, []))) for k in keys]
        )
    return buf.getvalue()


def idr_annotations(table: list[ExportRow]) -> str:
    """Map annotations as an IDR-style annotation CSV: ``Dataset Name`` (the image's folder,
    relative), ``Image Name`` (file name, with `` [scene]`` for multi-scene files), then one
    column per key in order of appearance; repeated keys of one image are joined with ``; ``."""
    keys: list[str] = []
    entries: list[tuple[str, str, dict[str, list[str]]]] = []
    for row in table:
        dataset, _, name = row.path.rpartition("/")
        multi = len(row.annotations) > 1
        for scene, pairs in row.annotations:
            values: dict[str, list[str]] = {}
            for k, v in pairs:
                if not k:
                    continue
                if k not in keys:
                    keys.append(k)
                values.setdefault(k, []).append(v)
            entries.append((dataset or ".", f"{name} [{scene}]" if multi else name, values))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["Dataset Name", "Image Name", *keys])
    for dataset, name, values in entries:
        writer.writerow([dataset, name] + ["; ".join(values.get(k, [])) for k in keys])
    return buf.getvalue()


def _write(target: str, text: str) -> str:
    """Write ``text`` to a local path (atomically) or an fsspec URL."""
    if "://" in target and not target.startswith("file://"):
        import fsspec

        from ..storage import storage_errors

        with storage_errors(target), fsspec.open(target, "w", encoding="utf-8") as fh:
            fh.write(text)
        return target
    path = os.path.abspath(target[len("file://") :] if target.startswith("file://") else target)
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        raise SourceNotFound(target, f"cannot be written: no such folder {directory}")
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise ExportError(target, f"cannot be written ({exc.strerror or exc})") from None
    return path


def export(
    folder: str | os.PathLike[str],
    *,
    bia_filelist_path: str | os.PathLike[str] | None = None,
    rembi_path: str | os.PathLike[str] | None = None,
    idr_annotations_path: str | os.PathLike[str] | None = None,
    recursive: bool = True,
    root: str | os.PathLike[str] | None = None,
    cache: bool | str | os.PathLike[str] = True,
    progress: Callable[[str], None] | None = None,
    **storage_options: Any,
) -> dict[str, Any]:
    """Write the requested exports of ``folder``; returns what was written
    (``{"bia_filelist": {"path", "rows"}, "rembi": {"path", "missing"}, "idr_annotations": {"path", "rows"}}``).

    The REMBI study is the one that applies to the folder (its sidecar merged over its
    parents'); when none applies, :class:`~.rembi.RembiError` says so and nothing is written.
    """
    text = os.fspath(folder)
    if not (bia_filelist_path or rembi_path or idr_annotations_path):
        raise ExportError(text, "nothing to export: give a BIA file list, a REMBI JSON and/or an IDR annotation CSV to write")
    for out in (bia_filelist_path, rembi_path, idr_annotations_path):
        target = os.fspath(out) if out else ""
        if target and "://" not in target:
            directory = os.path.dirname(os.path.abspath(target))
            if not os.path.isdir(directory):
                raise SourceNotFound(target, f"cannot be written: no such folder {directory}")
    result: dict[str, Any] = {}
    study = None
    if rembi_path:
        index = StudyIndex(root=root, strict=True, **storage_options)
        folder_key = text if "://" in text else os.path.abspath(text)
        if "://" not in text and not os.path.isdir(folder_key):
            raise SourceNotFound(text, "no such folder")
        study = index.for_folder(folder_key.rstrip("/") if "://" in folder_key else folder_key)
        if study is None:
            raise RembiError(text, f"no REMBI study applies to this folder (write one with StudyForm or as {SIDECAR})")
    table: list[ExportRow] = []
    if bia_filelist_path or idr_annotations_path:
        outputs = [os.fspath(p) for p in (bia_filelist_path, idr_annotations_path, rembi_path) if p]
        table = rows(text, recursive=recursive, root=root, cache=cache, skip=outputs, **storage_options)
    if bia_filelist_path:
        path = _write(os.fspath(bia_filelist_path), bia_filelist(table))
        result["bia_filelist"] = {"path": path, "rows": len(table)}
        if progress:
            progress(f"BIA file list: {len(table)} row(s) -> {path}")
    if idr_annotations_path:
        csv_text = idr_annotations(table)
        path = _write(os.fspath(idr_annotations_path), csv_text)
        result["idr_annotations"] = {"path": path, "rows": sum(len(r.annotations) for r in table)}
        if progress:
            progress(f"IDR annotations: {result['idr_annotations']['rows']} row(s) -> {path}")
    if rembi_path and study is not None:
        path = _write(os.fspath(rembi_path), study.to_json())
        result["rembi"] = {"path": path, "missing": study.missing()}
        if progress:
            progress(f"REMBI study ({len(study.missing())} required fields missing) -> {path}")
    return result
