"""REMBI study metadata: the model (as data), validation, and the ``rembi.json`` sidecar.

REMBI (Recommended Metadata for Biological Images, Sarkans et al. 2021) describes a study in
sections: Study, Study Component, Biosample, Specimen, Image Acquisition, Image Data and
Analysed Data.  The field names are those of the BioImage Archive's REMBI models
(``bia-shared-datamodels`` and the BIA's REMBI ingest: ``title``, ``organism_classification``,
``biological_entity_description``, ``sample_preparation_protocol``,
``imaging_instrument_description``, ``imaging_method_name``, ``fbbi_id``, ...), in snake_case.

A study is saved as a sidecar, ``FOLDER/rembi.json``, and applies to the images of that folder
and of its subfolders; a subfolder's own sidecar overrides it field by field (a different
biosample, a different microscope) and inherits the rest.  :func:`load` gives the effective
study of a folder, :class:`StudyIndex` finds it for many images at once (completeness, exports).

Every field is listed once, in :data:`FIELDS`, with its section, kind, whether REMBI requires it
and where its terms come from.  Validation names the field in one line
(``biosample.organism_classification[0].ncbi_id: ...``); missing required fields are reported
separately (:meth:`RembiStudy.missing`), so a half-filled form can still be saved.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import BioimnbError, CorruptFile, SourceNotFound

__all__ = [
    "FIELDS",
    "LICENCES",
    "SECTIONS",
    "SIDECAR",
    "FieldSpec",
    "RembiError",
    "RembiStudy",
    "StudyIndex",
    "fbbi_term_id",
    "field_spec",
    "load",
    "ncbi_taxon_id",
    "normalize_value",
    "orcid_id",
    "parse",
    "read_sidecar",
    "required_fields",
    "save",
    "sidecar_path",
]

SIDECAR = "rembi.json"
"""File name of the study sidecar in a folder."""

FORMAT_VERSION = 1
"""``rembi_sidecar_version`` written into every sidecar."""


class RembiError(BioimnbError, ValueError):
    """A REMBI sidecar or value that cannot be accepted: ``"<sidecar>: <section.field>: <reason>"``."""


@dataclass(frozen=True)
class FieldSpec:
    section: str
    name: str
    kind: str
    """``text``, ``texts`` (list of text), ``date`` (ISO 8601), ``licence``, ``authors``,
    ``taxa`` (NCBI Taxonomy terms), ``fbbi_ids``, ``publications``, ``urls``."""
    required: bool
    label: str
    help: str = ""
    ontology: str | None = None
    """OLS ontology id whose terms fill this field (``fbbi``, ``ncbitaxon``)."""

    @property
    def path(self) -> str:
        return f"{self.section}.{self.name}"


SECTIONS: dict[str, str] = {
    "study": "Study",
    "study_component": "Study Component",
    "biosample": "Biosample",
    "specimen": "Specimen",
    "image_acquisition": "Image Acquisition",
    "image_data": "Image Data",
    "analyzed_data": "Analysed Data",
}
"""Section keys of the sidecar, in REMBI's order, with their REMBI titles."""


def _f(section: str, name: str, kind: str, required: bool, label: str, help: str = "", ontology: str | None = None) -> FieldSpec:  # noqa: A002
    return FieldSpec(section, name, kind, required, label, help, ontology)


