"""matgrad.jax: custom_jvp rules around pure_callback, and JAX arrays
through the plain API."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

jax = pytest.importorskip("jax")

import jax.numpy as jnp  # noqa: E402
from jax.test_util import check_grads  # noqa: E402

import matgrad  # noqa: E402
import matgrad.jax as mj  # noqa: E402
from matgrad import _reference as ref  # noqa: E402


@pytest.fixture(autouse=True)
def _x64() -> Iterator[None]:
    """float64 for the tests that do not ask for float32 themselves."""
    with jax.enable_x64(True):
        yield


def _rand(shape: tuple[int, ...], seed: int, cplx: bool = False) -> Any:
    r = np.random.default_rng(seed)
    a = r.standard_normal(shape)
    if cplx:
        a = a + 1j * r.standard_normal(shape)
    return jnp.asarray(a)


def _jax_charpoly(A: Any, x: Any) -> Any:
    return jnp.linalg.det(x[..., None, None] * jnp.eye(A.shape[-1], dtype=A.dtype) - A)


# ------------------------------------------------- exact where autodiff is wrong
@pytest.mark.parametrize("A,expect", [
    ([[1.0, 2.0], [2.0, 4.0]], [[4.0, -2.0], [-2.0, 1.0]]),
    ([[0.0, 1.0], [0.0, 1.0]], [[1.0, 0.0], [-1.0, 0.0]]),
    ([[0.0, 1.0, 2.0], [0.0, 3.0, 5.0], [0.0, 4.0, 7.0]], None),
], ids=["rank1-2x2", "zero-col-2x2", "zero-col-3x3"])
def test_det_gradient_at_singular_matrices(A: Any, expect: Any) -> None:
    A = np.asarray(A)
    if expect is None:
        expect = np.array([[float(v) for v in row] for row in ref.ref_cofactor(A)])
    np.testing.assert_array_equal(np.asarray(jax.grad(mj.det)(jnp.asarray(A))), expect)
    np.testing.assert_array_equal(np.asarray(jax.jacfwd(mj.det)(jnp.asarray(A))), expect)


def test_det_gradient_pivot_not_last() -> None:
    """n ≥ 4 with the zero pivot early: JAX's own rule returns 0 here."""
    A = np.diag([1.0, 2.0, 3.0, 4.0]) - 2 * np.eye(4)
    g = np.asarray(jax.grad(mj.det)(jnp.asarray(A)))
    expect = np.zeros((4, 4))
    expect[1, 1] = -2.0
    np.testing.assert_allclose(g, expect, atol=1e-15)


def test_charpoly_derivative_at_eigenvalue() -> None:
    A = jnp.diag(jnp.array([1.0, 2.0, 3.0, 4.0]))
    assert float(jax.grad(lambda x: mj.charpoly(A, x))(2.0)) == 2.0
    assert float(jax.jacfwd(lambda x: mj.charpoly(A, x))(2.0)) == 2.0


def test_frobenius_gradient_at_zero_and_huge() -> None:
    g = jax.grad(lambda X: mj.frobenius_norm(X).sum())(jnp.zeros((2, 3, 3)))
    assert not np.asarray(g).any()
    R = np.array([[1.0, -2.0], [2.0, 4.0]])
    g = jax.grad(mj.frobenius_norm)(jnp.asarray(R * 1e200))
    np.testing.assert_allclose(np.asarray(g), R / 5, rtol=4e-16)


# ------------------------------------------------- equal to JAX elsewhere
PAIRS: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "det": (mj.det, jnp.linalg.det),
    "slogdet": (lambda A: mj.slogdet(A), lambda A: tuple(jnp.linalg.slogdet(A))),
    "frobenius": (mj.frobenius_norm, lambda A: jnp.linalg.norm(A, axis=(-2, -1))),
}


@pytest.mark.parametrize("name", list(PAIRS))
@pytest.mark.parametrize("cplx", [False, True], ids=["float64", "complex128"])
def test_jvp_matches_jax_on_nonsingular(name: str, cplx: bool) -> None:
    ours, theirs = PAIRS[name]
    A = _rand((3, 4, 4), 0, cplx) + 2 * jnp.eye(4)
    dA = _rand((3, 4, 4), 1, cplx)
    o1, t1 = jax.jvp(ours, (A,), (dA,))
    o2, t2 = jax.jvp(theirs, (A,), (dA,))
    for a, b in zip(jax.tree.leaves((o1, t1)), jax.tree.leaves((o2, t2)), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-12)
    check_grads(ours, (A,), order=1)


