"""The accuracy contract as plain functions: hostile and graded inputs
against exact references.

``matgrad check --fuzz`` (:mod:`matgrad._fuzz`), ``tests/test_adversarial.py``
and the contract suite (:data:`GRADED_CHECKS`) use these functions, so every
caller holds a backend to the same rules.  For ``det_grad`` and
``logdet_grad`` they are those of docs/numerics.md §1, no more and no less:

(a) **Never worse than the standard method, normwise.**  On a non-singular
    finite input, ``‖G − G*‖_F ≤ K·max(ε_std, n·eps)·‖G*‖_F`` with ``K =``
    :data:`NORMWISE_FACTOR`, ``G*`` the exact answer and ``ε_std`` the
    normwise relative error of the textbook LAPACK formula on the same
    input in the same precision (``det(A)·inv(A)ᵀ``; ``inv(A)ᵀ``, conjugated
    for complex; an overflow, NaN or ``LinAlgError`` there counts as an
    error of 1).  Entries whose exact value overflows (for complex: a part
    that overflows) must be ±inf (rule (c)) and are left out of
    ``‖G − G*‖_F``; ``‖G*‖_F`` is the exact answer's norm, all of it.  An
    entry's error within ``ULPS·n`` smallest subnormals (the rounding of
    the subnormal range) counts as none.  Entry by entry only (c) is
    promised: a small entry need not be accurate relative to itself
    (docs §1 item 4).
(b) **Power-of-two scaling.**  A row scaling ``D₁A`` with n ≠ 4 gives
    ``C(D₁A) = det(D₁)·D₁⁻¹·C(A)`` and ``(D₁A)⁻ᵀ = D₁⁻¹A⁻ᵀ`` bit for bit
    wherever nothing over- or underflows (:func:`row_scaling_verdict`); a
    column or two-sided scaling, and a row scaling of a 4×4, is held to
    (a) and (c) against the exact reference of the scaled matrix itself.
(c) **No zero, inf or NaN that the truth does not have.**  An entry is 0
    only where its exact value is 0, underflows in the result's format
    (below ``ULPS·n`` smallest subnormals, where (a) does not look
    either) or lies below the normwise rounding level of (a),
    ``K·max(ε_std, n·eps)·‖G*‖_F`` (the elimination can absorb it);
    ±inf (with the exact value's sign) only where its exact value
    overflows (a complex entry: a part that overflows and is not below the
    entry's own rounding level; the sign of a part below that level is not
    determined and not checked), NaN only where the input has a NaN or inf
    entry (not checked here) or, for ``logdet_grad``, the matrix is exactly
    singular as its deciding elimination sees it: then the slot is all NaN
    (accepted for a matrix that is exactly singular, or within ``K·n·eps``
    of singular after equilibration, where a backward-stable elimination
    can meet an exactly zero pivot).  An exactly zero entry may carry
    rounding noise within (a).
(d) **Exactly singular** ``det_grad`` inputs (where (a) has nothing to
    compare with) are held to the backward-stability bound of the
    equilibrated matrix (docs §1 item 3), and to (c)'s rules on NaN and
    ±inf.

``ε_std`` is estimated from eight equally valid runs of the textbook
formula: on the matrix, its transpose, and both after a fixed row and
column permutation (mapped back exactly), each also on the matrix with
every entry moved by one unit in the last place (a componentwise
perturbation no larger than the rounding of the input, so structural zeros
stay zero); it is the largest of their normwise errors within ``2^10``
times their median, and never less than that of the formula applied as it
stands.  One run can be lucky (an error ``K`` times a lucky one is not a
failure), and one ordering can meet a tiny pivot and be far off where the
others are not.

``charpoly_deriv`` (docs §4) is checked entry by entry: each of ``p(x)``
and ``p′(x)`` within ``max(T·e_tb, ULPS·n·ulp(t))`` of the exact value
``t`` (``T =`` :data:`TEXTBOOK_FACTOR`, ``e_tb`` the error of
``det(xI − A)`` and ``det(xI − A)·tr((xI − A)⁻¹)`` in the same precision,
from the same eight runs, ``ulp(t) = max(eps·|t|, smallest subnormal)``),
or within the backward-stability allowance ``8n·spread + 8·eps·|t|``,
``spread`` being how far the exact values move under perturbations of
``A`` by about one rounding error per entry (``eps·|a_ij|``, zeros kept,
so a graded matrix stays graded) and under dense perturbations of 2-norm
``eps·‖A‖_F`` (for a graded matrix: of the part of LAPACK's balanced
matrix that is reduced to Hessenberg form, mapped back by the balancing).  Hessenberg reduction
plus Hyman's recurrence is backward stable, LU of ``xI − A`` is too, and
near an eigenvalue one can be up to ~60 times more accurate than the other
(measured on random 3×3 to 16×16 matrices); neither is a failure.  Where
the textbook formula gives no finite answer only that allowance bounds the
error (nothing above :data:`EXACT_MAX_N`).  A 0 or ±inf stands where the
exact value underflows or overflows, or where that bound exceeds the exact
value or reaches past the largest finite one (the input does not determine
the value better than that: ``p′(3)`` of a complex64 ``[[−1+4i, 2i],
[1−2i, 1−4i]]·1e20`` is 6, with an uncertainty of 1e13 from the rounding of
the input alone).  A diagonal similarity ``DAD⁻¹`` or a scaling ``(2ᵏA,
2ᵏx)`` is held to the bound of ``(A, x)`` (``bound_from``).

Exact references are fraction-free integer elimination over the inputs'
dyadic values (:mod:`matgrad._reference`), computed on the equilibrated
matrix when it is formed without rounding (fewer bits) and mapped back by
exact powers of two; above :data:`EXACT_MAX_N` they are 60-digit mpmath
eliminations of the equilibrated matrix.  The reference is always of the
very input that was computed, never a rescaled float expectation.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import mpmath
import numpy as np
import scipy.linalg

import matgrad
from matgrad import _reference as ref

__all__ = [
    "EXACT_MAX_N",
    "GRADED_CHECKS",
    "NORMWISE_FACTOR",
    "TEXTBOOK_FACTOR",
    "ULPS",
    "Verdict",
    "Violation",
    "assert_contract",
    "charpoly_verdict",
    "check_graded_charpoly",
    "check_graded_det_grad",
    "check_graded_logdet_grad",
    "check_two_sided_scaling",
    "companion",
    "det_grad_verdict",
    "exact_det_grad",
    "exact_logdet_grad",
    "exact_poly",
    "graded_cases",
    "logdet_grad_verdict",
    "numerically_singular",
    "row_scaling_shift",
    "row_scaling_verdict",
    "textbook_normwise_error",
]

Array = np.ndarray

#: ``K`` of rule (a) (docs/numerics.md §1 item 1): the normwise error may be
#: this many times ``max(ε_std, n·eps)`` relative to ``‖G*‖_F``.
NORMWISE_FACTOR = 128
#: ``charpoly_deriv``: an entry's error may be this many times the textbook
#: formula's.
TEXTBOOK_FACTOR = 16
#: ``charpoly_deriv``'s floor, ``ULPS·n`` units in the last place of the exact
#: value; for every operation, ``ULPS·n`` smallest subnormals is the rounding
#: of the subnormal range (no error, and an exact value below it underflows).
ULPS = 4
#: Largest n for which references are exact rationals (above: 60-digit mpmath).
EXACT_MAX_N = 24
DPS = 60


# =============================================================== verdicts
@dataclass(frozen=True)
class Violation:
    """One broken rule.  ``error`` and ``bound`` are in the same ``units``:
    ``"relative to ‖G*‖_F"`` (rule (a), normwise), ``"relative"`` (to the
    exact entry), ``"absolute"`` (where the exact value is 0), or a ratio
    to another bound, named in ``units``."""

    rule: str
    where: str
    got: Any
    exact: Any
    error: float = float("nan")
    bound: float = float("nan")
    units: str = ""

    def __str__(self) -> str:
        got = _fmt(self.got)
        exact = mpmath.nstr(self.exact, 17) if isinstance(self.exact, (mpmath.mpf, mpmath.mpc)) \
            else str(self.exact)
        if self.rule == "(c) zero":
            return (f"(c) {self.where} is 0 but its exact value {exact} does not underflow "
                    "and lies above the error allowed there (for det_grad/logdet_grad "
                    "the normwise rounding level of (a))")
        if self.rule == "(c) inf":
            return (f"(c) {self.where} is {got} but its exact value {exact} does not "
                    "overflow, or overflows with the other sign")
        if self.rule == "(c) overflow":
            return (f"(c) {self.where} is {got} but its exact value {exact} overflows "
                    "(it must be ±inf with that sign)")
        if self.rule == "(c) nan":
            return f"(c) {self.where} is NaN for finite input (exact value {exact})"
        if self.rule == "(b) bit-exact":
            return (f"(b) {self.where}: got {got}, but the unscaled result times the "
                    f"scaling is {exact} (bit for bit promised)")
        if self.rule == "(a) normwise":
            return (f"(a) normwise error ‖G − G*‖_F = {self.error:.3g} > allowed "
                    f"{self.bound:.3g} (both {self.units}; ‖G*‖_F = {exact})")
        if self.rule == "(d) singular":
            return (f"(d) the normwise error of the equilibrated result is {self.error:.3g} > "
                    f"allowed {self.bound:.3g} ({self.units})")
        return (f"{self.rule}: {self.units} error of {self.where} = {self.error:.3g} > "
                f"allowed {self.bound:.3g} (both {self.units}; got {got}, exact {exact})")


@dataclass
class Verdict:
    """The outcome of one contract check: the violations found (none: the
    result is right) and notes on what was not checked and why."""

    op: str
    violations: list[Violation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def describe(self, limit: int = 4) -> str:
        shown = "; ".join(str(v) for v in self.violations[:limit])
        more = len(self.violations) - limit
        return shown + (f"; and {more} more" if more > 0 else "")


def assert_contract(verdict: Verdict, what: str = "") -> None:
    """``AssertionError`` listing the violations, if there are any."""
    assert verdict.ok, f"{what or verdict.op}: {verdict.describe()}"


def _fmt(v: Any) -> str:
    if isinstance(v, (complex, np.complexfloating)):
        c = complex(v)
        return f"({c.real!r}{'+' if not c.imag < 0 else '-'}{abs(c.imag)!r}j)"
    if isinstance(v, (float, np.floating, int)):
        return repr(float(v))
    return str(v)


@dataclass(frozen=True)
class _Limits:
    eps: float
    sub: float
    big: float

    @classmethod
    def of(cls, dtype: Any) -> _Limits:
        fi = np.finfo(np.dtype(dtype))
        return cls(float(fi.eps), float(fi.smallest_subnormal), float(fi.max))


# =============================================================== exact references
def _mp(v: Any) -> Any:
    c = complex(v)
    return mpmath.mpf(c.real) if c.imag == 0 and not np.iscomplexobj(v) else \
        mpmath.mpc(c.real, c.imag)


def _ldexp(x: Array, e: Any) -> Array:
    """``x·2ᵉ`` in ``x``'s dtype, complex-aware."""
    with np.errstate(all="ignore"):
        if np.iscomplexobj(x):
            out = np.empty(np.broadcast_shapes(x.shape, np.shape(e)), dtype=x.dtype)
            out.real = np.ldexp(x.real, e)
            out.imag = np.ldexp(x.imag, e)
            return out
        res: Array = np.ldexp(x, e).astype(x.dtype)
        return res


