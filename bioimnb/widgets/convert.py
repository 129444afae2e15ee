"""A conversion panel: progress bar, ETA, cancel button, a "verifying" stage and the report.

The conversion runs in a background thread, so the notebook stays usable; the panel only
forwards the cancel click to the core (a ``threading.Event``) and shows progress updates.
What it shows, in order: "starting...", then per-level progress with an ETA, then "verifying"
once every block is written (the core checks the output against the source: that can take a
while and reports no blocks), then the report, or the error in full (wrapped, styled as an
error).  The Cancel button is only there while the conversion runs.  ``note`` is a line under
the title, e.g. how the run relates to the notebook cell (``%bioim convert`` says whether the
cell waits or the run continues in the background).

Where no widget can be drawn (nbviewer, git hosts, an nbconvert HTML export) the panel's output
shows its state as static HTML (title, status line, report) and one line of text; once the
conversion ends, the output is updated after the running (or next) cell, so a saved notebook
holds the final state, also when run headless.
"""

from __future__ import annotations

import html
import threading
from typing import Any

import ipywidgets as w

from ..core.convert import ConversionReport, Progress, convert
from ..core.errors import BioimnbError, display_source
from ._background import BackgroundJob
from ._snapshot import Republisher, with_static

__all__ = ["ConvertPanel"]

# Long paths have no spaces: break anywhere rather than run off the right edge.
_WRAP = "white-space: pre-wrap; overflow-wrap: anywhere; word-break: break-word;"
_ERROR = f"color: var(--jp-error-color1, #d32f2f); {_WRAP}"
_NOTE = f"color: var(--jp-ui-font-color2, #616161); font-size: 0.95em; {_WRAP}"


