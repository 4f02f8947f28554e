"""The public second-order functions (``det_hvp``, ``logdet_hvp``,
``frobenius_hvp``, ``det_hessian``) on every backend: exact and 60-digit
references, shapes, dtypes, broadcasting, batches, errors.

References never use the code under test: ``matgrad._reference`` builds the
second derivatives of ``det`` from fraction-free determinants (the
row-replacement identity ``∂²det/∂A_ij∂A_kl = det(A`` with row ``i`` →
``e_jᵀ``, row ``k`` → ``e_lᵀ)``), ``A⁻ᵀ`` from exact cofactors, and the
Frobenius Hessian-vector product at 60 digits.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

import mpmath
import numpy as np
import pytest

import matgrad
from matgrad import _reference as ref
from matgrad.kernels import hessian

DTYPES = (np.float64, np.float32, np.complex128, np.complex64)
Fn = Callable[..., Any]


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _random(rng: np.random.Generator, shape: tuple[int, ...], cplx: bool) -> np.ndarray:
    """float32-representable parts, so that every precision sees the same
    exact input."""
    A = rng.standard_normal(shape).astype(np.float32).astype(np.float64)
    if cplx:
        A = A + 1j * rng.standard_normal(shape).astype(np.float32).astype(np.float64)
    return A


def _rank(rng: np.random.Generator, n: int, r: int) -> np.ndarray:
    """An integer matrix of rank at most ``r``, rows and columns permuted (the
    zero pivot anywhere)."""
    A = (rng.integers(-4, 5, (n, r)) @ rng.integers(-4, 5, (r, n))).astype(float)
    return A[rng.permutation(n)][:, rng.permutation(n)]


def _np(x: Any) -> np.ndarray:
    return np.asarray(x.compute() if hasattr(x, "compute") else x)


# ------------------------------------------------------------ exact references
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6])
def test_det_hvp_against_exact_references(backend: str, n: int) -> None:
    rng = _rng(n)
    mats = [_random(rng, (n, n), False) + 2 * np.eye(n), _random(rng, (n, n), True)]
    mats += [_rank(rng, n, r) for r in range(max(0, n - 3), n)]  # ranks n−1, n−2, n−3
    for A in mats:
        V = _random(rng, (n, n), bool(np.iscomplexobj(A)))
        exact = ref.exact_det_hvp(A, V)
        for dt in (np.complex128, np.complex64) if np.iscomplexobj(A) else (np.float64,
                                                                            np.float32):
            H = _np(matgrad.det_hvp(A.astype(dt), V.astype(dt), backend=backend))
            assert H.dtype == dt and H.shape == (n, n)
            score = ref.det_hvp_error_ratio(H, A, V, exact=exact)
            assert score.ratio <= 1, (n, dt, score)
            if n <= 3 and dt in (np.float64, np.complex128) and A.dtype == np.float64 \
                    and float(np.abs(A - np.round(A)).max()) == 0:
                # integer singular n ≤ 3: the polynomial is exact
                np.testing.assert_array_equal(H, np.array(exact, dtype=float))
        if np.linalg.matrix_rank(A) <= n - 3:
            assert np.all(_np(matgrad.det_hvp(A, V, backend=backend)) == 0)


def test_det_hvp_exact_at_singular_small_matrices(backend: str) -> None:
    """n ≤ 3 singular matrices of every rank: bit-exact integers."""
    rng = _rng(33)
    for n in (2, 3):
        for r in range(n):
            for _ in range(4):
                A = _rank(rng, n, r)
                V = rng.integers(-5, 6, (n, n)).astype(float)
                H = _np(matgrad.det_hvp(A, V, backend=backend))
                np.testing.assert_array_equal(H, np.array(ref.exact_det_hvp(A, V), dtype=float))


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_det_hessian_against_exact_references(backend: str, n: int) -> None:
    rng = _rng(50 + n)
    mats = [_random(rng, (n, n), False) + 2 * np.eye(n), _random(rng, (n, n), True)]
    mats += [_rank(rng, n, r) for r in range(max(0, n - 3), n)]
    for A in mats:
        Hs = _np(matgrad.det_hessian(A, backend=backend))
        assert Hs.shape == (n, n, n, n) and Hs.dtype == A.dtype
        assert ref.det_hessian_error_ratio(Hs, A).ratio <= 1
        np.testing.assert_array_equal(Hs, Hs.transpose(2, 3, 0, 1))
    # row-replacement identity on one entry, by hand: diag(2, 3, 5, 7)
    Hs = _np(matgrad.det_hessian(np.diag([2.0, 3.0, 5.0, 7.0]), backend=backend))
    assert Hs[0, 0, 1, 1] == 35.0 and Hs[0, 1, 1, 0] == -35.0 and Hs[2, 2, 3, 3] == 6.0


def test_det_hessian_contracts_to_det_hvp(backend: str) -> None:
    rng = _rng(4)
    A = rng.standard_normal((3, 5, 5))
    V = rng.standard_normal((3, 5, 5))
    Hs = _np(matgrad.det_hessian(A, backend=backend))
    H = _np(matgrad.det_hvp(A, V, backend=backend))
    np.testing.assert_allclose(np.einsum("bijkl,bkl->bij", Hs, V), H, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cplx", [False, True], ids=["real", "complex"])
def test_logdet_hvp_against_exact_references(backend: str, cplx: bool) -> None:
    rng = _rng(60 + cplx)
    for n in (1, 2, 3, 4, 6):
        A = _random(rng, (n, n), cplx) + 2 * np.eye(n)
        V = _random(rng, (n, n), cplx)
        for dt in (np.complex128, np.complex64) if cplx else (np.float64, np.float32):
            H = _np(matgrad.logdet_hvp(A.astype(dt), V.astype(dt), backend=backend))
            assert H.dtype == dt
            assert ref.logdet_hvp_error_ratio(H, A, V).ratio <= 1, (n, dt)


def test_logdet_hvp_convention_is_the_real_direction_derivative(backend: str) -> None:
    """For complex ``A``, ``logdet_grad`` is ``A⁻ᴴ``; ``logdet_hvp`` is its
    derivative along a real ``t``, ``−conj(A⁻ᵀVᵀA⁻ᵀ)``: checked against a
    60-digit central difference of ``A⁻ᴴ``, and the second derivative of
    ``log|det|`` along ``(V, W)`` is ``Re tr(Wᴴ H)``."""
    rng = _rng(61)
    A = _random(rng, (3, 3), True) + 2 * np.eye(3)
    V = _random(rng, (3, 3), True)
    W = _random(rng, (3, 3), True)
    G = _np(matgrad.logdet_grad(A, backend=backend))
    np.testing.assert_allclose(G, np.linalg.inv(A).conj().T, rtol=1e-13)
    H = _np(matgrad.logdet_hvp(A, V, backend=backend))
    with mpmath.workdps(60):
        h = mpmath.mpf(10) ** -25
        M = mpmath.matrix(A.tolist())
        D = mpmath.matrix(V.tolist())
        fd = (((M + h * D) ** -1).H - ((M - h * D) ** -1).H) / (2 * h)
        want = np.array([[complex(fd[i, j]) for j in range(3)] for i in range(3)])
        # f(s, t) = log|det(A + sV + tW)|: ∂²f/∂s∂t at 0
        def f(s: Any, t: Any) -> Any:
            return mpmath.log(abs(mpmath.det(M + s * D + t * mpmath.matrix(W.tolist()))))
        k = mpmath.mpf(10) ** -12
        mixed = (f(k, k) - f(k, -k) - f(-k, k) + f(-k, -k)) / (4 * k * k)
    np.testing.assert_allclose(H, want, rtol=1e-13)
    assert abs(np.real(np.trace(W.conj().T @ H)) - float(mixed)) <= 1e-10 * abs(float(mixed))


def test_frobenius_hvp_against_references(backend: str) -> None:
    rng = _rng(70)
    for cplx in (False, True):
        for sx, sv in ((1.0, 1.0), (1e200, 1.0), (1e-200, 1.0), (1e300, 1e300),
                       (1e-300, 1e-300), (1.0, 1e-300)):
            X = _random(rng, (3, 4), cplx) * sx
            V = _random(rng, (3, 4), cplx) * sv
            H = _np(matgrad.frobenius_hvp(X, V, backend=backend))
            assert np.isfinite(H).all() or (sx == 1.0 and sv == 1e-300)
            assert ref.frobenius_hvp_error_ratio(H, X, V).ratio <= 1, (cplx, sx, sv)
    X = _random(rng, (4, 4), False)
    Hf = _np(matgrad.frobenius_hvp(X.astype(np.float32), X[::-1].astype(np.float32),
                                   backend=backend))
    assert Hf.dtype == np.float32
    assert ref.frobenius_hvp_error_ratio(Hf, X, X[::-1]).ratio <= 1


# ------------------------------------------------------------ hostile scalings
@pytest.mark.parametrize("where", ["rows", "columns"])
def test_det_hvp_hostile_scalings(backend: str, where: str) -> None:
    """Rows or columns scaled by 2^±300: right in the equilibrated frame and
    normwise in ``A``'s own, every entry finite."""
    rng = _rng(80)
    for n in (3, 4, 6):
        R = _random(rng, (n, n), False) + 2 * np.eye(n)
        e = rng.choice([-300, 0, 300], n)
        A = np.ldexp(R, e[:, None] if where == "rows" else e[None, :])
        V = _random(rng, (n, n), False)
        exact = ref.exact_det_hvp(A, V)
        H = _np(matgrad.det_hvp(A, V, backend=backend))
        assert np.isfinite(H).all()
        assert ref.det_hvp_error_ratio(H, A, V, exact=exact).ratio <= 1
        with mpmath.workdps(60):
            num = mpmath.sqrt(mpmath.fsum(abs(mpmath.mpf(float(H[i, j])) - exact[i][j]) ** 2
                                          for i in range(n) for j in range(n)))
            den = mpmath.sqrt(mpmath.fsum(abs(v) ** 2 for row in exact for v in row))
        assert num <= 64 * n * n * 2.0**-52 * den
        Hs = _np(matgrad.det_hessian(A, backend=backend))
        assert np.isfinite(Hs).all() and ref.det_hessian_error_ratio(Hs, A).ratio <= 1
        L = _np(matgrad.logdet_hvp(A, V, backend=backend))
        assert ref.logdet_hvp_error_ratio(L, A, V).ratio <= 1


