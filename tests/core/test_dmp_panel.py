"""The DMP front ends in a kernel: ``%bioim dmp`` (a real IPython shell) and ``DmpPanel``.

(Kept beside the core DMP tests; the panel is driven from Python here.)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

REPO = Path(__file__).resolve().parents[2]
SHARED_SCHEMA = REPO.parent / "shared" / "schemas" / "maDMP-schema-1.2.json"


def validated(doc: dict[str, Any]) -> dict[str, Any]:
    import jsonschema

    from bioimnb.core.dmp.madmp import SCHEMA_PATH

    schema = json.loads((SHARED_SCHEMA if SHARED_SCHEMA.is_file() else SCHEMA_PATH).read_text())
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER).validate(doc)
    return doc


@pytest.fixture(scope="module")
def ip() -> Any:
    from IPython.testing.globalipapp import get_ipython

    shell = get_ipython()
    shell.run_line_magic("load_ext", "bioimnb")
    return shell


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("dmppanel") / "imgs"
    d.mkdir()
    tifffile.imwrite(d / "a.ome.tif", np.zeros((2, 40, 50), np.uint16), ome=True, metadata={"axes": "CYX"})
    tifffile.imwrite(d / "b.tif", np.ones((30, 30), np.uint8))
    return d


def test_magic_shows_the_plan(ip: Any, folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from bioimnb.core.dmp import Plan

    monkeypatch.setenv("BIOIMNB_CACHE_DIR", str(tmp_path))
    plan = ip.run_line_magic("bioim", f"dmp {folder}")
    assert isinstance(plan, Plan)
    assert plan.facts.images == 2 and plan.facts.bytes == sum(p.stat().st_size for p in folder.iterdir())
    assert "<table>" in plan._repr_html_()
    answers = tmp_path / "a.yaml"
    answers.write_text("licence: CC-BY-4.0\ntitle: From the magic\n")
    panel = ip.run_line_magic("bioim", f"dmp {folder} --answers {answers} --panel")
    assert type(panel).__name__ == "DmpPanel" and panel.plan.answers.title == "From the magic"


def test_magic_bad_answers_are_one_line(ip: Any, folder: Path, tmp_path: Path):
    from IPython.core.error import UsageError

    answers = tmp_path / "bad.yaml"
    answers.write_text("price_per_tb_year: -5\n")
    with pytest.raises(UsageError) as exc:
        ip.run_line_magic("bioim", f"dmp {folder} --answers {answers}")
    assert str(exc.value) == f"bioimnb: {answers}: price_per_tb_year: -5 is negative (a price per TB per year is 0 or more)"


def test_panel_redraws_from_the_same_facts(folder: Path):
    from bioimnb.core.dmp import dmp
    from bioimnb.widgets.dmp import DmpPanel

    panel = DmpPanel(dmp(folder, cache=False, completeness=None))
    facts = panel.plan.facts
    panel.fields["title"].value = "Live title"
    panel.fields["price_per_tb_year"].value = "200"
    panel.fields["backup_copies"].value = 3
    panel.fields["repository"].value = "Zenodo"
    assert panel.plan.facts is facts and panel.error == ""
    assert "Live title" in panel.view.value and "Live title" in panel.actions.markdown
    assert panel.plan.cost.copies == 4 and panel.plan.cost.price_per_tb_year == 200
    assert f"{panel.plan.cost.total:,.2f} EUR" in panel.view.value
    assert panel.actions.stem == "Live-title"
    # an invalid answer: one line under the form, the last good plan stays
    panel.fields["contact_name"].value = "Ann"
    panel.fields["contact_orcid"].value = "0000-0002-1825-0098"
    assert panel.error.startswith("contacts[0].orcid: '0000-0002-1825-0098' is not a valid ORCID iD")
    assert "0000-0002-1825-0098" in panel.status.value
    assert panel.plan.answers.contacts[0].name == "Ann" and panel.plan.answers.contacts[0].orcid is None
    panel.fields["contact_orcid"].value = "0000-0002-1825-0097"
    assert panel.error == "" and panel.plan.answers.contacts[0].orcid == "0000-0002-1825-0097"


def test_panel_sends_validated_madmp_on_request(folder: Path):
    from bioimnb.core.dmp import dmp
    from bioimnb.widgets.dmp import DmpPanel

    panel = DmpPanel(dmp(folder, cache=False, completeness=None), {"licence": "CC0-1.0"})
    sent: list[dict[str, Any]] = []
    panel.actions.send = lambda content, buffers=None: sent.append(content)  # type: ignore[method-assign]
    panel.actions._on_msg(panel.actions, {"want": "madmp"}, [])
    doc = validated(json.loads(sent[0]["madmp"]))
    assert sum(d["byte_size"] for d in doc["dmp"]["dataset"][0]["distribution"]) == panel.plan.facts.bytes


def test_public_name(folder: Path):
    import bioimnb

    assert bioimnb.DmpPanel.__name__ == "DmpPanel"
    assert "bioimnb.widgets.dmp" in sys.modules
