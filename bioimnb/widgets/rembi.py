"""The REMBI study form: ``StudyForm(folder)``.

One tab per REMBI section with the BioImage Archive's field names; ontology term pickers for
the organism (NCBITaxon) and the imaging method (FBbi), searching EBI OLS4 when it answers and
the bundled offline list otherwise; a validation panel naming invalid and missing fields; and a
Save button writing ``FOLDER/rembi.json``.  The form edits the folder's own sidecar; values
inherited from sidecars of parent folders count for completeness and are named in the header.

All rules (fields, validation, merging, saving, term search) live in
:mod:`bioimnb.core.curation.rembi` and :mod:`bioimnb.core.curation.ontology`; this module only
turns widget values into calls to them.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from ..core.curation import ontology, rembi
from ..core.errors import BioimnbError, display_source

__all__ = ["StudyForm", "TermPicker"]

_LONG = ("description", "protocol", "statement", "parameters", "acknowledgement", "method")
_LIST_HELP = {
    "authors": "one author per line: Name | ORCID | e-mail | affiliation",
    "publications": "one per line: DOI | title | year",
    "urls": "one URL per line",
    "texts": "one per line",
}


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.replace("\r", "").split("\n") if line.strip()]


def _parse_authors(text: str) -> list[dict[str, Any]]:
    out = []
    for line in _lines(text):
        parts = [p.strip() for p in line.split("|")]
        author: dict[str, Any] = {"display_name": parts[0]}
        for part in parts[1:]:
            if not part:
                continue
            if "@" in part and "contact_email" not in author:
                author["contact_email"] = part
            elif rembi.orcid_id(part) and "orcid" not in author:
                author["orcid"] = part
            else:
                author.setdefault("affiliation", []).append(part)
        out.append(author)
    return out


def _format_authors(value: list[dict[str, Any]] | None) -> str:
    lines = []
    for a in value or []:
        parts = [a.get("display_name", ""), a.get("orcid", ""), a.get("contact_email", ""), *a.get("affiliation", [])]
        while parts and not parts[-1]:
            parts.pop()
        lines.append(" | ".join(parts))
    return "\n".join(lines)


def _parse_publications(text: str) -> list[dict[str, Any]]:
    out = []
    for line in _lines(text):
        parts = [p.strip() for p in line.split("|")]
        pub: dict[str, Any] = {}
        if parts and parts[0]:
            pub["doi"] = parts[0]
        if len(parts) > 1 and parts[1]:
            pub["title"] = parts[1]
        if len(parts) > 2 and parts[2]:
            pub["publication_year"] = parts[2]
        out.append(pub)
    return out


def _format_publications(value: list[dict[str, Any]] | None) -> str:
    return "\n".join(
        " | ".join(str(p.get(k, "")) for k in ("doi", "title", "publication_year")).rstrip(" |") for p in value or []
    )


class TermPicker(w.VBox):
    """Search an ontology (OLS4, else the offline list), pick terms, remove them.

    :attr:`terms` holds the chosen :class:`~bioimnb.core.curation.ontology.Term` objects, in order.
    """

    def __init__(
        self,
        ontology_id: str,
        *,
        description: str = "",
        base_url: str | None = None,
        online: bool = True,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.ontology_id = ontology_id
        self.base_url = base_url
        self.online = online
        self.on_change = on_change
        self.terms: list[ontology.Term] = []
        self.results: list[ontology.Term] = []
        self.query = w.Text(placeholder=f"search {ontology_id} terms", layout=w.Layout(width="50%"))
        self.query.on_submit(lambda _: self.search(self.query.value))
        self.search_button = w.Button(description="Search", icon="search", layout=w.Layout(width="auto"))
        self.search_button.on_click(lambda _: self.search(self.query.value))
        self.found = w.Select(options=[], rows=5, layout=w.Layout(width="70%"))
        self.add_button = w.Button(description="Add", icon="plus", layout=w.Layout(width="auto"))
        self.add_button.on_click(lambda _: self.add_selected())
        self.chosen = w.Select(options=[], rows=3, layout=w.Layout(width="70%"))
        self.remove_button = w.Button(description="Remove", icon="minus", layout=w.Layout(width="auto"))
        self.remove_button.on_click(lambda _: self.remove_selected())
        self.note = w.HTML("")
        label = w.HTML(f"<b>{html.escape(description)}</b>") if description else w.HTML("")
        super().__init__(
            [
                label,
                w.HBox([self.query, self.search_button]),
                w.HBox([self.found, self.add_button]),
                w.HBox([self.chosen, self.remove_button]),
                self.note,
            ]
        )

    def search(self, q: str) -> ontology.SearchResult:
        result = ontology.search(q, self.ontology_id, base_url=self.base_url, online=self.online)
        self.results = result.terms
        self.found.options = [(f"{t.label} ({t.id})", i) for i, t in enumerate(result.terms)]
        if result.terms:
            self.found.value = 0
        where = "EBI OLS" if result.source == "ols" else "offline list"
        text = f"{len(result.terms)} term(s) from the {where}"
        if result.note:
            text += f": {result.note}"
        self.note.value = f"<small>{html.escape(text)}</small>"
        return result

    def add(self, term: ontology.Term) -> None:
        if all(t.id != term.id for t in self.terms):
            self.terms.append(term)
            self._refresh()

    def add_selected(self) -> None:
        index = self.found.value
        if index is not None and 0 <= index < len(self.results):
            self.add(self.results[index])

    def remove(self, term_id: str) -> None:
        self.terms = [t for t in self.terms if t.id != term_id]
        self._refresh()

    def remove_selected(self) -> None:
        if self.chosen.value is not None:
            self.remove(self.chosen.value)

    def set_terms(self, terms: list[ontology.Term]) -> None:
        self.terms = list(terms)
        self._refresh(notify=False)

    def _refresh(self, notify: bool = True) -> None:
        self.chosen.options = [(f"{t.label} ({t.id})", t.id) for t in self.terms]
        if notify and self.on_change is not None:
            self.on_change()


class StudyForm(w.VBox):
    """``StudyForm(folder)``: fill in and save the REMBI study of a folder (``FOLDER/rembi.json``).

    Python use (and tests): :meth:`set_value` / :attr:`widgets` to fill fields, :attr:`pickers`
    for ontology terms, :meth:`problems` and :meth:`missing` for what the validation panel
    shows, :meth:`save` to write.  ``ols_url`` / ``online``: where terms are searched (default:
    ``BIOIMNB_OLS_URL`` or EBI's OLS4; ``online=False`` only the offline list).
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        ols_url: str | None = None,
        online: bool = True,
        **storage_options: Any,
    ) -> None:
        self.folder = os.fspath(folder)
        self.storage_options = storage_options
        self.widgets: dict[str, Any] = {}
        self.pickers: dict[str, TermPicker] = {}
        self._loading = True
        own = rembi.load(self.folder, inherit=False, **storage_options)
        effective = rembi.load(self.folder, **storage_options)
        self.inherited = [s for s in (effective.sources if effective else []) if s != rembi.sidecar_path(self.folder)]
        self._parent: rembi.RembiStudy | None = None
        if self.inherited:
            parent_folder = self.folder.rstrip("/").rsplit("/", 1)[0] if "://" in self.folder else os.path.dirname(os.path.abspath(self.folder))
            self._parent = rembi.load(parent_folder, **storage_options)
        self.validation = w.HTML("")
        self.status = w.HTML("")
        self.save_button = w.Button(description="Save", icon="save", button_style="primary")
        self.save_button.on_click(lambda _: self._save_clicked())
        tabs = []
        for section, title in rembi.SECTIONS.items():
            rows = [self._field_widget(spec, online, ols_url) for spec in rembi.FIELDS if spec.section == section and spec.path not in self.pickers_paths()]
            tabs.append((title, w.VBox([r for r in rows if r is not None])))
        self.tabs = w.Tab(children=[box for _, box in tabs])
        for i, (title, _) in enumerate(tabs):
            self.tabs.set_title(i, title)
        header = f"<b>REMBI study</b> of <code>{html.escape(display_source(self.folder))}</code>, saved as <code>{rembi.SIDECAR}</code>"
        if self.inherited:
            header += "<br><small>inherits from " + ", ".join(f"<code>{html.escape(display_source(s))}</code>" for s in self.inherited) + "</small>"
        super().__init__([w.HTML(header), self.tabs, self.validation, w.HBox([self.save_button, self.status])])
        if own is not None:
            self.load_study(own)
        self._loading = False
        self.refresh()

    @staticmethod
    def pickers_paths() -> tuple[str, ...]:
        return ("image_acquisition.imaging_method_name",)  # edited through the FBbi picker with fbbi_id

    # -- building ----------------------------------------------------------------------------
    def _field_widget(self, spec: rembi.FieldSpec, online: bool, ols_url: str | None) -> Any:
        label = spec.label + (" *" if spec.required else "")
        if spec.kind in ("taxa", "fbbi_ids"):
            picker = TermPicker(spec.ontology or "", description=label, base_url=ols_url, online=online, on_change=self.refresh)
            self.pickers[spec.path] = picker
            return picker
        layout = w.Layout(width="95%")
        style = {"description_width": "180px"}
        widget: Any
        if spec.kind == "licence":
            widget = w.Dropdown(options=[("", "")] + [(k, k) for k in rembi.LICENCES], description=label, style=style)
        elif spec.kind in ("authors", "publications", "urls", "texts"):
            widget = w.Textarea(description=label, placeholder=_LIST_HELP[spec.kind], layout=layout, style=style, rows=3)
        elif spec.kind == "text" and any(word in spec.name for word in _LONG):
            widget = w.Textarea(description=label, placeholder=spec.help, layout=layout, style=style, rows=3)
        else:
            widget = w.Text(description=label, placeholder=spec.help or ("YYYY-MM-DD" if spec.kind == "date" else ""), layout=layout, style=style)
        widget.observe(lambda _change: self.refresh(), names="value")
        self.widgets[spec.path] = widget
        return widget

    # -- values ------------------------------------------------------------------------------
    def load_study(self, study: rembi.RembiStudy) -> None:
        loading, self._loading = self._loading, True
        for path, widget in self.widgets.items():
            spec = rembi.field_spec(path)
            assert spec is not None
            value = study.get(path)
            if spec.kind == "authors":
                widget.value = _format_authors(value)
            elif spec.kind == "publications":
                widget.value = _format_publications(value)
            elif spec.kind in ("texts", "urls"):
                widget.value = "\n".join(value or [])
            else:
                widget.value = "" if value is None else str(value)
        taxa = study.get("biosample.organism_classification") or []
        self.pickers["biosample.organism_classification"].set_terms(
            [
                ontology.Term(t.get("ncbi_id") or "", t.get("scientific_name") or t.get("ncbi_id") or "", "ncbitaxon", (t["common_name"],) if t.get("common_name") else ())
                for t in taxa
            ]
        )
        ids = study.get("image_acquisition.fbbi_id") or []
        names = study.get("image_acquisition.imaging_method_name") or []
        terms = []
        for i in range(max(len(ids), len(names))):
            term_id = ids[i] if i < len(ids) else ""
            known = ontology.lookup(term_id) if term_id else None
            name = names[i] if i < len(names) else (known.label if known else term_id)
            terms.append(ontology.Term(term_id, name, "fbbi"))
        self.pickers["image_acquisition.fbbi_id"].set_terms(terms)
        self._loading = loading
        self.refresh()

    def set_value(self, path: str, value: Any) -> None:
        """Fill a field as a user would type it (text; list kinds one item per line)."""
        if path not in self.widgets:
            raise KeyError(f"{path} is not a text field of the form (pickers: {', '.join(self.pickers)})")
        self.widgets[path].value = value

    def values(self) -> dict[str, Any]:
        """``{section.field: value}`` as the core takes them, from the widgets and pickers."""
        out: dict[str, Any] = {}
        for path, widget in self.widgets.items():
            spec = rembi.field_spec(path)
            assert spec is not None
            text = widget.value or ""
            if spec.kind == "authors":
                out[path] = _parse_authors(text)
            elif spec.kind == "publications":
                out[path] = _parse_publications(text)
            elif spec.kind in ("texts", "urls"):
                out[path] = _lines(text)
            else:
                out[path] = text
        organisms = []
        for t in self.pickers["biosample.organism_classification"].terms:
            entry: dict[str, Any] = {"scientific_name": t.label, "ncbi_id": t.id}
            known = ontology.lookup(t.id)
            common = (known.synonyms if known is not None else ()) or t.synonyms
            if common:
                entry["common_name"] = common[0]
            organisms.append({k: v for k, v in entry.items() if v})
        out["biosample.organism_classification"] = organisms
        methods = self.pickers["image_acquisition.fbbi_id"].terms
        out["image_acquisition.fbbi_id"] = [t.id for t in methods if t.id]
        out["image_acquisition.imaging_method_name"] = [t.label for t in methods if t.label]
        return out

    def study(self) -> rembi.RembiStudy:
        """The study the form holds; :class:`~bioimnb.core.curation.rembi.RembiError` names the
        first invalid field."""
        study = rembi.RembiStudy(sources=[rembi.sidecar_path(self.folder)])
        study.update(self.values())
        return study

    def problems(self) -> list[str]:
        """Invalid values, one line each (``section.field: reason``), checked field by field."""
        out = []
        for path, value in self.values().items():
            try:
                rembi.RembiStudy().set(path, value)
            except BioimnbError as exc:
                out.append(exc.reason)
        return out

    def missing(self) -> list[str]:
        """Required fields still empty, counting values inherited from parent folders."""
        try:
            own = self.study()
        except BioimnbError:
            own = rembi.RembiStudy()
            for path, value in self.values().items():
                try:
                    own.set(path, value)
                except BioimnbError:
                    continue
        effective = self._parent.merged(own) if self._parent is not None else own
        return effective.missing()

    # -- actions -----------------------------------------------------------------------------
    def refresh(self) -> None:
        if self._loading:
            return
        problems, missing = self.problems(), self.missing()
        parts = []
        if problems:
            parts.append("<b>Invalid</b> (not saved until fixed):<ul>" + "".join(f"<li>{html.escape(p)}</li>" for p in problems) + "</ul>")
        if missing:
            labels = [f"{rembi.SECTIONS[p.split('.')[0]]}: {rembi.field_spec(p).label}" for p in missing]  # type: ignore[union-attr]
            parts.append("<b>Required by REMBI, still empty</b>: " + html.escape("; ".join(labels)))
        if not problems and not missing:
            parts.append("All REMBI required fields are filled in.")
        self.validation.value = "<div>" + "<br>".join(parts) + "</div>"
        self.save_button.disabled = bool(problems)

    def save(self) -> str:
        """Validate and write the sidecar; returns its path.  Raises the first invalid field's
        error and writes nothing when one is invalid (missing fields do not stop a save)."""
        path = rembi.save(self.folder, self.study(), **self.storage_options)
        self.status.value = f"saved <code>{html.escape(display_source(path))}</code>"
        return path

    def _save_clicked(self) -> None:
        try:
            self.save()
        except BioimnbError as exc:
            self.status.value = f"<span style='color:#b00'>{html.escape(str(exc))}</span>"
