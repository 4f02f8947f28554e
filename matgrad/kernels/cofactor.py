"""Cofactor matrices (∇det) and inverse transposes (∇log|det|), batched on the host.

The NumPy backend's algorithm, and the host path of the kernel backends
(large ``n``, and the rare slots their kernels hand back).

``n ≤ 3``: closed forms (exact for singular input, no division); a slot whose
products overflow is redone on the equilibrated matrix.  ``n = 4``: the
closed form where an a-posteriori bound proves it accurate, else the general
path.  General path: the matrix is equilibrated with powers of two,
``Ã = D_r A D_c`` (row maxima, then column maxima, below 1; each entry scaled
in one exact step, decided per slot), which makes graded matrices such as
diag(1e200, 1e200, 1, 1, 1) or a row of 1e306 well scaled, since
``C(A)_ij = C(Ã)_ij·2^(r_i + c_j − Σr − Σc)``; then ``Ã`` is eliminated with
partial pivoting (Gauss-Jordan vectorised over the batch for small ``n``,
LAPACK ``getrf``/``getri`` per matrix for large ``n``), and
``C = det(Ã)·Ã⁻ᵀ`` is formed from that one elimination with ``det`` kept as
mantissa·2ᵉ and mapped back entry by entry.  Slots whose elimination shows a
pivot ``|u_kk| ≤ c·n·eps`` go to the SVD adjugate, which is right for every
matrix, singular or not.

Values (``det_value_grad``, ``logdet_value_grad``) come from the same data:
``det = Σ_j a_0j·C_0j`` on the closed-form paths where every nonzero entry
lies within 2^±300 (2^±250 for n = 4), so that no product over- or
underflows (other slots: the equilibrated closed form, or the elimination);
``det = sign(P)·Π u_kk·2^-(Σr+Σc)`` from the elimination's pivots, as
mantissa·2ᵉ, also for the slots whose cofactors come from the SVD (``d·Π σ_i``
only where the elimination broke down); ``(sign, log|det|)`` from the pivots
of the same elimination, which also gives ``A⁻ᵀ``.  So ``det`` is exactly 0,
``(sign, log|det|)`` is ``(0, −inf)`` and ``A⁻ᵀ`` is NaN together, where that
elimination meets an exactly zero pivot; an exactly singular matrix whose
rounded elimination does not (duplicated rows can leave a residual of the
order of eps) gives a value of that order, as ``numpy.linalg.det`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg

from .._config import config
from .scaling import exponent_of_max, ldexp, magnitude, mantissa_product, narrow, widen

__all__ = [
    "LU",
    "det_grad",
    "det_value_grad",
    "equilibrated_small_det",
    "logdet_grad",
    "logdet_value_grad",
    "lu_batched",
    "slogdet_from_mantissa",
]

#: Pivot threshold constant c in |u_kk| ≤ c·n·eps·max|a_ij|.
TINY_PIVOT_C = 4.0
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
    """Cofactors of ``Ã = D_r A D_c`` (every entry below 1, so no product
    overflows), mapped back exactly: ``C(A)_ij = C(Ã)_ij·2^(r_i + c_j − Σr − Σc)``."""
    At, r, c = _equilibrate(A)
    g = -(r.sum(axis=1) + c.sum(axis=1))
    return _scale_entries(_closed_form(At), np.ones(A.shape[0]), g, r, c)


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
    """``det`` of finite 2×2 or 3×3 matrices by the closed form on
    ``Ã = D_r W D_c``: ``det W = det Ã·2^-(Σr+Σc)``, over- or underflowing
    only where the true value does."""
    with np.errstate(all="ignore"):
        At, r, c = _equilibrate(W)
        d = _row_expansion(At, _closed_form(At))
        return ldexp(d, -(r.sum(axis=1) + c.sum(axis=1)))


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


def det_value_grad(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(det A, C)`` from one pass (see the module docstring); ``C`` is
    bit-identical to :func:`det_grad`'s."""
    n = A.shape[-1]
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
                C[rest], d[rest] = _det_grad_general(W[rest])
            # accepted closed form, but products of 4 entries may leave the
            # range: the value from the elimination (the cofactors stay)
            far = np.flatnonzero(ok & ~_in_range(W, 250))
            if far.size:
                d[far] = _det_grad_general(W[far])[1]
            return narrow(d, A.dtype), narrow(C, A.dtype)
        C, d = _det_grad_general(W)
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
        col = W[:, k:, k]
        size = np.abs(col.real) + np.abs(col.imag) if np.iscomplexobj(col) else np.abs(col)
        p = k + np.argmax(size, axis=1)
        moved = np.flatnonzero(p != k)
        if moved.size:
            pk = p[moved]
            W[moved, k], W[moved, pk] = W[moved, pk], W[moved, k].copy()
            perm[moved, k], perm[moved, pk] = perm[moved, pk], perm[moved, k].copy()
            sign[moved] = -sign[moved]
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
    A: np.ndarray, extra_exp: np.ndarray
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
    # rounding noise: flushed to exact zeros, which is as accurate, and
    # keeps the per-entry exponents of a strongly equilibrated matrix from
    # blowing that noise up into ±inf where the true cofactor is 0 (e.g. a
    # diagonal with a zero and entries from 1e-200 to 1e200).
    mag = magnitude(core)
    core[mag <= TINY_PIVOT_C * n * np.finfo(np.float64).eps * mag.max(axis=(1, 2),
                                                                        keepdims=True)] = 0
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
    ≤ 40·eps) and its entries lie within 2^±300.
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
    big = _abs_maxima(W, 2).max(axis=1)
    norm2 = (np.abs(C) ** 2).sum(axis=(1, 2))
    ok = (mag2 <= 64.0 * norm2) & np.isfinite(norm2) & (big < 2.0**300) & (big >= 2.0**-300)
    return C, ok


