"""matgrad.torch: differentiable functions whose gradients are matgrad's,
and torch tensors through the plain API."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import matgrad  # noqa: E402
import matgrad.torch as mt  # noqa: E402
from matgrad import _reference as ref  # noqa: E402

F64 = torch.float64
C128 = torch.complex128


def _t(a: Any, dtype: Any = F64, grad: bool = True) -> Any:
    return torch.tensor(a, dtype=dtype, requires_grad=grad)


def _grad(f: Callable[..., Any], *args: Any) -> tuple[Any, ...]:
    out = f(*args)
    if out.is_complex():
        out = out.real * 0.7 + out.imag * 0.3
    return torch.autograd.grad(out.sum(), args)


def _torch_charpoly(A: Any, x: Any) -> Any:
    n = A.shape[-1]
    return torch.linalg.det(x[..., None, None] * torch.eye(n, dtype=A.dtype) - A)


# ------------------------------------------------- exact where autograd is wrong
@pytest.mark.parametrize("A,expect", [
    ([[1.0, 2.0], [2.0, 4.0]], [[4.0, -2.0], [-2.0, 1.0]]),
    ([[0.0, 1.0], [0.0, 1.0]], [[1.0, 0.0], [-1.0, 0.0]]),
], ids=["rank1-2x2", "zero-col-2x2"])
def test_det_gradient_at_singular_matrices(A: Any, expect: Any) -> None:
    At = _t(A)
    (g,) = _grad(mt.det, At)
    np.testing.assert_array_equal(g.numpy(), expect)
    (own,) = _grad(torch.linalg.det, _t(A))
    assert not own.any(), "PyTorch's own gradient is 0 here: the case is still a live bug"


def test_det_gradient_zero_first_column() -> None:
    A = np.array([[0.0, 1.0, 2.0], [0.0, 3.0, 5.0], [0.0, 4.0, 7.0]])
    (g,) = _grad(mt.det, _t(A))
    exact = np.array([[float(v) for v in row] for row in ref.ref_cofactor(A)])
    np.testing.assert_array_equal(g.numpy(), exact)
    assert g.abs().sum() > 0


def test_charpoly_derivative_at_eigenvalue() -> None:
    A = torch.diag(torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=F64))
    x = _t(2.0)
    (gx,) = torch.autograd.grad(mt.charpoly(A, x), x)
    assert gx.item() == 2.0
    As = A.clone().requires_grad_()
    (gA,) = torch.autograd.grad(mt.charpoly(As, torch.tensor(2.0, dtype=F64)), As)
    expect = np.zeros((4, 4))
    # ∂p/∂A = −cofactor(2I − A), 2I − A = diag(1, 0, −1, −2): only the (1, 1)
    # cofactor, 1·(−1)·(−2) = 2, is nonzero
    expect[1, 1] = -2.0
    np.testing.assert_allclose(gA.numpy(), expect, atol=1e-15)


def test_frobenius_gradient_at_zero_and_huge() -> None:
    (g,) = _grad(mt.frobenius_norm, torch.zeros(2, 3, 3, dtype=F64, requires_grad=True))
    assert not g.any() and not g.isnan().any()
    R = np.array([[1.0, -2.0], [2.0, 4.0]])
    (g,) = _grad(mt.frobenius_norm, _t(R * 1e200))
    np.testing.assert_allclose(g.numpy(), R / 5, rtol=4e-16)
    assert mt.frobenius_norm(_t(R * 1e200)).item() == pytest.approx(5e200, rel=1e-15)


# ------------------------------------------------- equal to autograd elsewhere
FUNCS: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "det": (mt.det, torch.linalg.det),
    "logabsdet": (lambda A: mt.slogdet(A)[1], lambda A: torch.linalg.slogdet(A)[1]),
    "sign": (lambda A: mt.slogdet(A)[0], lambda A: torch.linalg.slogdet(A)[0]),
    "frobenius": (mt.frobenius_norm, lambda A: torch.linalg.matrix_norm(A, "fro")),
}


@pytest.mark.parametrize("name", list(FUNCS))
@pytest.mark.parametrize("dtype", [F64, C128], ids=["float64", "complex128"])
def test_matches_autograd_on_nonsingular(name: str, dtype: Any) -> None:
    if name == "sign" and dtype == F64:
        pytest.skip("the sign of a real determinant has no gradient")
    ours, theirs = FUNCS[name]
    gen = torch.Generator().manual_seed(0)
    A = torch.randn(3, 4, 4, dtype=dtype, generator=gen) + 2 * torch.eye(4, dtype=dtype)
    g1 = _grad(ours, A.clone().requires_grad_())[0]
    g2 = _grad(theirs, A.clone().requires_grad_())[0]
    torch.testing.assert_close(g1, g2, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ours(A), theirs(A), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", [F64, C128], ids=["float64", "complex128"])
def test_bilinear_and_charpoly_match_autograd(dtype: Any) -> None:
    gen = torch.Generator().manual_seed(1)
    A = torch.randn(2, 3, 4, dtype=dtype, generator=gen)
    x = torch.randn(2, 3, dtype=dtype, generator=gen)
    y = torch.randn(4, dtype=dtype, generator=gen)
    args = [t.requires_grad_() for t in (x, A, y)]
    g1 = _grad(mt.bilinear, *args)
    g2 = _grad(lambda x, A, y: (x[..., None, :] @ A @ y[..., :, None])[..., 0, 0], *args)
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-13)
    S = torch.randn(2, 1, 4, 4, dtype=dtype, generator=gen).requires_grad_()
    pts = torch.randn(3, dtype=dtype, generator=gen).requires_grad_()
    g1 = _grad(mt.charpoly, S, pts)
    g2 = _grad(_torch_charpoly, S, pts)
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_gradcheck() -> None:
    gen = torch.Generator().manual_seed(2)
    for dtype in (F64, C128):
        A = (torch.randn(2, 3, 3, dtype=dtype, generator=gen) + 2 * torch.eye(3)).requires_grad_()
        x = torch.randn(2, 3, dtype=dtype, generator=gen).requires_grad_()
        y = torch.randn(3, dtype=dtype, generator=gen).requires_grad_()
        pts = torch.randn(2, 1, dtype=dtype, generator=gen).requires_grad_()
        assert torch.autograd.gradcheck(mt.det, (A,))
        assert torch.autograd.gradcheck(lambda a: mt.slogdet(a)[1], (A,))
        assert torch.autograd.gradcheck(mt.frobenius_norm, (A,))
        assert torch.autograd.gradcheck(mt.bilinear, (x, A, y))
        assert torch.autograd.gradcheck(mt.charpoly, (A, pts))
    Ac = A.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda a: mt.slogdet(a)[0], (Ac,))


# ------------------------------------------------- composability
def test_torch_func_transforms() -> None:
    from torch.func import grad, jacrev, vmap

    gen = torch.Generator().manual_seed(3)
    A = torch.randn(5, 3, 3, dtype=F64, generator=gen)
    A[0, :, 0] = 0.0  # a singular member: exact there too
    want = torch.stack([torch.tensor(np.array(ref.ref_cofactor(a.numpy()), dtype=float))
                        for a in A])
    torch.testing.assert_close(vmap(grad(mt.det))(A), want, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(grad(mt.det)(A[0]), want[0], rtol=1e-12, atol=1e-14)
    J = jacrev(mt.det)(A)
    for b in range(5):
        torch.testing.assert_close(J[b, b], want[b], rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(vmap(mt.det)(A), torch.linalg.det(A))
    B = A[1:]
    pts = torch.randn(4, dtype=F64, generator=gen)
    for f, g in ((lambda a, x: mt.charpoly(a, x), _torch_charpoly),):
        for in_dims in ((0, None), (None, 0)):
            a, x = (B, pts[0]) if in_dims == (0, None) else (B[0], pts)
            got = vmap(grad(f, argnums=(0, 1)), in_dims=in_dims)(a, x)
            exp = vmap(grad(g, argnums=(0, 1)), in_dims=in_dims)(a, x)
            for u, v in zip(got, exp, strict=True):
                torch.testing.assert_close(u, v, rtol=1e-10, atol=1e-12)
    got = vmap(grad(lambda a: mt.slogdet(a)[1]))(B)
    torch.testing.assert_close(got, torch.linalg.inv(B).mT, rtol=1e-10, atol=1e-12)


def test_forward_over_forward_raises_never_zeros() -> None:
    """PyTorch does not differentiate an autograd.Function's jvp rule again
    (a toy Function's jacfwd(jacfwd) is zeros): refused, never zeros."""
    from torch.func import jacfwd

    with pytest.raises(RuntimeError, match="forward mode nested in forward mode"):
        jacfwd(jacfwd(mt.det))(torch.eye(3, dtype=F64))


def test_torch_compile_fullgraph() -> None:
    """Inductor, one graph: one small case (compiling is slow)."""
    f = torch.compile(lambda A: mt.det(A).sum(), fullgraph=True)
    A = torch.tensor([[[1.0, 2.0], [2.0, 4.0]], [[2.0, 1.0], [1.0, 3.0]]], dtype=F64,
                     requires_grad=True)
    f(A).backward()
    np.testing.assert_array_equal(A.grad.numpy(), [[[4, -2], [-2, 1]], [[3, -1], [-1, 2]]])


def test_opcheck() -> None:
    A = torch.randn(2, 3, 3, dtype=F64)
    x = torch.randn(2, 3, dtype=F64)
    for op, args in ((torch.ops.matgrad.det, (A, "numpy")),
                     (torch.ops.matgrad.slogdet, (A, "numpy")),
                     (torch.ops.matgrad.frobenius, (A, "numpy")),
                     (torch.ops.matgrad.outer, (x, x, "numpy")),
                     (torch.ops.matgrad.charpoly, (A, x[:, :1], "numpy")),
                     (torch.ops.matgrad.charpoly_grad_a, (A, x[:, :1], x[:, :1], "numpy"))):
        torch.library.opcheck(op, args)


# ------------------------------------------------- double backward
def _penalised_grad(det: Callable[..., Any], A: Any) -> Any:
    """Gradient of ``det(A) + ‖∂det/∂A‖²`` (a gradient penalty plus another
    term): the penalty's part is second order."""
    (g,) = torch.autograd.grad(det(A), A, create_graph=True)
    (total,) = torch.autograd.grad(det(A) + g.pow(2).sum(), A)
    return total


def test_gradient_penalty_keeps_its_second_order_part() -> None:
    """The case ``@once_differentiable`` dropped silently: equal to PyTorch's own."""
    A = _t([[2.0, 1.0], [1.0, 3.0]])
    own = _penalised_grad(torch.linalg.det, A)
    first_order_only = torch.autograd.grad(torch.linalg.det(A), A)[0]
    assert (own - first_order_only).abs().max() > 1  # the second-order part matters
    half = torch.tensor(0.5, dtype=F64)
    for f, g in ((mt.det, torch.linalg.det),
                 (lambda a: mt.slogdet(a)[1], lambda a: torch.linalg.slogdet(a)[1]),
                 (mt.frobenius_norm, lambda a: torch.linalg.matrix_norm(a)),
                 (lambda a: mt.charpoly(a, half), lambda a: _torch_charpoly(a, half))):
        torch.testing.assert_close(_penalised_grad(f, A), _penalised_grad(g, A),
                                   rtol=1e-13, atol=1e-13)


def test_bilinear_double_backward_is_right() -> None:
    gen = torch.Generator().manual_seed(4)
    A = torch.randn(3, 3, dtype=F64, generator=gen).requires_grad_()
    x = torch.randn(3, dtype=F64, generator=gen).requires_grad_()

    def penalised(f: Callable[..., Any]) -> tuple[Any, ...]:
        (gx,) = torch.autograd.grad(f(x, A, x), x, create_graph=True)
        return torch.autograd.grad(gx.pow(2).sum() + f(x, A, x), (x, A))

    for a, b in zip(penalised(mt.bilinear), penalised(lambda x, A, y: x @ A @ y), strict=True):
        torch.testing.assert_close(a, b)


# ------------------------------------------------- tensors crossing over
class _Spy(matgrad.Backend):
    """Records the address of the data it is handed."""

    name = "spy"

    def __init__(self) -> None:
        self.seen: list[int] = []

    def _see(self, a: np.ndarray) -> None:
        self.seen.append(a.__array_interface__["data"][0])

    def frobenius_grad(self, X: np.ndarray) -> Any:
        self._see(X)
        return matgrad.frobenius_grad(X, backend="numpy")

    def bilinear_grad(self, x: np.ndarray, y: np.ndarray) -> Any:
        return matgrad.bilinear_grad(x, y, backend="numpy")

    def det_grad(self, A: np.ndarray) -> Any:
        self._see(A)
        return matgrad.det_grad(A, backend="numpy")

    def logdet_grad(self, A: np.ndarray) -> Any:
        self._see(A)
        return matgrad.logdet_grad(A, backend="numpy")

    def charpoly_deriv(self, A: np.ndarray, x: np.ndarray) -> Any:
        return matgrad.charpoly_deriv(A, x, return_value=True, backend="numpy")


@pytest.mark.parametrize("dtype", [torch.float32, F64, torch.complex64, C128])
def test_contiguous_cpu_tensors_are_not_copied(dtype: Any) -> None:
    spy = _Spy()
    A = (torch.randn(4, 3, 3, dtype=dtype) + 2 * torch.eye(3)).requires_grad_()
    mt.det(A, backend=spy).sum().abs().backward()
    assert spy.seen and set(spy.seen) == {A.data_ptr()}
    spy.seen.clear()
    matgrad.det_grad(A, backend=spy)  # the plain API: read detached, no copy
    assert spy.seen == [A.data_ptr()]


def test_inputs_not_mutated_and_dtypes() -> None:
    gen = torch.Generator().manual_seed(5)
    A = torch.randn(2, 3, 3, dtype=F64, generator=gen) + 2 * torch.eye(3)
    before = A.clone()
    for f in (mt.det, lambda a: mt.slogdet(a)[1], mt.frobenius_norm):
        a = A.clone().requires_grad_()
        f(a).sum().backward()
        torch.testing.assert_close(a.detach(), before, rtol=0, atol=0)
    for half in (torch.float16, torch.bfloat16):
        h = A.to(half).requires_grad_()
        d = mt.det(h)
        assert d.dtype == half
        d.sum().backward()
        assert h.grad is not None and h.grad.dtype == half
        s, l = mt.slogdet(h)
        assert s.dtype == l.dtype == half
    # integers and bool are read as float64, as the plain functions read them
    Ai = torch.tensor([[2, 1], [1, 3]], dtype=torch.int64)
    for fn, want in ((mt.det, 5.0), (lambda a: mt.charpoly(a, torch.tensor(2)), -1.0)):
        r = fn(Ai)
        assert r.dtype == torch.float64 and r.item() == want
    s, l = mt.slogdet(torch.eye(2, dtype=torch.bool))
    assert s.dtype == l.dtype == torch.float64 and (s.item(), l.item()) == (1.0, 0.0)
    np.testing.assert_array_equal(matgrad.det_grad(Ai).numpy(), [[3.0, -1.0], [-1.0, 2.0]])
    with pytest.raises(TypeError, match=r"dtype torch\.float8"):
        mt.det(torch.ones(2, 2).to(torch.float8_e4m3fn))
    Ac = (torch.randn(3, 3, dtype=C128, generator=gen)).conj()
    assert Ac.is_conj()
    torch.testing.assert_close(mt.det(Ac), torch.linalg.det(Ac))


def test_backend_carried_to_backward_by_name() -> None:
    A = _t([[1.0, 2.0], [2.0, 4.0]])
    with matgrad.use_backend("numpy"):
        d = mt.det(A)
    d.backward()  # outside the with block
    np.testing.assert_array_equal(A.grad.numpy(), [[4, -2], [-2, 1]])


def test_plain_api_returns_tensors() -> None:
    A = _t([[1.0, 2.0], [2.0, 4.0]])
    C = matgrad.det_grad(A)
    assert isinstance(C, torch.Tensor) and C.dtype == F64 and not C.requires_grad
    np.testing.assert_array_equal(C.numpy(), [[4, -2], [-2, 1]])
    d, C = matgrad.det_grad(A, return_value=True)
    assert isinstance(d, torch.Tensor) and d.item() == 0
    _p, dp = matgrad.charpoly_deriv(torch.eye(2, dtype=torch.float32), 2.0, return_value=True)
    assert isinstance(dp, torch.Tensor) and dp.dtype == torch.float32
    G = matgrad.bilinear_grad(torch.ones(2), np.ones(3))  # torch > numpy
    assert isinstance(G, torch.Tensor) and G.shape == (2, 3)


def test_plain_api_refuses_torch_mixed_with_jax() -> None:
    jnp = pytest.importorskip("jax.numpy")
    with pytest.raises(TypeError, match="mix jax and torch"):
        matgrad.bilinear_grad(torch.ones(2), jnp.ones(2))


def test_import_error_without_torch() -> None:
    code = ("import sys; sys.modules['torch'] = None\n"
            "try:\n    import matgrad.torch\nexcept ImportError as e:\n    print(e)\n"
            "import matgrad; assert 'torch' not in [m for m in sys.modules if sys.modules[m]]")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "pip install 'matgrad[torch]'" in out


def test_import_matgrad_does_not_import_torch() -> None:
    code = "import sys, matgrad; print('torch' in sys.modules, 'jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == ["False", "False"]
