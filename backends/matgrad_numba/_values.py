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

from matgrad import config
from matgrad.kernels import cofactor as host_cofactor
from matgrad.kernels.codes import FALLBACK, HOST_VALUE, NONFINITE, OK
from matgrad.kernels.scalar import compile_scalar
from matgrad.kernels.scaling import ldexp, narrow, widen

from . import _frobenius
from ._cofactor import in_range, lu_kernel, row_expansion
from ._eliminate import logdet_small
from ._runtime import launch

__all__ = ["det_value_grad", "frobenius_value_grad", "logdet_value_grad"]

# The CPU-compiled algorithms, bound at module level as globals of the
# kernels below (see matgrad.kernels.scalar: this keeps them cached).
_S = compile_scalar("cpu")
closed_form_one = _S.closed_form_one
cofactor3_rescaled = _S.cofactor3_rescaled


@nb.njit(nogil=True, cache=True)
def closed_form_value(A, C, d, status, lo, hi):  # type: ignore[no-untyped-def]
    """Cofactors of the 2×2 or 3×3 matrices ``lo:hi`` (as ``closed_form``) and
    their determinants, with a status per slot (HOST_VALUE: value not formed)."""
    small = 2.0**-300
    big = 2.0**300
    As = A[lo:hi]  # indexed from 0: no negative-index check per matrix
    Cs = C[lo:hi]
    ds = d[lo:hi]
    sts = status[lo:hi]
    for b in range(As.shape[0]):
        if not closed_form_one(As[b], Cs[b]):
            cofactor3_rescaled(As[b], Cs[b])  # an overflow or a non-finite entry (rare)
        if in_range(As[b], small, big):
            ds[b] = row_expansion(As[b], Cs[b])
            sts[b] = OK
        else:
            sts[b] = HOST_VALUE


def _lu_value_path(
    A: np.ndarray, inverse_t: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    W = widen(A)
    B, n = W.shape[0], W.shape[-1]
    out = np.empty_like(W)
    dm = np.empty(B, dtype=W.dtype)
    de = np.zeros(B, dtype=np.int64)
    status = np.zeros(B, dtype=np.int8)
    launch(lu_kernel, B, B * n**3, W, out, dm, de, status, inverse_t, True)
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
        status = np.zeros(W.shape[0], dtype=np.int8)
        launch(closed_form_value, W.shape[0], W.size, W, C, d, status)
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
            C.dtype.type(0) + A[redo].astype(C.dtype), max_exp=int(np.finfo(A.dtype).maxexp))
    host = np.flatnonzero(status == HOST_VALUE)
    if host.size:  # accepted 4×4 closed form, entries beyond 2^±250
        d[host] = host_cofactor.det_value_grad(W[host])[0]
    return narrow(d, A.dtype), narrow(C, A.dtype)


def logdet_value_grad(A: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(sign, log|det A|, A⁻ᵀ)``; ``G`` bit-identical to ``logdet_grad``."""
    n = A.shape[-1]
    if n >= config.numba_det_lapack_min_n:
        return host_cofactor.logdet_value_grad(A)
    real = np.empty(0, A.dtype).real.dtype
    if n in (2, 3):  # the closed forms' determinant where they are taken
        G, d, redo = logdet_small(A)
        # (its own error state: the redo slots' d are not set)
        sign, logabs = host_cofactor.slogdet_from_mantissa(d, np.zeros(d.shape, np.int64))
        if redo.size:  # the elimination's values, as its gradient in G
            sign[redo], logabs[redo], _ = _logdet_value_eliminated(widen(A[redo]))
        return narrow(sign, A.dtype), narrow(logabs, real), G
    sign, logabs, G = _logdet_value_eliminated(A)
    return narrow(sign, A.dtype), narrow(logabs, real), narrow(G, A.dtype)


def _logdet_value_eliminated(A: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(sign, log|det A|, A⁻ᵀ)`` in the wide dtype from the Gauss-Jordan
    kernel (the host for its FALLBACK slots)."""
    _W, G, dm, de, status = _lu_value_path(A, inverse_t=True)
    # NONFINITE: dm = 0 at an exactly zero pivot ((0, −inf)), NaN for a
    # non-finite entry
    sign, logabs = host_cofactor.slogdet_from_mantissa(dm, de)
    G[status == NONFINITE] = np.nan
    redo = np.flatnonzero(status == FALLBACK)
    if redo.size:  # exponents beyond plain power-of-two factors (rare)
        sign[redo], logabs[redo], G[redo] = host_cofactor.logdet_value_grad(
            A[redo].astype(G.dtype))
    return sign, logabs, G


def frobenius_value_grad(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(‖X‖_F, X/‖X‖_F)``; ``G`` bit-identical to ``frobenius_grad``."""
    norm, G = _frobenius.frobenius_norm_grad(X)
    with np.errstate(over="ignore"):
        return norm.astype(np.empty(0, X.dtype).real.dtype), G