def _fmt_seconds(s: float | None) -> str:
    if s is None:
        return "estimating..."
    if s < 1:
        return "<1s"
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else (f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s")


class ConvertPanel(BackgroundJob[ConversionReport], w.VBox):
    """``ConvertPanel(source, dest, **options).start()``: convert with live progress and a cancel button."""

    _job_name = "conversion"

    def __init__(self, source: Any, dest: Any, *, note: str = "", **options: Any) -> None:
        self.source = source
        self.dest = dest
        self.options = options
        self.report: ConversionReport | None = None
        self.error: BaseException | None = None
        self.stage = "ready"
        """``ready``, ``running``, ``verifying``, ``cancelling``, ``done``, ``cancelled`` or ``failed``."""
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._republisher = Republisher(self._static_bundle)
        self._names = (display_source(getattr(source, "source", source)), display_source(dest))
        src, dst = (html.escape(name) for name in self._names)
        self.title = w.HTML(
            f'<div style="{_WRAP}"><b>Convert</b> <code>{src}</code> &rarr; <code>{dst}</code></div>',
            layout=w.Layout(width="100%"),
        )
        self.note = w.HTML(
            f'<div class="bioimnb-convert-note" style="{_NOTE}">{html.escape(note)}</div>' if note else "",
            layout=w.Layout(width="100%", display="" if note else "none"),
        )
        self.bar = w.FloatProgress(value=0.0, min=0.0, max=1.0, description="", layout=w.Layout(width="60%"))
        self.cancel_button = w.Button(description="Cancel", icon="stop", button_style="warning", disabled=True)
        self.cancel_button.on_click(lambda _: self.cancel())
        self.status = w.HTML(self._line("ready"), layout=w.Layout(width="100%"))
        self.result = w.HTML("", layout=w.Layout(width="100%"))
        super().__init__(
            [self.title, self.note, w.HBox([self.bar, self.cancel_button]), self.status, self.result],
            layout=w.Layout(width="100%", max_width="100%"),
        )
        self.add_class("bioimnb-convert")

    # -- the static rendition (notebooks that travel) ----------------------------------------
    def _static_bundle(self, bundle: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """The widget's mime bundle with the panel's state as text and as static HTML."""
        if bundle is None:
            bundle = super()._repr_mimebundle_()
        src, dst = self._names
        caption = f"bioimnb convert: {src} -> {dst}: {' '.join(self.status_text.split())}"
        bar = f'<progress value="{self.bar.value:.3f}" max="1" style="width: 60%"></progress>'
        page = "".join(
            [self.title.value, self.note.value, bar, self.status.value, self.result.value]
        )
        return with_static(bundle, caption=caption, html=f'<div class="bioimnb-convert">{page}</div>')

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)
        return None if bundle is None else self._static_bundle(bundle)

    def _ipython_display_(self) -> None:
        # With a display id: a headless run updates the output after cells that changed the
        # panel (bioimnb.widgets._snapshot.Republisher), so the saved notebook shows the end.
        if self._view_name is not None:
            self._republisher.display()

    # -- display helpers -------------------------------------------------------------------
    @staticmethod
    def _line(text: str, style: str = _WRAP, cls: str = "bioimnb-convert-status") -> str:
        return f'<div class="{cls}" style="{style}">{html.escape(text)}</div>'

    def _show(self, text: str) -> None:
        self.status.value = self._line(text)

    def _show_error(self, text: str) -> None:
        self.status.value = self._line(f"\u26a0 {text}", _ERROR, "bioimnb-convert-status bioimnb-convert-error")

    @property
    def status_text(self) -> str:
        """The status line as plain text (what the panel shows under the bar)."""
        inner = self.status.value.split(">", 1)[-1].rsplit("</div>", 1)[0]
        return html.unescape(inner)

    # -- actions ---------------------------------------------------------------------------
    def start(self) -> ConvertPanel:
        if self._thread is not None:
            raise RuntimeError("this conversion has already been started")
        self.cancel_button.disabled = self._cancel.is_set()
        self.stage = "running"
        self._show("starting...")
        self._thread = threading.Thread(target=self._run, name="bioimnb-convert-panel", daemon=True)
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()
        self.cancel_button.disabled = True
        if self.stage in ("ready", "running", "verifying"):
            self.stage = "cancelling"
            self._show("cancelling: finishing the blocks in flight...")

    # -- background thread ------------------------------------------------------------------
    def _progress(self, p: Progress) -> None:
        if self._cancel.is_set():
            return
        self.bar.value = p.fraction
        if p.total and p.done >= p.total:
            # Every block is written; the core now checks the output against the source.
            self.stage = "verifying"
            self.bar.bar_style = "info"
            self._show(f"all {p.total} blocks written in {_fmt_seconds(p.elapsed)}; verifying the output against the source...")
            return
        self._show(f"{p.phase}: {p.done}/{p.total} blocks, {p.fraction:.0%}, ETA {_fmt_seconds(p.eta)}")

    def _run(self) -> None:
        try:
            self.report = convert(self.source, self.dest, progress=self._progress, cancel=self._cancel, **self.options)
        except BioimnbError as exc:
            self.error = exc
            cancelled = self._cancel.is_set()
            self.stage = "cancelled" if cancelled else "failed"
            self.bar.bar_style = "warning" if cancelled else "danger"
            if cancelled:
                self._show(str(exc))
            else:
                self._show_error(str(exc))
        except BaseException as exc:  # noqa: BLE001 - shown in the panel, re-raised by wait()
            self.error = exc
            self.stage = "failed"
            self.bar.bar_style = "danger"
            self._show_error(f"failed: {type(exc).__name__}: {exc}")
        else:
            self.stage = "done"
            self.bar.value = 1.0
            self.bar.bar_style = "success"
            r = self.report
            self._show(f"done in {r.seconds:.1f} s")
            checks = "".join(f"<li>{html.escape(c)}</li>" for c in r.checks) or "<li>not verified (verify=False)</li>"
            self.result.value = (
                f'<div style="{_WRAP}">{html.escape(r.format)}: {r.bytes_raw / 2**20:.1f} MiB raw &rarr;'
                f" {r.bytes_out / 2**20:.1f} MiB ({r.ratio:.2f}x), {len(r.scenes)} scene(s)</div>"
                f'<ul style="{_WRAP}">{checks}</ul>'
            )
        finally:
            self.cancel_button.disabled = True
            self.cancel_button.layout.display = "none"  # nothing left to cancel
            # the saved output of a headless run shows the end (one update, not one per block)
            self._republisher.changed()