# ------------------------------------------------------------ batches
def _poisoned(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = _rng(90 + n)
    A = _random(rng, (6, n, n), False) + 2 * np.eye(n)
    V = _random(rng, (6, n, n), False)
    A[1, 0, 0] = np.nan
    A[2] = 0.0
    A[2, 0, 0] = 1.0  # rank 1
    A[4, -1, -1] = np.inf
    return A, V


OPS: dict[str, Fn] = {
    "det_hvp": lambda a, v, **kw: matgrad.det_hvp(a, v, **kw),
    "det_hvp_value": lambda a, v, **kw: matgrad.det_hvp(a, v, return_value=True, **kw)[2],
    "logdet_hvp": lambda a, v, **kw: matgrad.logdet_hvp(a, v, **kw),
    "frobenius_hvp": lambda a, v, **kw: matgrad.frobenius_hvp(a, v, **kw),
    "det_hessian": lambda a, v, **kw: matgrad.det_hessian(a, **kw),
}


@pytest.mark.parametrize("n", [2, 3, 4, 6])
@pytest.mark.parametrize("op", list(OPS))
def test_poisoned_slots_leave_clean_slots_bit_identical(backend: str, op: str, n: int) -> None:
    A, V = _poisoned(n)
    f = OPS[op]
    out = _np(f(A, V, backend=backend))
    for b in (0, 3, 5):
        alone = _np(f(A[b], V[b], backend=backend))
        np.testing.assert_array_equal(out[b], alone, err_msg=f"slot {b}")
        # the same matrix in another batch, at another position
        other = _np(f(np.stack([A[5 - b], A[b]]), np.stack([V[5 - b], V[b]]), backend=backend))
        np.testing.assert_array_equal(other[1], alone, err_msg=f"slot {b} moved")
    if n >= 4 and op != "frobenius_hvp":
        assert np.isnan(out[1]).all() and np.isnan(out[4]).all()


def test_frobenius_hvp_zero_matrix_is_a_nan_slot(backend: str) -> None:
    X = _random(_rng(5), (3, 2, 3), True)
    V = _random(_rng(6), (3, 2, 3), True)
    X[1] = 0
    H = _np(matgrad.frobenius_hvp(X, V, backend=backend))
    assert np.isnan(H[1]).all()
    for b in (0, 2):
        np.testing.assert_array_equal(H[b], _np(matgrad.frobenius_hvp(X[b], V[b],
                                                                       backend=backend)))
    # a NaN/inf direction propagates; a NaN X makes the slot NaN
    assert np.isnan(_np(matgrad.frobenius_hvp(np.array([[np.nan, 1.0]]), np.ones((1, 2)),
                                              backend=backend))).all()


def test_det_hvp_value_is_det_grad_value_and_det_hvp(backend: str) -> None:
    rng = _rng(7)
    for n in (1, 2, 3, 4, 7):
        A = rng.standard_normal((3, n, n))
        V = rng.standard_normal((3, n, n))
        d, C, H = (_np(x) for x in matgrad.det_hvp(A, V, return_value=True, backend=backend))
        d0, C0 = (_np(x) for x in matgrad.det_grad(A, return_value=True, backend=backend))
        assert d.shape == (3,) and C.shape == H.shape == (3, n, n)
        np.testing.assert_allclose(d, d0, rtol=1e-14)
        np.testing.assert_allclose(C, C0, rtol=1e-13, atol=1e-13 * np.abs(C0).max())
        np.testing.assert_array_equal(H, _np(matgrad.det_hvp(A, V, backend=backend)))
        if backend == "numpy":
            np.testing.assert_array_equal(d, d0)
            np.testing.assert_array_equal(C, C0)


# ------------------------------------------------------------ shapes, dtypes
def test_broadcasting(backend: str) -> None:
    rng = _rng(8)
    A = rng.standard_normal((2, 1, 4, 4))
    V = rng.standard_normal((3, 4, 4))
    for name in ("det_hvp", "logdet_hvp", "frobenius_hvp"):
        f = getattr(matgrad, name)
        H = _np(f(A, V, backend=backend))
        assert H.shape == (2, 3, 4, 4)
        for i in range(2):
            for j in range(3):
                np.testing.assert_array_equal(H[i, j], _np(f(A[i, 0], V[j], backend=backend)))
        # one matrix, many directions (and the other way round)
        np.testing.assert_array_equal(_np(f(A[0, 0], V, backend=backend)), H[0])
    d, C, H = matgrad.det_hvp(A, V, return_value=True, backend=backend)
    assert _np(d).shape == (2, 3) and _np(C).shape == _np(H).shape == (2, 3, 4, 4)
    assert _np(matgrad.det_hessian(A, backend=backend)).shape == (2, 1, 4, 4, 4, 4)
    X = rng.standard_normal((5, 2, 3))  # frobenius: rectangular matrices
    assert _np(matgrad.frobenius_hvp(X, X[0], backend=backend)).shape == (5, 2, 3)


def test_non_contiguous_views_and_unmutated_inputs(backend: str) -> None:
    rng = _rng(9)
    big = rng.standard_normal((6, 10, 10))
    Vbig = rng.standard_normal((6, 10, 10))
    for view, vview in ((big[::2, ::2, 1::2], Vbig[1::2, 1::2, ::2]),
                        (big.transpose(0, 2, 1)[:, :5, :5], Vbig[:, 2:7, 3:8]),
                        (np.broadcast_to(big[0, :4, :4], (3, 4, 4)), Vbig[:3, :4, :4])):
        before = (view.copy(), vview.copy())
        dense, vdense = np.ascontiguousarray(view), np.ascontiguousarray(vview)
        for name in ("det_hvp", "logdet_hvp", "frobenius_hvp"):
            f = getattr(matgrad, name)
            out = _np(f(view, vview, backend=backend))
            np.testing.assert_array_equal(out, _np(f(dense, vdense, backend=backend)))
            assert not np.shares_memory(out, big) and not np.shares_memory(out, Vbig)
        np.testing.assert_array_equal(_np(matgrad.det_hessian(view, backend=backend)),
                                      _np(matgrad.det_hessian(dense, backend=backend)))
        np.testing.assert_array_equal(view, before[0])
        np.testing.assert_array_equal(vview, before[1])


@pytest.mark.parametrize(("a", "v", "want"), [
    (np.float64, np.float64, np.float64), (np.float32, np.float32, np.float32),
    (np.float32, np.float64, np.float64), (np.complex64, np.float32, np.complex64),
    (np.float32, np.complex128, np.complex128), (np.int32, np.int64, np.float64),
    (np.int8, np.float32, np.float64), (np.bool_, np.bool_, np.float64),
    (np.float16, np.float16, np.float32),
])
def test_dtype_promotion(backend: str, a: Any, v: Any, want: Any) -> None:
    A = (np.eye(3) * 2 + np.triu(np.ones((3, 3)))).astype(a)
    V = np.ones((3, 3)).astype(v)
    for name in ("det_hvp", "logdet_hvp", "frobenius_hvp"):
        assert _np(getattr(matgrad, name)(A, V, backend=backend)).dtype == want, name
    d, C, H = (_np(x) for x in matgrad.det_hvp(A, V, return_value=True, backend=backend))
    assert d.dtype == C.dtype == H.dtype == want
    alone = {np.float16: np.float32, np.float32: np.float32, np.complex64: np.complex64}
    assert _np(matgrad.det_hessian(A, backend=backend)).dtype == alone.get(a, np.float64)


def test_empty_and_trivial(backend: str) -> None:
    for n in (0, 1, 3):
        A = np.zeros((0, n, n))
        assert _np(matgrad.det_hvp(A, A, backend=backend)).shape == (0, n, n)
        assert _np(matgrad.logdet_hvp(A, A, backend=backend)).shape == (0, n, n)
        assert _np(matgrad.frobenius_hvp(A, A, backend=backend)).shape == (0, n, n)
        assert _np(matgrad.det_hessian(A, backend=backend)).shape == (0, n, n, n, n)
        d, C, H = matgrad.det_hvp(A, A, return_value=True, backend=backend)
        assert _np(d).shape == (0,) and _np(C).shape == _np(H).shape == (0, n, n)
    E = np.zeros((2, 0, 0))
    d, C, H = matgrad.det_hvp(E, E, return_value=True, backend=backend)
    np.testing.assert_array_equal(_np(d), [1.0, 1.0])  # the 0×0 determinant
    assert _np(C).shape == _np(H).shape == (2, 0, 0)
    assert _np(matgrad.det_hessian(E, backend=backend)).shape == (2, 0, 0, 0, 0)
    assert _np(matgrad.frobenius_hvp(np.zeros((4, 3, 0)), np.zeros((3, 0)),
                                     backend=backend)).shape == (4, 3, 0)
    # n = 1: det is linear, its second derivatives vanish; log|a|'' = −v/a²
    np.testing.assert_array_equal(_np(matgrad.det_hvp([[5.0]], [[2.0]], backend=backend)),
                                  [[0.0]])
    np.testing.assert_array_equal(_np(matgrad.det_hessian([[5.0]], backend=backend)),
                                  [[[[0.0]]]])
    np.testing.assert_array_equal(_np(matgrad.logdet_hvp([[4.0]], [[2.0]], backend=backend)),
                                  [[-0.125]])
    # a list and a scalar-like direction are NumPy input
    assert isinstance(matgrad.det_hvp([[1, 2], [3, 4]], [[1, 0], [0, 1]]), np.ndarray)


def test_input_errors() -> None:
    A = np.eye(3)
    for name in ("det_hvp", "logdet_hvp"):
        f = getattr(matgrad, name)
        with pytest.raises(ValueError, match=r"square .*\(2, 3\)"):
            f(np.ones((2, 3)), np.ones((2, 3)))
        with pytest.raises(ValueError, match=r"V must be square .*\(3, 2\)"):
            f(A, np.ones((3, 2)))
        with pytest.raises(ValueError, match=r"V must have the matrix shape of A.*\(4, 4\)"):
            f(A, np.ones((4, 4)))
        with pytest.raises(ValueError, match=r"V must have at least 2 dimensions"):
            f(A, np.ones(3))
        with pytest.raises(ValueError, match="do not broadcast"):
            f(np.ones((2, 3, 3)), np.ones((4, 3, 3)))
        with pytest.raises(TypeError, match="dtype"):
            f(A, np.array([["a"] * 3] * 3))
    with pytest.raises(ValueError, match=r"V must have the matrix shape of X"):
        matgrad.frobenius_hvp(np.ones((2, 3)), np.ones((3, 2)))
    with pytest.raises(TypeError, match="return_value must be a bool"):
        matgrad.det_hvp(A, A, return_value=1)  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="exceeds 32"):
        matgrad.det_hessian(np.zeros((1, 33, 33)))
    assert matgrad.det_hessian(np.eye(32)[None], backend="numpy").shape == (1, 32, 32, 32, 32)
    with pytest.raises(TypeError, match="masked array"):
        matgrad.det_hvp(np.ma.masked_array(A), A)


