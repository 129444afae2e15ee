"""A conversion panel: progress bar, ETA, cancel button and the verification report.

The conversion runs in a background thread, so the notebook stays usable; the panel only
forwards the cancel click to the core (a ``threading.Event``) and shows progress updates.
"""

from __future__ import annotations

import html
import threading
from typing import Any

import ipywidgets as w

from ..core.convert import ConversionReport, Progress, convert
from ..core.errors import BioimnbError, display_source

__all__ = ["ConvertPanel"]


def _fmt_seconds(s: float | None) -> str:
    if s is None:
        return "estimating..."
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else (f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s")


class ConvertPanel(w.VBox):
    """``ConvertPanel(source, dest, **options).start()``: convert with live progress and a cancel button."""

    def __init__(self, source: Any, dest: Any, **options: Any) -> None:
        self.source = source
        self.dest = dest
        self.options = options
        self.report: ConversionReport | None = None
        self.error: BaseException | None = None
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        src = html.escape(display_source(getattr(source, "source", source)))
        dst = html.escape(display_source(dest))
        self.title = w.HTML(f"<b>Convert</b> <code>{src}</code> &rarr; <code>{dst}</code>")
        self.bar = w.FloatProgress(value=0.0, min=0.0, max=1.0, description="", layout=w.Layout(width="60%"))
        self.status = w.Label("ready")
        self.cancel_button = w.Button(description="Cancel", icon="stop", button_style="warning", disabled=True)
        self.cancel_button.on_click(lambda _: self.cancel())
        self.result = w.HTML("")
        super().__init__([self.title, w.HBox([self.bar, self.cancel_button]), self.status, self.result])

    # -- actions ---------------------------------------------------------------------------
    def start(self) -> ConvertPanel:
        if self._thread is not None:
            raise RuntimeError("this conversion has already been started")
        self.cancel_button.disabled = False
        self.status.value = "starting..."
        self._thread = threading.Thread(target=self._run, name="bioimnb-convert-panel", daemon=True)
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()
        self.cancel_button.disabled = True
        self.status.value = "cancelling: finishing the blocks in flight..."

    def wait(self, timeout: float | None = None) -> ConversionReport:
        """Block until done; returns the report or raises the conversion's error."""
        if self._thread is None:
            self.start()
        assert self._thread is not None
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("conversion still running")
        if self.error is not None:
            raise self.error
        assert self.report is not None
        return self.report

    @property
    def done(self) -> bool:
        return self._thread is not None and not self._thread.is_alive()

    # -- background thread ------------------------------------------------------------------
    def _progress(self, p: Progress) -> None:
        self.bar.value = p.fraction
        self.status.value = f"{p.phase}: {p.done}/{p.total} blocks, {p.fraction:.0%}, ETA {_fmt_seconds(p.eta)}"

    def _run(self) -> None:
        try:
            self.report = convert(self.source, self.dest, progress=self._progress, cancel=self._cancel, **self.options)
        except BioimnbError as exc:
            self.error = exc
            self.bar.bar_style = "warning" if self._cancel.is_set() else "danger"
            self.status.value = str(exc)
        except BaseException as exc:  # noqa: BLE001 - shown in the panel, re-raised by wait()
            self.error = exc
            self.bar.bar_style = "danger"
            self.status.value = f"failed: {type(exc).__name__}: {exc}"
        else:
            self.bar.value = 1.0
            self.bar.bar_style = "success"
            r = self.report
            self.status.value = f"done in {r.seconds:.1f} s"
            checks = "".join(f"<li>{html.escape(c)}</li>" for c in r.checks) or "<li>not verified (verify=False)</li>"
            self.result.value = (
                f"<div>{html.escape(r.format)}: {r.bytes_raw / 2**20:.1f} MiB raw &rarr; {r.bytes_out / 2**20:.1f} MiB"
                f" ({r.ratio:.2f}x), {len(r.scenes)} scene(s)</div><ul>{checks}</ul>"
            )
        finally:
            self.cancel_button.disabled = True
