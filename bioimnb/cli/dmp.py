"""``bioimnb dmp PATH... [--answers FILE] [--format md|html|madmp] [--output FILE]``.

A data management plan drafted from the data at PATH (folders, buckets, prefixes): Science
Europe sections in Markdown (default) or HTML, or RDA maDMP JSON.  Standard output unless
``--output``; with ``--output`` the charts are written beside the plan (Markdown, HTML).
Invalid answers are one line naming the field, exit status 2 (``main()`` does that).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .._args import add_storage_args, storage_options


def register(sub: Any) -> None:
    p = sub.add_parser(
        "dmp",
        help="data management plan text, maDMP JSON and charts computed from the data",
        description="Draft a data management plan from the data at PATH (headers only, through the scan's cache).",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="folder, s3://bucket/prefix/ or other location to measure")
    p.add_argument("--answers", metavar="FILE", default=None, help="YAML or JSON file of answers (title, licence, contacts, ...)")
    p.add_argument("--format", choices=["md", "html", "madmp"], default=None, help="md (default), html or madmp (RDA maDMP 1.2 JSON)")
    p.add_argument("--output", metavar="FILE", default=None, help="write here (charts beside it) instead of standard output")
    p.add_argument("--no-cache", action="store_true", help="open every image again (ignore the facts cache)")
    add_storage_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..core.dmp import dmp

    plan = dmp(
        args.paths,
        args.answers,
        cache=not args.no_cache,
        storage_options=storage_options(args),
    )
    if args.output:
        written = plan.save(args.output, args.format)
        for path in written:
            print(path, file=sys.stderr)
        return 0
    text = plan.render(args.format or "md")
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0
