"""Static pictures beside widgets: what a notebook shows where no widget can be drawn.

Jupyter front ends pick the richest type of a display they can render: JupyterLab, Notebook 7
and Voila draw ``application/vnd.jupyter.widget-view+json``; nbviewer, git hosts and nbconvert
(when the notebook holds no widget state) fall back to ``image/png`` / ``text/html`` /
``text/plain``.  :func:`with_static` adds those to a widget's mime bundle.

:class:`Republisher` keeps a widget's outputs current for headless runs: the widget is displayed
with a display id, and after each cell that changed it (IPython's ``post_execute`` event: one
update per cell, with the state the cell left) the outputs are updated, so a notebook executed
by nbclient stores the last view.  It stops once a browser has drawn the widget: an updated
output is drawn anew by JupyterLab (a second live view of the same model), which would disturb
a person using it.
"""

from __future__ import annotations

import base64
import contextlib
import threading
import uuid
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["Republisher", "listing_static", "png_entry", "with_static"]

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def png_entry(png: bytes) -> str:
    """``image/png`` as nbformat stores it (base64 text)."""
    return base64.b64encode(png).decode("ascii")


def with_static(
    bundle: Any,
    *,
    caption: str,
    png: bytes | None = None,
    size: tuple[int, int] | None = None,
    html: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(data, metadata)``: a widget's bundle (``data`` or ``(data, metadata)``, as
    ipywidgets and anywidget return it) with ``text/plain`` = ``caption`` and, when given,
    ``image/png`` (``size`` = (width, height) goes into the metadata) and ``text/html``."""
    if isinstance(bundle, tuple):
        data, metadata = dict(bundle[0] or {}), dict(bundle[1] or {})
    else:
        data, metadata = dict(bundle or {}), {}
    data["text/plain"] = caption
    if png is not None:
        data["image/png"] = png_entry(png)
        if size is not None:
            metadata["image/png"] = {"width": int(size[0]), "height": int(size[1])}
    if html is not None:
        data["text/html"] = html
    return data, metadata


class Republisher:
    """Displays a widget under display ids and updates those outputs after cells that changed
    it, until a browser has drawn it (:meth:`seen`)."""

    def __init__(self, bundle: Callable[[], tuple[dict[str, Any], dict[str, Any]]]) -> None:
        self._bundle = bundle
        self._ids: list[str] = []
        self._dirty = False
        self._seen = False
        self._lock = threading.Lock()
        self._hooked: Any = None

    def display(self) -> None:
        """Publish the bundle as a display with a fresh display id (``_ipython_display_``)."""
        from IPython.display import publish_display_data

        data, metadata = self._bundle()
        display_id = uuid.uuid4().hex
        publish_display_data(data, metadata, transient={"display_id": display_id})
        with self._lock:
            self._ids.append(display_id)
            self._dirty = False
        self._hook()

    def changed(self) -> None:
        """The widget changed: update its outputs after the running cell."""
        with self._lock:
            self._dirty = bool(self._ids) and not self._seen

    def seen(self) -> None:
        """A browser draws the widget: stop updating its outputs."""
        with self._lock:
            self._seen = True
            self._dirty = False
        self._unhook()

    def close(self) -> None:
        with self._lock:
            self._ids.clear()
            self._dirty = False
        self._unhook()

    def flush(self) -> bool:
        """Update the outputs now if the widget changed; True if it did."""
        with self._lock:
            if not self._dirty or self._seen or not self._ids:
                return False
            self._dirty = False
            ids = list(self._ids)
        from IPython.display import publish_display_data

        data, metadata = self._bundle()
        for display_id in ids:
            publish_display_data(data, metadata, transient={"display_id": display_id}, update=True)
        return True

    def _hook(self) -> None:
        if self._hooked is not None or self._seen:
            return
        try:
            from IPython import get_ipython
        except ImportError:  # pragma: no cover - IPython is a widget dependency
            return
        shell = get_ipython()
        if shell is None:
            return
        ref = weakref.ref(self)

        def after_cell(*_args: Any) -> None:
            me = ref()
            if me is not None:
                me.flush()

        shell.events.register("post_execute", after_cell)
        self._hooked = (shell, after_cell)

    def _unhook(self) -> None:
        hooked, self._hooked = self._hooked, None
        if hooked is not None:
            shell, callback = hooked
            with contextlib.suppress(ValueError):  # already gone
                shell.events.unregister("post_execute", callback)


#: A browser's static rendition: at most this many rows (no thumbnails: reading images would
#: delay the live widget's first display).
LISTING_ROWS = 50
#: How long a display waits for a folder's listing to arrive before drawing what it has.
LISTING_WAIT_S = 1.0


def _size(value: Any) -> str:
    if not isinstance(value, int):
        return ""
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""  # pragma: no cover


def listing_static(browser: Any, bundle: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The storage browser's bundle with a static rendition of its listing: ``text/html`` (a
    table of the first :data:`LISTING_ROWS` rows) and a
    ``text/plain`` caption.  ``browser`` is a :class:`bioimnb.widgets.browser_ui.Browser`
    (``url``, ``wait``, ``rows``); the listing is waited for at most
    :data:`LISTING_WAIT_S` (it arrives in the background)."""
    import html

    from ..core.errors import display_source

    try:
        with contextlib.suppress(TimeoutError):
            browser.wait(LISTING_WAIT_S)
        rows = list(browser.rows(0, LISTING_ROWS))
        total = int(getattr(browser.panel, "total", len(rows)))
    except Exception as exc:  # noqa: BLE001 - a missing table must not hide the widget
        where = display_source(str(getattr(browser, "url", "")))
        return with_static(bundle, caption=f"bioimnb browser: {where} (no listing: {exc})")
    where = display_source(str(browser.url))
    caption = f"bioimnb browser: {where}, {total} entries"
    cells = []
    for row in rows:
        cells.append(
            "<tr>"
            + "".join(
                f"<td>{part}</td>"
                for part in (
                    html.escape(str(row.get("name", ""))),
                    html.escape(str(row.get("kind") or "")),
                    html.escape(str(row.get("format") or "")),
                    _size(row.get("size")),
                )
            )
            + "</tr>"
        )
    more = f"<p>... {total - len(rows)} more</p>" if total > len(rows) else ""
    page = (
        f'<div class="bioimnb-browser-static"><p><b>bioimnb browser</b> <code>{html.escape(where)}</code>'
        f" ({total} entries)</p><table><thead><tr><th>name</th><th>kind</th><th>format</th>"
        f"<th>size</th></tr></thead><tbody>{''.join(cells)}</tbody></table>{more}</div>"
    )
    return with_static(bundle, caption=caption, html=page)
