"""High-precision references (mpmath) and backward-stability tolerances.

Every reference is computed from the definition in 60-digit arithmetic, with
no code shared with any backend: cofactors from minors, ``p′`` as the trace of
the adjugate (so both are exact for singular matrices and at eigenvalues).
Inputs are binary floats, converted exactly.  Error bounds follow
NUMERICS §4; ``error_ratio`` returns error / allowed (pass when ≤ 1).
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
    "charpoly_error_ratio",
    "det_grad_error_ratio",
    "eps_of",
    "frobenius_error_ratio",
    "logdet_grad_error_ratio",
    "ref_charpoly",
    "ref_cofactor",
    "ref_frobenius_grad",
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
    eps = eps_of(np.result_type(got_p))
    p, dp = ref_charpoly(A, x)
    rng = np.random.default_rng(seed)
    with _mp.workdps(DPS):
        norm_a = singular_values(A)[0] if n else mpmath.mpf(0)
        spread_p = spread_dp = mpmath.mpf(0)
        for _ in range(perturbations):
            E = rng.standard_normal(A.shape)
            if np.iscomplexobj(A):
                E = E + 1j * rng.standard_normal(A.shape)
            E = E * (eps * float(norm_a) / np.linalg.norm(E, 2))
            pp, dpp = ref_charpoly(A, x, E)
            spread_p = max(spread_p, abs(pp - p))
            spread_dp = max(spread_dp, abs(dpp - dp))
        scores = []
        for got, ref, spread in ((got_p, p, spread_p), (got_dp, dp, spread_dp)):
            if not np.isfinite(got):
                if abs(ref) > np.finfo(np.result_type(got)).max:
                    scores.append(Score(0.0, 0.0))  # the true value overflows
                    continue
                return Score(float("inf"), float("inf"))
            err = abs(_to_mp(got) - ref)
            allowed = c * max(n, 1) * spread + c * eps * abs(ref)
            allowed += float(np.finfo(np.result_type(got)).tiny)
            scores.append(_score(err, allowed, abs(ref)))
        rels = [s.rel for s in scores if s.rel == s.rel]
        return Score(max(s.ratio for s in scores), max(rels) if rels else float("nan"))


def bilinear_error_ratio(got: Array, x: Array, y: Array, c: float = 1.0) -> Score:
    """One rounding per entry: ``|G_ij − x_i y_j| ≤ c·eps·|x_i y_j|`` (normwise)."""
    with _mp.workdps(DPS):
        ref = [[_to_mp(a) * _to_mp(b) for b in y] for a in x]
        err = _diff_norm(got, ref)
        norm = _fro([v for row in ref for v in row])
        c = 2 * c if np.iscomplexobj(got) else c  # complex products round twice
        return _score(err, c * eps_of(got.dtype) * norm, norm)