def test_bilinear_and_charpoly_match_jax() -> None:
    x, A, y = _rand((2, 3), 2), _rand((2, 3, 4), 3), _rand((4,), 4)

    def own(x: Any, A: Any, y: Any) -> Any:
        return (x[..., None, :] @ A @ y[..., :, None])[..., 0, 0]

    g1 = jax.grad(lambda *a: mj.bilinear(*a).sum(), argnums=(0, 1, 2))(x, A, y)
    g2 = jax.grad(lambda *a: own(*a).sum(), argnums=(0, 1, 2))(x, A, y)
    for a, b in zip(g1, g2, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-13)
    check_grads(mj.bilinear, (x, A, y), order=1)
    S, pts = _rand((2, 1, 4, 4), 5), _rand((3,), 6)
    g1 = jax.grad(lambda *a: mj.charpoly(*a).sum(), argnums=(0, 1))(S, pts)
    g2 = jax.grad(lambda *a: _jax_charpoly(*a).sum(), argnums=(0, 1))(S, pts)
    for a, b in zip(g1, g2, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-12)
    check_grads(mj.charpoly, (S, pts), order=1)


# ------------------------------------------------- transformations
def test_jit_vmap_grad_jacfwd_jacrev() -> None:
    A = _rand((5, 3, 3), 7)
    want = jax.vmap(jax.grad(jnp.linalg.det))(A)
    np.testing.assert_allclose(jax.jit(jax.vmap(jax.grad(mj.det)))(A), want, rtol=1e-12)
    np.testing.assert_allclose(jax.jacrev(mj.det)(A), jax.jacrev(jnp.linalg.det)(A),
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(jax.jacfwd(mj.det)(A), jax.jacfwd(jnp.linalg.det)(A),
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(jax.jit(mj.det)(A), jnp.linalg.det(A), rtol=1e-12)
    pts = _rand((4,), 8)
    got = jax.vmap(jax.grad(mj.charpoly, argnums=(0, 1)), in_axes=(None, 0))(A[0], pts)
    exp = jax.vmap(jax.grad(_jax_charpoly, argnums=(0, 1)), in_axes=(None, 0))(A[0], pts)
    for a, b in zip(got, exp, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(jax.vmap(mj.charpoly, in_axes=(0, None))(A, pts[0]),
                               _jax_charpoly(A, pts[0]), rtol=1e-12)


def test_float32() -> None:
    with jax.enable_x64(False):
        A = jnp.asarray(np.asarray(_rand((3, 3, 3), 9)), dtype=jnp.float32) + 2 * jnp.eye(3)
        d = mj.det(A)
        g = jax.grad(lambda a: mj.det(a).sum())(A)
        assert d.dtype == g.dtype == jnp.float32
        np.testing.assert_allclose(g, jax.grad(lambda a: jnp.linalg.det(a).sum())(A),
                                   rtol=1e-5, atol=1e-6)
        _s, l = mj.slogdet(A)
        assert l.dtype == jnp.float32
        check_grads(mj.det, (A,), order=1, atol=1e-2, rtol=1e-2)


def test_third_order_raises() -> None:
    with pytest.raises(NotImplementedError, match="third and higher derivatives"):
        jax.jacfwd(jax.hessian(mj.det))(jnp.eye(3))


def test_integer_input_is_read_as_float() -> None:
    """The plain functions' rule: integers and bool are read as float64
    (JAX's widest float: float32 unless jax_enable_x64 is on)."""
    wide = jax.dtypes.canonicalize_dtype(jnp.float64)
    A = jnp.array([[2, 1], [1, 3]], dtype=jnp.int32)
    d = mj.det(A)
    assert d.dtype == wide and float(d) == 5.0
    p = mj.charpoly(A, 2)
    assert p.dtype == wide and float(p) == -1.0
    s, l = mj.slogdet(jnp.eye(2, dtype=jnp.bool_))
    assert (float(s), float(l)) == (1.0, 0.0)
    # float8 computes in float32, as float16 and bfloat16 do, and goes back
    d8 = mj.det(jnp.eye(2, dtype=jnp.float8_e4m3fn) * 2)
    assert d8.dtype == jnp.float8_e4m3fn and float(d8) == 4.0
    with pytest.raises(TypeError, match="expected a floating, complex, integer or bool"):
        mj.det(np.array([["a", "b"], ["c", "d"]]))


def test_backend_chosen_at_trace_time() -> None:
    with matgrad.use_backend("numpy"):
        f = jax.jit(jax.grad(mj.det))
        lowered = f.lower(jnp.eye(2))
    np.testing.assert_array_equal(lowered.compile()(jnp.array([[1.0, 2.0], [2.0, 4.0]])),
                                  [[4, -2], [-2, 1]])


# ------------------------------------------------- plain API
def test_plain_api_returns_jax_arrays() -> None:
    A = jnp.array([[1.0, 2.0], [2.0, 4.0]])
    C = matgrad.det_grad(A)
    assert isinstance(C, jax.Array)
    np.testing.assert_array_equal(np.asarray(C), [[4, -2], [-2, 1]])
    d, C = matgrad.det_grad(A, return_value=True)
    assert isinstance(d, jax.Array) and float(d) == 0
    with pytest.raises(TypeError, match="tracer"):
        jax.jit(matgrad.det_grad)(A)


def test_import_error_without_jax() -> None:
    code = ("import sys; sys.modules['jax'] = None\n"
            "try:\n    import matgrad.jax\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "pip install 'matgrad[jax]'" in out
