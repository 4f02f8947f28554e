"""``charpoly_deriv(A, x, order=k)``: p″ and higher derivatives of
``p(x) = det(xI − A)`` on every backend (the CuPy backend's kernels on
Numba's CUDA simulator, in a subprocess), in every dtype.

References are exact: :func:`matgrad._reference.exact_charpoly_derivs`
(the Samuelson–Berkowitz coefficients of the exact input in integer
arithmetic, rounded to 60 digits), or products and polynomials in
:class:`fractions.Fraction` arithmetic.  Accuracy is scored with
:func:`matgrad._reference.charpoly_derivs_error_ratio`, the
backward-stability criterion that p and p′ are held to, applied to every
order (docs/numerics.md §4).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import mpmath
import numpy as np
import pytest

import matgrad
from matgrad import _reference as ref
from matgrad._api import MAX_ORDER

ROOT = Path(__file__).parent.parent
SIM = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
DTYPES = [np.float32, np.float64, np.complex64, np.complex128]


class SimulatedCuda(matgrad.ModuleBackend):
    """The CuPy backend's operations with NumPy arrays on the CUDA simulator
    (as in tests/cudasim)."""

    name = "cuda-sim"
    array_modules = ("numpy",)
    operation_modules = ("matgrad_cupy._ops",)

    def launch_args(self) -> tuple[Any, ...]:
        from matgrad_cupy._ops import Device

        return (Device(np, None, chunk=16),)


def _backends() -> list[Any]:
    if SIM:
        return [pytest.param(SimulatedCuda(), id="cuda-sim")]
    available = {b.name for b in matgrad.list_backends() if b.available}
    return [pytest.param(name, id=name,
                         marks=[] if name in available else [pytest.mark.skip(reason=f"{name}: "
                                                                               "unavailable")])
            for name in ("numpy", "numba", "dask")]


BACKENDS = _backends()


def _parts(A: Any, x: Any, order: int, backend: Any) -> list[np.ndarray]:
    out = matgrad.charpoly_deriv(A, x, order=order, return_value=True, backend=backend)
    assert isinstance(out, tuple) and len(out) == order + 1
    return [np.asarray(r) for r in out]


def _random(n: int, dtype: Any, rng: np.random.Generator) -> np.ndarray:
    A = rng.standard_normal((n, n))
    if np.dtype(dtype).kind == "c":
        A = A + 1j * rng.standard_normal((n, n))
    return A.astype(dtype)


# ------------------------------------------------------------- accuracy
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_random_matrices_against_exact(backend: Any, dtype: Any) -> None:
    """p, p′, p″, p‴ within the backward-stability bound at ordinary points
    and at (rounded) eigenvalues, each order scored on its own."""
    rng = np.random.default_rng(20)
    for n in (2, 3, 6):
        A = _random(n, dtype, rng)
        lam = np.linalg.eigvals(A.astype(np.complex128))
        x = rng.standard_normal(3)
        x = np.append(x, lam[0] if np.dtype(dtype).kind == "c" else lam.real[0]).astype(dtype)
        parts = _parts(A, x, 3, backend)
        for r in parts:
            assert r.dtype == dtype and r.shape == x.shape
        for k in range(len(x)):
            score = ref.charpoly_derivs_error_ratio([r[k] for r in parts], A, x[k])
            assert score.ratio <= 1, (n, k, score)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_diagonal_and_triangular_eigenvalues_exact(backend: Any, dtype: Any) -> None:
    """Integer eigenvalues, simple and multiple: every derivative is an
    integer, computed exactly (products of 1×1 blocks after balancing)."""
    d = [1.0, 2.0, 2.0, 5.0, 2.0]
    T = np.diag(d) + np.triu(np.arange(1.0, 26.0).reshape(5, 5) % 3, 1)
    x = np.array([1.0, 2.0, 5.0, 0.0, -1.0])
    for A in (np.diag(d), T, T.T):
        parts = _parts(A.astype(dtype), x.astype(dtype), 6, backend)
        for k, xv in enumerate(x):
            # the Taylor coefficients of Π(x + t − d_i), times m!
            poly = [Fraction(1)]
            for di in d:
                c = Fraction(xv) - Fraction(di)
                poly = [c * a + (poly[j - 1] if j else 0) for j, a in enumerate([*poly, 0])]
            for m in range(7):
                want = poly[m] * math.factorial(m) if m < len(poly) else 0
                assert parts[m][k] == float(want), (m, xv, parts[m][k], want)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_multiple_eigenvalues(backend: Any, dtype: Any) -> None:
    """``P·diag(2, 2, 2, 3, −1)·P⁻¹`` with a unimodular integer P: an exact
    integer matrix with a triple eigenvalue.  At x = 2 p, p′ and p″ vanish
    exactly; the results are scored against the exact values of the input."""
    one = np.ones((5, 5), dtype=np.int64)
    U, L = np.triu(one), np.tril(one)  # unimodular, with integer inverses:
    Ui = np.eye(5, dtype=np.int64) - np.eye(5, k=1, dtype=np.int64)
    Li = np.eye(5, dtype=np.int64) - np.eye(5, k=-1, dtype=np.int64)
    assert (U @ Ui == np.eye(5)).all() and (L @ Li == np.eye(5)).all()
    D = np.diag(np.array([2, 2, 2, 3, -1], dtype=np.int64))
    A = (U @ L @ D @ Li @ Ui).astype(np.float64)  # exact integers
    x = np.array([2.0, 3.0, -1.0, 2.5]).astype(dtype)
    parts = _parts(A.astype(dtype), x, 3, backend)
    for k in range(len(x)):
        score = ref.charpoly_derivs_error_ratio([r[k] for r in parts], A.astype(dtype), x[k])
        assert score.ratio <= 1, (k, score)
    exact = ref.exact_charpoly_derivs(A, 2.0, 3)
    assert exact[:3] == [0, 0, 0] and exact[3] == -18  # 3!·(2 − 3)(2 + 1)


def _companion(roots: list[int]) -> tuple[np.ndarray, list[Fraction]]:
    """The companion matrix of ``Π(x − r)`` (integer coefficients, exact)
    and the coefficients, lowest degree first."""
    coef = [Fraction(1)]
    for r in roots:
        coef = [(coef[j - 1] if j else 0) - r * (coef[j] if j < len(coef) else 0)
                for j in range(len(coef) + 1)]
    n = len(roots)
    C = np.eye(n, k=-1)
    C[:, -1] = [-float(c) for c in coef[:n]]
    return C, coef


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_companion_known_polynomials(backend: Any, dtype: Any) -> None:
    """Companion matrices of ``Π(x − r)``: p″ of the known polynomial, at its
    roots and between them, within 8·n·eps of Σ|k(k−1)c_k x^(k−2)| (the
    Horner bound of p and p′ in tests/test_charpoly_graded.py)."""
    eps = Fraction(float(np.finfo(dtype).eps))
    for roots in ([1, 2, 3, 4], [-2, -1, 1, 1, 3, 4], [1] * 5):
        C, coef = _companion(roots)
        n = len(roots)
        x = np.array([1.0, 2.5, 3.0, -2.0, 0.0], dtype=dtype)
        d2p = _parts(C.astype(dtype), x, 2, backend)[2]
        for k, xv in enumerate(x.real):
            X = Fraction(float(xv))
            terms = [j * (j - 1) * c * X ** (j - 2) for j, c in enumerate(coef) if j >= 2]
            want, scale = sum(terms, Fraction(0)), sum((abs(t) for t in terms), Fraction(0))
            got = complex(d2p[k])
            assert got.imag == 0
            assert abs(Fraction(got.real) - want) <= 8 * n * eps * scale, (roots, xv, got, want)


def test_textbook_formula_bound() -> None:
    """docs/numerics.md §4: against the textbook formula through LU in the
    same precision, ``p″ = p·(tr(M⁻¹)² − tr(M⁻²))``, the error of p″ is at
    most 128 times the textbook's (floor ``eps·|p″|``) on unscaled and
    diagonally similar random matrices (measured worst 58 over 1200)."""
    rng = np.random.default_rng(44)
    eps = float(np.finfo(np.float64).eps)
    ratios = []
    for trial in range(40):
        n = int(rng.choice([3, 5, 8, 12]))
        A = rng.standard_normal((n, n))
        if trial % 2:
            d = np.exp2(rng.integers(-30, 30, size=n))
            A = d[:, None] * A / d[None, :]
        x = float(rng.standard_normal() * np.abs(A).max())
        M = x * np.eye(n) - A
        Mi = np.linalg.inv(M)
        t1 = np.trace(Mi)
        textbook = np.linalg.det(M) * (t1 * t1 - np.trace(Mi @ Mi))
        got = matgrad.charpoly_deriv(A, x, order=2, backend="numpy")
        exact = ref.exact_charpoly_derivs(A, x, 2)[2]
        err = abs(mpmath.mpf(float(got)) - exact)
        err_tb = abs(mpmath.mpf(float(textbook)) - exact)
        ratios.append(float(err / max(err_tb, eps * abs(exact))))
    assert max(ratios) <= 128, max(ratios)
    assert float(np.median(ratios)) <= 2, np.median(ratios)


# --------------------------------------------------- bits, batches, shapes
@pytest.mark.parametrize("backend", BACKENDS)
def test_return_value_parts_are_the_separate_calls(backend: Any) -> None:
    """``order=k, return_value=True`` gives k + 1 arrays, each bit-identical
    to its separate call (``charpoly``, ``charpoly_deriv(order=m)``), with
    x broadcast against a batch of matrices."""
    rng = np.random.default_rng(21)
    A = rng.standard_normal((2, 1, 5, 5))
    x = np.concatenate([rng.standard_normal(3), [np.inf]])  # (4,): broadcast to (2, 4)
    for order in (0, 1, 2, 4, 7):
        parts = _parts(A, x, order, backend)
        assert [r.shape for r in parts] == [(2, 4)] * (order + 1)
        alone = [np.asarray(matgrad.charpoly(A, x, backend=backend))] + [
            np.asarray(matgrad.charpoly_deriv(A, x, order=m, backend=backend))
            for m in range(1, order + 1)]
        for m, (a, b) in enumerate(zip(parts, alone, strict=True)):
            np.testing.assert_array_equal(a, b, err_msg=f"order {order}, part {m}")
    d = np.asarray(matgrad.charpoly_deriv(A, x, backend=backend))
    np.testing.assert_array_equal(d, np.asarray(matgrad.charpoly_deriv(A, x, order=1,
                                                                       backend=backend)))
    p = np.asarray(matgrad.charpoly_deriv(A, x, order=0, backend=backend))
    np.testing.assert_array_equal(p, np.asarray(matgrad.charpoly(A, x, backend=backend)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_nan_slot_stays_in_its_slot(backend: Any) -> None:
    """A NaN or inf entry makes its own slot NaN for the orders below n and
    leaves the neighbours' bits alone; orders ≥ n are the constants n!, 0
    whatever the matrix (the leading coefficient of p is 1)."""
    rng = np.random.default_rng(22)
    A = rng.standard_normal((4, 1, 3, 3))
    x = rng.standard_normal((4, 5))
    clean = _parts(A, x, 4, backend)
    B = A.copy()
    B[1, 0, 0, 2] = np.nan
    B[3, 0, 2, 2] = np.inf
    got = _parts(B, x, 4, backend)
    for m in range(5):
        np.testing.assert_array_equal(got[m][[0, 2]], clean[m][[0, 2]])
    for m in range(3):
        assert np.isnan(got[m][[1, 3]]).all(), m
    for b in range(4):  # each slot alone: the same bits
        alone = _parts(B[b, 0], x[b], 4, backend)
        for m in range(5):
            np.testing.assert_array_equal(got[m][b], alone[m], err_msg=f"slot {b}, order {m}")
    np.testing.assert_array_equal(got[3], 6.0)
    np.testing.assert_array_equal(got[4], 0.0)
    # a NaN point: NaN below n, the constants from n on
    parts = _parts(A[0, 0], np.array([np.nan, 0.5]), 3, backend)
    assert all(np.isnan(r[0]) for r in parts[:3])
    assert parts[3][0] == 6.0


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_orders_at_and_beyond_n(backend: Any, dtype: Any) -> None:
    """p⁽ⁿ⁾ = n! and every higher order 0, exactly, for n = 1, 2, 4 (n = 0:
    p = 1, every derivative 0); a large order is right, not refused."""
    rng = np.random.default_rng(23)
    for n in (0, 1, 2, 4):
        A = _random(n, dtype, rng)
        x = np.array([0.5, -3.0, np.inf], dtype=dtype)
        parts = _parts(A, x, n + 3, backend)
        if n == 0:
            np.testing.assert_array_equal(parts[0], 1)
        for m in range(max(n, 1), n + 4):
            np.testing.assert_array_equal(parts[m], math.factorial(n) if m == n else 0)
            assert parts[m].dtype == dtype
        big = np.asarray(matgrad.charpoly_deriv(A, x, order=MAX_ORDER, backend=backend))
        np.testing.assert_array_equal(big, 0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_high_order_below_n(backend: Any) -> None:
    """Every order of an 11×11 matrix, from 0 to n: within the bound."""
    rng = np.random.default_rng(24)
    A = rng.standard_normal((11, 11))
    x = np.array([0.3, -1.7])
    parts = _parts(A, x, 11, backend)
    for k in range(2):
        score = ref.charpoly_derivs_error_ratio([r[k] for r in parts], A, x[k])
        assert score.ratio <= 1, score
    assert parts[11][0] == math.factorial(11)


@pytest.mark.parametrize("backend", BACKENDS)
def test_infinite_points_higher_orders(backend: Any) -> None:
    """``p⁽ᵐ⁾(±∞) = (±1)ⁿ⁻ᵐ·∞`` for m < n, the limit of the leading term
    ``n!/(n−m)!·xⁿ⁻ᵐ``; complex points on an axis at infinity likewise."""
    A = np.random.default_rng(25).standard_normal((4, 4))
    parts = _parts(A, np.array([np.inf, -np.inf]), 4, backend)
    np.testing.assert_array_equal(parts[2], [np.inf, np.inf])
    np.testing.assert_array_equal(parts[3], [np.inf, -np.inf])
    np.testing.assert_array_equal(parts[4], [24.0, 24.0])
    Z = (A + 0j)[:3, :3]
    parts = _parts(Z, np.array([complex(0, np.inf)]), 2, backend)
    np.testing.assert_array_equal(parts[2], [complex(0, np.inf)])  # 6·(i∞)


def test_far_points_power_rule() -> None:
    """``|x| > 2⁸⁵⁰·max|A|``: ``p⁽ᵐ⁾ = n!/(n−m)!·xⁿ⁻ᵐ`` to rounding, and
    overflowing only where that does (n = 6 at 1e300: p″ = 30e1200 is inf,
    p⁽⁵⁾ = 720e300 finite)."""
    A = np.random.default_rng(26).standard_normal((6, 6))
    parts = _parts(A, np.array([1e300, -1e300]), 5, "numpy")
    assert np.isposinf(parts[2]).all() and np.isposinf(parts[4]).all()
    np.testing.assert_array_equal(parts[3], [np.inf, -np.inf])
    np.testing.assert_allclose(parts[5], [720e300, -720e300], rtol=1e-15)
    tiny = _parts(A * 1e-300, np.array([1.0, -2.0]), 5, "numpy")  # far from a tiny matrix
    for m in range(6):
        want = [math.factorial(6) / math.factorial(6 - m) * v ** (6 - m) for v in (1.0, -2.0)]
        np.testing.assert_allclose(tiny[m], want, rtol=1e-15)


# ----------------------------------------------------------------- errors
@pytest.mark.parametrize("bad", [-1, -7])
def test_negative_order_is_a_value_error(bad: int) -> None:
    with pytest.raises(ValueError, match="order must be >= 0"):
        matgrad.charpoly_deriv(np.eye(2), 0.5, order=bad)


@pytest.mark.parametrize("bad", [2.0, 1.5, True, False, np.bool_(True), "2", None,
                                 np.array(2), [2]])
def test_order_must_be_an_int(bad: Any) -> None:
    with pytest.raises(TypeError, match="order must be an int"):
        matgrad.charpoly_deriv(np.eye(2), 0.5, order=bad)


def test_order_above_maximum_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=f"maximum {MAX_ORDER}"):
        matgrad.charpoly_deriv(np.eye(2), 0.5, order=MAX_ORDER + 1)
    p = matgrad.charpoly_deriv(np.eye(2), 0.5, order=np.int64(2))
    assert p == 2.0


# ------------------------------------------ backends without the method
class _OnlyRequired(matgrad.Backend):
    """A third-party backend implementing only the required methods."""

    name = "mgtest-only-required"
    array_modules = ("numpy",)

    def __init__(self) -> None:
        self._np = matgrad.load_backend("numpy")

    def frobenius_grad(self, X: np.ndarray) -> Any:
        return self._np.frobenius_grad(X)

    def bilinear_grad(self, x: np.ndarray, y: np.ndarray) -> Any:
        return self._np.bilinear_grad(x, y)

    def det_grad(self, A: np.ndarray) -> Any:
        return self._np.det_grad(A)

    def logdet_grad(self, A: np.ndarray) -> Any:
        return self._np.logdet_grad(A)

    def charpoly_deriv(self, A: np.ndarray, x: np.ndarray) -> Any:
        return self._np.charpoly_deriv(A, x)


def test_backend_without_the_method_gets_the_host_default() -> None:
    """p and p′ from the backend's own charpoly_deriv, the higher orders from
    the host recurrence: the NumPy backend's bits here."""
    b = _OnlyRequired()
    A = np.random.default_rng(27).standard_normal((3, 1, 4, 4))
    x = np.linspace(-1, 1, 5)
    got = _parts(A, x, 3, b)
    want = _parts(A, x, 3, "numpy")
    for a, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, w)


