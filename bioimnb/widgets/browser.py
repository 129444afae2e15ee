"""``bioimnb.browse(url=".", **storage_options)``: a location that is a storage browser when shown.

For code it is the core's :class:`~bioimnb.core.locations.Location` (``.list(page_size, page)``,
``.child()``, ``.parent``, ``.url``, ...), unchanged; displayed in a notebook it is the browser
widget (:class:`bioimnb.widgets.browser_ui.Browser`), built on first display and kept, so
``b = bioimnb.browse("s3://bucket/"); b`` shows it and ``b.selected`` reads its selection.

This module imports no widget library itself (``import bioimnb; bioimnb.browse`` stays free of
UI modules, as the CLI and the server need); the widget module loads on first display.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ..core.locations import Location
from ..core.locations import browse as _core_browse

if TYPE_CHECKING:  # pragma: no cover
    from .browser_ui import Browser, Selected

__all__ = ["BrowsableLocation", "browse"]


def browse(
    url: str | os.PathLike[str] = ".",
    *,
    root: str | os.PathLike[str] | None = None,
    show_hidden: bool = False,
    **storage_options: Any,
) -> BrowsableLocation:
    """A location to list (see :func:`bioimnb.core.locations.browse`) that displays as the
    storage browser widget in a notebook."""
    return BrowsableLocation.of(
        _core_browse(url, root=root, show_hidden=show_hidden, **storage_options)
    )


class BrowsableLocation(Location):
    """A :class:`~bioimnb.core.locations.Location` whose notebook display is the browser."""

    _browser: Browser | None = None

    @classmethod
    def of(cls, location: Location) -> BrowsableLocation:
        """The same location (same filesystem, path, root and options), browsable."""
        out = cls.__new__(cls)
        out.__dict__.update(location.__dict__)
        out._browser = None
        return out

    @property
    def widget(self) -> Browser:
        """The browser widget of this location (made on first use, then the same one)."""
        if self._browser is None:
            from .browser_ui import Browser

            self._browser = Browser(self)
        return self._browser

    @property
    def selected(self) -> list[Selected]:
        """What is selected in the browser: URLs with their storage options."""
        return self.widget.selected

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        from ._snapshot import listing_static  # a static listing where no widget is drawn

        return listing_static(self.widget, self.widget._repr_mimebundle_(include=include, exclude=exclude))
