"""Cofactor matrices (∇det) and inverse transposes (∇log|det|), batched on the host.

The NumPy backend's algorithm, and the host path of the kernel backends
(large ``n``, and the rare slots their kernels hand back).

``n ≤ 3``: closed forms (exact for singular input, no division); a slot whose
products overflow is redone on the equilibrated matrix.  ``n = 4``: the
closed form where an a-posteriori bound proves it accurate, else the general
path.  General path, three tiers, each decided per slot:

1. **Maximum equilibration** ``Ã = D_r A D_c`` (row maxima, then column
   maxima, below 1; each entry scaled in one exact step), which makes a row
   of 1e306 or diag(1e200, 1e200, 1, 1, 1) well scaled, since
   ``C(A)_ij = C(Ã)_ij·2^(r_i + c_j − Σr − Σc)``; ``Ã`` is eliminated with
   partial pivoting (Gauss-Jordan vectorised over the batch for small ``n``,
   LAPACK ``getrf``/``getri`` per matrix for large ``n``), and
   ``C = det(Ã)·Ã⁻ᵀ`` is formed from that one elimination with ``det`` kept as
   mantissa·2ᵉ and mapped back entry by entry.
2. A pivot ``|u_kk| ≤ REDO_PIVOT`` there (or NaN in the result) means the
   matrix is graded in a way row and column maxima cannot see (``εI +
   triu(ones, 1)``, a bidiagonal with columns scaled by ``2^±280``): the
   slot is redone on the **matching equilibration**
   (:func:`matching_equilibrate`, a maximum-product matching and its duals,
   as in MC64), where such matrices are well conditioned; entries far below
   the largest of that frame are recomputed from their own minors
   (:func:`_refine_from_minors`, ``n ≤ REFINE_MAX_N``).
3. A pivot ``≤ 4·n·eps`` on the matching-equilibrated matrix too (a matrix
   that is numerically singular however it is scaled), or a structurally
   singular one: the SVD adjugate, which is right for every rank.

Values (``det_value_grad``, ``logdet_value_grad``) come from the same data:
``det = Σ_j a_0j·C_0j`` on the closed-form paths where every nonzero entry
lies within 2^±300 (2^±250 for n = 4), so that no product over- or
underflows (other slots: the equilibrated closed form, or the elimination);
``det = sign(P)·Π u_kk·2^-(Σr+Σc)`` from the pivots of the elimination that
gave the cofactors (tier 1 or 2), as mantissa·2ᵉ, also for the slots whose
cofactors come from the SVD (``d·Π σ_i`` only where the elimination broke
down).  ``log|det|`` likewise; ``logdet_grad`` for n = 2, 3 within 2^±300 is
``conj(C/det)`` from the closed forms.  So ``det`` is exactly 0,
``(sign, log|det|)`` is ``(0, −inf)`` and ``A⁻ᵀ`` is NaN together, where the
deciding elimination meets an exactly zero pivot (or the closed-form
determinant is exactly 0); an exactly singular matrix whose rounded
elimination does not (duplicated rows can leave a residual of the order of
eps) gives a value of that order, as ``numpy.linalg.det`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg
import scipy.optimize

from .._config import config
from .scalar import GRADED_BITS, GRADED_PIVOT, REDO_PIVOT, SPREAD_BITS
from .scaling import exponent_of_max, ldexp, magnitude, mantissa_product, narrow, widen

__all__ = [
    "LU",
    "REDO_PIVOT",
    "det_grad",
    "det_value_grad",
    "equilibrated_small_det",
    "logdet_grad",
    "logdet_value_grad",
    "lu_batched",
    "matching_equilibrate",
    "slogdet_from_mantissa",
]

#: Pivot threshold constant c in |u_kk| ≤ c·n·eps·max|a_ij|: below it a
#: matrix is numerically singular after equilibration (SVD adjugate).
TINY_PIVOT_C = 4.0
_EPS = float(np.finfo(np.float64).eps)
#: Largest n whose redone slots get their small entries recomputed from
#: minors (n² minors of O(n³) each: rare slots only).
REFINE_MAX_N = 16
#: An entry of ``Ã⁻ᵀ`` (the frame in which the elimination's rounding error
#: is ``≈ n·eps·max|Ã⁻¹|`` for every entry) at or below this fraction of the
#: largest is recomputed from its own minor.
REFINE_REL = 2.0**-4
#: ... and whose rounding error, mapped back, is within 2^REFINE_SPAN of the
#: largest entry of the result (so that it matters normwise); an entry at or
#: below REFINE_TINY of that largest one is recomputed whatever its size in
#: A's frame (it has lost more than 20 bits to the frame: a cofactor of 9e192
#: came back as 3e299).
REFINE_SPAN = 30
REFINE_TINY = 2.0**-20
#: Exponent weight of a zero entry in the matching (no matching uses one
#: unless the matrix is structurally singular).
_ZERO_WEIGHT = -(2**40)
_LN2 = float(np.log(2.0))


def _finite_slots(A: np.ndarray) -> np.ndarray:
    return np.isfinite(A).all(axis=(1, 2))  # type: ignore[no-any-return]


# ----------------------------------------------------------------- n ≤ 3
def _closed_form(A: np.ndarray) -> np.ndarray:
    n = A.shape[-1]
    C = np.empty_like(A)
    if n == 2:
        C[:, 0, 0] = A[:, 1, 1]
        C[:, 0, 1] = -A[:, 1, 0]
        C[:, 1, 0] = -A[:, 0, 1]
        C[:, 1, 1] = A[:, 0, 0]
        return C
    # 3×3: row i of C is the cross product of the other two rows (cyclic).
    r0, r1, r2 = A[:, 0], A[:, 1], A[:, 2]
    for i, (a, b) in enumerate(((r1, r2), (r2, r0), (r0, r1))):
        C[:, i, 0] = a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1]
        C[:, i, 1] = a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2]
        C[:, i, 2] = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    return C


def _closed_form_equilibrated(A: np.ndarray) -> np.ndarray:
    """Cofactors of 2×2 / 3×3 matrices whose plain products over- or
    underflow (finite entries): each 2×2 minor ``p·q − r·s`` formed on the
    factors' mantissas, the two products aligned to the larger exponent and
    scaled back once (:func:`_det2_wide`), so an entry over- or underflows
    only where its true value does.  (An equilibration of the whole matrix
    is not enough: ``a10·a21 − a11·a20 = 1.42e52`` of a graded triangular
    3×3 underflowed to 0 in its frame.)"""
    n = A.shape[-1]
    C = np.empty_like(A)
    if n == 2:
        return _closed_form(A)
    a = [[A[:, i, j] for j in range(3)] for i in range(3)]
    for i in range(3):
        k, m = (i + 1) % 3, (i + 2) % 3  # rows of the cross product, cyclic
        for j in range(3):
            p, q = (j + 1) % 3, (j + 2) % 3
            C[:, i, j] = _det2_wide(a[k][p], a[m][q], a[k][q], a[m][p])
    return C


_NO_PRODUCT = -(2**40)  # exponent marker of a product with a zero factor


def _det2_wide(p: np.ndarray, q: np.ndarray, r: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``p·q − r·s`` elementwise for finite entries of any magnitude: the
    mantissas' products, aligned to the larger of the two product exponents,
    subtracted, and scaled back by one exact power of two."""
    pm, pe, pz = _pow2_split(p)
    qm, qe, qz = _pow2_split(q)
    rm, re, rz = _pow2_split(r)
    sm, se, sz = _pow2_split(s)
    e1 = np.where(pz | qz, _NO_PRODUCT, pe + qe)
    e2 = np.where(rz | sz, _NO_PRODUCT, re + se)
    top = np.maximum(e1, e2)
    top = np.where(top == _NO_PRODUCT, 0, top)
    t1 = ldexp(pm * qm, np.maximum(e1 - top, -4000))
    t2 = ldexp(rm * sm, np.maximum(e2 - top, -4000))
    return ldexp(t1 - t2, top)


