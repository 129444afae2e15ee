"""``%bioim view SOURCE``: the multiresolution viewer.

``SOURCE`` is a path or URL, or the name of a variable of the notebook (an array, an xarray
DataArray, a BioImage, an opened image) when no such path exists:
``%bioim view stack --axes CZYX --labels nuclei=mask``.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from .._args import add_storage_args, storage_options


def register(sub: Any) -> None:
    view = sub.add_parser("view", help="multiresolution viewer (a path, a URL or a variable)")
    view.add_argument("source", help="path, URL, or the name of a variable holding an image or array")
    view.add_argument("--axes", default=None, help="axes of an array variable, e.g. CZYX")
    view.add_argument(
        "--labels", action="append", default=[], metavar="NAME=VARIABLE", help="overlay a label array variable (repeatable)"
    )
    add_storage_args(view)
    view.set_defaults(run=run)


def _namespace() -> dict[str, Any]:
    from IPython import get_ipython

    shell = get_ipython()
    return dict(shell.user_ns) if shell is not None else {}


def _variable(ns: dict[str, Any], expr: str) -> Any:
    """``name`` or ``name.attr...`` from the notebook's namespace (no other evaluation)."""
    from ..core.errors import BioimnbError

    head, *rest = expr.split(".")
    if head not in ns:
        raise BioimnbError(expr, "no such file, URL or notebook variable")
    value = ns[head]
    for attr in rest:
        if not hasattr(value, attr):
            raise BioimnbError(expr, f"the variable has no attribute {attr!r}")
        value = getattr(value, attr)
    return value


def _is_path(text: str) -> bool:
    return "://" in text or os.path.exists(os.path.expanduser(text))


def run(args: argparse.Namespace) -> Any:
    import bioimnb
    from bioimnb.core.errors import BioimnbError

    ns = _namespace()
    labels: dict[str, Any] = {}
    for item in args.labels:
        name, sep, expr = item.partition("=")
        if not sep or not name or not expr:
            raise BioimnbError(item, "give a label overlay as NAME=VARIABLE")
        labels[name] = _variable(ns, expr)
    source = args.source
    head = source.split(".", 1)[0]
    if not _is_path(source) and head.isidentifier() and head in ns:
        obj = _variable(ns, source)
        kwargs: dict[str, Any] = {"axes": args.axes} if args.axes and not isinstance(obj, bioimnb.MultiscaleImage) else {}
        if not isinstance(obj, (str, os.PathLike, bioimnb.MultiscaleImage)):
            kwargs.setdefault("name", source)
        else:
            kwargs.update(storage_options(args) if isinstance(obj, (str, os.PathLike)) else {})
        return bioimnb.view(obj, labels=labels or None, **kwargs)  # type: ignore[misc]
    if args.axes:
        raise BioimnbError(source, "--axes applies to array variables, not to files")
    return bioimnb.view(source, labels=labels or None, **storage_options(args))  # type: ignore[misc]
