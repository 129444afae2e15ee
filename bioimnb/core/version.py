"""The package version, in one place: the installed distribution's metadata (set in
``pyproject.toml``).  The core reads it from here and never imports the package root."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["VERSION"]

try:
    VERSION: str = version("bioimnb")
except PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
    VERSION = "0+unknown"
