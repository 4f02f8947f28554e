"""Adversarial property suite: hostile matrices against every backend.

The strategies and checks live in :mod:`matgrad._fuzz`, shared with
``matgrad check --fuzz`` (which keeps looking for as long as it is given);
the contract they check is docs/numerics.md §1 (for ``det_grad`` and
``logdet_grad``), as :mod:`matgrad.testing._graded` states it: (a) normwise,
``‖G − G*‖_F ≤ 32·max(ε_std, n·eps)·‖G*‖_F`` against the exact answer,
``ε_std`` the textbook LAPACK formula's normwise error on the same input;
(b) a row scaling ``D₁A`` (n ≠ 4) bit for bit, other power-of-two scalings
under (a) against their own exact reference; (c) 0, ±inf and NaN only where
the exact value underflows, overflows, or where documented; (d) exactly
singular ``det_grad`` within the equilibrated backward-stability bound.
``charpoly_deriv`` is held to its own rules (docs §4; each value within 16
times the textbook formula's error or the backward-stability allowance).
Here each (property, operation, backend) runs a fixed, reproducible number of
examples (``derandomize=True``, no example database).  Properties:

- ``reference``: exact references (n ≤ 12) under the contract;
- ``known``: closed-form answers for large structured matrices (n = 47…65);
- ``scaling``: ``2ᵏ·X`` bit-exact for ``frobenius_grad``/``bilinear_grad``;
  ``D₁AD₂`` (rows, columns, both) for ``det_grad``/``logdet_grad`` and
  ``2ᵏ(A, x)``, ``DAD⁻¹`` for ``charpoly_deriv``, against the exact reference
  of the scaled input itself, and row scalings (n ≠ 4) bit for bit;
- ``graded``: ``D₁RD₂`` of well-conditioned ``R`` and graded triangular,
  bidiagonal and tridiagonal matrices with exponents up to the range's
  limits; diagonal similarities, companion and shift matrices (n ≤ 500) for
  ``charpoly_deriv``;
- ``batch``: hostile slots never change their neighbours' bits (batch size,
  order, Dask chunking);
- ``agreement``: large graded matrices against the ``numpy`` backend, a
  disagreement settled by the exact reference.

Budget: measured 9 min 36 s for this module and tests/test_cli.py together
on a 2-core machine shared with other jobs (load average about 6; numpy,
numba and dask; warm Numba cache), with eight tests failing on the kernel
bugs they reproduce (before the last two reproducers were added).
``reference`` of ``charpoly_deriv`` costs most (exact determinants at each
point, and of perturbed matrices where the textbook bound is exceeded),
then ``reference`` of ``det_grad`` (up to ~0.5 s per exact 12×12 cofactor
matrix).  Failures are not shrunk here, to keep the budget when something fails; for a minimal
reproducer run ``matgrad check --fuzz 60 --backend NAME --op OP --property
PROPERTY``.

The graded-input checks (:data:`matgrad.testing.GRADED_CHECKS`) run in the
contract suite, on every backend (tests/test_contract.py).

No test here is marked ``xfail``: every wrong-answer class the suite found
and that is fixed is a regression test below; those still open are failing
reproducers in tests/open_violations.py (run explicitly, not collected).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings

import matgrad
from matgrad import _fuzz as fz
from matgrad import _reference as ref
from matgrad.testing import _graded as gr

# Examples per (property, operation) for each backend; charpoly references
# cost up to ~3 s each for wild 12×12 inputs (exact perturbed determinants),
# det_grad references ~0.5 s (an exact 12×12 cofactor matrix of wide
# dyadic entries).
EXAMPLES: dict[tuple[str, str], int] = {
    ("reference", "det_grad"): 50,
    ("reference", "logdet_grad"): 60,
    ("reference", "frobenius_grad"): 80,
    ("reference", "charpoly_deriv"): 8,
    ("reference", "bilinear_grad"): 80,
    ("known", "det_grad"): 30,
    ("known", "logdet_grad"): 20,
    ("known", "charpoly_deriv"): 20,
    ("scaling", "det_grad"): 50,
    ("scaling", "logdet_grad"): 50,
    ("scaling", "frobenius_grad"): 50,
    ("scaling", "charpoly_deriv"): 40,
    ("scaling", "bilinear_grad"): 50,
    ("graded", "det_grad"): 40,
    ("graded", "logdet_grad"): 40,
    ("graded", "charpoly_deriv"): 25,
    ("batch", "det_grad"): 50,
    ("batch", "logdet_grad"): 50,
    ("batch", "frobenius_grad"): 50,
    ("batch", "charpoly_deriv"): 40,
    ("batch", "bilinear_grad"): 40,
    ("agreement", "det_grad"): 16,
    ("agreement", "logdet_grad"): 16,
    ("agreement", "frobenius_grad"): 16,
    ("agreement", "charpoly_deriv"): 16,
}


def _settings(n: int) -> settings:
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck), print_blob=False,
                    phases=[Phase.explicit, Phase.generate], report_multiple_bugs=False)


def _backends() -> list[Any]:
    params = []
    for info in matgrad.list_backends():
        if "cupy" in info.array_modules:
            continue  # GPU backends: the contract suite covers them where a GPU exists
        marks = [] if info.available else [pytest.mark.skip(reason=f"{info.name}: {info.reason}")]
        params.append(pytest.param(info.name, marks=marks, id=info.name))
    return params


BACKENDS = _backends()
AVAILABLE = [b.name for b in matgrad.list_backends() if b.available]


#: Fewer examples where each costs more (Dask: a graph per call).
SCALE = {"dask": 0.5}


def _cases() -> list[Any]:
    out = []
    for (prop, op), count in EXAMPLES.items():
        for bp in BACKENDS:
            name = bp.values[0]
            marks = list(bp.marks)
            n = max(3, round(count * SCALE.get(name, 1.0)))
            out.append(pytest.param(prop, op, name, n, marks=marks, id=f"{prop}-{op}-{name}"))
    return out


@pytest.mark.parametrize(("prop", "op", "backend", "examples"), _cases())
def test_property(prop: str, op: str, backend: str, examples: int) -> None:
    if prop == "agreement" and backend == "numpy":
        pytest.skip("agreement is measured against the numpy backend")
    strategy = fz.scenarios([prop], [op])

    @_settings(examples)
    @given(scn=strategy)
    def run(scn: fz.Scenario) -> None:
        fz.run_scenario(scn, backend, AVAILABLE)

    run()


# ------------------------------------------------------------ the tools
def test_exact_cofactor_matches_minors() -> None:
    """The O(n³) exact adjugate equals the minor-by-minor definition, for
    every rank, real and complex, wide exponents included."""
    rng = np.random.default_rng(7)
    for trial in range(60):
        n = int(rng.integers(1, 6))
        k = int(rng.integers(0, n + 1))
        A: Any = (rng.integers(-3, 4, (n, k)) @ rng.integers(-3, 4, (k, n))).astype(float)
        if trial % 4 == 0:
            A = np.ldexp(rng.standard_normal((n, n)), rng.integers(-1000, 1000, (n, n)))
        if trial % 3 == 0:
            A = A + 1j * rng.integers(-2, 3, (n, n))
        slow = ref.ref_cofactor(A)
        _, fast = ref.exact_det_cofactor(A)
        with ref._mp.workdps(ref.DPS):
            for row_s, row_f in zip(slow, fast, strict=True):
                for s, f in zip(row_s, row_f, strict=True):
                    assert abs(s - f) <= abs(s) * ref.mpmath.mpf(10) ** -55


def test_equilibrated_bound_is_scale_free() -> None:
    """The equilibrated det_grad score of an exactly scaled result is the
    unscaled one's: the bound means the same for a 1e306 row."""
    A = np.array([[2.0, 1.0, 0.5], [1.0, 3.0, 1.0], [0.25, 1.0, 4.0]])
    C = np.asarray(matgrad.det_grad(A, backend="numpy"))
    e = np.array([1015, -3, 0])
    S = np.ldexp(A, e[:, None])
    CS = np.ldexp(C, (e.sum() - e)[:, None])
    s0 = ref.det_grad_equilibrated_error_ratio(C, A)
    s1 = ref.det_grad_equilibrated_error_ratio(CS, S)
    assert s0.ratio <= 1 and s1.ratio == pytest.approx(s0.ratio, rel=1e-12)
    # the raw bound of S allows anything; the equilibrated one does not
    wrong = CS.copy()
    wrong[1:] = 0
    assert ref.det_grad_error_ratio(wrong, S).ratio <= 1
    assert ref.det_grad_equilibrated_error_ratio(wrong, S).ratio > 1e10


