"""``charpoly`` on graded, triangular, companion and shift matrices, and at
infinite points, on every backend (the CuPy backend's kernels on Numba's CUDA
simulator, in a subprocess: the simulator is chosen when Numba is imported).

References are exact: products and polynomials in :class:`fractions.Fraction`
arithmetic, or :func:`matgrad._reference.exact_charpoly` (fraction-free
elimination, rounded to 60 digits) for dense integer matrices.  Power-of-two
diagonal similarities ``D A D⁻¹`` are formed exactly, so their reference is
that of ``A``.
"""

from __future__ import annotations

import functools
import math
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import matgrad
from matgrad import _reference as ref
from matgrad.kernels import charpoly as host

ROOT = Path(__file__).parent.parent
SIM = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
EPS = float(np.finfo(np.float64).eps)
TINY_SUB = 2.0**-1074  # the smallest subnormal: a value below half of it rounds to 0


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
# The simulator runs each kernel thread as Python code: O(n²) per point, so
# it gets the smaller sizes.
BIG = (128,) if SIM else (128, 300, 500)
# n ≥ 64 differs from n = 48 only on the host (LAPACK gehrd), which the
# simulated backend shares with the NumPy one
GRADED = (3, 4, 8, 48) if SIM else (3, 4, 8, 48, 64, 65)
SHIFT = (2, 51, 110, 128) if SIM else (2, 51, 110, 127, 300, 500)


def _run(A: np.ndarray, x: Any, backend: Any) -> tuple[np.ndarray, np.ndarray]:
    p, dp = matgrad.charpoly_deriv(A, x, return_value=True, backend=backend)
    return np.asarray(p), np.asarray(dp)


def _run2(A: np.ndarray, x: Any, backend: Any) -> np.ndarray:
    """``p″``, checked to come with the bits of ``p`` and ``p′`` of :func:`_run`."""
    p, dp, d2p = matgrad.charpoly_deriv(A, x, order=2, return_value=True, backend=backend)
    p1, dp1 = _run(A, x, backend)
    np.testing.assert_array_equal(np.asarray(p), p1)
    np.testing.assert_array_equal(np.asarray(dp), dp1)
    return np.asarray(d2p)


def _check(got: float, exact: Fraction, allowed: Any) -> None:
    """``got`` within ``allowed`` (+ the subnormal spacing) of ``exact``; ±inf
    exactly where ``exact`` is beyond the largest float; 0 only where it
    underflows, with its sign (+0 for an exact 0)."""
    big = Fraction(float(np.finfo(np.float64).max))
    if abs(exact) > big * (1 + Fraction(EPS)):
        assert got == (math.inf if exact > 0 else -math.inf), (got, exact > 0)
        return
    assert math.isfinite(got), (got, float(exact))
    err = abs(Fraction(got) - exact)
    assert err <= Fraction(allowed) + Fraction(TINY_SUB), (got, float(exact), float(allowed))
    if got == 0 and exact != 0:
        assert abs(exact) < Fraction(TINY_SUB), (got, float(exact))
        assert math.copysign(1.0, got) == (1.0 if exact > 0 else -1.0), (got, float(exact))
    if exact == 0:
        assert got == 0 and math.copysign(1.0, got) == 1.0, got


def _poly(coeffs: dict[int, Fraction], x: Fraction) -> tuple[Fraction, Fraction, Fraction,
                                                             Fraction]:
    """``(p, p′, Σ|c_k x^k|, Σ|k c_k x^(k−1)|)`` of ``p = Σ c_k x^k``."""
    p = sum((c * x**k for k, c in coeffs.items()), Fraction(0))
    dp = sum((k * c * x ** (k - 1) for k, c in coeffs.items() if k), Fraction(0))
    sp = sum((abs(c * x**k) for k, c in coeffs.items()), Fraction(0))
    sdp = sum((abs(k * c * x ** (k - 1)) for k, c in coeffs.items() if k), Fraction(0))
    return p, dp, sp, sdp


