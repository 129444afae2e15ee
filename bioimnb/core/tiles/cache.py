"""The raw-tile cache of the viewer.

Raw (unrendered) tile arrays are kept keyed by ``(scene, level, t, z, c, tx, ty)`` (label tiles
by ``("label", name, scene, level, t, z, tx, ty)``), so changing a colour, window or the set of
visible channels re-renders from memory without touching storage.  Several renderers may share
one :class:`TileCache` (and its own bound); their keys are then prefixed with a token per
renderer.  Every tile cache, like every other cache of the core, also draws from the one
process-wide byte budget (:mod:`bioimnb.core.cache`, ``limits().memory_budget``).
"""

from __future__ import annotations

from ..cache import ArrayCache, MemoryBudget, process_budget

__all__ = ["MemoryBudget", "TileCache", "process_budget"]

TileCache = ArrayCache
"""The raw-tile cache of a renderer (see :class:`bioimnb.core.cache.ArrayCache`)."""
