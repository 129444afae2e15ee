"""An editing session over one source: pending edits, their diff, undo, validation, save.

>>> s = EditSession("cells.ome.tif")
>>> s.set("channel[1].name=GFP", "pixel_size_x=0.325")      # checked now; nothing written yet
>>> s.diff()                                                 # what a save would change
>>> s.save()                                                 # in place, pixels untouched

Every save records its provenance inside the OME model itself, as a MapAnnotation in the
``https://bioimnb.org/metadata-edit`` namespace: the tool and version, the time, one
``changed`` pair per field (``field: old -> new``) and, for OME-TIFF, where the previous XML
still lies in the file.  Why in the model: it travels with the file to every OME reader, OMERO
import keeps it, and no second file can go missing or disagree with the data.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import BioimnbError, CorruptFile
from .changes import (
    PROVENANCE_NS,
    Change,
    apply_changes,
    diff_models,
    get_map,
    parse_assignments,
    set_map_value,
)
from .model import MetadataDocument, load, sidecar_path
from .validate import ValidationReport, schema_problems, validate_document

__all__ = ["PROVENANCE_NS", "EditSession", "SaveResult", "carried_edits", "convert_with_edits", "edit_history", "revert", "set_fields"]

_MAX_RECORDED = 200


@dataclass
class SaveResult:
    source: str
    target: str
    kind: str
    changes: list[Change] = field(default_factory=list)
    bytes_written: int = 0
    written: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if not self.changes:
            return f"{self.source}: no changes; nothing written"
        where = {
            "ome-tiff": "in place (OME-XML replaced, pixels untouched)",
            "ome-zarr": "NGFF attributes and OME/METADATA.ome.xml",
            "ome-xml": "the OME-XML document",
            "sidecar": f"the companion file {self.target} (the image itself is not rewritten)",
        }[self.kind]
        head = f"saved {len(self.changes)} change{'s' if len(self.changes) != 1 else ''} to {self.source}: {where}; {self.bytes_written} bytes written"
        return "\n".join([head, *(f"  {c}" for c in self.changes)])

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "saved_to": self.target,
            "kind": self.kind,
            "changes": [c.to_dict() for c in self.changes],
            "bytes_written": self.bytes_written,
            "written": list(self.written),
            "notes": list(self.notes),
        }


class EditSession:
    """Pending edits of one source's OME model; nothing is written until :meth:`save`."""

    def __init__(self, source: str | os.PathLike[str] | MetadataDocument, **storage_options: Any) -> None:
        self.storage_options = storage_options
        self.doc = source if isinstance(source, MetadataDocument) else load(source, **storage_options)
        self.model = self.doc.ome.model_copy(deep=True)
        self._history: list[Any] = []

    # -- state ------------------------------------------------------------------------------
    @property
    def source(self) -> str:
        return self.doc.source

    @property
    def notes(self) -> list[str]:
        return list(self.doc.notes)

    def diff(self) -> list[Change]:
        """Every value a save would change, against the model as stored."""
        return diff_models(self.doc.ome, self.model)

    @property
    def pending(self) -> bool:
        return bool(self.diff())

    def map(self, image: int = 0) -> list[tuple[str, str]]:
        return get_map(self.model, image)

    # -- edits ------------------------------------------------------------------------------
    def set(self, *items: str, **fields: Any) -> list[Change]:
        """Apply ``FIELD=VALUE`` items (or ``field=value`` keywords), all checked first."""
        pairs = parse_assignments(items) + parse_assignments(fields)
        return self.apply(pairs)

    def apply(self, pairs: Iterable[tuple[str, Any]] | Mapping[str, Any]) -> list[Change]:
        new, changes = apply_changes(self.model, pairs)
        changes = [c for c in changes if c.old != c.new]
        if changes:
            self._history.append(self.model)
            self.model = new
        return changes

    def set_map(self, key: str, value: str | None, image: int = 0) -> None:
        """Add or change (``None``: remove) a key-value pair of an image's map annotation."""
        if not key:
            raise BioimnbError(self.source, "a key-value pair needs a key")
        if not 0 <= image < len(self.model.images):
            raise BioimnbError(self.source, f"image index {image} out of range ({len(self.model.images)} images)")
        new = self.model.model_copy(deep=True)
        set_map_value(new, new.images[image], key, value)
        self._history.append(self.model)
        self.model = new

    def remove_map(self, key: str, image: int = 0) -> None:
        self.set_map(key, None, image)

    def undo(self) -> bool:
        """Take back the last edit (also one already saved: the save then writes it back)."""
        if not self._history:
            return False
        self.model = self._history.pop()
        return True

    def discard(self) -> None:
        """Drop every pending edit."""
        self.model = self.doc.ome.model_copy(deep=True)
        self._history.clear()

    def validate(self) -> ValidationReport:
        """Schema and semantic problems of the model as edited (the stored one when unedited)."""
        return validate_document(self.doc, None if not self.pending else self.model)

    # -- save -------------------------------------------------------------------------------
    def save(self) -> SaveResult:
        """Write the pending edits where this source keeps its metadata, with provenance."""
        doc = self.doc
        changes = self.diff()
        result = SaveResult(doc.source, doc.target, doc.kind, changes, notes=list(doc.notes))
        if not changes:
            return result
        final = self.model.model_copy(deep=True)
        extra: dict[str, str] = {}
        loc = None
        if doc.kind == "ome-tiff":
            from .write_tiff import description_location

            loc = description_location(doc.res.path)
            extra["previous_xml"] = loc.text()
        _keep_history(doc.ome, final)
        _add_provenance(final, changes, extra)
        xml = final.to_xml().encode("utf-8")
        problems = schema_problems(xml, doc.source)
        if problems:
            raise CorruptFile(doc.source, f"the edited metadata would not be valid OME-XML ({problems[0]}); nothing was written")
        if doc.kind == "ome-tiff":
            from .write_tiff import write_description

            _, result.bytes_written = write_description(doc.res.path, xml, loc)
            result.written = ["ImageDescription of the first IFD"]
        elif doc.kind == "ome-zarr":
            from .write_zarr import write_ome_zarr

            result.bytes_written, result.written = write_ome_zarr(doc.res, doc.scene_paths, doc.ome, final, xml)
        else:
            from .sidecar import write_xml_document

            path = doc.res.path if doc.kind == "ome-xml" else sidecar_path(doc.res.path)
            result.bytes_written = write_xml_document(doc.res, path, xml)
            result.written = [os.path.basename(path)]
        # The stored model is now the edited one (with its provenance); undo still reaches back
        # to the models before it, which a later save then writes back.
        doc.ome = final
        doc.xml = xml.decode("utf-8")
        self.model = final.model_copy(deep=True)
        if doc.kind == "sidecar" and not any("companion file" in n and "comes from" in n for n in doc.notes):
            doc.notes = [f"the metadata shown comes from the companion file {os.path.basename(doc.target)}, where edits are saved", *doc.notes[1:]]
        return result


