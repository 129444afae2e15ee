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

__all__ = ["Republisher", "png_entry", "with_static"]

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