@given(a=fz.hostile_matrices())
@_settings(60)
def test_array_literal_round_trips(a: fz.Hostile) -> None:
    text = fz.array_literal(a.A)
    back = eval(text, {"np": np})
    assert back.dtype == a.A.dtype and back.tobytes() == a.A.tobytes()


def test_array_literal_keeps_nan_payloads() -> None:
    x = np.array([0x7FF0000000000001, 0x3FF0000000000000], dtype=np.uint64).view(np.float64)
    back = eval(fz.array_literal(x), {"np": np})
    assert back.tobytes() == x.tobytes()


@given(v=fz.wild_reals(np.float64))
@_settings(200)
def test_wild_reals_span_the_range(v: float) -> None:
    assert np.isfinite(v)


def test_wild_reals_reach_both_ends() -> None:
    seen: list[float] = []

    @given(v=fz.wild_reals(np.float64))
    @_settings(400)
    def collect(v: float) -> None:
        seen.append(abs(v))

    collect()
    nonzero = [v for v in seen if v]
    assert min(nonzero) < 1e-300 and max(nonzero) > 1e300


def test_fuzz_catches_a_broken_backend() -> None:
    """A backend whose Frobenius gradient has the wrong sign from 3 columns on
    fails with a shrunk, runnable reproducer."""
    import matgrad_numpy

    class Broken(matgrad_numpy.NumpyBackend):
        name = "broken"

        def frobenius_grad(self, X: np.ndarray) -> np.ndarray:
            G = super().frobenius_grad(X)
            return -G if X.shape[-1] >= 3 else G

    result = fz.fuzz(60, [Broken()], checks=["reference"], ops=["frobenius_grad"], seed=1)
    assert result.failure is not None, result.counts
    f = result.failure
    assert (f.backend, f.op, f.check) == ("broken", "frobenius_grad", "reference")
    X = f.inputs["X"]
    assert X.shape[-1] == 3  # shrunk to the smallest width that shows it
    text = f.reproducer()
    assert "matgrad.frobenius_grad(X, backend='broken')" in text
    scope: dict[str, Any] = {"np": np}
    exec(text.split("\ngot = ")[0].replace("import matgrad", ""), scope)
    assert scope["X"].tobytes() == X.tobytes() and scope["X"].dtype == X.dtype


def _rounded(values: list[list[Any]], dtype: Any) -> np.ndarray:
    """Exact values rounded once to ``dtype`` (overflow to ±inf, underflow to
    0): the best answer a backend can give."""
    out = np.array([[complex(v) for v in row] for row in values])
    with np.errstate(over="ignore"):  # beyond the format's range: ±inf
        return out.astype(dtype) if np.dtype(dtype).kind == "c" else out.real.astype(dtype)


# The inputs of false alarms of the earlier gate: a column scaling whose
# expectation overflowed, and matgrad's exact answer 2^154 reported as a
# difference of 1.22e32 against a bound of 1.04e-14 in other units.
_FALSE_ALARMS = [
    np.array([[0.0, 128.0, 0.0, 0.0], [1.52587890625e-05, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0],
              [0.0, 0.0, 1.141798154164768e+46, 2.037035976334486e+90]]),
    np.ldexp(np.array([[2.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 4.0]]),
             np.array([[700, 0, -500]])),
    np.ldexp(np.eye(5) + np.eye(5, k=1), np.array([[-16, 7, 153, 271, -280]])),
    1e-40 * np.eye(10) + np.triu(np.ones((10, 10)), 1),
]


@pytest.mark.parametrize("A", _FALSE_ALARMS, ids=range(len(_FALSE_ALARMS)))
def test_contract_accepts_the_correctly_rounded_answer(A: np.ndarray) -> None:
    """The contract checks never report a right result: the exact answer,
    rounded once (entries beyond DBL_MAX as ±inf, below half the smallest
    subnormal as 0), passes for det_grad and logdet_grad."""
    det, C = gr.exact_det_grad(A)
    assert gr.det_grad_verdict(A, _rounded(C, A.dtype), exact=(det, C)).ok
    G = gr.exact_logdet_grad(A)
    if G is not None:
        assert gr.logdet_grad_verdict(A, _rounded(G, A.dtype), exact=G).ok


def test_contract_accepts_rounded_charpoly_values() -> None:
    A = np.diag([1.0, 2.0, 1e150]) + np.tril(np.ones((3, 3)), -1)
    x = np.array([0.0, 3.0, 1e150, 1e200])
    exact = [ref.exact_charpoly(A, xk) for xk in x]
    p = np.array([float(e[0]) for e in exact])
    dp = np.array([float(e[1]) for e in exact])  # p′(1e200) = 3e400: inf
    assert np.isinf(dp[-1]) and gr.charpoly_verdict(A, x, p, dp, exact=exact).ok


def test_contract_reports_wrong_answers_in_one_unit() -> None:
    """Each rule fires on what it names and nothing else, and every line
    states the error and the bound in the same (named) units."""
    A = 1e-20 * np.eye(5) + np.triu(np.ones((5, 5)), 1)
    det, C = gr.exact_det_grad(A)
    best = _rounded(C, np.float64)
    # C[4, 0] = 1 carries the norm: a 0 there breaks (a) too; the other
    # entries (≤ 1e-20) lie below the normwise level, where a 0 may stand
    cases = {("(a) normwise", "(c) zero"): (4, 0, 0.0), ("(c) inf",): (1, 1, np.inf),
             ("(c) nan",): (2, 2, np.nan)}
    for rules, (i, j, v) in cases.items():
        got = best.copy()
        got[i, j] = v
        verdict = gr.det_grad_verdict(A, got, exact=(det, C))
        assert tuple(sorted(w.rule for w in verdict.violations)) == rules, verdict.describe()
        assert f"[{i}, {j}]" in verdict.describe()
    got = best.copy()
    got[1, 0] = 0.0  # exact -1e-60: below the normwise level
    assert gr.det_grad_verdict(A, got, exact=(det, C)).ok
    bad = gr.det_grad_verdict(A, best * (1 + 1e-9), exact=(det, C))
    assert [v.rule for v in bad.violations] == ["(a) normwise"], bad.describe()
    line = str(bad.violations[0])
    assert "(both relative to ‖G*‖_F" in line and "> allowed" in line
    # an entry that overflows, and lies above the normwise level, must be
    # ±inf with its sign (C = diag(1, 1, 2^1200); the textbook formula is
    # right here: inf only where the exact value overflows)
    D = np.diag([2.0**600, 2.0**600, 2.0**-600])
    det, C = gr.exact_det_grad(D)
    for v, rule in ((1.7e308, "(c) overflow"), (-np.inf, "(c) inf")):
        got = _rounded(C, np.float64)
        got[2, 2] = v
        verdict = gr.det_grad_verdict(D, got, exact=(det, C))
        assert [w.rule for w in verdict.violations] == [rule], verdict.describe()


def test_contract_is_normwise_not_entrywise() -> None:
    """docs/numerics.md §1 items 1, 2 and 4: a small entry wrong relative to
    itself (but not 0, inf or NaN) and rounding noise in an exact zero pass
    while the normwise error stays within the allowance; a noise 1e6 times
    larger does not."""
    A = 1e-20 * np.eye(5) + np.triu(np.ones((5, 5)), 1)
    det, C = gr.exact_det_grad(A)
    best = _rounded(C, np.float64)
    assert best[0, 4] == 0 and abs(best[0, 0]) < 1e-70  # an exact zero; a tiny entry
    got = best.copy()
    got[0, 0] = -3 * best[0, 0]  # 400 % off, relative to itself
    got[0, 4] = 1e-16  # noise where the exact value is 0
    assert gr.det_grad_verdict(A, got, exact=(det, C)).ok
    got[0, 4] = 1e-10
    verdict = gr.det_grad_verdict(A, got, exact=(det, C))
    assert [v.rule for v in verdict.violations] == ["(a) normwise"], verdict.describe()


