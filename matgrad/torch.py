"""Differentiable matgrad functions for PyTorch.

``frobenius_norm(X)``, ``bilinear(x, A, y)``, ``det(A)``, ``slogdet(A)`` and
``charpoly(A, x)`` are ordinary differentiable PyTorch functions whose
backward passes are matgrad's gradients:

* ``det``: ``∂det/∂A = cofactor(A)``, exact for singular ``A`` wherever the
  zero pivot falls (PyTorch's own ``torch.linalg.det`` gives 0 there, e.g.
  at ``[[1, 2], [2, 4]]``, whose gradient is ``[[4, −2], [−2, 1]]``);
* ``slogdet``: ``∂log|det A|/∂A = A⁻ᴴ``, with ``(sign, logabsdet)`` computed
  without over- or underflow;
* ``frobenius_norm``: ``X/‖X‖_F``, 0 at ``X = 0``, no overflow at 1e200;
* ``bilinear``: ``xᵀ A y`` with gradients ``x yᵀ``, ``A y``, ``Aᵀ x``;
* ``charpoly``: ``p(x) = det(xI − A)`` with ``p′(x)`` exact at eigenvalues,
  and ``∂p/∂A = −cofactor(xI − A)``.

On non-singular input every gradient equals what PyTorch's autograd gives
for ``torch.linalg.det``, ``torch.linalg.slogdet``,
``torch.linalg.matrix_norm(X, "fro")``, ``x @ A @ y`` and ``det(xI − A)``, to
rounding, in real and complex dtypes: PyTorch's conjugate convention
(``grad_in = grad_out · conj(∂f/∂z)`` for a holomorphic ``f``; the
steepest-ascent direction for a real-valued ``f``).  Batches broadcast as in
the rest of matgrad.

Design
------
Each function is a :class:`torch.autograd.Function` with ``setup_context``
and ``generate_vmap_rule = True`` around *opaque* custom operators
(``torch.library.custom_op`` in the ``matgrad`` namespace) that carry a
``register_fake`` (shapes for ``torch.compile``) and a ``register_vmap``
(batched calls instead of a per-sample loop).  This combination is what
works in ``torch.func.grad``/``vmap``/``jacrev`` and under ``torch.compile``
with ``fullgraph=True``; a custom operator with ``register_autograd`` alone
makes ``torch.func.grad`` raise and ``jacfwd`` return zeros silently.

* **Forward mode** (``torch.func.jvp``, ``jacfwd``) is not implemented and
  raises PyTorch's error for an ``autograd.Function`` without ``jvp`` (never
  zeros): Dynamo refuses a ``jvp`` method.  Use ``jacrev``.
* **Double backward** (``create_graph=True``: Hessian-vector products,
  gradient penalties).  ``bilinear`` is right to every order: its backward
  is built from differentiable pieces.  For ``det``, ``slogdet``,
  ``frobenius_norm`` and ``charpoly`` the second derivative raises a
  ``RuntimeError`` the moment anything differentiates through their
  gradient; it is never silently dropped (``@once_differentiable`` drops it
  when the incoming gradient does not require grad, as in a gradient
  penalty).
* **The backend** is resolved when the forward runs (the ``backend=``
  keyword, :func:`matgrad.use_backend`, :func:`matgrad.set_backend`,
  ``$MATGRAD_BACKEND``, ``auto``) and carried to the backward by name:
  context variables do not reach autograd's worker threads, and the backward
  often runs outside the ``with`` block.  Under ``torch.compile`` it is
  resolved at trace time.
* **Tensors crossing over.**  CPU tensors are read with
  ``.detach().numpy()``, which copies nothing; contiguous float32, float64,
  complex64 and complex128 tensors then reach the backend without a copy.
  A conjugate-bit tensor is resolved (one copy).  float16 and bfloat16
  compute in float32 and come back in their own dtype.  Integer and bool
  tensors are a ``TypeError`` (they have no gradient).  Results come back as
  CPU tensors in the input's dtype.  CUDA tensors are refused with a clear
  error: no matgrad backend yet declares that it takes torch's CUDA memory.
* **Value and gradient from one pass**: the forward calls matgrad's
  ``det_grad``/``logdet_grad``/``frobenius_grad`` with ``return_value=True``
  and ``charpoly_deriv(..., return_value=True)`` and saves the gradient, so
  the backward is a multiplication.  ``charpoly``'s gradient with respect to
  ``A`` (one cofactor of ``xI − A`` per point) is computed only in the
  backward and only when ``A`` needs it, in chunks of points.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

try:
    import torch
except ImportError as _exc:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        "matgrad.torch needs PyTorch, which is not installed: "
        "pip install 'matgrad[torch]'"
    ) from _exc

from . import _api
from ._select import BackendLike, carried, carry

__all__ = ["bilinear", "charpoly", "det", "frobenius_norm", "slogdet"]

Tensor = Any  # torch.Tensor; torch's own annotations are not followed by mypy

# ------------------------------------------------------------- backend carry
# Resolved when the forward runs; under torch.compile once, at trace time,
# its name a constant of the graph (Dynamo cannot trace context variables).
_carry: Callable[[BackendLike], str] = torch._dynamo.assume_constant_result(carry)
_backend = carried


# ------------------------------------------------------------- conversions
def _host(t: Tensor) -> np.ndarray:
    """A CPU tensor as a NumPy array, without a copy (conj bit: one copy)."""
    t = t.detach()
    if t.is_conj():
        t = t.resolve_conj()
    if t.is_neg():
        t = t.resolve_neg()
    return t.numpy()  # type: ignore[no-any-return]


def _tensor(a: Any) -> Tensor:
    a = np.asarray(a)
    if not a.flags.c_contiguous or not a.flags.writeable:
        a = np.array(a, order="C")
    return torch.from_numpy(a)


_FLOATING = ("float32", "float64", "complex64", "complex128")


def _prepare(func: str, named: dict[str, Any]) -> tuple[list[Tensor], Any]:
    """Check and cast the inputs: one compute dtype (float16/bfloat16 → float32);
    returns the cast tensors and the dtype the results go back to."""
    tensors = {k: v for k, v in named.items() if isinstance(v, torch.Tensor)}
    for k, v in tensors.items():
        if not (v.is_floating_point() or v.is_complex()):
            raise TypeError(
                f"matgrad.torch.{func}: {k} has dtype {v.dtype}; expected a floating "
                "or complex dtype (float16, bfloat16, float32, float64, complex64, "
                "complex128)"
            )
        if v.device.type != "cpu":
            raise TypeError(
                f"matgrad.torch.{func}: {k} is on {v.device}; no installed matgrad "
                "backend declares that it takes torch tensors there.  Move it to the "
                f"CPU ({k}.cpu()) or use the plain matgrad functions with CuPy arrays"
            )
    if not tensors:
        raise TypeError(f"matgrad.torch.{func}: expected at least one torch.Tensor")
    out_dtype = tensors[next(iter(tensors))].dtype
    for v in tensors.values():
        out_dtype = torch.promote_types(out_dtype, v.dtype)
    compute = out_dtype
    if compute in (torch.float16, torch.bfloat16):
        compute = torch.float32
    if str(compute).removeprefix("torch.") not in _FLOATING:
        raise TypeError(f"matgrad.torch.{func}: dtype {compute} is not supported")
    cast = []
    for k, v in named.items():
        if isinstance(v, torch.Tensor):
            cast.append(v if v.dtype == compute else v.to(compute))
        else:
            try:
                cast.append(torch.as_tensor(v, dtype=compute))
            except (TypeError, ValueError, RuntimeError) as exc:
                raise TypeError(f"matgrad.torch.{func}: {k} is not a tensor: {exc}") from None
    return cast, out_dtype


def _back(t: Tensor, dtype: Any) -> Tensor:
    return t if t.dtype == dtype or t.is_complex() != dtype.is_complex else t.to(dtype)


def _sum_to(t: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Sum a broadcast gradient back to an input's shape."""
    lead = t.dim() - len(shape)
    if lead > 0:
        t = t.sum(dim=tuple(range(lead)))
    dims = tuple(i for i, s in enumerate(shape) if s == 1 and t.shape[i] != 1)
    if dims:
        t = t.sum(dim=dims, keepdim=True)
    return t


