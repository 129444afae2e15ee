"""``bioimnb meta show|set|validate|export|completeness``: the Metadata issue's commands.

``show``, ``set`` and ``validate`` (the OME model) are defined here; ``export`` and
``completeness`` (REMBI, exports, completeness) in :mod:`bioimnb.cli.meta_study`.

- ``meta show SOURCE [--json | --xml]``: a summary, the model as JSON, or OME-XML 2016-06;
- ``meta set SOURCE FIELD=VALUE ...``: every item checked first; an invalid one is refused
  naming its field (exit 2) and nothing is written;
- ``meta validate SOURCE``: exit 0 valid, 1 with one line per problem, 2 when unreadable.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .._args import add_storage_args, storage_options

EXIT_INVALID = 1


def _cmd_show(args: argparse.Namespace) -> int:
    from ..core.curation.model import load
    from ..core.curation.present import model_json, summary_text

    doc = load(args.source, **storage_options(args))
    if args.xml:
        from ..core.curation.xmltree import tree_bytes

        sys.stdout.write(tree_bytes(doc.tree).decode("utf-8"))
        sys.stdout.write("\n")
        return 0
    if args.json:
        print(json.dumps({**doc.describe(), "ome": model_json(doc.ome)}, indent=2, ensure_ascii=False))
        return 0
    print(summary_text(doc))
    return 0


def _cmd_set(args: argparse.Namespace) -> int:
    from ..core.curation.edit import EditSession

    session = EditSession(args.source, **storage_options(args))
    session.set(*args.assignments)
    result = session.save()
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(result.summary())
        for note in result.notes:
            print(f"note: {note}", file=sys.stderr)
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from ..core.curation.validate import lines, validate

    report = validate(args.source, **storage_options(args))
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    elif report.valid:
        print(f"{report.source}: valid OME 2016-06 metadata")
    else:
        for line in lines(report):
            print(line)
    return 0 if report.valid else EXIT_INVALID


def register(sub: Any) -> None:
    meta = sub.add_parser("meta", help="show, edit, validate and export image metadata (OME, REMBI)")
    metasub = meta.add_subparsers(dest="meta_command", required=True, metavar="ACTION")

    show = metasub.add_parser("show", help="the OME metadata of an image or an OME-XML file")
    show.add_argument("source", help="an image (any format bioimnb reads) or an .ome.xml / .companion.ome file")
    how = show.add_mutually_exclusive_group()
    how.add_argument("--json", action="store_true", help="the OME model as JSON (ome-types attribute names)")
    how.add_argument("--xml", action="store_true", help="OME-XML (2016-06 schema)")
    add_storage_args(show)
    show.set_defaults(func=_cmd_show)

    st = metasub.add_parser(
        "set",
        help="edit OME fields; all are checked first, nothing is written if one is invalid",
        description=(
            "FIELD is a dotted path with ome-types attribute names and list indexes, e.g. "
            "images[0].pixels.channels[1].name=GFP, images[0].pixels.physical_size_x=0.325, "
            "images[0].pixels.physical_size_x_unit=µm. Aliases: channel[1].name, pixel_size_x, "
            "pixel_size_x_unit, name, acquisition_date, image[N]...., objective[0].lens_na, "
            "map.KEY (key-value pair in OMERO's client namespace). An empty VALUE unsets a field "
            "or removes a pair. OME-TIFF is edited in place (pixels untouched), OME-Zarr in its "
            "NGFF attributes and OME/METADATA.ome.xml, other formats in a companion FILE.ome.xml."
        ),
    )
    st.add_argument("source", help="an image or an OME-XML file")
    st.add_argument("assignments", nargs="+", metavar="FIELD=VALUE")
    st.add_argument("--json", action="store_true", help="print what was saved as JSON")
    add_storage_args(st)
    st.set_defaults(func=_cmd_set)

    val = metasub.add_parser("validate", help="check OME metadata: exit 0 valid, 1 problems (one line each), 2 unreadable")
    val.add_argument("source", help="an image or an OME-XML file")
    val.add_argument("--json", action="store_true", help="the report as JSON")
    add_storage_args(val)
    val.set_defaults(func=_cmd_validate)

    from . import meta_study

    meta_study.register(metasub)
