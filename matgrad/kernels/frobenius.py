"""``X / ‖X‖_F`` per matrix without overflow, underflow or big temporaries, on the host.

The NumPy backend's algorithm.  The kernel backends take the same decisions
per row with their own reduction kernels (:func:`matgrad.kernels.routing.frobenius_norm_grad`).

A complex batch is processed through its real view (``re, im, re, im, …``):
``‖X‖² = Σ re² + im²``, the scale comes from ``max(|re|, |im|)`` (``|z|`` itself
may exceed the largest float while both parts are finite), and each part is
divided by a real norm separately, so every rounding and the sign of every
zero are those of a real computation.

Streaming, blocked passes over the flattened real ``(B, L)`` batch:

1. Sum of squares per row in float64, pairwise (NumPy's ``sum`` of a block,
   then a pairwise sum of the block partials), so the error stays ~log(L)·eps.
2. float32/complex64: squares of float32 values cannot over- or underflow a
   float64 sum, so ``G = X / sqrt(s)`` in float64, rounded once.
   float64: rows with a finite ``s ≥ 1e-280`` take the same fast path; the
   rest are redone: ``m = max|x|``; NaN or inf → all NaN; ``m = 0`` → ``G = X``
   (zeros, signs kept); else a power-of-two scale ``2ᵏ ≈ m`` and
   ``G = (X·2⁻ᵏ) / ‖X·2⁻ᵏ‖``, never forming ``‖X‖``.

Every decision is per row, from that row's values alone, and a row's sums
do not depend on the other rows, so a slot's result is the same in any batch.
Temporaries are block-sized (``matgrad.config.scaling_block`` elements) plus
O(B) scalars.

:func:`frobenius_value_grad` returns ``‖X‖_F`` from the very sums that
``G`` is divided by: ``sqrt(s)`` on the fast path, ``2ᵏ·sqrt(Σ(x·2⁻ᵏ)²)`` on
the slow one, 0 for a zero matrix, inf for an infinite entry, NaN for a NaN.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .._config import config
from .scaling import Arr, exponent_of_max, ldexp, namespace

__all__ = ["FAST_MIN", "frobenius_grad", "frobenius_value_grad", "real_rows"]

#: float64 sums of squares below this may have lost small entries to underflow:
#: such rows take the scaled path.
FAST_MIN = 1e-280

Selector = slice | np.ndarray


def _blocks(count: int, N: int) -> Iterator[tuple[slice, slice, int]]:
    """(rows, columns, chunk number) covering ``count × N`` in pieces of at most
    ``matgrad.config.scaling_block`` elements."""
    if N >= config.scaling_block:
        for r in range(count):
            for j, c0 in enumerate(range(0, N, config.scaling_block)):
                yield slice(r, r + 1), slice(c0, min(N, c0 + config.scaling_block)), j
    else:
        per = max(1, config.scaling_block // N)
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
    nchunks = -(-N // config.scaling_block) if N >= config.scaling_block else 1
    parts = np.empty((count, nchunks))
    for pos, cols, j in _blocks(count, N):
        sel: Selector = pos if rows is None else rows[pos]
        parts[pos, j] = partial(X[sel, cols], pos)
    out: np.ndarray = combine(parts, axis=1)
    return out


def _sum_squares(block: np.ndarray) -> np.ndarray:
    """Σ x² along axis 1 of a real block, in float64, pairwise."""
    s: np.ndarray = np.square(block, dtype=np.float64).sum(axis=1)
    return s


def _abs_max(block: np.ndarray) -> np.ndarray:
    """max |x| along axis 1 (NaN propagates), in float64."""
    m: np.ndarray = np.abs(block).max(axis=1).astype(np.float64)
    return m


def frobenius_grad(X: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        return _frobenius_grad(X)[1]


def frobenius_value_grad(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(‖X‖_F, X/‖X‖_F)`` from one pass; the norm in ``X``'s real dtype."""
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        norm, G = _frobenius_grad(X)
        rdt = np.empty(0, X.dtype).real.dtype
        return norm.astype(rdt), G


