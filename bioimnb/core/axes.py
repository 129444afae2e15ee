"""Mapping between a reader's native axis order and bioimnb's canonical TCZYX(S).

Every level of every image is presented as a 5-D ``TCZYX`` array, or 6-D ``TCZYXS`` for
interleaved RGB(A) samples.  Readers keep their native layout (a tifffile series may be ``YXS``,
an OME-Zarr ``czyx``); :class:`AxisMap` turns a native array into the canonical view lazily and
turns a canonical index into a native one, so region reads go straight to the native store.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import UnsupportedFormat

__all__ = ["AxisMap", "CANONICAL"]

CANONICAL = "TCZYX"

# Axis letters that other tools use for what bioimnb calls T, C or Z.
_SYNONYMS = {"t": "T", "c": "C", "z": "Z", "y": "Y", "x": "X", "s": "S"}
# Letters with no fixed meaning (tifffile: I=image sequence, Q=unknown, ...): they become the
# first of T, Z, C that the image does not already have.
_GENERIC = set("IQRPHEAVLMO")


def _normalise(native: str, source: object) -> str:
    letters = [_SYNONYMS.get(a, a.upper()) for a in native]
    out: list[str] = []
    free = [a for a in "TZC" if a not in letters]
    for a in letters:
        if a in "TCZYXS":
            out.append(a)
        elif a in _GENERIC and free:
            out.append(free.pop(0))
        else:
            raise UnsupportedFormat(source, f"cannot interpret axis {a!r} of axes {native!r}")
    if len(set(out)) != len(out):
        raise UnsupportedFormat(source, f"repeated axis in {native!r}")
    if "Y" not in out or "X" not in out:
        raise UnsupportedFormat(source, f"image has no Y and X axes (axes {native!r})")
    return "".join(out)


class AxisMap:
    """Native axes (e.g. ``"CYX"``, ``"YXS"``, ``"tczyx"``) to canonical TCZYX(S)."""

    def __init__(self, native: str, source: object = "image") -> None:
        self.native = _normalise(native, source)
        self.target = CANONICAL + ("S" if "S" in self.native else "")
        self._perm = [self.native.index(a) for a in self.target if a in self.native]

    @property
    def identity(self) -> bool:
        return self.native == self.target

    def shape(self, native_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(
            native_shape[self.native.index(a)] if a in self.native else 1 for a in self.target
        )

    def to_canonical(self, arr: Any) -> Any:
        """Transpose and expand a native (numpy or dask) array to canonical order, lazily."""
        if self.identity:
            return arr
        arr = arr.transpose(self._perm)
        index = tuple(slice(None) if a in self.native else None for a in self.target)
        return arr[index]

    def read(self, native_arr: Any, key: tuple[Any, ...]) -> np.ndarray:
        """Read ``key`` (ints and slices over canonical axes) from a native array."""
        if len(key) != len(self.target):
            raise IndexError(f"expected {len(self.target)} indices over {self.target}, got {len(key)}")
        native_key: list[Any] = [slice(None)] * len(self.native)
        kept_missing: list[str] = []
        for axis, k in zip(self.target, key, strict=True):
            if axis in self.native:
                native_key[self.native.index(axis)] = k
            else:
                if isinstance(k, slice):
                    start, stop, _ = k.indices(1)
                    if stop - start != 1:
                        raise IndexError(f"axis {axis} has length 1")
                    kept_missing.append(axis)
                elif k not in (0, -1):
                    raise IndexError(f"index {k} out of range for axis {axis} of length 1")
        out = np.asarray(native_arr[tuple(native_key)])
        kept_native = [a for a, k in zip(self.native, native_key, strict=True) if isinstance(k, slice)]
        order = [a for a in self.target if a in kept_native]
        if kept_native != order:
            out = out.transpose([kept_native.index(a) for a in order])
        if kept_missing:
            present = [a for a in self.target if a in order or a in kept_missing]
            out = out.reshape(
                tuple(1 if a in kept_missing else out.shape[order.index(a)] for a in present)
            )
        return out
