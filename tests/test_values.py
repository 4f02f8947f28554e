"""``return_value=True``: values beside gradients, on every backend.

Values are true values (inf or 0 only where the true value over- or
underflows), checked against exact references: the determinant from exact
rational arithmetic (``matgrad._reference.exact_det_cofactor``), the norm
from mpmath at 60 digits.
"""

from __future__ import annotations

from typing import Any

import mpmath
import numpy as np
import pytest

import matgrad
from matgrad import _reference as ref


def ref_norm(X: np.ndarray) -> Any:
    """‖X‖_F of one matrix in 60-digit arithmetic."""
    with mpmath.workdps(60):
        return mpmath.sqrt(mpmath.fsum(abs(mpmath.mpmathify(complex(v))) ** 2
                                       for v in np.ravel(X)))


def ref_det(A: np.ndarray) -> Any:
    return ref.exact_det_cofactor(A)[0]


def _close(got: Any, want: Any, rtol: float) -> bool:
    with mpmath.workdps(60):
        if want == 0:
            return bool(got == 0)
        return bool(abs(mpmath.mpmathify(complex(got)) - want) <= rtol * abs(want))


def _np(x: Any) -> np.ndarray:
    return np.asarray(x)


# ------------------------------------------------------------- det
def test_det_value_random(backend: str, rng: np.random.Generator) -> None:
    for n in (1, 2, 3, 4, 6):
        for dtype, rtol in ((np.float64, 1e-12), (np.complex128, 1e-12), (np.float32, 1e-5)):
            A = rng.standard_normal((3, n, n)) + np.eye(n) * 2
            if np.dtype(dtype).kind == "c":
                A = A + 1j * rng.standard_normal((3, n, n))
            A = A.astype(dtype)
            d, C = matgrad.det_grad(A, return_value=True, backend=backend)
            d = _np(d)
            assert d.shape == (3,) and d.dtype == dtype
            np.testing.assert_array_equal(_np(C), _np(matgrad.det_grad(A, backend=backend)))
            for b in range(3):
                assert _close(d[b], ref_det(A[b]), rtol), (n, dtype, d[b], ref_det(A[b]))


@pytest.mark.parametrize("A", [
    [[1.0, 2.0], [2.0, 4.0]],
    [[0.0, 1.0], [0.0, 1.0]],
    [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]],
    [[0.0, 1.0, 2.0], [0.0, 3.0, 4.0], [0.0, 5.0, 7.0]],
    np.diag([-1.0, 0.0, 1.0, 2.0]),
    np.zeros((5, 5)),
], ids=["2x2", "zero-col-2", "3x3-rank2", "zero-col-3", "diag-4", "zeros-5"])
def test_singular_values_are_exact_zeros(backend: str, A: Any) -> None:
    A = np.asarray(A)
    d, _ = matgrad.det_grad(A, return_value=True, backend=backend)
    assert _np(d) == 0
    (s, l), _ = matgrad.logdet_grad(A, return_value=True, backend=backend)
    assert _np(s) == 0 and np.isneginf(_np(l))


def test_det_value_over_and_underflow(backend: str) -> None:
    cases = [
        (np.diag([1e200, 1e200, 1.0, 1.0, 1.0]), np.inf),  # 1e400: true overflow
        (np.diag([1e-200, 1e-200, 1.0]), 0.0),  # 1e-400: true underflow
        (np.diag([1e300, 1e-300, 3.0]), None),  # graded, exactly representable
        (np.diag([1e200, 1e200, 1e-200, 1e-200, 3.0]), None),
        (np.array([[1e300, 1e300], [1e-300, 3e-300]]), None),
    ]
    for A, expect in cases:
        d = _np(matgrad.det_grad(A, return_value=True, backend=backend)[0])
        if expect is None:
            assert np.isfinite(d) and _close(d, ref_det(A), 1e-14), (A, d)
        else:
            assert d == expect, (A, d)