def carried_edits(original: Any, edited: Any) -> list[tuple[str, Any]]:
    """The value edits between two models of one image, as ``(field, value)`` items another
    copy of the image (e.g. a conversion output) can take: leaf values and key-value pairs."""
    from .changes import _plain

    items: list[tuple[str, Any]] = []
    for change in diff_models(original, edited):
        new = change.new
        if isinstance(new, (dict, list)) or (new is None and isinstance(change.old, (dict, list))):
            continue  # whole groups (an added instrument, a removed ROI) are not carried
        if ".annotation_refs" in change.field or change.field.startswith("structured_annotations"):
            continue
        items.append((change.field, "" if new is None else _plain(new)))
    return items


def convert_with_edits(session: EditSession, dest: str | os.PathLike[str], **options: Any) -> tuple[Any, SaveResult]:
    """Convert the session's image (e.g. a CZI whose edits live in a companion file) and apply
    its edits to the output's metadata; returns the conversion report and the save result."""
    from ..convert import convert
    from ..images import open_image

    with open_image(session.source, **session.storage_options) as img:
        own = img.ome
        if len(own.images) < len(img.scenes):
            from .model import _all_scenes

            own = _all_scenes(img)
    items = carried_edits(own, session.model)
    report = convert(session.source, dest, **session.storage_options, **options)
    out = EditSession(dest, **session.storage_options)
    for field_name, value in items:
        try:
            out.apply([(field_name, value)])
        except BioimnbError:
            continue  # a field the output does not have (another image count, no instrument)
    return report, out.save()


