"""``%bioim convert SRC DST [flags]``: a conversion with a progress panel (the CLI's flags)."""

from __future__ import annotations

import argparse
from typing import Any

from .._args import add_convert_args, convert_kwargs


def register(sub: Any) -> None:
    conv = sub.add_parser("convert", help="convert with a progress panel")
    add_convert_args(conv)
    conv.set_defaults(run=run)


def run(args: argparse.Namespace) -> Any:
    import bioimnb

    panel = bioimnb.ConvertPanel(args.source, args.dest, **convert_kwargs(args))  # type: ignore[misc]
    return panel.start()
