"""A transfer panel: progress bar, throughput, cancel button and the final report.

The transfer (or the watch of an acquisition folder) runs in a background thread, so the notebook
stays usable; the panel only forwards the cancel click to the core (a ``threading.Event``) and
shows progress.  ``bioimnb.transfer`` itself stays a plain function; ``%bioim transfer`` shows
this panel.
"""

from __future__ import annotations

import html
import threading
from typing import Any

import ipywidgets as w

from ..core.errors import BioimnbError, display_source
from ..core.jobs import Progress
from ..core.transfer import TransferReport, transfer, watch
from ._background import BackgroundJob

__all__ = ["TransferPanel"]


def _mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


def report_html(r: TransferReport) -> str:
    """The report as a short HTML block (every name escaped)."""
    rows = [
        f"<div>{r.files} files ({_mib(r.bytes)}): copied {r.copied} ({_mib(r.bytes_copied)}), "
        f"skipped {r.skipped} already verified, {len(r.failures)} failed, {r.seconds:.1f} s, "
        f"{_mib(r.throughput)}/s{'; bag written' if r.bag and r.ok else ''}</div>"
    ]
    if r.deleted:
        rows.append(f"<div>deleted {len(r.deleted)} files no longer in the source</div>")
    if r.failures:
        items = "".join(f"<li><code>{html.escape(f.path)}</code>: {html.escape(f.reason)}</li>" for f in r.failures[:50])
        more = f"<li>... and {len(r.failures) - 50} more</li>" if len(r.failures) > 50 else ""
        rows.append(f"<ul>{items}{more}</ul>")
    return "".join(rows)


class TransferPanel(BackgroundJob[TransferReport], w.VBox):
    """``TransferPanel(src, dest, **options).start()``: a transfer with live progress and a cancel
    button; ``watch=True`` (with ``settle=`` seconds) keeps watching ``src`` until cancelled."""

    _job_name = "transfer"

    def __init__(self, src: Any, dest: Any, *, watch: bool = False, settle: float = 10.0, **options: Any) -> None:
        self.src = src
        self.dest = dest
        self.watching = watch
        self.settle = settle
        self.options = options
        self.report: TransferReport | None = None
        self.error: BaseException | None = None
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        verb = "Watch and copy" if watch else "Copy"
        self.title = w.HTML(
            f"<b>{verb}</b> <code>{html.escape(display_source(src))}</code> &rarr; <code>{html.escape(display_source(dest))}</code>"
        )
        self.bar = w.FloatProgress(value=0.0, min=0.0, max=1.0, layout=w.Layout(width="60%"))
        self.status = w.Label("ready")
        self.cancel_button = w.Button(description="Stop" if watch else "Cancel", icon="stop", button_style="warning", disabled=True)
        self.cancel_button.on_click(lambda _: self.cancel())
        self.result = w.HTML("")
        super().__init__([self.title, w.HBox([self.bar, self.cancel_button]), self.status, self.result])

    def start(self) -> TransferPanel:
        if self._thread is not None:
            raise RuntimeError("this transfer has already been started")
        self.cancel_button.disabled = False
        self.status.value = "watching..." if self.watching else "listing the source..."
        self._thread = threading.Thread(target=self._run, name="bioimnb-transfer-panel", daemon=True)
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()
        self.cancel_button.disabled = True
        self.status.value = "stopping: finishing the files in flight..."

    def _progress(self, p: Progress) -> None:
        self.bar.value = p.fraction
        rate = p.bytes_done / p.elapsed if p.elapsed > 0 else 0.0
        self.status.value = f"{p.done}/{p.total} files, {_mib(p.bytes_done)} copied, {_mib(rate)}/s"

    def _cycle(self, part: TransferReport) -> None:
        self.result.value = report_html(part)

    def _run(self) -> None:
        try:
            if self.watching:
                self.report = watch(
                    self.src, self.dest, settle=self.settle, cancel=self._cancel, on_transfer=self._cycle,
                    progress=self._progress, **self.options,
                )
            else:
                self.report = transfer(self.src, self.dest, progress=self._progress, cancel=self._cancel, **self.options)
        except BioimnbError as exc:
            self.error = exc
            self.bar.bar_style = "warning" if self._cancel.is_set() else "danger"
            self.status.value = str(exc)
        except BaseException as exc:  # noqa: BLE001 - shown in the panel, re-raised by wait()
            self.error = exc
            self.bar.bar_style = "danger"
            self.status.value = f"failed: {type(exc).__name__}: {exc}"
        else:
            r = self.report
            self.bar.value = 1.0
            self.bar.bar_style = "success" if r.ok else "warning"
            self.status.value = f"done in {r.seconds:.1f} s" if r.ok else f"done in {r.seconds:.1f} s with {len(r.failures)} failure(s)"
            self.result.value = report_html(r)
        finally:
            self.cancel_button.disabled = True
