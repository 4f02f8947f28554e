"""Value and gradient from one pass on the Numba backend.

The kernels here are those of the plain gradients with the value read off
the same computation, so a slot's gradient is bit-identical to what
``det_grad``/``logdet_grad``/``frobenius_grad`` return, and its value comes
from the same data:

* ``n = 2, 3``: the closed-form cofactors, then ``det = Σ_j a_0j·C_0j``
  (row 0 of those very cofactors) where every nonzero real or imaginary part
  of the matrix lies within 2^±300, so that no product over- or underflows;
  other finite slots (rare) take the equilibrated closed form on the host.
* ``n = 4``: the guarded closed form where it is accepted, with the same
  row expansion within 2^±250 (products of four entries); a slot out of that
  range keeps its cofactors and takes its value from the host elimination
  (:mod:`matgrad.kernels.cofactor`).
* Gauss-Jordan (``4 ≤ n < config.numba_det_lapack_min_n``): the kernel returns the running
  determinant ``dm·2^de`` of the equilibrated elimination, already mapped
  back through the equilibration exponents, so ``det A = dm·2^de`` and
  ``log|det A| = log|dm| + de·ln 2``: never over- or underflowing on the way.
  An exactly zero pivot (``logdet``) gives sign 0 and −inf.
* Slots the kernels hand to the host (tiny pivots, exponents beyond plain
  power-of-two factors) and ``n ≥ config.numba_det_lapack_min_n`` get value and gradient
  together from the host algorithms, as their gradients already do.
* Frobenius: ``‖X‖_F`` from the sums of squares the gradient divides by.

Every decision is per slot, from that slot alone.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba import prange

from matgrad import config
from matgrad.kernels import cofactor as host_cofactor
from matgrad.kernels.codes import FALLBACK, HOST_VALUE, NONFINITE, OK
from matgrad.kernels.scalar import compile_scalar
from matgrad.kernels.scaling import ldexp, narrow, widen

from . import _frobenius
from ._runtime import chunks, parallel_call

__all__ = ["det_value_grad", "frobenius_value_grad", "logdet_value_grad"]

# The CPU-compiled algorithms, bound at module level as globals of the
# kernels below (see matgrad.kernels.scalar: this keeps them cached).
_S = compile_scalar("cpu")
closed_form_one = _S.closed_form_one
cofactor4_one = _S.cofactor4_one
gauss_jordan_det_one = _S.gauss_jordan_det_one
gauss_jordan_inv_one = _S.gauss_jordan_inv_one


@nb.njit(cache=True)
def _in_range(A, lo, hi):  # type: ignore[no-untyped-def]
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


@nb.njit(cache=True)
def _row_expansion(A, C):  # type: ignore[no-untyped-def]
    """``Σ_j a_0j·C_0j``, summed left to right."""
    s = A[0, 0] * C[0, 0]
    for j in range(1, A.shape[1]):
        s = s + A[0, j] * C[0, j]
    return s


@nb.njit(parallel=True, cache=True)
def closed_form_value(A, C, d):  # type: ignore[no-untyped-def]
    """Cofactors of 2×2 or 3×3 matrices (as ``closed_form``) and their
    determinants; returns a status per slot (HOST_VALUE: value not formed)."""
    B = A.shape[0]
    status = np.zeros(B, dtype=np.int8)
    lo = 2.0**-300
    hi = 2.0**300
    for b in prange(B):
        closed_form_one(A[b], C[b])
        if _in_range(A[b], lo, hi):
            d[b] = _row_expansion(A[b], C[b])
        else:
            status[b] = HOST_VALUE
    return status


@nb.njit(parallel=True, cache=True)
def lu_value_kernel(A, out, dm, de, inverse_t, nchunks):  # type: ignore[no-untyped-def]
    """``lu_kernel`` with each slot's determinant ``dm·2^de`` beside its
    gradient; returns a status per slot (OK, FALLBACK, NONFINITE, HOST_VALUE)."""
    B, n, _ = A.shape
    status = np.zeros(B, dtype=np.int8)
    nchunks = max(1, min(B, nchunks))
    lo = 2.0**-250
    hi = 2.0**250
    for ch in prange(nchunks):
        W = np.empty((n, n), dtype=A.dtype)
        perm = np.empty(n, dtype=np.int64)
        fr = np.empty(n)
        fc = np.empty(n)
        for b in range(ch * B // nchunks, (ch + 1) * B // nchunks):
            if inverse_t:
                st, m, e = gauss_jordan_inv_one(A[b], out[b], W, perm, fr, fc)
            elif n == 4 and cofactor4_one(A[b], out[b]):
                # the row expansion, replaced on the host where out of range
                st = OK if _in_range(A[b], lo, hi) else HOST_VALUE
                m, e = _row_expansion(A[b], out[b]), 0
            else:
                st, m, e = gauss_jordan_det_one(A[b], out[b], W, perm, fr, fc)
            status[b] = st
            dm[b] = m
            de[b] = e
    return status


def _lu_value_path(
    A: np.ndarray, inverse_t: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    W = widen(A)
    out = np.empty_like(W)
    dm = np.empty(W.shape[0], dtype=W.dtype)
    de = np.zeros(W.shape[0], dtype=np.int64)
    status = parallel_call(lu_value_kernel, W, out, dm, de, inverse_t, chunks())
    return W, out, dm, de, status


def det_value_grad(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(det A, C)``; ``C`` bit-identical to the backend's ``det_grad``."""
    n = A.shape[-1]
    if n == 1 or n >= config.numba_det_lapack_min_n:
        return host_cofactor.det_value_grad(A)  # as det_grad: NumPy / LAPACK
    if n <= 3:
        W = widen(A)
        C = np.empty_like(W)
        d = np.empty(W.shape[0], dtype=W.dtype)
        status = parallel_call(closed_form_value, W, C, d)
        host = np.flatnonzero(status == HOST_VALUE)
        if host.size:  # an entry beyond 2^±300, or not finite (rare)
            Wh = W[host]
            fin = np.isfinite(Wh).all(axis=(1, 2))
            dh = np.full(host.size, np.nan, dtype=W.dtype)
            if fin.any():
                dh[fin] = host_cofactor.equilibrated_small_det(Wh[fin])
            d[host] = dh
        return narrow(d, A.dtype), narrow(C, A.dtype)
    W, C, dm, de, status = _lu_value_path(A, inverse_t=False)
    with np.errstate(all="ignore"):
        d = ldexp(dm, de)
    bad = status == NONFINITE
    C[bad] = np.nan
    d[bad] = np.nan
    redo = np.flatnonzero(status == FALLBACK)
    if redo.size:  # tiny pivot: rank-revealing adjugate (rare)
        d[redo], C[redo] = host_cofactor.det_value_grad(
            C.dtype.type(0) + A[redo].astype(C.dtype))
    host = np.flatnonzero(status == HOST_VALUE)
    if host.size:  # accepted 4×4 closed form, entries beyond 2^±250
        d[host] = host_cofactor.det_value_grad(W[host])[0]
    return narrow(d, A.dtype), narrow(C, A.dtype)


