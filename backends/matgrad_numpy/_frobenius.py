"""``X / ‖X‖_F`` per matrix without overflow, underflow or big temporaries.

Streaming, blocked passes over the flattened ``(B, N)`` batch (NUMERICS §1):

1. Sum of squares per row in float64, pairwise (NumPy's ``sum`` of a block,
   then a pairwise sum of the block partials), so the error stays ~log(N)·eps.
2. float32/complex64: squares of float32 values cannot over- or underflow a
   float64 sum, so ``G = X / sqrt(s)`` in float64, rounded once.
   float64: rows with a finite ``s ≥ 1e-280`` take the same fast path; the
   rest (overflowed, tiny, zero or non-finite) are redone with a power-of-two
   scale ``2ᵏ ≈ max|x|``: ``G = (X·2⁻ᵏ) / ‖X·2⁻ᵏ‖``, never forming ``‖X‖``.
Temporaries are block-sized (``BLOCK`` elements) plus O(B) scalars.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from ._scaling import BLOCK, exponent_of_max, ldexp

__all__ = ["frobenius_grad"]

_FAST_MIN = 1e-280  # below this, squares of small entries may have underflowed

Selector = slice | np.ndarray


def _blocks(count: int, N: int) -> Iterator[tuple[slice, slice, int]]:
    """(rows, columns, chunk number) covering ``count × N`` in ≤ BLOCK pieces."""
    if N >= BLOCK:
        for r in range(count):
            for j, c0 in enumerate(range(0, N, BLOCK)):
                yield slice(r, r + 1), slice(c0, min(N, c0 + BLOCK)), j
    else:
        per = max(1, BLOCK // N)
        for r0 in range(0, count, per):
            yield slice(r0, min(count, r0 + per)), slice(0, N), 0


def _reduce_rows(
    X: np.ndarray,
    rows: np.ndarray | None,
    partial: Callable[[np.ndarray, slice], np.ndarray],
    combine: Callable[..., np.ndarray],
) -> np.ndarray:
    """Per-row reduction of ``X[rows]`` in blocks; ``partial(block, pos)``
    reduces one block along axis 1, ``combine`` merges the block partials."""
    count = X.shape[0] if rows is None else len(rows)
    N = X.shape[1]
    nchunks = -(-N // BLOCK) if N >= BLOCK else 1
    parts = np.empty((count, nchunks))
    for pos, cols, j in _blocks(count, N):
        sel: Selector = pos if rows is None else rows[pos]
        parts[pos, j] = partial(X[sel, cols], pos)
    out: np.ndarray = combine(parts, axis=1)
    return out


def _sum_squares(block: np.ndarray) -> np.ndarray:
    """Σ|x|² along axis 1, in float64, pairwise within the block."""
    if np.iscomplexobj(block):
        both: np.ndarray = _sum_squares(block.real) + _sum_squares(block.imag)
        return both
    s: np.ndarray = np.square(block, dtype=np.float64).sum(axis=1)
    return s


def _divide_into(
    out: np.ndarray, X: np.ndarray, norm: np.ndarray, rows: np.ndarray | None
) -> None:
    """``out[rows] = X[rows] / norm`` blockwise, in float64 arithmetic."""
    count, N = (X.shape[0] if rows is None else len(rows)), X.shape[1]
    wide = np.complex128 if np.iscomplexobj(X) else np.float64
    for pos, cols, _ in _blocks(count, N):
        sel: Selector = pos if rows is None else rows[pos]
        q = np.divide(X[sel, cols], norm[pos, None], dtype=wide)
        out[sel, cols] = q


def frobenius_grad(X: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        return _frobenius_grad(X)


def _frobenius_grad(X: np.ndarray) -> np.ndarray:
    B = X.shape[0]
    flat = X.reshape(B, -1)
    out = np.empty_like(flat)
    s = _reduce_rows(flat, None, lambda b, pos: _sum_squares(b), np.sum)
    if flat.real.dtype == np.float32:
        # Exact enough in float64; only zero and non-finite rows differ.
        norm = np.sqrt(s)
        norm[s == 0] = 1.0  # zero matrix → zero gradient
        norm[~np.isfinite(s)] = np.nan  # NaN/inf entry → NaN matrix
        _divide_into(out, flat, norm, None)
        return out.reshape(X.shape)
    fast = np.isfinite(s) & (s >= _FAST_MIN)
    norm = np.sqrt(np.where(fast, s, 1.0))
    _divide_into(out, flat, norm, None)
    if fast.all():
        return out.reshape(X.shape)
    rows = np.flatnonzero(~fast)
    _scaled_rows(out, flat, rows)
    return out.reshape(X.shape)


def _scaled_rows(out: np.ndarray, X: np.ndarray, rows: np.ndarray) -> None:
    """The slow, always-safe path for ``rows`` of a float64/complex128 batch."""
    absmax = _reduce_rows(X, rows, lambda b, pos: np.abs(b).max(axis=1), np.max)
    bad = ~np.isfinite(absmax)  # a NaN or inf entry: the whole matrix is NaN
    zero = absmax == 0
    k = exponent_of_max(absmax)
    t2 = _reduce_rows(
        X, rows, lambda b, pos: _sum_squares(ldexp(b, -k[pos, None])), np.sum
    )
    t = np.sqrt(t2)
    t[zero] = 1.0
    count, N = len(rows), X.shape[1]
    for pos, cols, _ in _blocks(count, N):
        sel = rows[pos]
        g = ldexp(X[sel, cols], -k[pos, None]) / t[pos, None]
        g[bad[pos]] = np.nan
        out[sel, cols] = g
