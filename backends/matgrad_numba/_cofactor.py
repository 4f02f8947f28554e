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

from matgrad.kernels.codes import OK
from matgrad.kernels.scalar import compile_scalar

__all__ = ["closed_form", "lu_kernel", "workspace"]

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


@nb.njit(inline="always")
def workspace(A):  # type: ignore[no-untyped-def]
    """The Gauss-Jordan workspace for ``A (B, n, n)``'s matrices: ``W`` (n, n),
    the permutation, the row and column scaling exponents."""
    n = A.shape[1]
    return np.empty((n, n), dtype=A.dtype), np.empty(n, dtype=np.int64), np.empty(n), np.empty(n)


@nb.njit(nogil=True, cache=True)
def lu_kernel(A, out, status, inverse_t, lo, hi):  # type: ignore[no-untyped-def]
    """Per-matrix Gauss-Jordan path for the matrices ``lo:hi`` of a batch
    (``inverse_t``: ``A⁻ᵀ``, else cofactors, by the guarded 4×4 closed form
    where it is accepted), with a status per slot; one workspace per range."""
    n = A.shape[1]
    W, perm, fr, fc = workspace(A)
    As = A[lo:hi]  # indexed from 0: no negative-index check per matrix
    outs = out[lo:hi]
    sts = status[lo:hi]
    for b in range(As.shape[0]):
        if inverse_t:
            sts[b] = gauss_jordan_inv_one(As[b], outs[b], W, perm, fr, fc)[0]
        elif n == 4 and cofactor4_one(As[b], outs[b]):
            sts[b] = OK
        else:
            sts[b] = gauss_jordan_det_one(As[b], outs[b], W, perm, fr, fc)[0]