def test_slogdet_value(backend: str, rng: np.random.Generator) -> None:
    A = rng.standard_normal((4, 5, 5)) + 3 * np.eye(5)
    for M in (A, A * 1e200, A * 1e-200, A + 1j * rng.standard_normal(A.shape)):
        (s, l), G = matgrad.logdet_grad(M, return_value=True, backend=backend)
        s, l = _np(s), _np(l)
        assert s.dtype == M.dtype and l.dtype == np.float64 and s.shape == l.shape == (4,)
        np.testing.assert_array_equal(_np(G), _np(matgrad.logdet_grad(M, backend=backend)))
        for b in range(4):
            with mpmath.workdps(60):
                d = ref_det(M[b])
                assert abs(l[b] - mpmath.log(abs(d))) <= 1e-12 * max(1, abs(l[b]))
                assert abs(complex(s[b]) - complex(d / abs(d))) <= 1e-12


def test_values_isolated_per_slot(backend: str, rng: np.random.Generator) -> None:
    A = rng.standard_normal((4, 4, 4))
    good = _np(matgrad.det_grad(A, return_value=True, backend=backend)[0])
    A[1, 2, 3] = np.nan
    d = _np(matgrad.det_grad(A, return_value=True, backend=backend)[0])
    assert np.isnan(d[1])
    np.testing.assert_array_equal(d[[0, 2, 3]], good[[0, 2, 3]])


# ------------------------------------------------------------- Frobenius
def test_frobenius_value(backend: str, rng: np.random.Generator) -> None:
    R = np.array([[1.0, -2.0], [2.0, 4.0]])  # ‖R‖ = 5
    for s in (1.0, 1e200, 1e-200, 1e300, 1e-300):
        norm, G = matgrad.frobenius_grad(R * s, return_value=True, backend=backend)
        assert _close(_np(norm), ref_norm(R * s), 4e-16)
        np.testing.assert_allclose(_np(G), R / 5, rtol=4e-16)
    norm = _np(matgrad.frobenius_grad(np.full((2, 2), 1e308), return_value=True,
                                      backend=backend)[0])
    assert np.isposinf(norm)  # 2e308: a true overflow
    norm = _np(matgrad.frobenius_grad(np.zeros((3, 2, 2)), return_value=True,
                                      backend=backend)[0])
    np.testing.assert_array_equal(norm, 0)
    X = (rng.standard_normal((3, 4, 5)) + 1j * rng.standard_normal((3, 4, 5))).astype(
        np.complex64)
    norm, _ = matgrad.frobenius_grad(X, return_value=True, backend=backend)
    norm = _np(norm)
    assert norm.dtype == np.float32 and norm.shape == (3,)
    for b in range(3):
        assert _close(norm[b], ref_norm(X[b]), 1e-6)


# ------------------------------------------------------------- shapes
def test_value_shapes_and_empty(backend: str) -> None:
    d, C = matgrad.det_grad(np.zeros((2, 3, 0, 0)), return_value=True, backend=backend)
    np.testing.assert_array_equal(_np(d), np.ones((2, 3)))
    assert _np(C).shape == (2, 3, 0, 0)
    (s, l), _ = matgrad.logdet_grad(np.zeros((0, 2, 2)), return_value=True, backend=backend)
    assert _np(s).shape == _np(l).shape == (0,)
    norm, _G = matgrad.frobenius_grad(np.ones((2, 3)), return_value=True, backend=backend)
    assert _np(norm).shape == () and float(_np(norm)) == pytest.approx(np.sqrt(6))


# ------------------------------------------------------------- Dask input
def test_dask_values_split_matrices(rng: np.random.Generator) -> None:
    da = pytest.importorskip("dask.array")
    A = rng.standard_normal((5, 4, 4))
    dA = da.from_array(A, chunks=(2, 2, 3))
    d, C = matgrad.det_grad(dA, return_value=True)
    assert isinstance(d, da.Array) and isinstance(C, da.Array)
    np.testing.assert_allclose(d.compute(), np.linalg.det(A), rtol=1e-12)
    (_s, l), _ = matgrad.logdet_grad(dA.astype(np.complex64), return_value=True)
    assert l.dtype == np.float32 and l.compute().dtype == np.float32
    np.testing.assert_allclose(l.compute(), np.linalg.slogdet(A)[1], rtol=1e-5)
    X = A * 1e300
    norm, _G = matgrad.frobenius_grad(da.from_array(X, chunks=(2, 2, 3)), return_value=True)
    for b in range(5):
        assert _close(norm.compute()[b], ref_norm(X[b]), 1e-15)
    norm, _ = matgrad.frobenius_grad(da.from_array(X, chunks=(2, 4, 4)), return_value=True)
    for b in range(5):
        assert _close(norm.compute()[b], ref_norm(X[b]), 1e-15)


