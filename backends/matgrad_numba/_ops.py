"""The Numba backend's operations: launches of its kernels, with the routing
between paths and host fallbacks of :mod:`matgrad.kernels.routing` and the
host algorithms of :mod:`matgrad.kernels`."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg

from matgrad import config
from matgrad.kernels import charpoly as host_charpoly
from matgrad.kernels import cofactor as host_cofactor
from matgrad.kernels import hessian as host_hessian
from matgrad.kernels import routing
from matgrad.kernels.scaling import ldexp, mantissa_product, narrow, widen, work_dtype

from . import _charpoly, _cofactor, _frobenius, _hessian, _values
from ._eliminate import gauss_jordan_path, logdet_small, on_host
from ._runtime import launch, threads

__all__ = ["bilinear_grad", "charpoly_deriv", "charpoly_derivs", "det_grad", "det_hessian",
           "det_hvp", "det_hvp_value", "frobenius_grad", "frobenius_hvp", "logdet_grad",
           "logdet_hvp"]

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


def _closed_form(W: np.ndarray, C: np.ndarray) -> None:
    launch(_cofactor.closed_form, W.shape[0], W.size, W, C)


def det_grad(A: np.ndarray) -> np.ndarray:
    if A.shape[-1] in (2, 3) and A.dtype != work_dtype(A.dtype):
        # float32 / complex64: widened per matrix inside the kernel, so the
        # call moves the narrow dtype's bytes only
        out = np.empty_like(A)
        launch(_cofactor.closed_form_narrow, A.shape[0], A.size, A, out)
        return out
    # the host (LAPACK getrf/getri per matrix) from config.numba_det_lapack_min_n on
    C: np.ndarray = routing.det_grad(A, closed_form=_closed_form, eliminate=gauss_jordan_path,
                                     host=on_host, host_min_n=config.numba_det_lapack_min_n,
                                     positive_zeros=True)
    return C


def logdet_grad(A: np.ndarray) -> np.ndarray:
    if A.shape[-1] in (2, 3):
        return logdet_small(A)[0]
    G: np.ndarray = routing.logdet_grad(A, eliminate=gauss_jordan_path, host=on_host,
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
    p, dp = _charpoly_orders(A, x, 1)
    return p, dp


def charpoly_derivs(A: np.ndarray, x: np.ndarray, order: int) -> tuple[np.ndarray, ...]:
    """``(p, p′, …, p⁽ᵒʳᵈᵉʳ⁾)``: p and p′ exactly as :func:`charpoly_deriv`
    computes them (the same code), the orders from 2 on by the
    ``hyman_orders`` kernel on the same Hessenberg forms (one reduction per
    matrix; matrices that took the LU route for p and p′ are reduced for
    them), orders ≥ n the constants n!, 0."""
    return _charpoly_orders(A, x, order)


def _higher(H: np.ndarray, xs: np.ndarray, r: int, kk: np.ndarray, kkmax: np.ndarray,
            x: np.ndarray, n: int, dtype: np.dtype[Any],
            reduced: np.ndarray) -> list[np.ndarray]:
    """Orders 2 … r (< n) at the scaled points ``xs`` of the reduced,
    scaled ``H`` (work dtype), unscaled and with the far and infinite points'
    rules applied (``x``: the unscaled points; ``reduced``: the slots the
    Householder reduction produced, whose negligible subdiagonal entries are
    deflated, as for p and p′)."""
    with np.errstate(all="ignore"):
        sub = host_charpoly.subdiagonal(H, reduced)
    qm = np.empty((*xs.shape, r + 1), dtype=H.dtype)
    qe = np.zeros((*xs.shape, r + 1), dtype=np.int64)
    with np.errstate(all="ignore"):
        launch(_charpoly.hyman_orders, xs.size, 8 * (r + 1) * xs.size * n * n, H, sub,
               np.ascontiguousarray(xs), r, qm, qe)
    vals = host_charpoly.unscale_orders([qm[..., m] for m in range(r + 1)],
                                        [qe[..., m] for m in range(r + 1)], kk, n, dtype)
    host_charpoly.apply_special_points(vals, x, kkmax, n)
    return vals[2:]


def _charpoly_orders(A: np.ndarray, x: np.ndarray, order: int) -> tuple[np.ndarray, ...]:
    B, n, _ = A.shape
    K = x.shape[1]
    r = min(order, n - 1)
    if n == 1:
        p1, dp1 = host_charpoly.linear_case(A, x)
        out1 = [p1, dp1][: order + 1]
        if order > 1:
            out1 += host_charpoly.constant_orders(x.shape, n, order, A.dtype)[1:]
        return tuple(out1)
    As, k, kmax = host_charpoly.scale_matrices(A, _charpoly.balance_batch)
    high = [np.empty(x.shape, dtype=A.dtype) for _ in range(2, r + 1)]
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
    if r >= 2 and idx.size < B:  # the LU route's matrices: reduced for the higher orders
        done = np.flatnonzero(~todo)
        with np.errstate(all="ignore"):
            reduced_d = ~host_charpoly.is_hessenberg(As[done])
            Hd = _hessenberg(As[done])
        Hd = Hd.astype(np.result_type(Hd.dtype, work_dtype(x.dtype)), copy=False)
        for sl in host_charpoly.point_blocks(done.size, 4 * (r + 1), K):
            xs = host_charpoly.scale_points(x[done, sl], k[done])
            for h, v in zip(high, _higher(Hd, xs, r, k[done], kmax[done], x[done, sl], n,
                                          A.dtype, reduced_d), strict=True):
                h[done, sl] = v
    if idx.size == 0:
        host_charpoly.apply_far_points(p, dp, x, kmax, n)
        return _with_constants((p, dp, *high), x.shape, n, order)
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
        if r >= 2:
            for h, v in zip(high, _higher(Hw, xs, r, kk, kkmax, x[rows, sl], n, A.dtype, reduced),
                            strict=True):
                h[rows, sl] = v
    if idx.size < B:
        done = np.flatnonzero(~todo)
        pd, dpd = p[done], dp[done]
        host_charpoly.apply_far_points(pd, dpd, x[done], kmax[done], n)
        p[done], dp[done] = pd, dpd
    return _with_constants((p, dp, *high), x.shape, n, order)


def _with_constants(parts: tuple[np.ndarray, ...], shape: tuple[int, ...], n: int,
                    order: int) -> tuple[np.ndarray, ...]:
    """``parts`` (orders 0 … min(order, n − 1), at least p and p′) cut to
    ``order + 1`` and completed with the constant orders ≥ n."""
    out = list(parts[: order + 1])
    if order >= n:
        out += host_charpoly.constant_orders(shape, n, order, parts[0].dtype)[len(out) - n:]
    return tuple(out)


# ---------------------------------------------------------------- second derivatives
def _redo_on_host(A: np.ndarray, V: np.ndarray, H: np.ndarray, redo: np.ndarray) -> None:
    """The slots whose products overflowed (``redo``): the host's ``det_hvp``,
    which redoes them on the equilibrated pair (rare)."""
    idx = np.flatnonzero(redo)
    if idx.size:
        H[idx] = host_hessian.det_hvp(A[idx], V[idx])


def det_hvp(A: np.ndarray, V: np.ndarray) -> np.ndarray:
    """``H = D cofactor(A)[V]`` per slot: the polynomial kernels for
    ``n = 2, 3`` (:mod:`matgrad_numba._hessian`), the host algorithm of
    :func:`matgrad.kernels.hessian.det_hvp` otherwise."""
    B, n, _ = A.shape
    if n == 1 or n >= 4 or B == 0:
        return host_hessian.det_hvp(A, V)
    H = np.empty_like(A)
    redo = np.zeros(B, dtype=np.bool_)
    launch(_hessian.hvp_small, B, 2 * A.size, A, V, H, redo)
    _redo_on_host(A, V, H, redo)
    return H


def det_hvp_value(A: np.ndarray, V: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(det A, cofactor(A), H)``: this backend's ``det_value_grad`` and
    :func:`det_hvp`, so each is bit-identical to its own operation.  (A
    kernel doing both in one pass over ``A`` was measured no faster than the
    two: 105 against 107 ms for 10⁶ float64 3×3 pairs on a loaded 2-core
    machine, while compiling 3.5 s more per dtype.)"""
    d, C = _values.det_value_grad(A)
    return d, C, det_hvp(A, V)