def _equilibrated(A: Array) -> tuple[Array, Array, list[int], list[int], bool]:
    """``(Ã, E, r, c, exact)``: ``Ã = A·2^E`` with ``E_ij = r_i + c_j`` from
    :func:`matgrad._reference.equilibration_exponents`, and whether forming
    ``Ã`` rounded nothing."""
    r, c = ref.equilibration_exponents(A)
    E = np.add.outer(np.asarray(r, dtype=np.int64), np.asarray(c, dtype=np.int64))
    At = _ldexp(A, E)
    back = _ldexp(At, -E)
    exact = bool(np.isfinite(At).all()) and back.tobytes() == A.tobytes()
    return At, E, r, c, exact


def _mp_det_inv(M: Array) -> tuple[Any, Any] | None:
    """det and inverse of a float matrix at ``DPS`` digits (None: singular
    to that precision)."""
    with mpmath.workdps(DPS):
        X = ref._mp_matrix(M)
        try:
            inv = mpmath.inverse(X)
        except ZeroDivisionError:
            return None
        return mpmath.det(X), inv


def exact_det_grad(A: Array) -> tuple[Any, list[list[Any]]]:
    """``(det A, cofactor(A))`` of a finite square ``A``, exactly (rounded
    once to 60 digits).

    Up to :data:`EXACT_MAX_N`: exact rationals, on ``Ã`` when it is formed
    without rounding (``C(A)_ij = C(Ã)_ij·2^(r_i + c_j − Σr − Σc)``).
    Above: 60-digit mpmath LU of ``Ã``; an all-zero row ``i`` is replaced
    by ones first (row ``i`` of the cofactors does not depend on it, every
    other row is 0)."""
    n = A.shape[0]
    At, _, r, c, exact = _equilibrated(A)
    total = sum(r) + sum(c)
    if n <= EXACT_MAX_N:
        if not exact:
            return ref.exact_det_cofactor(A)
        d, Ct = ref.exact_det_cofactor(At)
        with mpmath.workdps(DPS):
            return (d * mpmath.ldexp(1, -total),
                    [[Ct[i][j] * mpmath.ldexp(1, r[i] + c[j] - total) for j in range(n)]
                     for i in range(n)])
    zero_rows = [i for i in range(n) if not At[i].any()]
    M = At.copy()
    if zero_rows:
        M[zero_rows[0]] = 1
    found = _mp_det_inv(M)
    if found is None or len(zero_rows) > 1:
        with mpmath.workdps(DPS):
            z = mpmath.mpf(0)
            return z, [[z] * n for _ in range(n)]  # rank ≤ n − 2 (two zero rows)
    d, inv = found
    with mpmath.workdps(DPS):
        C = [[d * inv[j, i] * mpmath.ldexp(1, r[i] + c[j] - total) for j in range(n)]
             for i in range(n)]
        if zero_rows:
            k = zero_rows[0]
            C = [row if i == k else [mpmath.mpf(0)] * n for i, row in enumerate(C)]
            d = mpmath.mpf(0)
        return d * mpmath.ldexp(1, -total), C