# ------------------------------------------------------------- custom ops
def _det_impl(A: Tensor, backend: str) -> tuple[Tensor, Tensor]:
    det, C = _api.det_grad(_host(A), return_value=True, backend=_backend(backend))
    return _tensor(det), _tensor(C)


def _slogdet_impl(A: Tensor, backend: str) -> tuple[Tensor, Tensor, Tensor]:
    (sign, logabs), G = _api.logdet_grad(_host(A), return_value=True, backend=_backend(backend))
    return _tensor(sign), _tensor(logabs), _tensor(G)


def _frobenius_impl(X: Tensor, backend: str) -> tuple[Tensor, Tensor]:
    norm, G = _api.frobenius_grad(_host(X), return_value=True, backend=_backend(backend))
    return _tensor(norm), _tensor(G)


def _outer_impl(x: Tensor, y: Tensor, backend: str) -> Tensor:
    return _tensor(_api.bilinear_grad(_host(x), _host(y), backend=_backend(backend)))


def _charpoly_impl(A: Tensor, x: Tensor, backend: str) -> tuple[Tensor, Tensor]:
    p, dp = _api.charpoly_deriv(_host(A), _host(x), return_value=True,
                                backend=_backend(backend))
    return _tensor(p), _tensor(dp)


#: Points per chunk in charpoly's A-gradient: about this many matrix entries.
_CHUNK_ENTRIES = 1 << 18