def _poly2(coeffs: dict[int, Fraction], x: Fraction) -> tuple[Fraction, Fraction]:
    """``(p″, Σ|k(k−1) c_k x^(k−2)|)`` of ``p = Σ c_k x^k``."""
    terms = [k * (k - 1) * c * x ** (k - 2) for k, c in coeffs.items() if k >= 2]
    return sum(terms, Fraction(0)), sum((abs(t) for t in terms), Fraction(0))


# ------------------------------------------------------------ triangular, graded
@pytest.mark.parametrize("backend", BACKENDS)
def test_lower_triangular_example(backend: Any) -> None:
    """The reported example: L with a 1e150 corner gave [0, -3e150, inf]."""
    L = np.diag([1.0, 2.0, 1e150]) + np.tril(np.ones((3, 3)), -1)
    x = np.array([0.0, 3.0, 1e150])
    p, dp = _run(L, x, backend)
    np.testing.assert_array_equal(p, [-2e150, -2e150, 0.0])
    pt, dpt = _run(L.T, x, backend)
    np.testing.assert_array_equal(p, pt)
    np.testing.assert_array_equal(dp, dpt)
    d = [Fraction(1), Fraction(2), Fraction(1e150)]
    for k, xv in enumerate(x):
        X = Fraction(float(xv))
        terms = [math.prod((X - d[j] for j in range(3) if j != i), start=Fraction(1))
                 for i in range(3)]
        _check(float(dp[k]), sum(terms, Fraction(0)),
               6 * 3 * Fraction(EPS) * sum((abs(t) for t in terms), Fraction(0)))


