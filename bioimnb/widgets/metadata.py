"""``edit_metadata(source)``: the OME model as a form and a tree, with a diff before saving.

A thin front end over :class:`bioimnb.core.curation.edit.EditSession`: every field of the form
is a dotted ome-types path; a change in a field becomes a change-list item the core checks (an
invalid value is refused, named, and the field shows the stored value again); the diff, undo,
validation and saving are the core's.  The methods (:meth:`MetadataEditor.set`,
:meth:`~MetadataEditor.set_map`, :meth:`~MetadataEditor.undo`, :meth:`~MetadataEditor.save`, ...)
are what the buttons call, so notebooks and tests can drive the editor without a browser.
"""

from __future__ import annotations

import contextlib
import html
import os
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from ..core.curation.changes import Change
from ..core.curation.edit import EditSession, SaveResult
from ..core.curation.present import image_rows, model_json
from ..core.curation.validate import ValidationReport
from ..core.errors import BioimnbError, display_source
from ..core.metadata.ome import color_hex

__all__ = ["MetadataEditor", "edit_metadata"]

_WHERE = {
    "ome-tiff": "OME-TIFF: saved in place (only the OME-XML is rewritten; pixels stay byte-identical)",
    "ome-zarr": "OME-Zarr: saved to the NGFF attributes and OME/METADATA.ome.xml",
    "ome-xml": "OME-XML document: saved to the file",
    "sidecar": "saved to a companion file next to the image (the image itself is not rewritten)",
}


_TREE_ITEMS = 50