# ------------------------------------------------------------ dask specifics
def test_dask_chunked_matrix_axes_and_unknown_chunks() -> None:
    da = pytest.importorskip("dask.array")
    rng = _rng(11)
    A = rng.standard_normal((7, 5, 5))
    V = rng.standard_normal((7, 5, 5))
    Ad = da.from_array(A, chunks=(3, 2, 3))  # matrix axes split: rechunked
    Vd = da.from_array(V, chunks=(2, 5, 1))
    for name in ("det_hvp", "logdet_hvp", "frobenius_hvp"):
        f = getattr(matgrad, name)
        lazy = f(Ad, Vd, backend="numpy")
        assert isinstance(lazy, da.Array)
        np.testing.assert_array_equal(lazy.compute(), f(A, V, backend="numpy"))
    d, C, H = matgrad.det_hvp(Ad, V, return_value=True, backend="numpy")
    ref_parts = matgrad.det_hvp(A, V, return_value=True, backend="numpy")
    for got, want in zip((d, C, H), ref_parts, strict=True):
        np.testing.assert_array_equal(got.compute(), want)
    Hs = matgrad.det_hessian(Ad, backend="numpy")
    assert Hs.shape == (7, 5, 5, 5, 5)
    np.testing.assert_array_equal(Hs.compute(), matgrad.det_hessian(A, backend="numpy"))
    # unknown batch chunks (a boolean selection) pass, as for det_grad
    keep = da.from_array(np.array([True, False, True, True, False, True, True]), chunks=3)
    sel = Ad[keep]
    out = matgrad.det_hvp(sel, V[0], backend="numpy").compute()
    np.testing.assert_array_equal(out, matgrad.det_hvp(A[keep.compute()], V[0], backend="numpy"))
    with pytest.raises(ValueError, match="unknown size"):
        matgrad.frobenius_hvp(Ad[:, keep[:5]], Vd[:, :, :2])