def exact_logdet_grad(A: Array) -> list[list[Any]] | None:
    """``A⁻ᵀ`` (``A⁻ᴴ`` complex) exactly (60 digits), None for an exactly
    singular ``A``."""
    det, C = exact_det_grad(A)
    if det == 0:
        return None
    cplx = bool(np.iscomplexobj(A))
    with mpmath.workdps(DPS):
        return [[mpmath.conj(v / det) if cplx else v / det for v in row] for row in C]


def exact_poly(coeffs: Sequence[Fraction], x: Any) -> tuple[Any, Any]:
    """``q(x)`` and ``q′(x)`` for ``q = Σ coeffs[k]·xᵏ`` (exact rationals,
    then 60 digits); ``x`` a float or complex, taken exactly."""
    cx = complex(x)
    xr, xi = Fraction(cx.real), Fraction(cx.imag)
    val: tuple[Fraction, Fraction] = (Fraction(0), Fraction(0))
    der: tuple[Fraction, Fraction] = (Fraction(0), Fraction(0))
    for a in reversed(coeffs):  # Horner for q and q′ together
        der = (der[0] * xr - der[1] * xi + val[0], der[0] * xi + der[1] * xr + val[1])
        val = (val[0] * xr - val[1] * xi + a, val[0] * xi + val[1] * xr)
    with mpmath.workdps(DPS):
        def conv(v: tuple[Fraction, Fraction]) -> Any:
            re = mpmath.mpf(v[0].numerator) / v[0].denominator
            if xi == 0:
                return re
            return mpmath.mpc(re, mpmath.mpf(v[1].numerator) / v[1].denominator)
        return conv(val), conv(der)


def companion(coeffs: Sequence[float], dtype: Any = np.float64) -> Array:
    """The companion matrix of the monic ``xⁿ + Σ_{k<n} coeffs[k]·xᵏ``
    (ones on the subdiagonal, ``−coeffs`` in the last column): upper
    Hessenberg, ``det(xI − C)`` is that polynomial."""
    n = len(coeffs)
    C = np.zeros((n, n), dtype=dtype)
    if n > 1:
        C[np.arange(1, n), np.arange(n - 1)] = 1
    C[:, -1] = -np.asarray(coeffs, dtype=dtype)
    return C


# =============================================================== textbook errors
def _perm_sign(perm: Array) -> int:
    p = [int(v) for v in perm]
    sign, seen = 1, [False] * len(p)
    for s in range(len(p)):
        j, length = s, 0
        while not seen[j]:
            seen[j] = True
            j = p[j]
            length += 1
        if length and length % 2 == 0:
            sign = -sign
    return sign


def _variants(n: int) -> list[tuple[Array, Array, bool]]:
    """``(p, q, transpose)`` of the textbook runs: the matrix, its transpose,
    and both with a fixed row and column permutation."""
    rng = np.random.default_rng(12345 + n)
    ident = np.arange(n)
    p, q = rng.permutation(n), rng.permutation(n)
    return [(ident, ident, False), (ident, ident, True), (p, q, False), (p, q, True)]


def _ulp_moved(A: Array) -> Array:
    """``A`` with every entry (real and imaginary part) moved by one unit in
    the last place, up or down by a fixed pattern: a componentwise
    perturbation no larger than the rounding of the input itself (zeros
    stay zero)."""
    rng = np.random.default_rng(54321 + A.shape[0])

    def move(part: Array) -> Array:
        up = rng.integers(0, 2, part.shape).astype(bool)
        out: Array = np.where(part == 0, part, np.where(
            up, np.nextafter(part, np.inf), np.nextafter(part, -np.inf)))
        return out.astype(part.dtype)

    with np.errstate(all="ignore"):
        if np.iscomplexobj(A):
            out = np.empty_like(A)
            out.real, out.imag = move(A.real), move(A.imag)
            return out
        return move(A)


def _quiet(fn: Callable[[], Array]) -> Array | None:
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return fn()
        except np.linalg.LinAlgError:
            return None


def _textbook_matrix(op: str, B: Array) -> Array | None:
    """The textbook formula on ``B``, in ``B``'s precision."""
    if op == "det_grad":
        return _quiet(lambda: np.linalg.det(B) * np.linalg.inv(B).T)
    inv = _quiet(lambda: np.linalg.inv(B).T)
    return None if inv is None else (np.conj(inv) if np.iscomplexobj(B) else inv)


def _textbook_estimates(op: str, A: Array) -> list[Array | None]:
    """The textbook result for ``A`` from each of the eight runs (the four
    of :func:`_variants` on ``A`` and on :func:`_ulp_moved` ``A``; the first
    is the formula applied as it stands), mapped back exactly: permutations
    and transposes only move entries, and a cofactor picks up the
    permutations' signs.  None for a run that raised ``LinAlgError``."""
    n = A.shape[0]
    out: list[Array | None] = []
    for (p, q, tr), M in ((v, M) for M in (A, _ulp_moved(A)) for v in _variants(n)):
        B = np.ascontiguousarray(M[np.ix_(p, q)])
        R = _textbook_matrix(op, np.ascontiguousarray(B.T) if tr else B)
        if R is None:
            out.append(None)
            continue
        R = R.T if tr else R
        if op == "det_grad" and _perm_sign(p) * _perm_sign(q) < 0:
            R = -R  # (a complex product by −1 would turn inf parts into NaN)
        est = np.empty_like(R)
        est[np.ix_(p, q)] = R
        out.append(est)
    return out