def _triangular(n: int, lower: bool, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    d = rng.choice([-1.0, 1.0], n) * np.ldexp(1.0 + rng.integers(0, 8, n) / 8,
                                                rng.integers(-300, 301, n))
    T = np.triu(rng.standard_normal((n, n)), 1)
    return np.diag(d) + (T.T if lower else T)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("lower", [True, False], ids=["lower", "upper"])
@pytest.mark.parametrize("n", [3, 8, 48, 65])
def test_triangular_graded(backend: Any, lower: bool, n: int) -> None:
    """Eigenvalues 2^±300 apart on the diagonal: p = Π(x − d_i) to n·eps
    relative, p′ to n·eps of Σ_i Π_{j≠i}|x − d_j|; D T D⁻¹ (spread 2^±200)
    gives the very same bits (the isolating permutation depends on the zero
    pattern only, and the diagonal is unchanged by the similarity)."""
    T = _triangular(n, lower, seed=n + 100 * lower)
    d = np.diag(T)
    x = np.array([0.0, d[0], 3.0 * d[1], -0.5, d[-1] * 0.75])
    p, dp = _run(T, x, backend)
    e = np.random.default_rng(n).integers(-200, 201, n)
    pD, dpD = _run(T * np.ldexp(1.0, e[:, None] - e[None, :]), x, backend)
    np.testing.assert_array_equal(p, pD)
    np.testing.assert_array_equal(dp, dpD)
    D = [Fraction(float(v)) for v in d]
    for k, xv in enumerate(x):
        X = Fraction(float(xv))
        exact = math.prod((X - v for v in D), start=Fraction(1))
        _check(float(p[k]), exact, 2 * n * Fraction(EPS) * abs(exact))
        terms = [math.prod((X - D[j] for j in range(n) if j != i), start=Fraction(1))
                 for i in range(n)]
        scale = sum((abs(t) for t in terms), Fraction(0))
        _check(float(dp[k]), sum(terms, Fraction(0)), 4 * n * Fraction(EPS) * scale)
    if n > 8:
        return  # p″ below: O(n²) exact products per point
    d2p = _run2(T, x, backend)
    np.testing.assert_array_equal(d2p, _run2(T * np.ldexp(1.0, e[:, None] - e[None, :]), x,
                                             backend))
    for k, xv in enumerate(x):
        X = Fraction(float(xv))
        # p″ = Σ_{i≠j} Π_{l∉{i,j}} (x − d_l)
        terms = [math.prod((X - D[m] for m in range(n) if m not in (i, j)), start=Fraction(1))
                 for i in range(n) for j in range(n) if i != j]
        scale = sum((abs(t) for t in terms), Fraction(0))
        _check(float(d2p[k]), sum(terms, Fraction(0)), 4 * n * Fraction(EPS) * scale)


# ------------------------------------------------- dense, graded similarities
@functools.cache
def _integer_matrix(n: int) -> np.ndarray:
    """Dense random integers in [−4, 4]: exact in float64, well scaled, and
    cheap exact references; every test point is ≥ 0.1 from its spectrum."""
    A = np.random.default_rng(1000 + n).integers(-4, 5, (n, n)).astype(float)
    assert min(abs(x - lam) for x in POINTS for lam in np.linalg.eigvals(A)) >= 0.1
    return A


POINTS = (0.375, -1.25, 2.5)


@functools.cache
def _exact_points(n: int) -> tuple[tuple[Any, Any], ...]:
    A = _integer_matrix(n)
    return tuple(ref.exact_charpoly(A, x) for x in POINTS)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("spread", [10, 200])
@pytest.mark.parametrize("n", GRADED)
def test_graded_similarity(backend: Any, spread: int, n: int) -> None:
    """``D A D⁻¹`` with exponents of D in [−spread, spread]: before the
    balancing, 2^±10 already cost 1e-4 relative at n = 48–65, and 2^±200 made
    a 4×4 return −1.3e84 for 9.47.  Now both A and D A D⁻¹ are within
    4·n²·eps of the exact p and p′ (measured: at most 1.1e-13 at n = 65,
    where 4·n²·eps = 3.8e-12; the balanced matrices usually coincide), on
    every path: the batched Householder reduction (n < 64), LAPACK gehrd
    (n ≥ 64) and, for Numba, one LU per point (a single point, n ≥ 64)."""
    A = _integer_matrix(n)
    exact = _exact_points(n)
    e = np.random.default_rng(spread * 1000 + n).integers(-spread, spread + 1, n)
    B = A * np.ldexp(1.0, e[:, None] - e[None, :])
    tol = 4 * n * n * EPS
    for M in (A, B):
        p, dp = _run(M, np.array(POINTS), backend)
        p1, dp1 = _run(M, POINTS[0], backend)  # one point: Numba's LU route for n ≥ 64
        got = [(p[k], dp[k]) for k in range(len(POINTS))] + [(p1, dp1)]
        for (gp, gdp), (wp, wdp) in zip(got, [*exact, exact[0]], strict=True):
            assert abs(float(gp) - float(wp)) <= tol * abs(float(wp)), (n, gp, wp)
            assert abs(float(gdp) - float(wdp)) <= tol * abs(float(wdp)), (n, gdp, wdp)


@pytest.mark.parametrize("backend", BACKENDS)
def test_graded_batch_slots_are_their_own(backend: Any) -> None:
    """Balancing is decided per matrix: a graded matrix's result is
    bit-identical alone and beside balanced and unbalanced neighbours."""
    rng = np.random.default_rng(3)
    n = 6
    As = rng.standard_normal((5, n, n))
    e = rng.integers(-150, 151, (5, n))
    As[1] *= np.ldexp(1.0, e[1][:, None] - e[1][None, :])
    As[3] = np.tril(As[3]) * np.ldexp(1.0, e[3][:, None] - e[3][None, :])
    x = rng.standard_normal((5, 4))
    p, dp = _run(As[:, None], x, backend)
    d2p = _run2(As[:, None], x, backend)
    for b in range(5):
        p1, dp1 = _run(As[b], x[b], backend)
        np.testing.assert_array_equal(p[b], p1)
        np.testing.assert_array_equal(dp[b], dp1)
        np.testing.assert_array_equal(d2p[b], _run2(As[b], x[b], backend))


# ------------------------------------------------------- companion and shift
def _companion(c: dict[int, float], n: int) -> np.ndarray:
    """The companion matrix of ``xⁿ − Σ_k c_k x^k``: ones below the diagonal,
    the coefficients in the last column."""
    A = np.eye(n, k=-1)
    for k, v in c.items():
        A[k, -1] = v
    return A


COMPANION_POINTS = (1e-3, -1e-3, 0.5, -0.9, 1.0, 1.1, -2.0, 10.0)


def _companion_coefficients(n: int, kind: str) -> dict[int, float]:
    if kind == "xn-1":
        return {0: 1.0}
    rng = np.random.default_rng(n)
    return {k: float(v) for k, v in enumerate(rng.integers(-3, 4, n)) if v}


@functools.cache
def _companion_exact(n: int, kind: str) -> list[tuple[Fraction, Fraction, Fraction, Fraction]]:
    coeffs = {k: -Fraction(v) for k, v in _companion_coefficients(n, kind).items()}
    coeffs[n] = Fraction(1)
    return [_poly(coeffs, Fraction(x)) for x in COMPANION_POINTS]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n", [8, 40, *BIG])
@pytest.mark.parametrize("kind", ["xn-1", "random"])
def test_companion(backend: Any, n: int, kind: str) -> None:
    """``p = xⁿ − Σ c_k x^k`` exactly; the error within 8·n·eps of
    ``Σ|c_k x^k|`` (Horner's bound, the scale of the backward error of the
    coefficients).  The companion of x¹²⁸ − 1 at 10⁻³ gave NaN (its first
    entries of v were rescaled into inf, times the zeros of H)."""
    c = _companion_coefficients(n, kind)
    p, dp = _run(_companion(c, n), np.array(COMPANION_POINTS), backend)
    for k, (P, DP, SP, SDP) in enumerate(_companion_exact(n, kind)):
        _check(float(p[k]), P, 8 * n * Fraction(EPS) * SP)
        _check(float(dp[k]), DP, 8 * n * Fraction(EPS) * SDP)
    # p″ exactly known too, within the same bound of Σ|k(k−1) c_k x^(k−2)|
    d2p = _run2(_companion(c, n), np.array(COMPANION_POINTS), backend)
    coeffs = {k: -Fraction(v) for k, v in c.items()}
    coeffs[n] = Fraction(1)
    for k, xv in enumerate(COMPANION_POINTS):
        D2P, SD2P = _poly2(coeffs, Fraction(xv))
        _check(float(d2p[k]), D2P, 8 * n * Fraction(EPS) * SD2P)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n", SHIFT)
@pytest.mark.parametrize("c", [1.0, 2.0**10, 2.0**-40])
def test_shift(backend: Any, n: int, c: float) -> None:
    """``c·`` the shift matrix: p = xⁿ, p′ = n·xⁿ⁻¹ (``c`` cancels), at points
    where they are normal, subnormal and below the subnormals: 0 only where
    the true value underflows, with its sign (``eye(110, k=−1)`` at 10⁻³ gave
    NaN, and an underflowed positive p′ came back −0.0)."""
    A = c * np.eye(n, k=-1)
    targets = (1e-300, 1e-310, 3e-322, 1e-330, 1e-3, 1.0, 1e100)
    pts = [1e-3, -1e-3]
    for t in targets:
        r = t ** (1.0 / n)
        pts += [r, -r]
    x = np.array(pts)
    p, dp = _run(A, x, backend)
    for k, xv in enumerate(x):
        X = Fraction(float(xv))
        _check(float(p[k]), X**n, 2 * n * Fraction(EPS) * abs(X**n))
        DP = n * X ** (n - 1)
        _check(float(dp[k]), DP, 2 * n * Fraction(EPS) * abs(DP))
    d2p = _run2(A, x, backend)
    for k, xv in enumerate(x):
        D2P = n * (n - 1) * Fraction(float(xv)) ** (n - 2)  # p″ = n(n−1)xⁿ⁻²
        _check(float(d2p[k]), D2P, 2 * n * Fraction(EPS) * abs(D2P))


@pytest.mark.parametrize("backend", BACKENDS)
def test_shift_110_example(backend: Any) -> None:
    """``eye(110, k=−1)`` at 10⁻³: p = 1e-330 and p′ = 1.1e-325 both round to
    +0.0 (the smallest subnormal is 4.9e-324)."""
    p, dp = _run(np.eye(110, k=-1), 1e-3, backend)
    assert p == 0 and dp == 0
    assert not np.signbit(p) and not np.signbit(dp)
    p, dp = _run(np.eye(111, k=-1), -1e-3, backend)
    assert p == 0 and np.signbit(p)  # (−10⁻³)¹¹¹ < 0
    assert dp == 0 and not np.signbit(dp)


# -------------------------------------------------------- infinite points
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 65])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_infinite_points(backend: Any, n: int, dtype: Any) -> None:
    """p(±∞) = (±∞)ⁿ and p′(±∞) = n·(±∞)ⁿ⁻¹: the sign of the leading term
    (n = 1: p′ = 1; n = 0: p = 1, p′ = 0)."""
    A = np.random.default_rng(n).standard_normal((n, n)).astype(dtype)
    x = np.array([np.inf, -np.inf], dtype=dtype)
    p, dp = _run(A, x, backend)
    assert p.dtype == dtype
    if n == 0:
        np.testing.assert_array_equal(p, [1, 1])
        np.testing.assert_array_equal(dp, [0, 0])
        return
    np.testing.assert_array_equal(p, [np.inf, np.inf if n % 2 == 0 else -np.inf])
    if n == 1:
        np.testing.assert_array_equal(dp, [1, 1])
    else:
        np.testing.assert_array_equal(dp, [np.inf, np.inf if n % 2 == 1 else -np.inf])
    # p″(±∞) = n(n−1)·(±∞)ⁿ⁻² (n ≥ 3), the constant 2 for n = 2, 0 for n = 1
    d2p = _run2(A, x, backend)
    assert d2p.dtype == dtype
    if n <= 2:
        np.testing.assert_array_equal(d2p, [n * (n - 1)] * 2)
    else:
        np.testing.assert_array_equal(d2p, [np.inf, np.inf if n % 2 == 0 else -np.inf])


