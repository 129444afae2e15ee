"""Data management plan snippets computed from the scanned facts (Science Europe text, maDMP JSON).

``dmp(paths_or_urls, answers=None, **answers)`` scans each location (headers only, through the
scan's facts cache), aggregates the facts, and returns a :class:`Plan`: Science Europe sections
in Markdown and HTML with the measured numbers woven in and an appendix of the facts, repository
advice (``repositories.json``), a storage cost estimate, charts, and RDA maDMP 1.2 JSON.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from .aggregate import DmpFacts, aggregate, gather
from .answers import Answers, Contact, InvalidAnswer, load_answers, make_answers
from .plan import FORMATS, Plan

__all__ = [
    "FORMATS",
    "Answers",
    "Contact",
    "DmpFacts",
    "InvalidAnswer",
    "Plan",
    "aggregate",
    "dmp",
    "gather",
    "load_answers",
    "make_answers",
]


def dmp(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    answers: Answers | dict[str, Any] | str | os.PathLike[str] | None = None,
    *,
    recursive: bool = True,
    cache: bool | str | os.PathLike[str] = True,
    root: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    completeness: Any = "auto",
    storage_options: dict[str, Any] | None = None,
    **answer_fields: Any,
) -> Plan:
    """A data management plan for the data at ``paths`` (folders, buckets, prefixes).

    ``answers``: an :class:`Answers`, a mapping, or a YAML/JSON file; keyword arguments are
    answer fields too (``title=``, ``licence="CC-BY-4.0"``, ``price_per_tb_year=``, ...) and
    win.  Invalid answers raise :class:`InvalidAnswer` naming the field, before any scan.
    ``storage_options``: for object stores (``{"endpoint_url": ...}``).
    """
    if isinstance(answers, (str, os.PathLike)):
        base: Any = load_answers(answers)
        source = os.fspath(answers)
    else:
        base, source = answers, "answers"
    checked = make_answers(base, source=source, **answer_fields)
    facts = gather(
        paths,
        recursive=recursive,
        cache=cache,
        root=root,
        workers=workers,
        completeness=completeness,
        storage_options=storage_options,
    )
    return Plan(facts, checked)
