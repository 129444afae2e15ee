"""``%bioim browse [URL]``: the storage browser widget, a one-liner over ``bioimnb.browse``."""

from __future__ import annotations

import argparse
from typing import Any

from .._args import add_storage_args, storage_options


def register(sub: Any) -> None:
    browse = sub.add_parser("browse", help="storage browser: folders, buckets, prefixes, OME-Zarr over HTTP")
    browse.add_argument("url", nargs="?", default=".")
    add_storage_args(browse)
    browse.set_defaults(run=run)


def run(args: argparse.Namespace) -> Any:
    import bioimnb

    return bioimnb.browse(args.url, **storage_options(args)).widget