def test_contract_logdet_nan_only_for_singular_slots() -> None:
    """An all-NaN ``logdet_grad`` slot is right for a matrix its elimination
    may see as exactly singular (within 128·n·eps of singular), wrong for a
    well-conditioned one; a partly NaN slot is always wrong."""
    nan = np.full((3, 3), np.nan)
    well = np.array([[2.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 4.0]])
    near = np.array([[1.0, 1.0, 0.0], [1.0, 1.0 + 2.0**-52, 0.0], [0.0, 0.0, 1.0]])
    assert [v.rule for v in gr.logdet_grad_verdict(well, nan).violations] == ["(c) nan"]
    assert gr.logdet_grad_verdict(near, nan).ok
    part = np.linalg.inv(well).T
    part[0, 0] = np.nan
    assert [v.rule for v in gr.logdet_grad_verdict(well, part).violations] == ["(c) nan"]


def test_contract_accepts_a_zero_below_the_normwise_level() -> None:
    """docs/numerics.md §1 item 2: a 0 may stand for an entry below the
    normwise rounding level of item 1 (a cofactor of 2⁻⁵³ beside entries of
    1); a 0 for an entry above it is reported, in one unit."""
    A = np.diag([1.0, 1.0, 2.0**-53])  # C = diag(2^-53, 2^-53, 1)
    det, C = gr.exact_det_grad(A)
    got = np.diag([0.0, 0.0, 1.0])
    assert gr.det_grad_verdict(A, got, exact=(det, C)).ok
    B = np.diag([1.0, 1.0, 2.0**-20])
    det, C = gr.exact_det_grad(B)
    verdict = gr.det_grad_verdict(B, got, exact=(det, C))
    assert sorted({v.rule for v in verdict.violations}) == ["(a) normwise", "(c) zero"], \
        verdict.describe()


def test_contract_ignores_the_sign_of_a_sub_rounding_complex_part() -> None:
    """docs §1 item 2: the exact cofactor 1e400 + 1e370j overflows; its
    imaginary part lies below the entry's rounding level (eps·|value|), so
    no normwise-stable method determines its sign: ±inf or any finite value
    there passes, while the real part must be +inf."""
    A = np.diag(np.array([1e200, 1e200 + 1e170j, 1.0]))
    det, C = gr.exact_det_grad(A)
    best = _rounded(C, np.complex128)
    for imag in (np.inf, -np.inf, 0.0, -5.0):
        got = best.copy()
        got[2, 2] = complex(np.inf, imag)
        assert gr.det_grad_verdict(A, got, exact=(det, C)).ok, imag
    got = best.copy()
    got[2, 2] = complex(-np.inf, 0.0)
    verdict = gr.det_grad_verdict(A, got, exact=(det, C))
    assert [v.rule for v in verdict.violations] == ["(c) inf"], verdict.describe()


# logdet_grad of a 3×3 whose row 0 scaled by 2^400 leaves the closed forms'
# 2^±300 window: the two results differ in the last bits, both right.
_ACROSS_WINDOW = np.array([[0.44637457, -0.53695324, 0.5811181],
                           [0.3645724, 0.2941325, 0.02842224],
                           [0.54671299, -0.73645409, -0.16290995]])


def test_gate_skips_bit_exactness_across_a_path_boundary() -> None:
    """docs §1 item 5: bit-exactness of a row scaling is not promised where
    the scaling moves a 2×2/3×3 slot across the closed forms' 2^±300 window
    (or changes which entries overflow): the gate does not compare bits
    there, and still holds the scaled result to the contract."""
    A = _ACROSS_WINDOW
    r = np.array([400, 0, 0])
    S = np.ldexp(A, r[:, None])
    base = np.asarray(matgrad.logdet_grad(A, backend="numpy"))
    got = np.asarray(matgrad.logdet_grad(S, backend="numpy"))
    assert not fz._same_path(A, S, base, got)
    assert fz._same_path(A, np.ldexp(A, np.array([[40], [0], [0]])), base, base)
    gr.assert_contract(gr.logdet_grad_verdict(S, got))
    inf = base.copy()
    inf[0, 0] = np.inf  # another entry overflowing in one frame only
    assert not fz._same_path(A, A, base, inf)


def test_bilinear_check_ignores_a_sub_rounding_part_beside_an_overflow() -> None:
    """``(−2 + 2¹⁰⁴i)(2¹²⁷ − i)`` in complex64: the imaginary part 2²³¹
    overflows, the real part is −FLT_MAX, far below the entry's rounding
    level; ``−inf + inf·i`` is what complex64 arithmetic gives and what
    docs §1 allows (the entry overflows where the true product does; found
    by ``--fuzz 60 --seed 6 --backend dask``).  An infinite real part of an
    entry that does not overflow is still reported."""
    x = np.array([complex(-2.0, 2.0**104)], dtype=np.complex64)
    y = np.array([complex(2.0**127, -1.0)], dtype=np.complex64)
    got = np.array([[complex(-np.inf, np.inf)]], dtype=np.complex64)
    assert fz._bilinear_score(got, x, y).ratio <= 1
    assert fz._bilinear_score(np.array([[complex(np.inf, np.inf)]], dtype=np.complex64),
                              x, y).ratio <= 1  # its sign is not determined either
    small = np.array([complex(1.0, 0.0)], dtype=np.complex64)
    bad = np.array([[complex(-np.inf, 0.0)]], dtype=np.complex64)
    assert not fz._bilinear_score(bad, small, small).ratio <= 1


def test_row_scaling_verdict_is_bit_exact_where_nothing_underflows() -> None:
    """Rule (b): the unscaled result times ``det(D₁)·D₁⁻¹`` passes, one ulp
    off anywhere fails; an entry that underflows on one side is not
    compared."""
    C = np.array([[3.0, -1.5, 0.0], [2.0**-1000, 7.0, 1.0], [0.25, 0.0, -2.0]])
    r = np.array([-40, 0, 30])
    s = gr.row_scaling_shift("det_grad", r)
    assert s[:, 0].tolist() == [-10 + 40, -10, -10 - 30]  # Σr − r_i
    scaled = np.ldexp(C, s)  # C[1, 0]·2^-10 stays normal
    assert gr.row_scaling_verdict("det_grad", r, C, scaled).ok
    off = scaled.copy()
    off[2, 2] = np.nextafter(off[2, 2], 0)
    verdict = gr.row_scaling_verdict("det_grad", r, C, off)
    assert [(v.rule, v.where) for v in verdict.violations] == [("(b) bit-exact", "[2, 2]")]
    r2 = np.array([0, -30, 0])  # rows 0 and 2 of the result get 2^-30
    tiny = C.copy()
    tiny[0, 0] = 2.0**-1010  # 2^-1040 after scaling: subnormal, not compared
    got = np.ldexp(tiny, gr.row_scaling_shift("det_grad", r2))
    got[0, 0] = 0.0
    assert gr.row_scaling_verdict("det_grad", r2, tiny, got).ok


def test_fuzz_is_reproducible_from_its_seed() -> None:
    """The same seed runs the same examples in the same order (the digest
    covers every input), whatever the time left; another seed does not."""
    kw: dict[str, Any] = dict(checks=["reference", "scaling", "batch"],
                              ops=["frobenius_grad", "bilinear_grad"], max_rounds=2)
    a = fz.fuzz(600, ["numpy"], seed=11, **kw)
    b = fz.fuzz(600, ["numpy"], seed=11, **kw)
    c = fz.fuzz(600, ["numpy"], seed=12, **kw)
    assert a.ok and b.ok and c.ok
    assert a.rounds == b.rounds == 2 and a.counts == b.counts and a.digest == b.digest
    assert c.digest != a.digest


def test_fuzz_refuses_a_bad_duration() -> None:
    for seconds in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="seconds"):
            fz.fuzz(seconds, ["numpy"])


def test_fuzz_passes_a_correct_operation() -> None:
    result = fz.fuzz(3, ["numpy"], ops=["frobenius_grad"], seed=2)
    assert result.ok, "\n".join(fz.iter_failures(result))
    assert sum(result.counts["numpy"].values()) > 0


# ------------------------------------------------------------ regressions
# One deterministic test per bug found by the properties above (minimal
# reproducers), so a fix is visible by name.
@pytest.mark.parametrize("backend", BACKENDS)
def test_huge_row_keeps_other_cofactors(backend: str) -> None:
    A = np.array([[2.0, 1.0, 0.0, 1.0], [1.0, 3.0, 1.0, 0.0], [1e306, 2e306, 3e306, 1e306],
                  [0.0, 1.0, 1.0, 4.0]])
    C = np.asarray(matgrad.det_grad(A, backend=backend))
    assert ref.det_grad_equilibrated_error_ratio(C, A).ratio <= 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_subnormal_identity_cofactor_underflows_to_zero(backend: str) -> None:
    C = np.asarray(matgrad.det_grad(np.eye(4) * 1e-310, backend=backend))
    assert np.array_equal(C, np.zeros((4, 4)))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", ["frobenius_grad", "det_grad", "logdet_grad"])
