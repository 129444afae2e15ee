"""``bioimnb meta show|set|validate|export|completeness``: the Metadata issue's commands.

``show``, ``set`` and ``validate`` (the OME model) are defined here; ``export`` and
``completeness`` (REMBI, exports, completeness) in :mod:`bioimnb.cli.meta_study`.
"""

from __future__ import annotations

from typing import Any


def register(sub: Any) -> None:
    meta = sub.add_parser("meta", help="show, edit, validate and export image metadata (OME, REMBI)")
    metasub = meta.add_subparsers(dest="meta_command", required=True, metavar="ACTION")
    from . import meta_study

    meta_study.register(metasub)
