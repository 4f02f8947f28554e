"""Front end: shapes, dtypes, broadcasting, input errors, backend-result checks, no aliasing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from matgrad_numpy import NumpyBackend

import matgrad
from matgrad._operations import OPERATIONS

Op = Callable[..., Any]

# (name, function, input builder) for every public operation of the table
OPS: list[tuple[str, Op, Callable[[np.ndarray], tuple[Any, ...]]]] = [
    (name, getattr(matgrad, name), op.example) for name, op in OPERATIONS.items()
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


# ------------------------------------------------------------ backend results
class _Liar(NumpyBackend):
    """A backend whose operations return what ``BEHAVIOUR`` says."""

    name = "liar"

    def __init__(self, behaviour: Callable[..., Any]) -> None:
        self.behaviour = behaviour

    def frobenius_grad(self, X: np.ndarray) -> Any:
        return self.behaviour(X)

    def bilinear_grad(self, x: np.ndarray, y: np.ndarray) -> Any:
        return self.behaviour(x, y)

    def det_grad(self, A: np.ndarray) -> Any:
        return self.behaviour(A)

    def logdet_grad(self, A: np.ndarray) -> Any:
        return self.behaviour(A)

    def charpoly_deriv(self, A: np.ndarray, x: np.ndarray) -> Any:
        return self.behaviour(A, x)


_BAD_SQUARE: list[tuple[str, Callable[..., Any], str]] = [
    ("alias", lambda A: A, "shares memory with its input [AX]"),
    ("view", lambda A: A[:, ::-1], "shares memory with its input [AX]"),
    ("none", lambda A: None, "returned NoneType, not numpy.ndarray"),
    ("list", lambda A: A.tolist(), "returned list"),
    ("matrix", lambda A: np.asmatrix(A[0].copy()), "returned numpy.matrix"),
    ("shape", lambda A: np.zeros(A.shape[:-1]), r"shape \(1, 3\), expected \(1, 3, 3\)"),
    ("dtype", lambda A: A.astype(np.float32), "dtype float32, expected float64"),
]


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix
@pytest.mark.parametrize("op", [matgrad.det_grad, matgrad.logdet_grad, matgrad.frobenius_grad],
                         ids=["det_grad", "logdet_grad", "frobenius_grad"])
@pytest.mark.parametrize("behaviour,message", [b[1:] for b in _BAD_SQUARE],
                         ids=[b[0] for b in _BAD_SQUARE])
def test_bad_backend_results_are_errors(op: Op, behaviour: Callable[..., Any],
                                        message: str) -> None:
    A = np.eye(3) + 1.0
    before = A.copy()
    with pytest.raises(matgrad.BackendResultError, match=message) as info:
        op(A, backend=_Liar(behaviour))
    text = str(info.value)
    assert "'liar'" in text and op.__name__ in text  # names the backend and the operation
    assert isinstance(info.value, RuntimeError)
    np.testing.assert_array_equal(A, before)


def test_bad_bilinear_result_is_an_error() -> None:
    def halves(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.ones((x.shape[0], x.shape[1], y.shape[1] + 1))

    with pytest.raises(matgrad.BackendResultError, match=r"bilinear_grad.*shape \(1, 2, 4\)"):
        matgrad.bilinear_grad(np.ones(2), np.ones(3), backend=_Liar(halves))
    with pytest.raises(matgrad.BackendResultError, match="shares memory with its input x"):
        matgrad.bilinear_grad(np.ones(2), np.ones(2), backend=_Liar(
            lambda x, y: np.lib.stride_tricks.as_strided(x, (1, 2, 2), (16, 8, 0))))


_BAD_PAIRS: list[tuple[str, Callable[..., Any], str]] = [
    ("single", lambda A, x: x.copy(), "returned numpy.ndarray, not the pair"),
    ("triple", lambda A, x: (x.copy(), x.copy(), x.copy()), "a tuple of length 3"),
    ("list", lambda A, x: [x.copy(), x.copy()], "returned list, not the pair"),
    ("none", lambda A, x: (x.copy(), None), "returned p′ = NoneType"),
    ("alias", lambda A, x: (x, x.copy()), "p = an array that shares memory with its input x"),
    ("same", lambda A, x: (x.copy(),) * 2, "p and p′ sharing memory"),
    ("shape", lambda A, x: (x.copy(), x[:, :1].copy()), r"p′ = an array of shape \(1, 1\)"),
    ("dtype", lambda A, x: (x.copy(), x.astype(np.complex128)), "p′ = an array of dtype"),
]


@pytest.mark.parametrize("behaviour,message", [b[1:] for b in _BAD_PAIRS],
                         ids=[b[0] for b in _BAD_PAIRS])
def test_bad_charpoly_results_are_errors(behaviour: Callable[..., Any], message: str) -> None:
    for op in (matgrad.charpoly, matgrad.charpoly_deriv):
        with pytest.raises(matgrad.BackendResultError, match=message) as info:
            op(np.eye(3), np.array([1.0, 2.0]), backend=_Liar(behaviour))
        assert "'liar'" in str(info.value) and "charpoly_deriv" in str(info.value)


def test_good_plugin_results_pass_the_checks() -> None:
    b = _Liar(lambda *args: NumpyBackend().det_grad(*args))
    np.testing.assert_array_equal(matgrad.det_grad(np.eye(2), backend=b), np.eye(2))


# ------------------------------------------------------------ input messages
@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix
def test_masked_and_sparse_inputs_are_refused() -> None:
    masked = np.ma.masked_array(np.eye(2), mask=[[False, True], [False, False]])
    with pytest.raises(TypeError, match=r"det_grad: A is a masked array.*filled"):
        matgrad.det_grad(masked)
    with pytest.raises(TypeError, match="bilinear_grad: y is a masked array"):
        matgrad.bilinear_grad(np.ones(2), np.ma.masked_array(np.ones(2)))
    with pytest.raises(TypeError, match="charpoly: x is a masked array"):
        matgrad.charpoly(np.eye(2), np.ma.masked_array([1.0]))
    sparse = pytest.importorskip("scipy.sparse")
    for make in (sparse.csr_matrix, sparse.csr_array, sparse.coo_array):
        with pytest.raises(TypeError, match=r"logdet_grad: A is a SciPy sparse .*toarray"):
            matgrad.logdet_grad(make(np.eye(2)))
    # np.matrix is still a dense NumPy array
    M = np.asmatrix([[2.0, 1.0], [1.0, 3.0]])
    np.testing.assert_array_equal(matgrad.det_grad(M), [[3.0, -1.0], [-1.0, 2.0]])


def test_ragged_lists_name_the_function_and_argument() -> None:
    with pytest.raises(ValueError, match="det_grad: A could not be converted to an array"):
        matgrad.det_grad([[1, 2], [3]])
    with pytest.raises(ValueError, match="charpoly: x could not be converted"):
        matgrad.charpoly(np.eye(2), [[1.0], [1.0, 2.0]])


def test_huge_python_integers_name_the_argument() -> None:
    for x in (10**400, -(10**400)):
        with pytest.raises(ValueError, match=r"charpoly: x is an integer of \d+ bits"):
            matgrad.charpoly(np.eye(2), x)
        with pytest.raises(ValueError, match="charpoly_deriv: x is an integer"):
            matgrad.charpoly_deriv(np.eye(2), x)
    np.testing.assert_allclose(matgrad.charpoly(np.zeros((1, 1)), 10**300), 1e300)


# ------------------------------------------------------------ empty shapes
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex64])
def test_empty_results_follow_the_broadcast_shape(backend: str, dtype: Any) -> None:
    def z(*shape: int) -> np.ndarray:
        return np.zeros(shape, dtype)

    charpoly_cases: list[tuple[np.ndarray, Any, tuple[int, ...]]] = [
        (z(0, 0), 1.0, ()),
        (z(0, 0), np.ones(3, dtype), (3,)),
        (z(0, 0), np.ones((3, 1), dtype), (3, 1)),
        (z(2, 0, 0), 1.0, (2,)),
        (z(2, 0, 0), np.ones((3, 1), dtype), (3, 2)),
        (z(0, 3, 3), 1.0, (0,)),
        (z(3, 3), np.ones(0, dtype), (0,)),
        (z(0, 1, 3, 3), np.ones(4, dtype), (0, 4)),
        (z(2, 3, 3), np.ones((0, 1), dtype), (0, 2)),
    ]
    for A, x, shape in charpoly_cases:
        p = matgrad.charpoly(A, x, backend=backend)
        p2, dp = matgrad.charpoly_deriv(A, x, return_value=True, backend=backend)
        for r in (p, p2, dp):
            assert isinstance(r, np.ndarray)
            assert r.shape == shape, (A.shape, np.shape(x), r.shape)
            assert r.dtype == dtype
        if A.shape[-1] == 0:  # det of a 0×0 is 1 at every x
            np.testing.assert_array_equal(p, np.ones(shape))
            np.testing.assert_array_equal(dp, np.zeros(shape))
    for shape in [(0, 0), (0, 0, 0), (4, 0, 0), (0, 3, 3), (2, 0, 5, 5)]:
        for op in (matgrad.det_grad, matgrad.logdet_grad, matgrad.frobenius_grad):
            r = op(z(*shape), backend=backend)
            assert r.shape == shape and r.dtype == dtype
    for shape in [(2, 0), (0, 3), (0, 0), (3, 0, 4)]:
        assert matgrad.frobenius_grad(z(*shape), backend=backend).shape == shape
    assert matgrad.bilinear_grad(z(0, 3), z(1, 2), backend=backend).shape == (0, 3, 2)
    assert matgrad.bilinear_grad(z(0), z(0), backend=backend).shape == (0, 0)
    assert matgrad.bilinear_grad(z(2, 0), z(1, 4), backend=backend).shape == (2, 0, 4)
