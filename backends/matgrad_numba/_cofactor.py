"""Cofactor (∇det) and inverse-transpose (∇log|det|) kernels.

``n = 2, 3``: closed forms, one matrix per iteration, computed in float64 /
complex128 (float32 products are then exact); a slot whose intermediate
products over- or underflow is redone with rows scaled by powers of two.
``n = 4``: closed form where an a-posteriori bound proves it accurate (the
vast majority of matrices), else as below.
``4 ≤ n < matgrad.config.numba_det_lapack_min_n``: per matrix, in parallel: power-of-two
equilibration ``Ã = D_r A D_c`` (always, each entry scaled in one exact step),
Gauss-Jordan inversion with partial pivoting (n³ flops; the pivots are LU's),
``det`` as mantissa·2ᵉ, and ``C = det·Ã⁻ᵀ`` rescaled exactly entry by entry.
Slots whose LU shows a pivot ``|u_kk| ≤ 4·n·eps`` (every ``|ã_ij| < 1``), or
whose exponents leave the range of plain power-of-two factors, are flagged
and finished on the host (SVD adjugate / ``ldexp``); larger ``n`` goes to
LAPACK.  The per-matrix algorithms are :mod:`matgrad.kernels.scalar`'s,
compiled for the CPU and inlined; the routing between paths is
:mod:`matgrad.kernels.routing`'s.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba import prange

from matgrad.kernels.codes import OK
from matgrad.kernels.scalar import compile_scalar

__all__ = ["closed_form", "lu_kernel"]

# The CPU-compiled algorithms, bound at module level: the kernels below refer
# to them as globals (not closure variables), which keeps them in Numba's
# on-disk cache across processes (see matgrad.kernels.scalar).
_S = compile_scalar("cpu")
closed_form_one = _S.closed_form_one
cofactor4_one = _S.cofactor4_one
gauss_jordan_det_one = _S.gauss_jordan_det_one
gauss_jordan_inv_one = _S.gauss_jordan_inv_one


@nb.njit(parallel=True, cache=True)
def closed_form(A, C):  # type: ignore[no-untyped-def]
    """Cofactors of 2×2 or 3×3 matrices (A in float64/complex128)."""
    for b in prange(A.shape[0]):
        closed_form_one(A[b], C[b])


@nb.njit(parallel=True, cache=True)
def lu_kernel(A, out, inverse_t, nchunks):  # type: ignore[no-untyped-def]
    """Per-matrix Gauss-Jordan path for a batch (``inverse_t``: ``A⁻ᵀ``, else
    cofactors, by the guarded 4×4 closed form where it is accepted); returns
    a status per slot.  Matrices are processed in ``nchunks`` contiguous
    chunks, one workspace each."""
    B, n, _ = A.shape
    status = np.zeros(B, dtype=np.int8)
    nchunks = max(1, min(B, nchunks))
    for ch in prange(nchunks):
        W = np.empty((n, n), dtype=A.dtype)
        perm = np.empty(n, dtype=np.int64)
        fr = np.empty(n)
        fc = np.empty(n)
        for b in range(ch * B // nchunks, (ch + 1) * B // nchunks):
            if inverse_t:
                status[b] = gauss_jordan_inv_one(A[b], out[b], W, perm, fr, fc)[0]
            elif n == 4 and cofactor4_one(A[b], out[b]):
                status[b] = OK
            else:
                status[b] = gauss_jordan_det_one(A[b], out[b], W, perm, fr, fc)[0]
    return status
