"""matgrad.torch: second derivatives and forward mode.

Exact Hessians of ``det`` at singular matrices (rational references), equal
to PyTorch's own second derivatives on non-singular input (float64,
complex128), gradgradcheck, forward mode, the gradient penalty, slogdet's
fields, float32, and third order / forward-over-forward refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch.func import hessian, jacfwd, jacrev, jvp, vmap  # noqa: E402

import matgrad.torch as mt  # noqa: E402

from ._second_order_table import CASES, describe, exact_det_hessian  # noqa: E402

F64 = torch.float64
C128 = torch.complex128


def _torch_charpoly(A: Any, x: Any) -> Any:
    n = A.shape[-1]
    return torch.linalg.det(x[..., None, None] * torch.eye(n, dtype=A.dtype) - A)


HALF = 0.5
#: name → (matgrad's, PyTorch's own), functions of one square matrix
PAIRS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "det": (mt.det, torch.linalg.det),
    "logabsdet": (lambda A: mt.slogdet(A).logabsdet, lambda A: torch.linalg.slogdet(A)[1]),
    "sign": (lambda A: mt.slogdet(A).sign, lambda A: torch.linalg.slogdet(A)[0]),
    "frobenius": (mt.frobenius_norm, lambda A: torch.linalg.matrix_norm(A)),
    "charpoly": (lambda A: mt.charpoly(A, torch.tensor(HALF, dtype=A.dtype)),
                 lambda A: _torch_charpoly(A, torch.tensor(HALF, dtype=A.dtype))),
}


def _rand(shape: tuple[int, ...], dtype: Any, seed: int) -> Any:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, dtype=dtype, generator=gen)


def _well(n: int, dtype: Any, seed: int, batch: tuple[int, ...] = ()) -> Any:
    return _rand((*batch, n, n), dtype, seed) + 3 * torch.eye(n, dtype=dtype)


def _real(out: Any) -> Any:
    return out.real * 0.7 + out.imag * 0.3 if out.is_complex() else out


# ------------------------------------------------- exact at singular matrices
HESSIANS: dict[str, Callable[[Any], Any]] = {
    "torch.func.hessian": lambda A: hessian(mt.det)(A),
    "torch.autograd.functional.hessian": lambda A: torch.autograd.functional.hessian(mt.det, A),
    "jacrev(jacrev)": lambda A: jacrev(jacrev(mt.det))(A),
    "jacrev(jacfwd)": lambda A: jacrev(jacfwd(mt.det))(A),
}


@pytest.mark.parametrize("how", list(HESSIANS))
@pytest.mark.parametrize("case", list(CASES))
def test_det_hessian_exact(case: str, how: str) -> None:
    A = CASES[case]
    got = HESSIANS[how](torch.tensor(A, dtype=F64)).numpy()
    assert describe(got, exact_det_hessian(A)) == "right"


def test_det_hessian_batched_and_float32() -> None:
    A = np.stack(list(CASES.values())[2:])  # the 4×4 cases
    exact = np.stack([exact_det_hessian(a) for a in A])
    got = vmap(hessian(mt.det))(torch.tensor(A, dtype=F64)).numpy()
    np.testing.assert_allclose(got, exact, rtol=0, atol=1e-12)
    H32 = vmap(hessian(mt.det))(torch.tensor(A, dtype=torch.float32))
    assert H32.dtype == torch.float32
    np.testing.assert_allclose(H32.numpy(), exact, rtol=0, atol=1e-4)


def test_charpoly_second_derivatives_at_eigenvalues() -> None:
    """p = (x−1)(x−2)(x−3)(x−4): p″(2) = −2 exactly, where 2I − A is singular,
    and ∂²p/∂x∂A = −D cofactor(2I − A)[I], diagonal for diagonal A (exact)."""
    D = torch.diag(torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=F64))
    x = torch.tensor(2.0, dtype=F64)
    assert hessian(mt.charpoly, argnums=1)(D, x).item() == -2.0
    (gA, gx) = jacrev(lambda a, t: jacrev(mt.charpoly, argnums=1)(a, t), argnums=(0, 1))(D, x)
    assert gx.item() == -2.0
    # p′(x) = Σ_i Π_{k≠i}(x − k), ∂p′/∂A_ii = −Σ_{j≠i} Π_{k∉{i,j}}(x − k) at x = 2
    lam = [1.0, 2.0, 3.0, 4.0]
    want = np.zeros((4, 4))
    for i in range(4):
        want[i, i] = -sum(np.prod([2.0 - lam[k] for k in range(4) if k not in (i, j)])
                          for j in range(4) if j != i)
    np.testing.assert_array_equal(gA.numpy(), want)


def test_frobenius_hessian_at_zero_is_nan() -> None:
    """‖·‖_F has no Hessian at X = 0: NaN, not a finite stand-in."""
    H = hessian(mt.frobenius_norm)(torch.zeros(2, 2, dtype=F64))
    assert H.isnan().all()


# ------------------------------------------------- equal to PyTorch elsewhere
def _hvp(f: Callable[[Any], Any], A: Any, V: Any) -> Any:
    """``d/dt ∇f(A + tV)`` by double backward."""
    a = A.clone().requires_grad_()
    (g,) = torch.autograd.grad(_real(f(a)).sum(), a, create_graph=True)
    (h,) = torch.autograd.grad((g * V.conj()).real.sum(), a)
    return h


@pytest.mark.parametrize("name", list(PAIRS))
@pytest.mark.parametrize("dtype", [F64, C128], ids=["float64", "complex128"])
def test_double_backward_matches_pytorch(name: str, dtype: Any) -> None:
    if name == "sign" and dtype == F64:
        pytest.skip("the sign of a real determinant is locally constant")
    ours, theirs = PAIRS[name]
    A = _well(4, dtype, 0, (2,))
    V = _rand((2, 4, 4), dtype, 1)
    torch.testing.assert_close(_hvp(ours, A, V), _hvp(theirs, A, V), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", list(PAIRS))
def test_hessian_matches_pytorch(name: str) -> None:
    if name == "sign":
        pytest.skip("the sign of a real determinant is locally constant")
    ours, theirs = PAIRS[name]
    A = _well(3, F64, 2)
    torch.testing.assert_close(hessian(ours)(A), hessian(theirs)(A), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(torch.autograd.functional.hessian(ours, A),
                               torch.autograd.functional.hessian(theirs, A),
                               rtol=1e-10, atol=1e-12)


def test_bilinear_and_charpoly_hessians_in_every_argument() -> None:
    x, A, y = _rand((2, 3), F64, 3), _rand((2, 3, 4), F64, 4), _rand((4,), F64, 5)

    def own(x: Any, A: Any, y: Any) -> Any:
        return (x[..., None, :] @ A @ y[..., :, None])[..., 0, 0]

    args = (0, 1, 2)
    got = hessian(lambda *a: mt.bilinear(*a).sum(), argnums=args)(x, A, y)
    exp = hessian(lambda *a: own(*a).sum(), argnums=args)(x, A, y)
    for u, v in zip(torch.utils._pytree.tree_leaves(got), torch.utils._pytree.tree_leaves(exp),
                    strict=True):
        torch.testing.assert_close(u, v, rtol=1e-12, atol=1e-13)
    S, pts = _rand((2, 1, 4, 4), F64, 6), _rand((3,), F64, 7)
    got = hessian(lambda *a: mt.charpoly(*a).sum(), argnums=(0, 1))(S, pts)
    exp = hessian(lambda *a: _torch_charpoly(*a).sum(), argnums=(0, 1))(S, pts)
    for u, v in zip(torch.utils._pytree.tree_leaves(got), torch.utils._pytree.tree_leaves(exp),
                    strict=True):
        torch.testing.assert_close(u, v, rtol=1e-10, atol=1e-11)


@pytest.mark.parametrize("dtype", [F64, C128], ids=["float64", "complex128"])
def test_gradgradcheck(dtype: Any) -> None:
    A = _well(3, dtype, 8, (2,)).requires_grad_()
    x = _rand((2, 3), dtype, 9).requires_grad_()
    y = _rand((3,), dtype, 10).requires_grad_()
    pts = _rand((2, 1), dtype, 11).requires_grad_()
    for f, args in ((mt.det, (A,)), (lambda a: mt.slogdet(a).logabsdet, (A,)),
                    (mt.frobenius_norm, (A,)), (mt.bilinear, (x, A, y)),
                    (mt.charpoly, (A, pts))):
        assert torch.autograd.gradgradcheck(f, args, check_fwd_over_rev=True)
        assert torch.autograd.gradcheck(f, args, check_forward_ad=True)
    if dtype == C128:
        assert torch.autograd.gradgradcheck(lambda a: mt.slogdet(a).sign, (A,),
                                            check_fwd_over_rev=True)


def test_gradient_penalty_complex() -> None:
    """A gradient penalty plus another term keeps its second-order part."""
    A = _well(3, C128, 12)

    def penalised(f: Callable[[Any], Any]) -> Any:
        a = A.clone().requires_grad_()
        (g,) = torch.autograd.grad(_real(f(a)), a, create_graph=True)
        (total,) = torch.autograd.grad(_real(f(a)) + g.abs().pow(2).sum(), a)
        return total

    for name, (ours, theirs) in PAIRS.items():
        torch.testing.assert_close(penalised(ours), penalised(theirs), rtol=1e-10,
                                   atol=1e-12, msg=name)


# ------------------------------------------------- forward mode
@pytest.mark.parametrize("name", list(PAIRS))
def test_forward_mode_matches_pytorch(name: str) -> None:
    ours, theirs = PAIRS[name]
    A = _well(4, F64, 13, (2,))
    V = _rand((2, 4, 4), F64, 14)
    o1, t1 = jvp(ours, (A,), (V,))
    o2, t2 = jvp(theirs, (A,), (V,))
    torch.testing.assert_close(o1, o2, rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(t1, t2, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(jacfwd(ours)(A[0]), jacrev(theirs)(A[0]), rtol=1e-10, atol=1e-12)


def test_jacfwd_exact_at_singular_matrix() -> None:
    A = torch.tensor([[1.0, 2.0], [2.0, 4.0]], dtype=F64)
    np.testing.assert_array_equal(jacfwd(mt.det)(A).numpy(), [[4.0, -2.0], [-2.0, 1.0]])


# ------------------------------------------------- refused, never zeros
def test_third_order_raises() -> None:
    A = _well(3, F64, 15).requires_grad_()
    (g,) = torch.autograd.grad(mt.det(A), A, create_graph=True)
    (h,) = torch.autograd.grad(g[0, 0], A, create_graph=True)
    with pytest.raises(RuntimeError, match="third and higher derivatives"):
        torch.autograd.grad(h[1, 1], A)
    with pytest.raises(RuntimeError, match=r"third and higher|nested in forward"):
        jacfwd(hessian(mt.det))(A.detach())
    with pytest.raises(RuntimeError, match="third and higher derivatives"):
        jacrev(jacrev(jacrev(mt.det)))(A.detach())


@pytest.mark.parametrize("name", ["det", "logabsdet", "frobenius", "charpoly"])
def test_second_order_under_torch_compile_is_an_error(name: str) -> None:
    """First order compiles (fullgraph); a gradient penalty through the
    compiled graph is AOTAutograd's error, never a silently dropped term."""
    ours, _ = PAIRS[name]
    torch._dynamo.reset()
    f = torch.compile(lambda A: ours(A).sum(), fullgraph=True)
    A = torch.tensor([[1.0, 2.0], [2.0, 5.0]], dtype=F64, requires_grad=True)
    (g,) = torch.autograd.grad(f(A), A, create_graph=True)
    with pytest.raises(RuntimeError, match="double backward"):
        torch.autograd.grad(f(A) + g.pow(2).sum(), A)