# ------------------------------------------------------------ backend plumbing
@pytest.fixture
def half_module() -> Iterator[types.ModuleType]:
    """An operations module with the first-order methods (NumPy's) and a
    ``det_hvp`` of its own (a marker), no other second-order function."""
    numpy_backend = matgrad.load_backend("numpy")
    mod = types.ModuleType("mgtest_second_order_ops")
    calls: list[str] = []
    for m in ("frobenius_grad", "bilinear_grad", "det_grad", "logdet_grad", "charpoly_deriv"):
        setattr(mod, m, getattr(numpy_backend, m))

    def det_hvp(A: np.ndarray, V: np.ndarray) -> np.ndarray:
        calls.append("det_hvp")
        return hessian.det_hvp(A, V)

    mod.det_hvp = det_hvp  # type: ignore[attr-defined]
    mod.calls = calls  # type: ignore[attr-defined]
    sys.modules[mod.__name__] = mod
    yield mod
    del sys.modules[mod.__name__]


class _Half(matgrad.ModuleBackend):
    name = "mgtest-half"
    operation_modules = ("mgtest_second_order_ops",)


def test_module_backend_uses_module_functions_else_host_defaults(
        half_module: types.ModuleType) -> None:
    b = _Half()
    rng = _rng(12)
    A = rng.standard_normal((3, 4, 4))
    V = rng.standard_normal((3, 4, 4))
    np.testing.assert_array_equal(matgrad.det_hvp(A, V, backend=b), hessian.det_hvp(A, V))
    assert half_module.calls == ["det_hvp"]  # its own function
    # the others: Backend's host defaults, the host kernels' results
    np.testing.assert_array_equal(matgrad.logdet_hvp(A, V, backend=b), hessian.logdet_hvp(A, V))
    np.testing.assert_array_equal(matgrad.frobenius_hvp(A, V, backend=b),
                                  hessian.frobenius_hvp(A, V))
    np.testing.assert_array_equal(matgrad.det_hessian(A, backend=b), hessian.det_hessian(A))
    for got, want in zip(matgrad.det_hvp(A, V, return_value=True, backend=b),
                         hessian.det_hvp_value(A, V), strict=True):
        np.testing.assert_array_equal(got, want)
    assert half_module.calls == ["det_hvp"]