FIELDS: tuple[FieldSpec, ...] = (
    # Study (BIA Study: title, description, keyword, licence, author, release_date, ...)
    _f("study", "title", "text", True, "Title", "Shown in search results of an archive."),
    _f("study", "description", "text", True, "Description", "What the study is about; may be a paper's abstract."),
    _f("study", "keywords", "texts", True, "Keywords", "Words or tags describing the subject of the study."),
    _f("study", "licence", "licence", True, "Licence", "The licence the data are released under."),
    _f("study", "authors", "authors", True, "Authors", "The people who created the data (display_name, orcid, contact_email, affiliation, role)."),
    _f("study", "release_date", "date", False, "Release date", "Date of first publication (YYYY-MM-DD)."),
    _f("study", "funding_statement", "text", False, "Funding statement"),
    _f("study", "acknowledgement", "text", False, "Acknowledgement"),
    _f("study", "related_publications", "publications", False, "Related publications", "title, authors_name, doi, publication_year, pubmed_id"),
    _f("study", "see_also", "urls", False, "See also", "Links to code, protocols and pages about the study."),
    _f("study", "accession_id", "text", False, "Accession", "The archive's accession once submitted (e.g. S-BIAD123)."),
    # Study Component
    _f("study_component", "name", "text", True, "Name", "The part of the study these images belong to."),
    _f("study_component", "description", "text", True, "Description", "How the images of this component were made and relate to each other."),
    # Biosample
    _f("biosample", "title", "text", False, "Title"),
    _f("biosample", "organism_classification", "taxa", True, "Organism", "NCBI Taxonomy terms (scientific_name, common_name, ncbi_id).", "ncbitaxon"),
    _f("biosample", "biological_entity_description", "text", True, "Biological entity", "What was imaged: tissue, cell line, organism, ..."),
    _f("biosample", "intrinsic_variable_description", "texts", False, "Intrinsic variables", "Genetic or other intrinsic alterations."),
    _f("biosample", "extrinsic_variable_description", "texts", False, "Extrinsic variables", "External treatments (e.g. a reagent)."),
    _f("biosample", "experimental_variable_description", "texts", False, "Experimental variables", "What is varied on purpose (e.g. time)."),
    # Specimen
    _f("specimen", "title", "text", False, "Title"),
    _f("specimen", "sample_preparation_protocol", "text", True, "Sample preparation protocol", "How the sample was prepared for imaging."),
    _f("specimen", "growth_protocol", "text", False, "Growth protocol", "How cells, organisms or plants were grown."),
    _f("specimen", "signal_contrast_mechanism_description", "text", False, "Signal/contrast mechanism"),
    _f("specimen", "channel_content_description", "text", False, "Channel content", "Stains or labels used (e.g. DAPI, GFP)."),
    _f("specimen", "channel_biological_entity", "text", False, "Channel biological entity", "What molecule or structure each label shows."),
    # Image Acquisition
    _f("image_acquisition", "title", "text", False, "Title"),
    _f("image_acquisition", "imaging_instrument_description", "text", True, "Imaging instrument", "Microscope, objective, detector and their settings."),
    _f("image_acquisition", "imaging_method_name", "texts", True, "Imaging method", "FBbi imaging method names (e.g. confocal microscopy).", "fbbi"),
    _f("image_acquisition", "fbbi_id", "fbbi_ids", True, "FBbi id", "Biological Imaging Methods Ontology ids (e.g. FBbi:00000251).", "fbbi"),
    _f("image_acquisition", "image_acquisition_parameters", "text", False, "Acquisition parameters", "Exposure, laser power, pixel dwell time, ..."),
    # Image Data (REMBI: image type, format, dimensions, sizes, processing)
    _f("image_data", "image_type", "text", False, "Image type", "e.g. raw, processed, reconstructed."),
    _f("image_data", "format_and_compression", "text", False, "Format and compression"),
    _f("image_data", "dimension_extents", "text", False, "Dimension extents"),
    _f("image_data", "pixel_voxel_size_description", "text", False, "Pixel/voxel size"),
    _f("image_data", "image_processing_method", "text", False, "Image processing method"),
    # Analysed Data (BIA ImageAnalysisMethod)
    _f("analyzed_data", "title", "text", False, "Title"),
    _f("analyzed_data", "protocol_description", "text", False, "Analysis protocol", "The steps of the image analysis."),
    _f("analyzed_data", "features_analysed", "text", False, "Features analysed"),
)

_SPECS: dict[str, FieldSpec] = {f.path: f for f in FIELDS}

LICENCES: dict[str, str] = {
    "CC0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
    "CC-BY-4.0": "https://creativecommons.org/licenses/by/4.0/",
    "CC-BY-SA-4.0": "https://creativecommons.org/licenses/by-sa/4.0/",
    "CC-BY-NC-4.0": "https://creativecommons.org/licenses/by-nc/4.0/",
    "CC-BY-NC-SA-4.0": "https://creativecommons.org/licenses/by-nc-sa/4.0/",
    "CC-BY-NC-ND-4.0": "https://creativecommons.org/licenses/by-nc-nd/4.0/",
}
"""Licences a study may name (SPDX ids, with the URLs the BioImage Archive's model uses).  The
BioImage Archive itself publishes under CC0-1.0 or CC-BY-4.0."""

