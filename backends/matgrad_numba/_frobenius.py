"""Frobenius gradient kernels over (row, chunk) work items.

A complex batch is processed through its real view (``re, im, re, im, …``):
``‖X‖² = Σ re² + im²``, the scale comes from ``max(|re|, |im|)`` (``|z|`` itself
may exceed the largest float while both parts are finite), and each part is
divided separately, so every rounding, and the sign of every zero, is that of
a real computation.

Work is split into chunks of ``matgrad.config.frobenius_chunk`` elements of each flattened row (read
at call time, so tests can shrink it), so one
4096² matrix and 200 000 small ones both spread over every thread.  Everything
is decided per row (slot) from that row's own values, so a slot's result does
not depend on its neighbours, the batch size or the thread count:

* pass 1: pairwise sum of squares per chunk in float64 (8 lanes per
  128-element leaf), chunk partials summed per row;
* float32/complex64 (squares cannot over- or underflow a float64 sum):
  ``G = X / sqrt(s)`` in float64, rounded once; float64: the same when ``s`` is
  finite and ≥ 1e-280;
* the rare rest: ``m = max|x|`` (NaN-propagating); NaN or inf → all NaN;
  ``m = 0`` → ``G = X`` (zeros, signs kept); else a power-of-two ``2ᵏ ≈ m``
  and ``G = (X·2⁻ᵏ) / sqrt(Σ(x·2⁻ᵏ)²)``, so ``‖X‖`` is never formed unscaled.

No temporaries beyond the output and O(rows·chunks) partials.  The
decisions between the passes are :func:`matgrad.kernels.routing.frobenius_norm_grad`'s;
this module supplies the passes, each kernel launched through
``_runtime.parallel_call``.  :func:`frobenius_norm_grad` also returns
``‖X‖_F`` from the very sums ``G`` is divided by.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba import prange

from matgrad import config
from matgrad.kernels import routing
from matgrad.kernels.codes import ABSMAX, FAST, SCALED, SCALED_SUMSQ, SUMSQ, ZERO

from ._runtime import parallel_call

__all__ = ["bilinear_grad_into", "frobenius_grad", "frobenius_norm_grad"]



@nb.njit(cache=True)
def _sumsq(x, a, b):  # type: ignore[no-untyped-def]
    """Σ x[a:b]² in float64, pairwise (error ~ log2(b−a)·eps)."""
    n = b - a
    if n <= 128:
        s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
        i = a
        while i + 8 <= b:
            v0 = np.float64(x[i])
            v1 = np.float64(x[i + 1])
            v2 = np.float64(x[i + 2])
            v3 = np.float64(x[i + 3])
            v4 = np.float64(x[i + 4])
            v5 = np.float64(x[i + 5])
            v6 = np.float64(x[i + 6])
            v7 = np.float64(x[i + 7])
            s0 += v0 * v0
            s1 += v1 * v1
            s2 += v2 * v2
            s3 += v3 * v3
            s4 += v4 * v4
            s5 += v5 * v5
            s6 += v6 * v6
            s7 += v7 * v7
            i += 8
        t = 0.0
        while i < b:
            v = np.float64(x[i])
            t += v * v
            i += 1
        return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)) + t
    half = (n // 2) // 8 * 8
    return _sumsq(x, a, a + half) + _sumsq(x, a + half, b)


@nb.njit(cache=True)
def _sumsq_scaled(x, a, b, f1, f2):  # type: ignore[no-untyped-def]
    """Σ (x[a:b]·f1·f2)², with f1·f2 = 2⁻ᵏ split so each product is exact (or,
    for a subnormal result, rounded once).  The very summation order of
    ``_sumsq``, so that a scaled row sums to exactly 2⁻²ᵏ times what the fast
    path would (power-of-two scaling of the input changes no bit)."""
    n = b - a
    if n <= 128:
        s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
        i = a
        while i + 8 <= b:
            v0 = x[i] * f1 * f2
            v1 = x[i + 1] * f1 * f2
            v2 = x[i + 2] * f1 * f2
            v3 = x[i + 3] * f1 * f2
            v4 = x[i + 4] * f1 * f2
            v5 = x[i + 5] * f1 * f2
            v6 = x[i + 6] * f1 * f2
            v7 = x[i + 7] * f1 * f2
            s0 += v0 * v0
            s1 += v1 * v1
            s2 += v2 * v2
            s3 += v3 * v3
            s4 += v4 * v4
            s5 += v5 * v5
            s6 += v6 * v6
            s7 += v7 * v7
            i += 8
        t = 0.0
        while i < b:
            v = x[i] * f1 * f2
            t += v * v
            i += 1
        return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)) + t
    half = (n // 2) // 8 * 8
    return _sumsq_scaled(x, a, a + half, f1, f2) + _sumsq_scaled(x, a + half, b, f1, f2)


@nb.njit(cache=True)
def _absmax(x, a, b):  # type: ignore[no-untyped-def]
    """max |x[a:b]|, NaN if any entry is NaN."""
    m = 0.0
    for i in range(a, b):
        v = abs(np.float64(x[i]))
        if v > m:
            m = v
        elif v != v:
            return v
    return m


@nb.njit(parallel=True, cache=True)
def _partials(X, action, f1, f2, chunk):  # type: ignore[no-untyped-def]
    """Per (row, chunk) partial results of one pass over the real ``(B, L)``
    batch; ``action[b]`` says which: Σx², max|x| or Σ(x·f1·f2)²."""
    B, N = X.shape
    nc = (N + chunk - 1) // chunk
    out = np.zeros((B, nc))
    for t in prange(B * nc):
        b = t // nc
        c = t - b * nc
        a = c * chunk
        e = min(N, a + chunk)
        act = action[b]
        if act == SUMSQ:
            out[b, c] = _sumsq(X[b], a, e)
        elif act == ABSMAX:
            out[b, c] = _absmax(X[b], a, e)
        elif act == SCALED_SUMSQ:
            out[b, c] = _sumsq_scaled(X[b], a, e, f1[b], f2[b])
    return out


@nb.njit(parallel=True, cache=True)
def _write(X, out, mode, norm, f1, f2, chunk):  # type: ignore[no-untyped-def]
    B, N = X.shape
    nc = (N + chunk - 1) // chunk
    for t in prange(B * nc):
        b = t // nc
        c = t - b * nc
        a = c * chunk
        e = min(N, a + chunk)
        m = mode[b]
        if m == FAST:
            d = norm[b]
            for i in range(a, e):
                out[b, i] = np.float64(X[b, i]) / d  # float32 input: divided in float64
        elif m == SCALED:
            d = norm[b]
            g1 = f1[b]
            g2 = f2[b]
            for i in range(a, e):
                out[b, i] = (X[b, i] * g1 * g2) / d
        elif m == ZERO:
            for i in range(a, e):
                out[b, i] = X[b, i]  # zeros, each keeping its sign
        else:
            for i in range(a, e):
                out[b, i] = np.nan


def _reduce(flat: np.ndarray, kind: int, action: np.ndarray, f1: np.ndarray,
            f2: np.ndarray) -> np.ndarray:
    """One pass (see ``routing.Reduce``): chunk partials, combined per row by
    NumPy's pairwise sum (the same for a row whatever the other rows are), or
    by a NaN-propagating maximum."""
    parts: np.ndarray = parallel_call(_partials, flat, action, f1, f2, config.frobenius_chunk)
    if kind == ABSMAX:
        with np.errstate(invalid="ignore"):
            out: np.ndarray = np.where(np.isnan(parts).any(axis=1), np.nan, parts.max(axis=1))
        return out
    s: np.ndarray = parts.sum(axis=1)
    return s


def _write_rows(flat: np.ndarray, res: np.ndarray, mode: np.ndarray, norm: np.ndarray,
                f1: np.ndarray, f2: np.ndarray) -> None:
    parallel_call(_write, flat, res, mode, norm, f1, f2, config.frobenius_chunk)


def frobenius_grad(X: np.ndarray) -> np.ndarray:
    return frobenius_norm_grad(X)[1]


def frobenius_norm_grad(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(‖X‖_F in float64, X/‖X‖_F)`` (see :func:`routing.frobenius_norm_grad`)."""
    return routing.frobenius_norm_grad(X, _reduce, _write_rows)


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
