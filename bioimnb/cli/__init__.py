"""The ``bioimnb`` command line.

The core subcommands (info, ls, scan, convert, formats, demo) are here; each later capability
adds its own in ``bioimnb/cli/<capability>.py``.

Every subcommand is a thin layer over the public API.  User errors (missing or unreadable
input, an unreachable endpoint, ...) print one line ``bioimnb: error: <source>: <reason>`` on
stderr and exit with status 2, never a traceback.  That holds for whatever a command raises:
an ``OSError`` (a full disk, a symbolic link loop, a destination that cannot be created) names
its file and the system's reason, ``MemoryError`` says "not enough memory", and any other
exception from a reader is "<source>: cannot be read: ...".  ``BIOIMNB_DEBUG=1`` re-raises those
last ones with their traceback, for developers.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from .._args import (
    add_convert_args,
    add_storage_args,
    convert_kwargs,
    failure_line,
    storage_options,
)

EXIT_USER_ERROR = 2


def _cmd_info(args: argparse.Namespace) -> int:
    from ..core.images import open_image

    with open_image(args.source, reader=args.reader, **storage_options(args)) as img:
        info = img.describe()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    from ..core.text import format_info

    print(format_info(info))
    return 0


def _cmd_formats(args: argparse.Namespace) -> int:
    from ..core import registry

    records = registry.readers()
    if args.json:
        print(json.dumps({"readers": [r.to_dict() for r in records]}, indent=2))
        return 0
    rows = [
        (fmt.name, " ".join(fmt.extensions) or "(by content)", rec.name)
        for rec in records
        for fmt in rec.formats
    ]
    width = max(len(r[0]) for r in rows)
    ext_width = min(40, max(len(r[1]) for r in rows))
    for name, exts, reader in rows:
        print(f"{name:<{width}}  {exts:<{ext_width}}  {reader}")
    print(f"{len(rows)} formats, {len(records)} readers")
    return 0


def _cmd_ls(args: argparse.Namespace) -> int:
    from ..core.locations import browse

    loc = browse(args.url, **storage_options(args))
    page = loc.list(page_size=args.page_size, page=args.page)
    data = page.to_dict()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    from ..core.text import format_listing

    text = format_listing(data)
    if text:
        print(text)
    return 0


class _ProgressLine:
    """One updating line on a terminal; sparse plain lines when stderr is not a terminal."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = -1.0

    def __call__(self, p: Any) -> None:
        pct = 100.0 * p.fraction
        if not self.tty and pct - self.last < 10 and p.done < p.total:
            return
        self.last = pct
        eta = "" if p.eta is None else f", ETA {p.eta:.0f} s"
        line = f"{p.phase}: {p.done}/{p.total} blocks ({pct:.0f}%){eta}"
        if self.tty:
            print("\r" + line.ljust(70), end="", file=sys.stderr, flush=True)
            if p.done >= p.total:
                print(file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)


def _cmd_convert(args: argparse.Namespace) -> int:
    from ..core.convert import convert

    report = convert(
        args.source,
        args.dest,
        progress=None if args.quiet else _ProgressLine(),
        **convert_kwargs(args),
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.summary())
    return 0


def _cmd_scan(args: argparse.Namespace) -> int:
    from ..core.facts import scan
    from ..core.text import format_scan_line, format_scan_summary

    run = scan(
        args.url,
        recursive=not args.no_recursive,
        workers=args.workers,
        cache=not args.no_cache,
        **storage_options(args),
    )
    for facts in run:
        if args.json:
            print(json.dumps(facts.to_dict()))
        else:
            print(format_scan_line(facts.to_dict()))
    summary = run.summary()
    print(json.dumps({"summary": summary}) if args.json else format_scan_summary(summary))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from ..core.demo import make_demo_data

    for path in make_demo_data(args.folder, small=args.small):
        print(path)
    return 0


