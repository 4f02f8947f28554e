"""Python-level orchestration of the Numba kernels (dtype, paths, fallbacks)."""

from __future__ import annotations

import numpy as np
import scipy.linalg
from matgrad_numpy import _charpoly as np_charpoly
from matgrad_numpy import _cofactor as np_cofactor
from matgrad_numpy._scaling import mantissa_product, narrow, widen, work_dtype

from . import _charpoly, _cofactor, _frobenius
from ._runtime import chunks, parallel_call

__all__ = ["bilinear_grad", "charpoly_deriv", "det_grad", "frobenius_grad", "logdet_grad"]

#: Below this many points per matrix (and from this size on), one LU per
#: point (4/3·n³) beats a Hessenberg reduction (10/3·n³) + O(n²) per point.
LU_ROUTE_MAX_POINTS = 2
LU_ROUTE_MIN_N = 64


def frobenius_grad(X: np.ndarray) -> np.ndarray:
    return _frobenius.frobenius_grad(X)


def bilinear_grad(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    out = np.empty((x.shape[0], x.shape[1], y.shape[1]), dtype=x.dtype)
    parallel_call(_frobenius.bilinear_grad_into, x, y, out)
    return out


def _lu_path(A: np.ndarray, inverse_t: bool) -> tuple[np.ndarray, np.ndarray]:
    W = widen(A)
    out = np.empty_like(W)
    status = parallel_call(_cofactor.lu_kernel, W, out, inverse_t, chunks())
    return out, status


def det_grad(A: np.ndarray) -> np.ndarray:
    n = A.shape[-1]
    if n == 1:
        return np.ones_like(A)
    if n <= 3:
        W = widen(A)
        C = np.empty_like(W)
        parallel_call(_cofactor.closed_form, W, C)
        return narrow(C, A.dtype)
    if n >= _cofactor.LAPACK_MIN_N:
        return np_cofactor.det_grad(A)  # LAPACK getrf/getri per matrix
    C, status = _lu_path(A, inverse_t=False)
    C[status == _cofactor.NONFINITE] = np.nan
    redo = np.flatnonzero(status == _cofactor.FALLBACK)
    if redo.size:  # tiny pivot: rank-revealing adjugate (rare)
        C[redo] = np_cofactor.det_grad(C.dtype.type(0) + A[redo].astype(C.dtype))
    return narrow(C, A.dtype)


def logdet_grad(A: np.ndarray) -> np.ndarray:
    n = A.shape[-1]
    if n >= _cofactor.LAPACK_MIN_N:
        return np_cofactor.logdet_grad(A)
    G, status = _lu_path(A, inverse_t=True)
    G[status == _cofactor.NONFINITE] = np.nan
    redo = np.flatnonzero(status == _cofactor.FALLBACK)
    if redo.size:  # exponents beyond plain power-of-two factors (rare)
        G[redo] = np_cofactor.logdet_grad(A[redo].astype(G.dtype))
    return narrow(G, A.dtype)


def _charpoly_lu(
    A: np.ndarray, x: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(pm, dpm, pe)`` by one LU of ``M = xI − A`` per point, or None per
    matrix whose LU shows a tiny pivot (x at or near an eigenvalue).

    ``p = det M`` from the pivots; ``p′ = det(M)·tr(M⁻¹)`` with
    ``tr(M⁻¹) = Σ_ik (U⁻¹)_ik (L⁻¹P)_ki``: two triangular inverses (n³/3 each)
    instead of a full inverse.
    """
    B, n, _ = A.shape
    K = x.shape[1]
    pm = np.empty((B, K), dtype=x.dtype)
    dpm = np.empty((B, K), dtype=x.dtype)
    pe = np.zeros((B, K), dtype=np.int64)
    ok = np.ones(B, dtype=bool)
    getrf, trtri = scipy.linalg.get_lapack_funcs(("getrf", "trtri"), (A[0],))
    eye = np.eye(n, dtype=A.dtype)
    for b in range(B):
        for k in range(K):
            M = x[b, k] * eye - A[b]
            lu, ipiv, info = getrf(M, overwrite_a=True)
            piv = np.diagonal(lu)
            tol = 4.0 * n * np.finfo(np.float64).eps * np.abs(M).max(initial=0.0)
            if info != 0 or np.abs(piv).min() <= tol:
                ok[b] = False
                break
            perm = np.arange(n)
            sign = 1.0
            for i, j in enumerate(ipiv):
                if i != j:
                    perm[i], perm[j] = perm[j], perm[i]
                    sign = -sign
            uinv, _ = trtri(lu, lower=0)
            linv, _ = trtri(lu, lower=1, unitdiag=1)
            uinv = np.triu(uinv)
            linv = np.tril(linv, -1) + np.eye(n)
            pinv = np.argsort(perm)
            trace = np.sum(uinv * linv[:, pinv].T)
            m, e = mantissa_product(piv[None, :])
            pm[b, k] = sign * m[0]
            dpm[b, k] = sign * m[0] * trace
            pe[b, k] = e[0]
    return pm, dpm, pe, ok


def _hessenberg(As: np.ndarray) -> np.ndarray:
    """Upper Hessenberg forms of ``As`` (matrices that already are: copied)."""
    H = np.ascontiguousarray(As)
    reduce = np.flatnonzero(~np_charpoly.is_hessenberg(H))  # skip reduced ones
    if reduce.size and H.shape[-1] >= np_charpoly.LAPACK_MIN_N:
        H[reduce] = np_charpoly.hessenberg_batched(H[reduce])
    elif reduce.size:
        part = np.ascontiguousarray(H[reduce])
        parallel_call(_charpoly.hessenberg, part)
        H[reduce] = part
    return H


def charpoly_deriv(A: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    B, n, _ = A.shape
    K = x.shape[1]
    if n == 1:
        return np_charpoly.linear_case(A, x)
    As, k, kmax = np_charpoly.scale_matrices(A)
    p = np.empty(x.shape, dtype=A.dtype)
    dp = np.empty_like(p)
    todo = np.ones(B, dtype=bool)
    if K <= LU_ROUTE_MAX_POINTS and n >= LU_ROUTE_MIN_N:
        with np.errstate(all="ignore"):
            pm, dpm, pe, ok = _charpoly_lu(As, np_charpoly.scale_points(x, k))
        p[ok], dp[ok] = np_charpoly.unscale(pm[ok], dpm[ok], pe[ok], pe[ok], k[ok], n, A.dtype)
        todo = ~ok
    idx = np.flatnonzero(todo)
    if idx.size == 0:
        np_charpoly.apply_far_points(p, dp, x, kmax, n)
        return p, dp
    rows = slice(None) if idx.size == B else idx
    with np.errstate(all="ignore"):  # NaN/inf slots stay in their own slot
        H = _hessenberg(As[rows])
        sub = np_charpoly.subdiagonal(H)
    work = np.result_type(H.dtype, work_dtype(x.dtype))
    Hw = H.astype(work, copy=False)
    sub = sub.astype(work)
    kk = k[rows]
    kkmax = kmax[rows]
    # Points in blocks: the (matrix, point) arrays below stay O(block)
    for sl in np_charpoly.point_blocks(idx.size, 8, K):  # ~8 arrays of (rows, block)
        xs = np.ascontiguousarray(np_charpoly.scale_points(x[rows, sl], kk))
        qm = np.empty(xs.shape, dtype=work)
        dqm = np.empty_like(qm)
        qe = np.zeros(xs.shape, dtype=np.int64)
        dqe = np.zeros(xs.shape, dtype=np.int64)
        with np.errstate(all="ignore"):
            parallel_call(_charpoly.hyman, Hw, sub, xs, qm, dqm, qe, dqe, chunks())
        pb, dpb = np_charpoly.unscale(qm, dqm, qe, dqe, kk, n, A.dtype)
        np_charpoly.apply_far_points(pb, dpb, x[rows, sl], kkmax, n)
        p[rows, sl], dp[rows, sl] = pb, dpb
    if idx.size < B:
        done = np.flatnonzero(~todo)
        pd, dpd = p[done], dp[done]
        np_charpoly.apply_far_points(pd, dpd, x[done], kmax[done], n)
        p[done], dp[done] = pd, dpd
    return p, dp
