"""Ontology terms for REMBI fields: a bundled offline list, and the EBI OLS4 search when reachable.

REMBI asks for terms from ontologies: FBbi for imaging methods (``fbbi_id``,
``imaging_method_name``) and NCBITaxon for organisms (``organism_classification``).
:func:`search` asks the Ontology Lookup Service (OLS4, ``{base}/api/search?q=...&ontology=...``)
with a short timeout and falls back to the offline list (``ontology_terms.json``, its versions
in :func:`ontologies`) with a note saying why, so term pickers work on an air-gapped hub too.

The OLS base URL is, in order: the ``base_url`` argument, the ``BIOIMNB_OLS_URL`` environment
variable, then ``https://www.ebi.ac.uk/ols4``.  ``BIOIMNB_OLS_URL=off`` (or ``online=False``)
never asks the network.

Why not a client library: the one request needed is a GET with four parameters; the standard
library's ``urllib`` does it with a hard timeout and no extra dependency.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_OLS",
    "SearchResult",
    "Term",
    "lookup",
    "offline_search",
    "ontologies",
    "ols_base",
    "search",
]

DEFAULT_OLS = "https://www.ebi.ac.uk/ols4"
TIMEOUT = 3.0
"""Seconds to wait for OLS before using the offline list."""
_MAX_BYTES = 4 * 1024 * 1024
_DATA = Path(__file__).with_name("ontology_terms.json")


@dataclass(frozen=True)
class Term:
    id: str
    """OBO id, e.g. ``FBbi:00000251`` or ``NCBITaxon:9606``."""
    label: str
    ontology: str
    """OLS ontology id: ``fbbi``, ``ncbitaxon``, ..."""
    synonyms: tuple[str, ...] = ()
    group: str | None = None
    """Offline list: the branch of the ontology it comes from (``imaging method``, ``organism``)."""
    source: str = "offline"
    """``offline`` (the bundled list) or ``ols``."""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["synonyms"] = list(self.synonyms)
        return d


@dataclass
class SearchResult:
    terms: list[Term]
    source: str
    """``ols`` or ``offline``."""
    note: str | None = None
    """Why the offline list was used (OLS off, unreachable, answered badly); None when OLS answered."""
    query: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "note": self.note, "terms": [t.to_dict() for t in self.terms]}


@lru_cache(maxsize=1)
def _bundle() -> dict[str, Any]:
    with open(_DATA, encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


@lru_cache(maxsize=1)
def _terms() -> tuple[Term, ...]:
    return tuple(
        Term(t["id"], t["label"], t["ontology"], tuple(t.get("synonyms", ())), t.get("group"))
        for t in _bundle()["terms"]
    )


def ontologies() -> dict[str, dict[str, str]]:
    """The ontologies of the offline list: ``{id: {"title", "version", "source", ...}}``."""
    return dict(_bundle()["ontologies"])


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w]+", " ", text.lower()).split())


def lookup(term_id: str) -> Term | None:
    """The offline term with this id (``FBbi:00000251``, ``FBbi_00000251``, ``NCBITaxon:9606``)."""
    key = term_id.strip().replace("_", ":", 1).lower()
    for t in _terms():
        if t.id.lower() == key:
            return t
    return None


def offline_search(q: str, ontology: str | None = None, *, limit: int = 20, group: str | None = None) -> list[Term]:
    """Terms of the bundled list matching ``q`` (label, synonym or id), best first: exact
    label, then label starting with ``q``, then a word starting with it, then anywhere."""
    query = _norm(q)
    onto = ontology.lower() if ontology else None
    ranked: list[tuple[int, int, str, Term]] = []
    for t in _terms():
        if onto and t.ontology != onto:
            continue
        if group and t.group != group:
            continue
        if not query:
            ranked.append((4, len(t.label), t.label, t))
            continue
        best = None
        for i, text in enumerate((t.label, *t.synonyms, t.id)):
            n = _norm(text)
            if n == query:
                rank = 0
            elif n.startswith(query):
                rank = 1
            elif (" " + n).find(" " + query) >= 0:
                rank = 2
            elif query in n:
                rank = 3
            else:
                continue
            rank = rank * 2 + (1 if i else 0)  # a label match beats a synonym's
            best = rank if best is None else min(best, rank)
        if best is not None:
            ranked.append((best, len(t.label), t.label, t))
    ranked.sort(key=lambda r: (r[0], r[1], r[2]))
    return [r[3] for r in ranked[: max(0, limit)]]


def ols_base(base_url: str | None = None) -> str | None:
    """The OLS base URL to ask, or None when lookups are switched off."""
    base = base_url if base_url is not None else os.environ.get("BIOIMNB_OLS_URL", DEFAULT_OLS)
    base = base.strip()
    if not base or base.lower() in ("off", "none", "0", "false"):
        return None
    return base.rstrip("/")


def _ols_terms(payload: Any, ontology: str | None) -> list[Term]:
    """Terms from an OLS4 ``/api/search`` answer: ``{"response": {"docs": [...]}}``, each doc with
    ``obo_id``, ``label``, ``ontology_name``, ``synonym``, ``is_defining_ontology``."""
    docs = payload["response"]["docs"]
    if not isinstance(docs, list):
        raise ValueError("response.docs is not a list")
    out: list[Term] = []
    seen: set[str] = set()
    for doc in docs:
        if not isinstance(doc, dict):
            continue
        obo_id = doc.get("obo_id") or ""
        label = doc.get("label") or ""
        if not obo_id or not label or obo_id in seen:
            continue
        if doc.get("is_defining_ontology") is False:
            continue  # a term imported into another ontology: the defining one lists it too
        name = str(doc.get("ontology_name") or ontology or "").lower()
        if ontology and name != ontology.lower():
            continue
        synonyms = doc.get("synonym") or doc.get("exact_synonyms") or []
        if isinstance(synonyms, str):
            synonyms = [synonyms]
        seen.add(obo_id)
        out.append(Term(str(obo_id), str(label), name, tuple(str(s) for s in synonyms), None, "ols"))
    return out


def search(
    q: str,
    ontology: str | None = None,
    *,
    limit: int = 20,
    base_url: str | None = None,
    timeout: float = TIMEOUT,
    online: bool = True,
) -> SearchResult:
    """Terms matching ``q`` in ``ontology`` (``fbbi``, ``ncbitaxon``; None: all), from OLS4 when
    it answers within ``timeout`` seconds, else from the offline list with :attr:`SearchResult.note`
    saying why.  Never raises for network trouble."""
    base = ols_base(base_url) if online else None
    offline_note = None
    if base is None:
        offline_note = "OLS lookups are off (BIOIMNB_OLS_URL=off); terms from the bundled offline list"
    elif not base.lower().startswith(("http://", "https://")):
        offline_note = f"OLS base {base!r} is not an http(s) URL; terms from the bundled offline list"
    elif q.strip():
        params = {"q": q, "rows": str(max(1, limit)), "type": "class", "queryFields": "label,synonym,obo_id"}
        if ontology:
            params["ontology"] = ontology.lower()
        url = f"{base}/api/search?{urllib.parse.urlencode(params)}"
        request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "bioimnb"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) base only
                body = response.read(_MAX_BYTES + 1)
            if len(body) > _MAX_BYTES:
                raise ValueError("answer larger than 4 MiB")
            terms = _ols_terms(json.loads(body.decode("utf-8")), ontology)
            return SearchResult(terms[:limit], "ols", None, params)
        except urllib.error.HTTPError as exc:
            offline_note = f"OLS at {base} answered HTTP {exc.code}"
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            offline_note = f"OLS at {base} is unreachable ({' '.join(str(reason).split())[:120]})"
        except (ValueError, KeyError, TypeError) as exc:
            offline_note = f"OLS at {base} gave an answer bioimnb cannot read ({type(exc).__name__}: {str(exc)[:80]})"
        offline_note += "; terms from the bundled offline list"
    terms = offline_search(q, ontology, limit=limit)
    if offline_note:
        versions = ontologies()
        which = [ontology.lower()] if ontology else sorted(versions)
        stated = ", ".join(f"{k} {versions[k]['version'].split(';')[0]}" for k in which if k in versions)
        offline_note = f"{offline_note} ({stated})" if stated else offline_note
    return SearchResult(terms, "offline", offline_note)