# ------------------------------------------------- slogdet's result
def test_slogdet_fields() -> None:
    A = _well(3, F64, 16)
    r = mt.slogdet(A)
    own = torch.linalg.slogdet(A)
    assert isinstance(r, tuple) and len(r) == 2
    sign, logabs = r
    assert sign is r.sign and logabs is r.logabsdet
    torch.testing.assert_close(r.sign, own.sign)
    torch.testing.assert_close(r.logabsdet, own.logabsdet)


def test_opcheck_second_order_ops() -> None:
    A = _well(3, F64, 17, (2,))
    V = _rand((2, 3, 3), F64, 18)
    for name in ("det", "logdet", "frobenius"):
        torch.library.opcheck(torch.ops.matgrad.hvp, (name, A, V, "numpy"))
        torch.library.opcheck(torch.ops.matgrad.hvp_adjoint, (name, A, V, "numpy"))
    torch.library.opcheck(torch.ops.matgrad.connect, (V, A))


def test_first_order_pays_nothing_for_second_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plain backward multiplies by the saved gradient: no tie, no copy,
    no second-order kernel."""
    from matgrad import _second_order

    calls: list[str] = []
    monkeypatch.setattr(mt._Tie, "forward", staticmethod(
        lambda *a: calls.append("tie") or a[2].clone()))
    monkeypatch.setattr(_second_order, "hvp", lambda *a: calls.append("hvp"))
    A = _well(3, F64, 19, (2,)).requires_grad_()
    for f in (mt.det, lambda a: mt.slogdet(a).logabsdet, mt.frobenius_norm):
        f(A).sum().backward()
    assert calls == []