class _WrongCount(_OnlyRequired):
    name = "mgtest-wrong-count"

    def charpoly_derivs(self, A: np.ndarray, x: np.ndarray, order: int) -> Any:
        p, dp = self._np.charpoly_deriv(A, x)
        return p, dp, dp.copy()[..., ::-1].copy()  # three parts whatever the order


def test_backend_returning_the_wrong_number_of_parts_is_an_error() -> None:
    with pytest.raises(matgrad.BackendResultError, match="tuple of length 3"):
        matgrad.charpoly_deriv(np.eye(5), 0.5, order=4, backend=_WrongCount())


# ------------------------------------------------------------------ Dask
def test_dask_arrays_every_order() -> None:
    """Dask input: one graph for all orders, bit-identical to the separate
    Dask calls and within rounding of the NumPy backend."""
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(28)
    A = rng.standard_normal((4, 1, 5, 5))
    x = rng.standard_normal((4, 6))
    Ad = da.from_array(A, chunks=(2, 1, 5, 5))
    xd = da.from_array(x, chunks=(2, 3))
    lazy = matgrad.charpoly_deriv(Ad, xd, order=3, return_value=True)
    assert len(lazy) == 4 and all(isinstance(r, da.Array) for r in lazy)
    got = [np.asarray(r.compute()) for r in lazy]
    for m in range(4):
        alone = (matgrad.charpoly(Ad, xd) if m == 0
                 else matgrad.charpoly_deriv(Ad, xd, order=m)).compute()
        np.testing.assert_array_equal(got[m], alone)
    want = _parts(A, x, 3, "numpy")
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-11, atol=1e-11)


