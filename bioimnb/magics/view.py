"""``%bioim view SOURCE``: the multiresolution viewer."""

from __future__ import annotations

import argparse
from typing import Any

from .._args import add_storage_args, storage_options


def register(sub: Any) -> None:
    view = sub.add_parser("view", help="multiresolution viewer")
    view.add_argument("source")
    add_storage_args(view)
    view.set_defaults(run=run)


def run(args: argparse.Namespace) -> Any:
    import bioimnb

    return bioimnb.view(args.source, **storage_options(args))  # type: ignore[misc]
