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
``_runtime.launch``.  :func:`frobenius_norm_grad` also returns
``‖X‖_F`` from the very sums ``G`` is divided by.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from matgrad import config
from matgrad.kernels import routing
from matgrad.kernels.codes import ABSMAX, FAST, SCALED, SCALED_SUMSQ, SUMSQ, ZERO
from matgrad.kernels.frobenius import FAST_MIN, real_rows

from ._runtime import launch

__all__ = ["bilinear_grad_into", "frobenius_grad", "frobenius_norm_grad"]


@nb.njit(inline="always")
def _leaf(X, r, a, b, f1, f2):  # type: ignore[no-untyped-def]
    """Σ (X[r, a:b]·f1·f2)² in float64 for b − a ≤ 128: 8 lanes, NumPy's leaf.
    ``f1 = f2 = 1`` gives the plain sum of squares (multiplying by 1 is
    exact, and the compiler drops it).  Inlined, and indexing the 2-D array:
    no row view per call (a view costs a reference-count update, more than a
    short row's sum)."""
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    i = a
    while i + 8 <= b:
        v0 = X[r, i] * f1 * f2
        v1 = X[r, i + 1] * f1 * f2
        v2 = X[r, i + 2] * f1 * f2
        v3 = X[r, i + 3] * f1 * f2
        v4 = X[r, i + 4] * f1 * f2
        v5 = X[r, i + 5] * f1 * f2
        v6 = X[r, i + 6] * f1 * f2
        v7 = X[r, i + 7] * f1 * f2
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
        v = X[r, i] * f1 * f2
        t += v * v
        i += 1
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)) + t


