"""``bioimnb meta export`` and ``bioimnb meta completeness`` (REMBI, exports, completeness).

- ``meta export FOLDER [--bia-filelist F.tsv] [--rembi F.json] [--idr-annotations F.csv]``:
  writes the BioImage Archive file list, the REMBI study that applies to FOLDER, and the
  key-value annotations as an IDR-style CSV (at least one of them);
- ``meta completeness URL [--json]``: a score per image and for the folder, naming what is
  missing; ``--json`` prints JSON Lines, one object per image then ``{"summary": ...}``.

User errors are one line on stderr and exit 2 (done by :func:`bioimnb.cli.main`).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from .._args import add_storage_args, storage_options


def _cmd_export(args: argparse.Namespace) -> int:
    from ..core.curation.export import export

    result = export(
        args.folder,
        bia_filelist_path=args.bia_filelist,
        rembi_path=args.rembi,
        idr_annotations_path=args.idr_annotations,
        recursive=not args.no_recursive,
        cache=not args.no_cache,
        progress=None if args.json else print,
        **storage_options(args),
    )
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    return 0


def _cmd_completeness(args: argparse.Namespace) -> int:
    from ..core.curation.completeness import completeness, format_line, format_summary

    def show(facts: Any, result: dict[str, Any]) -> None:
        if args.json:
            print(json.dumps({"path": facts.path, **result}, ensure_ascii=False), flush=False)
        else:
            print(format_line(facts.path, result))

    summary = completeness(
        args.url,
        recursive=not args.no_recursive,
        cache=not args.no_cache,
        studies=not args.no_study,
        per_image=show,
        **storage_options(args),
    )
    if args.json:
        print(json.dumps({"summary": summary}, ensure_ascii=False))
    else:
        print(format_summary(summary))
    return 0


def register(metasub: Any) -> None:
    """Add ``export`` and ``completeness`` to the ``meta`` sub-parsers."""
    exp = metasub.add_parser(
        "export",
        help="write a BioImage Archive file list, the REMBI study and/or an IDR annotation CSV of a folder",
    )
    exp.add_argument("folder", help="folder, s3://bucket/prefix/ or other URL")
    exp.add_argument("--bia-filelist", metavar="F.tsv", help="BioImage Archive file list (TSV, first column Files)")
    exp.add_argument("--rembi", metavar="F.json", help="the REMBI study that applies to FOLDER, as JSON")
    exp.add_argument("--idr-annotations", metavar="F.csv", help="key-value (map) annotations as an IDR-style CSV")
    exp.add_argument("--no-recursive", action="store_true", help="only the folder itself, not its subfolders")
    exp.add_argument("--no-cache", action="store_true", help="open every image again (ignore the facts cache)")
    exp.add_argument("--json", action="store_true", help="print what was written as JSON")
    add_storage_args(exp)
    exp.set_defaults(func=_cmd_export)

    comp = metasub.add_parser(
        "completeness",
        help="metadata completeness per image and for a folder, naming what is missing",
    )
    comp.add_argument("url", help="folder, s3://bucket/prefix/ or other URL")
    comp.add_argument("--json", action="store_true", help="JSON Lines: one object per image, then a summary line")
    comp.add_argument("--no-recursive", action="store_true", help="only the folder itself, not its subfolders")
    comp.add_argument("--no-cache", action="store_true", help="open every image again (ignore the facts cache)")
    comp.add_argument("--no-study", action="store_true", help="image metadata only (ignore rembi.json sidecars)")
    add_storage_args(comp)
    comp.set_defaults(func=_cmd_completeness)
