"""Validation of an OME model: the OME 2016-06 schema, then what the schema cannot say.

Schema: the stored XML (or the model written as XML) is checked against the XSD that ome-types
ships, with lxml, on a parser that resolves no entities, loads no DTD and touches no network.
Semantics: sizes and physical sizes positive, length units ones :mod:`bioimnb.core.metadata.units`
knows, the channels' samples adding up to ``SizeC``, annotation references that resolve, IDs
used once.  Each problem is one line naming where it is.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ..metadata.units import unit_factor
from .model import OME_2016_06, MetadataDocument, load

__all__ = ["ValidationReport", "schema_problems", "semantic_problems", "validate", "validate_document"]


@dataclass
class ValidationReport:
    source: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "valid": self.valid, "problems": list(self.problems), "notes": list(self.notes)}


@lru_cache(maxsize=1)
def _schema() -> Any:
    from lxml import etree
    from ome_types._conversion import OME_2016_06_XSD

    return etree.XMLSchema(etree.parse(OME_2016_06_XSD, _parser()))


def _parser() -> Any:
    from lxml import etree

    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, dtd_validation=False)


def schema_problems(xml: str | bytes, source: object = "OME-XML") -> list[str]:
    """Problems of an OME 2016-06 document against the schema, one line each (``line N: ...``)."""
    from lxml import etree

    from ..metadata.ome import check_xml

    data = check_xml(xml, source)
    try:
        tree = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        return [f"not well-formed XML: {exc}"]
    schema = _schema()
    if schema.validate(tree):
        return []
    out = []
    for err in schema.error_log:
        if "No precomputed value available" in str(err.message):
            continue  # libxml2's echo of the error reported just before
        message = " ".join(str(err.message).split()).replace("{" + OME_2016_06 + "}", "")
        out.append(f"line {err.line}: {message}")
    return out


def tree_schema_problems(root: Any) -> list[str]:
    """Schema problems of an lxml tree (what a save is about to write)."""
    schema = _schema()
    if schema.validate(root.getroottree()):
        return []
    return [f"line {e.line}: {' '.join(str(e.message).split()).replace('{' + OME_2016_06 + '}', '')}" for e in schema.error_log if "No precomputed value" not in str(e.message)]


def _positive(value: Any) -> bool:
    try:
        return value is None or float(value) > 0
    except (TypeError, ValueError):
        return False


def semantic_problems(ome: Any) -> list[str]:
    """What the schema cannot check, as ``<field>: <problem>`` lines."""
    out: list[str] = []
    ids: dict[str, str] = {}

    def seen(obj_id: str | None, where: str) -> None:
        if not obj_id:
            return
        if obj_id in ids:
            out.append(f"{where}.id: ID {obj_id!r} is also used by {ids[obj_id]}")
        else:
            ids[obj_id] = where

    for i, image in enumerate(ome.images):
        where = f"images[{i}]"
        seen(image.id, where)
        px = image.pixels
        if px is None:
            out.append(f"{where}.pixels: missing")
            continue
        seen(px.id, f"{where}.pixels")
        for axis in "xyzct":
            if getattr(px, f"size_{axis}") < 1:
                out.append(f"{where}.pixels.size_{axis}: must be at least 1")
        for axis in "xyz":
            value = getattr(px, f"physical_size_{axis}")
            unit = getattr(px, f"physical_size_{axis}_unit")
            if not _positive(value):
                out.append(f"{where}.pixels.physical_size_{axis}: {value!r} is not a positive size")
            if value is not None and unit_factor(unit) is None:
                out.append(f"{where}.pixels.physical_size_{axis}_unit: {getattr(unit, 'value', unit)!r} is not a length unit bioimnb can convert")
        if px.channels:
            samples = sum(ch.samples_per_pixel or 1 for ch in px.channels)
            if samples != px.size_c:
                out.append(f"{where}.pixels.channels: the channels have {samples} samples in all, but size_c is {px.size_c}")
        for c, ch in enumerate(px.channels):
            seen(ch.id, f"{where}.pixels.channels[{c}]")
            for attr in ("excitation_wavelength", "emission_wavelength"):
                if not _positive(getattr(ch, attr)):
                    out.append(f"{where}.pixels.channels[{c}].{attr}: {getattr(ch, attr)!r} is not positive")
    annotation_ids = set()
    if ome.structured_annotations is not None:
        annotation_ids = {a.id for a in ome.structured_annotations}
    for i, image in enumerate(ome.images):
        for r, ref in enumerate(image.annotation_refs):
            if ref.id not in annotation_ids:
                out.append(f"images[{i}].annotation_refs[{r}]: annotation {ref.id!r} does not exist")
    for p, plate in enumerate(ome.plates):
        seen(plate.id, f"plates[{p}]")
    return out


def validate_document(doc: MetadataDocument, ome: Any | None = None, *, xml: str | bytes | None = None) -> ValidationReport:
    """Schema and semantic problems of a loaded document (or of ``ome``, an edited model of it,
    whose XML is ``xml`` when known)."""
    if ome is None and doc.xml and doc.schema == OME_2016_06:
        problems = schema_problems(doc.xml, doc.source)
    else:
        problems = schema_problems(xml if xml is not None else (doc.ome if ome is None else ome).to_xml(), doc.source)
    model = doc.ome if ome is None else ome  # (built after the schema check: notes it adds are kept)
    report = ValidationReport(doc.source, problems, notes=list(doc.notes))
    report.problems.extend(p for p in semantic_problems(model) if p not in report.problems)
    return report


def validate(source: str | os.PathLike[str], **storage_options: Any) -> ValidationReport:
    """Validate the OME metadata of an image or an OME-XML file."""
    return validate_document(load(source, **storage_options))


def lines(report: ValidationReport) -> Iterable[str]:
    for problem in report.problems:
        yield f"{report.source}: {problem}"