@pytest.mark.parametrize("backend", BACKENDS)
def test_infinite_points_complex_and_nonfinite(backend: Any) -> None:
    """On an axis at infinity of a complex point, x = u·∞ with u ∈ {±1, ±i}:
    p = uⁿ·∞, p′ = n·uⁿ⁻¹·∞ (a zero part is +0).  A matrix with a NaN entry
    gives NaN there (its p depends on that entry)."""
    A = np.random.default_rng(0).standard_normal((3, 3)) + 0j
    x = np.array([complex(0, np.inf), complex(-np.inf, 2.0)])
    p, dp = _run(A, x, backend)
    # (i∞)³ = −i∞, 3(i∞)² = −∞; (−∞)³ = −∞, 3(−∞)² = +∞
    np.testing.assert_array_equal(p, [complex(0, -np.inf), complex(-np.inf, 0)])
    np.testing.assert_array_equal(dp, [complex(-np.inf, 0), complex(np.inf, 0)])
    # p″ = 6x: 6(i∞) = i∞, 6(−∞) = −∞
    np.testing.assert_array_equal(_run2(A, x, backend),
                                  [complex(0, np.inf), complex(-np.inf, 0)])
    B = np.eye(3)
    B[1, 2] = np.nan
    p, dp = _run(B, np.array([np.inf, 1.0]), backend)
    assert np.isnan(p[0]) and np.isnan(dp[0])


