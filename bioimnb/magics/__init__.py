"""``%bioim``: the command line's subcommands inside a notebook.

``%load_ext bioimnb`` then ``%bioim browse [URL]`` (the storage browser), ``%bioim info SOURCE``,
``%bioim ls [URL]``, ``%bioim scan [URL]``, ``%bioim convert SRC DST [flags]`` (a progress panel
with a cancel button), ``%bioim view SOURCE``, and what later capabilities register.  ``%bioim``
alone or ``%bioim help`` lists every subcommand with one line each (built from the parser, so a
capability's own module adds its line by registering); ``%bioim help NAME`` shows its flags.
Each is a one-liner over the public API; flags are the CLI's.  Errors are one line, as in the
CLI (IPython's ``UsageError``: no traceback), whatever the command raised; an unknown
subcommand names the choices.
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


def _commands(parser: argparse.ArgumentParser) -> dict[str, tuple[str, argparse.ArgumentParser]]:
    """Every subcommand of ``parser``: name -> (its one-line help, its parser)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            return {name: (helps.get(name, ""), sub) for name, sub in action.choices.items()}
    return {}


def help_text(topic: str | None = None) -> str:
    """``%bioim help``: one line per subcommand; ``%bioim help NAME``: that subcommand's flags."""
    parser = _parser()
    commands = _commands(parser)
    if topic:
        if topic not in commands:
            raise UsageError(_unknown(topic, commands))
        return commands[topic][1].format_help().rstrip()
    width = max(len(name) for name in commands)
    lines = ["%bioim COMMAND [ARGS]: bioimnb in a notebook", ""]
    lines += [f"  {name:<{width}}  {text}" for name, (text, _) in commands.items()]
    lines += ["", "%bioim help COMMAND shows a command's flags."]
    return "\n".join(lines)


def _unknown(name: str, commands: dict[str, Any]) -> str:
    return f"%bioim: unknown command {name!r}; choose from: {', '.join(commands)}"


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="%bioim", description="bioimnb in a notebook")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")
    hlp = sub.add_parser("help", help="list the subcommands, or show one's flags (%bioim help NAME)")
    hlp.add_argument("topic", nargs="?")
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
        """``%bioim COMMAND ...``: ``%bioim help`` lists the commands."""
        words = shlex.split(line)
        parser = _parser()
        if not words:
            print(help_text())
            return None
        commands = _commands(parser)
        if not words[0].startswith("-") and words[0] not in commands:
            raise UsageError(_unknown(words[0], commands))
        try:
            args = parser.parse_args(words)
        except _HelpShown:
            return None
        if args.command == "help":
            print(help_text(args.topic))
            return None
        import bioimnb
        from bioimnb.core.errors import BioimnbError

        try:
            run = getattr(args, "run", None)
            if run is not None:
                return run(args)
            if args.command == "info":
                from ..core.text import format_info

                with bioimnb.open_image(args.source, **storage_options(args)) as img:
                    print(format_info(img.describe()))
                return None  # the description only: a returned image would print its repr too
            if args.command == "ls":
                from ..core.locations import browse
                from ..core.text import format_listing

                page = browse(args.url, **storage_options(args)).list(page_size=args.page_size, page=args.page)
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
