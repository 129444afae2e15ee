"""Sorting and filtering listing entries, as a storage browser shows them.

The listers return entries in name order, one page at a time; a browser that has loaded some
or all pages of a folder sorts and filters what it holds with these two functions (the notebook
widget and the server's side panel route use the same rules).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .entries import Entry, ListingPage

__all__ = ["MAX_SORTED_ENTRIES", "SORT_KEYS", "filter_entries", "sort_entries", "sorted_listing"]

SORT_KEYS = ("name", "kind", "format", "size")
"""What entries can be sorted by."""

MAX_SORTED_ENTRIES = 100_000
"""A folder is sorted whole only up to this many entries (the rest would be memory and time
for a list nobody scrolls): beyond, sorting is refused with a one-line reason."""

_KIND_ORDER = {"folder": 0, "image": 1, "file": 2}


def _key(key: str) -> Any:
    if key == "name":
        return lambda e: (e.name.casefold(), e.name)
    if key == "kind":
        return lambda e: (_KIND_ORDER.get(e.kind, 3), e.name.casefold(), e.name)
    if key == "format":
        # Entries without a format (folders, plain files) after those with one.
        return lambda e: (e.format is None, (e.format or "").casefold(), e.name.casefold())
    if key == "size":
        # Unknown sizes (folders, zarr images) after known ones, whatever the direction.
        return lambda e: (e.size is None, e.size or 0, e.name.casefold())
    raise ValueError(f"cannot sort by {key!r}; choose one of {', '.join(SORT_KEYS)}")


def sort_entries(entries: Iterable[Entry], key: str = "name", descending: bool = False) -> list[Entry]:
    """``entries`` sorted by ``key`` (``name`` case-insensitively, ``kind`` folders first, then
    ``format`` or ``size``; ties by name).  Entries whose format or size is unknown stay last in
    either direction."""
    ordered = sorted(entries, key=_key(key))
    if not descending:
        return ordered
    if key in ("format", "size"):
        known = [e for e in ordered if (e.format if key == "format" else e.size) is not None]
        unknown = [e for e in ordered if (e.format if key == "format" else e.size) is None]
        return known[::-1] + unknown
    return ordered[::-1]


def filter_entries(
    entries: Iterable[Entry],
    text: str = "",
    *,
    kinds: Sequence[str] = (),
    formats: Sequence[str] = (),
    min_size: int | None = None,
    max_size: int | None = None,
) -> list[Entry]:
    """The entries whose name contains ``text`` (case-insensitive), whose kind is one of
    ``kinds`` and whose format is one of ``formats`` (empty: any), and whose size lies within
    ``[min_size, max_size]`` (an entry of unknown size passes only when no bound is given)."""
    needle = text.casefold().strip()
    kind_set = {k for k in kinds if k}
    format_set = {f.casefold() for f in formats if f}
    out = []
    for e in entries:
        if needle and needle not in e.name.casefold():
            continue
        if kind_set and e.kind not in kind_set:
            continue
        if format_set and (e.format or "").casefold() not in format_set:
            continue
        if min_size is not None or max_size is not None:
            if e.size is None:
                continue
            if min_size is not None and e.size < min_size:
                continue
            if max_size is not None and e.size > max_size:
                continue
        out.append(e)
    return out


def sorted_listing(location: Any, key: str = "name", descending: bool = False, limit: int | None = None) -> ListingPage:
    """Every entry of ``location`` (a :class:`~bioimnb.core.locations.Location`), listed page
    by page and sorted as :func:`sort_entries` does, as one page (``next_page`` None).  A
    folder of more than ``limit`` (default :data:`MAX_SORTED_ENTRIES`) entries is refused (:class:`~bioimnb.core.errors.BioimnbError`)."""
    from ..errors import BioimnbError

    _key(key)  # an unknown key is refused before anything is listed
    limit = MAX_SORTED_ENTRIES if limit is None else limit
    entries: list[Entry] = []
    token: str | None = None
    while True:
        page = location.list(page_size=1000, page=token)
        entries.extend(page.entries)
        if len(entries) > limit:
            raise BioimnbError(
                page.location, f"more than {limit:,} entries: too many to sort; filter by name or open a sub-folder"
            )
        token = page.next_page
        if token is None:
            return ListingPage(page.location, sort_entries(entries, key, descending), None)
