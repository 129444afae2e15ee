"""Display colours of channels, in one place: the OMERO/Fiji-like defaults used when a file
names none (grey for a single channel; red, green, blue, magenta, cyan, yellow, white after)."""

from __future__ import annotations

__all__ = ["PALETTE", "SINGLE", "default_colors"]

SINGLE = "FFFFFF"
PALETTE = ("FF0000", "00FF00", "0000FF", "FF00FF", "00FFFF", "FFFF00", "FFFFFF")


def default_colors(n: int) -> list[str]:
    """``RRGGBB`` colours for ``n`` channels."""
    if n == 1:
        return [SINGLE]
    return [PALETTE[i % len(PALETTE)] for i in range(n)]
