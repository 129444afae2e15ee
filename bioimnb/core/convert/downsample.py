"""2x (or 1x) block reductions used to build each pyramid level from the previous one.

``mean`` averages each window (area interpolation: what intensity images need); ``mode`` keeps
the most frequent value of each window (label images: no invented label ids); ``nearest``
keeps the window's first pixel.  Edges of odd-sized arrays are padded by edge replication, so
every output pixel averages real pixels only in the sense of a clamped window.
"""

from __future__ import annotations

import numpy as np

__all__ = ["METHODS", "reduce_block"]

METHODS = ("mean", "mode", "nearest")


def _pad_to(a: np.ndarray, factors: tuple[int, ...]) -> np.ndarray:
    pads = [(0, (-n) % f) for n, f in zip(a.shape, factors, strict=True)]
    if any(p[1] for p in pads):
        a = np.pad(a, pads, mode="edge")
    return a


def _windows(a: np.ndarray, factors: tuple[int, ...]) -> np.ndarray:
    """View of ``a`` as (out..., window...) with the window axes flattened last."""
    a = _pad_to(a, factors)
    shape: list[int] = []
    for n, f in zip(a.shape, factors, strict=True):
        shape += [n // f, f]
    v = a.reshape(shape)
    nd = a.ndim
    order = [2 * i for i in range(nd)] + [2 * i + 1 for i in range(nd)]
    v = v.transpose(order)
    return v.reshape(tuple(shape[0::2]) + (-1,))


def reduce_block(a: np.ndarray, factors: tuple[int, ...], method: str) -> np.ndarray:
    """Reduce ``a`` by integer ``factors`` per axis with ``method``."""
    if all(f == 1 for f in factors):
        return a
    if method == "nearest":
        return np.ascontiguousarray(a[tuple(slice(None, None, f) for f in factors)])
    if method == "mean" and len(factors) >= 2 and all(f == 1 for f in factors[:-2]) and factors[-2:] == (2, 2):
        return _mean2x2(a)
    w = _windows(a, factors)
    if method == "mean":
        if np.issubdtype(a.dtype, np.integer):
            total = w.sum(axis=-1, dtype=np.int64 if np.issubdtype(a.dtype, np.signedinteger) else np.uint64)
            n = w.shape[-1]
            return ((total + n // 2) // n).astype(a.dtype)
        return w.mean(axis=-1, dtype=np.float64).astype(a.dtype)
    if method == "mode":
        # Most frequent value per window; ties go to the smallest value (deterministic).
        s = np.sort(w, axis=-1)
        n = s.shape[-1]
        best = s[..., 0].copy()
        best_count = np.ones(best.shape, np.int32)
        run = np.ones(best.shape, np.int32)
        for i in range(1, n):
            same = s[..., i] == s[..., i - 1]
            run = np.where(same, run + 1, 1)
            better = run > best_count
            best = np.where(better, s[..., i], best)
            best_count = np.where(better, run, best_count)
        return best.astype(a.dtype)
    raise ValueError(f"unknown downsampling method {method!r}; choose from {METHODS}")


def _accumulator(dtype: np.dtype) -> np.dtype:
    if np.issubdtype(dtype, np.floating):
        return np.dtype(np.float64)
    if np.issubdtype(dtype, np.signedinteger):
        return np.dtype(np.int32 if dtype.itemsize <= 2 else np.int64)
    return np.dtype(np.uint32 if dtype.itemsize <= 2 else np.uint64)


def _mean2x2(a: np.ndarray) -> np.ndarray:
    """2x2 mean over the last two axes from four strided views (no window copies).

    Integers round half up, as ``(sum + 2) // 4``; the accumulator is only as wide as needed
    (uint32 for 8/16-bit data), which keeps temporaries small and the pass fast.
    """
    a = _pad_to(a, (1,) * (a.ndim - 2) + (2, 2))
    acc = _accumulator(a.dtype)
    total = a[..., ::2, ::2].astype(acc)
    total += a[..., 1::2, ::2]
    total += a[..., ::2, 1::2]
    total += a[..., 1::2, 1::2]
    if np.issubdtype(a.dtype, np.integer):
        total += 2
        total //= 4
        return total.astype(a.dtype)
    return (total / 4).astype(a.dtype)
