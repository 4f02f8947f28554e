"""The backend contract as plain check functions (no pytest needed).

Each ``check_*`` takes a backend (a registered name or a ``matgrad.Backend``
instance) and raises ``AssertionError`` when the backend breaks the
contract: gradients within the backward-stability bound of high-precision
references, true overflow only, exact zeros where they are exact, and each
matrix of a batch computed on its own (a NaN, inf or singular slot touches
nothing else).  :class:`matgrad.testing.BackendContract` runs them on a
backend; the project's tests also check that the textbook formulas fail them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np

import matgrad
from matgrad import _reference as ref
from matgrad._check import CASES, evaluate

__all__ = [
    "CASE_LABELS",
    "CONTRACT_CHECKS",
    "check_batch_isolation",
    "check_case",
    "check_charpoly_at_eigenvalues",
    "check_charpoly_higher_orders",
    "check_det_grad_error",
    "check_det_grad_overflow",
    "check_det_grad_singular",
    "check_det_hvp_singular",
    "check_frobenius_hvp_scales",
    "check_frobenius_isolation",
    "check_frobenius_scales",
    "check_frobenius_zero",
    "check_second_order_isolation",
    "exact_cofactor",
]

Array = np.ndarray


#: ``"operation: label"`` of every reference case (:data:`matgrad._check.CASES`,
#: the cases ``matgrad check`` scores), in order.
CASE_LABELS: list[str] = [f"{c.op}: {c.label}" for c in CASES]


def check_case(label: str, backend: Any) -> None:
    """Reference case ``label`` (one of :data:`CASE_LABELS`) on ``backend``:
    its error against the 60-digit or exact reference is within the bound."""
    found = [c for c in CASES if f"{c.op}: {c.label}" == label]
    if len(found) != 1:
        raise ValueError(f"no reference case {label!r}; see matgrad.testing.CASE_LABELS")
    (case,) = found
    score = evaluate(case, backend)
    assert score.ratio <= 1, f"{label}: error is {score.ratio:.3g} times the allowed bound"


def _np(x: Any) -> Array:
    return np.asarray(x)


def check_frobenius_scales(backend: Any) -> None:
    G = _np(matgrad.frobenius_grad(np.full((2, 2), 1e308), backend=backend))
    np.testing.assert_array_equal(G, np.full((2, 2), 0.5))
    R = np.array([[1.0, -2.0], [2.0, 4.0]])  # ‖R‖ = 5
    for s in (1e200, 1e-200, 1e300, 1e-300, 2.0**-1070):
        G = _np(matgrad.frobenius_grad(R * s, backend=backend))
        np.testing.assert_allclose(G, R / 5, rtol=4e-16, atol=0, err_msg=f"scale {s}")


def check_frobenius_zero(backend: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", matgrad.CompileWarning)  # a one-time compile notice
        G = _np(matgrad.frobenius_grad(np.zeros((3, 2, 2)), backend=backend))
    np.testing.assert_array_equal(G, 0)


def check_frobenius_isolation(backend: Any) -> None:
    X = np.random.default_rng(1).standard_normal((4, 3, 3))
    good = _np(matgrad.frobenius_grad(X, backend=backend))
    for bad in (np.nan, np.inf):
        Y = X.copy()
        Y[1, 2, 0] = bad
        G = _np(matgrad.frobenius_grad(Y, backend=backend))
        assert np.isnan(G[1]).all(), "a NaN/inf entry must make its whole matrix NaN"
        np.testing.assert_array_equal(G[[0, 2, 3]], good[[0, 2, 3]])


def check_det_grad_singular(backend: Any) -> None:
    C = _np(matgrad.det_grad(np.array([[1.0, 2.0], [2.0, 4.0]]), backend=backend))
    np.testing.assert_array_equal(C, [[4.0, -2.0], [-2.0, 1.0]])
    A = np.diag([1.0, 2.0, 3.0, 4.0]) - 2 * np.eye(4)
    C = _np(matgrad.det_grad(A, backend=backend))
    expect = np.zeros((4, 4))
    expect[1, 1] = -2.0
    np.testing.assert_allclose(C, expect, atol=1e-14)
    C = _np(matgrad.det_grad(np.zeros((5, 5)), backend=backend))
    np.testing.assert_array_equal(C, 0)


def check_det_grad_overflow(backend: Any) -> None:
    A = np.diag([1e200, 1e200, 1.0, 1.0, 1.0])
    C = _np(matgrad.det_grad(A, backend=backend))
    assert not np.isnan(C).any(), "finite input must never give NaN"
    off = ~np.eye(5, dtype=bool)
    np.testing.assert_array_equal(C[off], 0)
    np.testing.assert_allclose(np.diag(C)[:2], [1e200, 1e200], rtol=1e-15)
    assert np.isposinf(np.diag(C)[2:]).all(), "C_33 = 1e400 overflows, and only it"


def check_batch_isolation(backend: Any) -> None:
    rng = np.random.default_rng(7)
    for n in (2, 3, 4, 6):
        A = rng.standard_normal((5, n, n))
        clean = {
            "det": _np(matgrad.det_grad(A, backend=backend)),
            "logdet": _np(matgrad.logdet_grad(A, backend=backend)),
            "charpoly": _np(matgrad.charpoly_deriv(A, 0.5, backend=backend)),
        }
        for poison in (np.nan, np.inf, "singular"):
            B = A.copy()
            if poison == "singular":
                B[2] = 0.0
                B[2, 0, 0] = 1.0  # rank 1: exact zero pivots
            else:
                B[2, 0, n - 1] = poison
            got = {
                "det": _np(matgrad.det_grad(B, backend=backend)),
                "logdet": _np(matgrad.logdet_grad(B, backend=backend)),
                "charpoly": _np(matgrad.charpoly_deriv(B, 0.5, backend=backend)),
            }
            keep = [0, 1, 3, 4]
            for k in got:
                np.testing.assert_array_equal(
                    got[k][keep], clean[k][keep], err_msg=f"{k} n={n} poison={poison}"
                )
            if poison == "singular":
                assert not np.isfinite(got["logdet"][2]).all()
            else:
                assert not np.isfinite(got["det"][2]).all()


def check_charpoly_at_eigenvalues(backend: Any) -> None:
    d = _np(matgrad.charpoly_deriv(np.diag([1.0, 2.0, 3.0]), 2.0, backend=backend))
    assert d == -1.0 and d.shape == ()
    d = _np(matgrad.charpoly_deriv(np.diag([1.0, 2.0, 3.0, 4.0]), 2.0, backend=backend))
    assert d == 2.0
    p = _np(matgrad.charpoly(np.diag([1.0, 2.0, 3.0, 4.0]), [1.0, 2.0, 3.0, 4.0],
                             backend=backend))
    np.testing.assert_array_equal(p, 0)


def check_charpoly_higher_orders(backend: Any) -> None:
    """``charpoly_deriv(A, x, order=k)``: exact at (multiple) eigenvalues, the
    constants beyond ``n``, and ``return_value=True`` giving the bits of the
    separate calls (``p`` of ``charpoly``, ``p′`` of order 1)."""
    D = np.diag([1.0, 2.0, 3.0, 4.0])
    x = np.array([1.0, 2.0, 3.0, 4.0])
    p, dp, d2p = (_np(r) for r in matgrad.charpoly_deriv(D, x, order=2, return_value=True,
                                                        backend=backend))
    # p = x⁴ − 10x³ + 35x² − 50x + 24, p″ = 12x² − 60x + 70: integers, exact
    np.testing.assert_array_equal(p, 0)
    np.testing.assert_array_equal(dp, [-6.0, 2.0, -2.0, 6.0])
    np.testing.assert_array_equal(d2p, [22.0, -2.0, -2.0, 22.0])
    J = np.array([[2.0, 1.0, 0.0], [0.0, 2.0, 1.0], [0.0, 0.0, 2.0]])  # p = (x − 2)³
    parts = [_np(r) for r in matgrad.charpoly_deriv(J, 2.0, order=5, return_value=True,
                                                   backend=backend)]
    np.testing.assert_array_equal(parts, [0.0, 0.0, 0.0, 6.0, 0.0, 0.0])
    rng = np.random.default_rng(11)
    A = rng.standard_normal((3, 1, 5, 5))
    pts = rng.standard_normal((3, 4))
    got = [_np(r) for r in matgrad.charpoly_deriv(A, pts, order=3, return_value=True,
                                                 backend=backend)]
    alone = [_np(matgrad.charpoly(A, pts, backend=backend))] + [
        _np(matgrad.charpoly_deriv(A, pts, order=k, backend=backend)) for k in (1, 2, 3)]
    for k, (a, b) in enumerate(zip(got, alone, strict=True)):
        assert a.shape == (3, 4), f"order {k}: shape {a.shape}"
        np.testing.assert_array_equal(a, b, err_msg=f"order {k}: return_value vs alone")
    for i in (0, 2):
        for j in (0, 3):
            score = ref.charpoly_derivs_error_ratio([g[i, j] for g in got], A[i, 0], pts[i, j])
            assert score.ratio <= 1, f"error {score.ratio:.3g}x the backward-stability bound"


def check_det_grad_error(backend: Any, A: Array) -> None:
    """``det_grad`` of the square matrix ``A`` within the backward-stability bound."""
    score = ref.det_grad_error_ratio(_np(matgrad.det_grad(A, backend=backend)), A)
    assert score.ratio <= 1, f"error {score.ratio:.3g}x the backward-stability bound"


def exact_cofactor(A: Array) -> Array:
    """Cofactors of an integer-valued matrix in exact rational arithmetic."""
    n = A.shape[0]

    def det(M: list[list[Fraction]]) -> Fraction:
        M = [row[:] for row in M]
        m, d = len(M), Fraction(1)
        for k in range(m):
            p = next((i for i in range(k, m) if M[i][k] != 0), None)
            if p is None:
                return Fraction(0)
            if p != k:
                M[k], M[p] = M[p], M[k]
                d = -d
            d *= M[k][k]
            for i in range(k + 1, m):
                f = M[i][k] / M[k][k]
                for j in range(k, m):
                    M[i][j] -= f * M[k][j]
        return d

    F = [[Fraction(int(v)) for v in row] for row in A]
    C = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            minor = [r[:j] + r[j + 1 :] for k, r in enumerate(F) if k != i]
            C[i, j] = float((-1) ** (i + j) * det(minor))
    return C


# ------------------------------------------------------------ second order
def check_det_hvp_singular(backend: Any) -> None:
    """``det_hvp`` exact at singular matrices (n ≤ 3: the polynomial; rank
    ``n − 2`` of a 4×4), zeros at rank ``≤ n − 3``, and ``det_hessian``'s
    entries, structural zeros and symmetry."""
    V2 = np.array([[1.0, 2.0], [3.0, 4.0]])
    H = _np(matgrad.det_hvp(np.array([[1.0, 2.0], [2.0, 4.0]]), V2, backend=backend))
    np.testing.assert_array_equal(H, [[4.0, -3.0], [-2.0, 1.0]])  # cofactor(V), any A
    A3 = np.arange(1.0, 10.0).reshape(3, 3)  # rank 2
    H = _np(matgrad.det_hvp(A3, np.eye(3), backend=backend))
    np.testing.assert_array_equal(H, [[14.0, -4.0, -7.0], [-2.0, 10.0, -8.0],
                                      [-3.0, -6.0, 6.0]])
    V4 = np.arange(16.0).reshape(4, 4)
    # diag(1, 1, 0, 0): only the minors keeping rows and columns 0, 1 survive
    H = _np(matgrad.det_hvp(np.diag([1.0, 1.0, 0.0, 0.0]), V4, backend=backend))
    expect = np.zeros((4, 4))
    expect[2, 2], expect[3, 3], expect[2, 3], expect[3, 2] = 15.0, 10.0, -14.0, -11.0
    np.testing.assert_allclose(H, expect, rtol=0, atol=64 * 16 * np.finfo(float).eps)
    H = _np(matgrad.det_hvp(np.diag([1.0, 0.0, 0.0, 0.0, 0.0]), np.ones((5, 5)), backend=backend))
    np.testing.assert_array_equal(H, 0)  # rank n − 4: every second derivative is 0
    Hs = _np(matgrad.det_hessian(np.diag([1.0, 1.0, 0.0, 0.0]), backend=backend))
    want = np.zeros((4, 4, 4, 4))
    want[2, 2, 3, 3] = want[3, 3, 2, 2] = 1.0
    want[2, 3, 3, 2] = want[3, 2, 2, 3] = -1.0
    np.testing.assert_allclose(Hs, want, rtol=0, atol=64 * 16 * np.finfo(float).eps)
    A = np.random.default_rng(3).standard_normal((2, 5, 5))
    Hs = _np(matgrad.det_hessian(A, backend=backend))
    assert Hs.shape == (2, 5, 5, 5, 5)
    np.testing.assert_array_equal(Hs, Hs.transpose(0, 3, 4, 1, 2))  # (i, j) ↔ (k, l)
    idx = np.arange(5)
    assert np.all(Hs[:, idx, :, idx, :] == 0) and np.all(Hs[:, :, idx, :, idx] == 0)


def check_frobenius_hvp_scales(backend: Any) -> None:
    """No over- or underflow at 1e±200 and beyond; ``X = 0`` is a NaN slot
    (the norm has no Hessian there), and only that slot."""
    R = np.array([[1.0, -2.0], [2.0, 4.0]])  # ‖R‖ = 5
    V = np.array([[1.0, 0.0], [0.0, 0.0]])
    core = (V - R / 25) / 5  # (V − G⟨G, V⟩)/‖R‖ with G = R/5, ⟨G, V⟩ = 1/5
    for s in (1e200, 1e-200, 1e300, 1e-300):
        H = _np(matgrad.frobenius_hvp(R * s, V, backend=backend))
        np.testing.assert_allclose(H, core / s, rtol=1e-15, atol=0, err_msg=f"scale {s}")
    X = np.stack([R, np.zeros((2, 2)), R * 1e300])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", matgrad.CompileWarning)
        H = _np(matgrad.frobenius_hvp(X, V, backend=backend))
    assert np.isnan(H[1]).all(), "X = 0 has no Hessian: its slot must be NaN"
    assert np.isfinite(H[[0, 2]]).all()


def check_second_order_isolation(backend: Any) -> None:
    """A NaN, inf or singular slot changes no other slot of ``det_hvp``,
    ``logdet_hvp``, ``frobenius_hvp``, ``det_hessian``: each clean slot is
    bit-identical to the same matrix computed alone."""
    rng = np.random.default_rng(8)
    ops: dict[str, Callable[[Array, Array], Any]] = {
        "det_hvp": lambda a, v: matgrad.det_hvp(a, v, backend=backend),
        "logdet_hvp": lambda a, v: matgrad.logdet_hvp(a, v, backend=backend),
        "frobenius_hvp": lambda a, v: matgrad.frobenius_hvp(a, v, backend=backend),
        "det_hessian": lambda a, v: matgrad.det_hessian(a, backend=backend),
    }
    for n in (2, 3, 4, 6):
        A = rng.standard_normal((5, n, n)) + 2 * np.eye(n)
        V = rng.standard_normal((5, n, n))
        for poison in (np.nan, np.inf, "singular"):
            B = A.copy()
            if poison == "singular":
                B[2] = 0.0
                B[2, 0, 0] = 1.0  # rank 1: exact zero pivots
            else:
                B[2, 0, n - 1] = poison
            for name, f in ops.items():
                got = _np(f(B, V))
                for k in (0, 1, 3, 4):
                    alone = _np(f(B[k], V[k]))
                    np.testing.assert_array_equal(
                        got[k], alone, err_msg=f"{name} n={n} poison={poison} slot {k}")


#: Every check above that takes only a backend (the contract tests, the
#: CUDA-simulator run and the textbook-formula test iterate over it).
CONTRACT_CHECKS: list[Callable[[Any], None]] = [
    check_frobenius_scales,
    check_frobenius_zero,
    check_frobenius_isolation,
    check_det_grad_singular,
    check_det_grad_overflow,
    check_batch_isolation,
    check_charpoly_at_eigenvalues,
    check_charpoly_higher_orders,
    check_det_hvp_singular,
    check_frobenius_hvp_scales,
    check_second_order_isolation,
]
