"""Ontology terms: the bundled offline list, and OLS4 lookups replayed from a local HTTP server."""

from __future__ import annotations

import contextlib
import http.server
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from bioimnb.core.curation import ontology, rembi

# Recorded by hand in the shape OLS4's /api/search answers (Solr-style "responseHeader" and
# "response" with "docs"; each doc carries iri, short_form, obo_id, label, ontology_name,
# ontology_prefix, type, is_defining_ontology, and synonym where the term has some).
RECORDED: dict[tuple[str, str], dict[str, Any]] = {
    ("light sheet", "fbbi"): {
        "responseHeader": {"status": 0, "QTime": 2},
        "response": {
            "numFound": 3,
            "start": 0,
            "docs": [
                {
                    "id": "fbbi:class:http://purl.obolibrary.org/obo/FBbi_00000369",
                    "iri": "http://purl.obolibrary.org/obo/FBbi_00000369",
                    "short_form": "FBbi_00000369",
                    "obo_id": "FBbi:00000369",
                    "label": "light sheet fluorescence microscopy",
                    "description": ["Fluorescence microscopy with a sheet of light illuminating one plane."],
                    "synonym": ["SPIM", "LSFM"],
                    "ontology_name": "fbbi",
                    "ontology_prefix": "FBbi",
                    "type": "class",
                    "is_defining_ontology": True,
                },
                {
                    "id": "fbbi:class:http://purl.obolibrary.org/obo/FBbi_00000364",
                    "iri": "http://purl.obolibrary.org/obo/FBbi_00000364",
                    "short_form": "FBbi_00000364",
                    "obo_id": "FBbi:00000364",
                    "label": "light-sheet illumination",
                    "ontology_name": "fbbi",
                    "ontology_prefix": "FBbi",
                    "type": "class",
                    "is_defining_ontology": True,
                },
                {
                    "id": "fbbi:class:http://purl.obolibrary.org/obo/BFO_0000015",
                    "iri": "http://purl.obolibrary.org/obo/BFO_0000015",
                    "short_form": "BFO_0000015",
                    "obo_id": "BFO:0000015",
                    "label": "process",
                    "ontology_name": "fbbi",
                    "ontology_prefix": "FBbi",
                    "type": "class",
                    "is_defining_ontology": False,
                },
            ],
        },
    },
    ("axolotl", "ncbitaxon"): {
        "responseHeader": {"status": 0, "QTime": 5},
        "response": {
            "numFound": 1,
            "start": 0,
            "docs": [
                {
                    "id": "ncbitaxon:class:http://purl.obolibrary.org/obo/NCBITaxon_8296",
                    "iri": "http://purl.obolibrary.org/obo/NCBITaxon_8296",
                    "short_form": "NCBITaxon_8296",
                    "obo_id": "NCBITaxon:8296",
                    "label": "Ambystoma mexicanum",
                    "synonym": ["axolotl", "Mexican axolotl"],
                    "ontology_name": "ncbitaxon",
                    "ontology_prefix": "NCBITaxon",
                    "type": "class",
                    "is_defining_ontology": True,
                }
            ],
        },
    },
}


