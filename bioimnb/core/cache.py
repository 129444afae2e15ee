"""A thread-safe LRU of numpy arrays bounded by their total size, shared by the core's caches
(decoded tiles of the viewer, sampled blocks of virtual pyramid levels)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

import numpy as np

__all__ = ["ArrayCache"]


class ArrayCache:
    """A thread-safe LRU of arrays bounded by their total ``nbytes``; values are made read-only
    because they are shared between readers.

    The viewer makes one per :class:`~bioimnb.core.tiles.TileRenderer` (a server showing many
    images can share one between renderers to bound them together); every image without a
    pyramid has one for its virtual levels.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> np.ndarray | None:
        with self._lock:
            value = self._items.get(key)
            if value is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: Hashable, value: np.ndarray) -> None:
        if value.nbytes > self.max_bytes:
            return
        value.setflags(write=False)  # shared between renders: never modified in place
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._items[key] = value
            self._bytes += value.nbytes
            while self._bytes > self.max_bytes and self._items:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= dropped.nbytes

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


# --------------------------------------------------------------------------------------------
# The renderer
# --------------------------------------------------------------------------------------------
