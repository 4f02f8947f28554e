"""``p(x) = det(xI − A)`` and ``p′(x)`` at many points, vectorised on the host.

The NumPy backend's algorithm; the other backends reuse its scaling,
Hessenberg reduction, deflation test, power rule and unscaling around their
own Hyman kernels (:func:`matgrad.kernels.scalar.hyman_point`).

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
   accumulated block by block); so does one below ``eps·‖H‖_F``, a backward
   perturbation of the size the reduction itself makes (without it, the
   rounding noise of a rank-one matrix such as ``ones((64, 64))`` divides
   the recurrence by 1e-300).  ``v`` and ``p`` are kept as mantissa·2ᵉ,
   and ``v`` is renormalised whenever ``max(|v|, |v′|)`` leaves
   ``[2⁻¹⁰⁰, 2^min(100, 850 − log2|x|)]``, so ``x·v`` never overflows and only
   a truly overflowing result is inf.
4. Points so far from the matrix that ``|x| > 2^850·max|A|`` get the power
   rule ``p = xⁿ``, ``p′ = n·xⁿ⁻¹`` directly: every other term is below
   ``2⁻⁸⁵⁰`` relative.
Cost: O(n³) per matrix plus O(n²) per point; memory O(n·K) per matrix.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg

from .._config import config
from .scaling import exponent_of_max, ldexp, magnitude, mantissa_product, narrow, widen

__all__ = [
    "apply_far_points",
    "charpoly_deriv",
    "far_points",
    "hessenberg_batched",
    "is_hessenberg",
    "linear_case",
    "point_blocks",
    "power_rule",
    "scale_matrices",
    "scale_points",
    "subdiagonal",
    "unscale",
]

#: Renormalise v when max(|v|, |v′|) leaves [2^-RESCALE_EXP, 2^min(RESCALE_EXP, FAR_EXP − log2|x|)].
RESCALE_EXP = 100
#: Points with |x| > 2^FAR_EXP·max|A| take the power rule.
FAR_EXP = 850
#: Matrices to be reduced are scaled only to bring max|A| within 2^±SCALE_LIMIT;
#: already-Hessenberg ones only down to 2^HYMAN_LIMIT.
SCALE_LIMIT = 400
HYMAN_LIMIT = 800


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
    if n >= config.charpoly_lapack_min_n:
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


def _normalised(m: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(m, e)`` rescaled so that ``magnitude(m)`` is in [0.5, 1) (0 stays 0)."""
    k = exponent_of_max(magnitude(m))
    return ldexp(m, -k), e + k