def _small_det_grad(A: np.ndarray) -> np.ndarray:
    # float32 products are exact in float64: compute there, round once.
    return narrow(_small_det_grad_wide(widen(A)), A.dtype)


def _small_det_grad_wide(W: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        C = _closed_form(W)
        redo = ~np.isfinite(C).all(axis=(1, 2)) & _finite_slots(W)
        if redo.any():
            C[redo] = _closed_form_equilibrated(W[redo])
    return C


# ---------------------------------------------------------------- values
def _row_expansion(W: np.ndarray, C: np.ndarray) -> np.ndarray:
    """``Σ_j a_0j·C_0j`` per slot, summed left to right."""
    d: np.ndarray = W[:, 0, 0] * C[:, 0, 0]
    for j in range(1, W.shape[-1]):
        d = d + W[:, 0, j] * C[:, 0, j]
    return d


def _in_range(W: np.ndarray, k: int) -> np.ndarray:
    """Per slot: every entry finite, and every nonzero real or imaginary part
    within [2⁻ᵏ, 2ᵏ), so that products of up to ``1000 // k`` entries neither
    over- nor underflow.  In blocks: no full-size temporary."""
    B = W.shape[0]
    parts = W.reshape(B, -1)
    if np.iscomplexobj(parts):
        parts = parts.view(parts.real.dtype)
    ok = np.empty(B, dtype=bool)
    step = max(1, config.scaling_block // parts.shape[1])
    lo, hi = 2.0**-k, 2.0**k
    for s in range(0, B, step):
        mag = np.abs(parts[s:s + step])
        ok[s:s + step] = ((mag < hi) & ((mag >= lo) | (mag == 0))).all(axis=1)
    return ok


def equilibrated_small_det(W: np.ndarray) -> np.ndarray:
    """``det`` of finite 2×2 or 3×3 matrices of any range: the Leibniz
    expansion with each product formed as mantissa·2ᵉ and the products
    aligned to the largest exponent (:func:`_sum_products_wide`), so it over-
    or underflows only where the true value does."""
    with np.errstate(all="ignore"):
        n = W.shape[-1]
        a = [[W[:, i, j] for j in range(n)] for i in range(n)]
        if n == 2:
            return _sum_products_wide([(1, (a[0][0], a[1][1])), (-1, (a[0][1], a[1][0]))])
        terms: list[tuple[int, tuple[np.ndarray, ...]]] = []
        for (i, j, k), sign in (((0, 1, 2), 1), ((1, 2, 0), 1), ((2, 0, 1), 1),
                                ((0, 2, 1), -1), ((2, 1, 0), -1), ((1, 0, 2), -1)):
            terms.append((sign, (a[0][i], a[1][j], a[2][k])))
        return _sum_products_wide(terms)


def _sum_products_wide(terms: list[tuple[int, tuple[np.ndarray, ...]]]) -> np.ndarray:
    """``Σ sign·Π factors`` elementwise for finite factors of any magnitude
    (the Leibniz terms of a 2×2 or 3×3 determinant): each product formed on
    the factors' mantissas, the products aligned to the largest exponent and
    summed left to right, then scaled back by one exact power of two."""
    parts = []
    for sign, factors in terms:
        m, e, z = _pow2_split(factors[0])
        for f in factors[1:]:
            fm, fe, fz = _pow2_split(f)
            m, e, z = m * fm, e + fe, z | fz
        parts.append((sign * m, np.where(z, _NO_PRODUCT, e)))
    top = np.maximum.reduce([e for _, e in parts])
    top = np.where(top == _NO_PRODUCT, 0, top)
    total = ldexp(parts[0][0], np.maximum(parts[0][1] - top, -4000))
    for m, e in parts[1:]:
        total = total + ldexp(m, np.maximum(e - top, -4000))
    return ldexp(total, top)


def _pow2_split(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(m, e, zero)`` with ``x = m·2ᵉ``, ``magnitude(m)`` in [0.5, 1)."""
    mag = magnitude(x)
    e = np.frexp(mag)[1].astype(np.int64)
    return ldexp(x, -e), e, mag == 0


def _small_det_value(W: np.ndarray, C: np.ndarray) -> np.ndarray:
    """``det`` beside the closed-form cofactors ``C`` of ``W`` (n = 2, 3): the
    expansion along row 0 of ``C`` where no product can over- or underflow,
    else (rare) the equilibrated closed form; NaN for a non-finite slot."""
    with np.errstate(all="ignore"):
        d = _row_expansion(W, C)
        redo = np.flatnonzero(~_in_range(W, 300))
        if redo.size:
            Wr = W[redo]
            fin = _finite_slots(Wr)
            dr = np.full(redo.size, np.nan, dtype=W.dtype)
            if fin.any():
                dr[fin] = equilibrated_small_det(Wr[fin])
            d[redo] = dr
    return d


def det_value_grad(A: np.ndarray, max_exp: int | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``(det A, C)`` from one pass (see the module docstring); ``C`` is
    bit-identical to :func:`det_grad`'s.  ``max_exp``: as for
    :func:`det_grad`."""
    n = A.shape[-1]
    me = _max_exp(A) if max_exp is None else max_exp
    W = widen(A)
    with np.errstate(all="ignore"):
        if n == 1:
            d = np.where(_finite_slots(W), W[:, 0, 0], np.nan)
            return narrow(d, A.dtype), np.ones_like(A)
        if n <= 3:
            C = _small_det_grad_wide(W)
            return narrow(_small_det_value(W, C), A.dtype), narrow(C, A.dtype)
        if n == 4:
            C, ok = _cofactor4(W)
            d = _row_expansion(W, C)
            rest = np.flatnonzero(~ok)
            if rest.size:
                C[rest], d[rest] = _det_grad_general(W[rest], me)
            # accepted closed form, but products of 4 entries may leave the
            # range: the value from the elimination (the cofactors stay)
            far = np.flatnonzero(ok & ~_in_range(W, 250))
            if far.size:
                d[far] = _det_grad_general(W[far], me)[1]
            return narrow(d, A.dtype), narrow(C, A.dtype)
        C, d = _det_grad_general(W, me)
        return narrow(d, A.dtype), narrow(C, A.dtype)


# ---------------------------------------------------------------- LU
@dataclass
class LU:
    """``P A = L U`` per matrix, reduced to what the callers need: the pivots
    ``u_kk`` (in order), the sign of ``P``, and the inverse — precomputed by
    the vectorised Gauss-Jordan path, or from LAPACK's ``getrf`` factors
    (``lu``, ``ipiv``) by ``getri`` on demand."""

    pivot_values: np.ndarray
    sign: np.ndarray
    inv: np.ndarray | None = None
    lu: np.ndarray | None = None
    ipiv: np.ndarray | None = None

    def pivots(self) -> np.ndarray:
        return self.pivot_values

    def take(self, idx: np.ndarray) -> LU:
        def sub(x: np.ndarray | None) -> np.ndarray | None:
            return None if x is None else x[idx]

        return LU(self.pivot_values[idx], self.sign[idx], sub(self.inv), sub(self.lu),
                  sub(self.ipiv))

    def inverse(self) -> np.ndarray:
        """``A⁻¹`` (every pivot nonzero)."""
        if self.inv is not None:
            return self.inv
        assert self.lu is not None and self.ipiv is not None
        getri, getri_lwork = scipy.linalg.get_lapack_funcs(
            ("getri", "getri_lwork"), (self.lu[0],)
        )
        n = self.lu.shape[-1]
        work, _ = getri_lwork(n)  # the blocked algorithm needs its workspace
        lwork = max(n, int(np.real(work)))
        out = np.empty_like(self.lu)
        for b in range(self.lu.shape[0]):
            out[b], _ = getri(self.lu[b], self.ipiv[b], lwork=lwork, overwrite_lu=True)
        return out


def lu_batched(A: np.ndarray) -> LU:
    """Partial-pivoting elimination of every matrix of ``A (B, n, n)``.

    Small ``n``: Gauss-Jordan vectorised over the batch (n steps, n³ flops per
    matrix), which yields the inverse directly; its pivots are exactly those
    of LU with partial pivoting, so ``det`` and ``A⁻¹`` come from one
    elimination — what keeps ``det·A⁻ᵀ`` accurate for ill-conditioned ``A``.
    The pivot is the largest ``|re| + |im|`` (LAPACK's choice).  An exactly
    zero column gives a zero pivot (the slot's inverse is then garbage, and
    every caller tests the pivots first); NaN stays in its own slot.
    Large ``n``: LAPACK ``getrf`` per matrix.
    """
    B, n, _ = A.shape
    if n >= config.det_lapack_min_n:
        return _lu_lapack(A)
    W = A.copy()
    perm = np.broadcast_to(np.arange(n), (B, n)).copy()
    sign = np.ones(B)
    piv = np.empty((B, n), dtype=A.dtype)
    slots = np.arange(B)
    for k in range(n):
        _partial_pivot(W, k, sign, perm)
        pivot = W[slots, k, k].copy()
        piv[:, k] = pivot
        # row k ← row k / pivot, with W[k, k] replaced by 1 first (in place GJ)
        W[:, k, k] = 1
        W[:, k, :] /= np.where(pivot == 0, 1, pivot)[:, None]
        # every other row i ← row i − W[i, k]·row k, with W[i, k] replaced by 0;
        # row k's multiplier is 0, so one unmasked rank-1 update does it
        f = W[:, :, k].copy()
        f[:, k] = 0
        rowk_k = W[:, k, k].copy()
        W[:, :, k] = 0
        W[:, k, k] = rowk_k
        W -= f[:, :, None] * W[:, k, None, :]
    # W = (P A)⁻¹ = A⁻¹ Pᵀ, i.e. A⁻¹[:, perm[j]] = W[:, j]
    inv = np.empty_like(W)
    np.put_along_axis(inv, np.broadcast_to(perm[:, None, :], W.shape), W, axis=2)
    return LU(piv, sign, inv=inv)


def _partial_pivot(W: np.ndarray, k: int, sign: np.ndarray, perm: np.ndarray | None) -> None:
    """Step ``k`` of partial pivoting, in place for every slot: the row with
    the largest ``|re| + |im|`` in column ``k`` (rows ``k:``) swapped into row
    ``k`` (and in ``perm``), ``sign`` flipped where a swap happened."""
    col = W[:, k:, k]
    size = np.abs(col.real) + np.abs(col.imag) if np.iscomplexobj(col) else np.abs(col)
    p = k + np.argmax(size, axis=1)
    moved = np.flatnonzero(p != k)
    if moved.size:
        pk = p[moved]
        W[moved, k], W[moved, pk] = W[moved, pk], W[moved, k].copy()
        if perm is not None:
            perm[moved, k], perm[moved, pk] = perm[moved, pk], perm[moved, k].copy()
        sign[moved] = -sign[moved]


def _lu_lapack(A: np.ndarray) -> LU:
    B, n, _ = A.shape
    (getrf,) = scipy.linalg.get_lapack_funcs(("getrf",), (A[0],))
    packed = np.empty_like(A)
    ipivs = np.empty((B, n), dtype=np.int32)
    sign = np.ones(B)
    for b in range(B):
        lu, ipiv, _info = getrf(A[b])  # info > 0: exact zero pivot, still valid
        packed[b], ipivs[b] = lu, ipiv
        sign[b] = (-1.0) ** int(np.count_nonzero(ipiv != np.arange(n)))
    pivots = packed[:, np.arange(n), np.arange(n)].copy()
    return LU(pivots, sign, lu=packed, ipiv=ipivs)


# ---------------------------------------------------------------- SVD
def _svd_cofactor(
    A: np.ndarray, extra_exp: np.ndarray, max_exp: int = 1024
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(C(A)·2^extra_exp, dm, de)`` (``extra_exp`` per entry) from the SVD,
    any rank, with ``det A ≈ d·Π σ_i = dm·2^de`` from the same SVD (0 where
    ``C`` is 0 for numerical rank ≤ n − 2).

    ``A = U Σ Vᴴ`` ⇒ ``adj(A) = det(U) det(Vᴴ) V diag(π) Uᴴ`` with
    ``π_i = Π_{j≠i} σ_j``, so ``C = adj(A)ᵀ = d · conj(U) diag(π) conj(Vᴴ)``.
    ``π`` is formed as mantissa·2ᵉ so that no partial product overflows, and
    the caller's exponent (from pre-scaling) is applied in the same final
    ``ldexp``, so entries under- or overflow only if their true value does.
    """
    n = A.shape[-1]
    U, s, Vh = np.linalg.svd(A)
    # Numerical rank ≤ n−2 (σₙ₋₁ within c·n·eps·σ₁ of zero): C = 0 exactly is
    # the cofactor of a matrix that near, and what the contract asks for.
    low_rank = s[:, n - 2] <= TINY_PIVOT_C * n * np.finfo(np.float64).eps * s[:, 0]
    s = np.where(low_rank[:, None], 0.0, s)
    d = np.linalg.slogdet(U)[0] * np.linalg.slogdet(Vh)[0]
    m, e = np.frexp(s)  # s = m·2ᵉ
    e = e.astype(np.int64)
    zero = m == 0
    nzero = zero.sum(axis=1)
    with np.errstate(divide="ignore"):
        logm = np.log2(np.where(zero, 1.0, m))
    # Σ_{j≠i} log2 m_j over nonzero j; exponents exactly as integers.
    tot_log = logm.sum(axis=1)[:, None] - logm
    tot_e = np.where(zero, 0, e).sum(axis=1)[:, None] - np.where(zero, 0, e)
    # π_i ≠ 0 only if every other σ_j ≠ 0: no zeros, or the one zero is i.
    nonzero_pi = (nzero[:, None] == 0) | ((nzero[:, None] == 1) & zero)
    emax = np.where(nonzero_pi, tot_e, np.iinfo(np.int64).min).max(axis=1)
    emax = np.where(nonzero_pi.any(axis=1), emax, 0)
    pi = np.where(nonzero_pi, np.ldexp(np.exp2(tot_log), tot_e - emax[:, None]), 0.0)
    core = np.matmul(U.conj() * pi[:, None, :], Vh.conj())
    # Entries below the SVD's own normwise error (c·n·eps·max|core|) are
    # rounding noise: flushed to exact zeros where the per-entry exponents
    # of a strongly equilibrated matrix would blow that noise up (into ±inf
    # where the true cofactor is 0, e.g. a diagonal with a zero and entries
    # from 1e-200 to 1e200), kept where it stays negligible.
    core[_noise_to_flush(core, extra_exp + emax[:, None, None], max_exp)] = 0
    sm, se = mantissa_product(s)
    return ldexp(core * d[:, None, None], emax[:, None, None] + extra_exp), d * sm, se


# ---------------------------------------------------------------- public
def _abs_maxima(A: np.ndarray, axis: int) -> np.ndarray:
    """max of ``magnitude(a)`` along ``axis`` (1 or 2; NaN-propagating),
    without a full-size temporary.  For small matrices, n elementwise maxima
    of slices: NumPy reductions along an axis of a few elements pay a per-row
    overhead.  Complex entries are measured by ``max(|re|, |im|)``, which stays
    finite for every finite entry (``|z|`` overflows beyond DBL_MAX)."""
    n = A.shape[axis]
    if n <= 8:
        moved = A if axis == 2 else A.transpose(0, 2, 1)  # reduce over the last axis
        m: np.ndarray = magnitude(moved[:, :, 0])
        for j in range(1, n):
            np.maximum(m, magnitude(moved[:, :, j]), out=m)
        return m
    if np.iscomplexobj(A):
        out: np.ndarray = np.maximum(_abs_maxima(np.ascontiguousarray(A.real), axis),
                                     _abs_maxima(np.ascontiguousarray(A.imag), axis))
        return out
    real: np.ndarray = np.maximum(A.max(axis=axis), -A.min(axis=axis))
    return real


_NO_EXP = np.iinfo(np.int64).min // 4  # "no nonzero entry" marker for exponents


def _column_exponents(A: np.ndarray, r: np.ndarray) -> np.ndarray:
    """``c_j = −exponent(max_i magnitude(a_ij)·2^r_i)`` per slot, from integer
    exponents, so that no entry's scaled value is ever rounded on the way (a
    row-scaled entry far below its row maximum would be subnormal).  Zero
    columns give 0.  Works through the batch in blocks: no full-size temporary
    beyond one block."""
    B, n, _ = A.shape
    c = np.empty((B, n), dtype=np.int64)
    step = max(1, config.scaling_block // (n * n))
    for lo in range(0, B, step):
        hi = min(B, lo + step)
        mag = magnitude(A[lo:hi])
        e = np.frexp(mag)[1].astype(np.int64) + r[lo:hi, :, None]
        e[mag == 0] = _NO_EXP
        top = e.max(axis=1)
        c[lo:hi] = np.where(top == _NO_EXP, 0, -top)
    return c


def _scale_by_pow2(X: np.ndarray, row: np.ndarray, col: np.ndarray,
                   factor: np.ndarray | None = None) -> np.ndarray:
    """``X_ij · factor · 2^(row_i + col_j)`` per slot, each entry rounded once
    (only a subnormal or overflowing result is rounded at all).

    Two multiplications by exact powers of two, the larger one first, so that
    an intermediate can only be subnormal where the result is too; slots whose
    exponents leave ±1000 (where 2^k is no longer a plain float) or whose
    intermediate overflowed are redone entry by entry with ``ldexp``.  The
    decision is per slot, from the slot's own exponents and values.
    """
    B = X.shape[0]
    cmax = col.max(axis=1)
    first = row + cmax[:, None]
    second = col - cmax[:, None]  # ≤ 0
    easy = (np.abs(first).max(axis=1) <= 1000) & (second.min(axis=1) >= -1000)
    f = np.ones(B) if factor is None else factor
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        rowf = f[:, None] * np.exp2(np.clip(first, -1000, 1000).astype(np.float64))
        out: np.ndarray = X * rowf[:, :, None]
        out *= np.exp2(np.maximum(second, -1000).astype(np.float64))[:, None, :]
        # A non-finite entry from finite inputs is an intermediate (or true)
        # overflow: redo exactly; a true overflow stays inf.
        redo = np.flatnonzero(~easy | ~np.isfinite(out).all(axis=(1, 2)))
        if redo.size:
            shift = row[redo][:, :, None] + col[redo][:, None, :]
            out[redo] = ldexp(X[redo] * f[redo][:, None, None], shift)
    return out


def _equilibrate(
    A: np.ndarray, rmax: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``Ã = D_r A D_c`` with ``D_r = diag(2^r)``, ``D_c = diag(2^c)``: row
    maxima brought into [0.5, 1), then column maxima (zero rows and columns
    left alone), so every ``magnitude(ã_ij) < 1``.

    Always applied, and decided per slot from that slot alone: the scaled
    matrix, hence the pivot order and every rounding after it, depends only
    on the matrix itself, never on its neighbours in the batch.  Each entry
    is scaled in one exact step (``2^(r_i + c_j)``), so an entry far below its
    row maximum keeps every bit.
    """
    r = -exponent_of_max(_abs_maxima(A, 2) if rmax is None else rmax)
    c = _column_exponents(A, r)
    return _scale_by_pow2(A, r, c), r, c


def matching_equilibrate(
    A: np.ndarray, r0: np.ndarray, c0: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(Ã, r, c, matched)``: ``Ã = D_r A D_c`` scaled by a maximum-product
    matching, per slot (finite slots; a Python loop, for the rare slots that
    need it).

    With ``E_ij`` the binary exponent of ``magnitude(a_ij)·2^(r0_i + c0_j)``
    (zeros excluded; ``r0``, ``c0`` are the maximum equilibration's
    exponents, so ``E`` is the same for ``A`` and any row scaling of it, and
    so is everything below), a permutation ``σ`` maximising ``Σ_i E_iσ(i)``
    (the Hungarian algorithm, ``scipy.optimize.linear_sum_assignment``: the
    scaling of Duff and Koster's MC64, in exponents) and integer duals with
    ``E_ij + u_i + v_j ≤ 0`` everywhere and ``= 0`` on the matching:
    ``v_σ(k) = −E_kσ(k) − u_k`` and ``u`` the longest-path potentials
    ``u_k = max(0, max_i u_i + E_iσ(k) − E_kσ(k))`` (Bellman-Ford; the
    matching's optimality rules out positive cycles).  ``r = r0 + u``,
    ``c = c0 + v``, applied to ``A`` in one exact step, so no entry is
    rounded on the way.  Every ``magnitude(ã_ij) < 1`` and every matched
    entry is in ``[0.5, 1)``: a graded matrix such as ``εI + triu(ones, 1)``
    or a bidiagonal with columns scaled by ``2^±280`` becomes well scaled,
    which row and column maxima cannot do (their fixed point is not unique,
    and the one they reach keeps the tiny diagonal).  ``matched`` is False
    where every matching meets a zero entry (a structurally singular
    matrix); such a slot keeps ``r0``, ``c0``."""
    B, n, _ = A.shape
    r = r0.copy()
    c = c0.copy()
    matched = np.zeros(B, dtype=bool)
    rows = np.arange(n)
    for b in range(B):
        mag = magnitude(A[b])
        nz = mag > 0
        E = np.where(nz, np.frexp(mag)[1].astype(np.int64) + r0[b][:, None] + c0[b][None, :],
                     _ZERO_WEIGHT)
        _, sigma = scipy.optimize.linear_sum_assignment(E, maximize=True)
        if not nz[rows, sigma].all():
            continue
        matched[b] = True
        Em = E[rows, sigma]
        M = E[:, sigma] - Em[None, :]  # M_ik = E_iσ(k) − E_kσ(k); zeros stay ≪ 0
        u = np.zeros(n, dtype=np.int64)
        for _ in range(n):
            new = np.maximum(u, (u[:, None] + M).max(axis=0))
            if np.array_equal(new, u):
                break
            u = new
        r[b] += u
        c[b, sigma] += -Em - u
    return _scale_by_pow2(A, r, c), r, c, matched


def _scale_entries(X: np.ndarray, factor: np.ndarray, g: np.ndarray,
                   r: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``X_ij · factor · 2^(g + r_i + c_j)`` per slot, exact barring over- and
    underflow of the result itself."""
    return _scale_by_pow2(X, g[:, None] + r, c, factor)


def _cofactor4(W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form 4×4 cofactors for a batch, and which slots to trust.

    The batch version of :func:`matgrad.kernels.scalar.cofactor4_one`: complementary
    2×2 minors of rows 0-1 (s) and rows 2-3 (c); the same expansion on |A|
    with all signs positive bounds the rounding error entry by entry by
    5·eps·M, so a slot is accepted only if ‖M‖_F ≤ 8‖C‖_F (relative error
    ≤ 40·eps), its entries lie within 2^±300 and its nonzero magnitudes
    span at most 2^SPREAD_BITS (the bound is normwise).
    """
    a = [[W[:, i, j] for j in range(4)] for i in range(4)]
    g = [[np.abs(W[:, i, j]) for j in range(4)] for i in range(4)]
    pairs = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]

    def minors(r0: int, r1: int) -> tuple[dict[tuple[int, int], Any], dict[tuple[int, int], Any]]:
        val = {(p, q): a[r0][p] * a[r1][q] - a[r0][q] * a[r1][p] for p, q in pairs}
        mag = {(p, q): g[r0][p] * g[r1][q] + g[r0][q] * g[r1][p] for p, q in pairs}
        return val, mag

    top, top_mag = minors(0, 1)
    bottom, bottom_mag = minors(2, 3)
    C = np.empty_like(W)
    mag2 = np.zeros(W.shape[0])
    # cofactor (i, j): expand the 3×3 minor along the remaining row of the
    # other pair: rows 0/1 use the bottom minors, rows 2/3 the top ones
    for i, (row, mins, mags) in enumerate(((1, bottom, bottom_mag), (0, bottom, bottom_mag),
                                           (3, top, top_mag), (2, top, top_mag))):
        for j in range(4):
            k0, k1, k2 = (c for c in range(4) if c != j)
            val = a[row][k0] * mins[(k1, k2)] - a[row][k1] * mins[(k0, k2)] \
                + a[row][k2] * mins[(k0, k1)]
            C[:, i, j] = val if (i + j) % 2 == 0 else -val
            mag2 += (g[row][k0] * mags[(k1, k2)] + g[row][k1] * mags[(k0, k2)]
                     + g[row][k2] * mags[(k0, k1)]) ** 2
    absW = np.abs(W)
    big = absW.max(axis=(1, 2))
    small = np.where(absW > 0, absW, np.inf).min(axis=(1, 2))
    norm2 = (np.abs(C) ** 2).sum(axis=(1, 2))
    # the bound is normwise: a graded matrix (nonzero magnitudes spanning
    # more than 2^SPREAD_BITS) takes the elimination, whose redo rules cover
    # its small cofactors; products of entries must neither over- nor
    # underflow (the kernels' cofactor4_one, in the same terms)
    ok = ((mag2 <= 64.0 * norm2) & np.isfinite(norm2) & (big < 2.0**300)
          & ((big == 0) | (small >= 2.0**-300)) & (small >= big * 2.0**-SPREAD_BITS))
    return C, ok


def det_grad(A: np.ndarray, max_exp: int | None = None) -> np.ndarray:
    """Cofactors of ``A (B, n, n)`` (module docstring).  ``max_exp``: the
    overflow exponent of the dtype the caller narrows the result to
    (:func:`_max_exp`; default ``A``'s own), for a caller that passes a
    widened float32 matrix."""
    n = A.shape[-1]
    me = _max_exp(A) if max_exp is None else max_exp
    if n == 1:
        return np.ones_like(A)
    if n <= 3:
        return _small_det_grad(A)
    W = widen(A)
    with np.errstate(all="ignore"):
        if n == 4:
            C, ok = _cofactor4(W)
            rest = np.flatnonzero(~ok)
            if rest.size:
                C[rest] = _det_grad_general(W[rest], me)[0]
            return narrow(C, A.dtype)
        return narrow(_det_grad_general(W, me)[0], A.dtype)


def _max_exp(A: np.ndarray) -> int:
    """Binary exponent at which ``A``'s result dtype overflows (1024 for
    float64, 128 for float32): where flushed rounding noise would turn into
    a false ±inf once the float64 work is narrowed (:func:`_noise_to_flush`)."""
    return int(np.finfo(A.dtype).maxexp)


def _det_grad_general(W: np.ndarray, max_exp: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """``(C, det)`` by the equilibrated elimination (SVD for tiny pivots);
    NaN for slots with a non-finite entry.  ``max_exp``: the result dtype's
    overflow exponent (:func:`_max_exp`)."""
    with np.errstate(all="ignore"):
        rmax = _abs_maxima(W, 2)
        finite = np.isfinite(rmax).all(axis=1)
        if finite.all():
            return _det_grad_finite(W, rmax, max_exp)
        C = np.full(W.shape, np.nan, dtype=W.dtype)
        d = np.full(W.shape[0], np.nan, dtype=W.dtype)
        idx = np.flatnonzero(finite)
        if idx.size:
            C[idx], d[idx] = _det_grad_finite(W[idx], rmax[idx], max_exp)
    return C, d


def _det_grad_finite(W: np.ndarray, rmax: np.ndarray,
                     max_exp: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """``(C, det)`` of finite slots: the maximum-equilibrated elimination;
    slots with a pivot ``≤ REDO_PIVOT`` (or NaN in the result) redone on the
    matching equilibration (their small entries recomputed from minors,
    :func:`_refine_from_minors`); slots whose pivots stay tiny
    there go to the SVD adjugate (see the module docstring)."""
    n = W.shape[-1]
    At, r, c = _equilibrate(W, rmax)
    out, d, redo = _cofactor_by_elimination(At, r, c, _redo_pivot(c))
    redo = np.union1d(redo, np.flatnonzero(_to_matching(W, c)))
    if redo.size == 0:
        return out, d
    Wr = W[redo]
    # The SVD adjugate's inputs per redone slot: the matching-equilibrated
    # matrix where a matching exists, else the maximum-equilibrated one.
    svd_At, svd_r, svd_c = At[redo], r[redo], c[redo]
    svd_d = d[redo]
    to_svd = np.ones(redo.size, dtype=bool)
    At2, r2, c2, matched = matching_equilibrate(Wr, r[redo], c[redo])
    m = np.flatnonzero(matched)
    if m.size:
        o2, d2, bad2 = _cofactor_by_elimination(At2[m], r2[m], c2[m],
                                                TINY_PIVOT_C * n * _EPS, one_tiny=True,
                                                max_exp=max_exp)
        good = np.setdiff1d(np.arange(m.size), bad2)
        # refined from minors where the matrix is not numerically singular
        # (the minors of a singular one are singular where its cofactors
        # vanish, and would turn the flushed zeros back into noise)
        clear = good[np.abs(np.linalg.svd(At2[m][good], compute_uv=False)[:, -1])
                     > TINY_PIVOT_C * n * _EPS] if good.size else good
        if n <= REFINE_MAX_N and clear.size:
            _refine_from_minors(o2, Wr[m], At2[m], r2[m], c2[m], clear, d=None)
        out[redo[m[good]]], d[redo[m[good]]] = o2[good], d2[good]
        to_svd[m[good]] = False
        svd_At[m], svd_r[m], svd_c[m], svd_d[m] = At2[m], r2[m], c2[m], d2
    s = np.flatnonzero(to_svd)
    if s.size:
        # C(A)_ij = C(Ã)_ij · 2^(r_i + c_j − Σr − Σc)
        rs, cs = svd_r[s], svd_c[s]
        shift = (rs[:, :, None] + cs[:, None, :]
                 - (rs.sum(axis=1) + cs.sum(axis=1))[:, None, None])
        C, sm, se = _svd_cofactor(svd_At[s], shift, max_exp)
        out[redo[s]] = C
        # det still from the elimination's pivots: for a graded matrix they
        # carry it far more accurately than Π σ (whose smallest σ is only
        # accurate to eps·σ₁), and det is 0 exactly where logdet_grad, from
        # the same elimination, says singular.  Π σ only where the
        # elimination broke down.
        ds = svd_d[s]
        broke = ~np.isfinite(ds)
        g = -(rs.sum(axis=1) + cs.sum(axis=1))
        ds[broke] = ldexp(sm[broke], se[broke] + g[broke])
        d[redo[s]] = ds
    return out, d


def _cofactor_by_elimination(
    At: np.ndarray, r: np.ndarray, c: np.ndarray, tol: float | np.ndarray,
    one_tiny: bool = False, max_exp: int = 1024,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(C(A), det A, bad)`` from one elimination of the equilibrated
    ``Ã = D_r A D_c`` (every ``magnitude(ã_ij) < 1``, so the pivot test is
    absolute).  ``bad``: the slots with a pivot ``|u_kk| ≤ tol`` (a number,
    or one per slot) or NaN in
    their result; their ``C`` is unspecified, their ``det`` is the signed
    pivot product (NaN or inf where the elimination broke down).

    ``one_tiny``: a single nonzero pivot ``≤ tol`` is kept.  Then ``det·Ã⁻ᵀ``
    is the cofactor of the factored matrix, a backward error of
    ``O(eps·‖Ã‖)`` away, even at rank n − 1: the tiny pivot cancels between
    ``det`` and ``Ã⁻¹`` (what ``det(A)·inv(A).T`` gets right on graded
    rank-deficient matrices, measured 150× closer than the SVD adjugate
    mapped back through wide exponents).  Such a slot's ``Ã⁻ᵀ`` entries
    below its own rounding noise are flushed to 0 before they are mapped
    back, as the SVD adjugate's are: the exactly zero column of a rank-one
    cofactor matrix otherwise came back as noise of 1e211 beside true
    entries of 1e184.  Two tiny pivots (rank ≤ n − 2, whose cofactors are 0
    to within the bound, not O(1) noise) or an exactly zero one still count
    as ``bad``."""
    g = -(r.sum(axis=1) + c.sum(axis=1))  # det A = det Ã · 2^g
    f = lu_batched(At)
    pivots = f.pivots()
    small = np.abs(pivots) <= np.reshape(tol, (-1, 1))
    if one_tiny:
        tiny = (small.sum(axis=1) >= 2) | (pivots == 0).any(axis=1)
    else:
        tiny = small.any(axis=1)
    good = np.flatnonzero(~tiny)
    if good.size == At.shape[0]:  # the common case: no copies of the factors
        out, m, e = _lu_cofactor(f, pivots, r, c, flush=small.any(axis=1) if one_tiny else None,
                                 max_exp=max_exp)
        d = ldexp(m, e + g)
        return out, d, np.flatnonzero(_has_nan(out))
    out = np.empty_like(At)
    d = np.empty(At.shape[0], dtype=At.dtype)
    if good.size:
        near = small[good].any(axis=1) if one_tiny else None
        out[good], m, e = _lu_cofactor(f.take(good), pivots[good], r[good], c[good],
                                       flush=near, max_exp=max_exp)
        d[good] = ldexp(m, e + g[good])
    bad = np.union1d(np.flatnonzero(tiny), good[_has_nan(out[good])])
    if bad.size:
        m, e = mantissa_product(pivots[bad])
        d[bad] = ldexp(m * f.sign[bad], e + g[bad])
    return out, d, bad


def _redo_pivot(c: np.ndarray) -> np.ndarray:
    """Per slot, the tier-1 pivot at or below which the slot is redone on the
    matching equilibration: GRADED_PIVOT where the column exponents span
    more than GRADED_BITS (the maximum equilibration's frame is measured
    far worse there than the matching one), else REDO_PIVOT; the kernels'
    rule (:func:`matgrad.kernels.scalar.equilibrate_one`)."""
    return np.where(c.max(axis=1) - c.min(axis=1) > GRADED_BITS, GRADED_PIVOT, REDO_PIVOT)


def _to_matching(W: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Per slot: redo on the matching equilibration whatever the pivots — the
    column exponents ``c_j`` span more than ``SPREAD_BITS`` bits (*wide*:
    columns graded beyond what the row maxima removed), or more than
    ``GRADED_BITS`` and the matrix has an exactly zero entry (a graded
    banded or triangular matrix, whose structural zeros fill with noise in
    the maximum frame); the kernels' rule
    (:func:`matgrad.kernels.scalar.equilibrate_one`).  The elimination's
    rounding noise in ``Ã`` is scaled back by powers of two that differ by
    up to 2^spread, which can swamp a cofactor that is small in ``Ã`` but
    not in ``A``.  The row exponents do not count: a row scaling, which the
    row maxima remove exactly, never changes the decision."""
    spread = c.max(axis=1) - c.min(axis=1)
    out = spread > SPREAD_BITS
    graded = np.flatnonzero(~out & (spread > GRADED_BITS))
    if graded.size:
        out[graded] = (W[graded] == 0).any(axis=(1, 2))
    return out  # type: ignore[no-any-return]


def _refine_from_minors(out: np.ndarray, W: np.ndarray, At: np.ndarray,
                        r: np.ndarray, c: np.ndarray, slots: np.ndarray,
                        d: tuple[np.ndarray, np.ndarray] | None) -> None:
    """Recompute, in place, the entries of ``out[slots]`` that the elimination
    of the scaled ``At`` cannot carry: ``C_ij = (−1)^(i+j)·det(W without row
    i, column j)`` (``d`` None), or ``(A⁻ᵀ)_ij = conj(C_ij / det W)`` with
    ``det W = m·2ᵉ`` given as ``d = (m, e)``; ``At = D_r W D_c`` with
    exponents ``r``, ``c``.

    The elimination's rounding error is about ``n·eps·max|Ã⁻¹|`` in every
    entry of ``Ã⁻ᵀ``; an entry far below that maximum (``≤ REFINE_REL``) is
    mostly rounding error, and mapped back through its own power of two
    ``2^(r_i + c_j − …)`` it can be a large number wrong by orders of
    magnitude (a wide-exponent 4×4 gave 3e299 for a cofactor of 9e192).  Its
    minor, eliminated with its own equilibration, carries it to the minor's
    own accuracy instead.  For the rare redone slots of ``n ≤ REFINE_MAX_N``."""
    n = W.shape[-1]
    if n < 2:
        return
    inv = lu_batched(At[slots]).inverse()
    mag = magnitude(inv).transpose(0, 2, 1)  # [t, i, j]: entry (i, j) of Ã⁻ᵀ
    top = mag.max(axis=(1, 2), keepdims=True)
    # An entry's rounding error is ≈ top in the frame, so ≈ |result|·top/mag
    # once mapped back; it matters where that comes within 2^REFINE_SPAN of
    # the largest finite result entry (a true overflow is not measured).
    res = magnitude(out[slots])
    with np.errstate(all="ignore"):
        usable = np.isfinite(res) & (res > 0)
        biggest = np.max(np.where(usable, res, 0.0), axis=(1, 2), keepdims=True)
        noise = np.log2(res) + np.log2(top) - np.log2(mag)
        relevant = usable & (noise >= np.log2(biggest) - REFINE_SPAN)
    small = (mag <= REFINE_TINY * top) | ((mag <= REFINE_REL * top) & relevant)
    t, ii, jj = np.nonzero(small)
    if t.size == 0:
        return
    keep = np.arange(n - 1)
    rows = keep[None, :] + (keep[None, :] >= ii[:, None])
    cols = keep[None, :] + (keep[None, :] >= jj[:, None])
    src = slots[t]
    # The minors of the scaled At are scaled minors of W, usually well
    # scaled themselves: one vectorised elimination, and the matching per
    # minor only where that shows a tiny pivot (a graded or structurally
    # singular minor).  det(minor W) = det(minor Ã)·2^-(Σr − r_i + Σc − c_j).
    mm, me = _scaled_minor_dets(At[src[:, None, None], rows[:, :, None], cols[:, None, :]])
    me = me - (r[src].sum(axis=1) - r[src, ii]) - (c[src].sum(axis=1) - c[src, jj])
    hard = np.flatnonzero(~np.isfinite(mm))
    if hard.size:
        h = src[hard]
        minors = W[h[:, None, None], rows[hard][:, :, None], cols[hard][:, None, :]]
        mm[hard], me[hard] = _det_mantissa(minors)
    sign = np.where((ii + jj) % 2 == 0, 1.0, -1.0)
    if d is None:
        vals = ldexp(sign * mm, me)
    else:
        dm, de = d
        vals = ldexp(sign * mm / dm[slots][t], me - de[slots][t])
        if np.iscomplexobj(vals):
            vals = vals.conj()
    out[src, ii, jj] = vals


def _scaled_minor_dets(M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``det M = m·2ᵉ`` of well-scaled matrices (entries below 1) from one
    elimination; ``m`` NaN where a pivot is ``≤ REDO_PIVOT`` (or not finite),
    for the caller to redo with :func:`_det_mantissa`."""
    k, n, _ = M.shape
    if n == 1:
        m1 = M[:, 0, 0].copy()
        bad1 = ~(np.abs(m1) > REDO_PIVOT) | ~np.isfinite(m1)
        m1[bad1] = np.nan
        return m1, np.zeros(k, dtype=np.int64)
    piv, sign = _lu_pivots(M)
    m, e = mantissa_product(piv)
    m = m * sign
    bad = (np.abs(piv) <= REDO_PIVOT).any(axis=1) | ~np.isfinite(piv).all(axis=1)
    m[bad] = np.nan
    return m, e


def _lu_pivots(M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(pivots, sign(P))`` of LU with partial pivoting (the largest
    ``|re| + |im|``, as :func:`lu_batched`), vectorised over the batch:
    n³/3 flops per matrix and no inverse, for determinants alone."""
    W = M.copy()
    B, n, _ = W.shape
    rows = np.arange(B)
    sign = np.ones(B)
    piv = np.empty((B, n), dtype=W.dtype)
    for k in range(n):
        _partial_pivot(W, k, sign, None)
        pivot = W[rows, k, k].copy()
        piv[:, k] = pivot
        if k + 1 < n:
            f = W[:, k + 1:, k] / np.where(pivot == 0, 1, pivot)[:, None]
            W[:, k + 1:, k + 1:] -= f[:, :, None] * W[:, k, None, k + 1:]
    return piv, sign


def _det_mantissa(W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``det W = m·2ᵉ`` for finite ``W (k, n, n)`` from the pivots of the
    matching-equilibrated elimination (the better frame for the minors of a
    graded matrix): relative accuracy of that scaled problem, over- and
    underflow impossible, and exactly 0 for a structurally singular matrix
    (no matching avoids a zero entry: the minors of a triangular matrix's
    far triangle)."""
    k, n, _ = W.shape
    if n == 1:
        if np.iscomplexobj(W):
            return W[:, 0, 0].copy(), np.zeros(k, dtype=np.int64)
        m1, e1 = np.frexp(W[:, 0, 0])
        return m1, e1.astype(np.int64)
    _, r, c = _equilibrate(W)
    At, r2, c2, matched = matching_equilibrate(W, r, c)
    f = lu_batched(At)
    m, e = mantissa_product(f.pivots())
    m = m * f.sign
    e = e - r2.sum(axis=1) - c2.sum(axis=1)
    m[~matched] = 0
    return m, e


def _has_nan(out: np.ndarray) -> np.ndarray:
    """Slots whose LU result holds NaN: the solve broke down (absurd growth);
    inf alone can be a true overflow and is kept."""
    return np.isnan(out).any(axis=(1, 2))  # type: ignore[no-any-return]


def _noise_to_flush(X: np.ndarray, shift: np.ndarray, max_exp: int = 1024) -> np.ndarray:
    """Entries of ``X (k, n, n)`` (a numerically singular slot's cofactors or
    inverse in its scaled frame, entry ``(i, j)`` mapped back by
    ``2^shift_ij``, the result's own binary exponent up to a factor of at
    most 2) to set to 0: at or below ``4·n·eps`` of the largest (so
    rounding noise), **and** with that noise, mapped back, within 2³⁰ of
    the largest result entry or beyond ``2^(max_exp − 24)`` (2¹⁰⁰⁰ for
    float64, 2¹⁰⁴ for float32 results: where it would be a false ±inf).
    Noise that stays negligible in ``A``'s frame is kept (it may be the
    exact value: a cofactor of exactly 2⁻⁵³ beside ones came back 0 when
    flushed unconditionally); noise that would outgrow the true entries
    (the exactly zero column of a graded rank-one cofactor matrix came back
    as 1e211 beside true entries of 1e184) is flushed."""
    mag = magnitude(X)
    top = mag.max(axis=(1, 2), keepdims=True)
    tol = TINY_PIVOT_C * X.shape[-1] * _EPS
    with np.errstate(divide="ignore", invalid="ignore"):
        sh = shift.astype(np.float64)
        biggest = np.max(np.where(mag > 0, np.log2(mag) + sh, -np.inf), axis=(1, 2), keepdims=True)
        noise = np.log2(tol * top) + sh
    # noise that would itself be huge (2^(max_exp - 24) and beyond: a false
    # ±inf beside a truly overflowing entry, in the result's dtype) is
    # flushed whatever the largest entry
    return (mag <= tol * top) & ((noise >= biggest - 30) | (noise >= max_exp - 24))  # type: ignore[no-any-return]


def _lu_cofactor(
    f: LU, pivots: np.ndarray, r: np.ndarray, c: np.ndarray,
    flush: np.ndarray | None = None, max_exp: int = 1024,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(C(A), dm, de)``: ``C(A) = det(Ã)·Ã⁻ᵀ`` rescaled to ``A``, entry
    ``(i, j)`` carrying ``2^(e + r_i + c_j − Σr − Σc)``, with
    ``det(Ã) = dm·2^de`` (``dm = sign(P)·m``).  ``flush`` (per slot): set
    the entries of ``Ã⁻¹`` at or below ``4·n·eps`` of its largest to 0 first
    (a numerically singular slot: they are rounding noise) where, mapped
    back, that noise would matter (:func:`_noise_to_flush`)."""
    inv = f.inverse()
    if flush is not None and flush.any():
        k = np.flatnonzero(flush)
        sub = inv[k].transpose(0, 2, 1)  # entry (i, j) of Ã⁻ᵀ, scaled by 2^(g + r_i + c_j)
        gk = (mantissa_product(pivots[k])[1] - r[k].sum(axis=1) - c[k].sum(axis=1))
        sub[_noise_to_flush(sub, gk[:, None, None] + r[k][:, :, None] + c[k][:, None, :],
                            max_exp)] = 0
        inv[k] = sub.transpose(0, 2, 1)
    m, e = mantissa_product(pivots)
    g = e - r.sum(axis=1) - c.sum(axis=1)
    dm = m * f.sign
    return _scale_entries(inv.transpose(0, 2, 1), dm, g, r, c), dm, e


def logdet_grad(A: np.ndarray) -> np.ndarray:
    return _logdet(A, value=False)[0]


def logdet_value_grad(A: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(sign, log|det A|, A⁻ᵀ)`` from one elimination; ``G`` bit-identical
    to :func:`logdet_grad`'s.  ``det Ã = sign(P)·Π u_kk = m·2ᵉ``, so
    ``log|det A| = log|m| + (e − Σr − Σc)·ln 2``, never over- or underflowing;
    sign 0 and −inf for an exactly zero pivot, NaN for a non-finite entry."""
    G, values = _logdet(A, value=True)
    assert values is not None
    return values[0], values[1], G


def _logdet(
    A: np.ndarray, value: bool
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """``(A⁻ᵀ, (sign, log|det A|) if value else None)``.

    n = 2, 3 with every nonzero part within 2^±300 and a determinant that
    lost at most 10 bits to cancellation: ``A⁻ᵀ = C/det`` from the
    closed-form cofactors and their row expansion (no product over- or
    underflows there; a power-of-two scaling of rows or columns scales every
    product exactly, so such a slot's result is exactly equivariant), NaN
    where that ``det`` is exactly 0 with every term 0.  Other slots: the
    equilibrated elimination (:func:`_logdet_general`).  Extra memory
    O(output)."""
    n = A.shape[-1]
    W = widen(A)
    B = W.shape[0]
    with np.errstate(all="ignore"):
        if n in (2, 3):
            close = _in_range(W, 300)
            if close.all():
                G, d, ok = _logdet_closed_form(W)
                idx = None
            else:
                G = np.empty_like(W)
                idx = np.flatnonzero(close)
                G[idx], d, ok = _logdet_closed_form(W[idx])
            sign = np.empty(B, dtype=W.dtype)
            logabs = np.empty(B)
            if value:
                s_c, l_c = _slogdet_of(d)
                sign[idx if idx is not None else slice(None)] = s_c
                logabs[idx if idx is not None else slice(None)] = l_c
            rest = np.ones(B, dtype=bool)
            rest[idx if idx is not None else slice(None)] = ~ok
            r = np.flatnonzero(rest)
            if r.size:
                G[r], sign[r], logabs[r] = _logdet_general(W[r])
        else:
            G, sign, logabs = _logdet_general(W)
        G = narrow(G, A.dtype)
        if not value:
            return G, None
    return G, (narrow(sign, A.dtype), narrow(logabs, np.empty(0, A.dtype).real.dtype))


def _logdet_closed_form(W: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(conj(C/det), det, ok)`` for 2×2 / 3×3 slots within 2^±300 (in place
    over the cofactors: no temporary beyond the output); NaN where det = 0.
    ``ok``: the row expansion lost at most 10 bits to cancellation
    (``|det| > 2⁻¹⁰·Σ_j |a_0j·C_0j|``) or every term is 0 (an exactly
    singular matrix); other slots take the elimination, whose pivots carry
    an ill-conditioned determinant better (a 3×3 with σ = 1, 1e-6, 1e-12
    came out 13 % off here, 5e-6 by LU)."""
    G = _closed_form(W)
    d = _row_expansion(W, G)
    t = np.abs(W[:, 0, 0] * G[:, 0, 0])
    for j in range(1, W.shape[-1]):
        t += np.abs(W[:, 0, j] * G[:, 0, j])
    ok = (np.abs(d) > 2.0**-10 * t) | (t == 0)
    G /= np.where(d == 0, np.nan, d)[:, None, None]
    if np.iscomplexobj(G):
        np.conjugate(G, out=G)
    # a zero cofactor of sign −0.0 (−a_10 for a_10 = +0) gives −0.0 where the
    # inverse has a plain 0: + 0 makes it +0.0 and changes nothing else
    G += 0
    return G, d, ok


def _slogdet_of(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(sign, log|d|)`` of determinants that neither over- nor underflowed
    (``(0, −inf)`` for 0)."""
    return slogdet_from_mantissa(d, np.zeros(d.shape, dtype=np.int64))


def _logdet_general(W: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(A⁻ᵀ, sign, log|det A|)`` by the maximum-equilibrated elimination;
    slots with a pivot ``≤ REDO_PIVOT`` (or a non-finite inverse) redone on
    the matching equilibration, whose elimination then decides: an exactly
    zero pivot there (or no matching: structurally singular) gives a NaN
    slot with ``(0, −inf)``, a small one huge entries, as ``A⁻ᵀ`` is."""
    rmax = _abs_maxima(W, 2)
    finite = np.isfinite(rmax).all(axis=1)
    At, r, c = _equilibrate(W, rmax)
    G, m, e, sign, broke = _inverse_t_by_elimination(At, r, c, _redo_pivot(c))
    redo = np.flatnonzero((broke | _to_matching(W, c)) & finite)
    if redo.size:
        At2, r2, c2, matched = matching_equilibrate(W[redo], r[redo], c[redo])
        k = np.flatnonzero(matched)
        if k.size:
            g2, m2, e2, s2, _ = _inverse_t_by_elimination(At2[k], r2[k], c2[k], 0.0)
            n = W.shape[-1]
            fine = np.flatnonzero(np.isfinite(m2) & (m2 != 0))
            if n <= REFINE_MAX_N and fine.size:
                _refine_from_minors(g2, W[redo[k]], At2[k], r2[k], c2[k], fine,
                                    d=(m2 * s2, e2))
            G[redo[k]], m[redo[k]], e[redo[k]], sign[redo[k]] = g2, m2, e2, s2
        # structurally singular: the maximum-equilibrated elimination's
        # result stands, computed without the REDO_PIVOT stop
        u = np.flatnonzero(~matched)
        if u.size:
            iu = redo[u]
            g3, m3, e3, s3, _ = _inverse_t_by_elimination(At[iu], r[iu], c[iu], 0.0)
            G[iu], m[iu], e[iu], sign[iu] = g3, m3, e3, s3
    s, logabs = slogdet_from_mantissa(m * sign, e)
    s[~finite] = np.nan
    logabs[~finite] = np.nan
    G[~finite] = np.nan
    return G, s, logabs


def _inverse_t_by_elimination(
    At: np.ndarray, r: np.ndarray, c: np.ndarray, tol: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(A⁻ᵀ, m, e, sign(P), broke)`` from one elimination of the
    equilibrated ``Ã = D_r A D_c``: ``det A = sign·m·2ᵉ`` from the pivots,
    ``(A⁻ᵀ)_ij = (Ã⁻ᵀ)_ij·2^(r_i + c_j)`` (conjugated for complex).  Slots
    with an exactly zero or non-finite pivot are NaN; ``broke`` also flags
    those with a pivot ``≤ tol`` or a non-finite ``Ã⁻¹``."""
    f = lu_batched(At)
    pivots = f.pivots()
    m, e = mantissa_product(pivots)
    e = e - r.sum(axis=1) - c.sum(axis=1)
    usable = np.isfinite(pivots).all(axis=1) & (pivots != 0).all(axis=1)
    broke = ~usable | (np.abs(pivots) <= np.reshape(tol, (-1, 1))).any(axis=1)
    G = np.full(At.shape, np.nan, dtype=At.dtype)
    ok = np.flatnonzero(usable)
    if ok.size:
        sub = f if ok.size == len(pivots) else f.take(ok)
        inv = sub.inverse().transpose(0, 2, 1)
        broke[ok] |= ~np.isfinite(inv).all(axis=(1, 2))
        G[ok] = _scale_entries(inv, np.ones(ok.size), np.zeros(ok.size, np.int64),
                               r[ok], c[ok]).conj()
    return G, m, e, f.sign, broke


def slogdet_from_mantissa(m: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(sign, log|x|)`` in the wide dtypes of ``x = m·2ᵉ`` (``m`` of modest
    magnitude): ``(0, −inf)`` for ``m = 0``, NaN for a non-finite ``m``."""
    with np.errstate(all="ignore"):
        absm = np.abs(m)
        nonzero = absm > 0
        sign = np.where(nonzero, m / np.where(nonzero, absm, 1.0), m * 0)
        logabs = np.log(absm) + e * _LN2
        bad = ~np.isfinite(m)
        sign = np.where(bad, np.nan, sign).astype(m.dtype)
        logabs = np.where(bad, np.nan, logabs)
    return sign, logabs