def det_grad(A: np.ndarray) -> np.ndarray:
    n = A.shape[-1]
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
                C[rest] = _det_grad_general(W[rest])[0]
            return narrow(C, A.dtype)
        return narrow(_det_grad_general(W)[0], A.dtype)


def _det_grad_general(W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(C, det)`` by the equilibrated elimination (SVD for tiny pivots);
    NaN for slots with a non-finite entry."""
    with np.errstate(all="ignore"):
        rmax = _abs_maxima(W, 2)
        finite = np.isfinite(rmax).all(axis=1)
        if finite.all():
            return _det_grad_finite(W, rmax)
        C = np.full(W.shape, np.nan, dtype=W.dtype)
        d = np.full(W.shape[0], np.nan, dtype=W.dtype)
        idx = np.flatnonzero(finite)
        if idx.size:
            C[idx], d[idx] = _det_grad_finite(W[idx], rmax[idx])
    return C, d


def _det_grad_finite(W: np.ndarray, rmax: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = W.shape[-1]
    At, r, c = _equilibrate(W, rmax)
    g = -(r.sum(axis=1) + c.sum(axis=1))  # det A = det Ã · 2^g
    f = lu_batched(At)
    pivots = f.pivots()
    # every |ã_ij| < 1 after equilibration (complex: each part), so the
    # pivot test needs no per-slot maximum
    tol = TINY_PIVOT_C * n * np.finfo(np.float64).eps
    tiny = (np.abs(pivots) <= tol).any(axis=1)
    good = np.flatnonzero(~tiny)
    bad = np.flatnonzero(tiny)
    if bad.size == 0:  # the common case: no copies of the factors
        out, m, e = _lu_cofactor(f, pivots, r, c)
        d = ldexp(m, e + g)
        bad = np.flatnonzero(_has_nan(out))
    else:
        out = np.empty_like(At)
        d = np.empty(W.shape[0], dtype=W.dtype)
        if good.size:
            out[good], m, e = _lu_cofactor(f.take(good), pivots[good], r[good], c[good])
            d[good] = ldexp(m, e + g[good])
            bad = np.union1d(bad, good[_has_nan(out[good])])
    if bad.size:
        # C(A)_ij = C(Ã)_ij · 2^(r_i + c_j − Σr − Σc)
        shift = (r[bad][:, :, None] + c[bad][:, None, :]
                 - (r[bad].sum(axis=1) + c[bad].sum(axis=1))[:, None, None])
        out[bad], sm, se = _svd_cofactor(At[bad], shift)
        # det still from the elimination's pivots: for a graded matrix they
        # carry it far more accurately than Π σ (whose smallest σ is only
        # accurate to eps·σ₁), and det is 0 exactly where logdet_grad, from
        # the same elimination, says singular.  Π σ only where the
        # elimination broke down.
        m, e = mantissa_product(pivots[bad])
        m = m * f.sign[bad]
        broke = ~np.isfinite(m)
        m[broke], e[broke] = sm[broke], se[broke]
        d[bad] = ldexp(m, e + g[bad])
    return out, d


def _has_nan(out: np.ndarray) -> np.ndarray:
    """Slots whose LU result holds NaN: the solve broke down (absurd growth);
    inf alone can be a true overflow and is kept."""
    return np.isnan(out).any(axis=(1, 2))  # type: ignore[no-any-return]


def _lu_cofactor(
    f: LU, pivots: np.ndarray, r: np.ndarray, c: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(C(A), dm, de)``: ``C(A) = det(Ã)·Ã⁻ᵀ`` rescaled to ``A``, entry
    ``(i, j)`` carrying ``2^(e + r_i + c_j − Σr − Σc)``, with
    ``det(Ã) = dm·2^de`` (``dm = sign(P)·m``)."""
    inv = f.inverse()
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
    """``(A⁻ᵀ, (sign, log|det A|) if value else None)``."""
    W = widen(A)
    with np.errstate(all="ignore"):
        rmax = _abs_maxima(W, 2)
        At, r, c = _equilibrate(W, rmax)
        f = lu_batched(At)
        pivots = f.pivots()
        ok = np.flatnonzero(np.isfinite(pivots).all(axis=1) & (pivots != 0).all(axis=1))
        G = np.full(W.shape, np.nan, dtype=W.dtype)
        if ok.size:
            # A⁻¹ = D_c Ã⁻¹ D_r, so (A⁻ᵀ)_ij = (Ã⁻ᵀ)_ij · 2^(r_i + c_j)
            sub = f if ok.size == len(pivots) else f.take(ok)
            inv = sub.inverse().transpose(0, 2, 1)
            one = np.ones(ok.size)
            G[ok] = _scale_entries(inv, one, np.zeros(ok.size, np.int64), r[ok], c[ok]).conj()
        G = narrow(G, A.dtype)
        if not value:
            return G, None
        m, e = mantissa_product(pivots)
        m = m * f.sign
        sign, logabs = slogdet_from_mantissa(m, e - r.sum(axis=1) - c.sum(axis=1))
        bad = ~np.isfinite(rmax).all(axis=1)
        sign[bad] = np.nan
        logabs[bad] = np.nan
    return G, (narrow(sign, A.dtype), narrow(logabs, np.empty(0, A.dtype).real.dtype))


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


