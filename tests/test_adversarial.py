"""Adversarial property suite: hostile matrices against every backend.

The strategies and checks live in :mod:`matgrad._fuzz`, shared with
``matgrad check --fuzz`` (which keeps looking for as long as it is given);
here each (property, operation, backend) runs a fixed, reproducible number of
examples (``derandomize=True``, no example database).  Properties:

- ``reference``: exact references (n ≤ 12) within the backward-stability
  bound of the power-of-two equilibrated matrix;
- ``known``: closed-form answers for large structured matrices (n = 47…65);
- ``scaling``: ``2ᵏ·A`` and row scalings ``D·A`` bit-exact;
- ``column-scaling``: column scalings ``A·D`` within the error bound of ``A``;
- ``batch``: hostile slots never change their neighbours' bits (batch size,
  order, Dask chunking);
- ``agreement``: large graded matrices against the ``numpy`` backend.

Budget: this module must finish in under 8 minutes on a 2-core CI machine.
Measured on one (numpy, numba and dask backends, shared with other jobs):
6 min 8 s from an empty Numba cache (a fresh checkout: every kernel compiles
on first use), about 3 min (2 min 57 s) with warm caches.  The example counts in ``EXAMPLES``
are what fits; ``reference`` checks of ``charpoly_deriv`` cost most (exact
determinants of three perturbed matrices per point).  Failures are not shrunk
here, to keep the budget when something fails; for a minimal reproducer run
``matgrad check --fuzz 60 --backend NAME --op OP --property PROPERTY``.

Tests marked ``xfail(strict=False)`` document bugs that are being fixed; the
marks go when the fixes land.
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

# Examples per (property, operation) for each backend; charpoly references
# cost ~1 s each for wild 12×12 inputs (three exact perturbed determinants).
EXAMPLES: dict[tuple[str, str], int] = {
    ("reference", "det_grad"): 80,
    ("reference", "logdet_grad"): 60,
    ("reference", "frobenius_grad"): 80,
    ("reference", "charpoly_deriv"): 12,
    ("reference", "bilinear_grad"): 80,
    ("known", "det_grad"): 30,
    ("known", "logdet_grad"): 20,
    ("known", "charpoly_deriv"): 20,
    ("scaling", "det_grad"): 50,
    ("scaling", "logdet_grad"): 50,
    ("scaling", "frobenius_grad"): 50,
    ("scaling", "charpoly_deriv"): 40,
    ("scaling", "bilinear_grad"): 50,
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


def _xfail(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=False, reason=reason)


def _backends_xfail(reason: str, failing: tuple[str, ...]) -> list[Any]:
    """``BACKENDS`` with ``xfail`` on the ones that currently fail."""
    return [pytest.param(*bp.values, id=bp.id,
                         marks=[*bp.marks, *([_xfail(reason)] if bp.values[0] in failing else [])])
            for bp in BACKENDS]


# What the documented contract does not promise: (property, operation) →
# (reason, backends).
SCALING_PATHS = ("not promised (docs/numerics.md §1, item 5): a power-of-two scaling that "
                 "moves a slot across a path boundary (the 2^±300 window of the 2×2/3×3 "
                 "closed forms) or changes which other entries truly overflow (the tier-2 "
                 "refinement measures against the largest finite entry) rounds differently; "
                 "both results are within the bounds")
KNOWN: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {
    ("scaling", "det_grad"): (SCALING_PATHS, ("numpy", "numba", "dask")),
    ("scaling", "logdet_grad"): (SCALING_PATHS, ("numpy", "numba", "dask")),
}
#: Fewer examples where each costs more (Dask: a graph per call).
SCALE = {"dask": 0.5}


def _cases() -> list[Any]:
    out = []
    for (prop, op), count in EXAMPLES.items():
        for bp in BACKENDS:
            name = bp.values[0]
            marks = list(bp.marks)
            reason, where = KNOWN.get((prop, op), ("", ()))
            if name in where:
                marks.append(_xfail(reason))
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


COLUMN_SCALING = ("not a wrong answer: this property compares det_grad(A·D) with the "
                  "rescaled det_grad(A) against a bound taken from the unscaled A, and counts "
                  "an expected value that overflowed against a right finite result (the "
                  "contract promises column scaling within the bound of A·D itself, checked "
                  "against exact references in tests/test_graded.py; rewriting this gate "
                  "is open)")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", [pytest.param("det_grad", marks=_xfail(COLUMN_SCALING)),
                                "logdet_grad"])
def test_column_scaling_within_bound(backend: str, op: str) -> None:
    @_settings(15)
    @given(scn=fz.scenarios(["column-scaling"], [op]))
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
    A0 = np.array([[0.0, 0.0, 0.0, 0.25], [0.0, 0.0, 0.0, 0.25], [0.0, 0.25, 0.0, 0.0],
                   [0.0, 0.0, 0.25, 0.25]])
    C = np.asarray(matgrad.det_grad(np.ldexp(A0, 702), backend=backend))
    assert C[2, 0] == 0 and C[3, 0] == 0  # rows 0, 1 equal / column 0 zero: exact zeros
    assert C[0, 0] == np.inf and C[1, 0] == -np.inf  # 2^2106/64 truly overflows


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
    assert ref.charpoly_exact_error_ratio(p[0], dp[0], A, x[0]).ratio <= 1



@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n", [12, 32, 47, 65])
def test_det_grad_singular_diagonal_keeps_zero_cofactors(backend: str, n: int) -> None:
    d = np.ones(n)
    d[0], d[-2], d[-1] = 0.0, -1e25, 1e25
    C = np.asarray(matgrad.det_grad(np.diag(d), backend=backend))
    expect = np.zeros((n, n))
    expect[0, 0] = -1e50
    # exact zeros may carry rounding noise at the normwise level (docs/numerics.md §1, 2)
    assert np.allclose(C, expect, rtol=1e-13, atol=1e-13 * n * 1e50)


@pytest.mark.parametrize("backend", BACKENDS)
def test_charpoly_scaling_exact_2x2(backend: str) -> None:
    A0 = np.array([[1.3407807929942597e154, 0.25], [8.379879956214123e152, 4.0]])
    p, _ = matgrad.charpoly_deriv(A0, 0.0, return_value=True, backend=backend)
    ps, _ = matgrad.charpoly_deriv(np.ldexp(A0, -286), 0.0, return_value=True, backend=backend)
    exact, _ = ref.exact_charpoly(A0, 0.0)
    assert float(ps) * 2.0**572 == float(p)
    assert abs(float(p) - float(exact)) <= 4e-16 * abs(float(exact))


@pytest.mark.parametrize("backend", BACKENDS)
def test_det_grad_column_scaled_bidiagonal(backend: str) -> None:
    A0 = np.eye(5) + np.eye(5, k=1)
    e = np.array([-16, 7, 153, 271, -280])
    A = np.ldexp(A0, e[None, :])
    C = np.asarray(matgrad.det_grad(A, backend=backend))
    # C(A0·D) = det(D)·C(A0)·D⁻¹ exactly; C(A0) is the ±1 lower triangle
    C0 = np.tril((-1.0) ** np.add.outer(np.arange(5), np.arange(5)))
    back = np.ldexp(C, -(e.sum() - e[None, :]))
    assert np.allclose(back, C0, rtol=0, atol=1e-13)


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
    """The equilibrated SVD adjugate once flushed cofactors of 3.5e215 and
    7.5e270 of this wide-exponent complex 4×4 to 0; the matching
    equilibration and the minors keep them."""
    from matgrad._reference import ref_cofactor

    got = np.asarray(matgrad.det_grad(_WIDE_4X4_A, backend=backend))
    exact = ref_cofactor(_WIDE_4X4_A)
    for i, j in ((0, 2), (2, 0), (3, 0)):  # 3.5e215, 7.5e270, 8.5e270: finite
        want = complex(exact[i][j])
        assert abs(got[i, j] - want) <= 1e-12 * abs(want), (i, j, got[i, j], want)