def _close_block(pm: np.ndarray, dpm: np.ndarray, pe: np.ndarray, dpe: np.ndarray,
                 a: np.ndarray, da: np.ndarray, ea: np.ndarray, where: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fold a finished diagonal block ``(p_b, p′_b) = (a, da)·2^ea`` into
    ``(p, p′)`` by the product rule, ``p′ ← p′·p_b + p·p′_b``, ``p ← p·p_b``,
    where ``where`` is set.

    p and p′ keep exponents of their own: their ratio in the scaled problem is
    ``2⁻ᵏ`` times the true one, and partial products of small factors would
    underflow under a shared exponent (``diag(1e308, 1, 2, 3)``)."""
    a, ea1 = _normalised(a, ea)
    da, ea2 = _normalised(da, ea)
    t1, e1 = dpm * a, dpe + ea1
    t2, e2 = pm * da, pe + ea2
    # align the two terms of p′ on the larger exponent (a zero term has none)
    z1 = t1 == 0
    z2 = t2 == 0
    e = np.where(z1, e2, np.where(z2, e1, np.maximum(e1, e2)))
    with np.errstate(all="ignore"):
        new_dp = ldexp(t1, np.where(z1, 0, e1 - e)) + ldexp(t2, np.where(z2, 0, e2 - e))
    new_dp, new_dpe = _normalised(new_dp, e)
    new_p, new_pe = _normalised(pm * a, pe + ea1)
    return (np.where(where, new_p, pm), np.where(where, new_dp, dpm),
            np.where(where, new_pe, pe), np.where(where, new_dpe, dpe))


def _hyman(
    H: np.ndarray, x: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(p, p′)`` of ``H (B, n, n)`` (upper Hessenberg) at ``x (B, K)``, as
    mantissas and exponents: ``p = pm·2^pe``, ``p′ = dpm·2^dpe``."""
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
    pe = np.zeros((B, K), dtype=np.int64)  # p = pm·2^pe, p′ = dpm·2^dpe
    dpe = np.zeros((B, K), dtype=np.int64)
    # |x|·|v| ≤ 2^FAR_EXP·‖H‖, so that s/h (h ≥ eps·‖H‖ after deflation)
    # cannot overflow; v is renormalised to ~1, where v′ ≈ v·n/x stays normal.
    # ‖H‖ is estimated from below by its diagonal and subdiagonal (more
    # renormalisation, never less); the caller keeps |x| ≤ 2^FAR_EXP·max|H|.
    n_idx = np.arange(n)
    hmax = np.maximum(magnitude(H[:, n_idx, n_idx]).max(axis=1), magnitude(sub).max(axis=1))
    ex = np.clip(exponent_of_max(magnitude(x)) - exponent_of_max(hmax)[:, None], 0, FAR_EXP)
    hi = np.exp2(np.minimum(RESCALE_EXP, FAR_EXP - ex).astype(np.float64))
    lo = 2.0**-RESCALE_EXP

    for i in range(n - 1, -1, -1):
        row = H[:, i : i + 1, i:]  # (B, 1, n−i)
        s = x * V[:, i] - np.matmul(row, V[:, i:])[:, 0]
        ds = x * dV[:, i] - np.matmul(row, dV[:, i:])[:, 0] + V[:, i]
        h = sub[:, i]  # h_{i,i−1}; 0 for i = 0, where the top block ends
        end = h == 0
        if end.any():
            # Block [i, …] is finished: p_b = s·Πh·2^S, p′_b = ds·Πh·2^S.
            endk = np.broadcast_to(end[:, None], pe.shape)
            pm, dpm, pe, dpe = _close_block(pm, dpm, pe, dpe, s * hm[:, None],
                                            ds * hm[:, None], S + he[:, None], endk)
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
        kh = exponent_of_max(magnitude(hm))
        hm, he = ldexp(hm, -kh), he + kh
        # keep V within range: rescale the (matrix, point) pairs that left it
        big = np.maximum(magnitude(V[:, i - 1]), magnitude(dV[:, i - 1]))
        out = (big > hi) | ((big < lo) & (big > 0))
        if out.any():
            k = np.where(out, exponent_of_max(big), 0)
            V[:, i - 1 :] = ldexp(V[:, i - 1 :], -k[:, None, :])
            dV[:, i - 1 :] = ldexp(dV[:, i - 1 :], -k[:, None, :])
            S += k
    return pm, dpm, pe, dpe


def subdiagonal(H: np.ndarray) -> np.ndarray:
    """``sub[b, i] = h_{i,i−1}`` (``sub[b, 0] = 0``), with negligible entries
    set to exactly 0 (a zero ends a diagonal block of the recurrence):
    ``|h_{i,i−1}| ≤ eps(|h_{i−1,i−1}| + |h_ii|)`` (LAPACK's deflation test) or
    ``|h_{i,i−1}| ≤ eps‖H‖_F`` (below the reduction's own backward error)."""
    B, n, _ = H.shape
    eps = np.finfo(np.float64).eps
    diag = magnitude(H[:, np.arange(n), np.arange(n)])
    sub = np.zeros((B, n), dtype=H.dtype)
    sub[:, 1:] = H[:, np.arange(1, n), np.arange(n - 1)]
    # ‖H‖_F with a power-of-two scale: entries may reach 2^HYMAN_LIMIT, whose
    # squares overflow (an inf norm would deflate every subdiagonal)
    with np.errstate(over="ignore", invalid="ignore"):
        e = exponent_of_max(magnitude(H).max(axis=(1, 2)))
        Hs = ldexp(H, -e[:, None, None])
        norm = ldexp(np.sqrt((Hs.real**2 + Hs.imag**2 if np.iscomplexobj(Hs) else Hs**2)
                             .sum(axis=(1, 2))), e)
    mag = magnitude(sub[:, 1:])
    negligible = (mag <= eps * (diag[:, :-1] + diag[:, 1:])) | (mag <= eps * norm[:, None])
    sub[:, 1:][negligible] = 0
    return sub


def scale_matrices(A: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(As, k, kmax)`` in float64/complex128 with ``A = 2ᵏ·As`` (exact),
    ``max|A|`` in ``[2^(kmax−1), 2^kmax)`` (complex entries measured by
    max(|re|, |im|)), per matrix.

    Scaled only as far as needed: a scaling all the way to 1 would turn the
    small entries of a graded matrix such as ``diag(1e308, 1, 2, 3)`` into
    subnormals and lose their bits.  A matrix that needs the Householder
    reduction is brought within ``2^±SCALE_LIMIT``, where sums of squares
    cannot over- or underflow; one that already is upper Hessenberg
    (triangular, diagonal, reduced by the caller) only needs ``max|As|`` at
    most ``2^HYMAN_LIMIT`` for the recurrence, so its diagonal keeps every
    bit across a far wider range.  Decided per matrix, from that matrix.
    """
    W = widen(A)
    with np.errstate(all="ignore"):
        kmax = exponent_of_max(magnitude(W).max(axis=(1, 2)))
        reduced = is_hessenberg(W)
        top = np.where(reduced, HYMAN_LIMIT, SCALE_LIMIT)
        bottom = np.where(reduced, -1100, -SCALE_LIMIT)  # -1100: never scaled up
        k = np.where(kmax > top, kmax - top, np.where(kmax < bottom, kmax - bottom, 0))
        return ldexp(W, -k[:, None, None]), k, kmax


def scale_points(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """``x·2⁻ᵏ`` per matrix, in float64/complex128 (a new array)."""
    with np.errstate(all="ignore"):
        return ldexp(widen(x), -k[:, None])


def point_blocks(rows: int, width: int, K: int) -> list[slice]:
    """Slices of the point axis (length ``K``) holding about
    ``matgrad.config.charpoly_point_block`` workspace elements each, with
    ``rows·width`` elements per point: the recurrence needs O(rows·width)
    memory per point, so the extra memory stays bounded whatever ``K``."""
    step = max(1, config.charpoly_point_block // max(1, rows * width))
    return [slice(lo, min(K, lo + step)) for lo in range(0, K, step)]


def far_points(x: np.ndarray, kmax: np.ndarray) -> np.ndarray:
    """Finite points with ``|x| > 2^FAR_EXP·2^kmax`` (``2^kmax`` ≈ max|A| of
    their matrix): there ``p = xⁿ`` and ``p′ = n·xⁿ⁻¹`` to far below rounding,
    and the recurrence could overflow (so it is not asked)."""
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(x)
    return finite & (exponent_of_max(magnitude(x)) - kmax[:, None] > FAR_EXP)  # type: ignore[no-any-return]


def power_rule(x: np.ndarray, n: int, dtype: np.dtype[Any]) -> tuple[np.ndarray, np.ndarray]:
    """``(xⁿ, n·xⁿ⁻¹)`` for a 1-d array of points, in mantissa-exponent form
    so that only a truly overflowing power is inf."""
    xw = widen(x)
    kx = exponent_of_max(magnitude(xw))
    xm = ldexp(xw, -kx)
    m, e = mantissa_product(np.repeat(xm[:, None], n - 1, axis=1))  # xⁿ⁻¹ = m·2^(e + (n−1)kx)
    with np.errstate(all="ignore"):
        p = ldexp(m * xm, e + n * kx)
        dp = ldexp(m * n, e + (n - 1) * kx)
    return narrow(p, dtype), narrow(dp, dtype)


def apply_far_points(p: np.ndarray, dp: np.ndarray, x: np.ndarray,
                     kmax: np.ndarray, n: int) -> None:
    """Overwrite ``(p, p′)`` at the far points (see :func:`far_points`)."""
    far = far_points(x, kmax)
    if far.any():
        p[far], dp[far] = power_rule(x[far], n, p.dtype)


def unscale(pm: np.ndarray, dpm: np.ndarray, pe: np.ndarray, dpe: np.ndarray,
            k: np.ndarray, n: int, dtype: np.dtype[Any]) -> tuple[np.ndarray, np.ndarray]:
    """``p_A = 2^{kn} p_As`` and ``p′_A = 2^{k(n−1)} p′_As`` from mantissas
    ``pm, dpm`` and exponents ``pe, dpe``, rounded once to ``dtype``."""
    with np.errstate(all="ignore"):
        p = ldexp(pm, pe + (k * n)[:, None])
        dp = ldexp(dpm, dpe + (k * (n - 1))[:, None])
    return narrow(p, dtype), narrow(dp, dtype)


def linear_case(A: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """n = 1: ``p = x − a``, ``p′ = 1`` whatever ``a`` is (even inf or NaN).

    Silent like every other slot: a signalling NaN (or inf − inf) gives a
    quiet NaN in its own slot, never a floating-point warning."""
    with np.errstate(invalid="ignore", over="ignore"):
        return (x - A[:, 0, :1]).astype(A.dtype), np.ones(x.shape, A.dtype)


def charpoly_deriv(A: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = A.shape[-1]
    if n == 1:
        return linear_case(A, x)
    As, k, kmax = scale_matrices(A)
    with np.errstate(all="ignore"):  # NaN/inf slots stay in their own slot
        H = hessenberg_batched(As)
    p = np.empty(x.shape, dtype=A.dtype)
    dp = np.empty_like(p)
    # _hyman holds v and v′ for every (matrix, point) pair: 2·B·n per point
    for sl in point_blocks(A.shape[0], 2 * n, x.shape[1]):
        with np.errstate(all="ignore"):
            pm, dpm, pe, dpe = _hyman(H, scale_points(x[:, sl], k))
        p[:, sl], dp[:, sl] = unscale(pm, dpm, pe, dpe, k, n, A.dtype)
        apply_far_points(p[:, sl], dp[:, sl], x[:, sl], kmax, n)
    return p, dp
