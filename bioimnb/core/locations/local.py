"""Local folders: names from ``os.scandir`` (the page picked with a bounded heap), then only the
page's entries classified."""

from __future__ import annotations

import heapq
import os
from collections.abc import Callable, Iterator

from ..classify import MRXS_SUFFIX, classify_local
from .base import LocationBase
from .entries import _TOKEN_AFTER, Entry, NotAFolder, _decode_token, _encode_token

_MRXS_SUFFIX = MRXS_SUFFIX
_Page = tuple[list[Entry], str | None]


class LocalLister(LocationBase):
    """Listing of local folders (mixed into :class:`~bioimnb.core.locations.Location`)."""

    def _list_local(self, page_size: int, page: str | None) -> _Page:
        source = self._path
        after = _decode_token(page, _TOKEN_AFTER, self._error_source) if page is not None else None
        want = page_size + 1  # one more than shown tells whether another page exists
        stems: set[str] = set()
        counted = [0]  # names the last scan offered to the heap

        def names(exclude: Callable[[os.DirEntry[str]], bool] | None) -> Iterator[str]:
            try:
                it = os.scandir(source)
            except NotADirectoryError:
                raise NotAFolder(self._error_source, "not a folder") from None
            with it:
                for de in it:
                    name = de.name
                    if not self._visible(name):
                        continue
                    if name.lower().endswith(_MRXS_SUFFIX):
                        stems.add(name[: -len(_MRXS_SUFFIX)])
                    if after is not None and name <= after:
                        continue
                    if exclude is not None and exclude(de):
                        continue
                    counted[0] += 1
                    yield name

        chosen = heapq.nsmallest(want, names(None))
        # An MRXS companion folder may sort before its .mrxs, so it is only known as one once
        # the whole scan has seen every .mrxs name: drop it now, rescan if that left a gap.
        companions = {n for n in chosen if n in stems and os.path.isdir(os.path.join(source, n))}
        if companions:
            chosen = [n for n in chosen if n not in companions]
            if len(chosen) < want and counted[0] > want:  # names beyond the heap may fill it
                known = set(stems)
                chosen = heapq.nsmallest(want, names(lambda de: de.name in known and de.is_dir()))
        more = len(chosen) > page_size
        chosen = chosen[:page_size]
        entries = [self._local_entry(name) for name in chosen]
        next_page = _encode_token(_TOKEN_AFTER, chosen[-1]) if more and chosen else None
        return entries, next_page

    def _local_entry(self, name: str) -> Entry:
        full = os.path.join(self._path, name)
        path = self._entry_path(name, full)
        try:
            found = classify_local(full, root=self._root_real)
        except FileNotFoundError:  # vanished since the scan
            return Entry(name, path, "file")
        if found.kind == "file" and found.error and "link" in found.error:
            return Entry(name, path, "file")  # a link out of the root or a broken one: never followable
        return Entry.of(name, path, found)
