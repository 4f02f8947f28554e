"""Cofactor (∇det) and inverse-transpose (∇log|det|) kernels.

``n = 2, 3``: closed forms, one matrix per iteration, computed in float64 /
complex128 (float32 products are then exact); a slot whose intermediate
products over- or underflow is redone with rows scaled by powers of two.
``n = 4``: closed form where an a-posteriori bound proves it accurate (the
vast majority of matrices), else as below.
``4 ≤ n < matgrad.config.numba_det_lapack_min_n``: per matrix: power-of-two
equilibration ``Ã = D_r A D_c`` (always, each entry scaled in one exact step),
Gauss-Jordan inversion with partial pivoting (n³ flops; the pivots are LU's),
``det`` as mantissa·2ᵉ, and ``C = det·Ã⁻ᵀ`` rescaled exactly entry by entry.
Slots whose LU shows a pivot ``|u_kk| ≤ 4·n·eps`` (every ``|ã_ij| < 1``), or
whose exponents leave the range of plain power-of-two factors, are flagged
and finished on the host (SVD adjugate / ``ldexp``); larger ``n`` goes to
LAPACK.  The per-matrix algorithms are :mod:`matgrad.kernels.scalar`'s,
compiled for the CPU and called; the routing between paths is
:mod:`matgrad.kernels.routing`'s.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from matgrad.kernels.codes import FALLBACK, HOST_VALUE, OK
from matgrad.kernels.scalar import compile_scalar

__all__ = ["closed_form", "in_range", "logdet_closed", "lu_kernel", "row_expansion", "workspace"]

# The CPU-compiled algorithms, bound at module level: the kernels below refer
# to them as globals (not closure variables), which keeps them in Numba's
# on-disk cache across processes (see matgrad.kernels.scalar).
_S = compile_scalar("cpu")
closed_form_one = _S.closed_form_one
cofactor3_rescaled = _S.cofactor3_rescaled
cofactor4_one = _S.cofactor4_one
gauss_jordan_det_one = _S.gauss_jordan_det_one
gauss_jordan_inv_one = _S.gauss_jordan_inv_one


@nb.njit(nogil=True, cache=True)
def closed_form(A, C, lo, hi):  # type: ignore[no-untyped-def]
    """Cofactors of the 2×2 or 3×3 matrices ``lo:hi`` (A in float64/complex128)."""
    As = A[lo:hi]  # indexed from 0: no negative-index check per matrix
    Cs = C[lo:hi]
    for b in range(As.shape[0]):
        if not closed_form_one(As[b], Cs[b]):
            cofactor3_rescaled(As[b], Cs[b])  # an overflow or a non-finite entry (rare)


@nb.njit(inline="always")  # inlined: a call would cost two array views per slot
def in_range(A, lo, hi):  # type: ignore[no-untyped-def]
    """Every entry finite, and every nonzero real or imaginary part within
    ``[lo, hi)``."""
    n = A.shape[0]
    for i in range(n):
        for j in range(n):
            v = A[i, j]
            re = abs(v.real)
            im = abs(v.imag)
            if not (re < hi and im < hi):
                return False
            if (re < lo and re > 0) or (im < lo and im > 0):
                return False
    return True


@nb.njit(inline="always")
def row_expansion(A, C):  # type: ignore[no-untyped-def]
    """``Σ_j a_0j·C_0j``, summed left to right."""
    s = A[0, 0] * C[0, 0]
    for j in range(1, A.shape[1]):
        s = s + A[0, j] * C[0, j]
    return s


@nb.njit(nogil=True, cache=True)
def logdet_closed(A, G, d, status, lo, hi):  # type: ignore[no-untyped-def]
    """``A⁻ᵀ`` (conjugated for complex ``A``) of the 2×2 / 3×3 matrices
    ``lo:hi`` as ``conj(C/det)``: ``C`` the closed-form cofactors, ``det``
    their row expansion (also stored in ``d``).  Taken (OK) where every entry
    is finite with its nonzero parts within 2^±300 (no product over- or
    underflows) and the expansion lost at most 10 bits to cancellation
    (``|det| > 2⁻¹⁰·Σ_j |a_0j·C_0j|``), or every term is 0 (exactly singular:
    NaN, as ``A⁻ᵀ`` does not exist); FALLBACK otherwise, for the caller's
    elimination, whose pivots carry an ill-conditioned determinant better.
    The host's rule (``matgrad.kernels.cofactor``), one pass per matrix."""
    small = 2.0**-300
    big = 2.0**300
    lost = 2.0**-10
    n = A.shape[1]
    As = A[lo:hi]  # indexed from 0: no negative-index check per matrix
    Gs = G[lo:hi]
    for b in range(As.shape[0]):
        a = As[b]
        g = Gs[b]
        if not in_range(a, small, big):
            status[lo + b] = FALLBACK
            continue
        closed_form_one(a, g)  # within 2^±300: no product over- or underflows
        det = row_expansion(a, g)
        terms = 0.0
        for j in range(n):
            terms += abs(a[0, j] * g[0, j])
        if not (abs(det) > lost * terms or terms == 0.0):
            status[lo + b] = FALLBACK
            continue
        d[lo + b] = det
        den = det if det != 0 else det + np.nan
        for i in range(n):
            for j in range(n):
                g[i, j] = np.conj(g[i, j] / den)
        status[lo + b] = OK


@nb.njit(inline="always")
def workspace(A):  # type: ignore[no-untyped-def]
    """The Gauss-Jordan workspace for ``A (B, n, n)``'s matrices: ``W`` (n, n),
    the permutation, the row and column scaling exponents."""
    n = A.shape[1]
    return np.empty((n, n), dtype=A.dtype), np.empty(n, dtype=np.int64), np.empty(n), np.empty(n)


@nb.njit(nogil=True, cache=True)
def lu_kernel(A, out, dm, de, status, inverse_t, want_value, lo, hi):  # type: ignore[no-untyped-def]
    """Per-matrix Gauss-Jordan path for the matrices ``lo:hi`` of a batch
    (``inverse_t``: ``A⁻ᵀ``, else cofactors, by the guarded 4×4 closed form
    where it is accepted), with a status per slot and each slot's
    determinant ``dm·2^de`` beside its gradient (OK, FALLBACK, NONFINITE;
    HOST_VALUE where ``want_value`` and an accepted 4×4 closed form has
    entries beyond 2^±250, so that its row expansion could over- or
    underflow: the gradient is right, the value is formed on the host).  One
    kernel for gradients and values: a second kernel compiled 2–2.6 s more
    per dtype.  One workspace per range."""
    n = A.shape[1]
    small = 2.0**-250
    big = 2.0**250
    W, perm, fr, fc = workspace(A)
    As = A[lo:hi]  # indexed from 0: no negative-index check per matrix
    outs = out[lo:hi]
    for b in range(As.shape[0]):
        if inverse_t:
            st, m, e = gauss_jordan_inv_one(As[b], outs[b], W, perm, fr, fc)
        elif n == 4 and cofactor4_one(As[b], outs[b]):
            st, m, e = OK, As[0, 0, 0] * 0, 0
            if want_value:  # the row expansion, replaced on the host where out of range
                st = OK if in_range(As[b], small, big) else HOST_VALUE
                m = row_expansion(As[b], outs[b])
        else:
            st, m, e = gauss_jordan_det_one(As[b], outs[b], W, perm, fr, fc)
        status[lo + b] = st
        dm[lo + b] = m
        de[lo + b] = e
