"""Frobenius gradient kernels (NUMERICS §1) over (row, chunk) work items.

Work is split into chunks of ``CHUNK`` elements of each flattened matrix, so
one 4096² matrix and 200 000 small ones both spread over every thread.
Pass 1: pairwise sum of squares per chunk (float64 accumulation, 8 lanes per
128-element leaf); chunk partials are summed pairwise per row.  Rows whose
sum is finite and ≥ 1e-280 are divided by ``sqrt(s)``; the rare rest get a
power-of-two scale ``2ᵏ ≈ max|x|`` (passes 2-3), so ``‖X‖`` is never formed
unscaled.  No temporaries beyond the output and O(rows·chunks) partials.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba import prange

from ._scalar import abs2, mul_pow2

__all__ = ["CHUNK", "frobenius_grad"]

CHUNK = 1 << 14
_FAST_MIN = 1e-280
_FAST, _SCALED, _ZERO, _NAN = 0, 1, 2, 3


@nb.njit(cache=True)
def _sumsq(x, a, b):  # type: ignore[no-untyped-def]
    """Σ|x[a:b]|² in float64, pairwise (error ~ log2(b−a)·eps)."""
    n = b - a
    if n <= 128:
        s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
        i = a
        while i + 8 <= b:
            s0 += abs2(x[i])
            s1 += abs2(x[i + 1])
            s2 += abs2(x[i + 2])
            s3 += abs2(x[i + 3])
            s4 += abs2(x[i + 4])
            s5 += abs2(x[i + 5])
            s6 += abs2(x[i + 6])
            s7 += abs2(x[i + 7])
            i += 8
        t = 0.0
        while i < b:
            t += abs2(x[i])
            i += 1
        return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)) + t
    half = (n // 2) // 8 * 8
    return _sumsq(x, a, a + half) + _sumsq(x, a + half, b)


_SKIP, _SUMSQ, _ABSMAX, _SCALED_SUMSQ = 0, 1, 2, 3


@nb.njit(parallel=True, cache=True)
def _partials(X, action, kexp):  # type: ignore[no-untyped-def]
    """Per (row, chunk) partial results of one pass; ``action[b]`` says which:
    sum of squares, max|x| (NaN-propagating), or Σ|x·2⁻ᵏ|²."""
    B, N = X.shape
    nc = (N + CHUNK - 1) // CHUNK
    out = np.zeros((B, nc))
    for t in prange(B * nc):
        b = t // nc
        c = t - b * nc
        a = c * CHUNK
        e = min(N, a + CHUNK)
        act = action[b]
        if act == _SUMSQ:
            out[b, c] = _sumsq(X[b], a, e)
        elif act == _ABSMAX:
            m = 0.0
            for i in range(a, e):
                v = abs(X[b, i])
                if not v <= m:  # NaN propagates
                    m = v
            out[b, c] = m
        elif act == _SCALED_SUMSQ:
            s = 0.0
            k = kexp[b]
            for i in range(a, e):
                s += abs2(mul_pow2(X[b, i], -k))
            out[b, c] = s
    return out


@nb.njit(parallel=True, cache=True)
def _write(X, out, mode, norm, kexp):  # type: ignore[no-untyped-def]
    B, N = X.shape
    nc = (N + CHUNK - 1) // CHUNK
    for t in prange(B * nc):
        b = t // nc
        c = t - b * nc
        a = c * CHUNK
        e = min(N, a + CHUNK)
        m = mode[b]
        if m == _FAST:
            d = norm[b]
            for i in range(a, e):
                out[b, i] = X[b, i] / d  # float32 input: divided in float64
        elif m == _SCALED:
            d = norm[b]
            k = kexp[b]
            for i in range(a, e):
                out[b, i] = mul_pow2(X[b, i], -k) / d
        elif m == _ZERO:
            for i in range(a, e):
                out[b, i] = 0
        else:
            for i in range(a, e):
                out[b, i] = np.nan


def frobenius_grad(X: np.ndarray) -> np.ndarray:
    B = X.shape[0]
    flat = X.reshape(B, -1)
    kexp = np.zeros(B, dtype=np.int64)
    s = _partials(flat, np.full(B, _SUMSQ, np.int8), kexp).sum(axis=1)  # pairwise
    single = flat.real.dtype == np.float32  # float64 sums of float32 squares are safe
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(s)
        fast = finite & (s > 0) if single else finite & (s >= _FAST_MIN)
    mode = np.where(fast, _FAST, _ZERO).astype(np.int8)
    norm = np.sqrt(np.where(fast, s, 1.0))
    if single:
        mode[~finite] = _NAN
    elif not fast.all():
        slow = ~fast
        absmax = _partials(flat, np.where(slow, _ABSMAX, _SKIP).astype(np.int8), kexp)
        absmax = absmax.max(axis=1)
        with np.errstate(invalid="ignore"):
            scaled = slow & np.isfinite(absmax) & (absmax > 0)
        mode[slow & ~np.isfinite(absmax)] = _NAN
        mode[scaled] = _SCALED
        kexp[scaled] = np.frexp(absmax[scaled])[1]
        t2 = _partials(flat, np.where(scaled, _SCALED_SUMSQ, _SKIP).astype(np.int8), kexp)
        norm[scaled] = np.sqrt(t2[scaled].sum(axis=1))
    out = np.empty_like(flat)
    _write(flat, out, mode, norm, kexp)
    return out.reshape(X.shape)


@nb.njit(parallel=True, cache=True)
def bilinear_grad_into(x, y, out):  # type: ignore[no-untyped-def]
    B, m = x.shape
    n = y.shape[1]
    for t in prange(B * m):
        b = t // m
        i = t - b * m
        xi = x[b, i]
        for j in range(n):
            out[b, i, j] = xi * y[b, j]


