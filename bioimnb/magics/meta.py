"""``%bioim meta SOURCE``: the metadata editor widget of an image or OME-XML file."""

from __future__ import annotations

import argparse
from typing import Any

from .._args import add_storage_args, storage_options


def register(sub: Any) -> None:
    meta = sub.add_parser("meta", help="edit an image's OME metadata (form, key-value pairs, diff, undo, validation)")
    meta.add_argument("source", help="an image or an .ome.xml / .companion.ome file")
    add_storage_args(meta)
    meta.set_defaults(run=run)


def run(args: argparse.Namespace) -> Any:
    import bioimnb

    return bioimnb.edit_metadata(args.source, **storage_options(args))  # type: ignore[misc]