def _keep_history(stored: Any, ome: Any) -> None:
    """Provenance is append-only: an undo back past a save must not drop that save's record."""
    from ome_types.model import StructuredAnnotations

    sa = stored.structured_annotations
    records = [a for a in sa.map_annotations if a.namespace == PROVENANCE_NS] if sa is not None else []
    if not records:
        return
    if ome.structured_annotations is None:
        ome.structured_annotations = StructuredAnnotations()
    kept = [a for a in ome.structured_annotations.map_annotations if a.namespace != PROVENANCE_NS]
    ome.structured_annotations.map_annotations = kept + [a.model_copy(deep=True) for a in records]


def _add_provenance(ome: Any, changes: list[Change], extra: Mapping[str, str]) -> None:
    from ome_types.model import Map, MapAnnotation, StructuredAnnotations

    from ..jobs import provenance

    record = provenance("", None, action="metadata edit")
    pairs = [Map.M(k="tool", value=record["tool"]), Map.M(k="time", value=record["time"]), Map.M(k="action", value="metadata edit")]
    for change in changes[:_MAX_RECORDED]:
        pairs.append(Map.M(k="changed", value=str(change)))
    if len(changes) > _MAX_RECORDED:
        pairs.append(Map.M(k="changed", value=f"... and {len(changes) - _MAX_RECORDED} more"))
    pairs.extend(Map.M(k=k, value=v) for k, v in extra.items())
    if ome.structured_annotations is None:
        ome.structured_annotations = StructuredAnnotations()
    used = {a.id for a in ome.structured_annotations}
    n = 0
    while f"Annotation:bioimnb-edit-{n}" in used:
        n += 1
    ome.structured_annotations.map_annotations.append(MapAnnotation(id=f"Annotation:bioimnb-edit-{n}", namespace=PROVENANCE_NS, value=Map(ms=pairs)))


def edit_history(ome: Any) -> list[dict[str, Any]]:
    """The provenance of every saved edit recorded in a model, oldest first."""
    out = []
    sa = ome.structured_annotations
    for ann in sa.map_annotations if sa is not None else []:
        if ann.namespace != PROVENANCE_NS:
            continue
        entry: dict[str, Any] = {"id": ann.id, "changed": []}
        for m in ann.value.ms:
            if m.k == "changed":
                entry["changed"].append(m.value)
            elif m.k:
                entry[m.k] = m.value
        out.append(entry)
    return out


def set_fields(source: str | os.PathLike[str], items: Iterable[str] | Mapping[str, Any], **storage_options: Any) -> SaveResult:
    """Check every ``FIELD=VALUE`` item, then save them all (or nothing when any is invalid)."""
    session = EditSession(source, **storage_options)
    session.apply(parse_assignments(items))
    return session.save()


def revert(source: str | os.PathLike[str]) -> SaveResult:
    """OME-TIFF: take back the last saved edit by pointing the file at the XML it replaced
    (still in the file), one small write; other kinds: use :meth:`EditSession.undo` and save."""
    from .write_tiff import restore_previous

    doc = load(source)
    if doc.kind != "ome-tiff":
        raise BioimnbError(doc.source, f"revert applies to OME-TIFF files; this is {doc.kind}: undo the edit and save instead")
    history = [h for h in edit_history(doc.ome) if "previous_xml" in h]
    if not history:
        raise BioimnbError(doc.source, "no saved bioimnb edit to revert")
    parts = dict(p.split("=", 1) for p in history[-1]["previous_xml"].split())
    restore_previous(doc.res.path, int(parts["offset"]), int(parts["length"]))
    back = load(source)
    return SaveResult(doc.source, doc.target, "ome-tiff", diff_models(doc.ome, back.ome), 8, ["ImageDescription of the first IFD"])