def _charpoly_grad_a_impl(A: Tensor, x: Tensor, g: Tensor, backend: str) -> Tensor:
    """``−Σ_points g·conj(cofactor(xI − A))`` summed to ``A``'s shape."""
    An, xn, gn = _host(A), _host(x), _host(g)
    n = An.shape[-1]
    abatch = An.shape[:-2]
    out = np.broadcast_shapes(abatch, xn.shape, gn.shape)
    d = len(out)
    apad = (1,) * (d - len(abatch)) + abatch
    idx = np.broadcast_to(np.arange(math.prod(abatch)).reshape(apad), out).ravel()
    xf = np.broadcast_to(xn, out).ravel()
    gf = np.broadcast_to(gn, out).ravel()
    flat = An.reshape(-1, n, n)
    res = np.zeros(flat.shape, dtype=An.dtype)
    eye = np.eye(n, dtype=An.dtype)
    step = max(1, _CHUNK_ENTRIES // max(1, n * n))
    b = _backend(backend)
    for s in range(0, idx.size, step):
        sl = slice(s, s + step)
        M = xf[sl, None, None] * eye - flat[idx[sl]]
        C = _api.det_grad(M, backend=b)
        np.add.at(res, idx[sl], -(gf[sl, None, None] * np.conj(C)))
    return _tensor(res.reshape(An.shape))


def _op(name: str, schema: str, impl: Any) -> Any:
    return torch.library.custom_op(f"matgrad::{name}", impl, mutates_args=(), schema=schema)


_det_op = _op("det", "(Tensor A, str backend) -> (Tensor, Tensor)", _det_impl)
_slogdet_op = _op("slogdet", "(Tensor A, str backend) -> (Tensor, Tensor, Tensor)",
                  _slogdet_impl)
_frobenius_op = _op("frobenius", "(Tensor X, str backend) -> (Tensor, Tensor)",
                    _frobenius_impl)
_outer_op = _op("outer", "(Tensor x, Tensor y, str backend) -> Tensor", _outer_impl)
_charpoly_op = _op("charpoly", "(Tensor A, Tensor x, str backend) -> (Tensor, Tensor)",
                   _charpoly_impl)
_charpoly_grad_a_op = _op(
    "charpoly_grad_a", "(Tensor A, Tensor x, Tensor g, str backend) -> Tensor",
    _charpoly_grad_a_impl)


def _real_dtype(dtype: Any) -> Any:
    return {torch.complex64: torch.float32, torch.complex128: torch.float64}.get(dtype, dtype)


def _fake_det(A: Tensor, backend: str) -> tuple[Tensor, Tensor]:
    return A.new_empty(A.shape[:-2]), A.new_empty(A.shape)


def _fake_slogdet(A: Tensor, backend: str) -> tuple[Tensor, Tensor, Tensor]:
    return (A.new_empty(A.shape[:-2]), A.new_empty(A.shape[:-2], dtype=_real_dtype(A.dtype)),
            A.new_empty(A.shape))


def _fake_frobenius(X: Tensor, backend: str) -> tuple[Tensor, Tensor]:
    return X.new_empty(X.shape[:-2], dtype=_real_dtype(X.dtype)), X.new_empty(X.shape)


def _fake_outer(x: Tensor, y: Tensor, backend: str) -> Tensor:
    batch = torch.broadcast_shapes(x.shape[:-1], y.shape[:-1])
    return x.new_empty((*batch, x.shape[-1], y.shape[-1]))


def _fake_charpoly(A: Tensor, x: Tensor, backend: str) -> tuple[Tensor, Tensor]:
    out = torch.broadcast_shapes(A.shape[:-2], x.shape)
    return A.new_empty(out), A.new_empty(out)


def _fake_charpoly_grad_a(A: Tensor, x: Tensor, g: Tensor, backend: str) -> Tensor:
    return A.new_empty(A.shape)


_det_op.register_fake(_fake_det)
_slogdet_op.register_fake(_fake_slogdet)
_frobenius_op.register_fake(_fake_frobenius)
_outer_op.register_fake(_fake_outer)
_charpoly_op.register_fake(_fake_charpoly)
_charpoly_grad_a_op.register_fake(_fake_charpoly_grad_a)


# ------------------------------------------------------------- vmap rules
def _align(info: Any, in_dims: tuple[Any, ...], args: tuple[Any, ...],
           cores: tuple[int, ...]) -> list[Tensor]:
    """Give every tensor argument a leading vmap axis of size ``info.batch_size``
    (a broadcast view for unbatched ones), after padding the batch axes of
    all of them to one rank so that matgrad's broadcasting (trailing axes
    align) keeps the vmap axis apart from the others."""
    V = info.batch_size
    moved = []
    for t, d in zip(args, in_dims, strict=False):
        moved.append(t if d is None else t.movedim(d, 0))
    ranks = [t.dim() - c - (d is not None) for t, c, d in zip(moved, cores, in_dims, strict=False)]
    r = max(ranks)
    out = []
    for t, d, rk in zip(moved, in_dims, ranks, strict=False):
        if d is None:
            t = t.reshape((1,) * (r - rk) + tuple(t.shape))
            t = t.unsqueeze(0).expand((V, *t.shape))
        else:
            t = t.reshape((V,) + (1,) * (r - rk) + tuple(t.shape[1:]))
        out.append(t)
    return out


def _vmap_det(info: Any, in_dims: Any, A: Tensor, backend: str) -> Any:
    (A,) = _align(info, in_dims[:1], (A,), (2,))
    return _det_op(A, backend), (0, 0)


def _vmap_slogdet(info: Any, in_dims: Any, A: Tensor, backend: str) -> Any:
    (A,) = _align(info, in_dims[:1], (A,), (2,))
    return _slogdet_op(A, backend), (0, 0, 0)


def _vmap_frobenius(info: Any, in_dims: Any, X: Tensor, backend: str) -> Any:
    (X,) = _align(info, in_dims[:1], (X,), (2,))
    return _frobenius_op(X, backend), (0, 0)


def _vmap_outer(info: Any, in_dims: Any, x: Tensor, y: Tensor, backend: str) -> Any:
    x, y = _align(info, in_dims[:2], (x, y), (1, 1))
    return _outer_op(x, y, backend), 0


def _vmap_charpoly(info: Any, in_dims: Any, A: Tensor, x: Tensor, backend: str) -> Any:
    A, x = _align(info, in_dims[:2], (A, x), (2, 0))
    return _charpoly_op(A, x, backend), (0, 0)


def _vmap_charpoly_grad_a(info: Any, in_dims: Any, A: Tensor, x: Tensor, g: Tensor,
                          backend: str) -> Any:
    shape = A.shape if in_dims[0] is None else A.movedim(in_dims[0], 0).shape[1:]
    Aa, xa, ga = _align(info, in_dims[:3], (A, x, g), (2, 0, 0))
    out = _charpoly_grad_a_op(Aa, xa, ga, backend)
    return out.reshape((info.batch_size, *shape)), 0


torch.library.register_vmap(_det_op, _vmap_det)
torch.library.register_vmap(_slogdet_op, _vmap_slogdet)
torch.library.register_vmap(_frobenius_op, _vmap_frobenius)
torch.library.register_vmap(_outer_op, _vmap_outer)
torch.library.register_vmap(_charpoly_op, _vmap_charpoly)
torch.library.register_vmap(_charpoly_grad_a_op, _vmap_charpoly_grad_a)


# ------------------------------------------------------------- autograd
class _Refuse(torch.autograd.Function):  # type: ignore[misc]
    """Identity on a saved gradient that ties it to the inputs it depends on;
    differentiating through it raises, so a second derivative is refused
    instead of silently dropped."""

    generate_vmap_rule = True

    @staticmethod
    def forward(what: str, value: Tensor, *deps: Tensor) -> Tensor:
        return value.clone()

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        ctx.what = inputs[0]

    @staticmethod
    def backward(ctx: Any, *grads: Any) -> Any:
        raise RuntimeError(
            f"matgrad.torch.{ctx.what}: second derivatives (double backward, "
            "create_graph=True, Hessians, gradient penalties) are not implemented; "
            "matgrad refuses rather than silently dropping them"
        )


def _guard(what: str, value: Tensor, *deps: Tensor) -> Tensor:
    """``value`` as is in a first-order backward; under ``create_graph`` tied to
    ``deps`` so that differentiating it again raises."""
    if torch.is_grad_enabled():
        return _Refuse.apply(what, value, *deps)
    return value


class _Det(torch.autograd.Function):  # type: ignore[misc]
    generate_vmap_rule = True

    @staticmethod
    def forward(A: Tensor, backend: str) -> Any:
        return _det_op(A, backend)

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        ctx.mark_non_differentiable(output[1])
        ctx.save_for_backward(inputs[0], output[1])

    @staticmethod
    def backward(ctx: Any, g: Tensor, _gC: Any) -> Any:
        A, C = ctx.saved_tensors
        C = _guard("det", C, A)
        return g[..., None, None] * C.conj(), None


class _Slogdet(torch.autograd.Function):  # type: ignore[misc]
    generate_vmap_rule = True

    @staticmethod
    def forward(A: Tensor, backend: str) -> Any:
        return _slogdet_op(A, backend)

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        A = inputs[0]
        sign, _, G = output
        ctx.mark_non_differentiable(G)
        if not A.is_complex():
            ctx.mark_non_differentiable(sign)
        ctx.save_for_backward(A, sign, G)

    @staticmethod
    def backward(ctx: Any, g_sign: Tensor, g_logabs: Tensor, _gG: Any) -> Any:
        A, sign, G = ctx.saved_tensors
        G = _guard("slogdet", G, A)
        g = g_logabs
        if A.is_complex():
            # d sign = i·Im tr(A⁻¹dA)·sign: its adjoint joins the log|det| part
            g = g.to(A.dtype) - 1j * torch.imag(g_sign.conj() * sign)
        return g[..., None, None] * G, None


class _Frobenius(torch.autograd.Function):  # type: ignore[misc]
    generate_vmap_rule = True

    @staticmethod
    def forward(X: Tensor, backend: str) -> Any:
        return _frobenius_op(X, backend)

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        ctx.mark_non_differentiable(output[1])
        ctx.save_for_backward(inputs[0], output[1])

    @staticmethod
    def backward(ctx: Any, g: Tensor, _gG: Any) -> Any:
        X, G = ctx.saved_tensors
        G = _guard("frobenius_norm", G, X)
        return g[..., None, None] * G, None


class _Outer(torch.autograd.Function):  # type: ignore[misc]
    """``G = x yᵀ`` (broadcast batch), through matgrad; differentiable again."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x: Tensor, y: Tensor, backend: str) -> Tensor:
        return _outer_op(x, y, backend)

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        ctx.save_for_backward(inputs[0], inputs[1])

    @staticmethod
    def backward(ctx: Any, gG: Tensor) -> Any:
        x, y = ctx.saved_tensors
        gx = gy = None
        if ctx.needs_input_grad[0]:
            gx = _sum_to((gG @ y.conj()[..., :, None])[..., 0], tuple(x.shape))
        if ctx.needs_input_grad[1]:
            gy = _sum_to((gG.mT @ x.conj()[..., :, None])[..., 0], tuple(y.shape))
        return gx, gy, None


class _Bilinear(torch.autograd.Function):  # type: ignore[misc]
    generate_vmap_rule = True

    @staticmethod
    def forward(x: Tensor, A: Tensor, y: Tensor, backend: str) -> Tensor:
        return (x[..., None, :] @ A @ y[..., :, None])[..., 0, 0]

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        x, A, y, backend = inputs
        ctx.backend = backend
        ctx.save_for_backward(x, A, y)

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> Any:
        x, A, y = ctx.saved_tensors
        gx = gA = gy = None
        if ctx.needs_input_grad[1]:
            G = _Outer.apply(x, y, ctx.backend)
            gA = _sum_to(g[..., None, None] * G.conj(), tuple(A.shape))
        if ctx.needs_input_grad[0]:
            Ay = (A @ y[..., :, None])[..., 0]
            gx = _sum_to(g[..., None] * Ay.conj(), tuple(x.shape))
        if ctx.needs_input_grad[2]:
            Atx = (A.mT @ x[..., :, None])[..., 0]
            gy = _sum_to(g[..., None] * Atx.conj(), tuple(y.shape))
        return gx, gA, gy, None


class _Charpoly(torch.autograd.Function):  # type: ignore[misc]
    generate_vmap_rule = True

    @staticmethod
    def forward(A: Tensor, x: Tensor, backend: str) -> Any:
        return _charpoly_op(A, x, backend)

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        A, x, backend = inputs
        ctx.backend = backend
        ctx.mark_non_differentiable(output[1])
        ctx.save_for_backward(A, x, output[1])

    @staticmethod
    def backward(ctx: Any, g: Tensor, _gdp: Any) -> Any:
        A, x, dp = ctx.saved_tensors
        gA = gx = None
        if ctx.needs_input_grad[1]:
            dp = _guard("charpoly", dp, A, x)
            gx = _sum_to(g * dp.conj(), tuple(x.shape))
        if ctx.needs_input_grad[0]:
            # the operator is opaque to autograd: call it on detached tensors
            # and tie its result back to its inputs through the guard
            gA = _charpoly_grad_a_op(A.detach(), x.detach(), g.detach(), ctx.backend)
            gA = _guard("charpoly", gA, A, x, g)
        return gA, gx, None


# ------------------------------------------------------------- public API
def _square(func: str, A: Any) -> tuple[Tensor, Any]:
    (A,), dtype = _prepare(func, {"A": A})
    if A.dim() < 2 or A.shape[-1] != A.shape[-2]:
        raise ValueError(
            f"matgrad.torch.{func}: A must be square (..., n, n); got shape {tuple(A.shape)}"
        )
    return A, dtype


def det(A: Any, *, backend: BackendLike = None) -> Tensor:
    """Determinant with matgrad's gradient: ``∂det/∂A = cofactor(A)``.

    Parameters
    ----------
    A : torch.Tensor, shape (..., n, n)
        Floating or complex, on the CPU; leading axes are a batch.
    backend : str, optional
        matgrad backend (resolved now, carried to the backward by name).

    Returns
    -------
    torch.Tensor, shape (...)
        ``det A`` in ``A``'s dtype, a true value (no spurious overflow).

    Notes
    -----
    The backward is ``grad · conj(C)`` with ``C_ij = (−1)^(i+j) M_ij`` the
    cofactors, exact for singular ``A`` (``[[1, 2], [2, 4]]`` gives
    ``[[4, −2], [−2, 1]]`` where ``torch.linalg.det`` gives 0).  Second
    derivatives raise.
    """
    A, dtype = _square("det", A)
    value, _ = _Det.apply(A, _carry(backend))
    return _back(value, dtype)


def slogdet(A: Any, *, backend: BackendLike = None) -> tuple[Tensor, Tensor]:
    """``(sign, log|det A|)`` like :func:`torch.linalg.slogdet`, with matgrad's
    gradient ``∂log|det A|/∂A = A⁻ᴴ``.

    Parameters
    ----------
    A : torch.Tensor, shape (..., n, n)
    backend : str, optional

    Returns
    -------
    sign : torch.Tensor, shape (...)
        ±1 (unit modulus for complex ``A``), 0 for a singular matrix.
    logabsdet : torch.Tensor, shape (...)
        Real dtype; −inf for a singular matrix.

    Notes
    -----
    Backward: ``g·A⁻ᴴ`` with ``g = ḡ_logabsdet − i·Im(conj(ḡ_sign)·sign)``
    (the second term only for complex ``A``), as PyTorch's rule.  An exactly
    singular matrix gives a non-finite gradient in its own batch slot.
    """
    A, dtype = _square("slogdet", A)
    sign, logabs, _ = _Slogdet.apply(A, _carry(backend))
    return _back(sign, dtype), _back(logabs, _real_dtype(dtype))


def frobenius_norm(X: Any, *, backend: BackendLike = None) -> Tensor:
    """``‖X‖_F`` per matrix, with gradient ``X/‖X‖_F`` (0 at ``X = 0``).

    Parameters
    ----------
    X : torch.Tensor, shape (..., m, n)
    backend : str, optional

    Returns
    -------
    torch.Tensor, shape (...)
        Real dtype.  Formed with power-of-two scaling: no overflow or
        underflow for entries of 1e200 or 1e-200.
    """
    (X,), dtype = _prepare("frobenius_norm", {"X": X})
    if X.dim() < 2:
        raise ValueError(
            f"matgrad.torch.frobenius_norm: X must have at least 2 dimensions (..., m, n); "
            f"got shape {tuple(X.shape)}"
        )
    norm, _ = _Frobenius.apply(X, _carry(backend))
    return _back(norm, _real_dtype(dtype))


def bilinear(x: Any, A: Any, y: Any, *, backend: BackendLike = None) -> Tensor:
    """``xᵀ A y`` (no conjugation), batch axes broadcast.

    Parameters
    ----------
    x : torch.Tensor, shape (..., m)
    A : torch.Tensor, shape (..., m, n)
    y : torch.Tensor, shape (..., n)
    backend : str, optional

    Returns
    -------
    torch.Tensor, shape (broadcast(...))

    Notes
    -----
    Gradients ``∂/∂A = x yᵀ`` (from :func:`matgrad.bilinear_grad`),
    ``∂/∂x = A y``, ``∂/∂y = Aᵀ x``, conjugated as PyTorch does.  Right to
    every order.
    """
    (x, A, y), dtype = _prepare("bilinear", {"x": x, "A": A, "y": y})
    if x.dim() < 1 or y.dim() < 1 or A.dim() < 2 or A.shape[-2:] != (x.shape[-1], y.shape[-1]):
        raise ValueError(
            "matgrad.torch.bilinear: shapes must be x (..., m), A (..., m, n), y (..., n); "
            f"got {tuple(x.shape)}, {tuple(A.shape)}, {tuple(y.shape)}"
        )
    return _back(_Bilinear.apply(x, A, y, _carry(backend)), dtype)


def charpoly(A: Any, x: Any, *, backend: BackendLike = None) -> Tensor:
    """The characteristic polynomial ``p(x) = det(xI − A)``, differentiable.

    Parameters
    ----------
    A : torch.Tensor, shape (..., n, n)
    x : torch.Tensor or scalar
        Result shape ``broadcast(A.shape[:-2], x.shape)``.
    backend : str, optional

    Returns
    -------
    torch.Tensor

    Notes
    -----
    ``∂p/∂x = p′(x)``, exact at eigenvalues (from
    :func:`matgrad.charpoly_deriv`, computed with ``p`` in the forward).
    ``∂p/∂A = −cofactor(xI − A)``: one factorisation per point, computed only
    when ``A`` needs a gradient, in chunks of points.  Second derivatives raise.
    """
    (A, x), dtype = _prepare("charpoly", {"A": A, "x": x})
    if A.dim() < 2 or A.shape[-1] != A.shape[-2]:
        raise ValueError(
            f"matgrad.torch.charpoly: A must be square (..., n, n); got shape {tuple(A.shape)}"
        )
    p, _ = _Charpoly.apply(A, x, _carry(backend))
    return _back(p, dtype)
