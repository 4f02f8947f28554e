"""Array-level routing of the kernel backends (Numba CPU, CUDA), written once.

A kernel backend computes a batch with per-matrix (or per-row) kernels, and
around them array code decides which path each slot takes: the closed form
or the elimination by ``n``, the host for large ``n``, the rare slots a
kernel hands back to the host, the passes of the Frobenius gradient.  That
array code is the same for every kernel backend, so it is written here,
generic over the array namespace of its input (NumPy, or CuPy on a GPU),
and each backend passes in its launch functions: how a kernel is launched
(threads, streams, chunking) and how data reaches the host is all it keeps.
Every decision is per slot, from that slot alone.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from . import cofactor
from .codes import (
    ABSMAX,
    FALLBACK,
    FAST,
    NAN,
    NONFINITE,
    SCALED,
    SCALED_SUMSQ,
    SKIP,
    SUMSQ,
    ZERO,
)
from .frobenius import FAST_MIN, real_rows
from .scaling import Arr, namespace, narrow, pow2_factors, widen

__all__ = ["det_grad", "frobenius_norm_grad", "logdet_grad"]

#: ``reduce(flat, kind, action, f1, f2)``: one pass over the real ``(B, L)``
#: rows ``flat``, row ``b`` reduced by ``action[b]`` (``kind`` or SKIP):
#: Σx², max|x| (NaN-propagating) or Σ(x·f1·f2)²; returns one float64 per row
#: (any value for a skipped row).
Reduce = Callable[[Any, int, Any, Any, Any], Any]
#: ``write(flat, res, mode, norm, f1, f2)``: writes every row of ``res`` by
#: its ``mode`` (FAST, SCALED, ZERO, NAN) from ``flat``, ``norm`` and the
#: factors ``f1·f2 = 2⁻ᵏ``.
Write = Callable[[Any, Any, Any, Any, Any, Any], None]
#: ``host(fn, A)``: ``fn`` (a host algorithm of :mod:`matgrad.kernels.cofactor`)
#: applied to ``A``, with the transfers to and from the host this needs.
Host = Callable[[Callable[[np.ndarray], np.ndarray], Any], Any]
#: ``eliminate(A, inverse)``: the per-matrix Gauss-Jordan kernel (with the
#: guarded 4×4 closed form for cofactors) over the batch, in the wide dtype:
#: ``(cofactors or A⁻ᵀ, status per slot)``.
Eliminate = Callable[[Any, bool], tuple[Any, Any]]


# ----------------------------------------------------------------- Frobenius
def frobenius_norm_grad(X: Arr, reduce: Reduce, write: Write) -> tuple[Arr, Arr]:
    """``(‖X‖_F in float64, X/‖X‖_F)`` per slot of ``X (B, m, n)``.

    A complex batch is processed through its real view (``re, im, re, …``).
    Pass 1: Σx² per row in float64.  float32/complex64 (whose squares cannot
    over- or underflow a float64 sum), and float64 where that sum is finite
    and ≥ ``FAST_MIN``: ``G = X / sqrt(s)`` in float64, rounded once.  The
    rest: ``m = max|x|`` (pass 2; for float32 the sum already tells); NaN or
    inf → NaN everywhere; ``m = 0`` → ``G = X`` (zeros keep their signs);
    else ``2ᵏ ≈ m`` and ``G = (X·2⁻ᵏ) / sqrt(Σ(x·2⁻ᵏ)²)`` (pass 3), never
    forming ``‖X‖`` unscaled.  The norm: ``sqrt(s)``, ``2ᵏ·sqrt(Σ(x·2⁻ᵏ)²)``,
    0 for a zero matrix, inf for an infinite entry and NaN for a NaN (which
    wins).
    """
    xp = namespace(X)
    a: Any = X
    B = a.shape[0]
    if a.size == 0:
        return xp.zeros(B), xp.empty(a.shape, dtype=a.dtype)
    out, flat, res = real_rows(a)
    ones = xp.ones(B)

    def run(kind: int, rows: Any, f1: Any, f2: Any) -> Any:
        """One pass of ``kind`` over ``rows`` (a mask, or None: every row)."""
        if rows is None:
            action = xp.full(B, kind, dtype=np.int8)
        else:
            action = xp.where(rows, kind, SKIP).astype(np.int8)
        return reduce(flat, kind, action, f1, f2)

    s = run(SUMSQ, None, ones, ones)
    single = flat.dtype == np.float32  # float64 sums of float32 squares neither over- nor underflow
    with np.errstate(invalid="ignore"):
        finite = xp.isfinite(s)
        fast = finite & (s > 0) if single else finite & (s >= FAST_MIN)
    mode = xp.full(B, FAST, dtype=np.int8)
    norm = xp.sqrt(xp.where(fast, s, 1.0))
    value = norm
    f1, f2 = ones, ones
    if not bool(fast.all()):
        slow = ~fast
        # only the zero / non-finite test matters for float32
        absmax = xp.where(finite, s, xp.nan) if single else run(ABSMAX, slow, ones, ones)
        with np.errstate(invalid="ignore"):
            bad = slow & ~xp.isfinite(absmax)
            zero = slow & (absmax == 0)
        scaled = slow & ~bad & ~zero
        mode[bad] = NAN
        mode[zero] = ZERO
        if bool(scaled.any()):
            mode[scaled] = SCALED
            k = xp.where(scaled, xp.frexp(xp.where(scaled, absmax, 1.0))[1].astype(np.int64), 0)
            f1, f2 = pow2_factors(k)
            t2 = run(SCALED_SUMSQ, scaled, f1, f2)
            norm = xp.where(scaled, xp.sqrt(xp.where(scaled, t2, 1.0)), norm)
            with np.errstate(over="ignore"):  # a true overflow of ‖X‖_F: inf
                value = xp.where(scaled, xp.ldexp(norm, k), norm)
        with np.errstate(invalid="ignore"):
            # an inf entry: s (float32) or the maximum is inf; NaN wins
            value = xp.where(bad, s if single else absmax, xp.where(zero, 0.0, value))
    write(flat, res, mode, norm, f1, f2)
    return value, out


# ----------------------------------------------------------------- cofactors
def det_grad(A: Any, *, closed_form: Callable[[Any, Any], None], eliminate: Eliminate,
             host: Host, host_min_n: int, positive_zeros: bool = False) -> Any:
    """Cofactors ``C(A)`` of ``A (B, n, n)``: ``n = 1`` ones; ``n ≤ 3`` the
    closed-form kernel ``closed_form(W, C)`` in the wide dtype;
    ``n ≥ host_min_n`` the host algorithm; else the Gauss-Jordan kernel, NaN
    for NONFINITE slots and the host algorithm for FALLBACK ones (tiny
    pivots: the rank-revealing adjugate).  ``positive_zeros``: those slots
    reach the host as ``0 + A`` (negative zeros made positive), as the Numba
    backend's value path sends them."""
    xp = namespace(A)
    n = A.shape[-1]
    if n == 1:
        return xp.ones_like(A)
    if n <= 3:
        W = widen(A)
        C = xp.empty_like(W)
        closed_form(W, C)
        return narrow(C, A.dtype)
    if n >= host_min_n:
        return host(cofactor.det_grad, A)
    C, status = eliminate(A, False)
    C[status == NONFINITE] = np.nan
    redo = xp.flatnonzero(status == FALLBACK)
    if int(redo.size):  # tiny pivot: rank-revealing adjugate (rare)
        Ar = A[redo].astype(C.dtype)
        # widened: the host flushes noise that would overflow A's own dtype
        fn = partial(cofactor.det_grad, max_exp=int(np.finfo(A.dtype).maxexp))
        C[redo] = host(fn, C.dtype.type(0) + Ar if positive_zeros else Ar)
    return narrow(C, A.dtype)


def logdet_grad(A: Any, *, eliminate: Eliminate, host: Host, host_min_n: int) -> Any:
    """``A⁻ᵀ`` (conjugated for complex ``A``): ``n ≥ host_min_n`` the host
    algorithm; else the Gauss-Jordan kernel, NaN for NONFINITE slots (a
    non-finite entry, or an exactly zero pivot) and the host algorithm for
    FALLBACK ones (exponents beyond plain power-of-two factors)."""
    if A.shape[-1] >= host_min_n:
        return host(cofactor.logdet_grad, A)
    G, status = eliminate(A, True)
    G[status == NONFINITE] = np.nan
    redo = namespace(A).flatnonzero(status == FALLBACK)
    if int(redo.size):  # exponents beyond plain power-of-two factors (rare)
        G[redo] = host(cofactor.logdet_grad, A[redo].astype(G.dtype))
    return narrow(G, A.dtype)
