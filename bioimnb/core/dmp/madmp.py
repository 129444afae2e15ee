"""The plan as RDA DMP Common Standard JSON (maDMP, schema 1.2), importable by maDMP tools.

One dataset per scanned location; one distribution per format in it with the measured
``byte_size`` and the media type where one exists (``image/tiff``, ...; else the format's
name, as the standard asks), plus one distribution for the planned repository.  Metadata
standards: OME-XML, OME-NGFF (when OME-Zarr images are present or planned) and REMBI.  The
document is validated against the schema (bundled copy of ``maDMP-schema-1.2.json``) before it
is returned.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import BioimnbError
from ..version import VERSION
from .aggregate import format_info
from .answers import licences
from .repositories import repositories

if TYPE_CHECKING:  # pragma: no cover
    from .plan import Plan

__all__ = ["SCHEMA_PATH", "build_madmp", "validate_madmp"]

SCHEMA_PATH = Path(__file__).resolve().parent / "maDMP-schema-1.2.json"
OME_XML = "https://www.openmicroscopy.org/Schemas/OME/2016-06"
OME_NGFF = "https://ngff.openmicroscopy.org/"
REMBI = "https://doi.org/10.1038/s41592-021-01166-8"
NOT_STATED_MBOX = "not-stated@example.invalid"
"""maDMP requires a contact e-mail; until the answers give one, a reserved address (RFC 2606)
that can never reach anyone, and the description says so."""


class InvalidMadmp(BioimnbError, ValueError):
    """The generated document does not validate (a bug, reported as one line)."""


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    return dict(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def validate_madmp(doc: dict[str, Any], schema: dict[str, Any] | None = None) -> None:
    """Raise :class:`InvalidMadmp` naming the first problem unless ``doc`` validates (with
    format checks: dates, date-times, e-mail addresses)."""
    import jsonschema

    sch = schema or _schema()
    validator = jsonschema.Draft202012Validator(sch, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise InvalidMadmp("maDMP", f"{where}: {error.message}")


def _person_id(orcid: str | None, name: str) -> dict[str, str]:
    if orcid:
        return {"identifier": f"https://orcid.org/{orcid}", "type": "orcid"}
    return {"identifier": name, "type": "other"}


def build_madmp(plan: Plan, *, validate: bool = True) -> dict[str, Any]:
    f, a = plan.facts, plan.answers
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    stamp = now.isoformat().replace("+00:00", "Z")
    title = a.title or "Imaging data of " + ", ".join(f.sources)
    key = json.dumps([title, f.sources], sort_keys=True)
    dmp_id = {"identifier": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'bioimnb-dmp:' + key)}", "type": "other"}
    sensitive = a.health_data
    ethical = "yes" if "yes" in (a.personal_data, a.health_data) else ("no" if a.personal_data == a.health_data == "no" else "unknown")

    if a.contacts:
        first = a.contacts[0]
        contact = {
            "name": first.name,
            "mbox": first.email or NOT_STATED_MBOX,
            "contact_id": _person_id(first.orcid, first.name),
        }
    else:
        contact = {"name": "not stated", "mbox": NOT_STATED_MBOX, "contact_id": {"identifier": "not stated", "type": "other"}}
    contributors = [
        {
            "name": c.name,
            "contributor_id": _person_id(c.orcid, c.name),
            "role": [c.role or "contact person"],
            **({"mbox": c.email} if c.email else {}),
        }
        for c in a.contacts
    ]

    licence: list[dict[str, str]] = []
    if a.licence:
        start = dt.date.today()
        if a.embargo_months:
            months = start.month - 1 + a.embargo_months
            year, month = start.year + months // 12, months % 12 + 1
            start = dt.date(year, month, min(start.day, 28))
        licence = [{"license_ref": licences()[a.licence]["url"], "start_date": start.isoformat()}]
    access = "closed" if "yes" in (a.personal_data, a.health_data) else "open"

    metadata = [
        {"metadata_standard_id": {"identifier": OME_XML, "type": "url"}, "language": "eng", "description": "OME-XML (OME data model) for image metadata"},
        {"metadata_standard_id": {"identifier": REMBI, "type": "url"}, "language": "eng", "description": "REMBI, Recommended Metadata for Biological Images, for study-level metadata"},
    ]
    if "OME-Zarr" in f.formats or f.proprietary_images:
        metadata.insert(1, {"metadata_standard_id": {"identifier": OME_NGFF, "type": "url"}, "language": "eng", "description": "OME-NGFF (OME-Zarr) for multiscale images"})

    datasets: list[dict[str, Any]] = []
    per_source = _per_source(plan)
    for source, rows in per_source.items():
        dists = []
        for name, (nbytes, nimages) in rows.items():
            info = format_info(name) if name not in ("other files", "unreadable") else {"media_type": None}
            fmt = info.get("media_type") or name
            dist: dict[str, Any] = {
                "title": f"{name} at {source}",
                "description": f"{nimages:,} {'images' if name not in ('other files', 'unreadable') else 'files'}, measured by bioimnb",
                "byte_size": int(nbytes),
                "format": [fmt] if fmt == name or name in ("other files", "unreadable") else [fmt, name],
                "data_access": "closed" if access == "closed" else "shared",
            }
            if source.startswith(("s3://", "http://", "https://")):
                dist["access_url"] = source
                dist["host"] = {
                    "title": a.storage or ("S3 object store" if source.startswith("s3://") else "web server"),
                    "url": source,
                    "storage_type": "object store" if source.startswith("s3://") else "web server",
                }
            dists.append(dist)
        if a.repository:
            rec = next((r for r in repositories() if r["name"].lower() == a.repository.lower()), None)
            host: dict[str, Any] = {"title": a.repository, "url": rec["url"] if rec else "https://example.invalid/"}
            if rec and rec.get("doi"):
                host["pid_system"] = ["doi"]
            repo_dist: dict[str, Any] = {
                "title": f"Deposit in {a.repository}",
                "byte_size": int(sum(v[0] for v in rows.values())),
                "data_access": access,
                "host": host,
                "format": sorted({(format_info(n).get("media_type") or n) for n in rows if n not in ("other files", "unreadable")}) or ["unknown"],
            }
            if licence:
                repo_dist["license"] = licence
            dists.append(repo_dist)
        elif licence and dists:
            dists[0]["license"] = licence
        ds: dict[str, Any] = {
            "title": title if len(per_source) == 1 else f"{title} ({source})",
            "dataset_id": {"identifier": source, "type": "url" if "://" in source else "other"},
            "type": "image",
            "description": plan.summary(),
            "personal_data": a.personal_data,
            "sensitive_data": sensitive,
            "keyword": sorted(set(rows) - {"other files", "unreadable"}) + (["electron microscopy"] if f.modalities.get("electron microscopy") else []),
            "metadata": metadata,
            "distribution": dists,
            "preservation_statement": (
                f"Kept for {a.retention_years} years in {plan.cost.copies} copies; vendors' formats converted to OME-Zarr or OME-TIFF."
            ),
            "data_quality_assurance": [
                "Facts measured from image headers by bioimnb " + VERSION
                + (f"; checksums in {', '.join(m['kind'] for m in f.manifests if not m.get('error'))}" if f.manifests else "")
            ],
        }
        if f.instruments:
            ds["technical_resource"] = [{"name": name, "description": f"named in the metadata of {n} images"} for name, n in f.instruments.items()]
        if "yes" in (a.personal_data, a.health_data):
            ds["security_and_privacy"] = [
                {"title": "Access control", "description": "Personal or health data: access-controlled storage, sharing under agreement only."}
            ]
        datasets.append(ds)

    doc: dict[str, Any] = {
        "dmp": {
            "title": f"Data management plan: {title}",
            "description": "Drafted by bioimnb from a scan of the data"
            + ("" if a.contacts and a.contacts[0].email else f"; contact e-mail not stated yet ({NOT_STATED_MBOX} is a placeholder)"),
            "language": "eng",
            "created": stamp,
            "modified": stamp,
            "dmp_id": dmp_id,
            "ethical_issues_exist": ethical,
            "contact": contact,
            "dataset": datasets,
        }
    }
    d = doc["dmp"]
    if contributors:
        d["contributor"] = contributors
    if a.funder or a.project_start or a.project_end:
        project: dict[str, Any] = {"title": title}
        if a.project_start:
            project["start"] = a.project_start
        if a.project_end:
            project["end"] = a.project_end
        if a.funder:
            funding: dict[str, Any] = {"funder_id": {"identifier": a.funder, "type": "other"}, "funding_status": "granted" if a.grant_id else "planned"}
            if a.grant_id:
                funding["grant_id"] = {"identifier": a.grant_id, "type": "other"}
            project["funding"] = [funding]
        d["project"] = [project]
    if ethical != "no":
        d["ethical_issues_description"] = f"personal data: {a.personal_data}; protected health information: {a.health_data}"
    c = plan.cost
    if c.total is not None:
        cost: dict[str, Any] = {
            "title": "Storage and backup",
            "value": round(c.total, 2),
            "description": "; ".join(c.assumptions),
        }
        if a.currency in _schema()["$defs"]["CurrencyCode"]["enum"]:
            cost["currency_code"] = a.currency
        d["cost"] = [cost]
    if validate:
        validate_madmp(doc)
    return doc


def _per_source(plan: Plan) -> dict[str, dict[str, tuple[int, int]]]:
    """source -> {format or "other files"/"unreadable": (bytes, count)}."""
    return {src: {k: (int(v[0]), int(v[1])) for k, v in rows.items()} for src, rows in plan.facts.by_source.items()}
