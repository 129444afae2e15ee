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

import copy
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import AccessDenied, BioimnbError, CorruptFile
from .changes import PROVENANCE_NS, Change, _is_pairs, parse_assignments
from .model import MetadataDocument, load, sidecar_path
from .validate import ValidationReport, tree_schema_problems, validate_document
from .xmltree import (
    add_provenance_tree,
    apply_to_tree,
    get_map_tree,
    keep_provenance,
    tree_bytes,
    tree_diff,
)

if TYPE_CHECKING:  # pragma: no cover
    from ome_types import OME

__all__ = ["PROVENANCE_NS", "EditSession", "apply_changes", "diff_models", "SaveResult", "carried_edits", "convert_with_edits", "edit_history", "revert", "set_fields"]

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
        elsewhere = f" {self.target}" if self.target != self.source else ""
        where = {
            "ome-tiff": f"in place{(' in' + elsewhere) if elsewhere else ''} (OME-XML replaced, pixels untouched)",
            "ome-zarr": "NGFF attributes and OME/METADATA.ome.xml",
            "ome-xml": f"the OME-XML document{elsewhere}",
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
    """Pending edits of one source's OME metadata; nothing is written until :meth:`save`.

    The edits are applied to the document's XML tree (:mod:`bioimnb.core.curation.xmltree`), so
    a large plate is edited in milliseconds; :attr:`model` gives the ome-types model of the
    edited document when one is wanted (a form, a summary)."""

    def __init__(self, source: str | os.PathLike[str] | MetadataDocument, **storage_options: Any) -> None:
        self.storage_options = storage_options
        self.doc = source if isinstance(source, MetadataDocument) else load(source, **storage_options)
        # Trees are never changed in place (an edit makes a new one), so the stored one is shared.
        self.tree = self.doc.tree
        self._history: list[tuple[Any, dict[tuple[int, int], tuple[float, float]]]] = []
        self._model: tuple[Any, Any] | None = None
        # OME-Zarr display windows (NGFF-only: OME has no such field): stored and wanted values.
        self._stored_windows: dict[tuple[int, int], tuple[float, float]] | None = None
        self.windows: dict[tuple[int, int], tuple[float, float]] = {}

    # -- state ------------------------------------------------------------------------------
    @property
    def source(self) -> str:
        return self.doc.source

    @property
    def notes(self) -> list[str]:
        return list(self.doc.notes)

    @property
    def model(self) -> Any:
        """The ome-types model of the document as edited (built on demand, then kept)."""
        if self.tree is self.doc.tree:
            return self.doc.ome
        if self._model is None or self._model[0] is not self.tree:
            from .model import parse_document

            ome, _, _ = parse_document(tree_bytes(self.tree), self.source)
            self._model = (self.tree, ome)
        return self._model[1]

    def xml(self) -> bytes:
        """The document as edited."""
        return tree_bytes(self.tree)

    def diff(self) -> list[Change]:
        """Every value a save would change, against the document as stored."""
        out = tree_diff(self.doc.tree, self.tree)
        stored = self._stored_windows or {}
        for (i, c), window in sorted(self.windows.items()):
            if stored.get((i, c)) != window:
                old = stored.get((i, c))
                out.append(Change(_window_field(i, c), None if old is None else f"{old[0]:g},{old[1]:g}", f"{window[0]:g},{window[1]:g}"))
        return out

    def stored_windows(self) -> dict[tuple[int, int], tuple[float, float]]:
        """OME-Zarr: the display window of each (image, channel) as stored."""
        if self._stored_windows is None:
            if self.doc.kind != "ome-zarr":
                self._stored_windows = {}
            else:
                from .write_zarr import read_windows

                self._stored_windows = read_windows(self.doc.res, self.doc.scene_paths)
            self.windows = {**self._stored_windows, **self.windows}
        return dict(self._stored_windows)

    @property
    def pending(self) -> bool:
        return bool(self.diff())

    @property
    def can_undo(self) -> bool:
        return bool(self._history)

    def map(self, image: int = 0) -> list[tuple[str, str]]:
        return get_map_tree(self.tree, image)

    # -- edits ------------------------------------------------------------------------------
    def set(self, *items: str, **fields: Any) -> list[Change]:
        """Apply ``FIELD=VALUE`` items (or ``field=value`` keywords), all checked first."""
        pairs = parse_assignments(items) + parse_assignments(fields)
        return self.apply(pairs)

    def apply(self, pairs: Iterable[tuple[str, Any]] | Mapping[str, Any]) -> list[Change]:
        items = parse_assignments(pairs) if isinstance(pairs, Mapping) else list(pairs)
        windows, rest = self._windows_of(items)
        new, changes = apply_to_tree(self.tree, rest)
        changes = [c for c in changes if c.old != c.new]
        wanted = {**self.windows, **windows}
        for (i, c), window in windows.items():
            if self.windows.get((i, c)) != window:
                old = self.windows.get((i, c))
                changes.append(Change(_window_field(i, c), None if old is None else f"{old[0]:g},{old[1]:g}", f"{window[0]:g},{window[1]:g}"))
        if changes:
            self._history.append((self.tree, dict(self.windows)))
            self.tree, self.windows = new, wanted
        return changes

    def _windows_of(self, items: list[tuple[str, Any]]) -> tuple[dict[tuple[int, int], tuple[float, float]], list[tuple[str, Any]]]:
        """The display-window items (``channel[1].window=START,END``, OME-Zarr only), checked,
        and the other items.  Raises :class:`InvalidField` naming the first invalid one."""
        from .changes import InvalidField, canonical_field

        windows: dict[tuple[int, int], tuple[float, float]] = {}
        rest = []
        for fieldname, value in items:
            steps, key = canonical_field(fieldname) if "window" in fieldname else ([], None)
            if key is not None or not steps or steps[-1][0] != "window":
                rest.append((fieldname, value))
                continue
            if len(steps) != 4 or steps[1][0] != "pixels" or steps[2][0] != "channels":
                raise InvalidField(fieldname, "a display window belongs to a channel: channel[C].window=START,END; nothing was changed")
            if self.doc.kind != "ome-zarr":
                raise InvalidField(fieldname, f"display windows are OME-Zarr (NGFF omero) attributes; this source is {self.doc.kind}; nothing was changed")
            image, channel = steps[0][1] or 0, steps[2][1] or 0
            parts = str(value).replace(":", ",").split(",")
            try:
                start, end = (float(p) for p in parts)
            except ValueError:
                raise InvalidField(fieldname, f"invalid value {value!r}: expected START,END (two numbers); nothing was changed") from None
            if not start < end:
                raise InvalidField(fieldname, f"invalid value {value!r}: START must be below END; nothing was changed")
            if (image, channel) not in self.stored_windows() and (image, channel) not in self.windows:
                raise InvalidField(fieldname, f"image {image} has no NGFF channel {channel} with a display window; nothing was changed")
            windows[(image, channel)] = (start, end)
        return windows, rest

    def set_map(self, key: str, value: str | None, image: int = 0) -> None:
        """Add or change (``None``: remove) a key-value pair of an image's map annotation."""
        if not key:
            raise BioimnbError(self.source, "a key-value pair needs a key")
        self.apply([(f"image[{image}].map.{key}", "" if value is None else value)])

    def remove_map(self, key: str, image: int = 0) -> None:
        self.set_map(key, None, image)

    def undo(self) -> bool:
        """Take back the last edit (also one already saved: the save then writes it back)."""
        if not self._history:
            return False
        self.tree, self.windows = self._history.pop()
        return True

    def discard(self) -> None:
        """Drop every pending edit."""
        self.tree = self.doc.tree
        self.windows = dict(self._stored_windows or {})
        self._history.clear()

    def validate(self) -> ValidationReport:
        """Schema and semantic problems of the document as edited (as stored when unedited)."""
        if not self.pending:
            return validate_document(self.doc)
        return validate_document(self.doc, self.model, xml=self.xml())

    # -- save -------------------------------------------------------------------------------
    def save(self) -> SaveResult:
        """Write the pending edits where this source keeps its metadata, with provenance."""
        doc = self.doc
        changes = self.diff()
        result = SaveResult(doc.source, doc.target, doc.kind, changes, notes=list(doc.notes))
        if not changes:
            return result
        if doc.res.url.split("://", 1)[0].lower() in ("http", "https"):
            raise AccessDenied(doc.source, "HTTP storage is read-only: metadata edits cannot be saved there (download the image, or use a writable location)")
        final = copy.deepcopy(self.tree)
        pairs: list[tuple[str, str]] = []
        loc = None
        if doc.kind == "ome-tiff":
            from .write_tiff import description_location

            loc = description_location(doc.res.path)
            pairs.append(("previous_xml", loc.text()))
        keep_provenance(doc.tree, final)
        add_provenance_tree(final, _provenance_pairs(changes) + pairs)
        problems = tree_schema_problems(final)
        if problems:
            # Problems the stored document already had are kept as they were (an edit must not
            # make the document worse, and need not repair what it did not touch).
            def key(problem: str) -> str:
                return problem.split(": ", 1)[-1] if problem.startswith("line ") else problem

            before = {key(p) for p in tree_schema_problems(doc.tree)}
            introduced = [p for p in problems if key(p) not in before]
            if introduced:
                raise CorruptFile(doc.source, f"the edited metadata would not be valid OME-XML ({introduced[0]}); nothing was written")
        xml = tree_bytes(final)
        if doc.kind == "ome-tiff":
            from .write_tiff import write_description

            _, result.bytes_written = write_description(doc.res.path, xml, loc)
            result.written = ["ImageDescription of the first IFD"]
        elif doc.kind == "ome-zarr":
            from .model import parse_document
            from .write_zarr import write_ome_zarr

            new_model, _, _ = parse_document(xml, doc.source)
            windows = {k: w for k, w in self.windows.items() if (self._stored_windows or {}).get(k) != w}
            result.bytes_written, result.written = write_ome_zarr(doc.res, doc.scene_paths, doc.ome, new_model, xml, windows)
            self._stored_windows = {**(self._stored_windows or {}), **windows}
        else:
            from .sidecar import write_xml_document

            path = doc.res.path if doc.kind == "ome-xml" else sidecar_path(doc.res.path)
            result.bytes_written = write_xml_document(doc.res, path, xml)
            result.written = [os.path.basename(path)]
        # The stored document is now the edited one (with its provenance); undo still reaches
        # back to the trees before it, which a later save then writes back.
        # (trees are never changed in place once made: an edit makes a new one)
        doc.replace(final, xml.decode("utf-8"))
        self.tree = final
        if doc.kind == "sidecar" and doc.notes and "comes from" not in doc.notes[0]:
            doc.notes[0] = f"the metadata shown comes from the companion file {os.path.basename(doc.target)}, where edits are saved"
        return result


def _window_field(image: int, channel: int) -> str:
    return f"images[{image}].pixels.channels[{channel}].window"


def _provenance_pairs(changes: list[Change]) -> list[tuple[str, str]]:
    from ..jobs import provenance

    record = provenance("", None, action="metadata edit")
    pairs = [("tool", str(record["tool"])), ("time", str(record["time"])), ("action", "metadata edit")]
    pairs += [("changed", str(change)) for change in changes[:_MAX_RECORDED]]
    if len(changes) > _MAX_RECORDED:
        pairs.append(("changed", f"... and {len(changes) - _MAX_RECORDED} more"))
    return pairs


def apply_changes(ome: OME, assignments: Iterable[tuple[str, Any]] | Iterable[str] | Mapping[str, Any]) -> tuple[OME, list[Change]]:
    """A new model with every assignment applied, and the changes made; when any item is
    invalid, :class:`InvalidField` names it (and the others) and nothing is applied.

    The edits are made on the model's XML (:func:`bioimnb.core.curation.xmltree.apply_to_tree`,
    the one implementation of applying a change list), then parsed back."""
    from .model import parse_document
    from .xmltree import parse_tree

    items = parse_assignments(assignments) if isinstance(assignments, Mapping) or not _is_pairs(assignments) else list(assignments)  # type: ignore[arg-type]
    tree, changes = apply_to_tree(parse_tree(ome.to_xml(), "OME-XML"), items)
    new, _, _ = parse_document(tree_bytes(tree), "OME-XML")
    return new, [c for c in changes if c.old != c.new]


def diff_models(old: OME, new: OME) -> list[Change]:
    """Every value that differs between two models, as dotted ome-types paths (compared on
    their XML by :func:`bioimnb.core.curation.xmltree.tree_diff`, the one diff)."""
    from .xmltree import parse_tree

    return tree_diff(parse_tree(old.to_xml(), "OME-XML"), parse_tree(new.to_xml(), "OME-XML"))


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
    return SaveResult(doc.source, doc.target, "ome-tiff", tree_diff(doc.tree, back.tree), 8, ["ImageDescription of the first IFD"])
