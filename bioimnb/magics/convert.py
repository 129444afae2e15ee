"""``%bioim convert SRC DST [flags]``: a conversion with a progress panel (the CLI's flags).

Life cycle, stated in the panel itself:

* default: the conversion runs in the background (the cell returns at once with the live
  panel; the notebook stays usable; Cancel stops it).  If the kernel stops first, the output
  stays marked incomplete and ``%bioim convert SRC DST --resume`` finishes it;
* ``--wait``: the cell shows the panel and waits until the conversion ends; interrupting the
  kernel (the stop button) cancels it cleanly, with the same resumable output.

An output left incomplete by an earlier run is never silently overwritten nor tripped over: without
``--resume`` or ``--overwrite`` the magic says in one line which of the two to add.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from .._args import add_convert_args, convert_kwargs, storage_options


def register(sub: Any) -> None:
    conv = sub.add_parser("convert", help="convert with a progress panel (in the background; --wait to wait)")
    add_convert_args(conv)
    conv.add_argument(
        "--wait",
        action="store_true",
        help="the cell waits until the conversion ends (interrupt the kernel to stop it; the output stays resumable)",
    )
    conv.set_defaults(run=run)


def _resume_line(args: argparse.Namespace) -> str:
    return f"%bioim convert {shlex.quote(str(args.source))} {shlex.quote(str(args.dest))} --resume"


def _refuse_leftover(args: argparse.Namespace) -> None:
    """An incomplete output from an interrupted run: say how to finish it (one line)."""
    if args.overwrite or args.resume:
        return
    from ..core.classify import classify
    from ..core.errors import BioimnbError

    try:
        found = classify(args.dest, **storage_options(args))
    except BioimnbError:
        return  # nothing there (or unreadable): convert() decides
    if found.incomplete:
        raise BioimnbError(
            str(args.dest),
            f"an interrupted conversion left this output incomplete; finish it with `{_resume_line(args)}`"
            " (written blocks are kept) or add --overwrite to start again",
        )


def run(args: argparse.Namespace) -> Any:
    import bioimnb

    _refuse_leftover(args)
    resume = _resume_line(args)
    if args.wait:
        note = (
            "The cell waits until the conversion ends. To stop it, interrupt the kernel (the stop button):"
            f" the output stays marked incomplete and `{resume}` finishes it."
        )
    else:
        note = (
            "Runs in the background: the notebook stays usable, Cancel stops it. If the kernel stops"
            f" before the end, the output stays marked incomplete and `{resume}` finishes it."
        )
    panel = bioimnb.ConvertPanel(args.source, args.dest, note=note, **convert_kwargs(args))  # type: ignore[misc]
    if not args.wait:
        return panel.start()
    from IPython.display import display

    display(panel)
    panel.start()
    thread = panel._thread
    assert thread is not None
    while thread.is_alive():
        try:
            thread.join(0.25)
        except KeyboardInterrupt:
            panel.cancel()  # the blocks in flight finish, the journal keeps them; then the thread ends
    return None  # the panel is already shown, with the outcome (or the error) in it