def logdet_value_grad(A: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(sign, log|det A|, A⁻ᵀ)``; ``G`` bit-identical to ``logdet_grad``."""
    n = A.shape[-1]
    if n >= config.numba_det_lapack_min_n:
        return host_cofactor.logdet_value_grad(A)
    _W, G, dm, de, status = _lu_value_path(A, inverse_t=True)
    # NONFINITE: dm = 0 at an exactly zero pivot ((0, −inf)), NaN for a
    # non-finite entry
    sign, logabs = host_cofactor.slogdet_from_mantissa(dm, de)
    G[status == NONFINITE] = np.nan
    redo = np.flatnonzero(status == FALLBACK)
    if redo.size:  # exponents beyond plain power-of-two factors (rare)
        sign[redo], logabs[redo], G[redo] = host_cofactor.logdet_value_grad(
            A[redo].astype(G.dtype))
    real = np.empty(0, A.dtype).real.dtype
    return narrow(sign, A.dtype), narrow(logabs, real), narrow(G, A.dtype)


def frobenius_value_grad(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(‖X‖_F, X/‖X‖_F)``; ``G`` bit-identical to ``frobenius_grad``."""
    norm, G = _frobenius.frobenius_norm_grad(X)
    with np.errstate(over="ignore"):
        return norm.astype(np.empty(0, X.dtype).real.dtype), G
