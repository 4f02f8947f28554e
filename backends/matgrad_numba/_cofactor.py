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

from typing import Any

import numba as nb
import numpy as np
from numba import types
from numba.extending import overload

from matgrad.kernels.codes import FALLBACK, HOST_VALUE, OK
from matgrad.kernels.scalar import compile_scalar

__all__ = ["closed_form", "closed_form_narrow", "in_range", "logdet_closed", "lu_kernel",
           "row_expansion", "wide", "workspace"]

# The CPU-compiled algorithms, bound at module level: the kernels below refer
# to them as globals (not closure variables), which keeps them in Numba's
# on-disk cache across processes (see matgrad.kernels.scalar).
_S = compile_scalar("cpu")
closed_form_one = _S.closed_form_one
cof3 = _S.cof3
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


def wide(x: Any) -> Any:
    """``x`` as float64 / complex128, exactly (signs of zero, NaN and inf
    kept: ``x + 0.0`` would turn −0.0 into +0.0, ``x·1.0`` a complex −0.0
    part into +0.0); for Numba code only."""
    raise NotImplementedError("wide() is compiled by Numba only")


@overload(wide, inline="always")
def _wide(x):  # type: ignore[no-untyped-def]
    if isinstance(x, types.Complex):
        return lambda x: np.complex128(x)
    if isinstance(x, types.Float):
        return lambda x: np.float64(x)
    return None


@nb.njit(inline="always")
def widen_into(A, b, w):  # type: ignore[no-untyped-def]
    """Matrix ``b`` of ``A`` (2×2 or 3×3, float32 / complex64) into the
    float64 / complex128 workspace ``w``, exactly (signs of zero and NaN
    kept).  Written out and indexed by ``b``: a view of the matrix passed
    instead cost 5× the whole kernel (a reference-counted view per matrix)."""
    w[0, 0] = A[b, 0, 0]
    w[0, 1] = A[b, 0, 1]
    w[1, 0] = A[b, 1, 0]
    w[1, 1] = A[b, 1, 1]
    if A.shape[1] == 3:
        w[0, 2] = A[b, 0, 2]
        w[1, 2] = A[b, 1, 2]
        w[2, 0] = A[b, 2, 0]
        w[2, 1] = A[b, 2, 1]
        w[2, 2] = A[b, 2, 2]


@nb.njit(inline="always")
def narrow_from(w, C, b):  # type: ignore[no-untyped-def]
    """The workspace ``w`` rounded once into matrix ``b`` of ``C`` (narrow
    dtype; beyond its range ±inf, below it 0 or subnormal, as a cast rounds)."""
    C[b, 0, 0] = w[0, 0]
    C[b, 0, 1] = w[0, 1]
    C[b, 1, 0] = w[1, 0]
    C[b, 1, 1] = w[1, 1]
    if C.shape[1] == 3:
        C[b, 0, 2] = w[0, 2]
        C[b, 1, 2] = w[1, 2]
        C[b, 2, 0] = w[2, 0]
        C[b, 2, 1] = w[2, 1]
        C[b, 2, 2] = w[2, 2]


@nb.njit(inline="always")
def wide_pair(A, lo):  # type: ignore[no-untyped-def]
    """Two (n, n) float64 / complex128 workspaces for the float32 /
    complex64 matrices of ``A`` (the type of ``a·0 + 0.0``): a matrix is
    widened into one, computed there and rounded once into the output, so
    no full-size wide copy of the batch is ever made."""
    n = A.shape[1]
    z = A[lo, 0, 0] * 0 + 0.0
    return np.full((n, n), z), np.full((n, n), z)


@nb.njit(nogil=True, cache=True)
def closed_form_narrow(A, C, lo, hi):  # type: ignore[no-untyped-def]
    """:func:`closed_form` for float32 / complex64 ``A`` and ``C``: the same
    computation in float64 / complex128 per matrix, from entries widened as
    they are loaded (bit-identical to widening the batch, computing and
    narrowing; the memory traffic of the narrow dtype).  2×2 cofactors are
    entries of ``A`` (exact in any dtype).  A matrix whose products
    overflow is widened into a workspace for :func:`cofactor3_rescaled`."""
    if hi <= lo:
        return
    if A.shape[1] == 2:
        for b in range(lo, hi):
            C[b, 0, 0] = A[b, 1, 1]
            C[b, 0, 1] = -A[b, 1, 0]
            C[b, 1, 0] = -A[b, 0, 1]
            C[b, 1, 1] = A[b, 0, 0]
        return
    wa, wc = wide_pair(A, lo)
    for b in range(lo, hi):
        c = cof3(wide(A[b, 0, 0]), wide(A[b, 0, 1]), wide(A[b, 0, 2]),
                 wide(A[b, 1, 0]), wide(A[b, 1, 1]), wide(A[b, 1, 2]),
                 wide(A[b, 2, 0]), wide(A[b, 2, 1]), wide(A[b, 2, 2]))
        # closed_form_one's test: v − v is 0 for finite v, NaN otherwise
        z = ((c[0] - c[0]) + (c[1] - c[1]) + (c[2] - c[2]) + (c[3] - c[3]) + (c[4] - c[4])
             + (c[5] - c[5]) + (c[6] - c[6]) + (c[7] - c[7]) + (c[8] - c[8]))
        if z == 0:
            C[b, 0, 0], C[b, 0, 1], C[b, 0, 2] = c[0], c[1], c[2]
            C[b, 1, 0], C[b, 1, 1], C[b, 1, 2] = c[3], c[4], c[5]
            C[b, 2, 0], C[b, 2, 1], C[b, 2, 2] = c[6], c[7], c[8]
        else:  # an overflow or a non-finite entry (rare)
            widen_into(A, b, wa)
            cofactor3_rescaled(wa, wc)
            narrow_from(wc, C, b)


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


