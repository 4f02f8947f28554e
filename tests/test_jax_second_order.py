"""matgrad.jax: second derivatives.

Exact Hessians of ``det`` at singular matrices (rational references) under
jit and vmap, equal to JAX's own on non-singular input (float64,
complex128), ``check_grads(order=2, modes=("fwd", "rev"))``, jvp of grad,
slogdet's fields, float32, and third order refused."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

jax = pytest.importorskip("jax")

import jax.numpy as jnp  # noqa: E402
from jax.test_util import check_grads  # noqa: E402

import matgrad.jax as mj  # noqa: E402

from ._second_order_table import CASES, describe, exact_det_hessian  # noqa: E402


@pytest.fixture(autouse=True)
def _x64() -> Iterator[None]:
    with jax.enable_x64(True):
        yield


def _rand(shape: tuple[int, ...], seed: int, cplx: bool = False) -> Any:
    r = np.random.default_rng(seed)
    a = r.standard_normal(shape)
    if cplx:
        a = a + 1j * r.standard_normal(shape)
    return jnp.asarray(a)


def _well(n: int, seed: int, cplx: bool = False, batch: tuple[int, ...] = ()) -> Any:
    return _rand((*batch, n, n), seed, cplx) + 3 * jnp.eye(n)


def _jax_charpoly(A: Any, x: Any) -> Any:
    return jnp.linalg.det(x[..., None, None] * jnp.eye(A.shape[-1], dtype=A.dtype) - A)


#: name → (matgrad's, JAX's own), functions of one square matrix
PAIRS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "det": (mj.det, jnp.linalg.det),
    "logabsdet": (lambda A: mj.slogdet(A).logabsdet, lambda A: jnp.linalg.slogdet(A)[1]),
    "sign": (lambda A: mj.slogdet(A).sign, lambda A: jnp.linalg.slogdet(A)[0]),
    "frobenius": (mj.frobenius_norm, lambda A: jnp.linalg.norm(A, axis=(-2, -1))),
    "charpoly": (lambda A: mj.charpoly(A, 0.5), lambda A: _jax_charpoly(A, jnp.asarray(0.5))),
}

HESSIANS: dict[str, Callable[[Any], Any]] = {
    "hessian": jax.hessian(mj.det),
    "jit(jacfwd(jacrev))": jax.jit(jax.jacfwd(jax.jacrev(mj.det))),
    "jacrev(jacrev)": jax.jacrev(jax.jacrev(mj.det)),
    "jacfwd(jacfwd)": jax.jacfwd(jax.jacfwd(mj.det)),
}


# ------------------------------------------------- exact at singular matrices
@pytest.mark.parametrize("how", list(HESSIANS))
@pytest.mark.parametrize("case", list(CASES))
def test_det_hessian_exact(case: str, how: str) -> None:
    A = CASES[case]
    got = np.asarray(HESSIANS[how](jnp.asarray(A)))
    assert describe(got, exact_det_hessian(A)) == "right"


def test_det_hessian_under_vmap_and_float32() -> None:
    A = np.stack(list(CASES.values())[2:])  # the 4×4 cases
    exact = np.stack([exact_det_hessian(a) for a in A])
    got = jax.jit(jax.vmap(jax.hessian(mj.det)))(jnp.asarray(A))
    np.testing.assert_allclose(np.asarray(got), exact, rtol=0, atol=1e-12)
    with jax.enable_x64(False):
        H32 = jax.vmap(jax.hessian(mj.det))(jnp.asarray(A, dtype=jnp.float32))
        assert H32.dtype == jnp.float32
        np.testing.assert_allclose(np.asarray(H32), exact, rtol=0, atol=1e-4)


def test_jvp_of_grad_vmapped_with_unbatched_direction() -> None:
    A = jnp.asarray(np.stack(list(CASES.values())[2:]))
    V = _rand((4, 4), 0)
    got = jax.vmap(lambda a: jax.jvp(jax.grad(mj.det), (a,), (V,))[1])(A)
    want = [np.einsum("ijkl,kl->ij", exact_det_hessian(np.asarray(a)), np.asarray(V)) for a in A]
    np.testing.assert_allclose(np.asarray(got), np.stack(want), rtol=1e-12, atol=1e-12)


def test_charpoly_second_derivatives_at_eigenvalues() -> None:
    D = jnp.diag(jnp.array([1.0, 2.0, 3.0, 4.0]))
    x = jnp.asarray(2.0)
    assert float(jax.hessian(mj.charpoly, argnums=1)(D, x)) == -2.0
    assert float(jax.jit(jax.grad(jax.grad(mj.charpoly, argnums=1), argnums=1))(D, x)) == -2.0
    gA = jax.grad(jax.grad(mj.charpoly, argnums=1), argnums=0)(D, x)
    lam = [1.0, 2.0, 3.0, 4.0]
    want = np.zeros((4, 4))
    for i in range(4):
        want[i, i] = -sum(np.prod([2.0 - lam[k] for k in range(4) if k not in (i, j)])
                          for j in range(4) if j != i)
    np.testing.assert_array_equal(np.asarray(gA), want)


def test_frobenius_hessian_at_zero_is_nan() -> None:
    assert np.isnan(np.asarray(jax.hessian(mj.frobenius_norm)(jnp.zeros((2, 2))))).all()


# ------------------------------------------------- equal to JAX elsewhere
def _real(f: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def g(A: Any) -> Any:
        out = f(A)
        return jnp.sum(jnp.real(out) * 0.7 + jnp.imag(out) * 0.3)
    return g


@pytest.mark.parametrize("name", list(PAIRS))
@pytest.mark.parametrize("cplx", [False, True], ids=["float64", "complex128"])
def test_second_order_matches_jax(name: str, cplx: bool) -> None:
    ours, theirs = PAIRS[name]
    A = _well(4, 1, cplx, (2,))
    V = _rand((2, 4, 4), 2, cplx)
    h1 = jax.jvp(jax.grad(_real(ours)), (A,), (V,))[1]
    h2 = jax.jvp(jax.grad(_real(theirs)), (A,), (V,))[1]
    np.testing.assert_allclose(np.asarray(h1), np.asarray(h2), rtol=1e-10, atol=1e-12)
    if not cplx:
        H1 = jax.hessian(lambda a: ours(a).sum())(A)
        H2 = jax.hessian(lambda a: theirs(a).sum())(A)
        np.testing.assert_allclose(np.asarray(H1), np.asarray(H2), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", list(PAIRS))
@pytest.mark.parametrize("cplx", [False, True], ids=["float64", "complex128"])
def test_check_grads_order_2(name: str, cplx: bool) -> None:
    ours, _ = PAIRS[name]
    check_grads(ours, (_well(3, 3, cplx, (2,)),), order=2, modes=("fwd", "rev"))


def test_bilinear_and_charpoly_check_grads_order_2() -> None:
    x, A, y = _rand((2,), 4), _rand((2, 2, 3), 5), _rand((3,), 6)
    check_grads(mj.bilinear, (x, A, y), order=2, modes=("fwd", "rev"))
    S, pts = _rand((2, 1, 3, 3), 7), _rand((2,), 8)
    check_grads(mj.charpoly, (S, pts), order=2, modes=("fwd", "rev"))
    got = jax.hessian(lambda *a: mj.charpoly(*a).sum(), argnums=(0, 1))(S, pts)
    exp = jax.hessian(lambda *a: _jax_charpoly(*a).sum(), argnums=(0, 1))(S, pts)
    for u, v in zip(jax.tree.leaves(got), jax.tree.leaves(exp), strict=True):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=1e-10, atol=1e-11)


# ------------------------------------------------- refused, never zeros
@pytest.mark.parametrize("third", [
    lambda f: jax.jacfwd(jax.hessian(f)),
    lambda f: jax.jacrev(jax.jacrev(jax.jacrev(f))),
    lambda f: jax.jacfwd(jax.jacfwd(jax.jacfwd(f))),
], ids=["jacfwd-hessian", "rev-rev-rev", "fwd-fwd-fwd"])
@pytest.mark.parametrize("name", ["det", "logabsdet", "frobenius", "charpoly"])
def test_third_order_raises(name: str, third: Callable[..., Any]) -> None:
    ours, _ = PAIRS[name]
    with pytest.raises(NotImplementedError, match="third and higher derivatives"):
        third(ours)(_well(3, 9))


# ------------------------------------------------- slogdet's result
def test_slogdet_fields() -> None:
    A = _well(3, 10)
    r = mj.slogdet(A)
    assert isinstance(r, tuple) and len(r) == 2
    sign, logabs = r
    assert sign is r.sign and logabs is r.logabsdet
    own = jnp.linalg.slogdet(A)
    np.testing.assert_allclose(np.asarray(r.sign), np.asarray(own.sign))
    np.testing.assert_allclose(np.asarray(r.logabsdet), np.asarray(own.logabsdet), rtol=1e-14)
    r2 = jax.jit(mj.slogdet)(A)
    assert type(r2).__name__ == "SlogdetResult" and float(r2.logabsdet) == float(r.logabsdet)


def test_first_order_never_evaluates_the_second_order_kernels(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from matgrad import _second_order

    calls: list[str] = []
    monkeypatch.setattr(_second_order, "hvp", lambda *a: calls.append("hvp"))
    monkeypatch.setattr(_second_order, "adjoint_hvp", lambda *a, **k: calls.append("adj"))
    A = _well(3, 11, batch=(2,))
    for f in (mj.det, lambda a: mj.slogdet(a).logabsdet, mj.frobenius_norm):
        jax.grad(lambda a, f=f: f(a).sum())(A).block_until_ready()
        jax.jvp(f, (A,), (A,))[1].block_until_ready()
        jax.jacfwd(f)(A[0]).block_until_ready()
    assert calls == []
