"""SPEC §1: shapes, dtypes, broadcasting, views, errors, no mutation/aliasing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import matgrad

Op = Callable[..., Any]

# (name, function, input builder) for every public operation
OPS: list[tuple[str, Op, Callable[[np.ndarray], tuple[Any, ...]]]] = [
    ("frobenius_grad", matgrad.frobenius_grad, lambda A: (A,)),
    ("bilinear_grad", matgrad.bilinear_grad, lambda A: (A[..., 0], A[..., -1, :])),
    ("det_grad", matgrad.det_grad, lambda A: (A,)),
    ("logdet_grad", matgrad.logdet_grad, lambda A: (A,)),
    ("charpoly_deriv", matgrad.charpoly_deriv, lambda A: (A, 0.25)),
    ("charpoly", matgrad.charpoly, lambda A: (A, 0.25)),
]
OP_IDS = [o[0] for o in OPS]


@pytest.mark.parametrize("name,op,build", OPS, ids=OP_IDS)
@pytest.mark.parametrize("n", [1, 3, 5])
def test_inputs_not_mutated_and_outputs_not_aliased(
    backend: str, name: str, op: Op, build: Callable[..., Any], n: int
) -> None:
    A = np.random.default_rng(n).standard_normal((4, n, n)) + 2 * np.eye(n)
    args = build(A)
    before = [np.array(a, copy=True) for a in args]
    out = op(*args, backend=backend)
    for a, b in zip(args, before, strict=False):
        np.testing.assert_array_equal(a, b)
    for a in args:
        if isinstance(a, np.ndarray):
            assert not np.shares_memory(np.asarray(out), a)


@pytest.mark.parametrize(
    "dtype,expect",
    [
        (np.float64, np.float64),
        (np.float32, np.float32),
        (np.complex64, np.complex64),
        (np.complex128, np.complex128),
        (np.float16, np.float32),
        (np.int32, np.float64),
        (np.int64, np.float64),
        (np.uint8, np.float64),
        (np.bool_, np.float64),
    ],
)
@pytest.mark.parametrize("name,op,build", OPS, ids=OP_IDS)
def test_dtype_promotion(
    backend: str, dtype: Any, expect: Any, name: str, op: Op, build: Callable[..., Any]
) -> None:
    A = (np.eye(3) * 2 + np.triu(np.ones((3, 3)))).astype(dtype)
    args = build(A)
    out = op(*args, backend=backend)
    assert np.asarray(out).dtype == expect


def test_mixed_dtypes_follow_result_type(backend: str) -> None:
    x32 = np.ones(3, np.float32)
    assert matgrad.bilinear_grad(x32, np.ones(2), backend=backend).dtype == np.float64
    assert matgrad.bilinear_grad(x32, np.ones(2, np.complex64), backend=backend).dtype == (
        np.complex64
    )
    A32 = np.eye(3, dtype=np.float32)
    assert matgrad.charpoly_deriv(A32, 2.0, backend=backend).dtype == np.float32  # weak scalar
    assert matgrad.charpoly_deriv(A32, 1j, backend=backend).dtype == np.complex64
    assert matgrad.charpoly_deriv(A32, np.float64(2), backend=backend).dtype == np.float64


@pytest.mark.parametrize("bad", [np.array([["a"]]), np.array([[None]], dtype=object),
                                 np.array([[1]], dtype="datetime64[s]")])
@pytest.mark.parametrize("name,op,build", OPS, ids=OP_IDS)
def test_non_numeric_dtype_is_type_error(
    bad: np.ndarray, name: str, op: Op, build: Callable[..., Any]
) -> None:
    with pytest.raises(TypeError, match="dtype"):
        op(*build(np.broadcast_to(bad, (1, 1, 2)) if name == "bilinear_grad" else bad))


def test_longdouble_is_type_error() -> None:
    if np.dtype(np.longdouble) == np.float64:
        pytest.skip("longdouble is float64 on this platform")
    with pytest.raises(TypeError, match="not supported"):
        matgrad.det_grad(np.eye(2, dtype=np.longdouble))


@pytest.mark.parametrize("func", [matgrad.det_grad, matgrad.logdet_grad,
                                  lambda A: matgrad.charpoly(A, 1.0)])
def test_shape_errors_square(func: Op) -> None:
    with pytest.raises(ValueError, match=r"square .*\(2, 3\)"):
        func(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"at least 2 dimensions.*\(3,\)"):
        func(np.ones(3))
    with pytest.raises(ValueError, match=r"at least 2 dimensions.*\(\)"):
        func(1.0)


def test_shape_errors_other() -> None:
    with pytest.raises(ValueError, match=r"at least 2 dimensions.*\(4,\)"):
        matgrad.frobenius_grad(np.ones(4))
    with pytest.raises(ValueError, match=r"at least 1 dimension.*\(\)"):
        matgrad.bilinear_grad(1.0, np.ones(2))
    with pytest.raises(ValueError, match="do not broadcast"):
        matgrad.bilinear_grad(np.ones((2, 3)), np.ones((3, 3)))
    with pytest.raises(ValueError, match="do not broadcast"):
        matgrad.charpoly(np.ones((2, 3, 3)), np.ones(3))


def test_unknown_backend_lists_registered() -> None:
    with pytest.raises(ValueError, match=r"(?s)unknown matgrad backend .nope.*numpy: available"):
        matgrad.det_grad(np.eye(2), backend="nope")


# ------------------------------------------------------------ shapes/broadcast
def test_empty_and_trivial_shapes(backend: str) -> None:
    assert matgrad.det_grad(np.zeros((0, 0)), backend=backend).shape == (0, 0)
    assert matgrad.det_grad(np.zeros((5, 0, 0)), backend=backend).shape == (5, 0, 0)
    assert matgrad.det_grad(np.zeros((0, 3, 3)), backend=backend).shape == (0, 3, 3)
    np.testing.assert_array_equal(matgrad.det_grad(np.array([[7.5]]), backend=backend), [[1]])
    np.testing.assert_array_equal(
        matgrad.det_grad(np.array([[[np.nan]]]), backend=backend), [[[1]]]
    )
    p, dp = matgrad.charpoly_deriv(np.zeros((0, 0)), [1.0, 2.0], return_value=True,
                                   backend=backend)
    np.testing.assert_array_equal(p, [1, 1])
    np.testing.assert_array_equal(dp, [0, 0])
    np.testing.assert_array_equal(
        matgrad.charpoly_deriv(np.array([[np.inf]]), [3.0], backend=backend), [1.0]
    )
    assert matgrad.logdet_grad(np.zeros((2, 0, 0)), backend=backend).shape == (2, 0, 0)
    assert matgrad.frobenius_grad(np.zeros((3, 0)), backend=backend).shape == (3, 0)
    assert matgrad.bilinear_grad(np.zeros(0), np.ones(3), backend=backend).shape == (0, 3)
    np.testing.assert_array_equal(matgrad.logdet_grad(np.array([[4.0]]), backend=backend),
                                  [[0.25]])


def test_bilinear_broadcasting(backend: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 1, 3))
    y = rng.standard_normal((4, 5))
    G = matgrad.bilinear_grad(x, y, backend=backend)
    assert G.shape == (2, 4, 3, 5)
    np.testing.assert_array_equal(G, x[..., :, None] * y[..., None, :])
    z = (1 + 2j) * np.arange(3.0)
    np.testing.assert_array_equal(matgrad.bilinear_grad(z, z, backend=backend),
                                  np.outer(z, z))  # no conjugation


def test_charpoly_shapes(backend: str) -> None:
    rng = np.random.default_rng(1)
    A = rng.standard_normal((3, 4, 4))
    x = rng.standard_normal(5)
    # K points for each of B matrices: A (B,1,n,n), x (B,K)
    xb = rng.standard_normal((3, 5))
    d = matgrad.charpoly_deriv(A[:, None], xb, backend=backend)
    assert d.shape == (3, 5)
    for b in range(3):
        np.testing.assert_allclose(d[b], matgrad.charpoly_deriv(A[b], xb[b], backend=backend),
                                   rtol=1e-13)
    # transposed: x (K,1) against A (B,n,n)
    d2 = matgrad.charpoly_deriv(A, x[:, None], backend=backend)
    assert d2.shape == (5, 3)
    np.testing.assert_allclose(d2.T, matgrad.charpoly_deriv(A[:, None], x, backend=backend),
                               rtol=1e-13)
    # scalar x, batch A; batch x, single A
    assert matgrad.charpoly(A, 0.5, backend=backend).shape == (3,)
    assert matgrad.charpoly(A[0], x, backend=backend).shape == (5,)
    assert matgrad.charpoly(A[0], 0.5, backend=backend).shape == ()
    # same-shaped batches pair up elementwise
    np.testing.assert_allclose(
        matgrad.charpoly(A, x[:3], backend=backend),
        [matgrad.charpoly(A[i], x[i], backend=backend) for i in range(3)], rtol=1e-13,
    )


def test_non_contiguous_and_broadcast_views(backend: str) -> None:
    rng = np.random.default_rng(2)
    big = rng.standard_normal((6, 10, 10))
    for view in (big[::2, ::2, 1::2], big.transpose(0, 2, 1)[:, :5, :5],
                 np.broadcast_to(big[0, :4, :4], (3, 4, 4)), big[:, :3, :3].real):
        dense = np.ascontiguousarray(view)
        for op in (matgrad.det_grad, matgrad.logdet_grad, matgrad.frobenius_grad):
            np.testing.assert_array_equal(op(view, backend=backend), op(dense, backend=backend))
        np.testing.assert_array_equal(matgrad.charpoly_deriv(view, 0.3, backend=backend),
                                      matgrad.charpoly_deriv(dense, 0.3, backend=backend))


def test_lists_and_scalars_are_numpy(backend: str) -> None:
    out = matgrad.det_grad([[1, 2], [3, 4]], backend=backend)
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, [[4, -3], [-2, 1]])
    assert isinstance(matgrad.charpoly([[2.0]], 3, backend=backend), np.ndarray)