def test_second_order_methods_are_not_required() -> None:
    for name in ("det_hvp", "det_hvp_value", "logdet_hvp", "frobenius_hvp", "det_hessian"):
        assert name in matgrad.Backend.methods
        assert name not in matgrad.Backend.__abstractmethods__


def test_a_wrong_backend_result_is_refused(half_module: types.ModuleType) -> None:
    half_module.det_hvp = lambda A, V: A[:, :1]  # wrong shape, and a view of the input
    with pytest.raises(matgrad.BackendResultError, match=r"det_hvp\(\).*shape"):
        matgrad.det_hvp(np.eye(3)[None], np.eye(3)[None], backend=_Half())
    half_module.det_hvp = lambda A, V: A  # the input itself
    with pytest.raises(matgrad.BackendResultError, match="shares memory with its input A"):
        matgrad.det_hvp(np.eye(3)[None], np.eye(3)[None], backend=_Half())
    half_module.det_hvp_value = lambda A, V: (A[:, 0, 0].copy(), A.copy())
    with pytest.raises(matgrad.BackendResultError, match=r"not the triple \(det, C, H\)"):
        matgrad.det_hvp(np.eye(3)[None], np.eye(3)[None], return_value=True, backend=_Half())
    half_module.det_hessian = lambda A: np.zeros(A.shape)
    with pytest.raises(matgrad.BackendResultError, match=r"expected \(1, 3, 3, 3, 3\)"):
        matgrad.det_hessian(np.eye(3)[None], backend=_Half())


