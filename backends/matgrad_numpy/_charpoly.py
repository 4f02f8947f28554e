"""``p(x) = det(xI − A)`` and ``p′(x)`` at many points (NUMERICS §3).

1. Scale: ``A = 2ᵏ·As`` with ``max|As|`` in [0.5, 1) (exact), points likewise;
   ``p_A(x) = 2^{kn} p_As(x·2⁻ᵏ)`` and ``p′_A(x) = 2^{k(n−1)} p′_As(x·2⁻ᵏ)``.
2. Reduce once per matrix to upper Hessenberg ``H = Qᴴ As Q`` (p unchanged):
   a vectorised Householder reduction over the batch for small ``n``,
   LAPACK ``gehrd`` per matrix for large ``n``.
3. Hyman's recurrence per point, vectorised over (matrix, point):
   with ``M = xI − H``, solve ``M v = α e₁`` from the bottom (``v_n = 1``),
   ``p = α·Π h_{i,i−1}``, and differentiate the recurrence for ``p′``.  Nothing
   divides by ``x − λ``, so it is exact at eigenvalues.  A negligible
   subdiagonal ``|h_{i,i−1}| ≤ eps(|h_{i−1,i−1}| + |h_ii|)`` ends a diagonal
   block: ``p = Π p_b`` and ``p′ = Σ p′_b Π_{c≠b} p_c`` (product rule,
   accumulated block by block).  ``v`` and ``p`` are kept as mantissa·2ᵉ,
   so only a truly overflowing result is inf.
Cost: O(n³) per matrix plus O(n²) per point; memory O(n·K) per matrix.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg

from ._scaling import exponent_of_max, ldexp, narrow, work_dtype

__all__ = [
    "LAPACK_MIN_N",
    "charpoly_deriv",
    "hessenberg_batched",
    "is_hessenberg",
    "linear_case",
    "scale_problem",
    "subdiagonal",
    "unscale",
]

#: From this size on, LAPACK per matrix beats the vectorised reduction.
LAPACK_MIN_N = 64
_RESCALE = 2.0**200  # renormalise v when it leaves [2⁻²⁰⁰, 2²⁰⁰]


def is_hessenberg(A: np.ndarray) -> np.ndarray:
    """Per matrix: already upper Hessenberg (zero below the subdiagonal)?  O(n²)."""
    return np.logical_not(np.tril(A, -2).any(axis=(1, 2)))


def hessenberg_batched(A: np.ndarray) -> np.ndarray:
    """Upper Hessenberg ``H`` unitarily similar to each ``A[b]`` (a new array).

    Matrices that already are upper Hessenberg (e.g. reduced once by the Dask
    backend for many point chunks) are copied, not reduced again.
    """
    done = is_hessenberg(A)
    if done.any():
        out = A.copy()
        todo = np.flatnonzero(~done)
        if todo.size:
            out[todo] = hessenberg_batched(A[todo])
        return out
    B, n, _ = A.shape
    if n >= LAPACK_MIN_N:
        out = np.empty_like(A)
        for b in range(B):
            out[b] = scipy.linalg.hessenberg(A[b], check_finite=False)
        return out
    H = A.copy()
    for k in range(n - 2):
        x = H[:, k + 1 :, k]
        norm = np.sqrt((np.abs(x) ** 2).sum(axis=1))  # |x| ≤ 1 after scaling
        x0 = x[:, 0]
        mag0 = np.abs(x0)
        phase = np.where(mag0 == 0, 1, x0 / np.where(mag0 == 0, 1, mag0))
        v = x.copy()
        v[:, 0] += phase * norm  # x − α e₁ with α = −phase·‖x‖: no cancellation
        vnorm = np.sqrt((np.abs(v) ** 2).sum(axis=1))
        v /= np.where(vnorm == 0, 1, vnorm)[:, None]  # zero column: P = I
        # H ← P H P with P = I − 2 v vᴴ (Hermitian, unitary)
        w = np.einsum("bi,bij->bj", v.conj(), H[:, k + 1 :, k:])
        H[:, k + 1 :, k:] -= 2 * v[:, :, None] * w[:, None, :]
        w = np.einsum("bij,bj->bi", H[:, :, k + 1 :], v)
        H[:, :, k + 1 :] -= 2 * w[:, :, None] * v.conj()[:, None, :]
        H[:, k + 2 :, k] = 0
    return H


def _renormalise(
    m: np.ndarray, dm: np.ndarray, e: np.ndarray, where: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rescale the pair ``(m, dm)·2ᵉ`` so that max(|m|, |dm|) is in [0.5, 1)."""
    k = exponent_of_max(np.maximum(np.abs(m), np.abs(dm)))
    k = np.where(where, k, 0)
    return ldexp(m, -k), ldexp(dm, -k), e + k