_AUTHOR_KEYS = ("display_name", "orcid", "contact_email", "affiliation", "role")
_TAXON_KEYS = ("scientific_name", "common_name", "ncbi_id")
_PUBLICATION_KEYS = ("title", "authors_name", "doi", "publication_year", "pubmed_id")
_ORCID = re.compile(r"^(?:https?://orcid\.org/)?(\d{4}-\d{4}-\d{4}-\d{3}[\dX])$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_NCBI = re.compile(r"^(?:NCBITaxon[:_]|NCBI:txid|txid)?(\d+)$", re.IGNORECASE)
_FBBI = re.compile(r"^FBbi[:_](\d{8})$", re.IGNORECASE)
_DOI = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:)?(10\.\d{4,9}/\S+)$", re.IGNORECASE)


def field_spec(path: str) -> FieldSpec | None:
    """The :class:`FieldSpec` of ``section.field``; None when REMBI has no such field."""
    return _SPECS.get(path)


def required_fields() -> list[str]:
    """``section.field`` of every field REMBI requires, in order."""
    return [f.path for f in FIELDS if f.required]


# --------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------


class _Invalid(Exception):
    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where, self.reason = where, reason


def _text(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _Invalid(where, f"must be text, not {type(value).__name__}")
    text = str(value).strip()
    return text or None


def _texts(value: Any, where: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise _Invalid(where, f"must be a list of text, not {type(value).__name__}")
    out = [t for i, v in enumerate(value) if (t := _text(v, f"{where}[{i}]"))]
    return out or None


def _record(value: Any, where: str, keys: tuple[str, ...]) -> dict[str, Any]:
    if isinstance(value, str):
        value = {keys[0]: value}
    if not isinstance(value, dict):
        raise _Invalid(where, f"must be an object with {', '.join(keys)}, not {type(value).__name__}")
    unknown = sorted(set(value) - set(keys))
    if unknown:
        raise _Invalid(f"{where}.{unknown[0]}", f"unknown field (known: {', '.join(keys)})")
    return value


def _records(value: Any, where: str) -> list[Any] | None:
    if value is None:
        return None
    if isinstance(value, (str, dict)):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise _Invalid(where, f"must be a list, not {type(value).__name__}")
    return list(value)


def _author(value: Any, where: str) -> dict[str, Any]:
    rec = _record(value, where, _AUTHOR_KEYS)
    out: dict[str, Any] = {}
    name = _text(rec.get("display_name"), f"{where}.display_name")
    if not name:
        raise _Invalid(f"{where}.display_name", "is required for every author")
    out["display_name"] = name
    orcid = _text(rec.get("orcid"), f"{where}.orcid")
    if orcid:
        m = _ORCID.match(orcid)
        if not m:
            raise _Invalid(f"{where}.orcid", f"{orcid!r} is not an ORCID iD (0000-0000-0000-0000)")
        out["orcid"] = m.group(1)
    email = _text(rec.get("contact_email"), f"{where}.contact_email")
    if email:
        if not _EMAIL.match(email):
            raise _Invalid(f"{where}.contact_email", f"{email!r} is not an e-mail address")
        out["contact_email"] = email
    affiliation = _texts(rec.get("affiliation"), f"{where}.affiliation")
    if affiliation:
        out["affiliation"] = affiliation
    role = _text(rec.get("role"), f"{where}.role")
    if role:
        out["role"] = role
    return out


def orcid_id(text: str) -> str | None:
    """The bare ORCID iD (``0000-0002-1825-0097``) of ``text`` (with or without the
    https://orcid.org/ prefix); None when it is not one."""
    m = _ORCID.match(text.strip())
    return m.group(1) if m else None


def ncbi_taxon_id(text: str) -> str | None:
    """``NCBITaxon:<digits>`` from the usual spellings (``9606``, ``NCBITaxon_9606``,
    ``NCBI:txid9606``); None when it is not one."""
    m = _NCBI.match(text.strip())
    return f"NCBITaxon:{int(m.group(1))}" if m else None


def fbbi_term_id(text: str) -> str | None:
    """``FBbi:<8 digits>`` from ``FBbi:00000251`` or ``FBbi_00000251``; None when it is not one."""
    m = _FBBI.match(text.strip())
    return f"FBbi:{m.group(1)}" if m else None


def _taxon(value: Any, where: str) -> dict[str, Any]:
    rec = _record(value, where, _TAXON_KEYS)
    out: dict[str, Any] = {}
    for key in ("scientific_name", "common_name"):
        text = _text(rec.get(key), f"{where}.{key}")
        if text:
            out[key] = text
    raw = _text(rec.get("ncbi_id"), f"{where}.ncbi_id")
    if raw:
        tid = ncbi_taxon_id(raw)
        if tid is None:
            raise _Invalid(f"{where}.ncbi_id", f"{raw!r} is not an NCBI Taxonomy id (NCBITaxon:<digits>)")
        out["ncbi_id"] = tid
    if not out.get("scientific_name") and not out.get("ncbi_id"):
        raise _Invalid(where, "needs a scientific_name or an ncbi_id")
    return out


def _publication(value: Any, where: str) -> dict[str, Any]:
    rec = _record(value, where, _PUBLICATION_KEYS)
    out: dict[str, Any] = {}
    for key in ("title", "authors_name", "pubmed_id"):
        text = _text(rec.get(key), f"{where}.{key}")
        if text:
            out[key] = text
    doi = _text(rec.get("doi"), f"{where}.doi")
    if doi:
        m = _DOI.match(doi)
        if not m:
            raise _Invalid(f"{where}.doi", f"{doi!r} is not a DOI (10.<registrant>/<suffix>)")
        out["doi"] = m.group(1)
    year = rec.get("publication_year")
    if year not in (None, ""):
        try:
            number = int(str(year).strip())
        except ValueError:
            raise _Invalid(f"{where}.publication_year", f"{year!r} is not a year") from None
        if not 1600 <= number <= 2200:
            raise _Invalid(f"{where}.publication_year", f"{number} is not a plausible year")
        out["publication_year"] = number
    if not out.get("title") and not out.get("doi"):
        raise _Invalid(where, "needs a title or a doi")
    return out


def _licence(value: Any, where: str) -> str | None:
    text = _text(value, where)
    if text is None:
        return None
    key = re.sub(r"[\s_]+", "-", text.strip()).upper().replace("CC-0", "CC0")
    aliases = {"CC0": "CC0-1.0", "CC-BY": "CC-BY-4.0"}
    key = aliases.get(key, key)
    for spdx, url in LICENCES.items():
        if key == spdx.upper() or text.rstrip("/") == url.rstrip("/"):
            return spdx
    raise _Invalid(where, f"{text!r} is not a licence bioimnb knows (one of {', '.join(LICENCES)})")


def _date(value: Any, where: str) -> str | None:
    text = _text(value, where)
    if text is None:
        return None
    try:
        return _dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise _Invalid(where, f"{text!r} is not a date (YYYY-MM-DD)") from None


def _url(value: Any, where: str) -> str:
    text = _text(value, where)
    if not text or not re.match(r"^https?://\S+$", text):
        raise _Invalid(where, f"{value!r} is not an http(s) URL")
    return text


def normalize_value(spec: FieldSpec, value: Any, where: str | None = None) -> Any:
    """The stored form of ``value`` for ``spec`` (None when empty); raises :class:`_Invalid`."""
    where = where or spec.path
    kind = spec.kind
    if kind == "text":
        return _text(value, where)
    if kind == "texts":
        return _texts(value, where)
    if kind == "date":
        return _date(value, where)
    if kind == "licence":
        return _licence(value, where)
    items = _records(value, where)
    if items is None:
        return None
    if kind == "authors":
        out: list[Any] = [_author(v, f"{where}[{i}]") for i, v in enumerate(items)]
    elif kind == "taxa":
        out = [_taxon(v, f"{where}[{i}]") for i, v in enumerate(items)]
    elif kind == "publications":
        out = [_publication(v, f"{where}[{i}]") for i, v in enumerate(items)]
    elif kind == "urls":
        out = [_url(v, f"{where}[{i}]") for i, v in enumerate(items)]
    elif kind == "fbbi_ids":
        out = []
        for i, v in enumerate(items):
            text = _text(v, f"{where}[{i}]")
            if not text:
                continue
            term = fbbi_term_id(text)
            if term is None:
                raise _Invalid(f"{where}[{i}]", f"{text!r} is not an FBbi id (FBbi:<8 digits>)")
            out.append(term)
    else:  # pragma: no cover - FIELDS only uses the kinds above
        raise _Invalid(where, f"unknown kind {kind}")
    return out or None


# --------------------------------------------------------------------------------------------
# The study
# --------------------------------------------------------------------------------------------


class RembiStudy:
    """A REMBI study: ``sections[section][field] = value`` (only fields that have a value).

    Build it with :func:`parse` (from JSON), :func:`load` (a folder's effective study), or
    empty and :meth:`set` field by field.  Values are normalised when set (ORCID iDs without
    the URL, ``NCBITaxon:9606``, ``FBbi:00000251``, SPDX licence ids).
    """

    def __init__(self, sections: dict[str, dict[str, Any]] | None = None, sources: Iterable[str] = ()) -> None:
        self.sections: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
        for name, fields in (sections or {}).items():
            self.sections.setdefault(name, {}).update(fields)
        self.sources: list[str] = list(sources)
        """The sidecars this study was read from, outermost first."""

    # -- fields ------------------------------------------------------------------------------
    def get(self, path: str, default: Any = None) -> Any:
        section, _, name = path.partition(".")
        return self.sections.get(section, {}).get(name, default)

    def set(self, path: str, value: Any) -> None:
        """Set ``section.field`` (None or empty clears it).  Raises :class:`RembiError` naming
        the field when REMBI has no such field or the value is invalid."""
        spec = _SPECS.get(path)
        if spec is None:
            raise RembiError(self._source, f"{path}: unknown REMBI field (known: {', '.join(_SPECS)})")
        try:
            value = normalize_value(spec, value)
        except _Invalid as exc:
            raise RembiError(self._source, f"{exc.where}: {exc.reason}") from None
        if value is None:
            self.sections[spec.section].pop(spec.name, None)
        else:
            self.sections[spec.section][spec.name] = value

    def update(self, values: dict[str, Any]) -> None:
        """Set many ``section.field`` values; all are checked first, nothing changes if one fails."""
        trial = self.copy()
        for path, value in values.items():
            trial.set(path, value)
        self.sections = trial.sections

    @property
    def _source(self) -> str:
        return self.sources[-1] if self.sources else "rembi"

    def missing(self) -> list[str]:
        """``section.field`` of every required field without a value."""
        return [f.path for f in FIELDS if f.required and self.get(f.path) in (None, "", [])]

    def is_empty(self) -> bool:
        return not any(self.sections.values())

    def copy(self) -> RembiStudy:
        return RembiStudy(json.loads(json.dumps(self.sections)), self.sources)

    def merged(self, child: RembiStudy) -> RembiStudy:
        """This study with ``child``'s values on top (field by field), as a subfolder's sidecar
        overrides its parent's."""
        out = self.copy()
        for section, fields in child.sections.items():
            out.sections.setdefault(section, {}).update(json.loads(json.dumps(fields)))
        out.sources = self.sources + child.sources
        return out

    def to_dict(self) -> dict[str, Any]:
        """The sidecar document: ``rembi_sidecar_version`` and the non-empty sections in order."""
        out: dict[str, Any] = {"rembi_sidecar_version": FORMAT_VERSION}
        for name in SECTIONS:
            fields = self.sections.get(name) or {}
            ordered = {f.name: fields[f.name] for f in FIELDS if f.section == name and f.name in fields}
            if ordered:
                out[name] = ordered
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RembiStudy) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        filled = sum(len(v) for v in self.sections.values())
        return f"<RembiStudy {filled} fields, {len(self.missing())} required missing>"


def parse(data: Any, source: object = "rembi") -> RembiStudy:
    """A :class:`RembiStudy` from a sidecar document (a dict or JSON text), validated: unknown
    sections or fields and invalid values raise :class:`RembiError` naming ``source`` and the
    field, in one line."""
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise RembiError(source, f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise RembiError(source, "a REMBI sidecar must be a JSON object with sections study, biosample, ...")
    study = RembiStudy(sources=[str(source)])
    for key, fields in data.items():
        if key == "rembi_sidecar_version":
            if fields != FORMAT_VERSION:
                raise RembiError(source, f"rembi_sidecar_version {fields!r} is not supported (this bioimnb writes {FORMAT_VERSION})")
            continue
        if key not in SECTIONS:
            raise RembiError(source, f"{key}: unknown REMBI section (known: {', '.join(SECTIONS)})")
        if fields is None:
            continue
        if not isinstance(fields, dict):
            raise RembiError(source, f"{key}: must be an object of fields, not {type(fields).__name__}")
        for name, value in fields.items():
            path = f"{key}.{name}"
            spec = _SPECS.get(path)
            if spec is None:
                known = ", ".join(f.name for f in FIELDS if f.section == key)
                raise RembiError(source, f"{path}: unknown field (known in {key}: {known})")
            try:
                value = normalize_value(spec, value)
            except _Invalid as exc:
                raise RembiError(source, f"{exc.where}: {exc.reason}") from None
            if value is not None:
                study.sections[key][name] = value
    return study


# --------------------------------------------------------------------------------------------
# Sidecars on storage
# --------------------------------------------------------------------------------------------


def _is_url(text: str) -> bool:
    return "://" in text and not text.startswith("file://")


def _join(folder: str, name: str) -> str:
    if _is_url(folder):
        return folder.rstrip("/") + "/" + name
    return os.path.join(folder, name)


def sidecar_path(folder: str | os.PathLike[str]) -> str:
    """Where the sidecar of ``folder`` lives (``FOLDER/rembi.json``)."""
    text = os.fspath(folder)
    if text.startswith("file://"):
        text = text[len("file://") :]
    return _join(text, SIDECAR)


def read_sidecar(path: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None, **storage_options: Any) -> RembiStudy:
    """Read and validate one sidecar file (local path or URL)."""
    from ..limits import limits
    from ..storage import read_confined, resolve, storage_errors

    text = os.fspath(path)
    res = resolve(text, root=root, **storage_options)
    if res.local:
        data = read_confined(res.path, res.root, text)
    else:
        cap = limits().max_metadata_bytes
        with storage_errors(text):
            size = res.fs.size(res.path)
            if size is not None and size > cap:
                raise CorruptFile(text, f"{SIDECAR} is larger than {cap} bytes, too large for metadata")
            data = res.fs.cat_file(res.path)
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError:
        raise RembiError(text, "not UTF-8 text") from None
    return parse(decoded, text)


def _exists(path: str, storage_options: dict[str, Any]) -> bool:
    from ..storage import resolve, storage_errors

    if not _is_url(path):
        return os.path.isfile(path)
    res = resolve(path, **storage_options)
    with storage_errors(path):
        return bool(res.fs.isfile(res.path))


def _parent(folder: str) -> str | None:
    if _is_url(folder):
        scheme, _, rest = folder.partition("://")
        rest = rest.rstrip("/")
        if "/" not in rest:
            return None  # the bucket (or host) is the top
        return f"{scheme}://{rest.rsplit('/', 1)[0]}"
    parent = os.path.dirname(folder.rstrip(os.sep)) or os.sep
    return None if parent == folder else parent


def load(
    folder: str | os.PathLike[str],
    *,
    root: str | os.PathLike[str] | None = None,
    inherit: bool = True,
    **storage_options: Any,
) -> RembiStudy | None:
    """The effective study of ``folder``: its sidecar merged over those of its parent folders
    (up to ``root``, or the filesystem root / the bucket), or None when no sidecar applies.
    ``inherit=False``: the folder's own sidecar only."""
    index = StudyIndex(root=root, strict=True, **storage_options)
    text = os.fspath(folder)
    if text.startswith("file://"):
        text = text[len("file://") :]
    if not _is_url(text):
        text = os.path.abspath(text)
        if not os.path.isdir(text):
            raise SourceNotFound(text, "no such folder")
    if not inherit:
        path = sidecar_path(text)
        return read_sidecar(path, root=root, **storage_options) if _exists(path, storage_options) else None
    return index.for_folder(text)


def save(
    folder: str | os.PathLike[str],
    study: RembiStudy | dict[str, Any],
    *,
    root: str | os.PathLike[str] | None = None,
    **storage_options: Any,
) -> str:
    """Write ``study`` as ``FOLDER/rembi.json`` (validated first; an invalid value is refused
    naming the field, and nothing is written).  Locally the file is replaced atomically (a
    crash leaves the old sidecar or the new one).  Returns the sidecar's path."""
    from ..storage import resolve, storage_errors

    text = os.fspath(folder)
    target = sidecar_path(text)
    if not isinstance(study, RembiStudy):
        study = parse(study, target)
    else:
        study = parse(study.to_dict(), target)  # revalidate what callers may have poked into sections
    payload = study.to_json().encode("utf-8")
    res = resolve(target, root=root, **storage_options)
    if res.local:
        directory = os.path.dirname(res.path)
        if not os.path.isdir(directory):
            raise SourceNotFound(text, "no such folder")
        if root is not None and os.path.islink(res.path):
            raise RembiError(target, f"{SIDECAR} is a symbolic link; refused under a root")
        tmp = os.path.join(directory, f".{SIDECAR}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            with open(tmp, "wb") as fh:
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, res.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise RembiError(target, f"cannot be written ({exc.strerror or exc})") from None
        return res.path
    with storage_errors(target):
        res.fs.pipe_file(res.path, payload)
    return target


class StudyIndex:
    """Finds the effective study of many images at once, reading each folder's sidecar once.

    ``for_path(image)`` looks in the image's folder and its parents (up to ``root``, else the
    filesystem root or the bucket) and merges the sidecars found, outermost first.  A sidecar
    that cannot be read or is invalid is remembered in :attr:`errors` (one line each) and does
    not apply (``strict=True``: raises it).  Remote folders are looked at only when ``remote=True`` (each is a request).
    """

    def __init__(
        self,
        *,
        root: str | os.PathLike[str] | None = None,
        remote: bool = True,
        strict: bool = False,
        **storage_options: Any,
    ) -> None:
        self.root = None if root is None else os.path.abspath(os.fspath(root))
        self.remote = remote
        self.strict = strict
        self.storage_options = storage_options
        self._own: dict[str, RembiStudy | None] = {}
        self._effective: dict[str, RembiStudy | None] = {}
        self._lock = threading.Lock()
        self.errors: dict[str, str] = {}

    def _own_sidecar(self, folder: str) -> RembiStudy | None:
        if folder in self._own:
            return self._own[folder]
        path = sidecar_path(folder)
        study: RembiStudy | None = None
        try:
            if _exists(path, self.storage_options):
                study = read_sidecar(path, root=self.root if not _is_url(path) else None, **self.storage_options)
        except BioimnbError as exc:
            if self.strict:
                raise
            self.errors[path] = str(exc)
        self._own[folder] = study
        return study

    def for_folder(self, folder: str) -> RembiStudy | None:
        with self._lock:
            return self._for_folder(folder)

    def _for_folder(self, folder: str) -> RembiStudy | None:
        if folder in self._effective:
            return self._effective[folder]
        if _is_url(folder) and not self.remote:
            self._effective[folder] = None
            return None
        parent = None if (self.root is not None and os.path.normpath(folder) == self.root) else _parent(folder)
        if self.root is not None and not _is_url(folder) and not (folder + os.sep).startswith(self.root.rstrip(os.sep) + os.sep):
            parent = None
        inherited = self._for_folder(parent) if parent is not None else None
        own = self._own_sidecar(folder)
        if own is None:
            effective = inherited
        elif inherited is None:
            effective = own
        else:
            effective = inherited.merged(own)
        self._effective[folder] = effective
        return effective

    def for_path(self, path: str) -> RembiStudy | None:
        """The study that applies to the image or file at ``path`` (root-relative under a root;
        a relative path without a root has none)."""
        text = path
        if text.startswith("file://"):
            text = text[len("file://") :]
        if not _is_url(text):
            if not os.path.isabs(text):
                if self.root is None:
                    return None  # root-relative (a scan under a root) but no root given: unknown, never the cwd
                text = os.path.join(self.root, text)
            text = os.path.abspath(text)
            folder = os.path.dirname(text.rstrip(os.sep))
        else:
            folder = text.rstrip("/").rsplit("/", 1)[0]
        return self.for_folder(folder)

    def __iter__(self) -> Iterator[tuple[str, RembiStudy]]:
        """Every folder that has its own sidecar, with it."""
        for folder, study in sorted(self._own.items()):
            if study is not None:
                yield folder, study