def _page_size(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 10000:
        raise argparse.ArgumentTypeError("must be between 1 and 10000")
    return value


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="bioimnb", description="Bioimage data management: inspect, list, convert, plan."
    )
    parser.add_argument("--version", action="version", version=f"bioimnb {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    info = sub.add_parser("info", help="describe an image: scenes, axes, shape, levels, pixel sizes")
    info.add_argument("source", help="local path or URL (s3://, https://, ...)")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.add_argument(
        "--reader", default=None, metavar="NAME", help="use this reader (e.g. bioformats) instead of the registry's pick"
    )
    add_storage_args(info)
    info.set_defaults(func=_cmd_info)

    ls = sub.add_parser("ls", help="list a folder, bucket or prefix; images count as one entry")
    ls.add_argument("url", nargs="?", default=".", help="folder, s3://bucket/prefix/ or http(s) URL")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.add_argument("--page-size", type=_page_size, default=100, metavar="N")
    ls.add_argument("--page", default=None, metavar="TOKEN", help="token printed as next_page")
    add_storage_args(ls)
    ls.set_defaults(func=_cmd_ls)

    conv = sub.add_parser("convert", help="convert to OME-Zarr (NGFF 0.4/0.5) or pyramidal OME-TIFF, verified")
    add_convert_args(conv)
    conv.add_argument("--json", action="store_true", help="print the report as JSON")
    conv.add_argument("--quiet", action="store_true", help="no progress output")
    conv.set_defaults(func=_cmd_convert)

    sc = sub.add_parser("scan", help="facts of every image and file under a folder, bucket or prefix (headers only)")
    sc.add_argument("url", nargs="?", default=".", help="folder, s3://bucket/prefix/ or http(s) URL")
    sc.add_argument("--json", action="store_true", help="JSON Lines: one object per entry, then a summary line")
    sc.add_argument("--no-recursive", action="store_true", help="only the folder itself, not its subfolders")
    sc.add_argument("--workers", type=_page_size, default=None, metavar="N", help="images opened at once (default 4 local, 16 remote)")
    sc.add_argument("--no-cache", action="store_true", help="open every image again (ignore the facts cache)")
    add_storage_args(sc)
    sc.set_defaults(func=_cmd_scan)

    fmts = sub.add_parser("formats", help="every format bioimnb opens and which reader serves it")
    fmts.add_argument("--json", action="store_true", help="the reader registry as JSON")
    fmts.set_defaults(func=_cmd_formats)

    demo = sub.add_parser("demo", help="write synthetic demo images (no download) into a folder")
    demo.add_argument("folder", nargs="?", default="notebooks/data")
    demo.add_argument("--small", action="store_true", help="1k instead of 4k images")
    demo.set_defaults(func=_cmd_demo)

    # The capabilities each add their subcommands from their own module (bioimnb/cli/<name>.py,
    # a ``register(sub)`` that calls ``sub.add_parser(...)`` and ``set_defaults(func=...)``).
    from . import dmp, meta, transfer

    for module in (meta, transfer, dmp):
        module.register(sub)
    return parser


def _quiet_libraries() -> None:
    # Readers chatter through logging and warnings; the CLI reports errors itself.  Nothing is
    # printed (a NullHandler on the root), but levels stay as they are: the TIFF reader listens to
    # tifffile's warnings to tell a truncated file from a good one.
    root = logging.getLogger()
    if not any(isinstance(h, logging.NullHandler) for h in root.handlers):
        root.addHandler(logging.NullHandler())
    for name in ("bioio", "bioio_base", "s3fs", "aiobotocore", "botocore", "fsspec"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _quiet_libraries()
    func: Callable[[argparse.Namespace], int] = args.func
    from ..core.errors import BioimnbError

    try:
        with warnings.catch_warnings():  # restored when main() returns (it may run in-process)
            warnings.simplefilter("ignore")
            return func(args)
    except BioimnbError as exc:
        _error_line(str(exc))
        from ..core.convert import ConversionCancelled

        return 130 if isinstance(exc, ConversionCancelled) else EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("bioimnb: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # MemoryError, OSError, whatever a reader raised: still one line
        if os.environ.get("BIOIMNB_DEBUG"):
            raise
        _error_line(failure_line(exc, _named_source(args), getattr(args, "dest", None)))
        return EXIT_USER_ERROR


def _named_source(args: argparse.Namespace) -> str | None:
    """What the command was asked to read, for errors that do not name a file themselves."""
    for name in ("source", "url", "folder"):
        value = getattr(args, name, None)
        if value:
            return str(value)
    return None


def _error_line(line: str) -> None:
    if sys.stderr.isatty():
        print(file=sys.stderr)  # end a progress line first
    print(f"bioimnb: error: {line}", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