# ------------------------------------------------------------ the contract
def _available_numpy_backends() -> list[str]:
    return [b.name for b in matgrad.list_backends()
            if b.available and b.name in ("numpy", "numba", "dask")]


@pytest.mark.parametrize("kind", ["dense", "triangular", "bidiagonal", "tridiagonal",
                                  "similarity"])
def test_never_worse_than_the_textbook_formula(kind: str) -> None:
    """docs/numerics.md §8: on graded non-singular matrices (``D₁·R·D₂``,
    exponent spreads up to 2^±450), directions random or graded like ``A``,
    the normwise error of ``det_hvp``, ``logdet_hvp`` (and ``det_hessian``,
    n ≤ 5) is at most ``128·max(ε_std, n·eps)``, ``ε_std`` the textbook
    invertible-matrix formula's in the same precision; no inf or NaN that
    the truth does not have."""
    from matgrad._operations import OPERATIONS

    from .test_graded import _graded, _normwise

    rng = _rng(sum(map(ord, kind)))
    for t in range(4):
        n = int(rng.integers(4, 8))
        A = _graded(rng, kind, n, spread=(20, 120, 250, 450)[t])
        V = rng.standard_normal((n, n))
        if t % 2:
            V = V * (np.abs(A) + np.abs(A).max() * 2.0**-60)  # graded like A
        cases: list[tuple[str, tuple[np.ndarray, ...], Any]] = [
            ("det_hvp", (A, V), ref.exact_det_hvp(A, V))]
        inv = ref.exact_logdet_hvp(A, V)
        if inv is not None:
            cases.append(("logdet_hvp", (A, V), inv))
        if n <= 5:
            cases.append(("det_hessian", (A,),
                          ref.exact_det_hessian(A).reshape(n * n, n * n).tolist()))
        for op, args, exact in cases:
            with np.errstate(all="ignore"):
                try:
                    tb = np.asarray(OPERATIONS[op].textbook(*args)).reshape(len(exact), -1)
                    std = min(1.0, _normwise(tb, exact))
                except np.linalg.LinAlgError:
                    std = 1.0
            for b in _available_numpy_backends():
                got = _np(getattr(matgrad, op)(*args, backend=b)).reshape(len(exact), -1)
                err = _normwise(got, exact)
                assert err <= 128 * max(std, n * 2.0**-52), (kind, t, op, b, err, std)


