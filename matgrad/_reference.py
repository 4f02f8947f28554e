"""High-precision references (mpmath) and backward-stability tolerances.

Every reference is computed from the definition in 60-digit arithmetic, with
no code shared with any backend: cofactors from minors, ``p′`` as the trace of
the adjugate (so both are exact for singular matrices and at eigenvalues).
Inputs are binary floats, converted exactly.  Error bounds follow
from backward stability; ``error_ratio`` returns error / allowed (pass when ≤ 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any, NamedTuple

import mpmath
import numpy as np

__all__ = [
    "DPS",
    "Score",
    "bilinear_error_ratio",
    "charpoly_derivs_error_ratio",
    "charpoly_error_ratio",
    "charpoly_exact_error_ratio",
    "charpoly_normal_bounds",
    "det_grad_equilibrated_error_ratio",
    "det_grad_error_ratio",
    "det_hessian_error_ratio",
    "det_hvp_error_ratio",
    "eps_of",
    "equilibration_exponents",
    "exact_charpoly",
    "exact_charpoly_derivs",
    "exact_det_cofactor",
    "exact_det_hessian",
    "exact_det_hvp",
    "exact_logdet_hvp",
    "frobenius_error_ratio",
    "frobenius_hvp_error_ratio",
    "logdet_grad_equilibrated_error_ratio",
    "logdet_grad_error_ratio",
    "logdet_hvp_error_ratio",
    "ref_charpoly",
    "ref_cofactor",
    "ref_frobenius_grad",
    "ref_frobenius_hvp",
    "ref_inverse_t",
]

DPS = 60


class Score(NamedTuple):
    """``ratio``: error / allowed error (pass when ≤ 1); ``rel``: relative error."""

    ratio: float
    rel: float


def _score(err: Any, allowed: Any, ref_norm: Any) -> Score:
    if err == 0:
        return Score(0.0, 0.0)
    if mpmath.isinf(err):
        return Score(float("inf"), float("inf"))
    ratio = float("inf") if allowed == 0 else float(err / allowed)
    # A relative error means nothing for a zero or underflowing reference.
    rel = float(err / ref_norm) if ref_norm > 2.0**-1022 else float("nan")
    return Score(ratio, rel)
_mp = mpmath.mp  # the global context (workdps)
Array = np.ndarray


def eps_of(dtype: Any) -> float:
    """Unit roundoff of a result dtype (float32/complex64 → float32's)."""
    return float(np.finfo(np.dtype(dtype)).eps)


def _mp_matrix(A: Array) -> mpmath.matrix:
    conv = mpmath.mpc if np.iscomplexobj(A) else mpmath.mpf
    M = mpmath.matrix(A.shape[0], A.shape[1])
    for i in range(A.shape[0]):
        for j in range(A.shape[1]):
            M[i, j] = conv(A[i, j].item())
    return M


def _to_mp(x: Any) -> Any:
    x = complex(x) if np.iscomplexobj(x) else float(x)
    return mpmath.mpc(x) if isinstance(x, complex) else mpmath.mpf(x)


# ---------------------------------------------------------------- exact core
# Binary floats are dyadic rationals: scaled by a common power of two they are
# integers, and fraction-free (Bareiss) elimination gives exact determinants
# with integer arithmetic only.  Complex entries are Gaussian integers (pairs).
# (mpmath's own det returns 0 for matrices it deems numerically singular,
# e.g. diag(1e200, 1e200, 1, 1, 1), so it is not used for references.)
Gauss = tuple[int, int]


def _gmul(a: Gauss, b: Gauss) -> Gauss:
    return (a[0] * b[0] - a[1] * b[1], a[0] * b[1] + a[1] * b[0])


def _gsub(a: Gauss, b: Gauss) -> Gauss:
    return (a[0] - b[0], a[1] - b[1])


def _gdiv_exact(a: Gauss, b: Gauss) -> Gauss:
    den = b[0] * b[0] + b[1] * b[1]
    re, im = a[0] * b[0] + a[1] * b[1], a[1] * b[0] - a[0] * b[1]
    assert re % den == 0 and im % den == 0, "Bareiss division must be exact"
    return (re // den, im // den)


def _bareiss_det(M: list[list[Gauss]]) -> Gauss:
    """Exact determinant of a Gaussian-integer matrix (fraction-free)."""
    M = [row[:] for row in M]
    n = len(M)
    if n == 0:
        return (1, 0)
    sign, prev = 1, (1, 0)
    for k in range(n - 1):
        if M[k][k] == (0, 0):
            swap = next((i for i in range(k + 1, n) if M[i][k] != (0, 0)), None)
            if swap is None:
                return (0, 0)
            M[k], M[swap] = M[swap], M[k]
            sign = -sign
        for i in range(k + 1, n):
            for j in range(k + 1, n):
                num = _gsub(_gmul(M[i][j], M[k][k]), _gmul(M[i][k], M[k][j]))
                M[i][j] = _gdiv_exact(num, prev)
        prev = M[k][k]
    d = M[n - 1][n - 1]
    return (sign * d[0], sign * d[1])


class _Exact:
    """A square matrix of floats as Gaussian integers times 2^-shift."""

    def __init__(self, A: Array, x: Any = None, E: Array | None = None) -> None:
        """``A``, or ``xI − (A + E)`` when ``x`` is given (all exact)."""
        n = A.shape[0]

        def frac(v: Any) -> tuple[Fraction, Fraction]:
            c = complex(v)
            return Fraction(c.real), Fraction(c.imag)

        fr = [[frac(A[i, j].item()) for j in range(n)] for i in range(n)]
        if E is not None:
            fr = [[(a + e[0], b + e[1]) for (a, b), e in
                   zip(row, (frac(E[i, j].item()) for j in range(n)), strict=False)]
                  for i, row in enumerate(fr)]
        if x is not None:
            xr, xi = frac(x)
            fr = [[((xr if i == j else 0) - a, (xi if i == j else 0) - b)
                   for j, (a, b) in enumerate(row)] for i, row in enumerate(fr)]
        dens = [f.denominator for row in fr for pair in row for f in pair]
        self.shift = max(d.bit_length() - 1 for d in dens) if dens else 0
        scale = 1 << self.shift
        self.M: list[list[Gauss]] = [
            [(int(a * scale), int(b * scale)) for a, b in row] for row in fr
        ]
        self.n = n

    def _value(self, g: Gauss, size: int) -> Any:
        scale = mpmath.ldexp(1, -self.shift * size)
        if g[1] == 0:
            return mpmath.mpf(g[0]) * scale
        return mpmath.mpc(g[0], g[1]) * scale

    def det(self) -> Any:
        return self._value(_bareiss_det(self.M), self.n)

    def minor_det(self, i: int, j: int) -> Any:
        sub = [r[:j] + r[j + 1 :] for k, r in enumerate(self.M) if k != i]
        return self._value(_bareiss_det(sub), self.n - 1)


def _fro(values: Sequence[Any]) -> Any:
    return mpmath.sqrt(mpmath.fsum(abs(v) ** 2 for v in values))


def _diff_norm(got: Array, ref: list[list[Any]]) -> Any:
    """‖got − ref‖_F in high precision (got's floats taken exactly)."""
    diffs = []
    big = mpmath.mpf(float(np.finfo(got.dtype).max))
    for i, row in enumerate(ref):
        for j, r in enumerate(row):
            g = got[i, j]
            if not np.isfinite(g):
                # ±inf is right only where the true entry overflows, with its sign
                re_ok = _overflow_matches(np.real(g), mpmath.re(r), big)
                im_ok = _overflow_matches(np.imag(g), mpmath.im(r), big)
                if not (re_ok and im_ok):
                    return mpmath.inf
                continue
            diffs.append(_to_mp(g) - r)
    return _fro(diffs)


def _overflow_matches(g: Any, r: Any, big: Any) -> bool:
    if np.isfinite(g):
        return bool(abs(_to_mp(g) - r) <= abs(r) * 1e-6 or abs(r) <= big)
    return bool(np.isinf(g)) and abs(r) > big and (g > 0) == (r > 0)


# ---------------------------------------------------------------- references
def ref_frobenius_grad(X: Array) -> list[list[Any]]:
    with _mp.workdps(DPS):
        M = _mp_matrix(X)
        norm = _fro([M[i, j] for i in range(M.rows) for j in range(M.cols)])
        if norm == 0:
            return [[mpmath.mpf(0)] * M.cols for _ in range(M.rows)]
        return [[M[i, j] / norm for j in range(M.cols)] for i in range(M.rows)]


def ref_cofactor(A: Array) -> list[list[Any]]:
    """``C_ij = (−1)^(i+j) det(A without row i, column j)``, exactly."""
    with _mp.workdps(DPS):
        E = _Exact(A)
        n = E.n
        return [[(-1) ** (i + j) * E.minor_det(i, j) for j in range(n)] for i in range(n)]


def ref_inverse_t(A: Array) -> list[list[Any]] | None:
    """``A⁻ᵀ`` (``A⁻ᴴ`` if complex), or None if ``A`` is exactly singular."""
    with _mp.workdps(DPS):
        E = _Exact(A)
        det = E.det()
        if det == 0:
            return None
        C = ref_cofactor(A)  # A⁻ᵀ = C / det
        cplx = np.iscomplexobj(A)
        return [[mpmath.conj(c / det) if cplx else c / det for c in row] for row in C]


def ref_charpoly(A: Array, x: Any, E: Array | None = None) -> tuple[Any, Any]:
    """``p(x) = det(xI − A)`` and ``p′(x) = tr adj(xI − A) = Σ_i det(M_ii)``,
    exactly (then rounded to 60 digits); of ``A + E`` if ``E`` is given."""
    with _mp.workdps(DPS):
        M = _Exact(A, x, E)
        return M.det(), mpmath.fsum(M.minor_det(i, i) for i in range(M.n))


def singular_values(A: Array) -> list[Any]:
    """Singular values, largest first, in high precision.

    60 digits resolve σ down to about 1e-50·σ₁; for more strongly graded
    matrices (a float64 matrix can have σₙ/σ₁ ≈ 1e-600) the computation is
    repeated at 700 digits.
    """
    if A.shape[0] == 0:
        return []
    svd = mpmath.svd_c if np.iscomplexobj(A) else mpmath.svd_r
    for dps in (DPS, 700):
        with _mp.workdps(dps):
            S = svd(_mp_matrix(A), compute_uv=False)
            s = sorted((abs(S[i]) for i in range(len(S))), reverse=True)
        if s[0] == 0 or s[-1] > s[0] * mpmath.mpf(10) ** (10 - DPS):
            break
    return s


# ---------------------------------------------------------------- tolerances
def frobenius_error_ratio(got: Array, X: Array, c: float = 4.0) -> Score:
    """‖G − X/‖X‖‖_F ≤ c·(1 + log2 N)·eps (‖G‖_F = 1): a few ulp per entry."""
    ref = ref_frobenius_grad(X)
    with _mp.workdps(DPS):
        err = _diff_norm(got, ref)
        allowed = c * (1 + np.log2(max(X.size, 2))) * eps_of(got.dtype)
        return _score(err, allowed, _fro([v for row in ref for v in row]))


def det_grad_error_ratio(got: Array, A: Array, c: float = 4.0) -> Score:
    """Backward stability, written so that it holds for singular ``A`` too:
    ``‖C − C_exact‖_F ≤ c·n²·eps·σ₁·σ₁⋯σₙ₋₂``.  For rank ≥ n−1 this is the
    relative bound ``c·n²·eps·σ₁/σₙ₋₁``; for rank ≤ n−2, ``‖C‖_F`` itself."""
    n = A.shape[0]
    ref = ref_cofactor(A)
    with _mp.workdps(DPS):
        err = _diff_norm(got, ref)
        ref_norm = _fro([v for row in ref for v in row])
        if n <= 1:
            return _score(err, 0, ref_norm)
        s = singular_values(A)
        scale = s[0] * mpmath.fprod(s[: n - 2])
        allowed = c * n * n * eps_of(got.dtype) * scale
        # Underflow floor: a result entry below the smallest normal is lost.
        allowed += n * float(np.finfo(got.dtype).tiny)
        return _score(err, allowed, ref_norm)


def logdet_grad_error_ratio(got: Array, A: Array, c: float = 4.0) -> Score:
    """Forward error of an inverse from a backward-stable LU:
    ``‖G − A⁻ᵀ‖_F ≤ c·n·eps·κ₂(A)·‖A⁻ᵀ‖_F``."""
    ref = ref_inverse_t(A)
    if ref is None:
        raise ValueError("reference A is exactly singular")
    n = A.shape[0]
    with _mp.workdps(DPS):
        err = _diff_norm(got, ref)
        s = singular_values(A)
        norm = _fro([v for row in ref for v in row])
        if s[-1] == 0:  # beyond even 700 digits: no normwise bound applies
            raise ValueError("condition number beyond the reference's precision")
        allowed = c * n * eps_of(got.dtype) * (s[0] / s[-1]) * norm
        return _score(err, allowed, norm)


def charpoly_error_ratio(
    got_p: Any,
    got_dp: Any,
    A: Array,
    x: Any,
    c: float = 8.0,
    perturbations: int = 3,
    seed: int = 0,
) -> Score:
    """Error of ``(p, p′)`` against the problem's own sensitivity.

    The spread of ``p`` and ``p′`` over a few dense random perturbations
    ``E`` with ``‖E‖₂ = eps·‖A‖₂`` (computed in mpmath) measures how much a
    backward-stable method may move them; the error must be within
    ``c·n`` times that spread (plus ``c·eps·|value|`` for rounding of the
    value itself).  Returns the worse of the two ratios.
    """
    n = A.shape[0]
    with _mp.workdps(DPS):
        norm_a = singular_values(A)[0] if n else mpmath.mpf(0)
    size = eps_of(np.result_type(got_p)) * float(norm_a)
    return _charpoly_ratio(ref_charpoly, size, got_p, got_dp, A, x, c, perturbations, seed)


def charpoly_exact_error_ratio(
    got_p: Any,
    got_dp: Any,
    A: Array,
    x: Any,
    c: float = 8.0,
    perturbations: int = 3,
    seed: int = 0,
) -> Score:
    """:func:`charpoly_error_ratio` with the O(n³) exact references
    (:func:`exact_charpoly`) and ``‖A‖_F ≥ ‖A‖₂`` as the perturbation size
    (no singular values: affordable for entries spanning the whole exponent
    range, and complex entries beyond DBL_MAX)."""
    with _mp.workdps(DPS):
        norm_a = _fro([_mp_matrix(A)[i, j] for i in range(A.shape[0])
                       for j in range(A.shape[1])]) if A.size else mpmath.mpf(0)
        size = float(eps_of(np.result_type(got_p)) * norm_a)  # finite beyond DBL_MAX
    return _charpoly_ratio(exact_charpoly, size, got_p, got_dp, A, x, c, perturbations, seed)


def _charpoly_ratio(
    reference: Any, size: float, got_p: Any, got_dp: Any, A: Array, x: Any, c: float,
    perturbations: int, seed: int,
) -> Score:
    """Shared body: ``size`` is ``‖E‖₂`` of each perturbation."""
    return _orders_ratio(lambda E: reference(A, x, E), size, [got_p, got_dp], A, c,
                         perturbations, seed)


def _orders_ratio(
    reference: Any, size: float, got: Sequence[Any], A: Array, c: float,
    perturbations: int, seed: int,
) -> Score:
    """Score of the values ``got`` against ``reference(E)`` (the exact values
    of ``A + E``; ``E = None``: of ``A``): each error within ``c·n`` times the
    spread of its reference over ``perturbations`` dense random ``E`` of
    2-norm ``size``, plus ``c·eps·|value|`` and the underflow threshold.
    The worst ratio over the values."""
    n = A.shape[0]
    eps = eps_of(np.result_type(got[0]))
    ref = list(reference(None))
    rng = np.random.default_rng(seed)
    with _mp.workdps(DPS):
        spread = [mpmath.mpf(0)] * len(got)
        for _ in range(perturbations):
            E = rng.standard_normal(A.shape)
            if np.iscomplexobj(A):
                E = E + 1j * rng.standard_normal(A.shape)
            E = E * (size / np.linalg.norm(E, 2))
            moved = reference(E)
            spread = [max(s, abs(pp - r)) for s, pp, r in zip(spread, moved, ref, strict=False)]
        scores = []
        for g, r, sp in zip(got, ref, spread, strict=False):
            if not np.isfinite(g):
                if abs(r) > np.finfo(np.result_type(g)).max:
                    scores.append(Score(0.0, 0.0))  # the true value overflows
                    continue
                return Score(float("inf"), float("inf"))
            err = abs(_to_mp(g) - r)
            allowed = c * max(n, 1) * sp + c * eps * abs(r)
            allowed += float(np.finfo(np.result_type(g)).tiny)
            scores.append(_score(err, allowed, abs(r)))
        rels = [s.rel for s in scores if s.rel == s.rel]
        return Score(max(s.ratio for s in scores), max(rels) if rels else float("nan"))


def charpoly_derivs_error_ratio(
    got: Sequence[Any], A: Array, x: Any, c: float = 8.0, perturbations: int = 3,
    seed: int = 0,
) -> Score:
    """:func:`charpoly_exact_error_ratio` for ``got = [p, p′, …, p⁽ᵏ⁾]`` at one
    point: every derivative within ``c·n`` times the spread of its exact
    value (:func:`exact_charpoly_derivs`) over dense perturbations of
    2-norm ``eps·‖A‖_F``, plus ``c·eps·|value|``; the criterion of ``p`` and
    ``p′`` applied to each order (backward stability, measured)."""
    k = len(got) - 1
    with _mp.workdps(DPS):
        norm_a = _fro([_mp_matrix(A)[i, j] for i in range(A.shape[0])
                       for j in range(A.shape[1])]) if A.size else mpmath.mpf(0)
        size = float(eps_of(np.result_type(got[0])) * norm_a)
    return _orders_ratio(lambda E: exact_charpoly_derivs(A, x, k, E), size, got, A, c,
                         perturbations, seed)


def bilinear_error_ratio(got: Array, x: Array, y: Array, c: float = 1.0) -> Score:
    """One rounding per entry: ``|G_ij − x_i y_j| ≤ c·eps·|x_i y_j|`` (normwise)."""
    with _mp.workdps(DPS):
        ref = [[_to_mp(a) * _to_mp(b) for b in y] for a in x]
        err = _diff_norm(got, ref)
        norm = _fro([v for row in ref for v in row])
        c = 2 * c if np.iscomplexobj(got) else c  # complex products round twice
        return _score(err, c * eps_of(got.dtype) * norm, norm)


# ------------------------------------------------- fast exact adjugate (O(n³))
# The minor-by-minor references above cost O(n⁵) big-integer operations, which
# is seconds for a 12×12 whose entries span the whole exponent range.  The
# helpers below give the same exact values from one fraction-free
# Gauss–Jordan elimination (plus null vectors and one minor when the matrix
# has rank n−1), so adversarial tests can afford many such matrices.
GaussQ = tuple[Fraction, Fraction]  # a Gaussian rational re + i·im


def _ff_gauss_jordan(
    M: list[list[Gauss]], ncols: int
) -> tuple[list[list[Gauss]], list[int], int, Gauss]:
    """Fraction-free (Bareiss) Gauss–Jordan on the first ``ncols`` columns.

    Columns without a pivot are skipped.  Returns the reduced rows, the pivot
    columns (row ``i`` holds the pivot of column ``pivots[i]``), the sign of
    the row permutation and the last pivot ``d``: every pivot entry of the
    result equals ``d``, the leading rank-sized minor of the permuted matrix.
    Real matrices run on plain integers (a Gaussian division would square
    the divisor).
    """
    if all(v[1] == 0 for row in M for v in row):
        R, piv, sign, d = _ff_gauss_jordan_int([[v[0] for v in row] for row in M], ncols)
        return [[(v, 0) for v in row] for row in R], piv, sign, (d, 0)
    M = [row[:] for row in M]
    nrows = len(M)
    width = len(M[0]) if nrows else 0
    prev: Gauss = (1, 0)
    sign = 1
    pivots: list[int] = []
    r = 0
    for k in range(ncols):
        if r == nrows:
            break
        p = next((i for i in range(r, nrows) if M[i][k] != (0, 0)), None)
        if p is None:
            continue
        if p != r:
            M[r], M[p] = M[p], M[r]
            sign = -sign
        pk, rowr = M[r][k], M[r]
        for i in range(nrows):
            if i == r:
                continue
            mik, rowi = M[i][k], M[i]
            M[i] = [_gdiv_exact(_gsub(_gmul(pk, rowi[j]), _gmul(mik, rowr[j])), prev)
                    for j in range(width)]
        prev = pk
        pivots.append(k)
        r += 1
    return M, pivots, sign, prev


def _ff_gauss_jordan_int(
    M: list[list[int]], ncols: int
) -> tuple[list[list[int]], list[int], int, int]:
    """:func:`_ff_gauss_jordan` for integer matrices."""
    M = [row[:] for row in M]
    nrows = len(M)
    width = len(M[0]) if nrows else 0
    prev, sign, r = 1, 1, 0
    pivots: list[int] = []
    for k in range(ncols):
        if r == nrows:
            break
        p = next((i for i in range(r, nrows) if M[i][k] != 0), None)
        if p is None:
            continue
        if p != r:
            M[r], M[p] = M[p], M[r]
            sign = -sign
        pk, rowr = M[r][k], M[r]
        for i in range(nrows):
            if i == r:
                continue
            mik, rowi = M[i][k], M[i]
            new = []
            for j in range(width):
                q, rem = divmod(pk * rowi[j] - mik * rowr[j], prev)
                assert rem == 0, "Bareiss division must be exact"
                new.append(q)
            M[i] = new
        prev = pk
        pivots.append(k)
        r += 1
    return M, pivots, sign, prev


def _gq(g: Gauss) -> GaussQ:
    return Fraction(g[0]), Fraction(g[1])


def _gq_mul(a: GaussQ, b: GaussQ) -> GaussQ:
    return a[0] * b[0] - a[1] * b[1], a[0] * b[1] + a[1] * b[0]


def _gq_div(a: GaussQ, b: GaussQ) -> GaussQ:
    den = b[0] * b[0] + b[1] * b[1]
    return (a[0] * b[0] + a[1] * b[1]) / den, (a[1] * b[0] - a[0] * b[1]) / den


def _null_vector(M: list[list[Gauss]], n: int) -> list[Gauss]:
    """An exact nonzero ``x`` with ``M x = 0`` for a rank ``n−1`` matrix."""
    R, piv, _, d = _ff_gauss_jordan(M, n)
    free = next(k for k in range(n) if k not in piv)
    x: list[Gauss] = [(0, 0)] * n
    x[free] = d
    for i, k in enumerate(piv):
        assert R[i][k] == d, "fraction-free pivots must all equal the last one"
        x[k] = (-R[i][free][0], -R[i][free][1])
    return x


def _exact_det_cofactor(E: _Exact) -> tuple[GaussQ, list[list[GaussQ]]]:
    """``det`` and cofactor matrix of the integer matrix ``E.M`` (unscaled)."""
    n, M = E.n, E.M
    if n == 0:
        return (Fraction(1), Fraction(0)), []
    if n == 1:
        return _gq(M[0][0]), [[(Fraction(1), Fraction(0))]]
    aug = [row + [(1, 0) if i == j else (0, 0) for j in range(n)] for i, row in enumerate(M)]
    R, piv, sign, d = _ff_gauss_jordan(aug, n)
    zero: GaussQ = (Fraction(0), Fraction(0))
    if len(piv) == n:
        # [A | I] → [d·I | d·A⁻¹] with d = det(PA) = sign·det(A): adj(A) = sign·right block
        det = _gq((sign * d[0], sign * d[1]))
        return det, [[_gq((sign * R[j][n + i][0], sign * R[j][n + i][1])) for j in range(n)]
                     for i in range(n)]
    if len(piv) < n - 1:
        return zero, [[zero] * n for _ in range(n)]
    # rank n−1: adj(A) = α·x·yᵀ with A x = 0, Aᵀ y = 0; α from one minor
    x = _null_vector(M, n)
    y = _null_vector([list(col) for col in zip(*M, strict=True)], n)
    i = next(k for k in range(n) if x[k] != (0, 0))
    j = next(k for k in range(n) if y[k] != (0, 0))
    minor = [r[:i] + r[i + 1 :] for k, r in enumerate(M) if k != j]
    m = _bareiss_det(minor)
    adj_ij = _gq(((-1) ** (i + j) * m[0], (-1) ** (i + j) * m[1]))
    alpha = _gq_div(adj_ij, _gq_mul(_gq(x[i]), _gq(y[j])))
    # C = adj(A)ᵀ: C_kl = adj_lk = α·x_l·y_k
    return zero, [[_gq_mul(alpha, _gq_mul(_gq(x[l]), _gq(y[k]))) for l in range(n)]
                  for k in range(n)]


def _gq_mp(v: GaussQ, shift: int, cplx: bool) -> Any:
    re = mpmath.ldexp(mpmath.mpf(v[0].numerator) / v[0].denominator, -shift)
    if not cplx and v[1] == 0:
        return re
    im = mpmath.ldexp(mpmath.mpf(v[1].numerator) / v[1].denominator, -shift)
    return mpmath.mpc(re, im)


def exact_det_cofactor(
    A: Array, x: Any = None, E: Array | None = None
) -> tuple[Any, list[list[Any]]]:
    """``det`` and cofactor matrix of ``A`` (of ``xI − (A + E)`` if ``x`` is
    given), computed exactly and rounded once to 60 digits.

    Same values as :func:`ref_cofactor` in O(n³) big-integer operations:
    fraction-free Gauss–Jordan on ``[A | I]``; rank ``n−1`` as ``α·y·xᵀ``
    from exact null vectors and one minor; rank ``≤ n−2`` gives zeros.
    """
    with _mp.workdps(DPS):
        Ex = _Exact(A, x, E)
        det, C = _exact_det_cofactor(Ex)
        cplx = bool(np.iscomplexobj(A)) or (x is not None and bool(np.iscomplexobj(x))) \
            or (E is not None and bool(np.iscomplexobj(E)))
        n = Ex.n
        return (_gq_mp(det, Ex.shift * n, cplx),
                [[_gq_mp(v, Ex.shift * (n - 1), cplx) for v in row] for row in C])


def exact_charpoly(A: Array, x: Any, E: Array | None = None) -> tuple[Any, Any]:
    """``p(x)`` and ``p′(x) = tr adj(xI − A)`` exactly (then 60 digits), like
    :func:`ref_charpoly` but in O(n³)."""
    p, C = exact_det_cofactor(A, x, E)
    with _mp.workdps(DPS):
        return p, mpmath.fsum(C[i][i] for i in range(len(C)))


# --------------------------------------------- power-of-two equilibration
def equilibration_exponents(A: Array) -> tuple[list[int], list[int]]:
    """Exponents ``r``, ``c`` with ``Ã = diag(2^r) A diag(2^c)`` equilibrated:
    every row maximum, then every column maximum, in [0.5, 1) (zero rows and
    columns get 0).  Integer arithmetic on the entries' binary exponents, so
    nothing over- or underflows; magnitudes are ``max(|re|, |im|)``, finite
    for complex entries beyond DBL_MAX too.  Requires finite ``A``."""
    n_rows, n_cols = A.shape
    mag = np.maximum(np.abs(np.real(A)), np.abs(np.imag(A))).astype(np.float64)
    e = np.frexp(mag)[1].astype(np.int64)
    nz = mag != 0
    r = [-int(e[i][nz[i]].max()) if nz[i].any() else 0 for i in range(n_rows)]
    er = e + np.asarray(r, dtype=np.int64)[:, None]
    c = [-int(er[:, j][nz[:, j]].max()) if nz[:, j].any() else 0 for j in range(n_cols)]
    return r, c


def _svals_mp(M: mpmath.matrix, cplx: bool) -> list[Any]:
    """Singular values at 60 digits, largest first; values the precision
    cannot resolve (below 1e-50·σ₁) are raised to that floor, which only
    ever loosens a bound built from them."""
    if M.rows == 0:
        return []
    svd = mpmath.svd_c if cplx else mpmath.svd_r
    S = svd(M, compute_uv=False)
    s = sorted((abs(S[i]) for i in range(len(S))), reverse=True)
    floor = s[0] * mpmath.mpf(10) ** (10 - DPS)
    return [max(v, floor) for v in s]


def _equilibrated_mp(A: Array, r: Sequence[int], c: Sequence[int]) -> mpmath.matrix:
    M = _mp_matrix(A)
    for i in range(M.rows):
        for j in range(M.cols):
            M[i, j] = M[i, j] * mpmath.ldexp(1, r[i] + c[j])  # exact: a power of two
    return M


def _scaled_error(
    got: Array, ref: list[list[Any]], scale: list[list[Any]]
) -> tuple[Any, Any]:
    """``‖S ⊙ (got − ref)‖_F`` and ``‖S ⊙ ref‖_F``.  Per entry, an error within
    ``n·tiny`` (the result's underflow range) counts as none; ±inf must be a
    true overflow with the right sign, and NaN is an infinite error."""
    n = max(got.shape[-1], 1)
    tiny = mpmath.mpf(float(np.finfo(got.dtype).tiny)) * n
    big = mpmath.mpf(float(np.finfo(got.dtype).max))
    diffs, refs = [], []
    for i, row in enumerate(ref):
        for j, rv in enumerate(row):
            g = got[i, j]
            refs.append(rv * scale[i][j])
            if not np.isfinite(g):
                if not (_overflow_matches(np.real(g), mpmath.re(rv), big)
                        and _overflow_matches(np.imag(g), mpmath.im(rv), big)):
                    return mpmath.inf, _fro(refs)
                continue
            d = abs(_to_mp(g) - rv)
            if d > tiny:
                diffs.append(d * scale[i][j])
    return _fro(diffs), _fro(refs)


def det_grad_equilibrated_error_ratio(
    got: Array, A: Array, c: float = 4.0, sigmas: Sequence[Any] | None = None,
    ref_c: list[list[Any]] | None = None,
) -> Score:
    """Backward-stability bound of :func:`det_grad_error_ratio`, applied to the
    power-of-two equilibrated ``Ã = D₁AD₂`` (:func:`equilibration_exponents`).

    Exact arithmetic gives ``C(Ã) = det(D₁)det(D₂)·D₁⁻¹·C(A)·D₂⁻¹``, so the
    error of ``got`` is mapped by the same exact relation and compared with
    ``c·n²·eps·σ̃₁·σ̃₁⋯σ̃ₙ₋₂`` from ``Ã``'s singular values: meaningful for
    a matrix with a 1e306 row, where the raw bound allows anything.
    ``sigmas`` (of ``Ã``) and ``ref_c`` (the exact cofactors of ``A``) may be
    passed when known in closed form."""
    n = A.shape[0]
    if n <= 1:
        return det_grad_error_ratio(got, A, c)
    r, cc = equilibration_exponents(A)
    total = sum(r) + sum(cc)
    with _mp.workdps(DPS):
        ref = ref_c if ref_c is not None else exact_det_cofactor(A)[1]
        scale = [[mpmath.ldexp(1, total - r[i] - cc[j]) for j in range(n)] for i in range(n)]
        err, ref_norm = _scaled_error(got, ref, scale)
        if sigmas is None:
            s = _svals_mp(_equilibrated_mp(A, r, cc), bool(np.iscomplexobj(A)))
        else:
            s = sorted((mpmath.mpf(v) for v in sigmas), reverse=True)
        allowed = c * n * n * eps_of(got.dtype) * s[0] * mpmath.fprod(s[: n - 2])
        return _score(err, allowed, ref_norm)


def logdet_grad_equilibrated_error_ratio(
    got: Array, A: Array, c: float = 4.0, sigmas: Sequence[Any] | None = None,
    ref_g: list[list[Any]] | None = None,
) -> Score | None:
    """:func:`logdet_grad_error_ratio` on the equilibrated ``Ã = D₁AD₂``:
    ``Ã⁻ᵀ = D₁⁻¹A⁻ᵀD₂⁻¹`` (also for ``A⁻ᴴ``: the ``D`` are real), error
    ``≤ c·n·eps·κ₂(Ã)·‖Ã⁻ᵀ‖_F``.  None when ``A`` is exactly singular."""
    n = A.shape[0]
    r, cc = equilibration_exponents(A)
    cplx = bool(np.iscomplexobj(A))
    with _mp.workdps(DPS):
        if ref_g is None:
            det, C = exact_det_cofactor(A)
            if det == 0:
                return None
            ref_g = [[mpmath.conj(v / det) if cplx else v / det for v in row] for row in C]
        scale = [[mpmath.ldexp(1, -r[i] - cc[j]) for j in range(n)] for i in range(n)]
        err, norm = _scaled_error(got, ref_g, scale)
        if sigmas is None:
            s = _svals_mp(_equilibrated_mp(A, r, cc), cplx)
        else:
            s = sorted((mpmath.mpf(v) for v in sigmas), reverse=True)
        allowed = c * n * eps_of(got.dtype) * (s[0] / s[-1]) * norm
        return _score(err, allowed, norm)


def charpoly_normal_bounds(
    eigenvalues: Sequence[Any], x: Any, delta: float
) -> tuple[Any, Any, Any, Any]:
    """Exact ``p(x)``, ``p′(x)`` of a normal matrix from its eigenvalues, and
    how far a backward error of 2-norm ``δ`` can move them.

    Every eigenvalue of ``A + E`` lies within ``(2n−1)·δ`` of its own
    eigenvalue of a normal ``A`` (Bauer–Fike, disks counted by components),
    so ``|p̃ − p| ≤ Π(|x−λⱼ| + δ′) − Π|x−λⱼ|`` and likewise term by term for
    ``p′ = Σᵢ Π_{j≠i}(x − λⱼ)``.  Returns ``(p, p′, allowed_p, allowed_dp)``.
    """
    with _mp.workdps(DPS):
        lam = [_to_mp(v) if not isinstance(v, (mpmath.mpf, mpmath.mpc)) else v
               for v in eigenvalues]
        xm = _to_mp(x) if not isinstance(x, (mpmath.mpf, mpmath.mpc)) else x
        n = len(lam)
        d = (2 * n - 1) * mpmath.mpf(delta)
        diffs = [xm - v for v in lam]
        p = mpmath.fprod(diffs)
        allowed_p = mpmath.fprod(abs(v) + d for v in diffs) - mpmath.fprod(abs(v) for v in diffs)
        dp = mpmath.fsum(mpmath.fprod(diffs[:i] + diffs[i + 1 :]) for i in range(n))
        allowed_dp = mpmath.fsum(
            mpmath.fprod(abs(v) + d for v in diffs[:i] + diffs[i + 1 :])
            - mpmath.fprod(abs(v) for v in diffs[:i] + diffs[i + 1 :])
            for i in range(n)
        )
        return p, dp, allowed_p, allowed_dp


# ------------------------------------------- derivatives of the char. polynomial
def _berkowitz(M: list[list[Gauss]]) -> list[Gauss]:
    """Coefficients of ``det(tI − M)``, highest degree first (``[1, …]``),
    for a Gaussian-integer matrix, exactly: the Samuelson–Berkowitz
    recurrence, division-free, O(n⁴) integer operations.  With ``M_r`` the
    leading r×r block, ``c`` its last column above the diagonal, ``R`` its last
    row left of it and ``a`` the corner, the coefficients of ``M_r`` are the
    lower-triangular Toeplitz matrix of ``[1, −a, −R c, −R M_{r−1} c, …]``
    times those of ``M_{r−1}``."""
    n = len(M)
    coef: list[Gauss] = [(1, 0)]
    for r in range(1, n + 1):
        col = [M[i][r - 1] for i in range(r - 1)]  # c
        row = M[r - 1][: r - 1]  # R
        first: list[Gauss] = [(1, 0), (-M[r - 1][r - 1][0], -M[r - 1][r - 1][1])]
        w = col
        for _ in range(r - 1):
            dot = (0, 0)
            for a, b in zip(row, w, strict=True):
                prod = _gmul(a, b)
                dot = (dot[0] + prod[0], dot[1] + prod[1])
            first.append((-dot[0], -dot[1]))
            nw = []
            for i in range(r - 1):  # M_{r−1} w
                acc = (0, 0)
                for j in range(r - 1):
                    prod = _gmul(M[i][j], w[j])
                    acc = (acc[0] + prod[0], acc[1] + prod[1])
                nw.append(acc)
            w = nw
        new: list[Gauss] = []
        for i in range(r + 1):  # (Toeplitz · coef)_i = Σ_j first[i − j]·coef[j]
            acc = (0, 0)
            for j in range(max(0, i - len(first) + 1), min(i, r - 1) + 1):
                prod = _gmul(first[i - j], coef[j])
                acc = (acc[0] + prod[0], acc[1] + prod[1])
            new.append(acc)
        coef = new
    return coef


def exact_charpoly_derivs(A: Array, x: Any, order: int, E: Array | None = None) -> list[Any]:
    """``[p(x), p′(x), …, p⁽ᵒʳᵈᵉʳ⁾(x)]`` of ``p(t) = det(tI − A)`` (of
    ``A + E`` if given), computed exactly and rounded once to 60 digits.

    ``p(x + t) = det(tI + M)`` with ``M = xI − A`` exact (binary floats are
    dyadic rationals), so ``p⁽ᵐ⁾(x) = m!·c_m`` where ``c_m`` is the
    coefficient of ``tᵐ`` in the characteristic polynomial of ``−M``
    (:func:`_berkowitz`, exact integer arithmetic): no code or formula
    shared with Hyman's recurrence, and exact at eigenvalues, for repeated
    eigenvalues and for singular ``M``."""
    Ex = _Exact(A, x, E)
    n = Ex.n
    coef = _berkowitz([[(-a, -b) for a, b in row] for row in Ex.M])  # of −M, t^n first
    cplx = bool(np.iscomplexobj(A)) or bool(np.iscomplexobj(x)) \
        or (E is not None and bool(np.iscomplexobj(E)))
    out = []
    with _mp.workdps(DPS):
        for m in range(order + 1):
            if m > n:
                out.append(mpmath.mpc(0) if cplx else mpmath.mpf(0))
                continue
            c = coef[n - m]
            f = 1
            for k in range(2, m + 1):
                f *= k
            out.append(_gq_mp((Fraction(c[0] * f), Fraction(c[1] * f)), Ex.shift * (n - m), cplx))
    return out


# ------------------------------------------------------- second derivatives
# ``∂²det/∂A_ij∂A_kl = det(A`` with row ``i`` → ``e_jᵀ`` and row ``k`` →
# ``e_lᵀ)`` (0 for ``i = k`` or ``j = l``), and ``D cofactor(A)[V]_ij =
# Σ_{k≠i} det(A`` with row ``i`` → ``e_jᵀ``, row ``k`` → row ``k`` of ``V)``
# (the cofactor's defining determinant is linear in each row): exact
# fraction-free determinants at every rank, no inverse, no code shared with
# the kernels.
class _ExactMany:
    """Several arrays as Gaussian-integer matrices ``M·2^-shift`` with one
    common ``shift`` (exact)."""

    def __init__(self, *arrays: Array) -> None:
        def pair(v: Any) -> tuple[Fraction, Fraction]:
            c = complex(v)
            return Fraction(c.real), Fraction(c.imag)

        fr = [[[pair(x.item()) for x in row] for row in a] for a in arrays]
        dens = [f.denominator for a in fr for row in a for p in row for f in p]
        self.shift = max((d.bit_length() - 1 for d in dens), default=0)
        s = 1 << self.shift
        self.mats: list[list[list[Gauss]]] = [
            [[(int(p[0] * s), int(p[1] * s)) for p in row] for row in a] for a in fr]
        self.one: Gauss = (s, 0)

    def value(self, g: Gauss, size: int) -> Any:
        scale = mpmath.ldexp(1, -self.shift * size)
        return mpmath.mpc(g[0], g[1]) * scale if g[1] else mpmath.mpf(g[0]) * scale


def _unit_row(E: _ExactMany, n: int, j: int) -> list[Gauss]:
    return [E.one if q == j else (0, 0) for q in range(n)]


def exact_det_hvp(A: Array, V: Array) -> list[list[Any]]:
    """``D cofactor(A)[V]`` (the holomorphic derivative ``d/dt C(A + tV)``),
    exactly at any rank, rounded once to 60 digits."""
    n = A.shape[0]
    E = _ExactMany(A, V)
    MA, MV = E.mats
    with _mp.workdps(DPS):
        out = []
        for i in range(n):
            row = []
            for j in range(n):
                total: Gauss = (0, 0)
                for k in range(n):
                    if k == i:
                        continue
                    N = [r[:] for r in MA]
                    N[i] = _unit_row(E, n, j)
                    N[k] = MV[k][:]
                    d = _bareiss_det(N)
                    total = (total[0] + d[0], total[1] + d[1])
                row.append(E.value(total, n))
            out.append(row)
        return out


def exact_det_hessian(A: Array) -> Array:
    """``Hess[i, j, k, l] = ∂²det/∂A_ij∂A_kl`` exactly, as an ``(n, n, n, n)``
    object array of 60-digit values."""
    n = A.shape[0]
    E = _ExactMany(A)
    (MA,) = E.mats
    out = np.empty((n, n, n, n), dtype=object)
    with _mp.workdps(DPS):
        for i, j, k, l in np.ndindex(n, n, n, n):
            if i == k or j == l:
                out[i, j, k, l] = mpmath.mpf(0)
                continue
            if k < i or (k == i and l < j):  # symmetric: (i, j) ↔ (k, l)
                out[i, j, k, l] = out[k, l, i, j]
                continue
            N = [r[:] for r in MA]
            N[i] = _unit_row(E, n, j)
            N[k] = _unit_row(E, n, l)
            out[i, j, k, l] = E.value(_bareiss_det(N), n)
    return out


def exact_logdet_hvp(A: Array, V: Array) -> list[list[Any]] | None:
    """``d/dt logdet_grad(A + tV)`` at 0, ``t`` real: ``−G·Vᵀ·G`` with
    ``G = A⁻ᵀ`` for real input, ``−G·Vᴴ·G`` with ``G = A⁻ᴴ`` for complex
    input; from the exact inverse (60 digits).  None if ``A`` is exactly
    singular."""
    det, C = exact_det_cofactor(A)
    if det == 0:
        return None
    cplx = bool(np.iscomplexobj(A)) or bool(np.iscomplexobj(V))
    n = A.shape[0]
    with _mp.workdps(DPS):
        G = mpmath.matrix([[mpmath.conj(v / det) if cplx else v / det for v in row]
                           for row in C]) if n else mpmath.matrix(0, 0)
        Vm = _mp_matrix(V)
        Vh = Vm.H if cplx else Vm.T
        H = -(G * Vh * G)
        return [[H[i, j] for j in range(n)] for i in range(n)]


def ref_frobenius_hvp(X: Array, V: Array) -> list[list[Any]] | None:
    """``(V − G·⟨G, V⟩)/‖X‖`` with ``G = X/‖X‖``, ``⟨G, V⟩ = Re Σ conj(g)v``
    at 60 digits; None for ``X = 0`` (no Hessian there)."""
    m, n = X.shape
    with _mp.workdps(DPS):
        Xm, Vm = _mp_matrix(X), _mp_matrix(V)
        ent = [(i, j) for i in range(m) for j in range(n)]
        norm = _fro([Xm[i, j] for i, j in ent])
        if norm == 0:
            return None
        inner = mpmath.fsum(mpmath.re(mpmath.conj(Xm[i, j]) * Vm[i, j]) for i, j in ent) / norm
        return [[(Vm[i, j] - Xm[i, j] / norm * inner) / norm for j in range(n)]
                for i in range(m)]


def _frame(A: Array) -> tuple[list[int], list[int], list[Any]]:
    """Equilibration exponents of ``A`` and the singular values of ``Ã``."""
    r, c = equilibration_exponents(A)
    s = _svals_mp(_equilibrated_mp(A, r, c), bool(np.iscomplexobj(A))) if A.shape[0] else []
    return r, c, s


def _hvp_allowed(n: int, eps: float, vnorm: Any, s: list[Any], c: float) -> Any:
    """``c·n²·eps·‖Ṽ‖·σ̃₁·Π_{i≤n−3}σ̃_i``: the backward-stable level of a
    second derivative of ``det`` in the equilibrated frame (``c·eps·‖Ṽ‖``
    for n ≤ 2, where ``H`` is linear in ``V`` alone)."""
    if n <= 2:
        return c * eps * vnorm
    return c * n * n * eps * vnorm * s[0] * mpmath.fprod(s[: n - 3])


def det_hvp_error_ratio(got: Array, A: Array, V: Array, c: float = 8.0,
                        exact: list[list[Any]] | None = None) -> Score:
    """Error of ``D cofactor(A)[V]`` in the power-of-two equilibrated frame
    ``Ã = D_r A D_c``, ``Ṽ = D_r V D_c`` (where ``H(Ã)[Ṽ] =
    det(D_r)det(D_c)·D_r⁻¹HD_c⁻¹`` exactly), against
    ``c·n²·eps·‖Ṽ‖_F·σ̃₁·Π_{i≤n−3}σ̃_i``: backward stability, written so that
    it holds at every rank (rank ≤ n − 3 allows nothing: ``H = 0``
    exactly), and meaningful for rows scaled by 2^±300."""
    n = A.shape[0]
    if exact is None:
        exact = exact_det_hvp(A, V)
    r, cc, s = _frame(A)
    total = sum(r) + sum(cc)
    with _mp.workdps(DPS):
        scale = [[mpmath.ldexp(1, total - r[i] - cc[j]) for j in range(n)] for i in range(n)]
        err, norm = _scaled_error(got, exact, scale)
        Vt = _equilibrated_mp(V, r, cc)
        vnorm = _fro([Vt[i, j] for i in range(n) for j in range(n)])
        return _score(err, _hvp_allowed(n, eps_of(got.dtype), vnorm, s, c), norm)


def det_hessian_error_ratio(got: Array, A: Array, c: float = 8.0) -> Score:
    """The worst of :func:`det_hvp_error_ratio` over the slices
    ``Hess[:, :, k, l] = D cofactor(A)[E_kl]``."""
    n = A.shape[0]
    exact = exact_det_hessian(A)
    r, cc, s = _frame(A)
    total = sum(r) + sum(cc)
    eps = eps_of(got.dtype)
    scores = []
    with _mp.workdps(DPS):
        scale = [[mpmath.ldexp(1, total - r[i] - cc[j]) for j in range(n)] for i in range(n)]
        for k, l in np.ndindex(n, n):
            err, norm = _scaled_error(got[:, :, k, l], exact[:, :, k, l].tolist(), scale)
            vnorm = mpmath.ldexp(1, r[k] + cc[l])
            scores.append(_score(err, _hvp_allowed(n, eps, vnorm, s, c), norm))
    rel = [x.rel for x in scores if x.rel == x.rel]
    return Score(max((x.ratio for x in scores), default=0.0),
                 max(rel) if rel else float("nan"))


def logdet_hvp_error_ratio(got: Array, A: Array, V: Array, c: float = 8.0) -> Score:
    """In the frame ``Ã = D_r A D_c``: ``H(Ã)[Ṽ] = D_r⁻¹HD_c⁻¹``; the error
    of ``G̃ = Ã⁻ᵀ`` (``≤ c·n·eps·κ̃·‖G̃‖``) enters twice, plus the product's
    rounding: allowed ``c·n·eps·κ₂(Ã)·‖G̃‖_F²·‖Ṽ‖_F``."""
    exact = exact_logdet_hvp(A, V)
    if exact is None:
        raise ValueError("reference A is exactly singular")
    n = A.shape[0]
    r, cc, s = _frame(A)
    det, C = exact_det_cofactor(A)
    with _mp.workdps(DPS):
        scale = [[mpmath.ldexp(1, -r[i] - cc[j]) for j in range(n)] for i in range(n)]
        err, norm = _scaled_error(got, exact, scale)
        # ‖Ã⁻¹‖_F from the exact A⁻ᵀ = C/det (Ã⁻ᵀ = D_r⁻¹A⁻ᵀD_c⁻¹): no
        # inverse at 60 digits, which a strongly graded Ã would defeat
        g2 = mpmath.fsum(abs(C[i][j] / det * scale[i][j]) ** 2
                         for i in range(n) for j in range(n))
        Vt = _equilibrated_mp(V, r, cc)
        v = _fro([Vt[i, j] for i in range(n) for j in range(n)])
        allowed = c * n * eps_of(got.dtype) * (s[0] / s[-1]) * g2 * v
        return _score(err, allowed, norm)


def frobenius_hvp_error_ratio(got: Array, X: Array, V: Array, c: float = 8.0) -> Score:
    """``‖H − H*‖_F ≤ c·(2 + log₂ N)·eps·‖V‖/‖X‖``, plus the result dtype's
    underflow floor (``N·tiny``); ±inf only where the truth overflows."""
    exact = ref_frobenius_hvp(X, V)
    if exact is None:
        raise ValueError("reference X is zero: the norm has no Hessian there")
    m, n = X.shape
    with _mp.workdps(DPS):
        Xm, Vm = _mp_matrix(X), _mp_matrix(V)
        xn = _fro([Xm[i, j] for i in range(m) for j in range(n)])
        vn = _fro([Vm[i, j] for i in range(m) for j in range(n)])
        err = _diff_norm(got, exact)
        allowed = (c * (2 + np.log2(max(X.size, 2))) * eps_of(got.dtype) * vn / xn
                   + X.size * float(np.finfo(got.dtype).tiny))
        return _score(err, allowed, _fro([v for row in exact for v in row]))