class FakeOLS:
    """A local stand-in for OLS4: replays :data:`RECORDED`, remembers each request's query,
    and can be told to fail (status), to answer garbage, or to be slow."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        self.status = 200
        self.body: bytes | None = None
        self.delay = 0.0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - stdlib name
                parts = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(parts.query)
                owner.requests.append((parts.path, query))
                if owner.delay:
                    time.sleep(owner.delay)
                if owner.status != 200:
                    self.send_response(owner.status)
                    self.end_headers()
                    return
                if owner.body is not None:
                    body = owner.body
                else:
                    key = (query.get("q", [""])[0], query.get("ontology", [""])[0])
                    answer = RECORDED.get(key, {"responseHeader": {"status": 0}, "response": {"numFound": 0, "start": 0, "docs": []}})
                    body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the slow case: the client gave up
                    self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ols4"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def ols() -> Iterator[FakeOLS]:
    server = FakeOLS()
    try:
        yield server
    finally:
        server.close()


def test_bundled_list_is_well_formed() -> None:
    data = json.loads(ontology._DATA.read_text(encoding="utf-8"))
    terms = data["terms"]
    assert 100 <= len(terms) <= 300
    ids = [t["id"] for t in terms]
    assert len(ids) == len(set(ids))
    for t in terms:
        assert t["ontology"] in data["ontologies"], t
        assert t["label"].strip() == t["label"] and t["label"]
        if t["ontology"] == "fbbi":
            assert rembi.fbbi_term_id(t["id"]) == t["id"]
        else:
            assert rembi.ncbi_taxon_id(t["id"]) == t["id"]
    versions = ontology.ontologies()
    assert versions["fbbi"]["version"] == "2020-11-06"
    assert all(v.get("version") and v.get("source") for v in versions.values())
    assert sum(t["ontology"] == "fbbi" for t in terms) >= 100
    assert sum(t["ontology"] == "ncbitaxon" for t in terms) >= 50


def test_offline_search_ranks_labels_then_synonyms() -> None:
    found = ontology.offline_search("confocal microscopy", "fbbi")
    assert found[0].id == "FBbi:00000251" and found[0].label == "confocal microscopy"
    assert {t.id for t in found} >= {"FBbi:00000252", "FBbi:00000253"}  # single-spot, spinning disk
    human = ontology.offline_search("human", "ncbitaxon")
    assert human[0].id == "NCBITaxon:9606" and human[0].label == "Homo sapiens"
    assert ontology.offline_search("Nomarski")[0].id == "FBbi:00000245"  # a synonym
    assert ontology.offline_search("FBbi:00000246")[0].label == "fluorescence microscopy"
    assert ontology.offline_search("zzzz-no-such-term") == []
    assert all(t.ontology == "ncbitaxon" for t in ontology.offline_search("a", "ncbitaxon", limit=50))
    assert len(ontology.offline_search("", "fbbi", limit=5)) == 5


def test_lookup_by_id() -> None:
    term = ontology.lookup("FBbi_00000369")
    assert term is not None and term.id == "FBbi:00000369" and term.ontology == "fbbi"
    assert ontology.lookup("NCBITaxon:7955").label == "Danio rerio"  # type: ignore[union-attr]
    assert ontology.lookup("FBbi:99999999") is None


def test_ols_search_replays_recorded_answer(ols: FakeOLS) -> None:
    result = ontology.search("light sheet", "fbbi", base_url=ols.url, limit=10)
    assert result.source == "ols" and result.note is None
    # The request OLS4 expects: /api/search with q, ontology, rows.
    path, query = ols.requests[-1]
    assert path == "/ols4/api/search"
    assert query["q"] == ["light sheet"] and query["ontology"] == ["fbbi"] and query["rows"] == ["10"]
    # Terms imported from another ontology (is_defining_ontology false) are left out.
    assert [(t.id, t.label) for t in result.terms] == [
        ("FBbi:00000369", "light sheet fluorescence microscopy"),
        ("FBbi:00000364", "light-sheet illumination"),
    ]
    assert result.terms[0].synonyms == ("SPIM", "LSFM") and result.terms[0].source == "ols"


def test_base_url_from_environment(ols: FakeOLS, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIOIMNB_OLS_URL", ols.url + "/")
    result = ontology.search("axolotl", "ncbitaxon")
    assert result.source == "ols"
    assert [(t.id, t.label, t.synonyms) for t in result.terms] == [("NCBITaxon:8296", "Ambystoma mexicanum", ("axolotl", "Mexican axolotl"))]
    monkeypatch.setenv("BIOIMNB_OLS_URL", "off")
    off = ontology.search("axolotl", "ncbitaxon")
    assert off.source == "offline" and "off" in (off.note or "")
    assert off.terms[0].id == "NCBITaxon:8296"  # the offline list knows it by its common name
    assert len(ols.requests) == 1


@pytest.mark.parametrize("failure", ["status", "garbage", "unreachable", "slow"])
def test_falls_back_to_offline_list_with_a_note(ols: FakeOLS, failure: str) -> None:
    base = ols.url
    if failure == "status":
        ols.status = 503
    elif failure == "garbage":
        ols.body = b"<html>maintenance</html>"
    elif failure == "unreachable":
        ols.close()
    else:
        ols.delay = 2.0
    started = time.perf_counter()
    result = ontology.search("confocal", "fbbi", base_url=base, timeout=0.5)
    elapsed = time.perf_counter() - started
    assert result.source == "offline"
    assert result.terms and result.terms[0].label.startswith("confocal")
    note = result.note or ""
    assert note.startswith(f"OLS at {base} ") and "offline list" in note and "fbbi 2020-11-06" in note
    assert "\n" not in note
    expected = {"status": "HTTP 503", "garbage": "cannot read", "unreachable": "unreachable", "slow": "unreachable"}[failure]
    assert expected in note
    assert elapsed < 1.9  # the timeout holds: never waits for the slow server's answer


def test_non_http_base_is_not_used(tmp_path: Any) -> None:
    secret = tmp_path / "api"
    secret.mkdir()
    result = ontology.search("confocal", "fbbi", base_url=f"file://{tmp_path}")
    assert result.source == "offline" and re.search(r"not an http\(s\) URL", result.note or "")
