"""``%bioim meta``: this capability's magic subcommand, a one-liner over the public API."""

from __future__ import annotations

from typing import Any


def register(sub: Any) -> None:
    """Add this capability's ``%bioim`` subcommands (none yet)."""
    del sub