#: dtype of the real and imaginary parts, by dtype character.
_REAL_PART = {"f": np.dtype(np.float32), "d": np.dtype(np.float64),
              "F": np.dtype(np.float32), "D": np.dtype(np.float64)}


def real_rows(X: Arr) -> tuple[Arr, Arr, Arr]:
    """``(out, flat, res)`` for a nonempty batch ``X (B, m, n)`` (NumPy or
    CuPy): an empty result like ``X``, and the real ``(B, L)`` views of ``X``
    (made contiguous) and of that result, a complex entry being two reals
    (``re, im, re, …``)."""
    xp = namespace(X)
    a: Any = X
    B = a.shape[0]
    out = xp.empty(a.shape, dtype=a.dtype)
    rdt = _REAL_PART[a.dtype.char]
    flat = xp.ascontiguousarray(a).reshape(B, -1).view(rdt)
    return out, flat, out.reshape(B, -1).view(rdt)


def _frobenius_grad(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(‖X‖_F in float64, G)``."""
    if X.size == 0:
        return np.zeros(X.shape[0]), np.empty(X.shape, dtype=X.dtype)
    out, flat, res = real_rows(X)
    rdt = flat.dtype
    s = _reduce_rows(flat, None, lambda b, pos: _sum_squares(b), np.sum)
    if rdt == np.float32:
        # Exact enough in float64; only zero and non-finite rows differ.
        fast = np.isfinite(s) & (s > 0)
    else:
        fast = np.isfinite(s) & (s >= FAST_MIN)
    norm = np.sqrt(np.where(fast, s, 1.0))
    _divide_into(res, flat, norm)
    if not fast.all():
        slow = np.flatnonzero(~fast)
        norm[slow] = _slow_rows(res, flat, slow, s if rdt == np.float32 else None)
    return norm, out


def _divide_into(out: np.ndarray, X: np.ndarray, norm: np.ndarray) -> None:
    """``out = X / norm`` (one norm per row) blockwise, in float64 arithmetic."""
    for pos, cols, _ in _blocks(X.shape[0], X.shape[1]):
        out[pos, cols] = np.divide(X[pos, cols], norm[pos, None], dtype=np.float64)


def _slow_rows(out: np.ndarray, X: np.ndarray, rows: np.ndarray,
               s: np.ndarray | None) -> np.ndarray:
    """The always-safe path for ``rows``; ``s`` (float32 input only) is their
    exact-enough sum of squares, which settles zero and non-finite rows.
    Returns the rows' norms: ``2ᵏ·t``, 0, inf (an infinite entry) or NaN."""
    if s is not None:
        absmax = np.where(np.isfinite(s[rows]), s[rows], np.nan)
    else:
        absmax = _reduce_rows(X, rows, lambda b, pos: _abs_max(b), np.max)
    bad = ~np.isfinite(absmax)  # a NaN or inf entry: the whole matrix is NaN
    zero = absmax == 0  # zeros, each keeping its sign: G = X
    k = exponent_of_max(np.where(zero | bad, 0.0, absmax))
    if s is None:
        t2 = _reduce_rows(X, rows, lambda b, pos: _sum_squares(ldexp(b, -k[pos, None])), np.sum)
        t = np.where(zero | bad, 1.0, np.sqrt(t2))
    else:
        t = np.ones(len(rows))
    count, N = len(rows), X.shape[1]
    for pos, cols, _ in _blocks(count, N):
        sel = rows[pos]
        g = np.divide(ldexp(X[sel, cols], -k[pos, None]), t[pos, None], dtype=np.float64)
        g[bad[pos]] = np.nan
        out[sel, cols] = g
    # NaN beats inf: the sums and maxima propagate NaN; an inf entry alone
    # gives an infinite sum or maximum
    nonfinite = absmax if s is None else s[rows]
    norm: np.ndarray = np.where(bad, nonfinite, np.where(zero, 0.0, ldexp(t, k)))
    return norm