def _typical(errors: list[Any]) -> Any:
    """The textbook error scale from the runs' errors (the first: the
    formula applied as it stands): the largest finite one within ``2^10``
    times their median, and never less than the first run's (inf if none is
    finite).  Not one run alone: it can be lucky.  Not an outlier: one
    ordering can meet a tiny pivot and be far off (or fail outright) where
    the others are not."""
    finite = sorted(e for e in errors if not mpmath.isinf(e))
    if not finite:
        return mpmath.inf
    cap = finite[(len(finite) - 1) // 2] * 1024
    spread = max((e for e in finite if e <= cap), default=finite[0])
    return spread if mpmath.isinf(errors[0]) else max(spread, errors[0])


def _abs_err(got: Any, t: Any) -> Any:
    g = complex(got)
    if not (np.isfinite(g.real) and np.isfinite(g.imag)):
        return mpmath.inf
    return abs(_mp(got) - t)


# =============================================================== rule checks
def _entry(got: Any, t: Any, allowed: Any, lim: _Limits, n: int, where: str,
           nan_ok: bool, c_allow: Any = None) -> tuple[Violation | None, bool]:
    """Rules (c) and entrywise (a) for one entry; ``allowed`` is absolute in
    the entry's own frame.  ``c_allow``: None holds rule (c) strictly (0 only
    below half the smallest subnormal, ±inf only beyond the largest finite
    value, give or take ``ULPS·n`` ulps); a finite allowance lets 0 and ±inf
    stand where the exact value is not determined by the input to better
    than that (``charpoly_deriv``'s backward-stability allowance).  Returns
    the violation (if any) and whether the entry takes part in the normwise
    comparison."""
    g = complex(got)
    parts = [(g.real, mpmath.re(t))] + ([(g.imag, mpmath.im(t))] if np.iscomplexobj(got) else [])
    loose = c_allow is not None and not mpmath.isinf(c_allow)
    slack = c_allow if loose else _floor(t, lim, n)
    if any(np.isnan(v) for v, _ in parts):
        return (None if nan_ok else Violation("(c) nan", where, got, t)), False
    if any(np.isinf(v) for v, _ in parts):
        # ±inf needs the entry to overflow; a part that overflows itself must
        # have its sign unless that part is within the slack (the rounding of
        # the entry, or the allowance): its sign is not determined then (the
        # other part of an overflowing complex entry may be ±inf too: complex
        # arithmetic cannot keep it)
        if not abs(t) + slack > lim.big:
            return Violation("(c) inf", where, got, t), False
        for v, tp in parts:
            if np.isinf(v) and abs(tp) > max(lim.big, slack) and (v > 0) != (tp > 0):
                return Violation("(c) inf", where, got, t), False
        return None, False
    if abs(t) > lim.big:  # finite where the truth overflows: an error like any other
        err = abs(_mp(got) - t)
        if err > allowed:
            return Violation("(a) entrywise", where, got, t, float(err / abs(t)),
                             float(allowed / abs(t)), "relative"), False
        return None, False
    if g == 0 and abs(t) >= mpmath.mpf(lim.sub) / 2 * (1 + ULPS * n * lim.eps) \
            and not (loose and abs(t) <= c_allow):
        return Violation("(c) zero", where, got, t), True
    err = abs(_mp(got) - t)
    if err > allowed:
        if t == 0:
            return Violation("(a) entrywise", where, got, t, float(err), float(allowed),
                             "absolute"), True
        return Violation("(a) entrywise", where, got, t, float(err / abs(t)),
                         float(allowed / abs(t)), "relative"), True
    return None, True


def _floor(t: Any, lim: _Limits, n: int) -> Any:
    """``ULPS·n·ulp(t)``, ``ulp(t) = max(eps·|t|, smallest subnormal)``."""
    return ULPS * n * max(lim.eps * abs(t), mpmath.mpf(lim.sub))


def _parts(got: Any, t: Any) -> list[tuple[float, Any]]:
    """(got part, exact part) pairs: the real parts, and the imaginary parts
    of a complex result."""
    g = complex(got)
    out = [(g.real, mpmath.re(t))]
    if np.iscomplexobj(got):
        out.append((g.imag, mpmath.im(t)))
    return out


def _overflows(t: Any, lim: _Limits) -> bool:
    """Whether the exact value ``t`` cannot be stored: a part beyond the
    largest finite value."""
    return bool(abs(mpmath.re(t)) > lim.big or abs(mpmath.im(t)) > lim.big)


def _underflow(lim: _Limits, n: int) -> Any:
    """``ULPS·n`` smallest subnormals: the rounding of the subnormal range.
    An error below it is none, and an exact value below it underflows."""
    return ULPS * n * mpmath.mpf(lim.sub)


def _entry_c(got: Any, t: Any, lim: _Limits, n: int, where: str,
             level: Any = None) -> tuple[Violation | None, bool]:
    """Rule (c) for one entry of ``det_grad``/``logdet_grad`` (docs §1 item
    2), to within ``tol = K·n·eps`` relative (rule (a)'s floor: the
    rounding of a value at the edge of the range): NaN never (finite
    input); ±inf only where the exact value overflows, for a complex entry
    where a part overflows that is not below the entry's own rounding level
    ``tol·|t|`` (a part that small has no sign a normwise-stable method
    determines, so neither its sign nor whether it is ±inf beside an
    infinite part is checked); an infinite part that is not that small
    with the sign of its exact part; a finite part only where its exact
    part does not overflow (or is that small); 0 only where the exact value
    is 0, underflows, or lies below ``level``, the normwise rounding level
    of rule (a) (absolute; None: no such allowance), and an entry below
    ``level`` need not be ±inf either where its exact value overflows the
    format (item 2 lets any entry below that level be 0).  Returns the violation
    (if any) and whether the entry takes part in the normwise comparison
    (finite, and an exact value that does not overflow)."""
    parts = _parts(got, t)
    tol = NORMWISE_FACTOR * n * mpmath.mpf(lim.eps)
    if any(np.isnan(v) for v, _ in parts):
        return Violation("(c) nan", where, got, t), False
    # the parts that carry the entry: not below its rounding level
    carried = [abs(tp) >= tol * abs(t) for _, tp in parts]
    overflows = any(c and abs(tp) * (1 + tol) > lim.big
                    for c, (_, tp) in zip(carried, parts, strict=True))
    for c, (v, tp) in zip(carried, parts, strict=True):
        if np.isinf(v):
            if not overflows or (c and (v > 0) != (tp > 0)):
                return Violation("(c) inf", where, got, t), False
        elif c and abs(tp) > lim.big * (1 + tol) and (level is None or abs(t) > level):
            # (an entry below the normwise level may be 0 or noise, item 2,
            # even where its exact value lies beyond the format's range)
            return Violation("(c) overflow", where, got, t), False
    if not all(np.isfinite(v) for v, _ in parts) or _overflows(t, lim):
        return None, False
    if complex(got) == 0 and abs(t) > _underflow(lim, n) and not (
            level is not None and abs(t) <= level):
        return Violation("(c) zero", where, got, t), True
    return None, True


def _normwise_error(R: Array | None, exact: list[list[Any]], lim: _Limits, norm: Any) -> Any:
    """The normwise relative error of a textbook result ``R`` (None: it
    raised): 1 where it failed (a NaN anywhere, or an inf where the exact
    value is finite), else ``‖R − G*‖_F/‖G*‖_F``, the error over the
    entries whose exact value does not overflow, errors in the subnormal
    range's rounding counting as none."""
    if R is None:
        return mpmath.mpf(1)
    n = R.shape[0]
    floor = _underflow(lim, n)
    err2 = mpmath.mpf(0)
    for i in range(n):
        for j in range(n):
            t, r = exact[i][j], complex(R[i, j])
            if np.isnan(r.real) or np.isnan(r.imag):
                return mpmath.mpf(1)
            if _overflows(t, lim):
                continue
            if not (np.isfinite(r.real) and np.isfinite(r.imag)):
                return mpmath.mpf(1)
            e = abs(_mp(R[i, j]) - t)
            if e > floor:
                err2 += e * e
    if norm == 0:
        return mpmath.mpf(0 if err2 == 0 else 1)
    return mpmath.sqrt(err2) / norm


def textbook_normwise_error(op: str, A: Array, exact: list[list[Any]],
                            dtype: Any = None) -> Any:
    """``ε_std`` of rule (a): the textbook formula's normwise relative error
    on ``A`` (``op``: ``det_grad`` or ``logdet_grad``; ``exact``: the exact
    answer), robustly estimated from the eight runs of
    :func:`_textbook_estimates` (see the module docstring)."""
    lim = _Limits.of(A.dtype if dtype is None else dtype)
    with mpmath.workdps(DPS):
        norm = _exact_norm(exact)
        return _typical([_normwise_error(R, exact, lim, norm)
                         for R in _textbook_estimates(op, A)])


def _exact_norm(exact: list[list[Any]]) -> Any:
    """``‖G*‖_F`` of the exact answer, every entry (those beyond the format's
    range included: the docs' bound is relative to the exact answer)."""
    return mpmath.sqrt(mpmath.fsum(abs(t) ** 2 for row in exact for t in row))


def _matrix_verdict(op: str, A: Array, got: Array, exact: list[list[Any]]) -> Verdict:
    """Rules (a) and (c) for a non-singular ``det_grad``/``logdet_grad``."""
    n = A.shape[0]
    lim = _Limits.of(got.dtype)
    verdict = Verdict(op)
    with mpmath.workdps(DPS):
        norm = _exact_norm(exact)
        eps_std = textbook_normwise_error(op, A, exact, got.dtype)
        rel = NORMWISE_FACTOR * max(eps_std, n * mpmath.mpf(lim.eps))
        floor = _underflow(lim, n)
        level = rel * norm  # docs §1 item 2: a 0 may stand for an entry below it
        err2 = mpmath.mpf(0)
        for i in range(n):
            for j in range(n):
                t = exact[i][j]
                v, normwise = _entry_c(got[i, j], t, lim, n, f"[{i}, {j}]", level)
                if v is not None:
                    verdict.violations.append(v)
                if normwise:
                    e = abs(_mp(got[i, j]) - t)
                    if e > floor:
                        err2 += e * e
        err, bound = mpmath.sqrt(err2), rel * norm
        verdict.notes.append(f"ε_std = {float(eps_std):.3g}")
        if err > bound:
            if norm != 0:
                verdict.violations.append(Violation(
                    "(a) normwise", "the result", "(see entries)", norm, float(err / norm),
                    float(rel), f"relative to ‖G*‖_F; {NORMWISE_FACTOR}·max(ε_std = "
                    f"{float(eps_std):.3g}, n·eps)"))
            else:
                verdict.violations.append(Violation(
                    "(a) normwise", "the result", "(see entries)", norm, float(err),
                    float(floor), "absolute; every exact entry is 0"))
    return verdict


def _finite(*arrays: Any) -> bool:
    return all(bool(np.isfinite(np.asarray(a)).all()) for a in arrays)


def det_grad_verdict(A: Array, got: Array, *, exact: tuple[Any, list[list[Any]]] | None = None,
                     sigmas: Sequence[Any] | None = None) -> Verdict:
    """The contract for ``got = det_grad(A)`` (one n×n matrix).

    ``exact``: ``(det A, cofactor(A))`` when known (closed forms), else
    computed (:func:`exact_det_grad`).  Non-singular ``A``: rules (a), (c).
    Exactly singular: rule (d), the backward-stability bound of the
    equilibrated matrix (``sigmas``: its singular values, if known), with
    no NaN and ±inf only where the exact value overflows.  Non-finite
    input: no check (NaN and inf are then the documented answer)."""
    A, got = np.asarray(A), np.asarray(got)
    if not _finite(A):
        return Verdict("det_grad", notes=["non-finite input: not checked"])
    det, C = exact if exact is not None else exact_det_grad(A)
    if det != 0:
        return _matrix_verdict("det_grad", A, got, C)
    verdict = Verdict("det_grad", notes=["exactly singular: (a) does not apply; checked "
                                         "against the equilibrated backward-stability bound"])
    lim = _Limits.of(got.dtype)
    n = A.shape[0]
    with mpmath.workdps(DPS):
        for i in range(n):
            for j in range(n):
                v, _ = _entry_c(got[i, j], C[i][j], lim, n, f"[{i}, {j}]")
                if v is not None and v.rule in ("(c) nan", "(c) inf"):
                    verdict.violations.append(v)
    if not verdict.violations:
        # an infinite entry that (c) accepts (its modulus overflows; a part
        # far below it may be ±inf too) counts as no error there
        score = ref.det_grad_equilibrated_error_ratio(_as_rounded(got, C), A, sigmas=sigmas,
                                                      ref_c=C)
        if not score.ratio <= 1:
            verdict.violations.append(Violation(
                "(d) singular", "the result", "(see entries)", "the exact cofactors",
                float(score.ratio), 1.0, "times the backward-stability bound "
                "c·n²·eps·σ₁⋯σₙ₋₂ of the equilibrated matrix"))
    return verdict


def _as_rounded(got: Array, exact: list[list[Any]]) -> Array:
    """``got`` with each non-finite entry replaced by its exact value rounded
    to ``got``'s dtype (parts beyond the range to ±inf)."""
    out = got.copy()
    for i, j in np.argwhere(~np.isfinite(got)).tolist():
        t = exact[i][j]
        with np.errstate(over="ignore"):
            out[i, j] = complex(float(mpmath.re(t)), float(mpmath.im(t))) \
                if np.iscomplexobj(got) else float(mpmath.re(t))
    return out


def numerically_singular(A: Array) -> bool:
    """Whether the equilibrated ``Ã`` (:func:`matgrad._reference.equilibration_exponents`)
    is within ``K·n·eps`` (``K =`` :data:`NORMWISE_FACTOR`, ``eps`` of
    ``A``'s precision) of a singular matrix, relative to its 2-norm: where a
    backward-stable elimination can meet an exactly zero pivot."""
    n = A.shape[0]
    if n == 0:
        return False
    At = _equilibrated(A)[0].astype(np.complex128 if np.iscomplexobj(A) else np.float64)
    s = np.linalg.svd(At, compute_uv=False)
    return bool(s[-1] <= NORMWISE_FACTOR * n * _Limits.of(A.dtype).eps * s[0])


def logdet_grad_verdict(A: Array, got: Array, *, exact: list[list[Any]] | None = None,
                        singular: bool = False) -> Verdict:
    """The contract for ``got = logdet_grad(A)``: rules (a) and (c).  A slot
    that is all NaN is accepted where ``A`` is exactly singular, or
    numerically singular (:func:`numerically_singular`: its deciding
    elimination may see an exactly zero pivot); a NaN in part of a slot
    never.  An exactly singular ``A`` whose result is not NaN is not
    checked further (``A⁻ᵀ`` does not exist; huge finite entries are what
    rounding leaves).  ``exact``: ``A⁻ᵀ`` when known; ``singular``: ``A``
    is known to be exactly singular."""
    A, got = np.asarray(A), np.asarray(got)
    if not _finite(A):
        return Verdict("logdet_grad", notes=["non-finite input: not checked"])
    nan = np.isnan(got)
    if nan.any() and not nan.all():
        return Verdict("logdet_grad", [Violation(
            "(c) nan", f"{np.argwhere(nan)[0].tolist()}", got[nan][0], "a slot is NaN "
            "everywhere (an exactly zero pivot) or nowhere")])
    G = None if singular else exact if exact is not None else exact_logdet_grad(A)
    if G is None:
        return Verdict("logdet_grad", notes=["exactly singular: (a) does not apply"])
    if nan.all() and got.size:
        if numerically_singular(A):
            return Verdict("logdet_grad", notes=["all NaN: numerically singular, so its "
                                                 "elimination may see a zero pivot"])
        return Verdict("logdet_grad", [Violation(
            "(c) nan", "every entry", got.flat[0], "a matrix that is not within "
            f"{NORMWISE_FACTOR}·n·eps of singular (equilibrated)")])
    return _matrix_verdict("logdet_grad", A, got, G)


def row_scaling_shift(op: str, r: Sequence[int] | Array) -> Array:
    """``s`` with ``op(D₁A)_ij = 2^(s_ij)·op(A)_ij`` for ``D₁ = diag(2^r)``:
    ``Σr − r_i`` for ``det_grad`` (``det(D₁)·D₁⁻¹``), ``−r_i`` for
    ``logdet_grad``."""
    rr = np.asarray(r, dtype=np.int64)
    col = rr.sum() - rr if op == "det_grad" else -rr
    return np.repeat(col[:, None], rr.shape[0], axis=1)


def _normal_or_zero(x: Array) -> Array:
    """Entries (of a real array) that are 0 or normal and finite."""
    a = np.abs(x)
    tiny = np.finfo(x.dtype).tiny
    return (a == 0) | ((a >= tiny) & np.isfinite(a))  # type: ignore[no-any-return]


def row_scaling_verdict(op: str, r: Sequence[int] | Array, base: Array, got: Array) -> Verdict:
    """Rule (b), bit for bit: ``got = op(D₁A)`` against ``base = op(A)``,
    ``D₁ = diag(2^r)`` (docs/numerics.md §1 item 5; promised for n ≠ 4).

    Compared wherever nothing over- or underflows: each part of ``base``,
    of ``2^s·base``, of ``got`` and of ``2^-s·got`` is 0 or normal and
    finite, and none of these scalings turns a nonzero part into 0 (a part
    whose true value underflows in one frame and not in the other is not
    compared).  The sign of a zero is not part of the identity."""
    base, got = np.asarray(base), np.asarray(got)
    s = row_scaling_shift(op, r)
    x, back = _ldexp(base, s), _ldexp(got, -s)
    verdict = Verdict(op)
    bad = np.zeros(got.shape, dtype=bool)
    for f in ((np.real, np.imag) if np.iscomplexobj(got) else (np.real,)):
        b, xs, g, bk = f(base), f(x), f(got), f(back)
        ok = (_normal_or_zero(b) & _normal_or_zero(xs) & _normal_or_zero(g)
              & _normal_or_zero(bk) & ((b == 0) == (xs == 0)) & ((g == 0) == (bk == 0)))
        bad |= ok & (xs != g)
    for i, j in np.argwhere(bad).tolist():
        verdict.violations.append(Violation("(b) bit-exact", f"[{i}, {j}]", got[i, j],
                                            _fmt(x[i, j])))
    return verdict


def _charpoly_textbook(B: Array, x: Any) -> tuple[Any, Any]:
    """``det(xI − B)`` and ``det(xI − B)·tr((xI − B)⁻¹)`` in ``B``'s precision."""
    dt = np.result_type(B.dtype, np.asarray(x).dtype)
    with np.errstate(all="ignore"):  # xI − B may overflow: the formula's own failure
        M = np.asarray(x, dtype=dt) * np.eye(B.shape[0], dtype=dt) - B.astype(dt)
    d = _quiet(lambda: np.asarray(np.linalg.det(M)))
    inv = _quiet(lambda: np.linalg.inv(M))
    dp = None if d is None or inv is None else _quiet(lambda: np.asarray(d * np.trace(inv)))
    return (None if d is None else d[()]), (None if dp is None else dp[()])


def charpoly_verdict(A: Array, x: Array, p: Array, dp: Array, *,
                     exact: Sequence[tuple[Any, Any]] | None = None,
                     bound_from: tuple[Array, Array, int, int] | None = None,
                     fallback: Sequence[tuple[Any, Any]] | None = None) -> Verdict:
    """The contract for ``(p, dp) = charpoly_deriv(A, x, return_value=True)``
    (one matrix, points ``x``): rules (a) and (c) for each ``p(x_k)`` and
    ``p′(x_k)``.

    ``exact``: ``(p, p′)`` per point when known (closed forms), else exact
    (:func:`matgrad._reference.exact_charpoly`).  ``bound_from = (A0, x0,
    kp, kdp)``: the textbook error is measured on ``(A0, x0)`` instead, whose
    ``p`` and ``p′`` are this input's times ``2^kp`` and ``2^kdp`` (a
    diagonal similarity ``DA0D⁻¹``: 0, 0; ``2ᵏA0`` at ``2ᵏx0``: −kn,
    −k(n−1)).  ``fallback``: absolute allowances ``(for p, for p′)`` per
    point used where the textbook formula has no finite answer (else, for
    n ≤ :data:`EXACT_MAX_N`, the spread of the exact values over three
    perturbations of size eps·‖A‖_F, times 8n)."""
    A, x = np.asarray(A), np.atleast_1d(np.asarray(x))
    p, dp = np.atleast_1d(np.asarray(p)), np.atleast_1d(np.asarray(dp))
    verdict = Verdict("charpoly_deriv")
    if not _finite(A, x):
        verdict.notes.append("non-finite input: not checked")
        return verdict
    n = A.shape[0]
    lim = _Limits.of(p.dtype)
    A0, x0, kp, kdp = bound_from if bound_from is not None else (A, x, 0, 0)
    runs = [np.ascontiguousarray((M[np.ix_(pp, pp)]).T if tr else M[np.ix_(pp, pp)])
            for M in (A0, _ulp_moved(A0)) for pp, _, tr in _variants(n)]
    with mpmath.workdps(DPS):
        for k in range(x.shape[0]):
            t_p, t_dp = exact[k] if exact is not None else ref.exact_charpoly(A, x[k])
            scale = (mpmath.ldexp(1, kp), mpmath.ldexp(1, kdp))
            errs: list[list[Any]] = [[], []]
            for B in runs:
                est = _charpoly_textbook(B, x0[k])
                for w in range(2):
                    errs[w].append(mpmath.inf if est[w] is None else
                                   _abs_err(est[w], (t_p, t_dp)[w] * scale[w]))
            tb = [_typical(errs[0]), _typical(errs[1])]
            fb: tuple[Any, Any] | None = fallback[k] if fallback is not None else None
            for w, (got, t, name) in enumerate(((p[k], t_p, "p"), (dp[k], t_dp, "p′"))):
                where = f"{name}(x[{k}])"
                allowed = max(TEXTBOOK_FACTOR * tb[w] / scale[w], _floor(t, lim, n))
                v, _ = _entry(got, t, allowed, lim, n, where, False, allowed)
                if v is not None or mpmath.isinf(allowed):
                    # the backward-stability allowance (module docstring)
                    if fb is None and n <= EXACT_MAX_N:
                        fb = _perturbation_allowance(A0, x0[k], lim.eps)
                    if fb is None:
                        if mpmath.isinf(allowed):
                            verdict.notes.append(f"{where}: no textbook answer and no "
                                                 "perturbation bound; only (c) checked")
                    else:
                        extra = mpmath.mpf(fb[w]) / scale[w]
                        allowed = max(extra, _floor(t, lim, n)) if mpmath.isinf(allowed) \
                            else max(allowed, extra)
                    v, _ = _entry(got, t, allowed, lim, n, where, False, allowed)
                if v is not None:
                    verdict.violations.append(v)
    return verdict


#: A matrix whose nonzero entries lie within this factor of each other is
#: not graded: a normwise backward error is a fair allowance for it.
UNGRADED_SPAN = 2.0**26


def _perturbation_allowance(A: Array, x: Any, eps: float) -> tuple[Any, Any]:
    """``8n·spread + 8·eps·|value|``: how far p and p′ move (exactly) under
    three componentwise perturbations ``E = eps·A∘ξ``, ``ξ`` standard
    normal (each entry moved by about its own rounding error, zeros kept,
    so a graded matrix keeps its grading), and under three dense ones of
    the matrix that is reduced: where ``A`` is not graded (nonzero entries
    within :data:`UNGRADED_SPAN`) ``‖E‖₂ = eps·‖A‖_F`` (the backward error
    of an orthogonal reduction), else ``E = T·E_B·T⁻¹``, ``E_B`` dense in
    the block of LAPACK's balanced ``B = T⁻¹AT`` that is reduced to
    Hessenberg form, ``‖E_B‖₂ = eps·‖that block‖_F`` (docs §4: a matrix is
    balanced, then reduced; a dense perturbation of ``A`` itself would
    swamp the small entries of a graded matrix and allow anything, and a
    block that is already Hessenberg, triangular parts included, is not
    reduced: only the componentwise perturbations stand there)."""
    n = A.shape[0]
    rng = np.random.default_rng(0)
    wide = np.complex128 if np.iscomplexobj(A) else np.float64
    mag = np.maximum(np.abs(np.real(A)), np.abs(np.imag(A))).astype(np.float64)
    nz = mag[mag != 0]
    ungraded = nz.size > 0 and float(nz.max()) <= UNGRADED_SPAN * float(nz.min())
    with mpmath.workdps(DPS):
        p, dp = ref.exact_charpoly(A, x)
        spread = [mpmath.mpf(0), mpmath.mpf(0)]
        for E in _perturbations(A.astype(wide), eps, rng, ungraded):
            pe, dpe = ref.exact_charpoly(A, x, E)
            spread = [max(spread[0], abs(pe - p)), max(spread[1], abs(dpe - dp))]
        return (8 * n * spread[0] + 8 * eps * abs(p), 8 * n * spread[1] + 8 * eps * abs(dp))


def _perturbations(A: Array, eps: float, rng: np.random.Generator,
                   ungraded: bool) -> list[Array]:
    """The perturbations of :func:`_perturbation_allowance` (finite entries
    only; a dense one that cannot be formed is left out)."""
    def normal() -> Array:
        xi: Array = rng.standard_normal(A.shape)
        return xi + 1j * rng.standard_normal(A.shape) if np.iscomplexobj(A) else xi

    def fro(M: Array) -> float:
        return float(ref._fro([ref._to_mp(v) for v in M.ravel()]))

    out: list[Array] = []
    with np.errstate(all="ignore"):
        for _ in range(3):
            out.append(A * normal() * eps)
        T: Array | None = None
        block = np.ones(A.shape, dtype=bool)
        if ungraded:
            norm = eps * fro(A)
        else:
            T, block, B = _balanced_block(A)
            norm = 0.0 if T is None else eps * fro(B[block])
        for _ in range(3 if norm and np.isfinite(norm) else 0):
            xi = np.where(block, normal(), 0)
            E = xi * (norm / np.linalg.norm(xi, 2))
            if T is not None:  # a permuted power-of-two diagonal: every product exact
                E = T @ E @ np.where(T != 0, 1 / np.where(T != 0, T, 1), 0).T
            out.append(E)
    return [np.where(np.isfinite(E), E, 0) for E in out]


def _balanced_block(A: Array) -> tuple[Array | None, Array, Array]:
    """LAPACK's balancing ``B = T⁻¹AT`` (``gebal``, permuting and scaling)
    and the mask of the block ``B[lo:hi+1, lo:hi+1]`` that a reduction to
    Hessenberg form works on, and ``B``; ``(None, …)`` where there is none
    (the block is already upper Hessenberg, or the balancing failed)."""
    none = np.zeros(A.shape, dtype=bool)
    try:
        B, T = scipy.linalg.matrix_balance(A)
        gebal = scipy.linalg.lapack.get_lapack_funcs("gebal", (A,))
        ba, lo, hi, _, info = gebal(A, permute=1, scale=1)
    except (ValueError, np.linalg.LinAlgError):
        return None, none, A
    if info != 0 or not (np.isfinite(B).all() and np.isfinite(T).all()) \
            or ba.tobytes() != B.tobytes():
        return None, none, A
    if not np.tril(B[lo:hi + 1, lo:hi + 1], -2).any():
        return None, none, A
    block = none.copy()
    block[lo:hi + 1, lo:hi + 1] = True
    return T, block, B


# =============================================================== graded cases
def graded_cases() -> list[tuple[str, str, Array, Any]]:
    """``(label, op, A, x)``: graded inputs that broke earlier versions
    (``x``: points for ``charpoly_deriv``, else None)."""
    n128 = [0.0] * 128
    n128[0] = -1.0
    out: list[tuple[str, str, Array, Any]] = [
        ("column-scaled bidiagonal", "det_grad",
         np.ldexp(np.eye(5) + np.eye(5, k=1), np.array([-16, 7, 153, 271, -280])), None),
        ("1e-20·I + strict upper ones, 5x5", "det_grad",
         1e-20 * np.eye(5) + np.triu(np.ones((5, 5)), 1), None),
        ("1e-40·I + strict upper ones, 10x10", "logdet_grad",
         1e-40 * np.eye(10) + np.triu(np.ones((10, 10)), 1), None),
        ("1e-160·I + strict upper ones, 4x4", "logdet_grad",
         1e-160 * np.eye(4) + np.triu(np.ones((4, 4)), 1), None),
        ("diag(1, 2, 1e150) + strict lower ones", "charpoly_deriv",
         np.diag([1.0, 2.0, 1e150]) + np.tril(np.ones((3, 3)), -1),
         np.array([0.0, 3.0, 1e150])),
        ("companion of x^128 − 1", "charpoly_deriv", companion(n128), np.array([1e-3])),
        ("shift matrix, n = 110", "charpoly_deriv", np.eye(110, k=-1), np.array([1e-3])),
    ]
    return out


def _exact_for(op: str, A: Array, x: Any) -> Any:
    """Closed-form references for the structured cases (the shift and
    companion matrices are too large for exact elimination)."""
    n = A.shape[0]
    if op != "charpoly_deriv":
        return None
    sub = np.diag(A, -1)
    rest = A.copy()
    rest[np.arange(1, n), np.arange(n - 1)] = 0
    if n > 1 and (sub == 1).all() and not rest[:, :-1].any():  # companion / shift
        coeffs = [Fraction(float(-v)) for v in A[:, -1]] + [Fraction(1)]
        return [exact_poly(coeffs, xk) for xk in x]
    return None


def _call(op: str, A: Array, x: Any, backend: Any) -> tuple[Array, ...]:
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        if op == "charpoly_deriv":
            p, dp = matgrad.charpoly_deriv(A, x, return_value=True, backend=backend)
            return np.asarray(p), np.asarray(dp)
        return (np.asarray(getattr(matgrad, op)(A, backend=backend)),)


def _verdict(op: str, A: Array, x: Any, out: tuple[Array, ...]) -> Verdict:
    if op == "det_grad":
        return det_grad_verdict(A, out[0])
    if op == "logdet_grad":
        return logdet_grad_verdict(A, out[0])
    return charpoly_verdict(A, x, out[0], out[1], exact=_exact_for(op, A, x))


def _check_cases(op: str, backend: Any) -> None:
    for label, o, A, x in graded_cases():
        if o == op:
            assert_contract(_verdict(op, A, x, _call(op, A, x, backend)), f"{op} of {label}")


def _d1rd2(rng: np.random.Generator, n: int, spread: int, cplx: bool) -> tuple[Array, Array]:
    """A well-conditioned ``R`` (normal entries plus ``2√n·I``) and
    ``D₁RD₂`` with power-of-two exponents within ±spread each."""
    R = rng.standard_normal((n, n)) + 2 * np.sqrt(n) * np.eye(n)
    if cplx:
        R = R + 1j * rng.standard_normal((n, n))
    e = rng.integers(-spread, spread + 1, (n, 1)) + rng.integers(-spread, spread + 1, (1, n))
    return R, _ldexp(R, e)


def check_graded_det_grad(backend: Any) -> None:
    """``det_grad`` of graded matrices (the listed cases, and ``D₁RD₂`` of
    well-conditioned ``R`` with exponents up to ±450 per side) meets the
    contract against exact references, entry by entry."""
    _check_cases("det_grad", backend)
    rng = np.random.default_rng(21)
    for n in (2, 3, 4, 5, 8):
        for spread in (30, 200, 450):
            _, S = _d1rd2(rng, n, spread, cplx=bool(n % 2))
            assert_contract(det_grad_verdict(S, _call("det_grad", S, None, backend)[0]),
                            f"det_grad of D₁RD₂ (n={n}, spread={spread})")


def check_graded_logdet_grad(backend: Any) -> None:
    """``logdet_grad`` of graded matrices (the listed cases and ``D₁RD₂``)
    meets the contract against exact references."""
    _check_cases("logdet_grad", backend)
    rng = np.random.default_rng(22)
    for n in (2, 3, 4, 5, 8):
        for spread in (30, 200, 450):
            _, S = _d1rd2(rng, n, spread, cplx=bool(n % 2))
            assert_contract(logdet_grad_verdict(S, _call("logdet_grad", S, None, backend)[0]),
                            f"logdet_grad of D₁RD₂ (n={n}, spread={spread})")


def check_graded_charpoly(backend: Any) -> None:
    """``charpoly_deriv`` of graded triangular, companion and shift matrices
    and of diagonal similarities ``DAD⁻¹`` (held to the bound of ``A``)."""
    _check_cases("charpoly_deriv", backend)
    rng = np.random.default_rng(23)
    for n in (2, 3, 5, 8):
        A = rng.standard_normal((n, n))
        x = np.array([0.5, -1.25, 3.0])
        for spread in (20, 100, 300):
            d = rng.integers(-spread, spread + 1, n)
            S = _ldexp(A, d[:, None] - d[None, :])
            if _ldexp(S, d[None, :] - d[:, None]).tobytes() != A.tobytes():
                continue  # an entry rounded: not an exact similarity
            p, dp = _call("charpoly_deriv", S, x, backend)
            assert_contract(charpoly_verdict(S, x, p, dp, bound_from=(A, x, 0, 0)),
                            f"charpoly of DAD⁻¹ (n={n}, spread={spread})")


def check_two_sided_scaling(backend: Any) -> None:
    """Rule (b): ``det_grad`` and ``logdet_grad`` of ``D₁AD₂`` for row-only,
    column-only and two-sided power-of-two scalings of dyadic matrices: a
    row scaling with n ≠ 4 bit for bit against the unscaled result
    (:func:`row_scaling_verdict`), and every scaled matrix against its own
    exact reference (rules (a) and (c))."""
    rng = np.random.default_rng(24)
    for n in (2, 3, 4, 6, 9):
        A = rng.integers(-8, 9, (n, n)) / 4 + 3 * np.eye(n)
        for rows, cols in ((True, False), (False, True), (True, True)):
            r = rng.integers(-300, 301, n) if rows else np.zeros(n, dtype=np.int64)
            c = rng.integers(-300, 301, n) if cols else np.zeros(n, dtype=np.int64)
            S = _ldexp(A, np.add.outer(r, c))
            for op in ("det_grad", "logdet_grad"):
                what = f"{op} of D₁AD₂ (n={n}, rows={rows}, cols={cols})"
                got = _call(op, S, None, backend)[0]
                v = det_grad_verdict(S, got) if op == "det_grad" else logdet_grad_verdict(S, got)
                assert_contract(v, what)
                if rows and not cols and n != 4:
                    base = _call(op, A, None, backend)[0]
                    assert_contract(row_scaling_verdict(op, r, base, got), what)


#: The graded-input checks (each takes a backend).
GRADED_CHECKS: list[Callable[[Any], None]] = [
    check_graded_det_grad,
    check_graded_logdet_grad,
    check_graded_charpoly,
    check_two_sided_scaling,
]
