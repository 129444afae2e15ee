"""``bioimnb transfer``, ``bioimnb manifest`` and ``bioimnb fixity``.

Exit status: ``transfer`` 0 when every file is at the destination and verified, 1 when some
failed (each named on stderr and in ``--json``), 2 for user errors (one line on stderr);
``manifest`` 0, 1 when some file could not be read; ``fixity`` 0 intact, 1 not intact, 2 when it
cannot run (no manifest, unreadable).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .._args import add_storage_args, storage_options


class _Progress:
    """One updating line on a terminal; a line per 10 % when stderr is not a terminal."""

    def __init__(self, what: str = "files") -> None:
        self.tty = sys.stderr.isatty()
        self.last = -1.0
        self.what = what

    def __call__(self, p: Any) -> None:
        pct = 100.0 * p.fraction
        if not self.tty and pct - self.last < 10 and p.done < p.total:
            return
        self.last = pct
        rate = p.bytes_done / p.elapsed / 2**20 if p.elapsed > 0 else 0.0
        line = f"{p.phase}: {p.done}/{p.total} {self.what} ({pct:.0f}%), {p.bytes_done / 2**20:.1f} MiB, {rate:.1f} MiB/s"
        if self.tty:
            print("\r" + line.ljust(78), end="", file=sys.stderr, flush=True)
            if p.done >= p.total:
                print(file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)


def _positive(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError("must be between 1 and 256")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 86400:
        raise argparse.ArgumentTypeError("must be between 0 and 86400 seconds")
    return value


def _print_failures(report: Any) -> None:
    for f in report.failures:
        print(f"bioimnb: failed: {f.path}: {f.reason}", file=sys.stderr)


def _cmd_transfer(args: argparse.Namespace) -> int:
    from ..core.transfer import transfer, watch

    progress = None if (args.quiet or args.json) else _Progress()
    if args.watch:
        import signal
        import threading

        stop = threading.Event()

        def cycle(part: Any) -> None:
            if not args.quiet and not args.json:
                print(part.summary(), flush=True)

        def on_sigint(signum: int, frame: Any) -> None:
            # The first Ctrl-C finishes the files in flight and prints the totals; a second one
            # interrupts at once (the journal keeps what was verified).
            stop.set()
            signal.signal(signal.SIGINT, previous)
            print("bioimnb: stopping the watch after the files in flight (Ctrl-C again to interrupt)", file=sys.stderr)

        previous = signal.signal(signal.SIGINT, on_sigint)
        try:
            report = watch(
                args.source, args.dest, settle=args.settle, cancel=stop, on_transfer=cycle,
                overwrite=args.overwrite, workers=args.workers, **storage_options(args),
            )
        finally:
            signal.signal(signal.SIGINT, previous)
        if not args.quiet and not args.json:
            print("watch stopped; in total:")
    else:
        report = transfer(
            args.source, args.dest, sync=args.sync, overwrite=args.overwrite, bag=args.bag,
            workers=args.workers, progress=progress, **storage_options(args),
        )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    elif not args.quiet:
        print(report.summary())
    if args.quiet or args.json:
        _print_failures(report)
    return 0 if report.ok else 1


def _cmd_manifest(args: argparse.Namespace) -> int:
    from ..core.transfer import manifest

    report = manifest(args.folder, progress=None if args.json else _Progress(), **storage_options(args))
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.summary())
    return 0 if report.ok else 1


def _cmd_fixity(args: argparse.Namespace) -> int:
    from ..core.transfer import fixity

    report = fixity(args.folder, progress=None if args.json else _Progress(), **storage_options(args))
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.summary())
    return 0 if report.intact else 1


def register(sub: Any) -> None:
    """Add ``transfer``, ``manifest`` and ``fixity`` to the ``bioimnb`` parser."""
    tr = sub.add_parser(
        "transfer",
        help="copy a file, image or folder with verified SHA-256 checksums, resumable",
        description="Copy SRC to DEST (local folders, s3://, http(s):// as a source) with a SHA-256 per file "
        "checked at the destination. A re-run resumes: verified files are skipped. A destination file that "
        "differs is reported, not replaced, unless --overwrite.",
    )
    tr.add_argument("source", help="file, image or folder (path or URL)")
    tr.add_argument("dest", help="destination path or URL (a folder's contents become DEST's)")
    tr.add_argument("--bag", action="store_true", help="make DEST a BagIt 1.0 bag (payload under data/)")
    tr.add_argument("--sync", action="store_true", help="also delete destination files no longer in the source")
    tr.add_argument("--overwrite", action="store_true", help="replace destination files that differ")
    tr.add_argument("--workers", type=_positive, default=None, metavar="N", help="parallel streams (default 4 local, 16 remote)")
    tr.add_argument("--watch", action="store_true", help="keep polling SOURCE; transfer files once they stop growing (Ctrl-C stops)")
    tr.add_argument("--settle", type=_seconds, default=10.0, metavar="SECONDS", help="with --watch: unchanged this long = finished (default 10)")
    tr.add_argument("--json", action="store_true", help="the report as JSON")
    tr.add_argument("--quiet", action="store_true", help="no progress, no summary (failures still on stderr)")
    add_storage_args(tr)
    tr.set_defaults(func=_cmd_transfer)

    man = sub.add_parser("manifest", help="write FOLDER/manifest-sha256.txt and bioimnb-manifest.json (nothing is moved)")
    man.add_argument("folder", help="folder or s3:// prefix")
    man.add_argument("--json", action="store_true", help="the summary as JSON")
    add_storage_args(man)
    man.set_defaults(func=_cmd_manifest)

    fx = sub.add_parser(
        "fixity",
        help="re-check a folder's manifest or a BagIt bag (exit 0 intact, 1 not, 2 cannot run)",
    )
    fx.add_argument("folder", metavar="FOLDER_OR_BAG", help="folder with manifest-sha256.txt, or a bag")
    fx.add_argument("--json", action="store_true", help="the report as JSON")
    add_storage_args(fx)
    fx.set_defaults(func=_cmd_fixity)