def _hex(rows: list[list[str]]) -> np.ndarray:
    return np.array([[float.fromhex(v) for v in row] for row in rows])


def test_det_hessian_graded_bidiagonal_keeps_its_largest_entry(backend: str) -> None:
    """A graded 5×5 bidiagonal (found by a survey of graded matrices): the
    Hessian by minors took the mean of two minors' values where
    ``det_grad`` of one returned 0 (below its normwise rounding level) and
    the other the right value, halving the tensor's largest entry
    (normwise error 0.35; the textbook formula's: 2e-14)."""
    from .test_graded import _normwise

    A = np.zeros((5, 5))
    for (i, j), v in {(0, 0): "0x1.435b2ddb59cdfp-188", (0, 1): "0x1.af67dd0870478p-314",
                      (1, 1): "0x1.dbb09c579b20cp+94", (1, 2): "0x1.61c8ff267c4c8p-33",
                      (2, 2): "0x1.0115f138bbe92p-187", (2, 3): "-0x1.81a768e0c018cp+165",
                      (3, 3): "0x1.5eb15f5b69eb0p+40", (3, 4): "-0x1.4235a724fb531p-184",
                      (4, 4): "0x1.00bf103520760p-285"}.items():
        A[i, j] = float.fromhex(v)
    exact = ref.exact_det_hessian(A).reshape(25, 25).tolist()
    Hs = _np(matgrad.det_hessian(A, backend=backend))
    np.testing.assert_array_equal(Hs, Hs.transpose(2, 3, 0, 1))
    assert _normwise(Hs.reshape(25, 25), exact) <= 128 * 5 * 2.0**-52


