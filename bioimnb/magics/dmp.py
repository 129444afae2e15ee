"""``%bioim dmp PATH... [--answers FILE] [--panel]``: the plan for the data at PATH, shown in the
cell (HTML with charts), or the answers panel beside the live plan with ``--panel``."""

from __future__ import annotations

import argparse
from typing import Any

from .._args import add_storage_args, storage_options


def register(sub: Any) -> None:
    p = sub.add_parser("dmp", help="data management plan computed from the data (or --panel to edit the answers)")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--answers", default=None, metavar="FILE", help="YAML or JSON answers")
    p.add_argument("--panel", action="store_true", help="the answers form beside the live plan")
    p.add_argument("--no-cache", action="store_true", help="open every image again")
    add_storage_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> Any:
    import bioimnb

    plan = bioimnb.dmp(args.paths, args.answers, cache=not args.no_cache, storage_options=storage_options(args))  # type: ignore[attr-defined,misc,unused-ignore]
    if args.panel:
        return bioimnb.DmpPanel(plan)  # type: ignore[attr-defined,misc,unused-ignore]
    return plan