# --------------------------------------------------------- CUDA simulator
@pytest.mark.skipif(SIM, reason="this is the run on the simulator")
def test_on_cuda_simulator() -> None:
    """Every ``cuda-sim`` case above, in a subprocess with
    ``NUMBA_ENABLE_CUDASIM=1``."""
    pytest.importorskip("numba")
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    env.pop("MATGRAD_BACKEND", None)
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
         "-W", "ignore::RuntimeWarning", "-k", "cuda-sim", str(Path(__file__).relative_to(ROOT))],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200,
    )
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
    last = r.stdout.strip().splitlines()[-1]
    assert " passed" in last and "skipped" not in last and "deselected" in last, last


def test_numba_lu_route_gets_higher_orders() -> None:
    """Numba computes p and p′ of a call with at most two points on n ≥ 64 by
    one LU per point; the higher orders of those matrices come from their
    Hessenberg forms: p, p′ keep the LU route's bits, p″ and p‴ agree with
    the NumPy backend to rounding."""
    if SIM or not any(b.name == "numba" and b.available for b in matgrad.list_backends()):
        pytest.skip("needs the Numba backend")
    rng = np.random.default_rng(29)
    A = np.eye(70) + rng.standard_normal((2, 1, 70, 70)) / 10
    x = np.array([[0.7], [1.3]])
    got = _parts(A, x, 3, "numba")
    p, dp = matgrad.charpoly_deriv(A, x, return_value=True, backend="numba")
    np.testing.assert_array_equal(got[0], p)
    np.testing.assert_array_equal(got[1], dp)
    want = _parts(A, x, 3, "numpy")
    for g, w in zip(got[2:], want[2:], strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-12)
