"""bioimnb: bioimage data management from Jupyter notebooks.

The public face.  Heavy modules load on first use, so ``import bioimnb`` stays cheap (the
server extension and the ``%bioim`` magic import this package at start-up).

>>> import bioimnb
>>> img = bioimnb.open_image("cells.ome.tiff")      # reads headers only
>>> img.levels[-1].compute()                         # coarsest pyramid level
>>> page = bioimnb.browse("s3://bucket/project/").list(page_size=50)
>>> for facts in bioimnb.scan("s3://bucket/project/"): ...     # every image's headers, cached
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .core.version import VERSION as __version__

__all__ = [
    "BioimnbError",
    "ConvertPanel",
    "DmpPanel",
    "Location",
    "MultiscaleImage",
    "StudyForm",
    "TransferPanel",
    "__version__",
    "add_labels",
    "browse",
    "completeness",
    "convert",
    "dmp",
    "edit_metadata",
    "fixity",
    "load_ipython_extension",
    "manifest",
    "open_image",
    "scan",
    "transfer",
    "view",
]

if TYPE_CHECKING:  # pragma: no cover
    from .core.convert import convert
    from .core.errors import BioimnbError
    from .core.facts import scan
    from .core.images import MultiscaleImage, open_image
    from .core.locations import Location
    from .widgets.browser import browse

_LAZY = {
    "open_image": "bioimnb.core.images",
    "MultiscaleImage": "bioimnb.core.images",
    "browse": "bioimnb.widgets.browser",
    "scan": "bioimnb.core.facts",
    "Location": "bioimnb.core.locations",
    "BioimnbError": "bioimnb.core.errors",
    "convert": "bioimnb.core.convert",
    "ConvertPanel": "bioimnb.widgets.convert",
    "view": "bioimnb.widgets.viewer",
    "add_labels": "bioimnb.core.convert",
    "edit_metadata": "bioimnb.widgets.metadata",
    "transfer": "bioimnb.core.transfer",
    "manifest": "bioimnb.core.transfer",
    "fixity": "bioimnb.core.transfer",
    "TransferPanel": "bioimnb.widgets.transfer",
    "dmp": "bioimnb.core.dmp",
    "DmpPanel": "bioimnb.widgets.dmp",
    "completeness": "bioimnb.core.curation.completeness",
    "StudyForm": "bioimnb.widgets.rembi",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'bioimnb' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where the prebuilt JupyterLab extension lives (used by ``jupyter labextension develop``)."""
    return [{"src": "labextension", "dest": "bioimnb"}]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """The Jupyter server extension: ``bioimnb.server._load_jupyter_server_extension``."""
    return [{"module": "bioimnb.server"}]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext bioimnb``: registers the ``%bioim`` line magic (imported only here)."""
    from .magics import load_ipython_extension as load

    load(ipython)