def test_det_hvp_overflowing_slot_keeps_its_finite_entries(backend: str) -> None:
    """A graded 4×4 bidiagonal and a direction graded like it, whose true
    ``H`` overflows in most entries (up to 2^1346): the entries whose truth
    is finite are right; the others are not promised (docs/numerics.md §8:
    ±inf, NaN where overflowing terms of both signs meet in the rows tier,
    or finite where ``det_grad`` of a row-replaced matrix returned a tiny
    cofactor beside overflowing ones as 0)."""
    A = _hex([["0x1.484b36ec61c52p+814", "0x1.96134d6b1fb80p+275", "0x0.0p+0", "0x0.0p+0"],
              ["0x0.0p+0", "0x1.bef100ead7850p-431", "0x1.0cdcb85a77476p-149", "0x0.0p+0"],
              ["0x0.0p+0", "0x0.0p+0", "0x1.a0cc28f6c4b1ap+127", "0x1.f64dc8fbd0db3p-3"],
              ["0x0.0p+0", "0x0.0p+0", "0x0.0p+0", "0x1.8c65158f69f5dp+317"]])
    V = _hex([["0x1.379889808f0ccp+814", "0x1.b3ae400d9b5ddp+752", "0x1.960f49656ab8ap+754",
               "0x1.e02b05a9adc74p+754"],
              ["-0x1.6e14eee615aabp+754", "-0x1.8f0bb17edac1fp+752", "0x1.6448d0e9fc892p+753",
               "0x1.ddd76955c48e4p+751"],
              ["-0x1.0515be3f3273bp+752", "0x1.1e3aaccb25a84p+753", "-0x1.0607aa9efb6f9p+754",
               "-0x1.5e18c7cb40baep+753"],
              ["0x1.87ddd08b7358cp+754", "0x1.9d9a0fdbec2d8p+752", "0x1.d44d62385f01dp+754",
               "-0x1.633eba3c2bc9cp+755"]])
    exact = ref.exact_det_hvp(A, V)
    H = _np(matgrad.det_hvp(A, V, backend=backend))
    big = mpmath.mpf(2) ** 1024
    finite = [(i, j) for i, j in np.ndindex(4, 4) if abs(exact[i][j]) < big]
    assert len(finite) == 2
    for i, j in finite:
        assert abs(H[i, j] - float(exact[i][j])) <= 1e-13 * abs(float(exact[i][j])), (i, j)
