"""``DmpPanel``: the answers form on the left, the live plan on the right, copy and download.

The data are scanned once (``bioimnb.core.dmp.gather``); each answer change redraws the plan
from the same facts (:meth:`Plan.with_answers`), so typing never rescans.  An invalid answer
shows its one line under the form and leaves the last good plan in place.  The copy and
download buttons are a tiny anywidget (inline ES module; the browser's clipboard and a Blob
download need JavaScript): Markdown and HTML are synced to it, the maDMP JSON is computed and
validated when its button is pressed.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Iterable
from typing import Any

import anywidget
import ipywidgets as w
import traitlets

from ..core.dmp import Plan, gather, make_answers
from ..core.dmp.answers import YES_NO, licences
from ..core.dmp.repositories import repositories
from ..core.errors import BioimnbError

__all__ = ["DmpPanel"]

_ESM = r"""
function save(name, text, type) {
  const blob = new Blob([text], { type });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.appendChild(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}
async function copy(text, note) {
  try {
    await navigator.clipboard.writeText(text);
  } catch (e) {
    const t = document.createElement("textarea");
    t.value = text; document.body.appendChild(t); t.select();
    document.execCommand("copy"); t.remove();
  }
  note.textContent = "copied";
  setTimeout(() => { note.textContent = ""; }, 2000);
}
function render({ model, el }) {
  el.classList.add("bioimnb-dmp-actions");
  const mk = (label, title, fn) => {
    const b = document.createElement("button");
    b.className = "jupyter-button"; b.textContent = label; b.title = title;
    b.addEventListener("click", fn); el.appendChild(b); return b;
  };
  const note = document.createElement("span");
  note.style.marginLeft = "0.5em";
  const stem = () => model.get("stem") || "dmp";
  mk("Copy Markdown", "copy the plan as Markdown", () => copy(model.get("markdown"), note));
  mk("Download .md", "save the plan as Markdown", () => save(stem() + ".md", model.get("markdown"), "text/markdown"));
  mk("Download .html", "save the plan as HTML (charts inside)", () => save(stem() + ".html", model.get("html"), "text/html"));
  mk("Download maDMP .json", "save the RDA maDMP JSON", () => model.send({ want: "madmp" }));
  el.appendChild(note);
  model.on("msg:custom", (msg) => {
    if (msg && msg.madmp !== undefined) save(stem() + ".madmp.json", msg.madmp, "application/json");
    if (msg && msg.error) note.textContent = msg.error;
  });
}
export default { render };
"""


class _Actions(anywidget.AnyWidget):
    _esm = _ESM
    markdown = traitlets.Unicode("").tag(sync=True)
    html = traitlets.Unicode("").tag(sync=True)
    stem = traitlets.Unicode("dmp").tag(sync=True)

    def __init__(self, panel: DmpPanel) -> None:
        super().__init__()
        self._panel = panel
        self.on_msg(self._on_msg)

    def _on_msg(self, _: Any, content: Any, buffers: Any) -> None:
        if isinstance(content, dict) and content.get("want") == "madmp":
            try:
                self.send({"madmp": json.dumps(self._panel.plan.madmp(), indent=2, ensure_ascii=False)})
            except BioimnbError as exc:
                self.send({"error": str(exc)})


def _text(description: str, value: str = "", placeholder: str = "") -> w.Text:
    return w.Text(value=value, description=description, placeholder=placeholder, continuous_update=False,
                  style={"description_width": "9em"}, layout=w.Layout(width="100%"))


class DmpPanel(w.HBox):
    """``DmpPanel(paths_or_plan, answers=None, **scan_options)``: edit the answers, watch the plan.

    ``paths_or_plan``: folders/URLs to scan, or an existing :class:`Plan`.  ``plan`` is always the
    current plan; ``error`` the last invalid answer's line (empty when all are valid).
    """

    def __init__(
        self,
        paths_or_plan: Plan | str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
        answers: Any = None,
        **scan_options: Any,
    ) -> None:
        if isinstance(paths_or_plan, Plan):
            plan = paths_or_plan if answers is None else paths_or_plan.with_answers(answers)
        else:
            plan = Plan(gather(paths_or_plan, **scan_options), make_answers(answers))
        self.plan = plan
        self.error = ""
        a = plan.answers
        first = a.contacts[0] if a.contacts else None
        self.fields: dict[str, w.Widget] = {
            "title": _text("Title", a.title or "", "project or dataset title"),
            "funder": _text("Funder", a.funder or ""),
            "grant_id": _text("Grant", a.grant_id or ""),
            "contact_name": _text("Contact", first.name if first else ""),
            "contact_email": _text("E-mail", (first.email or "") if first else ""),
            "contact_orcid": _text("ORCID", (first.orcid or "") if first else "", "0000-0000-0000-0000"),
            "licence": w.Dropdown(options=[("(not chosen)", "")] + [(k, k) for k in licences()], value=a.licence or "",
                                  description="Licence", style={"description_width": "9em"}),
            "personal_data": w.Dropdown(options=list(YES_NO), value=a.personal_data, description="Personal data",
                                        style={"description_width": "9em"}),
            "health_data": w.Dropdown(options=list(YES_NO), value=a.health_data, description="Health data",
                                      style={"description_width": "9em"}),
            "embargo_months": w.BoundedIntText(value=a.embargo_months, min=0, max=600, description="Embargo (months)",
                                               style={"description_width": "9em"}),
            "storage": _text("Storage", a.storage or "", "where the data live now"),
            "backup_copies": w.BoundedIntText(value=a.backup_copies, min=0, max=20, description="Backup copies",
                                              style={"description_width": "9em"}),
            "retention_years": w.BoundedIntText(value=a.retention_years, min=1, max=100, description="Keep (years)",
                                                style={"description_width": "9em"}),
            "price_per_tb_year": _text("Price / TB / year", "" if a.price_per_tb_year is None else f"{a.price_per_tb_year:g}"),
            "currency": _text("Currency", a.currency),
            "repository": w.Dropdown(options=[("(not chosen)", "")] + [(r["name"], r["name"]) for r in repositories()],
                                     value=a.repository if a.repository in {r["name"] for r in repositories()} else "",
                                     description="Repository", style={"description_width": "9em"}),
            "modality": _text("Modality", a.modality or "", "e.g. light microscopy"),
        }
        self.status = w.HTML("")
        form = w.VBox([w.HTML("<b>Answers</b>"), *self.fields.values(), self.status],
                      layout=w.Layout(width="34%", min_width="18em"))
        self.actions = _Actions(self)
        self.view = w.HTML("", layout=w.Layout(width="100%"))
        right = w.VBox([self.actions, self.view], layout=w.Layout(width="66%", max_height="48em", overflow="auto"))
        super().__init__([form, right], layout=w.Layout(width="100%"))
        for widget in self.fields.values():
            widget.observe(self._changed, names="value")
        self._show()

    # -- what the form says -------------------------------------------------------------------
    def answers_from_form(self) -> dict[str, Any]:
        v = {k: getattr(f, "value", None) for k, f in self.fields.items()}
        contact = {"name": v.pop("contact_name"), "email": v.pop("contact_email"), "orcid": v.pop("contact_orcid")}
        out: dict[str, Any] = {k: val for k, val in v.items() if val not in ("", None)}
        if contact["name"] or contact["email"] or contact["orcid"]:
            out["contacts"] = [{k: c for k, c in contact.items() if c}]
        return out

    def _changed(self, _: Any = None) -> None:
        try:
            self.plan = self.plan.with_answers(self.answers_from_form())
        except BioimnbError as exc:
            self.error = exc.reason
            self.status.value = f'<span style="color:#b00020">{html.escape(exc.reason)}</span>'
            return
        self.error = ""
        self._show()

    def _show(self) -> None:
        self.status.value = f'<span style="color:#555">{html.escape(self.plan.summary())}</span>'
        fragment = self.plan.html(full_page=False)
        self.view.value = fragment
        self.actions.markdown = self.plan.markdown()
        self.actions.html = self.plan.html()
        title = self.plan.answers.title or "dmp"
        self.actions.stem = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in title)[:60] or "dmp"
