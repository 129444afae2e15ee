"""``bioimnb meta ...``: this capability's subcommands (see its issue for the contract)."""

from __future__ import annotations

from typing import Any


def register(sub: Any) -> None:
    """Add this capability's subcommands to the ``bioimnb`` parser (none yet)."""
    del sub
