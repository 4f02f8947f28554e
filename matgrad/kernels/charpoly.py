"""``p(x) = det(xI − A)`` and ``p′(x)`` at many points, vectorised on the host.

The NumPy backend's algorithm; the other backends reuse its balancing (or
their own kernel of it), scaling, Hessenberg reduction, deflation test,
power rule, infinity rule and unscaling around their own Hyman kernels
(:func:`matgrad.kernels.scalar.hyman_point`).

1. Balance (:func:`balance_batched`): LAPACK gebal's isolating permutation
   (matrices not yet upper Hessenberg) and power-of-two scaling, an exact
   similarity, so that ``D A D⁻¹`` is reduced like ``A``.
2. Scale: ``A = 2ᵏ·As`` with ``max|As|`` brought only as far as needed
   (exact), points likewise; ``p_A(x) = 2^{kn} p_As(x·2⁻ᵏ)`` and
   ``p′_A(x) = 2^{k(n−1)} p′_As(x·2⁻ᵏ)``.
3. Reduce once per matrix to upper Hessenberg ``H = Qᴴ As Q`` (p unchanged):
   a vectorised Householder reduction over the batch for small ``n``,
   LAPACK ``gehrd`` per matrix for large ``n``.
4. Hyman's recurrence per point, vectorised over (matrix, point):
   with ``M = xI − H``, solve ``M v = α e₁`` from the bottom (``v_n = 1``),
   ``p = α·Π h_{i,i−1}``, and differentiate the recurrence for ``p′``.  Nothing
   divides by ``x − λ``, so it is exact at eigenvalues.  A negligible
   subdiagonal (:func:`subdiagonal`) ends a diagonal block: ``p = Π p_b`` and
   ``p′ = Σ p′_b Π_{c≠b} p_c`` (product rule, accumulated block by block).
   ``v``, ``v′``, ``p`` and ``p′`` are kept as mantissa·2ᵉ, ``v`` and ``v′``
   entry by entry where needed (:func:`_place`), so only a truly
   overflowing result is inf and only a truly underflowing one 0.
5. Points so far from the matrix that ``|x| > 2^850·max|A|`` get the power
   rule ``p = xⁿ``, ``p′ = n·xⁿ⁻¹`` directly (every other term is below
   ``2⁻⁸⁵⁰`` relative); points at infinity its limit (:func:`infinity_rule`).
Cost: O(n³) per matrix plus O(n²) per point; memory O(n·K) per matrix.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
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
#: ``kmax`` of a matrix with a NaN or inf entry: no point is far from it, and
#: its p at an infinite point is NaN (it depends on the non-finite entries).
NONFINITE_KMAX = 1 << 20


# ------------------------------------------------------------------ balancing
#: Balancing never scales a row or column maximum past 2^±BALANCE_LIMIT:
#: LAPACK gebal's SFMAX2/SFMIN2 for float64 (1/(2·tiny/ulp) = 2^969), so
#: that a scaled entry neither overflows nor loses its leading bits to
#: subnormals (an entry far below its row's maximum may still become
#: subnormal: a perturbation below 2⁻¹⁰⁵ of that maximum).
BALANCE_LIMIT = 969
#: A scaling is applied only where it shrinks ‖row‖₂ + ‖column‖₂ below
#: BALANCE_FACTOR times its old value (LAPACK gebal's FACTOR).
BALANCE_FACTOR = 0.95
#: At most this many sweeps per matrix: each applied step shrinks ‖A‖_F by a
#: fixed factor, so the iteration ends, and in practice within a few sweeps;
#: the cap only bounds the time (a partly balanced matrix is as similar).
BALANCE_SWEEPS = 100
#: Matrices of this order or larger isolate eigenvalues one matrix at a time
#: with incremental counts (O(n²) however many steps); smaller ones over the
#: batch at once (O(n²) per step, at most n steps).
ISOLATE_ONE_MIN_N = 32

#: A balancer: ``balance(W, active, permute)`` balances ``W[b]`` in place
#: where ``active[b]``, permuting it first where ``permute[b]``.
Balancer = Callable[[np.ndarray, np.ndarray, np.ndarray], None]


def _isolation_keys_batched(nz: np.ndarray, permute: np.ndarray) -> np.ndarray:
    """Sort keys of :func:`isolation_permutation` for a batch, all at once."""
    B, n, _ = nz.shape
    idx = np.arange(n)
    big = (n + 1) * (n + 1)
    key = np.broadcast_to(big + idx, (B, n)).copy()  # the middle block, in order
    active = np.ones((B, n), dtype=bool)
    for t in range(n):  # rows with no off-diagonal entry in the active columns
        cand = active & permute[:, None] & ~(nz & active[:, None, :]).any(axis=2)
        if not cand.any():
            break
        key[cand] = (2 * big + (n - t) * (n + 1) + np.broadcast_to(idx, (B, n)))[cand]
        active &= ~cand
    for t in range(n):  # columns with no off-diagonal entry in the active rows
        cand = active & permute[:, None] & ~(nz & active[:, :, None]).any(axis=1)
        if not cand.any():
            break
        key[cand] = (t * (n + 1) + np.broadcast_to(idx, (B, n)))[cand]
        active &= ~cand
    return key


def _isolation_keys_one(nz: np.ndarray) -> np.ndarray:
    """The same keys for one matrix, with running counts of off-diagonal
    entries: each step costs O(n·removed), O(n²) in all."""
    n = nz.shape[0]
    idx = np.arange(n)
    big = (n + 1) * (n + 1)
    key = big + idx
    active = np.ones(n, dtype=bool)
    count = nz.sum(axis=1)  # per row, in the active columns
    t = 0
    cand = np.flatnonzero(count == 0)
    while cand.size:
        key[cand] = 2 * big + (n - t) * (n + 1) + cand
        active[cand] = False
        count -= nz[:, cand].sum(axis=1)
        cand = np.flatnonzero(active & (count == 0))
        t += 1
    count = (nz & active[:, None]).sum(axis=0)  # per column, in the active rows
    t = 0
    cand = np.flatnonzero(active & (count == 0))
    while cand.size:
        key[cand] = t * (n + 1) + cand
        active[cand] = False
        count -= nz[cand, :].sum(axis=0)
        cand = np.flatnonzero(active & (count == 0))
        t += 1
    out: np.ndarray = key
    return out


def isolation_permutation(W: np.ndarray, permute: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(perm, lo, hi)`` per matrix: ``W[perm][:, perm]`` is block upper
    triangular, ``[[T₁, X, Y], [0, M, Z], [0, 0, T₂]]`` with ``T₁`` (rows
    ``< lo``) and ``T₂`` (rows ``≥ hi``) upper triangular: LAPACK gebal's
    permutation step, which isolates the eigenvalues it can see from the
    zero pattern alone (so ``D W D⁻¹`` gets the same permutation).

    A row with no off-diagonal entry among the active columns goes to the
    bottom, repeatedly; then a column with none among the active rows to the
    top.  All such rows (columns) of one step move at once, in index order:
    the order within a step does not matter, since they are not coupled.
    The middle block is ordered by decreasing ``|w_ii|`` (ties by index).
    ``permute[b]`` False: the identity, ``lo = 0``, ``hi = n``.
    """
    B, n, _ = W.shape
    nz = W != 0
    nz[:, np.arange(n), np.arange(n)] = False
    if n >= ISOLATE_ONE_MIN_N:
        key = np.broadcast_to((n + 1) * (n + 1) + np.arange(n), (B, n)).copy()
        for b in np.flatnonzero(permute):
            key[b] = _isolation_keys_one(nz[b])
    else:
        key = _isolation_keys_batched(nz, permute)
    # the middle block by decreasing |diagonal| (ties by index): a graded
    # matrix then meets the Householder reduction with its large entries at
    # the top left, outside the first reflectors (the diagonal, and so this
    # order, is the same for D W D⁻¹)
    big = (n + 1) * (n + 1)
    middle = (key // big == 1) & permute[:, None]
    idx = np.broadcast_to(np.arange(n), (B, n))
    mag = np.where(middle, magnitude(W[:, np.arange(n), np.arange(n)]), -1.0)
    order = np.lexsort((idx, -mag), axis=-1)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, idx, axis=1)
    key = np.where(middle, big + rank, key)
    perm = np.argsort(key, axis=1, kind="stable")
    group = np.take_along_axis(key, perm, axis=1) // big
    lo = (group == 0).sum(axis=1)
    hi = n - (group == 2).sum(axis=1)
    return perm, lo, hi


