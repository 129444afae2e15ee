"""``%bioim transfer SRC DEST [flags]`` (a progress panel), ``%bioim manifest FOLDER`` and
``%bioim fixity FOLDER_OR_BAG``: one-liners over the public API with the CLI's flags."""

from __future__ import annotations

import argparse
from typing import Any

from .._args import add_storage_args, storage_options


def register(sub: Any) -> None:
    tr = sub.add_parser("transfer", help="copy with verified checksums, with a progress panel")
    tr.add_argument("source")
    tr.add_argument("dest")
    tr.add_argument("--bag", action="store_true")
    tr.add_argument("--sync", action="store_true")
    tr.add_argument("--overwrite", action="store_true")
    tr.add_argument("--workers", type=int, default=None, metavar="N")
    tr.add_argument("--watch", action="store_true")
    tr.add_argument("--settle", type=float, default=10.0, metavar="SECONDS")
    add_storage_args(tr)
    tr.set_defaults(run=run_transfer)
    man = sub.add_parser("manifest", help="write FOLDER/manifest-sha256.txt and bioimnb-manifest.json")
    man.add_argument("folder")
    add_storage_args(man)
    man.set_defaults(run=run_manifest)
    fx = sub.add_parser("fixity", help="re-check a folder's manifest or a bag")
    fx.add_argument("folder")
    add_storage_args(fx)
    fx.set_defaults(run=run_fixity)


def run_transfer(args: argparse.Namespace) -> Any:
    import bioimnb

    options: dict[str, Any] = {"overwrite": args.overwrite, "workers": args.workers, **storage_options(args)}
    if args.watch:
        if args.bag or args.sync:
            raise bioimnb.BioimnbError(args.source, "watch mode copies files as they come; --bag and --sync are for one-off transfers")
        return bioimnb.TransferPanel(args.source, args.dest, watch=True, settle=args.settle, **options).start()  # type: ignore[misc]
    return bioimnb.TransferPanel(args.source, args.dest, bag=args.bag, sync=args.sync, **options).start()  # type: ignore[misc]


def run_manifest(args: argparse.Namespace) -> Any:
    from ..core.transfer import manifest

    report = manifest(args.folder, **storage_options(args))
    print(report.summary())
    return report


def run_fixity(args: argparse.Namespace) -> Any:
    from ..core.transfer import fixity

    report = fixity(args.folder, **storage_options(args))
    print(report.summary())
    return report
