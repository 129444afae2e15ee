"""The :class:`Plan`: measured facts + answers -> advice, costs, text, maDMP, charts."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import BioimnbError
from .aggregate import DmpFacts, count, size
from .answers import Answers, make_answers
from .costs import Cost, estimate
from .repositories import Advice, advise

__all__ = ["FORMATS", "Plan"]

FORMATS = ("md", "html", "madmp")


class Plan:
    """A data management plan drafted from measured facts and the researcher's answers.

    ``markdown()``, ``html()``, ``madmp()`` (a dict, validated against the RDA maDMP 1.2
    schema), ``charts`` (name -> PNG bytes), ``facts`` (:class:`DmpFacts`), ``advice``,
    ``cost``; shows itself as HTML in a notebook.  ``with_answers(...)`` gives the plan for
    other answers without scanning again.
    """

    def __init__(self, facts: DmpFacts, answers: Answers | None = None) -> None:
        self.facts = facts
        self.answers = answers or Answers()
        self.advice: list[Advice] = advise(facts, self.answers)
        self.cost: Cost = estimate(facts, self.answers)
        self._charts: dict[str, bytes] | None = None

    # -- derived ---------------------------------------------------------------------------
    @property
    def charts(self) -> dict[str, bytes]:
        """``{"volume_by_format": png, "growth": png}`` (only the charts that have data)."""
        if self._charts is None:
            from .charts import make_charts

            self._charts = make_charts(self.facts)
        return self._charts

    def with_answers(self, answers: Any = None, **changes: Any) -> Plan:
        """The plan for other answers (a mapping or :class:`Answers`, then keyword changes),
        reusing the measured facts and charts."""
        base = self.answers.to_dict() if answers is None else (answers.to_dict() if isinstance(answers, Answers) else dict(answers))
        new = Plan(self.facts, make_answers(base, **changes))
        new._charts = self._charts
        return new

    def summary(self) -> str:
        f = self.facts
        if f.empty:
            return "No files found in the scanned locations."
        return (
            f"{count(f.images, 'image')} ({count(f.scenes, 'scene')}) in {count(f.files, 'file')}, {f.bytes:,} bytes ({size(f.bytes)}); "
            f"{f.open_images:,} in open and {f.proprietary_images:,} in proprietary formats; "
            f"{len(f.failures):,} could not be opened."
        )

    # -- renderings ------------------------------------------------------------------------
    def markdown(self, chart_links: dict[str, str] | None = None) -> str:
        from .text import render_markdown

        return render_markdown(self, chart_links)

    def html(self, *, full_page: bool = True) -> str:
        from .text import render_html

        return render_html(self, full_page=full_page)

    def madmp(self, *, validate: bool = True) -> dict[str, Any]:
        from .madmp import build_madmp

        return build_madmp(self, validate=validate)

    def render(self, fmt: str = "md") -> str:
        """``md``, ``html`` or ``madmp`` (JSON text)."""
        if fmt == "md":
            return self.markdown()
        if fmt == "html":
            return self.html()
        if fmt == "madmp":
            return json.dumps(self.madmp(), indent=2, ensure_ascii=False) + "\n"
        raise BioimnbError("format", f"{fmt!r} is not one of {', '.join(FORMATS)}")

    def save(self, output: str | os.PathLike[str], fmt: str | None = None) -> list[Path]:
        """Write the plan to ``output`` (format from ``fmt`` or the extension: .md, .html,
        .json) and, for Markdown and HTML, its charts beside it as ``<stem>-<chart>.png``.
        Returns the files written."""
        out = Path(output)
        if fmt is None:
            fmt = {".html": "html", ".htm": "html", ".json": "madmp"}.get(out.suffix.lower(), "md")
        if fmt not in FORMATS:
            raise BioimnbError("format", f"{fmt!r} is not one of {', '.join(FORMATS)}")
        out.parent.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        links: dict[str, str] = {}
        if fmt in ("md", "html"):
            for name, png in self.charts.items():
                path = out.with_name(f"{out.stem}-{name.replace('_', '-')}.png")
                path.write_bytes(png)
                written.append(path)
                links[name] = path.name
        text = self.markdown(links) if fmt == "md" else self.render(fmt)
        out.write_text(text, encoding="utf-8")
        written.insert(0, out)
        return written

    # -- notebook display ------------------------------------------------------------------
    def _repr_markdown_(self) -> str:
        return self.markdown()

    def _repr_html_(self) -> str:
        return self.html(full_page=False)

    def __repr__(self) -> str:
        return f"<Plan {self.summary()}>"