def _length_units() -> list[str]:
    from ome_types.model import UnitsLength

    from ..core.metadata.units import unit_factor

    return [u.value for u in UnitsLength if unit_factor(u.value) is not None]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    if hasattr(value, "value") and not isinstance(value, (int, float, str)):
        return str(value.value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _tree_html(value: Any, label: str = "OME", depth: int = 0) -> str:
    """The model as nested <details> (ome-types attribute names), open at the top."""
    if isinstance(value, dict):
        inner = "".join(_tree_html(v, k, depth + 1) for k, v in value.items())
        return f"<details{' open' if depth < 2 else ''}><summary>{html.escape(label)}</summary><div style='margin-left:1em'>{inner}</div></details>"
    if isinstance(value, list):
        # A plate has thousands of images: the tree shows the first ones (the form edits any).
        inner = "".join(_tree_html(v, f"[{i}]", depth + 1) for i, v in enumerate(value[:_TREE_ITEMS]))
        if len(value) > _TREE_ITEMS:
            inner += f"<div><i>... and {len(value) - _TREE_ITEMS} more</i></div>"
        return f"<details{' open' if depth < 2 else ''}><summary>{html.escape(label)} ({len(value)})</summary><div style='margin-left:1em'>{inner}</div></details>"
    text = str(value)
    if len(text) > 200:
        text = text[:197] + "..."
    return f"<div><code>{html.escape(label)}</code>: {html.escape(text)}</div>"


class MetadataEditor(w.VBox):
    """The editor widget of one source (see :func:`edit_metadata`)."""

    def __init__(self, source: Any, **storage_options: Any) -> None:
        self.session = EditSession(source, **storage_options)
        self.fields: dict[str, w.Widget] = {}
        self.last_result: SaveResult | None = None
        self._quiet = False
        doc = self.session.doc
        self.image_index = 0
        self.title = w.HTML()
        self.notes = w.HTML()
        self.image_picker = w.Dropdown(description="Image", options=[(f"{i}: {im.name or im.id}", i) for i, im in enumerate(doc.ome.images)], value=0 if doc.ome.images else None)
        self.image_picker.layout.display = "" if len(doc.ome.images) > 1 else "none"
        self.image_picker.observe(self._pick_image, names="value")
        self.form = w.VBox()
        self.map_box = w.VBox()
        self.new_key = w.Text(placeholder="key", layout=w.Layout(width="30%"))
        self.new_value = w.Text(placeholder="value", layout=w.Layout(width="40%"))
        self.add_button = w.Button(description="Add", icon="plus")
        self.add_button.on_click(lambda _: self._add_pair())
        self.tree = w.HTML()
        self.diff_view = w.HTML()
        self.validation_view = w.HTML()
        self.status = w.HTML()
        self.undo_button = w.Button(description="Undo", icon="undo")
        self.discard_button = w.Button(description="Discard")
        self.validate_button = w.Button(description="Validate", icon="check")
        self.save_button = w.Button(description="Save", icon="save", button_style="primary")
        self.undo_button.on_click(lambda _: self.undo())
        self.discard_button.on_click(lambda _: self.discard())
        self.validate_button.on_click(lambda _: self.validate())
        self.save_button.on_click(lambda _: self._save_clicked())
        for widget in (self.undo_button, self.discard_button, self.validate_button, self.save_button):
            widget.add_class("bioimnb-meta-" + widget.description.lower())
        pairs = w.VBox([self.map_box, w.HBox([self.new_key, self.new_value, self.add_button])])
        tabs = w.Tab(children=[self.form, pairs, self.tree])
        for i, name in enumerate(("Form", "Key-value pairs", "Tree")):
            tabs.set_title(i, name)
        self.tabs = tabs
        actions = w.HBox([self.undo_button, self.discard_button, self.validate_button, self.save_button])
        # Read-only formats: convert to an open format, carrying the edits.
        self.convert_dest = w.Text(placeholder="output, e.g. image.ome.zarr or image.ome.tif", layout=w.Layout(width="380px"))
        self.convert_button = w.Button(description="Convert with edits", icon="exchange")
        self.convert_button.on_click(lambda _: self._convert_clicked())
        self.convert_row = w.HBox([self.convert_dest, self.convert_button])
        self.convert_row.layout.display = "" if doc.kind == "sidecar" else "none"
        super().__init__(
            [
                self.title,
                self.notes,
                self.convert_row,
                self.image_picker,
                tabs,
                w.HTML("<b>Pending changes</b>"),
                self.diff_view,
                actions,
                self.status,
                w.HTML("<b>Validation</b>"),
                self.validation_view,
            ]
        )
        self.add_class("bioimnb-metadata")
        self._render()

    # -- what the buttons call ------------------------------------------------------------
    def set(self, field: str, value: Any) -> list[Change]:
        """Apply one ``field=value`` edit (checked by the core); refreshes the form and diff."""
        try:
            changes = self.session.apply([(field, value)])
        except BioimnbError as exc:
            self._say(str(exc), error=True)
            self._render()
            raise
        self._say(f"{len(changes)} field{'s' if len(changes) != 1 else ''} changed; not saved yet" if changes else "no change")
        self._render()
        return changes

    def set_map(self, key: str, value: str | None) -> None:
        self.session.set_map(key, value, self.image_index)
        self._say(f"key {key!r} {'removed' if value is None else 'set'}; not saved yet")
        self._render()

    def remove_map(self, key: str) -> None:
        self.set_map(key, None)

    def undo(self) -> bool:
        done = self.session.undo()
        self._say("undone" if done else "nothing to undo")
        self._render()
        return done

    def discard(self) -> None:
        self.session.discard()
        self._say("pending changes discarded")
        self._render()

    def diff(self) -> list[Change]:
        return self.session.diff()

    def validate(self) -> ValidationReport:
        report = self.session.validate()
        if report.valid:
            self.validation_view.value = "<span style='color:green'>valid OME 2016-06 metadata</span>"
        else:
            items = "".join(f"<li>{html.escape(p)}</li>" for p in report.problems)
            self.validation_view.value = f"<ul class='bioimnb-meta-problems' style='color:#b00'>{items}</ul>"
        return report

    def save(self) -> SaveResult:
        result = self.session.save()
        self.last_result = result
        if result.changes:
            self._say(html.escape(result.summary().splitlines()[0]))
        else:
            self._say("no changes; nothing written")
        self._render()
        self.validate()
        return result

    def convert(self, dest: str, **options: Any) -> SaveResult:
        """Convert the image (see :func:`bioimnb.convert`) and apply these edits to the output."""
        from ..core.curation.edit import convert_with_edits

        self._say(f"converting to {html.escape(dest)}...")
        _, result = convert_with_edits(self.session, dest, **options)
        self._say(f"converted to {html.escape(dest)}; {len(result.changes)} edits applied to it")
        return result

    def _convert_clicked(self) -> None:
        dest = self.convert_dest.value.strip()
        if not dest:
            self._say("give an output path first", error=True)
            return
        try:
            self.convert(dest)
        except BioimnbError as exc:
            self._say(str(exc), error=True)

    # -- rendering ----------------------------------------------------------------------
    def _say(self, text: str, error: bool = False) -> None:
        colour = "#b00" if error else "inherit"
        self.status.value = f"<span class='bioimnb-meta-status' style='color:{colour}'>{html.escape(text) if error else text}</span>"

    def _save_clicked(self) -> None:
        try:
            self.save()
        except BioimnbError as exc:
            self._say(str(exc), error=True)

    def _pick_image(self, change: dict[str, Any]) -> None:
        if change.get("new") is not None:
            self.image_index = int(change["new"])
            self._render()

    def _render(self) -> None:
        doc = self.session.doc
        self.title.value = f"<b>Metadata</b> <code>{html.escape(display_source(doc.source))}</code> &mdash; {html.escape(_WHERE[doc.kind])}"
        notes = list(doc.notes)
        if doc.kind == "sidecar":
            notes.append(f"Edits go to {os.path.basename(doc.target)}. To carry them into an open format, convert below: the output gets the image and these edits.")
        self.notes.value = "".join(f"<div class='bioimnb-meta-note' style='background:#fff3cd;padding:2px 6px'>{html.escape(n)}</div>" for n in notes)
        self._quiet = True
        try:
            self._render_form()
            self._render_map()
        finally:
            self._quiet = False
        self.tree.value = _tree_html(model_json(self.session.model))
        changes = self.session.diff()
        if changes:
            rows = "".join(
                f"<tr><td><code>{html.escape(c.field)}</code></td><td>{html.escape(_text(c.to_dict()['old']) or '(unset)')}</td><td>&rarr;</td><td><b>{html.escape(_text(c.to_dict()['new']) or '(unset)')}</b></td></tr>"
                for c in changes
            )
            self.diff_view.value = f"<table class='bioimnb-meta-diff'>{rows}</table>"
        else:
            self.diff_view.value = "<i class='bioimnb-meta-diff'>no pending changes</i>"
        self.save_button.disabled = not changes
        self.undo_button.disabled = not self.session.can_undo

    def _field(self, path: str, label: str, value: Any, kind: str = "text", options: list[str] | None = None) -> w.Widget:
        widget = self.fields.get(path)
        if widget is None:
            style = {"description_width": "160px"}
            layout = w.Layout(width="480px")
            if kind == "unit":
                widget = w.Dropdown(description=label, options=options or [], style=style, layout=w.Layout(width="260px"))
            elif kind == "color":
                widget = w.ColorPicker(description=label, concise=False, style=style, layout=layout)
            elif kind == "area":
                widget = w.Textarea(description=label, continuous_update=False, style=style, layout=layout)
            else:
                widget = w.Text(description=label, continuous_update=False, style=style, layout=layout)
            widget.add_class("bioimnb-meta-field")
            widget.observe(self._changed(path), names="value")
            self.fields[path] = widget
        text = ("#" + (color_hex(value) or "FFFFFF")) if kind == "color" else _text(value)
        if kind == "unit" and text not in widget.options:
            widget.options = [*widget.options, text]
        if widget.value != text:
            widget.value = text
        return widget

    def _changed(self, path: str) -> Callable[[dict[str, Any]], None]:
        def handler(change: dict[str, Any]) -> None:
            if self._quiet:
                return
            # An invalid value is shown in the status line; _render put the stored value back.
            with contextlib.suppress(BioimnbError):
                self.set(path, change["new"])

        return handler

    def _render_form(self) -> None:
        model = self.session.model
        if not model.images:
            self.form.children = [w.HTML("<i>no images in this document</i>")]
            return
        i = self.image_index
        image = model.images[i]
        px = image.pixels
        units = _length_units()
        p = f"images[{i}]"
        rows: list[w.Widget] = [w.HTML("<b>Image</b>")]
        rows.append(self._field(f"{p}.name", "Name", image.name))
        rows.append(self._field(f"{p}.acquisition_date", "Acquisition date", image.acquisition_date))
        rows.append(self._field(f"{p}.description", "Description", image.description, "area"))
        rows.append(w.HTML("<b>Pixels</b> " + html.escape(dict(image_rows(model, i)).get("pixels", ""))))
        for axis in "xyz":
            rows.append(
                w.HBox(
                    [
                        self._field(f"{p}.pixels.physical_size_{axis}", f"Physical size {axis.upper()}", getattr(px, f"physical_size_{axis}")),
                        self._field(f"{p}.pixels.physical_size_{axis}_unit", "unit", getattr(px, f"physical_size_{axis}_unit"), "unit", units),
                    ]
                )
            )
        rows.append(w.HTML("<b>Channels</b>"))
        for c, ch in enumerate(px.channels):
            q = f"{p}.pixels.channels[{c}]"
            rows.append(
                w.VBox(
                    [
                        self._field(f"{q}.name", f"Channel {c} name", ch.name),
                        self._field(f"{q}.color", f"Channel {c} colour", ch.color, "color"),
                        w.HBox(
                            [
                                self._field(f"{q}.excitation_wavelength", "Excitation", ch.excitation_wavelength),
                                self._field(f"{q}.excitation_wavelength_unit", "unit", ch.excitation_wavelength_unit, "unit", units),
                            ]
                        ),
                        w.HBox(
                            [
                                self._field(f"{q}.emission_wavelength", "Emission", ch.emission_wavelength),
                                self._field(f"{q}.emission_wavelength_unit", "unit", ch.emission_wavelength_unit, "unit", units),
                            ]
                        ),
                        *self._window_field(i, c, q),
                    ]
                )
            )
        for n, inst in enumerate(model.instruments):
            rows.append(w.HTML(f"<b>Instrument {n}</b> <code>{html.escape(inst.id)}</code>"))
            if inst.microscope is not None:
                rows.append(self._field(f"instruments[{n}].microscope.manufacturer", "Microscope maker", inst.microscope.manufacturer))
                rows.append(self._field(f"instruments[{n}].microscope.model", "Microscope model", inst.microscope.model))
            for o, obj in enumerate(inst.objectives):
                r = f"instruments[{n}].objectives[{o}]"
                rows.append(self._field(f"{r}.model", f"Objective {o} model", obj.model))
                rows.append(self._field(f"{r}.nominal_magnification", f"Objective {o} magnification", obj.nominal_magnification))
                rows.append(self._field(f"{r}.lens_na", f"Objective {o} NA", obj.lens_na))
        for n, plate in enumerate(model.plates):
            fields = sum(len(well.well_samples) for well in plate.wells)
            rows.append(w.HTML(f"<b>Plate {n}</b> {plate.rows or '?'} x {plate.columns or '?'}, {len(plate.wells)} wells, {fields} fields"))
            rows.append(self._field(f"plates[{n}].name", "Plate name", plate.name))
            for k, well in enumerate(plate.wells[:24]):
                rows.append(self._field(f"plates[{n}].wells[{k}].external_description", f"Well {well.row},{well.column}", well.external_description))
        self.form.children = rows

    def _window_field(self, image: int, channel: int, prefix: str) -> list[w.Widget]:
        """OME-Zarr: the channel's display window (NGFF ``omero``), as START,END."""
        if self.session.doc.kind != "ome-zarr":
            return []
        self.session.stored_windows()
        window = self.session.windows.get((image, channel))
        if window is None:
            return []
        return [self._field(f"{prefix}.window", f"Channel {channel} window", f"{window[0]:g},{window[1]:g}")]

    def _render_map(self) -> None:
        rows = []
        for key, value in self.session.map(self.image_index):
            text = w.Text(value=value, description=key, continuous_update=False, style={"description_width": "160px"})
            text.add_class("bioimnb-meta-pair")
            text.observe(lambda ch, k=key: None if self._quiet else self._pair_edited(k, ch["new"]), names="value")
            remove = w.Button(description="Remove", icon="trash", layout=w.Layout(width="110px"))
            remove.on_click(lambda _, k=key: self.remove_map(k))
            rows.append(w.HBox([text, remove]))
        self.map_box.children = rows or [w.HTML("<i>no key-value pairs (OMERO client namespace)</i>")]

    def _pair_edited(self, key: str, value: str) -> None:
        self.set_map(key, value)

    def _add_pair(self) -> None:
        key = self.new_key.value.strip()
        if not key:
            self._say("a key-value pair needs a key", error=True)
            return
        self.set_map(key, self.new_value.value)
        self.new_key.value = ""
        self.new_value.value = ""


def edit_metadata(source: Any, **storage_options: Any) -> MetadataEditor:
    """An editor of ``source``'s OME metadata: form, tree, key-value pairs, diff, undo, validation.

    OME-TIFF is saved in place (pixels untouched), OME-Zarr to its NGFF attributes and
    ``OME/METADATA.ome.xml``, other formats to a companion ``FILE.ome.xml`` (the editor says so).
    """
    return MetadataEditor(source, **storage_options)