# --------------------------------------------------------- the balancing itself
def _balancers() -> list[Any]:
    out = [pytest.param(host.balance_batched, id="numpy")]
    if not SIM and any(b.name == "numba" and b.available for b in matgrad.list_backends()):
        from matgrad_numba import _charpoly

        out.append(pytest.param(_charpoly.balance_batch, id="numba"))
    return out


@pytest.mark.parametrize("balance", _balancers())
@pytest.mark.parametrize("n", [3, 8, 40])
def test_balancing_is_an_exact_similarity_and_a_fixed_point(balance: Any, n: int) -> None:
    """Balancing ``G = E W E⁻¹`` (power-of-two E, spread 2^±200) and ``W``
    gives matrices with the same permutation, the same diagonal, and entries
    whose ratios are ``2^(g_j − g_i)`` for one integer vector g (an exact
    diagonal similarity of each other); balancing again changes nothing."""
    rng = np.random.default_rng(n)
    W = rng.standard_normal((3, n, n))
    W[1] = np.triu(W[1], -1)  # Hessenberg: scaled only, never permuted
    W[2, :, 0] = 0.0  # column 0 isolates an eigenvalue: permuted
    W[2, 0, 0] = 3.0
    e = rng.integers(-200, 201, (3, n))
    G = W * np.ldexp(1.0, e[:, :, None] - e[:, None, :])
    active = np.ones(3, dtype=bool)
    permute = ~host.is_hessenberg(W)
    out, ref_out = G.copy(), W.copy()
    balance(out, active, permute)
    balance(ref_out, active, permute)
    again = out.copy()
    balance(again, active, permute)
    np.testing.assert_array_equal(again, out)
    for b in range(3):
        np.testing.assert_array_equal(np.diag(out[b]), np.diag(ref_out[b]))
        nz = out[b] != 0
        np.testing.assert_array_equal(nz, ref_out[b] != 0)
        (mo, eo), (mr, er) = np.frexp(out[b]), np.frexp(ref_out[b])
        np.testing.assert_array_equal(mo, mr)  # ratios are powers of two
        R = np.where(nz, eo - er, 0)
        g = R[0] if b != 1 else np.concatenate([[0.0], np.cumsum(-np.diag(R, -1))])
        want = g[None, :] - g[:, None]
        np.testing.assert_array_equal(R[nz], want[nz])