# ------------------------------------------------------------- contract
class _Minimal(matgrad.Backend):
    """A third-party backend that implements only the five canonical ops."""

    name = "minimal"

    def frobenius_grad(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(matgrad.frobenius_grad(X, backend="numpy"))

    def bilinear_grad(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.asarray(matgrad.bilinear_grad(x, y, backend="numpy"))

    def det_grad(self, A: np.ndarray) -> np.ndarray:
        return np.asarray(matgrad.det_grad(A, backend="numpy"))

    def logdet_grad(self, A: np.ndarray) -> np.ndarray:
        return np.asarray(matgrad.logdet_grad(A, backend="numpy"))

    def charpoly_deriv(self, A: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p, dp = matgrad.charpoly_deriv(A, x, return_value=True, backend="numpy")
        return np.asarray(p), np.asarray(dp)


def test_base_class_default_is_correct() -> None:
    b = _Minimal()
    A = np.array([[1e200, 1e200], [1e-200, 3e-200]])
    d, _C = matgrad.det_grad(A, return_value=True, backend=b)
    assert _close(d, ref_det(A), 1e-15)
    (s, l), _ = matgrad.logdet_grad(A, return_value=True, backend=b)
    assert s == 1 and l == pytest.approx(np.log(2.0))
    norm, _ = matgrad.frobenius_grad(A, return_value=True, backend=b)
    assert _close(norm, ref_norm(A), 4e-16)


class _BadValues(_Minimal):
    name = "badvalues"

    def __init__(self, what: str) -> None:
        self.what = what

    def det_value_grad(self, A: np.ndarray) -> Any:
        C = self.det_grad(A)
        if self.what == "single":
            return C
        if self.what == "shape":
            return np.zeros(A.shape[0] + 1), C
        if self.what == "dtype":
            return np.zeros(A.shape[0], np.float32), C
        return C[:, 0, 0], C  # a view of C: shares memory

    def logdet_value_grad(self, A: np.ndarray) -> Any:
        G = self.logdet_grad(A)
        return np.ones(A.shape[0]), np.zeros(A.shape[0], np.complex128), G


@pytest.mark.parametrize("what,message", [
    ("single", "not the pair \\(det, C\\)"),
    ("shape", r"det = an array of shape \(3,\), expected \(2,\)"),
    ("dtype", "det = an array of dtype float32, expected float64"),
    ("alias", "det and C sharing memory"),
])
def test_bad_value_results_are_errors(what: str, message: str) -> None:
    with pytest.raises(matgrad.BackendResultError, match=message):
        matgrad.det_grad(np.ones((2, 3, 3)), return_value=True, backend=_BadValues(what))


def test_bad_logabsdet_dtype_is_an_error() -> None:
    with pytest.raises(matgrad.BackendResultError, match="logabsdet = an array of dtype"):
        matgrad.logdet_grad(np.eye(3)[None], return_value=True, backend=_BadValues("x"))


# ------------------------------------------------------------- one pass
@pytest.mark.parametrize("name", ["numpy", "numba"])
def test_builtin_backends_take_values_from_their_own_pass(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The NumPy and Numba backends override the value methods (one
    factorisation, one sum of squares): the host helpers of the base class's
    defaults are never called."""
    if name == "numba":
        pytest.importorskip("numba")
    from matgrad.kernels import values as _values

    def refuse(*args: Any) -> Any:
        raise AssertionError("the base-class default ran")

    for helper in ("det_value", "slogdet_value", "frobenius_value"):
        monkeypatch.setattr(_values, helper, refuse)
    rng = np.random.default_rng(1)
    for n in (1, 2, 3, 4, 5, 8, 70):
        A = rng.standard_normal((3, n, n))
        matgrad.det_grad(A, return_value=True, backend=name)
        matgrad.logdet_grad(A, return_value=True, backend=name)
        matgrad.frobenius_grad(A, return_value=True, backend=name)


def _graded(rng: np.random.Generator, n: int, spread: int) -> tuple[np.ndarray, Any]:
    """``(D₁ M D₂, det)``: a small-integer matrix (well conditioned) between
    power-of-two diagonals with exponents in ±spread, and its exact
    determinant ``det M·Π d``; equilibration undoes the grading."""
    M = rng.integers(-9, 10, size=(n, n)).astype(np.float64) + 10 * np.eye(n)
    e1 = rng.integers(-spread, spread + 1, n)
    e2 = rng.integers(-spread, spread + 1, n)
    A = np.ldexp(1.0, e1)[:, None] * M * np.ldexp(1.0, e2)[None, :]
    with mpmath.workdps(60):
        return A, ref_det(M) * mpmath.mpf(2) ** int(e1.sum() + e2.sum())


@pytest.mark.parametrize("n", [2, 3, 4, 5, 9, 50, 66])
def test_values_on_every_path(backend: str, n: int) -> None:
    """Closed forms in and out of their safe range (entries beyond 2^±250),
    Gauss-Jordan, LAPACK, exponents beyond ±1000 (the host finish of the
    Numba kernels): the value is the exact determinant to a few ulp and
    ``log|det|`` matches it; the gradient is the plain call's, bit for bit."""
    rng = np.random.default_rng(n)
    cases = [_graded(rng, n, s) for s in (0, 100, 280, 400, 480)]
    M, dM = cases[0]
    with mpmath.workdps(60):
        big = M.copy()
        big[0] *= 2.0**1000  # a row near the top of the range: det overflows
        wide = M.copy()
        wide[0] *= 2.0**1000  # row exponents 2000 apart, det representable
        wide[1] *= 2.0**-1000
        cases += [(big, dM * mpmath.mpf(2) ** 1000), (wide, dM)]
    A = np.stack([a for a, _ in cases])
    d, C = matgrad.det_grad(A, return_value=True, backend=backend)
    (s, l), G = matgrad.logdet_grad(A, return_value=True, backend=backend)
    np.testing.assert_array_equal(_np(C), _np(matgrad.det_grad(A, backend=backend)))
    np.testing.assert_array_equal(_np(G), _np(matgrad.logdet_grad(A, backend=backend)))
    d, s, l = _np(d), _np(s), _np(l)
    for b, (_, want) in enumerate(cases):
        with mpmath.workdps(60):
            if abs(want) > mpmath.mpf(2) ** 1024:  # a true overflow
                assert d[b] == np.inf * float(mpmath.sign(want)), (b, d[b])
            elif abs(want) < mpmath.mpf(2) ** -1022:  # subnormal or a true underflow
                assert abs(d[b] - want) <= 2.0**-1074, (b, d[b], want)
            else:
                assert _close(d[b], want, 1e-12 * n), (b, d[b], want)
            assert s[b] == float(mpmath.sign(want))
            assert abs(l[b] - mpmath.log(abs(want))) <= 1e-12 * max(1, abs(l[b])), b


def test_values_singular_and_tiny_pivots(backend: str) -> None:
    """Duplicated rows (exactly singular, rank n − 1): det and
    (sign, log|det|) come from one elimination and agree — det is exactly 0
    where (sign, log|det|) is (0, −inf) and ``A⁻ᵀ`` NaN — and are otherwise
    of the order of the rounding (relative to the matrix's scale).  A pivot
    that is tiny but not zero (graded, nonsingular) keeps its true value
    where the cofactors come from the SVD."""
    rng = np.random.default_rng(5)
    for n in (5, 6, 12, 47, 70):
        A = rng.integers(-4, 5, size=(n, n)).astype(np.float64)
        A[1] = A[0]
        d, _ = matgrad.det_grad(A, return_value=True, backend=backend)
        (s, l), G = matgrad.logdet_grad(A, return_value=True, backend=backend)
        d, s, l, G = _np(d), _np(s), _np(l), _np(G)
        singular = bool(np.isnan(G).all())
        assert (s == 0 and np.isneginf(l)) == singular, n
        if n > 4:  # closed forms for n ≤ 4; one elimination for det and logdet
            assert (d == 0) == singular, (n, d, s)
        scale = np.prod(np.linalg.norm(A, axis=1))  # Hadamard's bound
        assert abs(d) <= 1e-13 * n * scale, (n, d, scale)
    # upper triangular with one pivot of 2^-160: nonsingular, det exact
    T = np.triu(rng.integers(1, 5, size=(6, 6)).astype(np.float64))
    T[3, 3] = 2.0**-160
    d, _ = matgrad.det_grad(T, return_value=True, backend=backend)
    assert _close(_np(d), ref_det(T), 1e-14), (_np(d), ref_det(T))


def test_values_do_not_depend_on_the_batch(backend: str) -> None:
    """A slot's value is the same bits alone, in a batch of hostile
    neighbours (NaN, inf, zero, singular, 1e300) and in reversed order."""
    rng = np.random.default_rng(9)

    def values(op: str, A: np.ndarray) -> list[np.ndarray]:
        v = getattr(matgrad, op)(A, return_value=True, backend=backend)[0]
        return [_np(p) for p in (v if op == "logdet_grad" else (v,))]

    for n in (2, 3, 4, 6):
        good = rng.standard_normal((3, n, n))
        hostile = np.stack([np.full((n, n), np.nan), np.full((n, n), np.inf),
                            np.zeros((n, n)), np.ones((n, n)), 1e300 * np.eye(n)])
        batch = np.concatenate([hostile[:2], good, hostile[2:]])
        for op in ("det_grad", "logdet_grad", "frobenius_grad"):
            together = values(op, batch)
            rev = values(op, batch[::-1].copy())
            for i in range(3):
                alone = values(op, good[i])
                for part, want in enumerate(alone):
                    assert together[part][2 + i].tobytes() == want.tobytes(), (op, n, i)
                    assert rev[part][len(batch) - 3 - i].tobytes() == want.tobytes(), (op, n, i)


@pytest.mark.parametrize("framework", ["torch", "jax"])
@pytest.mark.parametrize("func", ["det", "slogdet", "frobenius_norm"])
def test_frameworks_factor_once(framework: str, func: str,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Forward plus backward through matgrad.torch / matgrad.jax is one
    backend call that returns value and gradient together: no second
    factorisation for the backward, no separate value."""
    pytest.importorskip(framework)
    from matgrad_numpy import NumpyBackend

    calls: list[str] = []
    for op in ("det_grad", "logdet_grad", "frobenius_grad", "det_value_grad",
               "logdet_value_grad", "frobenius_value_grad"):
        orig = getattr(NumpyBackend, op)

        def counted(self: Any, A: Any, _orig: Any = orig, _op: str = op) -> Any:
            calls.append(_op)
            return _orig(self, A)

        monkeypatch.setattr(NumpyBackend, op, counted)
    A = np.random.default_rng(2).standard_normal((5, 4, 4)) + 4 * np.eye(4)
    if framework == "torch":
        import torch

        import matgrad.torch as mt

        t = torch.tensor(A, requires_grad=True)
        out = getattr(mt, func)(t, backend="numpy")
        (out[1] if func == "slogdet" else out).sum().backward()
    else:
        import jax

        import matgrad.jax as mj

        def loss(a: Any) -> Any:
            out = getattr(mj, func)(a, backend="numpy")
            return (out[1] if func == "slogdet" else out).sum()

        with jax.enable_x64(True):
            jax.grad(loss)(jax.numpy.asarray(A)).block_until_ready()
    op = {"det": "det", "slogdet": "logdet", "frobenius_norm": "frobenius"}[func]
    assert calls == [f"{op}_value_grad"]