def det_hessian(A: np.ndarray) -> np.ndarray:
    """``Hess[b, i, j, k, l] = ∂²det(A_b)/∂A_ij∂A_kl`` ``(B, n, n, n, n)``: a
    kernel writing the constants (``n = 2``) or the entries ``±A_mq``
    (``n = 3``); :func:`matgrad.kernels.hessian.det_hessian` otherwise
    (which raises ValueError beyond its ``MAX_HESSIAN_N``)."""
    B, n, _ = A.shape
    if n not in (2, 3) or B == 0:
        return host_hessian.det_hessian(A)
    out = np.zeros((B, n, n, n, n), dtype=A.dtype)
    launch(_hessian.hessian_small, B, out.size, A, out)
    return out


def logdet_hvp(A: np.ndarray, V: np.ndarray) -> np.ndarray:
    """``H = −G·Vᵀ·G`` with ``G = A⁻ᵀ`` (``−G·Vᴴ·G``, ``G = A⁻ᴴ``, for complex),
    the derivative of ``logdet_grad`` along ``V``.

    ``G`` is this backend's :func:`logdet_grad` (its kernels, its accuracy
    contract).  Where every entry of ``G`` and ``V`` is finite with its
    nonzero parts within 2^±200, no product or sum of the sandwich can over-
    or underflow, and it is formed directly (two batched matrix products);
    other slots (``G`` or ``V`` spanning more binades, a NaN slot) take the
    host algorithm of :func:`matgrad.kernels.hessian.logdet_hvp`, which
    scales ``G`` and ``V`` by exact powers of two first.  A per-slot
    decision: each slot's result is its own."""
    B, n, _ = A.shape
    if B == 0 or n < 2 or n >= config.numba_det_lapack_min_n:
        return host_hessian.logdet_hvp(A, V)
    W, Vw = widen(A), widen(V)
    G = logdet_grad(W)
    H = np.empty_like(W)
    with np.errstate(all="ignore"):
        plain = host_cofactor._in_range(G, 200) & host_cofactor._in_range(Vw, 200)
        p = np.flatnonzero(plain)
        if p.size:
            Gp = G[p]
            H[p] = -(Gp @ np.swapaxes(Vw[p], -1, -2).conj() @ Gp)
        rest = np.flatnonzero(~plain)
        if rest.size:
            H[rest] = host_hessian.logdet_hvp(W[rest], Vw[rest])
    return narrow(H, A.dtype)


def frobenius_hvp(X: np.ndarray, V: np.ndarray) -> np.ndarray:
    """``(V − G·⟨G, V⟩)/‖X‖_F`` per slot: one work item per matrix on the
    real views (:func:`matgrad_numba._hessian.frobenius_hvp_rows`)."""
    B = X.shape[0]
    if X.size == 0:
        return host_hessian.frobenius_hvp(X, V)
    out = np.empty_like(X)
    real = np.empty(0, X.dtype).real.dtype
    xf, vf, of = (a.reshape(B, -1).view(real) for a in (X, V, out))
    launch(_hessian.frobenius_hvp_rows, B, 4 * xf.size, xf, vf, of)
    return out
