"""The Numba backend's operations: launches of its kernels, with the routing
between paths and host fallbacks of :mod:`matgrad.kernels.routing` and the
host algorithms of :mod:`matgrad.kernels`."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.linalg

from matgrad import config
from matgrad.kernels import charpoly as host_charpoly
from matgrad.kernels import routing
from matgrad.kernels.scaling import ldexp, mantissa_product, widen, work_dtype

from . import _charpoly, _cofactor, _frobenius
from ._runtime import launch, threads

__all__ = ["bilinear_grad", "charpoly_deriv", "det_grad", "frobenius_grad", "logdet_grad"]

def frobenius_grad(X: np.ndarray) -> np.ndarray:
    return _frobenius.frobenius_grad(X)


def bilinear_grad(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    size = x.shape[0] * x.shape[1] * y.shape[1]
    if x.dtype.kind == "f" and (size < config.numba_parallel_min_work or threads() == 1):
        # one thread, real: NumPy's multiply, the very products the kernel
        # forms (one rounding each: bit-identical), without a launch's
        # overhead.  Not for complex: NumPy's complex product may use FMA,
        # whose roundings differ from the kernel's.
        with np.errstate(all="ignore"):  # an overflow is ±inf, as in the kernel
            products: np.ndarray = np.multiply(x[:, :, None], y[:, None, :])
        return products
    out = np.empty((x.shape[0], x.shape[1], y.shape[1]), dtype=x.dtype)
    launch(_frobenius.bilinear_grad_into, x.shape[0] * x.shape[1], size, x, y, out)
    if x.dtype.kind == "c":
        _rescue_complex_products(x, y, out)
    return out


def _rescue_complex_products(x: np.ndarray, y: np.ndarray, out: np.ndarray) -> None:
    """Redo, in place, the complex products ``out[b, i, j] = x[b, i]·y[b, j]``
    that came back with a NaN part from finite factors: ``ac − bd`` with
    both terms overflowing to opposite infinities (complex64 ``(−2 +
    2¹⁰⁷i)(2¹²⁷ − 2²¹i)`` is ``0 + 2²³⁴i``, and gave ``nan + inf·i``).  Each
    factor is brought to magnitude < 1 by a power of two first, so the
    product's parts are formed without overflow and scaled back exactly
    (a part beyond the range is then ±inf, a finite one keeps its value).
    One pass over the output; the products themselves are untouched
    elsewhere."""
    bad = np.isnan(out.real) | np.isnan(out.imag)
    if not bad.any():
        return
    b, i, j = np.nonzero(bad)
    xv, yv = x[b, i], y[b, j]
    finite = np.isfinite(xv) & np.isfinite(yv)
    if not finite.any():
        return
    b, i, j, xv, yv = b[finite], i[finite], j[finite], xv[finite], yv[finite]
    ex = np.frexp(np.maximum(np.abs(xv.real), np.abs(xv.imag)))[1].astype(np.int64)
    ey = np.frexp(np.maximum(np.abs(yv.real), np.abs(yv.imag)))[1].astype(np.int64)
    with np.errstate(over="ignore"):  # a part that truly overflows is ±inf
        out[b, i, j] = ldexp(ldexp(xv, -ex) * ldexp(yv, -ey), ex + ey)


def _lu_path(A: np.ndarray, inverse_t: bool) -> tuple[np.ndarray, np.ndarray]:
    """``routing.Eliminate``: the Gauss-Jordan kernel over the batch."""
    W = widen(A)
    B, n = W.shape[0], W.shape[-1]
    out = np.empty_like(W)
    status = np.zeros(B, dtype=np.int8)
    dm = np.empty(B, dtype=W.dtype)  # the determinants, not wanted here
    de = np.empty(B, dtype=np.int64)
    launch(_cofactor.lu_kernel, B, B * n**3, W, out, dm, de, status, inverse_t, False)
    return out, status


def _closed_form(W: np.ndarray, C: np.ndarray) -> None:
    launch(_cofactor.closed_form, W.shape[0], W.size, W, C)


def _on_host(fn: Callable[[np.ndarray], np.ndarray], A: np.ndarray) -> np.ndarray:
    return fn(A)  # NumPy arrays are host arrays already


def det_grad(A: np.ndarray) -> np.ndarray:
    # the host (LAPACK getrf/getri per matrix) from config.numba_det_lapack_min_n on
    C: np.ndarray = routing.det_grad(A, closed_form=_closed_form, eliminate=_lu_path,
                                     host=_on_host, host_min_n=config.numba_det_lapack_min_n,
                                     positive_zeros=True)
    return C


def logdet_grad(A: np.ndarray) -> np.ndarray:
    G: np.ndarray = routing.logdet_grad(A, eliminate=_lu_path, host=_on_host,
                                        host_min_n=config.numba_det_lapack_min_n)
    return G


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
    reduce = np.flatnonzero(~host_charpoly.is_hessenberg(H))  # skip reduced ones
    if reduce.size and H.shape[-1] >= config.charpoly_lapack_min_n:
        H[reduce] = host_charpoly.hessenberg_batched(H[reduce])
    elif reduce.size:
        part = np.ascontiguousarray(H[reduce])
        launch(_charpoly.hessenberg, part.shape[0], 3 * part.size * part.shape[-1], part)
        H[reduce] = part
    return H


def charpoly_deriv(A: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    B, n, _ = A.shape
    K = x.shape[1]
    if n == 1:
        return host_charpoly.linear_case(A, x)
    As, k, kmax = host_charpoly.scale_matrices(A, _charpoly.balance_batch)
    p = np.empty(x.shape, dtype=A.dtype)
    dp = np.empty_like(p)
    todo = np.ones(B, dtype=bool)
    # few points on a large matrix: one LU per point (4/3·n³) beats a
    # Hessenberg reduction (10/3·n³) + O(n²) per point
    if K <= config.charpoly_lu_route_max_points and n >= config.charpoly_lu_route_min_n:
        with np.errstate(all="ignore"):
            pm, dpm, pe, ok = _charpoly_lu(As, host_charpoly.scale_points(x, k))
        p[ok], dp[ok] = host_charpoly.unscale(pm[ok], dpm[ok], pe[ok], pe[ok], k[ok], n, A.dtype)
        todo = ~ok
    idx = np.flatnonzero(todo)
    if idx.size == 0:
        host_charpoly.apply_far_points(p, dp, x, kmax, n)
        return p, dp
    rows = slice(None) if idx.size == B else idx
    with np.errstate(all="ignore"):  # NaN/inf slots stay in their own slot
        reduced = ~host_charpoly.is_hessenberg(As[rows])
        H = _hessenberg(As[rows])
        sub = host_charpoly.subdiagonal(H, reduced)
    work = np.result_type(H.dtype, work_dtype(x.dtype))
    Hw = H.astype(work, copy=False)
    sub = sub.astype(work)
    kk = k[rows]
    kkmax = kmax[rows]
    # Points in blocks: the (matrix, point) arrays below stay O(block)
    for sl in host_charpoly.point_blocks(idx.size, 8, K):  # ~8 arrays of (rows, block)
        xs = np.ascontiguousarray(host_charpoly.scale_points(x[rows, sl], kk))
        qm = np.empty(xs.shape, dtype=work)
        dqm = np.empty_like(qm)
        qe = np.zeros(xs.shape, dtype=np.int64)
        dqe = np.zeros(xs.shape, dtype=np.int64)
        with np.errstate(all="ignore"):
            launch(_charpoly.hyman, xs.size, 4 * xs.size * n * n, Hw, sub, xs, qm, dqm, qe,
                   dqe)
        pb, dpb = host_charpoly.unscale(qm, dqm, qe, dqe, kk, n, A.dtype)
        host_charpoly.apply_far_points(pb, dpb, x[rows, sl], kkmax, n)
        p[rows, sl], dp[rows, sl] = pb, dpb
    if idx.size < B:
        done = np.flatnonzero(~todo)
        pd, dpd = p[done], dp[done]
        host_charpoly.apply_far_points(pd, dpd, x[done], kmax[done], n)
        p[done], dp[done] = pd, dpd
    return p, dp
