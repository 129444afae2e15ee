"""The core's in-memory caches, all drawing from ONE byte budget for the whole process.

Every cache of decoded pixels in the core is an :class:`ArrayCache`: the viewer's raw tiles
(one per :class:`~bioimnb.core.tiles.TileRenderer`, or one shared by a server's renderers) and
the sampled blocks of virtual pyramid levels (one per opened scene without a pyramid).  Each may
have its own bound (``max_bytes``), but all of them together never hold more than
``limits().memory_budget`` bytes (:mod:`bioimnb.core.limits`, 512 MiB by default, read at every
insertion so :func:`~bioimnb.core.limits.configure` takes effect at once): they register with
one :class:`MemoryBudget` (:func:`process_budget`), which evicts the least recently used array
of *any* cache when an insertion would exceed it.  So a server with 32 scenes open holds at most
the budget in cached pixels, not 32 times a per-scene bound.

A cache that is garbage collected gives its bytes back at once.  Tests may pass their own
``MemoryBudget`` to keep a cache out of the process-wide accounting.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable

import numpy as np

from .limits import limits

__all__ = ["ArrayCache", "MemoryBudget", "process_budget"]


class MemoryBudget:
    """A byte budget shared by several :class:`ArrayCache`: one LRU order over all their
    entries.  ``limit`` is a number of bytes, or a callable giving it (the process budget reads
    ``limits().memory_budget``)."""

    def __init__(self, limit: int | Callable[[], int]) -> None:
        self._limit = limit
        # Entries of every cache, oldest first: (cache token, key) -> nbytes.
        self._order: OrderedDict[tuple[int, Hashable], int] = OrderedDict()
        self._caches: dict[int, weakref.ReferenceType[ArrayCache]] = {}
        self._bytes = 0
        self.lock = threading.RLock()
        self._tokens = 0

    @property
    def limit(self) -> int:
        return int(self._limit() if callable(self._limit) else self._limit)

    @property
    def nbytes(self) -> int:
        """Bytes held by all registered caches together."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._order)

    # -- called by ArrayCache, under self.lock ---------------------------------------------

    def _register(self, cache: ArrayCache) -> int:
        with self.lock:
            self._tokens += 1
            token = self._tokens
            self._caches[token] = weakref.ref(cache)
            return token

    def _release(self, token: int, entries: list[tuple[Hashable, int]]) -> None:
        """A cache went away (or was cleared): forget its entries."""
        with self.lock:
            for key, nbytes in entries:
                if self._order.pop((token, key), None) is not None:
                    self._bytes -= nbytes

    def _forget(self, token: int) -> None:
        with self.lock:
            self._caches.pop(token, None)

    def _touch(self, token: int, key: Hashable) -> None:
        self._order.move_to_end((token, key))

    def _add(self, token: int, key: Hashable, nbytes: int) -> None:
        self._order[(token, key)] = nbytes
        self._bytes += nbytes

    def _remove(self, token: int, key: Hashable) -> None:
        nbytes = self._order.pop((token, key), None)
        if nbytes is not None:
            self._bytes -= nbytes

    def _shrink(self) -> None:
        """Evict the least recently used entries of any cache until the budget holds."""
        limit = self.limit
        while self._bytes > limit and self._order:
            (token, key), _ = next(iter(self._order.items()))
            ref = self._caches.get(token)
            cache = ref() if ref is not None else None
            if cache is None:
                self._remove(token, key)
            else:
                cache._evict(key)


_PROCESS_BUDGET = MemoryBudget(lambda: limits().memory_budget)


def process_budget() -> MemoryBudget:
    """The budget every core cache draws from unless given another."""
    return _PROCESS_BUDGET


def _released(budget: MemoryBudget, token: int, items: OrderedDict[Hashable, np.ndarray]) -> None:
    with budget.lock:
        budget._release(token, [(k, v.nbytes) for k, v in items.items()])
        budget._forget(token)


class ArrayCache:
    """A thread-safe LRU of arrays bounded by their total ``nbytes`` (``max_bytes``) and by the
    shared :class:`MemoryBudget` (the process budget by default); values are made read-only
    because they are shared between readers."""

    def __init__(self, max_bytes: int | None = None, *, budget: MemoryBudget | None = None) -> None:
        self.budget = budget if budget is not None else _PROCESS_BUDGET
        self.max_bytes = int(max_bytes) if max_bytes is not None else None
        self._items: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._token = self.budget._register(self)
        self.hits = 0
        self.misses = 0
        weakref.finalize(self, _released, self.budget, self._token, self._items)

    def _bound(self) -> int:
        limit = self.budget.limit
        return limit if self.max_bytes is None else min(limit, self.max_bytes)

    def get(self, key: Hashable) -> np.ndarray | None:
        with self.budget.lock:
            value = self._items.get(key)
            if value is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.budget._touch(self._token, key)
            self.hits += 1
            return value

    def put(self, key: Hashable, value: np.ndarray) -> None:
        if value.nbytes > self._bound():
            return
        value.setflags(write=False)  # shared between renders: never modified in place
        with self.budget.lock:
            if key in self._items:
                self._evict(key)
            self._items[key] = value
            self._bytes += value.nbytes
            self.budget._add(self._token, key, value.nbytes)
            if self.max_bytes is not None:
                while self._bytes > self.max_bytes and self._items:
                    self._evict(next(iter(self._items)))
            self.budget._shrink()

    def _evict(self, key: Hashable) -> None:
        """Drop one entry (caller holds the budget's lock)."""
        value = self._items.pop(key, None)
        if value is not None:
            self._bytes -= value.nbytes
            self.budget._remove(self._token, key)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self.budget.lock:
            for key in list(self._items):
                self._evict(key)