def _norms(X: np.ndarray, emax: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(f, e)`` with ``‖X[..., :]‖₂ = f·2ᵉ``, ``f`` in [0.5, 1) (0 for a zero
    vector).  Overflow- and underflow-free: the entries are scaled by
    ``2^-emax`` (exactly; ``emax`` the frexp exponent of ``max|X|``, computed
    here unless given) before they are squared.  A contiguous last axis, so
    that each vector's sum is the same whatever the leading axes hold."""
    if emax is None:
        emax = exponent_of_max(magnitude(X).max(axis=-1, initial=0.0))
    S = ldexp(X, -emax[..., None])
    sq = S.real * S.real + S.imag * S.imag if np.iscomplexobj(S) else S * S
    f, e = np.frexp(np.sqrt(sq.sum(axis=-1)))
    return f, e.astype(np.int64) + emax


def balance_steps(cf: np.ndarray, ce: np.ndarray, rf: np.ndarray, re: np.ndarray,
                  ca: np.ndarray, ra: np.ndarray) -> np.ndarray:
    """The exponent ``e`` of each balancing step (0: no step), from the norms
    ``c = cf·2^ce`` of a column and ``r = rf·2^re`` of its row (frexp form),
    and the frexp exponents ``ca``, ``ra`` of their maxima.

    Unguarded, LAPACK gebal's doubling loops end at the ``e`` with
    ``r/c ∈ (2^(2e−1), 2^(2e+1)]``: found here from the exponents with exact
    comparisons.  Clamped so that the column maximum (scaled by ``2ᵉ``) and
    the row maximum (by ``2⁻ᵉ``) stay within ``2^±BALANCE_LIMIT``, and
    taken only where ``c·2ᵉ + r·2⁻ᵉ < BALANCE_FACTOR·(c + r)``."""
    d = re - ce
    e = np.where(d % 2 == 0, d // 2, np.where(rf <= cf, (d - 1) // 2, (d + 1) // 2))
    L = BALANCE_LIMIT
    up = np.minimum(L - ca, ra - 1 + L)  # c·2ᵉ ≤ 2^L, r·2⁻ᵉ ≥ 2^-L
    down = np.maximum(ra - L, 1 - L - ca)  # r·2⁻ᵉ ≤ 2^L, c·2ᵉ ≥ 2^-L
    e = np.where(e > 0, np.minimum(e, np.maximum(up, 0)), np.maximum(e, np.minimum(down, 0)))
    top = np.maximum(ce, re)
    with np.errstate(under="ignore"):
        old = np.ldexp(cf, ce - top) + np.ldexp(rf, re - top)
        new = np.ldexp(cf, ce + e - top) + np.ldexp(rf, re - e - top)
    take = (e != 0) & (cf > 0) & (rf > 0) & (new < BALANCE_FACTOR * old)
    return np.where(take, e, 0)


def _scale_index(W: np.ndarray, i: int, e: np.ndarray) -> None:
    """Row ``i`` times ``2⁻ᵉ``, column ``i`` times ``2ᵉ`` (per matrix), the
    diagonal entry untouched (not scaled down and back up through a subnormal)."""
    d = W[:, i, i].copy()
    W[:, i, :] = ldexp(W[:, i, :], -e[:, None])
    W[:, :, i] = ldexp(W[:, :, i], e[:, None])
    W[:, i, i] = d


def _all_steps(W: np.ndarray, act: np.ndarray) -> np.ndarray:
    """The step of every index of every matrix from the current norms (what a
    sweep would do at each index if no earlier index moved)."""
    mag = magnitude(W)
    ca = exponent_of_max(mag.max(axis=1))
    ra = exponent_of_max(mag.max(axis=2))
    if act.all():  # nothing isolated: the norms are over whole rows and columns
        cf, ce = _norms(np.ascontiguousarray(W.transpose(0, 2, 1)), ca)
        rf, re = _norms(W, ra)
    else:
        Wm = W * (act[:, :, None] & act[:, None, :])
        cf, ce = _norms(np.ascontiguousarray(Wm.transpose(0, 2, 1)))
        rf, re = _norms(Wm)
    steps = balance_steps(cf, ce, rf, re, ca, ra)
    out: np.ndarray = np.where(act, steps, 0)
    return out


def balance_batched(W: np.ndarray, active: np.ndarray, permute: np.ndarray) -> None:
    """Balance each ``W[b]`` (float64/complex128, C-contiguous) in place
    where ``active[b]``: an exact similarity ``P D⁻¹ W D Pᵀ``, ``p`` unchanged.

    First, where ``permute[b]``, :func:`isolation_permutation`.  Then
    LAPACK gebal's scaling (job 'S', the 2-norm version of James, Langou and
    Lowery, 2014) on the middle block ``lo ≤ i < hi``: sweep i over it,
    ``c = ‖W[lo:hi, i]‖₂``, ``r = ‖W[i, lo:hi]‖₂`` (the diagonal included, so
    that a dominant diagonal is not unbalanced to shrink the rest), and scale
    row i by ``2⁻ᵉ`` and column i by ``2ᵉ`` with ``e`` from
    :func:`balance_steps`; repeat until a sweep changes nothing.  Power-of-two
    factors only, so every entry is scaled exactly (barring the guarded
    subnormals) and ``D A D⁻¹`` balances like ``A``.  Each matrix is
    balanced on its own; a matrix that is balanced already (the usual case)
    costs one vectorised pass over the batch.
    """
    B, n, _ = W.shape
    if n < 2 or not active.any():
        return
    lo = np.zeros(B, dtype=np.int64)
    hi = np.full(B, n, dtype=np.int64)
    permute = permute & active
    if permute.any():
        perm, lo, hi = isolation_permutation(W, permute)
        rows = np.flatnonzero(permute & (perm != np.arange(n)).any(axis=1))
        if rows.size:
            P = perm[rows]
            W[rows] = np.take_along_axis(np.take_along_axis(W[rows], P[:, :, None], axis=1),
                                         P[:, None, :], axis=2)
    idx = np.arange(n)
    act = (idx >= lo[:, None]) & (idx < hi[:, None]) & active[:, None]
    with np.errstate(all="ignore"):
        todo = np.flatnonzero(_all_steps(W, act).any(axis=1))
        if todo.size == 0:
            return
        Ws = W[todo]
        acts = act[todo]
        moving = np.ones(todo.size, dtype=bool)
        for _ in range(BALANCE_SWEEPS):
            changed = np.zeros(todo.size, dtype=bool)
            for i in range(n):
                live = acts[:, i] & moving
                if not live.any():
                    continue
                cf, ce = _norms(np.ascontiguousarray(Ws[:, :, i] * acts))
                rf, re = _norms(Ws[:, i, :] * acts)
                ca = exponent_of_max(magnitude(Ws[:, :, i]).max(axis=1))
                ra = exponent_of_max(magnitude(Ws[:, i, :]).max(axis=1))
                e = np.where(live, balance_steps(cf, ce, rf, re, ca, ra), 0)
                if e.any():
                    _scale_index(Ws, i, e)
                    changed |= e != 0
            moving &= changed
            if not moving.any():
                break
        W[todo] = Ws


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


def _close_block(P: list[np.ndarray], Pe: list[np.ndarray], a: list[np.ndarray],
                 ea: list[np.ndarray], where: np.ndarray
                 ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Fold a finished diagonal block into the running Taylor coefficients
    by the product rule, where ``where`` is set: with the block's
    ``a_j·2^ea_j`` (``a_0 = p_b``, ``a_1 = p′_b``, ``a_j = p_b⁽ʲ⁾/j!``)
    and the coefficients so far ``P_m·2^Pe_m``,
    ``P_m ← Σ_{j=0..m} P_{m−j}·a_j`` (Cauchy product of the two Taylor
    series; for m = 1 the familiar ``p′ ← p′·p_b + p·p′_b``).

    Every coefficient keeps an exponent of its own: their ratios in the
    scaled problem are powers of ``2⁻ᵏ`` times the true ones, and partial
    products of small factors would underflow under a shared exponent
    (``diag(1e308, 1, 2, 3)``).  The terms of a sum are aligned on the
    largest (a zero term has no exponent) and added in the order of ``j``."""
    r = len(P) - 1
    an, ean = [], []
    for j in range(r + 1):
        m_, e_ = _normalised(a[j], ea[j])
        an.append(m_)
        ean.append(e_)
    newP, newPe = [], []
    low = np.iinfo(np.int64).min // 2
    # a block of size s has a_j = 0 for j > s (a 1×1 block: x − h, 1, 0, …):
    # those terms are left out, so that n small blocks cost O(order) each, not
    # O(order²) (orders ≥ 2 only: p and p′ add their terms as they always have)
    live = [j < 2 or bool(an[j].any()) for j in range(r + 1)]
    for m in range(r + 1):
        if m == 0:
            v, e = _normalised(P[0] * an[0], Pe[0] + ean[0])
        else:
            js = [j for j in range(m + 1) if live[j]]
            t = [P[m - j] * an[j] for j in js]
            et = [Pe[m - j] + ean[j] for j in js]
            z = [tj == 0 for tj in t]
            top = np.maximum.reduce([np.where(zj, low, ej) for zj, ej in zip(z, et, strict=True)])
            e = np.where(top == low, et[-1], top)
            with np.errstate(all="ignore"):
                v = ldexp(t[0], np.where(z[0], 0, et[0] - e))
                for tj, zj, ej in zip(t[1:], z[1:], et[1:], strict=True):
                    v = v + ldexp(tj, np.where(zj, 0, ej - e))
            v, e = _normalised(v, e)
        newP.append(np.where(where, v, P[m]))
        newPe.append(np.where(where, e, Pe[m]))
    return newP, newPe


def _aligned_sum(t: np.ndarray, e: np.ndarray, fallback: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``Σ_j t_j·2^e_j`` as ``(m, E)``: every term aligned on the largest, so
    that a term far below it (2⁻¹⁰⁷⁴ relative) vanishes as it should and none
    overflows; ``E = fallback`` where every term is 0."""
    low = np.iinfo(np.int64).min // 2
    top = np.where(t != 0, e + exponent_of_max(magnitude(t)), low).max(axis=1)
    E = np.where(top == low, fallback, top)
    return ldexp(t, e - E[:, None]).sum(axis=1), E


def _aligned_row(hrow: np.ndarray, W: np.ndarray, EW: np.ndarray,
                 lower: np.ndarray | None, Elower: np.ndarray | None, x: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``(s, Es)`` of one row of the recurrence for one order, for pairs
    whose entries span several exponents (``w_j = W_j·2^EW_j``):
    ``s·2^Es = x·w_i + l_i − Σ_j h_ij w_j``, aligned on its largest term,
    where ``l_i = lower·2^Elower`` is the entry i of the order below (absent
    for order 0: ``s = x·v_i − Σ_j h_ij v_j``).  Arrays are (pairs, n − i);
    column 0 is entry i."""
    if lower is None or Elower is None:
        return _aligned_sum(np.concatenate([(x * W[:, 0])[:, None], -(hrow * W)], axis=1),
                            np.concatenate([EW[:, :1], EW], axis=1), EW[:, 0])
    return _aligned_sum(
        np.concatenate([(x * W[:, 0])[:, None], lower[:, None], -(hrow * W)], axis=1),
        np.concatenate([EW[:, :1], Elower[:, None], EW], axis=1), EW[:, 0])


def _add_aligned(a: np.ndarray, ea: np.ndarray, b: np.ndarray, eb: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``a·2^ea + b·2^eb`` as ``(m, E)``: a plain sum where the exponents agree
    (the usual case), else aligned on the larger term."""
    same = ea == eb
    if same.all():
        return a + b, ea
    ta = ea + exponent_of_max(magnitude(a))
    tb = eb + exponent_of_max(magnitude(b))
    top = np.where(a == 0, eb, np.where(b == 0, ea, np.maximum(ta, tb)))
    top = np.where(same, ea, top)
    m = np.where(same, a + b, ldexp(a, ea - top) + ldexp(b, eb - top))
    return m, top


def _place(V: np.ndarray, EV: np.ndarray | None, Ecur: np.ndarray, multi: np.ndarray,
           new: np.ndarray, newE: np.ndarray, i: int, hi: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray | None]:
    """Store ``new·2^newE`` as entry ``i − 1`` of ``V`` (``(B, n, K)``) and
    return the new current exponents and ``EV``; ``multi`` is updated in
    place.

    Kept at the current exponent ``Ecur`` while within ``[2⁻¹⁰⁰, hi]`` of it;
    else normalised to [0.5, 1) at an exponent of its own, and the entries at
    ``Ecur`` follow it where that is exact (none above ``hi`` or below the
    normal range), or stay where they are (then the pair has several
    exponents: ``multi``).  ``EV``, the exponent of every entry, exists only
    from the first pair that needs several on: until then every entry sits
    at ``Ecur`` (None), and the recurrence needs half the memory."""
    lo = 2.0**-RESCALE_EXP
    tiny = float(np.finfo(np.float64).tiny)
    big = magnitude(new)
    d = newE - Ecur
    if not d.any():  # the usual case: at the current exponent already
        keep = (big == 0) | ((big <= hi) & (big >= lo))
        V[:, i - 1] = new
        if EV is not None:
            EV[:, i - 1] = Ecur
    else:
        bigc = ldexp(big, d)
        keep = (big == 0) | ((bigc <= hi) & (bigc >= lo))
        V[:, i - 1] = np.where(keep, ldexp(new, d), new)
        if EV is not None:
            EV[:, i - 1] = np.where(keep, Ecur, newE)
    out = ~keep
    if not out.any():
        return Ecur, EV
    k = np.where(out, exponent_of_max(big), 0)
    Enew = newE + k
    V[:, i - 1] = ldexp(V[:, i - 1], -k)
    # the entries i … of the pairs that left, gathered (few pairs, usually)
    bi, ki = np.nonzero(out)
    Vs = V[bi, i:, ki]
    Ec, En = Ecur[bi, ki], Enew[bi, ki]
    shift = Ec - En
    seg = np.ones(Vs.shape, dtype=bool) if EV is None else EV[bi, i:, ki] == Ec[:, None]
    mag = magnitude(Vs)
    smax = np.where(seg, mag, 0).max(axis=1, initial=0.0)
    smin = np.where(seg & (mag > 0), mag, np.inf).min(axis=1, initial=np.inf)
    exact = (ldexp(smax, shift) <= hi[bi, ki]) & ((smin == np.inf) | (ldexp(smin, shift) >= tiny))
    stay = ~exact & (smax > 0)
    if EV is None and stay.any():
        # the first pair whose entries keep several exponents: from now on
        # every entry carries its own (entries below i − 1 are written
        # before they are read)
        EV = np.empty(V.shape, dtype=np.int64)
        EV[:, i:] = Ecur[:, None, :]
        EV[:, i - 1] = Ecur
    if EV is not None:
        EV[:, i - 1] = np.where(out, Enew, EV[:, i - 1])
    follow = seg & exact[:, None]
    if follow.any():
        V[bi, i:, ki] = np.where(follow, ldexp(Vs, shift[:, None]), Vs)
        if EV is not None:
            EV[bi, i:, ki] = np.where(follow, En[:, None], EV[bi, i:, ki])
    multi[bi, ki] |= stay
    return np.where(out, Enew, Ecur), EV


def _entry_exponents(EW: np.ndarray | None, Ecur: np.ndarray, bi: np.ndarray, ki: np.ndarray,
                     i: int, n: int) -> np.ndarray:
    """The exponents of entries ``i …`` of the pairs ``(bi, ki)``: from
    ``EW`` once it exists, else all at the current exponent ``Ecur``."""
    if EW is not None:
        out: np.ndarray = EW[bi, i:, ki]
        return out
    return np.broadcast_to(Ecur[bi, ki][:, None], (bi.size, n - i))


def _hyman(H: np.ndarray, x: np.ndarray, order: int = 1, reduced: np.ndarray | None = None
           ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Taylor coefficients ``p⁽ᵐ⁾(x)/m!``, ``m = 0 … order``, of the
    characteristic polynomial of ``H (B, n, n)`` (upper Hessenberg) at
    ``x (B, K)``, as mantissas and exponents: ``c_m = P[m]·2^Pe[m]``
    (``c_0 = p``, ``c_1 = p′``).

    Hyman's recurrence on ``M = xI − H``, ``v_{n−1} = 1`` and, for
    ``i = n−1 … 1``, ``s_i = x·v_i − Σ_{j≥i} h_ij v_j``,
    ``v_{i−1} = s_i / h_{i,i−1}``; ``p = s_0·Π h_{i,i−1}`` per diagonal
    block.  Differentiated m times and divided by m! (Taylor coefficients
    ``w_m = v⁽ᵐ⁾/m!``, so no factorials or binomials grow):
    ``s_{m,i} = x·w_{m,i} + w_{m−1,i} − Σ_j h_ij w_{m,j}``, the same
    division by ``h_{i,i−1}``, and blocks folded by the Cauchy product
    (:func:`_close_block`).  O(order·n²) per point.

    ``w_{m,j} = W_m[j]·2^EW_m[j]``, each order with exponents of its own
    (:func:`_place`): an old entry is never scaled into inf or into the
    subnormals, and w₁ far above v (w₁/v ≈ n/x at a tiny x) does not push
    ``x·v`` into the subnormals.  Pairs whose entries of orders ≤ max(m, 1)
    all sit at their current exponents take the matrix product for order m;
    the others align their terms (:func:`_aligned_row`).  Orders 0 and 1 are
    computed exactly as they are with ``order = 1`` whatever ``order`` is
    (nothing of a higher order feeds them), so a p or p′ is the same bits
    whichever derivatives are asked with it.  (Rescaling all of v with v′
    made the companion matrix of ``x¹²⁸ − 1`` at ``x = 10⁻³`` overflow its
    first entries into inf, and the zeros of ``H`` times inf into NaN.)
    ``reduced``: which slots the Householder reduction produced
    (:func:`subdiagonal`)."""
    B, n, _ = H.shape
    K = x.shape[1]
    r = order
    dtype = np.result_type(H, x)
    sub = subdiagonal(H, reduced)

    W = [np.zeros((B, n, K), dtype=dtype) for _ in range(r + 1)]
    EW: list[np.ndarray | None] = [None] * (r + 1)  # exponents of the entries, once needed
    W[0][:, n - 1] = 1
    E = [np.zeros((B, K), dtype=np.int64) for _ in range(r + 1)]  # current exponents
    # per order: some entry sits at another exponent
    multi = [np.zeros((B, K), dtype=bool) for _ in range(r + 1)]
    hm = np.ones(B, dtype=H.dtype)  # Π h of the current block, as hm·2^he
    he = np.zeros(B, dtype=np.int64)
    P = [np.ones((B, K), dtype=dtype)] + [np.zeros((B, K), dtype=dtype) for _ in range(r)]
    Pe = [np.zeros((B, K), dtype=np.int64) for _ in range(r + 1)]
    # |x|·|v| ≤ 2^FAR_EXP·‖H‖, so that s/h (h ≥ eps·‖H‖ after deflation)
    # cannot overflow; v is renormalised to ~1, where v′ ≈ v·n/x stays normal.
    # ‖H‖ is estimated from below by its diagonal and subdiagonal (more
    # renormalisation, never less); the caller keeps |x| ≤ 2^FAR_EXP·max|H|.
    n_idx = np.arange(n)
    hmax = np.maximum(magnitude(H[:, n_idx, n_idx]).max(axis=1), magnitude(sub).max(axis=1))
    ex = np.clip(exponent_of_max(magnitude(x)) - exponent_of_max(hmax)[:, None], 0, FAR_EXP)
    hi = np.exp2(np.minimum(RESCALE_EXP, FAR_EXP - ex).astype(np.float64))

    for i in range(n - 1, -1, -1):
        row = H[:, i : i + 1, i:]  # (B, 1, n−i)
        S: list[np.ndarray] = []  # s_m carries a factor 2^ES[m]
        ES: list[np.ndarray] = []
        for m in range(r + 1):
            t = x * W[m][:, i] - np.matmul(row, W[m][:, i:])[:, 0]
            if m == 0:
                S.append(t)
                ES.append(E[0].copy())
            else:
                s_m, es_m = _add_aligned(t, E[m], W[m - 1][:, i], E[m - 1])
                S.append(s_m)
                # (order 1 may share E[1] here, as it always has: the aligned
                # rows below then move its current exponent too)
                ES.append(es_m if m == 1 else es_m.copy())
        flag = multi[0] | multi[1] if r >= 1 else multi[0]
        if flag.any() or any(mu.any() for mu in multi[2:]):
            Ecur = [e.copy() for e in E]  # as they were before this row
            for m in range(r + 1):
                if m >= 2:
                    flag = flag | multi[m]
                if not flag.any():
                    continue
                bi, ki = np.nonzero(flag)
                ew_m = _entry_exponents(EW[m], Ecur[m], bi, ki, i, n)
                if m == 0:
                    S[0][bi, ki], ES[0][bi, ki] = _aligned_row(
                        H[bi, i, i:], W[0][bi, i:, ki], ew_m, None, None, x[bi, ki])
                else:
                    S[m][bi, ki], ES[m][bi, ki] = _aligned_row(
                        H[bi, i, i:], W[m][bi, i:, ki], ew_m, W[m - 1][bi, i, ki],
                        _entry_exponents(EW[m - 1], Ecur[m - 1], bi, ki, i, n)[:, 0], x[bi, ki])
        h = sub[:, i]  # h_{i,i−1}; 0 for i = 0, where the top block ends
        end = h == 0
        if end.any():
            # Block [i, …] is finished: its Taylor coefficients are s_m·Πh·2^ES[m].
            endk = np.broadcast_to(end[:, None], Pe[0].shape)
            P, Pe = _close_block(P, Pe, [s * hm[:, None] for s in S],
                                 [es + he[:, None] for es in ES], endk)
        if i == 0:
            break
        cont = ~end
        hsafe = np.where(end, 1, h)[:, None]
        if end.any():
            for m in range(r + 1):
                W[m][end, i:] = 0
                ew = EW[m]
                if ew is not None:
                    ew[end, i:] = 0
                E[m][end] = 0
                multi[m][end] = False
            hm[end], he[end] = 1, 0
        c2 = cont[:, None]
        New = [np.where(c2, S[m] / hsafe, 1 if m == 0 else 0) for m in range(r + 1)]
        ES = [np.where(c2, es, 0) for es in ES]
        # orders 0 and 1 are redone together (as with order = 1), others alone
        redo = [~(np.isfinite(New[0]) & np.isfinite(New[1])) if r >= 1
                else ~np.isfinite(New[0])]
        redo = redo * min(r + 1, 2) + [~np.isfinite(New[m]) for m in range(2, r + 1)]
        if any(rd.any() for rd in redo):
            # w_{i−1} = s/h on normalised mantissas: the quotient of a tiny h
            # (kept by the deflation test when h·h_{i−1,i} matters) cannot
            # overflow (a NaN slot just takes this way too)
            kh = exponent_of_max(magnitude(hsafe))
            hq = ldexp(hsafe, -kh)
            for m in range(r + 1):
                if redo[m].any():
                    ks = exponent_of_max(magnitude(S[m]))
                    New[m] = np.where(redo[m], ldexp(S[m], -ks) / hq, New[m])
                    ES[m] = np.where(redo[m], ES[m] + ks - kh, ES[m])
        # Π h of the block, renormalised
        hm = np.where(cont, hm * np.where(cont, h, 1), hm)
        kb = exponent_of_max(magnitude(hm))
        hm, he = ldexp(hm, -kb), he + kb
        for m in range(r + 1):
            E[m], EW[m] = _place(W[m], EW[m], E[m], multi[m], New[m], ES[m], i, hi)
    return P, Pe


def subdiagonal(H: np.ndarray, reduced: np.ndarray | None = None) -> np.ndarray:
    """``sub[b, i] = h_{i,i−1}`` (``sub[b, 0] = 0``), with negligible entries
    set to exactly 0 (a zero ends a diagonal block of the recurrence) in the
    slots that the Householder reduction produced (``reduced``, per slot;
    None: every slot).  A matrix that was upper Hessenberg already keeps its
    subdiagonal as it is: its entries are exact data (after an exact
    balancing), not the reduction's rounding noise, and dropping one drops
    the term ``h_{i,i−1}h_{i−1,i}`` that can cancel another exactly
    (``[[1, 2^k], [1, 2^k]]`` balances to ``[[1, 2^52], [2^51, 2^103]]`` at
    k = 103, which passes all three tests below, and p(0) = 0 came back
    ``2^103``); Hyman's recurrence needs no deflation for accuracy.

    Negligible: ``|h_{i,i−1}| ≤ eps(|h_{i−1,i−1}| + |h_ii|)`` (LAPACK's
    deflation test) or ``|h_{i,i−1}| ≤ eps‖H‖_F`` (below the reduction's own
    backward error), **and** the conservative test of Ahues and Kressner
    that LAPACK's ``lahqr`` adds: with ``ab, ba`` the larger and smaller of
    ``|h_{i,i−1}|, |h_{i−1,i}|`` and ``aa, bb`` of ``|h_ii|,
    |h_{i−1,i−1} − h_ii|``, ``ba·ab/(aa+ab) ≤ max(smlnum, eps·bb·aa/(aa+ab))``.
    Zeroing ``h_{i,i−1}`` drops the term ``h_{i,i−1}h_{i−1,i}`` of the 2×2
    minor, which the first two tests alone do not bound: after balancing,
    ``[[2^512, 2^252], [2^252, 4]]`` has each off-diagonal entry below
    ``eps·2^512`` while their product moves det by 0.4%."""
    B, n, _ = H.shape
    eps = np.finfo(np.float64).eps
    smlnum = np.finfo(np.float64).tiny * (n / eps)
    d = H[:, np.arange(n), np.arange(n)]
    diag = magnitude(d)
    sub = np.zeros((B, n), dtype=H.dtype)
    sub[:, 1:] = H[:, np.arange(1, n), np.arange(n - 1)]
    sup = magnitude(H[:, np.arange(n - 1), np.arange(1, n)])  # h_{i−1,i}
    # ‖H‖_F with a power-of-two scale: entries may reach 2^HYMAN_LIMIT, whose
    # squares overflow (an inf norm would deflate every subdiagonal)
    with np.errstate(over="ignore", invalid="ignore"):
        e = exponent_of_max(magnitude(H).max(axis=(1, 2)))
        Hs = ldexp(H, -e[:, None, None])
        norm = ldexp(np.sqrt((Hs.real**2 + Hs.imag**2 if np.iscomplexobj(Hs) else Hs**2)
                             .sum(axis=(1, 2))), e)
        mag = magnitude(sub[:, 1:])
        small = (mag <= eps * (diag[:, :-1] + diag[:, 1:])) | (mag <= eps * norm[:, None])
        ab, ba = np.maximum(mag, sup), np.minimum(mag, sup)
        gap = magnitude(d[:, :-1] - d[:, 1:])
        aa, bb = np.maximum(diag[:, 1:], gap), np.minimum(diag[:, 1:], gap)
        s = aa + ab
        product = ba * (ab / s) <= np.maximum(smlnum, eps * (bb * (aa / s)))
    drop = small & product
    if reduced is not None:
        drop &= np.asarray(reduced, dtype=bool)[:, None]
    sub[:, 1:][drop] = 0
    return sub


def scale_matrices(A: np.ndarray, balance: Balancer = balance_batched
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(As, k, kmax)`` in float64/complex128 with ``A`` exactly similar to
    ``2ᵏ·As`` (same ``p`` up to the factor: ``p_A(x) = 2^{kn} p_As(x·2⁻ᵏ)``)
    and ``max|As|`` in ``[2^(kmax−k−1), 2^(kmax−k))`` (complex entries
    measured by max(|re|, |im|)), per matrix; ``kmax`` is
    :data:`NONFINITE_KMAX` for a matrix with a NaN or inf entry.

    First balanced (``balance``, :func:`balance_batched` by default: an
    exact power-of-two similarity, permuted only where the matrix is not
    upper Hessenberg already, since a permutation need not keep that form),
    so that ``D A D⁻¹`` for a power-of-two diagonal ``D`` is reduced as
    ``A``; a matrix with a non-finite entry is left as it is.

    Then scaled only as far as needed: a scaling all the way to 1 would turn
    the small entries of a graded matrix such as ``diag(1e308, 1, 2, 3)``
    into subnormals and lose their bits.  A matrix that needs the
    Householder reduction is brought within ``2^±SCALE_LIMIT``, where sums of
    squares cannot over- or underflow; one that is upper Hessenberg
    (triangular, diagonal, reduced by the caller, or made triangular by the
    balancing's permutation) only needs ``max|As|`` at most
    ``2^HYMAN_LIMIT`` for the recurrence, so its diagonal keeps every bit
    across a far wider range.  Decided per matrix, from that matrix.
    """
    W = np.array(widen(A), copy=True, order="C")  # balanced in place: never the input
    with np.errstate(all="ignore"):
        finite = np.isfinite(W).all(axis=(1, 2))
        balance(W, finite, finite & ~is_hessenberg(W))
        kmax = exponent_of_max(magnitude(W).max(axis=(1, 2)))
        reduced = is_hessenberg(W)
        top = np.where(reduced, HYMAN_LIMIT, SCALE_LIMIT)
        bottom = np.where(reduced, -1100, -SCALE_LIMIT)  # -1100: never scaled up
        k = np.where(kmax > top, kmax - top, np.where(kmax < bottom, kmax - bottom, 0))
        return ldexp(W, -k[:, None, None]), k, np.where(finite, kmax, NONFINITE_KMAX)


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


def infinite_points(x: np.ndarray, kmax: np.ndarray) -> np.ndarray:
    """Points on an axis at infinity (one part ±inf, the other finite) of a
    matrix whose entries are all finite: there p and p′ are the limits
    along that ray, ``p(x) ~ xⁿ`` (:func:`infinity_rule`)."""
    with np.errstate(invalid="ignore"):
        if np.iscomplexobj(x):
            ri, ii = np.isinf(x.real), np.isinf(x.imag)
            axis = (ri & np.isfinite(x.imag)) | (ii & np.isfinite(x.real))
        else:
            axis = np.isinf(x)
    return axis & (kmax[:, None] != NONFINITE_KMAX)  # type: ignore[no-any-return]


def infinity_rule(x: np.ndarray, n: int, dtype: np.dtype[Any], order: int = 1
                  ) -> list[np.ndarray]:
    """``p⁽ᵐ⁾``, ``m = 0 … order`` (``order < n``), at points on an axis at
    infinity: with ``x = u·∞``, ``u ∈ {±1, ±i}``,
    ``p⁽ᵐ⁾ = uⁿ⁻ᵐ·∞``, the limit of the leading term
    ``n!/(n−m)!·xⁿ⁻ᵐ`` (a positive coefficient), which dominates every
    other term of ``p⁽ᵐ⁾`` along the ray: ``p(±∞) = (±∞)ⁿ``,
    ``p′(±∞) = (±1)ⁿ⁻¹·∞``, ``p″(±∞) = (±1)ⁿ⁻²·∞``.  A part of ``uⁿ⁻ᵐ`` that
    is 0 gives +0 (the real axis of a real matrix: p real)."""
    inf = np.inf
    if np.iscomplexobj(x):
        u = np.sign(np.where(np.isinf(x.real), x.real, 0)) + 1j * np.sign(
            np.where(np.isinf(x.imag), x.imag, 0))
    else:
        u = np.sign(x)

    def ray(power: int) -> np.ndarray:
        w = u**power  # exact: u is ±1 or ±i
        re = np.where(w.real > 0, inf, np.where(w.real < 0, -inf, 0.0))
        if not np.iscomplexobj(w):
            return re.astype(dtype)
        out = np.empty(re.shape, dtype=dtype)
        out.real = re
        out.imag = np.where(w.imag > 0, inf, np.where(w.imag < 0, -inf, 0.0))
        return out

    return [ray(n - m) for m in range(order + 1)]


def falling_factorial(n: int, m: int) -> tuple[float, int]:
    """``n!/(n−m)! = n(n−1)⋯(n−m+1)`` as ``(f, g)``, ``f·2ᵍ``, ``f`` in
    [0.5, 1) rounded once from the exact integer (no overflow for any n)."""
    v = math.prod(range(n - m + 1, n + 1))
    g = v.bit_length()
    return float(Fraction(v, 1 << g)), g


def power_rule(x: np.ndarray, n: int, dtype: np.dtype[Any], order: int = 1
               ) -> list[np.ndarray]:
    """``p⁽ᵐ⁾ = n!/(n−m)!·xⁿ⁻ᵐ``, ``m = 0 … order`` (``order < n``), for a
    1-d array of points, in mantissa-exponent form so that only a truly
    overflowing power is inf (the coefficient rounded once, exact for
    m ≤ 1)."""
    xw = widen(x)
    kx = exponent_of_max(magnitude(xw))
    xm = ldexp(xw, -kx)
    m, e = mantissa_product(np.repeat(xm[:, None], n - 1, axis=1))  # xⁿ⁻¹ = m·2^(e + (n−1)kx)
    out = []
    with np.errstate(all="ignore"):
        out.append(ldexp(m * xm, e + n * kx))
        if order >= 1:
            out.append(ldexp(m * n, e + (n - 1) * kx))
        for j in range(2, order + 1):
            mj, ej = mantissa_product(np.repeat(xm[:, None], n - j, axis=1))
            f, g = falling_factorial(n, j)
            out.append(ldexp(mj * f, ej + g + (n - j) * kx))
    return [narrow(v, dtype) for v in out]


def special_points(x: np.ndarray, kmax: np.ndarray, n: int, dtype: np.dtype[Any],
                   order: int = 1) -> tuple[np.ndarray, list[np.ndarray]]:
    """``(where, [p, p′, …])``: the points (a mask over ``x (B, K)``) whose
    values come from a rule, not from the recurrence, and those values of
    orders ``0 … order`` (``order < n``; 1-d, in the order of ``x[where]``):
    far points (:func:`far_points`, the power rule) and points at infinity
    (:func:`infinite_points`)."""
    far = far_points(x, kmax)
    inf = infinite_points(x, kmax)
    where = far | inf
    vals = [np.empty(int(where.sum()), dtype=dtype) for _ in range(order + 1)]
    for mask, rule in ((far, power_rule), (inf, infinity_rule)):
        if mask.any():
            sel = mask[where]
            for v, r in zip(vals, rule(x[mask], n, dtype, order), strict=True):
                v[sel] = r
    return where, vals


def apply_far_points(p: np.ndarray, dp: np.ndarray, x: np.ndarray,
                     kmax: np.ndarray, n: int) -> None:
    """Overwrite ``(p, p′)`` at the far and the infinite points (see
    :func:`special_points`)."""
    apply_special_points([p, dp], x, kmax, n)


def apply_special_points(values: list[np.ndarray], x: np.ndarray, kmax: np.ndarray,
                         n: int) -> None:
    """Overwrite ``values = [p, p′, …, p⁽ʳ⁾]`` (``r < n``) in place at the
    far and the infinite points (see :func:`special_points`)."""
    where, sv = special_points(x, kmax, n, values[0].dtype, len(values) - 1)
    if where.any():
        for v, s in zip(values, sv, strict=True):
            v[where] = s


def unscale(pm: np.ndarray, dpm: np.ndarray, pe: np.ndarray, dpe: np.ndarray,
            k: np.ndarray, n: int, dtype: np.dtype[Any]) -> tuple[np.ndarray, np.ndarray]:
    """``(p, p′)`` of ``A`` from those of ``As`` (:func:`unscale_orders`)."""
    p, dp = unscale_orders([pm, dpm], [pe, dpe], k, n, dtype)
    return p, dp


def unscale_orders(P: list[np.ndarray], Pe: list[np.ndarray], k: np.ndarray, n: int,
                   dtype: np.dtype[Any]) -> list[np.ndarray]:
    """``p⁽ᵐ⁾_A = m!·2^{k(n−m)}·c_m`` from the Taylor coefficients
    ``c_m = P[m]·2^Pe[m]`` of ``As`` (``p_A(x) = 2^{kn} p_As(x·2⁻ᵏ)``),
    rounded once to ``dtype`` (m! joins the mantissa: exact for m ≤ 3).

    A value that underflows keeps the sign of its mantissa (the sign of the
    true value: the mantissa carries every factor); an exactly zero mantissa
    gives +0, never a −0 left by the signs of zero terms."""
    out = []
    with np.errstate(all="ignore"):
        for m, (pm, pe) in enumerate(zip(P, Pe, strict=True)):
            if m >= 2:
                f, g = falling_factorial(m, m)
                pm, pe = pm * f, pe + g
            v = ldexp(pm, pe + (k * (n - m))[:, None])
            out.append(narrow(np.where(pm == 0, 0, v), dtype))
    return out


def linear_case(A: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """n = 1: ``p = x − a``, ``p′ = 1`` whatever ``a`` is (even inf or NaN).

    Silent like every other slot: a signalling NaN (or inf − inf) gives a
    quiet NaN in its own slot, never a floating-point warning."""
    with np.errstate(invalid="ignore", over="ignore"):
        return (x - A[:, 0, :1]).astype(A.dtype), np.ones(x.shape, A.dtype)


def constant_orders(shape: tuple[int, ...], n: int, order: int, dtype: np.dtype[Any]
                    ) -> list[np.ndarray]:
    """``p⁽ᵐ⁾`` for ``m = n … order``: ``p⁽ⁿ⁾ = n!`` and 0 beyond, whatever
    ``A`` and ``x`` are (the leading coefficient of ``det(xI − A)`` is 1):
    constants, not computed, so exact (n! rounded once; inf where it
    overflows ``dtype``: from n = 171 in float64, n = 35 in float32)."""
    out = []
    for m in range(n, order + 1):
        if m == n:
            f, g = falling_factorial(n, n)
            try:
                big = math.ldexp(f, g)
            except OverflowError:  # n ≥ 171: n! overflows every dtype
                big = math.inf
            with np.errstate(over="ignore"):
                value = np.asarray(big).astype(dtype)
        else:
            value = np.zeros((), dtype=dtype)
        out.append(np.full(shape, value, dtype=dtype))
    return out


def charpoly_derivs(A: np.ndarray, x: np.ndarray, order: int) -> tuple[np.ndarray, ...]:
    """``(p, p′, …, p⁽ᵒʳᵈᵉʳ⁾)`` of ``A (B, n, n)`` at ``x (B, K)``, each (B, K).

    Orders ``< n`` from one balancing, scaling and Hessenberg reduction per
    matrix and the differentiated recurrence (:func:`_hyman`, O(order·n²)
    per point); orders ``≥ n`` are the constants of :func:`constant_orders`.
    p and p′ are the bits of :func:`charpoly_deriv` whatever ``order`` is."""
    B, n, _ = A.shape
    r = min(order, n - 1)
    out: list[np.ndarray] = []
    if n == 1:
        p, dp = linear_case(A, x)
        out = [p, dp][: order + 1]
    else:
        rr = max(r, 1)  # p is always computed with p′ (the same bits as charpoly_deriv)
        As, k, kmax = scale_matrices(A)
        reduced = ~is_hessenberg(As)
        with np.errstate(all="ignore"):  # NaN/inf slots stay in their own slot
            H = hessenberg_batched(As)
        vals = [np.empty(x.shape, dtype=A.dtype) for _ in range(rr + 1)]
        # _hyman holds w_0 … w_rr for every (matrix, point) pair: (rr+1)·B·n per
        # point (and their exponents, as many more, once a pair needs several: rare)
        for sl in point_blocks(B, (rr + 1) * n, x.shape[1]):
            with np.errstate(all="ignore"):
                P, Pe = _hyman(H, scale_points(x[:, sl], k), rr, reduced)
            block = unscale_orders(P, Pe, k, n, A.dtype)
            apply_special_points(block, x[:, sl], kmax, n)
            for v, b in zip(vals, block, strict=True):
                v[:, sl] = b
        out = vals[: r + 1]
    if order >= n:
        out += constant_orders(x.shape, n, order, A.dtype)[len(out) - n:]
    return tuple(out)


def charpoly_deriv(A: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, dp = charpoly_derivs(A, x, 1)
    return p, dp