def _hyman(H: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(p, p′)`` of ``H (B, n, n)`` (upper Hessenberg) at ``x (B, K)``, as
    mantissas and a shared exponent: ``p = pm·2^pe``, ``p′ = dpm·2^pe``."""
    B, n, _ = H.shape
    K = x.shape[1]
    dtype = np.result_type(H, x)
    sub = subdiagonal(H)

    V = np.zeros((B, n, K), dtype=dtype)
    dV = np.zeros((B, n, K), dtype=dtype)
    V[:, n - 1] = 1
    S = np.zeros((B, K), dtype=np.int64)  # V, dV carry a factor 2^S
    hm = np.ones(B, dtype=H.dtype)  # Π h of the current block, as hm·2^he
    he = np.zeros(B, dtype=np.int64)
    pm = np.ones((B, K), dtype=dtype)  # (p, p′) of finished blocks, ·2^pe
    dpm = np.zeros((B, K), dtype=dtype)
    pe = np.zeros((B, K), dtype=np.int64)

    for i in range(n - 1, -1, -1):
        row = H[:, i : i + 1, i:]  # (B, 1, n−i)
        s = x * V[:, i] - np.matmul(row, V[:, i:])[:, 0]
        ds = x * dV[:, i] - np.matmul(row, dV[:, i:])[:, 0] + V[:, i]
        h = sub[:, i]  # h_{i,i−1}; 0 for i = 0, where the top block ends
        end = h == 0
        if end.any():
            # Block [i, …] is finished: p_b = s·Πh·2^S, p′_b = ds·Πh·2^S.
            a = s * hm[:, None]
            da = ds * hm[:, None]
            e_new = pe + S + he[:, None]
            endk = end[:, None]
            pm, dpm, pe = (
                np.where(endk, pm * a, pm),
                np.where(endk, dpm * a + pm * da, dpm),
                np.where(endk, e_new, pe),
            )
            pm, dpm, pe = _renormalise(pm, dpm, pe, np.broadcast_to(endk, pe.shape))
        if i == 0:
            break
        cont = ~end
        hsafe = np.where(end, 1, h)[:, None]
        if end.any():
            V[end, i:] = 0
            dV[end, i:] = 0
            S[end] = 0
            hm[end], he[end] = 1, 0
        V[:, i - 1] = np.where(cont[:, None], s / hsafe, 1)
        dV[:, i - 1] = np.where(cont[:, None], ds / hsafe, 0)
        # Π h of the block, renormalised
        hm = np.where(cont, hm * np.where(cont, h, 1), hm)
        kh = exponent_of_max(np.abs(hm))
        hm, he = ldexp(hm, -kh), he + kh
        # keep V within range: rescale the (matrix, point) pairs that left it
        big = np.maximum(np.abs(V[:, i - 1]), np.abs(dV[:, i - 1]))
        out = (big > _RESCALE) | ((big < 1 / _RESCALE) & (big > 0))
        if out.any():
            k = np.where(out, exponent_of_max(big), 0)
            V[:, i - 1 :] = ldexp(V[:, i - 1 :], -k[:, None, :])
            dV[:, i - 1 :] = ldexp(dV[:, i - 1 :], -k[:, None, :])
            S += k
    return pm, dpm, pe


def subdiagonal(H: np.ndarray) -> np.ndarray:
    """``sub[b, i] = h_{i,i−1}`` (``sub[b, 0] = 0``), with negligible entries,
    ``|h_{i,i−1}| ≤ eps(|h_{i−1,i−1}| + |h_ii|)`` (LAPACK's deflation test),
    set to exactly 0: a zero ends a diagonal block of the recurrence."""
    B, n, _ = H.shape
    diag = np.abs(H[:, np.arange(n), np.arange(n)])
    sub = np.zeros((B, n), dtype=H.dtype)
    sub[:, 1:] = H[:, np.arange(1, n), np.arange(n - 1)]
    negligible = np.abs(sub[:, 1:]) <= np.finfo(np.float64).eps * (diag[:, :-1] + diag[:, 1:])
    sub[:, 1:][negligible] = 0
    return sub


def scale_problem(A: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(As, xs, k)`` in float64/complex128 with ``A = 2ᵏ·As``, ``x = 2ᵏ·xs``
    and ``max|As|`` in [0.5, 1) per matrix (exact)."""
    W = A.astype(work_dtype(A.dtype), copy=False)
    xw = x.astype(work_dtype(x.dtype), copy=False)
    with np.errstate(all="ignore"):
        k = exponent_of_max(np.abs(W).max(axis=(1, 2)))
        return ldexp(W, -k[:, None, None]), ldexp(xw, -k[:, None]), k


def unscale(pm: np.ndarray, dpm: np.ndarray, pe: np.ndarray, k: np.ndarray, n: int,
            dtype: np.dtype[Any]) -> tuple[np.ndarray, np.ndarray]:
    """``p_A = 2^{kn} p_As`` and ``p′_A = 2^{k(n−1)} p′_As`` from mantissas
    ``pm, dpm`` and exponents ``pe``, rounded once to ``dtype``."""
    with np.errstate(all="ignore"):
        p = ldexp(pm, pe + (k * n)[:, None])
        dp = ldexp(dpm, pe + (k * (n - 1))[:, None])
    return narrow(p, dtype), narrow(dp, dtype)


def linear_case(A: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """n = 1: ``p = x − a``, ``p′ = 1`` whatever ``a`` is (even inf or NaN)."""
    return (x - A[:, 0, :1]).astype(A.dtype), np.ones(x.shape, A.dtype)


def charpoly_deriv(A: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = A.shape[-1]
    if n == 1:
        return linear_case(A, x)
    As, xs, k = scale_problem(A, x)
    with np.errstate(all="ignore"):
        pm, dpm, pe = _hyman(hessenberg_batched(As), xs)
    return unscale(pm, dpm, pe, k, n, A.dtype)