@pytest.mark.skipif(SIM, reason="this is the run on the simulator")
def test_on_cuda_simulator() -> None:
    """Every ``cuda-sim`` case above, in a subprocess with
    ``NUMBA_ENABLE_CUDASIM=1``: the CuPy backend's very kernels
    (:func:`matgrad.kernels.scalar.hyman_point` compiled for CUDA) and its
    orchestration, on NumPy arrays."""
    pytest.importorskip("numba")
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    env.pop("MATGRAD_BACKEND", None)
    r = subprocess.run(
        # the simulator runs kernels as NumPy scalar code, which warns on the
        # IEEE overflows the algorithms rely on (a GPU does not warn)
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
         "-W", "ignore::RuntimeWarning", "-k", "cuda-sim", str(Path(__file__).relative_to(ROOT))],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200,
    )
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
    last = r.stdout.strip().splitlines()[-1]
    assert " passed" in last and "skipped" not in last and "deselected" in last, last


@pytest.mark.skipif(len(_balancers()) < 2, reason="needs the Numba backend")
def test_numba_balancing_permutes_as_numpy() -> None:
    """The Numba kernel follows the same rules: the same isolating
    permutation and diagonal order (the scalings may differ in rounding of
    the norms only)."""
    from matgrad_numba import _charpoly

    rng = np.random.default_rng(11)
    n = 9
    W = rng.standard_normal((4, n, n)) * np.ldexp(1.0, rng.integers(-60, 61, (4, n, n)))
    W[0] = np.tril(W[0])
    W[1, 3:, :3] = 0.0  # block upper triangular
    W[2, :, 4] = 0.0
    W[2, 4, 4] = 5.0
    permute = ~host.is_hessenberg(W)
    a, b = W.copy(), W.copy()
    host.balance_batched(a, np.ones(4, dtype=bool), permute)
    _charpoly.balance_batch(b, np.ones(4, dtype=bool), permute)
    for k in range(4):
        np.testing.assert_array_equal(np.diag(a[k]), np.diag(b[k]))
        np.testing.assert_array_equal(a[k] != 0, b[k] != 0)