def test_complex_beyond_dbl_max(backend: str, op: str) -> None:
    big = 1.5e308
    A = np.array([[big + big * 1j, 1.0], [2.0, 3.0 - 1j]])
    G = np.asarray(getattr(matgrad, op)(A, backend=backend))
    assert not np.isnan(G).any()
    if op == "frobenius_grad":
        assert ref.frobenius_error_ratio(G, A).ratio <= 1
    elif op == "det_grad":
        assert ref.det_grad_equilibrated_error_ratio(G, A).ratio <= 1
    else:
        score = ref.logdet_grad_equilibrated_error_ratio(G, A)
        assert score is not None and score.ratio <= 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_charpoly_of_ones_64(backend: str) -> None:
    n = 64
    x = np.array([0.5, 2.0, 64.0])
    p, dp = matgrad.charpoly_deriv(np.ones((n, n)), x, return_value=True, backend=backend)
    exact_p = x ** (n - 1) * (x - n)
    exact_dp = (n - 1) * x ** (n - 2) * (x - n) + x ** (n - 1)
    assert np.isfinite(p).all() and np.isfinite(dp).all()
    # backward error ≤ c·n·eps·‖A‖ moves the eigenvalues by that much (A normal)
    for k in range(len(x)):
        lam = [n] + [0] * (n - 1)
        _, _, ap, adp = ref.charpoly_normal_bounds(lam, x[k], 8 * n * 2.2e-16 * n)
        assert abs(p[k] - exact_p[k]) <= float(ap) + 1e-12 * abs(exact_p[k])
        assert abs(dp[k] - exact_dp[k]) <= float(adp) + 1e-12 * abs(exact_dp[k])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", ["det_grad", "logdet_grad"])
def test_slot_independent_of_neighbours(backend: str, op: str) -> None:
    rng = np.random.default_rng(3)
    clean = rng.standard_normal((6, 6)) + 4 * np.eye(6)
    hostile = clean.copy()
    hostile[2] *= 1e300
    f = getattr(matgrad, op)
    alone = np.asarray(f(clean[None], backend=backend))[0]
    for batch, i in ((np.stack([clean, hostile]), 0), (np.stack([hostile, clean]), 1)):
        assert fz.same_bits(np.asarray(f(batch, backend=backend))[i], alone)


@pytest.mark.parametrize("backend", BACKENDS)
def test_frobenius_keeps_sign_of_zero(backend: str) -> None:
    G = np.asarray(matgrad.frobenius_grad(np.array([[-0.0, 0.0], [-0.0, 0.0]]),
                                          backend=backend))
    assert np.array_equal(np.signbit(G), [[True, False], [True, False]])


