"""A git clean filter for the workshop notebooks (``make lab`` installs it in a checkout).

Running a notebook saves its outputs, execution counts and widget state into the file; none of
that belongs in the repository.  Git passes each notebook through this filter when it compares or
stages it, so a notebook that was only run shows as unchanged, and an edited one commits its
cells alone.  Input that is not a notebook passes through unchanged.
"""

from __future__ import annotations

import sys


def strip(text: str) -> str:
    import nbformat

    nb = nbformat.reads(text, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        for key in ("execution", "collapsed", "scrolled"):
            cell.metadata.pop(key, None)
    nb.metadata.pop("widgets", None)
    out = nbformat.writes(nb)
    return out if out.endswith("\n") else out + "\n"


def main() -> int:
    text = sys.stdin.read()
    try:
        sys.stdout.write(strip(text))
    except Exception:  # noqa: BLE001 - a conflicted or foreign file is left as it is
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
