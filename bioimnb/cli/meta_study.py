"""``bioimnb meta export`` and ``bioimnb meta completeness`` (REMBI, exports, completeness)."""

from __future__ import annotations

from typing import Any


def register(metasub: Any) -> None:
    """Add ``export`` and ``completeness`` to the ``meta`` sub-parsers (none yet)."""
    del metasub