@nb.njit(inline="always")
def logdet_closed_at(A, b, G):  # type: ignore[no-untyped-def]
    """``(status, det)`` of matrix ``b`` of ``A`` (2×2 / 3×3, any of the four
    dtypes, computed in float64 / complex128 from entries widened as they
    are loaded), ``A⁻ᵀ`` (conjugated for complex) written into ``G[b]``,
    rounded once, where OK; see :func:`logdet_closed`."""
    n = A.shape[1]
    small = 2.0**-300
    big = 2.0**300
    for i in range(n):
        for j in range(n):
            v = wide(A[b, i, j])
            re = abs(v.real)
            im = abs(v.imag)
            if not (re < big and im < big) or (0 < re < small) or (0 < im < small):
                return FALLBACK, wide(A[b, 0, 0]) * 0
    a00 = wide(A[b, 0, 0])
    a01 = wide(A[b, 0, 1])
    if n == 2:
        c = (wide(A[b, 1, 1]), -wide(A[b, 1, 0]), -wide(A[b, 0, 1]), a00)
        det = a00 * c[0]
        det = det + a01 * c[1]
        terms = abs(a00 * c[0]) + abs(a01 * c[1])
    else:
        a02 = wide(A[b, 0, 2])
        c9 = cof3(a00, a01, a02, wide(A[b, 1, 0]), wide(A[b, 1, 1]), wide(A[b, 1, 2]),
                  wide(A[b, 2, 0]), wide(A[b, 2, 1]), wide(A[b, 2, 2]))
        det = a00 * c9[0]
        det = det + a01 * c9[1]
        det = det + a02 * c9[2]
        terms = abs(a00 * c9[0]) + abs(a01 * c9[1]) + abs(a02 * c9[2])
    if not (abs(det) > 2.0**-10 * terms or terms == 0.0):
        return FALLBACK, det
    den = det if det != 0 else det + np.nan
    # "+ 0.0": a −0.0 quotient (from a cofactor −a_10, a_10 = +0) becomes
    # +0.0, as in the host's rule; nothing else changes
    z = 0.0
    if n == 2:
        G[b, 0, 0] = np.conj(c[0] / den) + z
        G[b, 0, 1] = np.conj(c[1] / den) + z
        G[b, 1, 0] = np.conj(c[2] / den) + z
        G[b, 1, 1] = np.conj(c[3] / den) + z
    else:
        for k in range(9):
            G[b, k // 3, k % 3] = np.conj(c9[k] / den) + z
    return OK, det


@nb.njit(nogil=True, cache=True)
def logdet_closed(A, G, d, status, lo, hi):  # type: ignore[no-untyped-def]
    """``A⁻ᵀ`` (conjugated for complex ``A``) of the 2×2 / 3×3 matrices
    ``lo:hi`` as ``conj(C/det)``: ``C`` the closed-form cofactors, ``det``
    their row expansion (also stored in ``d``, wide).  Taken (OK) where every
    entry is finite with its nonzero parts within 2^±300 (no product over-
    or underflows) and the expansion lost at most 10 bits to cancellation
    (``|det| > 2⁻¹⁰·Σ_j |a_0j·C_0j|``), or every term is 0 (exactly singular:
    NaN, as ``A⁻ᵀ`` does not exist); FALLBACK otherwise, for the caller's
    elimination, whose pivots carry an ill-conditioned determinant better.
    The host's rule (``matgrad.kernels.cofactor``), one pass per matrix; a
    float32 / complex64 batch is read and written in its own dtype."""
    for b in range(lo, hi):
        st, det = logdet_closed_at(A, b, G)
        status[b] = st
        d[b] = det


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
