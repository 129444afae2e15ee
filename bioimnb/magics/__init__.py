"""``%bioim``: the command line's subcommands inside a notebook.

``%load_ext bioimnb`` then ``%bioim info SOURCE``, ``%bioim ls [URL]``,
``%bioim convert SRC DST [flags]`` (a progress panel with a cancel button) and
``%bioim view SOURCE``.  Each is a one-liner over the public API; flags are the CLI's.  Errors are one line, as in the
CLI (IPython's ``UsageError``: no traceback), whatever the command raised.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class

from .._args import (
    add_storage_args,
    failure_line,
    storage_options,
)

__all__ = ["BioimMagics", "load_ipython_extension"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"%bioim: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            print(message)
        raise UsageError("%bioim: see the usage above") if status else _HelpShown()


class _HelpShown(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="%bioim", description="bioimnb in a notebook: info, ls, scan, convert, view")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    info = sub.add_parser("info", help="describe an image")
    info.add_argument("source")
    add_storage_args(info)
    ls = sub.add_parser("ls", help="image-aware listing")
    ls.add_argument("url", nargs="?", default=".")
    ls.add_argument("--page-size", type=int, default=100)
    ls.add_argument("--page", default=None)
    add_storage_args(ls)
    sc = sub.add_parser("scan", help="facts of every image and file below a folder or prefix")
    sc.add_argument("url", nargs="?", default=".")
    sc.add_argument("--no-recursive", action="store_true")
    add_storage_args(sc)
    # Later capabilities add their subcommands from their own module (bioimnb/magics/<name>.py):
    # ``register(sub)`` adds a parser with ``set_defaults(run=callable)``; ``run(args)`` returns
    # what the cell shows.
    from . import browse, convert, dmp, meta, transfer, view

    for module in (convert, view, browse, meta, transfer, dmp):
        module.register(sub)
    return p


@magics_class
class BioimMagics(Magics):
    @line_magic
    def bioim(self, line: str) -> Any:
        """``%bioim info|ls|scan|convert|view ...`` (``%bioim -h`` for help)."""
        try:
            args = _parser().parse_args(shlex.split(line))
        except _HelpShown:
            return None
        import bioimnb
        from bioimnb.core.errors import BioimnbError

        try:
            run = getattr(args, "run", None)
            if run is not None:
                return run(args)
            if args.command == "info":
                from ..core.text import format_info

                img = bioimnb.open_image(args.source, **storage_options(args))
                print(format_info(img.describe()))
                return img
            if args.command == "ls":
                from ..core.text import format_listing

                page = bioimnb.browse(args.url, **storage_options(args)).list(page_size=args.page_size, page=args.page)
                print(format_listing(page.to_dict()) or "(empty)")
                return None
            if args.command == "scan":
                from ..core.text import format_scan_line, format_scan_summary

                run = bioimnb.scan(args.url, recursive=not args.no_recursive, **storage_options(args))
                found = []
                for facts in run:
                    print(format_scan_line(facts.to_dict()))
                    found.append(facts)
                print(format_scan_summary(run.summary()))
                return found
        except BioimnbError as exc:
            raise UsageError(f"bioimnb: {exc}") from None
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # MemoryError, OSError, a reader's own error: one line too
            line = failure_line(exc, getattr(args, "source", None) or getattr(args, "url", None), getattr(args, "dest", None))
            raise UsageError(f"bioimnb: {line}") from None
        raise UsageError(f"%bioim: unknown command {args.command!r}")


def load_ipython_extension(ipython: Any) -> None:
    ipython.register_magics(BioimMagics)