@pytest.mark.parametrize("backend", BACKENDS)
def test_signalling_nan_1x1_charpoly_is_quiet(backend: str) -> None:
    A = np.array([0x7FF0000000000001], dtype=np.uint64).view(np.float64).reshape(1, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", matgrad.CompileWarning)  # a one-time compile notice
        p, dp = matgrad.charpoly_deriv(A, 0.5, return_value=True, backend=backend)
    assert np.isnan(p) and dp == 1


# ---- found by this suite (not in the list of known bugs when it was written)
@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_charpoly_true_overflow_is_quiet(backend: str) -> None:
    A = np.full((65, 65), -4.254940735159905e37, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", matgrad.CompileWarning)  # a one-time compile notice
        p, dp = matgrad.charpoly_deriv(A, np.array([-1.0, -1.75], dtype=np.float32),
                                       return_value=True, backend=backend)
    # p = x^64 (x − 65a) overflows float32; with 64 zero eigenvalues a backward error of
    # eps·‖A‖ moves p by far more than that, so only the dtype and the silence are checked
    assert p.dtype == dp.dtype == np.float32


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", ["det_grad", "logdet_grad", "charpoly_deriv"])
def test_float32_signalling_nan_is_quiet(backend: str, op: str) -> None:
    A = np.eye(3, dtype=np.float32)
    A.view(np.uint32)[0, 1] = 0x7F800001  # a signalling NaN
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", matgrad.CompileWarning)  # a one-time compile notice
        args = (A, np.float32(0.5)) if op == "charpoly_deriv" else (A,)
        out = np.asarray(getattr(matgrad, op)(*args, backend=backend))
    if op != "charpoly_deriv":
        assert not np.isfinite(out).all()
    # p of this triangular matrix does not depend on the NaN above the
    # diagonal, so a finite p is as right as NaN; only silence is required


@pytest.mark.parametrize("backend", BACKENDS)
def test_bilinear_overflow_is_quiet(backend: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", matgrad.CompileWarning)  # a one-time compile notice
        G = np.asarray(matgrad.bilinear_grad(np.array([1e200]), np.array([-1e200]),
                                             backend=backend))
    assert G[0, 0] == -np.inf


@pytest.mark.parametrize("backend", BACKENDS)
def test_det_grad_wide_exponents_no_false_overflow(backend: str) -> None:
    W = np.array([
        [-2.62753127e-073, -1.41269140e+020, -5.61094865e-062, -5.95414007e+250, 6.28599585e+055],
        [-4.31511640e+278, 4.89928451e+141, 5.69054865e+051, 1.91647260e+000, -3.03860018e-180],
        [8.53806793e+114, 2.75277051e+174, -3.79838179e+118, 1.89400660e-053, 3.37455909e-300],
        [-9.37772248e+140, -1.78688555e-278, -5.27649367e+182, 2.28696487e-213, 3.39074325e-117],
        [-1.05139391e-173, 1.01749030e+024, 2.89290028e-179, -4.86342275e-146, 3.80827935e-273],
    ])
    C = np.asarray(matgrad.det_grad(W, backend=backend))
    assert ref.det_grad_equilibrated_error_ratio(C, W).ratio <= 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_det_grad_no_inf_for_an_exact_zero_cofactor(backend: str) -> None:
    """Rank 3 (rows 0 and 1 equal), cofactors ±2^2106/64 in column 0, every
    other one exactly 0: noise within the backward-stability bound may
    stand in a zero (docs §1 item 3), ±inf may not (item 2)."""
    A0 = np.array([[0.0, 0.0, 0.0, 0.25], [0.0, 0.0, 0.0, 0.25], [0.0, 0.25, 0.0, 0.0],
                   [0.0, 0.0, 0.25, 0.25]])
    A = np.ldexp(A0, 702)
    C = np.asarray(matgrad.det_grad(A, backend=backend))
    assert C[0, 0] == np.inf and C[1, 0] == -np.inf  # 2^2106/64 truly overflows
    gr.assert_contract(gr.det_grad_verdict(A, C))


@pytest.mark.parametrize("backend", BACKENDS)
def test_charpoly_nan_entry_is_not_swallowed(backend: str) -> None:
    A = np.array([[np.nan, 0.0], [0.25, 2.0]])
    p, dp = matgrad.charpoly_deriv(A, 0.0, return_value=True, backend=backend)
    assert np.isnan(p) and np.isnan(dp)


@pytest.mark.parametrize("backend", BACKENDS)
def test_charpoly_float32_graded_no_false_overflow(backend: str) -> None:
    A = np.array([[7.25, -3.0, -1.9471113219505604e34], [-1.5, 5.75, 1.298074214633707e33],
                  [4.0, -1.0, 3.1153781151208966e34]], dtype=np.float32)
    x = np.array([-1.75], dtype=np.float32)
    p, dp = matgrad.charpoly_deriv(A, x, return_value=True, backend=backend)
    exact_p, _ = ref.exact_charpoly(A, x[0])  # -2.5e36: finite in float32
    assert np.isfinite(p[0]) and abs(float(p[0]) - float(exact_p)) <= 1e-5 * abs(float(exact_p))
    gr.assert_contract(gr.charpoly_verdict(A, x, p, dp))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n", [12, 32, 47, 65])
def test_det_grad_singular_diagonal_keeps_zero_cofactors(backend: str, n: int) -> None:
    """diag(0, 1, …, 1, −1e25, 1e25): rank n − 1, one nonzero cofactor
    (−1e50); the others are 0 to within the backward-stability bound of
    the equilibrated matrix (docs §1 item 3: rounding noise may stand in
    them, 0.0 need not)."""
    d = np.ones(n)
    d[0], d[-2], d[-1] = 0.0, -1e25, 1e25
    A = np.diag(d)
    C = np.asarray(matgrad.det_grad(A, backend=backend))
    assert abs(C[0, 0] + 1e50) <= 4 * n * 2.2e-16 * 1e50, C[0, 0]
    with ref.mpmath.workdps(ref.DPS):  # exact, and the equilibrated σ (a diagonal's)
        exact = [[ref.mpmath.mpf(0)] * n for _ in range(n)]
        exact[0][0] = ref.mpmath.fprod(ref._to_mp(v) for v in d[1:])
    sigmas = fz._clamped_sigmas(fz._equilibrated_float(A), n - 1)
    gr.assert_contract(gr.det_grad_verdict(A, C, exact=(0, exact), sigmas=sigmas))


@pytest.mark.parametrize("backend", BACKENDS)
def test_charpoly_scaling_exact_2x2(backend: str) -> None:
    A0 = np.array([[1.3407807929942597e154, 0.25], [8.379879956214123e152, 4.0]])
    p, _ = matgrad.charpoly_deriv(A0, 0.0, return_value=True, backend=backend)
    ps, _ = matgrad.charpoly_deriv(np.ldexp(A0, -286), 0.0, return_value=True, backend=backend)
    exact, _ = ref.exact_charpoly(A0, 0.0)
    assert float(ps) * 2.0**572 == float(p)
    assert abs(float(p) - float(exact)) <= 4e-16 * abs(float(exact))


# ---- graded matrices (docs/numerics.md, the contract's rules (a)–(c))
@pytest.mark.parametrize("backend", BACKENDS)
def test_det_grad_column_scaled_bidiagonal(backend: str) -> None:
    """11 of the 15 nonzero cofactors of this column-scaled bidiagonal
    matrix came back 0."""
    A0 = np.eye(5) + np.eye(5, k=1)
    e = np.array([-16, 7, 153, 271, -280])
    A = np.ldexp(A0, e[None, :])
    C = np.asarray(matgrad.det_grad(A, backend=backend))
    # C(A0·D) = det(D)·C(A0)·D⁻¹ exactly; C(A0) is the ±1 lower triangle
    C0 = np.tril((-1.0) ** np.add.outer(np.arange(5), np.arange(5)))
    back = np.ldexp(C, -(e.sum() - e[None, :]))
    assert np.all(C[C0 != 0] != 0), C
    np.testing.assert_allclose(back, C0, rtol=4 * 5 * 2.2e-16, atol=0)
    gr.assert_contract(gr.det_grad_verdict(A, C))


@pytest.mark.parametrize("backend", BACKENDS)
def test_det_grad_tiny_diagonal_upper_triangle(backend: str) -> None:
    """``1e-20·I + strict upper ones``: the cofactors 1e-80, 1e-60, 1e-40
    came back 0."""
    A = 1e-20 * np.eye(5) + np.triu(np.ones((5, 5)), 1)
    C = np.asarray(matgrad.det_grad(A, backend=backend))
    _, exact = gr.exact_det_grad(A)
    for i, j in ((0, 0), (1, 0), (2, 0), (1, 1), (2, 1)):  # 1e-80, -1e-60, ~1e-40, ...
        want = float(exact[i][j])
        assert want != 0 and abs(C[i, j] - want) <= 4 * 5 * 2.2e-16 * abs(want), (i, j, C)
    gr.assert_contract(gr.det_grad_verdict(A, C))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("n", "eps"), [(10, 1e-40), (4, 1e-160)])
def test_logdet_grad_tiny_diagonal_upper_triangle(backend: str, n: int, eps: float) -> None:
    """``A = eps·I + strict upper ones``: ``A⁻ᵀ`` is lower triangular with
    entries up to eps^-n; 18 of them came back NaN (n = 10).  Only the
    entries whose exact value exceeds DBL_MAX may be ±inf."""
    A = eps * np.eye(n) + np.triu(np.ones((n, n)), 1)
    G = np.asarray(matgrad.logdet_grad(A, backend=backend))
    exact = gr.exact_logdet_grad(A)
    assert exact is not None and not np.isnan(G).any(), G
    assert abs(G[0, 0] - 1 / eps) <= 4 * n * 2.2e-16 / eps
    overflows = {(i, j) for i in range(n) for j in range(n) if abs(exact[i][j]) > 1.79e308}
    assert {(int(i), int(j)) for i, j in np.argwhere(np.isinf(G))} == overflows
    for i, j in overflows:
        assert np.sign(G[i, j]) == np.sign(float(exact[i][j]))
    gr.assert_contract(gr.logdet_grad_verdict(A, G, exact=exact))


@pytest.mark.parametrize("backend", BACKENDS)
def test_charpoly_huge_diagonal_entry(backend: str) -> None:
    """``diag(1, 2, 1e150) + strict lower ones`` (eigenvalues 1, 2, 1e150):
    ``p`` at 0, 3, 1e150 is exactly −2e150, −2e150 (to rounding), 0."""
    A = np.diag([1.0, 2.0, 1e150]) + np.tril(np.ones((3, 3)), -1)
    x = np.array([0.0, 3.0, 1e150])
    p, dp = matgrad.charpoly_deriv(A, x, return_value=True, backend=backend)
    np.testing.assert_allclose(p[:2], [-2e150, -2e150], rtol=4e-15, atol=0)
    assert p[2] == 0
    gr.assert_contract(gr.charpoly_verdict(A, x, p, dp))


@pytest.mark.parametrize("backend", BACKENDS)
def test_charpoly_companion_of_x128_minus_1(backend: str) -> None:
    """The companion matrix of x^128 − 1 at 1e-3: p = 1e-384 − 1 = −1 and
    p′ = 128e-381 underflows (it came back NaN)."""
    coeffs = [0.0] * 128
    coeffs[0] = -1.0
    C = gr.companion(coeffs)
    p, dp = matgrad.charpoly_deriv(C, 1e-3, return_value=True, backend=backend)
    assert p == -1.0 and abs(dp) <= 4 * 128 * 5e-324, (p, dp)


@pytest.mark.parametrize("backend", BACKENDS)
def test_charpoly_shift_matrix_110(backend: str) -> None:
    """``eye(110, k=−1)`` (nilpotent: p = x^110) at 1e-3: p = 1e-330 and
    p′ = 1.1e-325 both underflow to 0 (they came back NaN)."""
    p, dp = matgrad.charpoly_deriv(np.eye(110, k=-1), 1e-3, return_value=True,
                                   backend=backend)
    assert p == 0 and abs(dp) <= 4 * 110 * 5e-324, (p, dp)


# ---- found by the contract checks (not in the list of known bugs when written)
_ILL_3X3 = np.array([[0.690037241039487, -0.05841016455638529, -0.08115218578671995],
                     [-0.19196359864420265, 0.01624973954392786, 0.02257563733114375],
                     [-0.6829597784505971, 0.05781210453456119, 0.08031902853967873]])


@pytest.mark.parametrize("backend", BACKENDS)
def test_logdet_grad_ill_conditioned_3x3_as_good_as_lu(backend: str) -> None:
    """σ = (1, 1e-6, 1e-12): ``inv(A).T`` is right to 5e-6 relative; the
    cofactor-over-determinant route was 13% off (the determinant's
    cancellation, not the matrix's conditioning)."""
    G = np.asarray(matgrad.logdet_grad(_ILL_3X3, backend=backend))
    gr.assert_contract(gr.logdet_grad_verdict(_ILL_3X3, G))


@pytest.mark.parametrize("backend", BACKENDS)
def test_det_grad_graded_lower_triangular_3x3(backend: str) -> None:
    """Cofactor [0, 2] = a10·a21 − a11·a20 = 1.42e52 (the second product is
    2e-176) came back 0."""
    A = np.array([[5.282574087550764e-48, 0.0, 0.0],
                  [-9.37626425785791e+42, -1.4173781808181845e+125, 0.0],
                  [-1.4996686249715252e-301, -1516487586.9501588, 2.0421340303678456e+291]])
    C = np.asarray(matgrad.det_grad(A, backend=backend))
    assert abs(C[0, 2] - 1.4218988359005963e52) <= 1e-15 * 1.43e52, C
    gr.assert_contract(gr.det_grad_verdict(A, C))


@pytest.mark.parametrize("kind", fz.KINDS)
def test_every_kind_of_hostile_matrix_builds(kind: str) -> None:
    @given(h=fz.hostile_matrices(kinds=[kind]))
    @_settings(8)
    def build(h: fz.Hostile) -> None:
        n = h.A.shape[0]
        assert h.kind in (kind, "dyadic") and h.A.shape == (n, n) and h.A.flags.c_contiguous
        assert h.A.dtype in fz.DTYPES
        assert np.isfinite(h.A).all()

    build()


def test_batch_slots_include_every_hostile_kind() -> None:
    seen: set[str] = set()

    @given(scn=fz.scenarios(["batch"], ["det_grad"]))
    @_settings(200)
    def collect(scn: fz.Scenario) -> None:
        seen.update(scn.kind.split("+"))

    collect()
    assert set(fz.SLOTS) - {"hostile"} <= seen


_WIDE_4X4_A = np.array([
    [complex(-1.0679935971587372e+96, 3.653754093363279e+47),
     complex(6.668014668742298e+240, 2.375), complex(-8.0, -4.0), complex(0.0, 2.1875)],
    [complex(8.0, -3.125), complex(0.0, -2.875), complex(0.0, 0.0),
     complex(-1.5883711293676957e+29, 1.0)],
    [complex(-0.375, -0.0), complex(-1.0679935971587372e+96, -1.3552527156214815e-20),
     complex(-8.0, -1.0), complex(-1.0, -5.0)],
    [complex(2.0370359764065848e+90, 3.2172234934175177e-86),
     complex(1.4859555720672998e+135, -3.125), complex(-1.0, 7.0),
     complex(-2.5625, -1.0679935971587372e+96)]])


@pytest.mark.parametrize("backend", BACKENDS)
def test_det_grad_wide_complex_4x4_keeps_large_cofactors(backend: str) -> None:
    """The equilibrated SVD adjugate flushed cofactors of 3.5e215 and 7.5e270
    of this wide-exponent complex 4×4 to 0 (the same matrix scaled by
    2⁻⁵⁶⁷ took the closed form and got them right)."""
    got = np.asarray(matgrad.det_grad(_WIDE_4X4_A, backend=backend))
    _, exact = gr.exact_det_grad(_WIDE_4X4_A)
    for i, j in ((0, 2), (2, 0), (3, 0)):  # 3.5e215, 7.5e270, 8.5e270: finite
        want = complex(exact[i][j])
        assert abs(got[i, j] - want) <= 1e-12 * abs(want), (i, j, got[i, j], want)
    gr.assert_contract(gr.det_grad_verdict(_WIDE_4X4_A, got))


@pytest.mark.parametrize("backend", BACKENDS)
def test_det_grad_float32_singular_noise_is_not_inf(backend: str) -> None:
    """A float32 12×12 with a zero row (rank n − 1; found by ``matgrad check
    --fuzz 60 --seed 5 --backend numba``): row 4 of the cofactors is
    ``[0, −1.7e54, 0, …]``, so −inf at [4, 1] (a true overflow) and zeros
    elsewhere.  The rounding noise of the rank-one cofactor was flushed only
    beyond 2¹⁰⁰⁰, a float64 threshold, so it came back as −1.9e38 and −inf
    (a false ±inf, docs §1 item 2) once narrowed to float32."""
    A = np.zeros((12, 12), dtype=np.float32)
    rows = [0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 11, 11]
    cols = [10, 9, 3, 2, 7, 8, 11, 6, 5, 4, 0, 9, 11]
    A[rows, cols] = [1.0, 1.0, 1.0, 7.0, 1.0, 1.5474250491067253e+26, 1.0, 1.0, 1.0,
                     3.094850098213451e+26, 5.0, 1.0, 1.0]
    C = np.asarray(matgrad.det_grad(A, backend=backend))
    det, exact = gr.exact_det_grad(A)
    assert det == 0 and float(exact[4][1]) < -1.6e54
    assert C[4, 1] == -np.inf and np.isfinite(np.delete(C, [(4 * 12) + 1])).all(), C[4]
    gr.assert_contract(gr.det_grad_verdict(A, C, exact=(det, exact)))


_HUGE_COMPLEX_12 = np.array([[complex(0.0, 3.5),
    complex(-1.3485531580224768e+308, -1.3483521430077686e+308),
    complex(1.3539874210746827e+308, -1.3484618654891445e+308),
    complex(1.3482818520431372e+308, -1.3491459165839722e+308), complex(-1.75, 0.0),
    complex(1.3656137180660965e+308, 1.349450653631856e+308),
    complex(1.7976927062588728e+308, -1.3497258170421814e+308), complex(3.75, 2.0),
    complex(-4.0, -1.25), complex(1.3623417593831925e+308, -1.3520865648055342e+308),
    complex(1.25, -4.0),
    complex(-1.4173770130689365e+308, 1.348392003127956e+308)],
    [complex(-0.25, 0.5),
    complex(-0.5, -1.5), complex(1.75, -3.75), complex(3.75, -0.5),
    complex(-1.3496220950090058e+308, -1.348620877366451e+308),
    complex(-1.3488158919329589e+308, -1.3483409993182539e+308),
    complex(-1.4044477616111841e+308, -1.3505868813589163e+308),
    complex(1.6809205554545992e+308, -1.6636401218447848e+308), complex(1.5, 1.25),
    complex(-1.3676230110062922e+308, -1.3483444281457969e+308),
    complex(1.348761030692271e+308, 1.3647740839215054e+308),
    complex(1.3776356160352836e+308, -1.3483534288180973e+308)],
    [complex(0.75, -0.75),
    complex(-1.5, -3.5), complex(1.367412138112398e+308, 1.3498222528168282e+308),
    complex(-2.5, -2.25), complex(1.3509589091473314e+308, -1.3507681806152522e+308),
    complex(-1.3763583777755175e+308, -1.3491459165839722e+308), complex(-0.75, -2.25),
    complex(1.5, 1.75), complex(1.6236299904524496e+308, -1.3482698511467367e+308),
    complex(-3.5, -3.25), complex(1.3483285698184105e+308, 1.34845672224783e+308),
    complex(-1.3483002819911808e+308, -1.3486427361420376e+308)],
    [complex(3.75, 3.5),
    complex(-2.25, 2.25), complex(2.0, 3.0),
    complex(1.3492822124788063e+308, 1.3482762801983798e+308), complex(-4.0, -1.25),
    complex(-1.3844576970355171e+308, 1.7976931348623157e+308),
    complex(1.3763583777755175e+308, 1.3483525716112115e+308), complex(0.5, 2.25),
    complex(1.3483521430077686e+308, -1.3484370064894578e+308),
    complex(-1.6053419101484372e+308, -1.7976927062588728e+308),
    complex(1.3484481501789725e+308, -1.3920186903712663e+308),
    complex(-1.5, 2.0)],
    [complex(-3.75, 0.5),
    complex(-1.3487245993996266e+308, 1.3482698511467367e+308), complex(-0.75, 0.25),
    complex(1.3511920694202551e+308, 1.3484541506271728e+308),
    complex(-1.3489131849144914e+308, 1.35092290645813e+308),
    complex(-1.352026131720089e+308, 1.7660274838993043e+308),
    complex(1.3621377441443843e+308, -1.3485300134365616e+308),
    complex(-1.3489226141902346e+308, 1.348309711266924e+308), complex(-1.5, -1.0),
    complex(0.0, -1.0), complex(-1.3498171095755137e+308, 1.356466034784826e+308),
    complex(2.25, 3.25)],
    [complex(3.25, 0.25), complex(-1.5, -3.5), complex(3.0, 4.0),
    complex(0.75, -1.5), complex(-2.0, -2.5),
    complex(-1.4293719090212224e+308, 1.3486731669864816e+308),
    complex(-1.3491064850672278e+308, -1.348446864368644e+308),
    complex(-1.3528859102264952e+308, -1.3490310508612819e+308),
    complex(-1.3483294270252963e+308, 1.3491116283085423e+308), complex(-1.25, -0.25),
    complex(1.3501355619335695e+308, -1.3488638955185608e+308),
    complex(1.3484078614553423e+308, -1.3487083124687974e+308)],
    [complex(-1.3482698511467367e+308, 1.3492007778246602e+308),
    complex(1.3499975516249639e+308, 1.3482698511467367e+308), complex(1.0, 2.25),
    complex(1.3699983312867027e+308, -1.3485270132124614e+308),
    complex(-1.3494313664769266e+308, 1.3493195009783364e+308),
    complex(-1.374829977898227e+308, 1.3637960108648657e+308), complex(3.0, -2.5),
    complex(-1.3895597924194952e+308, -1.7976927062588728e+308),
    complex(-1.4339905397216381e+308, -1.3780247879614136e+308), complex(-2.25, -2.25),
    complex(-1.3489890477238802e+308, 1.3484070042484566e+308),
    complex(-1.3488990410008765e+308, 1.4252213132804257e+308)],
    [complex(1.5, 3.75),
    complex(-3.0, 0.5), complex(1.75, 0.0),
    complex(-1.3486294494353084e+308, -1.3489474731899213e+308), complex(0.75, 2.5),
    complex(-1.3485265846090186e+308, 1.3689409665931313e+308), complex(-1.5, -2.25),
    complex(1.4139301841813397e+308, -1.3484224339724e+308), complex(-2.25, -2.5),
    complex(0.5, -4.0), complex(-1.4402927247456649e+308, -1.4309658852252727e+308),
    complex(-1.75, 1.75)],
    [complex(1.3485643017119915e+308, -1.3488818968631615e+308),
    complex(1.4206669730964412e+308, 1.3516048145357433e+308), complex(2.25, 1.75),
    complex(-0.25, -1.0), complex(2.25, -4.0),
    complex(-1.348467008730459e+308, 1.348333713059725e+308), complex(-1.25, 0.75),
    complex(-1.3483431423354683e+308, -1.3542604414677937e+308), complex(-2.5, -0.75),
    complex(3.75, -2.5), complex(-1.4312809087557855e+308, -1.3483697157489265e+308),
    complex(-1.3483967177658276e+308, 1.3528173336756352e+308)],
    [complex(-1.3516073861564005e+308, 1.3482698511467367e+308),
    complex(-1.25, -3.25), complex(-3.25, 0.75), complex(-1.0, -2.5), complex(3.0, -1.25),
    complex(-1.5, 3.5), complex(1.755017518658744e+308, 1.348463579902916e+308),
    complex(1.3680490428285095e+308, -1.349638810543278e+308), complex(1.0, -1.5),
    complex(1.3500879869514104e+308, 1.3484528648168441e+308),
    complex(1.34845672224783e+308, -1.3486800246415676e+308),
    complex(1.3603123220811818e+308, -1.3487318856581554e+308)],
    [complex(1.3484854386785026e+308, 1.3509139057858296e+308),
    complex(-1.3483555718353116e+308, -1.3762045091395256e+308),
    complex(-1.3482754229914941e+308, -1.3495513754409315e+308), complex(0.25, -4.0),
    complex(-1.0, 3.0), complex(1.3482775660087085e+308, 1.34891447072482e+308),
    complex(3.0, 0.5), complex(1.3862145425478597e+308, 1.3484348634722434e+308),
    complex(0.75, 0.75), complex(-1.3485222985745898e+308, 1.430981743552659e+308),
    complex(1.4517034342053129e+308, -1.4091426837244315e+308),
    complex(-2.25, -1.0)],
    [complex(3.75, -1.5), complex(-2.5, -3.75), complex(-2.5, 2.75),
    complex(0.75, 3.0), complex(3.5, -0.25), complex(-2.5, -0.75), complex(-3.0, 2.0),
    complex(1.75, -3.0), complex(1.4990825445909895e+308, 1.3971032130140866e+308),
    complex(-1.75, -2.5), complex(-1.3482942815429806e+308, 1.3483551432318688e+308),
    complex(-1.5, 2.0)]], dtype=np.complex128)


@pytest.mark.parametrize("backend", BACKENDS)
def test_charpoly_huge_complex_12x12_is_not_nan(backend: str) -> None:
    """Complex entries of modulus beyond DBL_MAX (found by ``matgrad check
    --fuzz 60 --seed 8 --backend dask``): p and p′ at 0 and −1 truly
    overflow (≈ 6e3701 and 1e3394), so ±inf; Dask's Hessenberg block mapped
    the reduced matrix back to A's scale, where its entries (column norms)
    overflowed, and the inner backend returned NaN."""
    x = np.array([0j, -1 + 0j])
    p, dp = matgrad.charpoly_deriv(_HUGE_COMPLEX_12, x, return_value=True, backend=backend)
    assert not np.isnan(np.asarray(p).view(np.float64)).any(), p
    assert not np.isnan(np.asarray(dp).view(np.float64)).any(), dp
    gr.assert_contract(gr.charpoly_verdict(_HUGE_COMPLEX_12, x, np.asarray(p), np.asarray(dp)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_bilinear_complex_product_of_opposite_overflows_is_not_nan(backend: str) -> None:
    """complex64 ``(−2 + 2¹⁰⁷i)(2¹²⁷ − 2²¹i) = 0 + 2²³⁴i``: ``ac`` and ``bd``
    overflow to opposite infinities, and Numba's product gave ``nan + inf·i``
    (found by ``matgrad check --fuzz 60 --seed 6 --backend numba``).  The
    imaginary part truly overflows; the real part is exactly 0 (below the
    entry's rounding level: ±inf is allowed there, NaN is not)."""
    x = np.array([complex(-2.0, 2.0**107)], dtype=np.complex64)
    y = np.array([complex(2.0**127, -2.0**21)], dtype=np.complex64)
    with matgrad.config.override(numba_parallel_min_work=1):  # the kernel path
        got = np.asarray(matgrad.bilinear_grad(x, y, backend=backend))
    assert not np.isnan(got.real).any() and got.imag[0, 0] == np.inf, got
    assert fz._bilinear_score(got, x, y).ratio <= 1


# ---- what the gate must not report (docs/numerics.md §1 item 2): a 0 for an
# entry below the normwise rounding level of item 1

#: (what, operation, A, an entry whose exact value is nonzero and does not
#: underflow, but lies below the normwise level ``128·max(ε_std, n·eps)·‖G*‖_F``;
#: every backend returns 0 there, which item 2 allows)
_BELOW_LEVEL = [
    ("4x4 with a 2^-53 entry, cofactors +-2^-53", "det_grad",
     np.array([[0.0, 1, 0, 1], [0, 1, 1, 0], [1, 0, 0, 0], [0, 0, 1, 2.0**-53]]), (0, 1)),
    ("4x4 with a 2^-53 entry, inverse entries +-2^-53", "logdet_grad",
     np.array([[0.0, 1, 0, 1], [0, 1, 1, 0], [1, 0, 0, 0], [0, 0, 1, 2.0**-53]]), (0, 1)),
    ("4x4 with a 2^53 entry, cofactor -1", "det_grad",
     np.array([[0.0, 0, 1, -1], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 2.0**53, 1]]), (0, 2)),
    ("2x2, inverse entry -2.15e-302", "logdet_grad",
     np.array([[-1.2676174386823409e+304, -1.072156793715243e-56],
               [0.0, 3.9339189049779e-59]]), (1, 0)),
    ("3x3 beyond 2^+-300 (general path), inverse entry -6.09e-273", "logdet_grad",
     np.array([[2.9251256122561277e+177, 6.998201757490404e-212, 2.0],
               [-3.9550703692857316e-107, 7.0, -1.75],
               [-1.0, -4.6913674963999086e+271, 0.5]]), (1, 1)),
    ("float32 4x4, inverse entry -4.5e-29", "logdet_grad",
     np.array([[7.0, 2.802596928649634e-45, 1.0, 0.0],
               [8.508522548876365e+37, 1.0, -3.5, -1.701603503375447e+38],
               [3.875, -9.905686699907059e+27, 1.0, 4.702096233398925e-38],
               [9.154803651267862e-13, 1.8125, -1.0, 0.0]], dtype=np.float32), (3, 1)),
    ("float32 5x5, cofactor -12", "det_grad",
     np.array([[1.0, 0.0, -1.0, -1.0, -0.0], [3.0097799603765035e-36, 1.0, -0.0, -0.5, 2.0],
               [0.0, -0.0, -6.646686653245928e+35, -1.0, 3.0],
               [-2.802596928649634e-45, -6.0, -6.646686653245928e+35, 0.0, -1.0],
               [-4.0, -3.625, 6.0, -0.0, -0.0]], dtype=np.float32), (0, 0)),
    ("5x5, a whole row of cofactors up to 4.3e232", "det_grad",
     np.array([[-0.8125, 0.0, -0.5625, 3.4544674220378875e-77, -5.0],
               [-0.9375, -3.0, -3.0, -1.0, -1.0625], [7.0, 2.0, -1.0, 0.0, -0.0],
               [4.701977403289265e-38, 1.0, -2.446494580662476e-296, 0.0, -7.0],
               [-8.988465674316525e+307, 3.875, -8.997827589100132e+161, 1.0,
                5.103203814962284e-203]]), (1, 1)),
    ("complex 4x4, a whole row of cofactors up to 4.7e163", "det_grad",
     np.array([[1, 0, 1, -5.816390717860381e+162j], [1, 0, 8, 1], [-7, -4j, 5, 1],
               [7.957424903068358e+144j, 1, 1, 1]], dtype=np.complex128), (2, 0)),
    ("float32 4x4, cofactor -5.1e38 (beyond float32's range) beside 1.7e66", "det_grad",
     np.array([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, -1.7014118346046923e+38],
               [4.0, -9.903520314283042e+27, 1.0, 1.0], [0.0, 1.8125, 1.0, 0.0]],
              dtype=np.float32), (3, 1)),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("what", "op", "A", "at"), _BELOW_LEVEL, ids=[c[0] for c in _BELOW_LEVEL])
def test_zero_below_the_normwise_level_is_not_reported(backend: str, what: str, op: str,
                                                       A: np.ndarray, at: tuple[int, int]) -> None:
    """docs/numerics.md §1 item 2: an entry may be 0 where its exact value
    lies below the normwise rounding level of item 1 (the elimination can
    absorb it), also where that value is beyond the format's range (the
    float32 case: -5.1e38 beside 1.7e66; float64 gives 0 there too).  The
    gate accepts the correctly rounded answer with that entry 0, and each
    backend's result."""
    if op == "det_grad":
        det, exact = gr.exact_det_grad(A)

        def verdict(G: np.ndarray) -> gr.Verdict:
            return gr.det_grad_verdict(A, G, exact=(det, exact))
    else:
        inv = gr.exact_logdet_grad(A)
        assert inv is not None
        exact = inv

        def verdict(G: np.ndarray) -> gr.Verdict:
            return gr.logdet_grad_verdict(A, G, exact=exact)
    t = exact[at[0]][at[1]]
    eps_std = gr.textbook_normwise_error(op, A, exact)
    level = gr.NORMWISE_FACTOR * max(eps_std, A.shape[0] * np.finfo(A.dtype).eps) \
        * gr._exact_norm(exact)
    assert t != 0 and abs(t) > np.finfo(A.dtype).smallest_subnormal and abs(t) <= level
    best = _rounded(exact, A.dtype)
    best[at] = 0
    gr.assert_contract(verdict(best), what)
    G = np.asarray(getattr(matgrad, op)(A, backend=backend))
    gr.assert_contract(verdict(G), what)


@pytest.mark.parametrize("backend", BACKENDS)
def test_det_grad_singular_noise_does_not_overflow(backend: str) -> None:
    """Rank 3 (columns 2 and 3 equal), rows 1 and 2 scaled by 2^600: column
    0 and 1 cofactors are exactly 0, the others ±2^1200·O(1) overflow.  The
    rounding noise the rank-one cofactor may carry (docs §1 item 3) came
    back as ±inf in the zero entries (item 2: ±inf only where the exact
    value overflows)."""
    A = np.array([[0.0, 0.0, 2.0, 2.0], [-4.0, -3.0, 3.0, 3.0], [-2.0, -2.0, 3.0, 3.0],
                  [-2.0, 3.0, -2.0, -2.0]])
    A[1:3] *= 2.0**600
    C = np.asarray(matgrad.det_grad(A, backend=backend))
    assert np.isfinite(C[:, :2]).all(), C
    gr.assert_contract(gr.det_grad_verdict(A, C))


@pytest.mark.parametrize("backend", BACKENDS)
def test_det_grad_complex_3x3_overflow_is_not_nan(backend: str) -> None:
    """``C[2, 2] = 1e400`` overflows: ``inf + 0j`` (numpy); Numba's 3×3
    closed form gave ``inf + nanj`` (docs §1: never NaN from finite
    input)."""
    A = np.diag([1e200, 1e200, 1.0]).astype(np.complex128)
    C = np.asarray(matgrad.det_grad(A, backend=backend))
    assert not np.isnan(C.real).any() and not np.isnan(C.imag).any(), C
    gr.assert_contract(gr.det_grad_verdict(A, C))


@pytest.mark.parametrize("backend", BACKENDS)
def test_logdet_grad_scaling_across_the_closed_form_window(backend: str) -> None:
    """docs §1 item 5 (not promised): ``2^299·diag(3i, 1+3i)`` leaves the
    2×2 closed forms' 2^±300 window that the unscaled matrix takes; the two
    results may differ in the last bit (they do on numpy).  The gate does
    not compare their bits, and holds each to the contract against its own
    exact reference."""
    A = np.array([[3j, 0], [0, 1 + 3j]], dtype=np.complex128)
    S = A * 2.0**299
    base = np.asarray(matgrad.logdet_grad(A, backend=backend))
    got = np.asarray(matgrad.logdet_grad(S, backend=backend))
    assert not fz._same_path(A, S, base, got)
    gr.assert_contract(gr.logdet_grad_verdict(A, base))
    gr.assert_contract(gr.logdet_grad_verdict(S, got))


@pytest.mark.parametrize("backend", BACKENDS)
def test_charpoly_graded_tridiagonal_derivative(backend: str) -> None:
    """A graded tridiagonal 12×12 (upper Hessenberg: not reduced, only the
    recurrence runs): ``p′(0) = -1.213558027677116e43``, relative error
    2.1e-10 against an allowance of 2.3e-13 (16 times the textbook
    formula's error, and the componentwise backward-stability allowance)."""
    d = [425539956603170.9, -1.4191491182471038e-11, -0.5720798063598169,
         1.8148212201308867e-09, -2.2756648163273313e-18, -764142568.7336282,
         -1.0145787509132873e-16, -5.249675871316945e-09, 0.7747968438365298,
         -0.12844488915538355, -1.245946001428995e-14, -2.216698128722164e+17]
    up = [4.992954071346681, 3.478860618076771, 0.32186526456998493, 0.7775178915753007,
          -0.39345103159668976, -0.40022626039951614, -3.9002721956084763,
          2.0479291217633295, 0.6954081403541374, -3.762026397750344, -1.1909866645357332]
    lo = [-2.7111624789659685, -1.8890132459676727, -0.17477209205516195,
          -0.42219041157635356, 0.2136429974986111, 0.21732193102256359, 2.1178387550510482,
          -1.1120207626922813, -0.37760500712699807, 2.0427716074923303, 0.6467029962018469]
    A = np.diag(d) + np.diag(up, 1) + np.diag(lo, -1)
    x = np.array([0.0])
    p, dp = matgrad.charpoly_deriv(A, x, return_value=True, backend=backend)
    exact = [fz._structured_charpoly("tridiagonal", A, 0.0)]
    gr.assert_contract(gr.charpoly_verdict(A, x, np.asarray(p), np.asarray(dp), exact=exact))


@pytest.mark.parametrize("backend", BACKENDS)
def test_charpoly_exact_at_an_eigenvalue_of_a_graded_2x2(backend: str) -> None:
    """docs §1: ``charpoly_deriv`` is exact at eigenvalues.  ``[[1, 2^k],
    [1, 2^k]]`` is singular, so ``p(0) = 0``; from k = 103 on it came back
    ``2^k`` (k ≤ 102: 0)."""
    x = np.array([0.0])
    for k in (103, 200, 600):
        A = np.array([[1.0, 2.0**k], [1.0, 2.0**k]])
        p, dp = matgrad.charpoly_deriv(A, x, return_value=True, backend=backend)
        assert np.asarray(p)[0] == 0, (k, p)
        gr.assert_contract(gr.charpoly_verdict(A, x, np.asarray(p), np.asarray(dp)))
        # the same block in an upper Hessenberg 3×3 (Dask reduces n > 2
        # beforehand; a Hessenberg input keeps its exact subdiagonal there too)
        B = np.zeros((3, 3))
        B[:2, :2] = A
        B[2, 2], B[2, 1] = 5.0, 2.0**-60  # still singular: p(0) = 0
        p, dp = matgrad.charpoly_deriv(B, x, return_value=True, backend=backend)
        exact = ref.exact_charpoly(B, 0.0)
        assert exact[0] == 0 and np.asarray(p)[0] == 0, (k, p)
        gr.assert_contract(gr.charpoly_verdict(B, x, np.asarray(p), np.asarray(dp),
                                               exact=[exact]))