# The helpers below are not cached themselves: they are compiled into the
# cached code of the kernels calling them, and two warm-up worker processes
# (different kernels, one helper) must never write one cache index at once.
@nb.njit
def _pairwise(X, r, a, b, f1, f2):  # type: ignore[no-untyped-def]
    """Pairwise sum of squares of ``X[r, a:b]·f1·f2``: halves of
    ``(n // 2) // 8 · 8`` elements down to leaves of at most 128, summed
    ``left + right`` (error ~ log2(b − a)·eps).  Written
    with an explicit stack, not recursion: a cached kernel calling a
    recursive function crashed when loaded from Numba's on-disk cache in a
    new process (Numba 0.68)."""
    if b - a <= 128:
        return _leaf(X, r, a, b, f1, f2)
    los = np.empty(192, dtype=np.int64)  # pending ranges; depth ≤ 64
    his = np.empty(192, dtype=np.int64)
    combine = np.empty(192, dtype=np.bool_)
    acc = np.empty(96)  # sums of finished ranges, innermost last
    los[0], his[0], combine[0] = a, b, False
    sp = 1
    ap = 0
    while sp > 0:
        sp -= 1
        lo = los[sp]
        hi = his[sp]
        if combine[sp]:  # both halves done: left + right
            acc[ap - 2] = acc[ap - 2] + acc[ap - 1]
            ap -= 1
        elif hi - lo <= 128:
            acc[ap] = _leaf(X, r, lo, hi, f1, f2)
            ap += 1
        else:
            half = ((hi - lo) // 2) // 8 * 8
            los[sp], his[sp], combine[sp] = lo, hi, True
            los[sp + 1], his[sp + 1], combine[sp + 1] = lo + half, hi, False
            los[sp + 2], his[sp + 2], combine[sp + 2] = lo, lo + half, False
            sp += 3
    return acc[0]


@nb.njit(inline="always")
def _sumsq(X, r, a, b):  # type: ignore[no-untyped-def]
    """Σ X[r, a:b]² in float64, pairwise (see :func:`_pairwise`)."""
    if b - a <= 128:
        return _leaf(X, r, a, b, 1.0, 1.0)
    return _pairwise(X, r, a, b, 1.0, 1.0)


@nb.njit(inline="always")
def _sumsq_scaled(X, r, a, b, f1, f2):  # type: ignore[no-untyped-def]
    """Σ (X[r, a:b]·f1·f2)², with f1·f2 = 2⁻ᵏ split so each product is exact (or,
    for a subnormal result, rounded once).  The very summation order of
    ``_sumsq``, so that a scaled row sums to exactly 2⁻²ᵏ times what the fast
    path would (power-of-two scaling of the input changes no bit)."""
    if b - a <= 128:
        return _leaf(X, r, a, b, f1, f2)
    return _pairwise(X, r, a, b, f1, f2)


@nb.njit
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


@nb.njit(nogil=True, cache=True)
def _partials(X, action, f1, f2, chunk, out, lo, hi):  # type: ignore[no-untyped-def]
    """Per (row, chunk) partial results ``out (B, chunks)`` of one pass over
    the real ``(B, L)`` batch, for the pieces ``lo ≤ b·chunks + c < hi``;
    ``action[b]`` says which: Σx², max|x| or Σ(x·f1·f2)² (else 0)."""
    N = X.shape[1]
    nc = out.shape[1]
    for t in range(lo, hi):
        b = t // nc
        c = t - b * nc
        a = c * chunk
        e = min(N, a + chunk)
        act = action[b]
        if act == SUMSQ:
            out[b, c] = _sumsq(X, b, a, e)
        elif act == ABSMAX:
            out[b, c] = _absmax(X[b], a, e)
        elif act == SCALED_SUMSQ:
            out[b, c] = _sumsq_scaled(X, b, a, e, f1[b], f2[b])
        else:
            out[b, c] = 0.0


@nb.njit(nogil=True, cache=True)
def _write(X, out, mode, norm, f1, f2, chunk, lo, hi):  # type: ignore[no-untyped-def]
    """``out = X / norm`` by each row's ``mode``, for the (row, chunk) pieces
    ``lo ≤ b·chunks + c < hi``."""
    N = X.shape[1]
    nc = (N + chunk - 1) // chunk
    for t in range(lo, hi):
        b = t // nc
        c = t - b * nc
        a = c * chunk
        e = min(N, a + chunk)
        # slices indexed from 0: loops whose index is provably ≥ 0 vectorise
        # (over range(a, e), Numba's negative-index check on every access
        # kept LLVM from it: 3.5x slower)
        x = X[b, a:e]
        o = out[b, a:e]
        m = mode[b]
        if m == FAST:
            d = norm[b]
            for i in range(x.shape[0]):
                o[i] = np.float64(x[i]) / d  # float32 input: divided in float64
        elif m == SCALED:
            d = norm[b]
            g1 = f1[b]
            g2 = f2[b]
            for i in range(x.shape[0]):
                o[i] = (x[i] * g1 * g2) / d
        elif m == ZERO:
            for i in range(x.shape[0]):
                o[i] = x[i]  # zeros, each keeping its sign
        else:
            for i in range(x.shape[0]):
                o[i] = np.nan


@nb.njit(nogil=True, cache=True)
def _rows(X, out, value, single, lo, hi):  # type: ignore[no-untyped-def]
    """Both passes for the rows ``lo ≤ b < hi`` of a real ``(B, L)`` batch
    whose rows fit one chunk (``L ≤ config.frobenius_chunk``): each row is
    read while it is still in cache.  Every step is the two-pass path's, in
    the same order with the same operations (one chunk's partial is the row's
    sum), so each row's ``value`` (‖X‖_F, float64) and ``out`` are
    bit-identical to what :func:`matgrad.kernels.routing.frobenius_norm_grad`
    computes from ``_partials`` and ``_write``.  ``single``: ``X`` is
    float32 (whose float64 sums of squares neither over- nor underflow)."""
    N = X.shape[1]
    for b in range(lo, hi):
        s = _sumsq(X, b, 0, N)
        finite = s - s == 0.0
        if finite and (s > 0.0 if single else s >= FAST_MIN):
            d = math.sqrt(s)
            value[b] = d
            for i in range(N):
                out[b, i] = np.float64(X[b, i]) / d
            continue
        if single:
            m = s if finite else math.nan
        else:
            m = _absmax(X[b], 0, N)
        if not (m - m == 0.0):  # NaN or inf: NaN everywhere, NaN wins the value
            value[b] = s if single else m
            for i in range(N):
                out[b, i] = np.nan
        elif m == 0.0:  # zeros keep their signs
            value[b] = 0.0
            for i in range(N):
                out[b, i] = X[b, i]
        else:
            k = math.frexp(m)[1]
            if -k > 1023:  # scaling.pow2_factors
                g1 = 2.0**1000
                g2 = math.ldexp(1.0, -k - 1000)
            else:
                g1 = math.ldexp(1.0, -k)
                g2 = 1.0
            d = math.sqrt(_sumsq_scaled(X, b, 0, N, g1, g2))
            value[b] = math.ldexp(d, k)
            for i in range(N):
                out[b, i] = (X[b, i] * g1 * g2) / d


def _reduce(flat: np.ndarray, kind: int, action: np.ndarray, f1: np.ndarray,
            f2: np.ndarray) -> np.ndarray:
    """One pass (see ``routing.Reduce``): chunk partials, combined per row by
    NumPy's pairwise sum (the same for a row whatever the other rows are), or
    by a NaN-propagating maximum."""
    chunk = config.frobenius_chunk
    B, N = flat.shape
    parts = np.empty((B, -(-N // chunk)))
    launch(_partials, parts.size, flat.size, flat, action, f1, f2, chunk, parts)
    if kind == ABSMAX:
        with np.errstate(invalid="ignore"):
            out: np.ndarray = np.where(np.isnan(parts).any(axis=1), np.nan, parts.max(axis=1))
        return out
    s: np.ndarray = parts.sum(axis=1)
    return s


def _write_rows(flat: np.ndarray, res: np.ndarray, mode: np.ndarray, norm: np.ndarray,
                f1: np.ndarray, f2: np.ndarray) -> None:
    chunk = config.frobenius_chunk
    B, N = flat.shape
    launch(_write, B * -(-N // chunk), flat.size, flat, res, mode, norm, f1, f2, chunk)


def frobenius_grad(X: np.ndarray) -> np.ndarray:
    return frobenius_norm_grad(X)[1]


def frobenius_norm_grad(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(‖X‖_F in float64, X/‖X‖_F)`` (see :func:`routing.frobenius_norm_grad`):
    rows that fit one chunk in one kernel (``_rows``, the same arithmetic),
    longer ones by the passes of ``routing``."""
    B = X.shape[0]
    row = X.size // B * (2 if X.dtype.kind == "c" else 1) if B else 0  # reals per row
    if X.size == 0 or row > config.frobenius_chunk:
        return routing.frobenius_norm_grad(X, _reduce, _write_rows)
    out, flat, res = real_rows(X)
    value = np.empty(B)
    launch(_rows, B, flat.size, flat, res, value, flat.dtype == np.float32)
    return value, out


@nb.njit(nogil=True, cache=True)
def bilinear_grad_into(x, y, out, lo, hi):  # type: ignore[no-untyped-def]
    """``out[b, i, :] = x[b, i]·y[b, :]`` for the rows ``lo ≤ b·m + i < hi``."""
    m = x.shape[1]
    n = y.shape[1]
    for t in range(lo, hi):
        b = t // m
        i = t - b * m
        xi = x[b, i]
        for j in range(n):
            out[b, i, j] = xi * y[b, j]
