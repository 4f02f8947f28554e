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

* **Second derivatives** (``create_graph=True`` double backward,
  ``torch.autograd.gradgradcheck``, ``torch.func.hessian``,
  ``torch.autograd.functional.hessian``, ``jacrev`` of ``jacrev`` or of
  ``jacfwd``, gradient penalties) are matgrad's too.  The backward reads
  the gradient ``G`` saved by the forward through ``_Tie``, an
  autograd.Function that is the identity on ``G`` (one copy) and whose own
  derivative is ``dG = D G(A)[dA]`` from matgrad's second-order kernels
  (:mod:`matgrad._second_order`): ``det_hvp`` for ``det`` (holomorphic, exact
  at every rank: the Hessian of ``det`` at ``[[1, 2], [2, 4]]``, ``ones((3,
  3))`` or ``diag(1, 1, 0, 0)``, where ``torch.linalg.det``'s is NaN),
  ``logdet_hvp`` for ``slogdet`` and ``frobenius_hvp`` for
  ``frobenius_norm`` (NaN at ``X = 0``, where the norm has no Hessian).
  The adjoint of that map, for the backward of the backward, is the same
  kernel (a Hessian is symmetric) up to conjugation.  ``charpoly``'s
  backward, when it may be differentiated again, builds ``M = xI − A`` in
  PyTorch and ties ``cofactor(M)`` (one factorisation per point) and
  ``p′(x)`` (the exact saved value, with the derivatives of ``tr
  cofactor(M)``: ``p″ = tr det_hvp(M, I)``, exact at eigenvalues); a plain
  first-order backward stays one multiplication by ``p′`` and the chunked
  ``A``-gradient.  ``bilinear``'s backward is built from differentiable
  pieces.  On non-singular input all of these equal PyTorch's own second
  derivatives to rounding, real and complex.  A gradient penalty plus
  another loss keeps its second-order part (``@once_differentiable``
  dropped it silently).
* **Forward mode** (``torch.func.jvp``, ``jacfwd``, ``torch.autograd.forward_ad``):
  every function has a ``jvp`` rule built the same way, so
  forward-over-reverse (``torch.func.hessian``) works.  Forward over
  forward (``jacfwd(jacfwd(f))``, ``jvp`` of ``jvp``) raises: PyTorch does
  not differentiate an autograd.Function's ``jvp`` rule again (a toy
  Function gives zeros), so matgrad refuses rather than return them.
* **Third and higher derivatives** raise a ``RuntimeError`` naming the
  function (the derivative of ``D G(A)[V]`` along ``A`` is not
  implemented); ``bilinear`` is right to every order in reverse mode.
* **torch.compile** (``fullgraph=True``) works for first order: Dynamo
  refuses an autograd.Function with a ``jvp`` method, so while it traces
  the public functions apply jvp-free twins (``_DetFirst`` …) whose
  backward multiplies by the saved gradient.  A second derivative through a
  compiled graph is AOTAutograd's own ``RuntimeError`` ("torch.compile with
  aot_autograd does not currently support double backward"), never a
  dropped term: the twins' backward reads the input through an opaque
  ``matgrad::connect`` operator, without which the compiled backward would
  be cut off from the input and a gradient penalty would silently lose its
  second-order part.
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
from typing import Any, NamedTuple

import numpy as np

try:
    import torch
except ImportError as _exc:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        "matgrad.torch needs PyTorch, which is not installed: "
        "pip install 'matgrad[torch]'"
    ) from _exc

from . import _api, _second_order
from ._select import BackendLike, carried, carry

__all__ = ["SlogdetResult", "bilinear", "charpoly", "det", "frobenius_norm", "slogdet"]

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


_INTEGRAL = frozenset({torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32,
                       torch.int64, torch.uint16, torch.uint32, torch.uint64})


def _prepare(func: str, named: dict[str, Any]) -> tuple[list[Tensor], Any]:
    """Check and cast the inputs: one compute dtype (integer and bool tensors
    read as float64, as the plain functions read them; float16/bfloat16 → float32);
    returns the cast tensors and the dtype the results go back to."""
    tensors = {k: v for k, v in named.items() if isinstance(v, torch.Tensor)}
    for k, v in tensors.items():
        if not (v.is_floating_point() or v.is_complex()):
            if v.dtype not in _INTEGRAL:
                raise TypeError(
                    f"matgrad.torch.{func}: {k} has dtype {v.dtype}; expected a floating, "
                    "complex, integer or bool dtype"
                )
            # the plain functions' rule: integers and bool are read as float64
            # (such a tensor cannot require a gradient, so nothing is lost)
            tensors[k] = v.to(torch.float64)
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
        v = tensors.get(k, v)
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


def _connect_impl(G: Tensor, X: Tensor) -> Tensor:
    return G.clone()


_connect_op = _op("connect", "(Tensor G, Tensor X) -> Tensor", _connect_impl)


def _hvp_impl(name: str, A: Tensor, V: Tensor, backend: str) -> Tensor:
    """``D G(A)[V]`` for the gradient ``G`` that ``name`` names (``"det"``,
    ``"logdet"``, ``"frobenius"``), from matgrad's second-order kernels."""
    return _tensor(_second_order.hvp(name, backend, _host(A), _host(V)))


def _hvp_adjoint_impl(name: str, A: Tensor, W: Tensor, backend: str) -> Tensor:
    """The adjoint (PyTorch's vector-Jacobian product) of ``V ↦ D G(A)[V]``."""
    return _tensor(_second_order.adjoint_hvp(name, backend, _host(A), _host(W),
                                             transpose=False))


_hvp_op = _op("hvp", "(str name, Tensor A, Tensor V, str backend) -> Tensor", _hvp_impl)
_hvp_adjoint_op = _op("hvp_adjoint", "(str name, Tensor A, Tensor W, str backend) -> Tensor",
                      _hvp_adjoint_impl)


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


def _fake_hvp(name: str, A: Tensor, V: Tensor, backend: str) -> Tensor:
    return V.new_empty(torch.broadcast_shapes(A.shape, V.shape))


_det_op.register_fake(_fake_det)
_hvp_op.register_fake(_fake_hvp)
_connect_op.register_fake(lambda G, X: torch.empty_like(G))
_hvp_adjoint_op.register_fake(_fake_hvp)
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


def _vmap_hvp(op: Any) -> Callable[..., Any]:
    def rule(info: Any, in_dims: Any, name: str, A: Tensor, V: Tensor, backend: str) -> Any:
        A, V = _align(info, in_dims[1:3], (A, V), (2, 2))
        return op(name, A, V, backend), 0

    return rule


def _vmap_connect(info: Any, in_dims: Any, G: Tensor, X: Tensor) -> Any:
    return (G.clone(), None) if in_dims[0] is None else (G.movedim(in_dims[0], 0).clone(), 0)


torch.library.register_vmap(_connect_op, _vmap_connect)
torch.library.register_vmap(_hvp_op, _vmap_hvp(_hvp_op))
torch.library.register_vmap(_hvp_adjoint_op, _vmap_hvp(_hvp_adjoint_op))
torch.library.register_vmap(_det_op, _vmap_det)
torch.library.register_vmap(_slogdet_op, _vmap_slogdet)
torch.library.register_vmap(_frobenius_op, _vmap_frobenius)
torch.library.register_vmap(_outer_op, _vmap_outer)
torch.library.register_vmap(_charpoly_op, _vmap_charpoly)
torch.library.register_vmap(_charpoly_grad_a_op, _vmap_charpoly_grad_a)


# ------------------------------------------------------------- autograd
def _check_forward_nesting(what: str) -> None:
    """Raise under forward mode nested in forward mode (``jacfwd(jacfwd(f))``,
    ``jvp`` of ``jvp``): PyTorch does not track the computations of an
    autograd.Function's ``jvp`` for an enclosing forward level and would
    return zeros for their part.  Reverse over forward and forward over
    reverse (``torch.func.hessian``) are tracked and work."""
    stack = torch._C._functorch.get_interpreter_stack()
    jvp = torch._C._functorch.TransformType.Jvp
    if stack and sum(1 for i in stack if i.key() == jvp) > 1:
        raise RuntimeError(
            f"matgrad.torch.{what}: forward mode nested in forward mode (jacfwd of jacfwd, "
            "jvp of jvp) is not supported: PyTorch does not differentiate an "
            "autograd.Function's jvp rule again and would return zeros.  Use "
            "torch.func.hessian (jacfwd of jacrev), jacrev of jacfwd or jacrev of jacrev"
        )


def _third_order(what: str) -> RuntimeError:
    return RuntimeError(
        f"matgrad.torch.{what}: third and higher derivatives are not implemented "
        "(first and second derivatives are); matgrad refuses rather than returning zeros"
    )


class _Linear(torch.autograd.Function):  # type: ignore[misc]
    """``H = D G(A)[V]`` (``adjoint`` False) or its adjoint applied to ``V``
    (``adjoint`` True), ``G`` the gradient that ``name`` names (see
    :mod:`matgrad._second_order`).  Linear in ``V``: the derivative along
    ``V`` is the same map (its adjoint for the backward).  A derivative
    along ``A`` would be a third derivative: it raises, never a zero."""

    generate_vmap_rule = True

    @staticmethod
    def forward(name: str, A: Tensor, V: Tensor, backend: str, what: str,
                adjoint: bool) -> Tensor:
        return (_hvp_adjoint_op if adjoint else _hvp_op)(name, A, V, backend)

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        name, A, _, backend, what, adjoint = inputs
        ctx.args = (name, backend, what, adjoint)
        ctx.save_for_backward(A)
        ctx.save_for_forward(A)

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> Any:
        name, backend, what, adjoint = ctx.args
        if ctx.needs_input_grad[1]:
            raise _third_order(what)
        (A,) = ctx.saved_tensors
        gV = _Linear.apply(name, A, g, backend, what, not adjoint)
        return None, None, gV, None, None, None

    @staticmethod
    def jvp(ctx: Any, _tn: Any, tA: Any, tV: Any, *_: Any) -> Tensor:
        _check_forward_nesting(ctx.args[2])
        name, backend, what, adjoint = ctx.args
        if tA is not None:
            raise _third_order(what)
        (A,) = ctx.saved_tensors
        return _Linear.apply(name, A, tV, backend, what, adjoint)


class _Tie(torch.autograd.Function):  # type: ignore[misc]
    """``G`` (a saved first-order gradient of ``A``) as a differentiable
    function of ``A``: the identity on ``G`` whose derivative is
    ``dG = D G(A)[dA]`` (:class:`_Linear`), so that a backward or JVP built
    from ``G`` differentiates again (Hessians, gradient penalties) without
    recomputing ``G``.  The value costs one copy of ``G``."""

    generate_vmap_rule = True

    @staticmethod
    def forward(name: str, A: Tensor, G: Tensor, backend: str, what: str) -> Tensor:
        return G.clone()

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        name, A, _, backend, what = inputs
        ctx.args = (name, backend, what)
        ctx.save_for_backward(A)
        ctx.save_for_forward(A)

    @staticmethod
    def backward(ctx: Any, gG: Tensor) -> Any:
        name, backend, what = ctx.args
        (A,) = ctx.saved_tensors
        gA = _Linear.apply(name, A, gG, backend, what, True) if ctx.needs_input_grad[1] else None
        return None, gA, None, None, None

    @staticmethod
    def jvp(ctx: Any, _tn: Any, tA: Any, *_: Any) -> Tensor:
        _check_forward_nesting(ctx.args[2])
        name, backend, what = ctx.args
        (A,) = ctx.saved_tensors
        return _Linear.apply(name, A, tA, backend, what, False)


def _higher_order_possible() -> bool:
    """Whether what a backward computes may be differentiated again: grad
    mode on (``create_graph=True``, ``torch.func``), a forward-AD dual level
    or a torch.func transform active."""
    return bool(torch.is_grad_enabled()
                or torch.autograd.forward_ad._current_level >= 0
                or torch._C._functorch.get_interpreter_stack())


def _tie(name: str, A: Tensor, G: Tensor, backend: str, what: str) -> Tensor:
    """``G`` tied to ``A`` where anything may differentiate it (see
    :func:`_higher_order_possible`); ``G`` itself in a plain first-order
    backward, which then costs no copy."""
    if not _higher_order_possible():
        return G
    return _Tie.apply(name, A, G, backend, what)


def _dot(G: Tensor, V: Tensor) -> Tensor:
    """``Σ_ij G_ij·V_ij`` per matrix (no conjugation)."""
    return (G * V).sum(dim=(-2, -1))


# Each function comes in two classes: ``_XFirst`` (first order, no ``jvp``)
# and ``_X`` (every order it supports, ``jvp`` included).  Dynamo refuses an
# autograd.Function with a ``jvp`` method, so under torch.compile the public
# functions apply ``_XFirst``; its backward multiplies by the saved gradient,
# and a second derivative through a compiled graph is AOTAutograd's own
# error ("does not currently support double backward").
def _connected(G: Tensor, X: Tensor) -> Tensor:
    """``G`` (a copy; a gradient made from the incoming gradient), computed
    by an opaque operator that also reads the input ``X``.  Under
    torch.compile a backward that reads only saved gradients is cut off from
    the inputs (the partitioner saves what does not depend on the incoming
    gradient), so a second derivative through it finds no path and a
    gradient penalty loses its second-order part silently; reading ``X`` in
    the backward keeps the path, and AOTAutograd raises its own error for
    the second derivative instead."""
    return _connect_op(G, X)


class _DetFirst(torch.autograd.Function):  # type: ignore[misc]
    generate_vmap_rule = True

    @staticmethod
    def forward(A: Tensor, backend: str) -> Any:
        return _det_op(A, backend)

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        ctx.backend = inputs[1]
        ctx.mark_non_differentiable(output[1])
        ctx.save_for_backward(inputs[0], output[1])
        ctx.save_for_forward(inputs[0], output[1])

    @staticmethod
    def backward(ctx: Any, g: Tensor, _gC: Any) -> Any:
        A, C = ctx.saved_tensors
        return _connected(g[..., None, None] * C.conj(), A), None


class _Det(_DetFirst):
    @staticmethod
    def backward(ctx: Any, g: Tensor, _gC: Any) -> Any:
        A, C = ctx.saved_tensors
        return g[..., None, None] * _tie("det", A, C, ctx.backend, "det").conj(), None

    @staticmethod
    def jvp(ctx: Any, tA: Tensor, _tb: Any) -> Any:
        _check_forward_nesting("det")
        A, C = ctx.saved_tensors
        return _dot(_tie("det", A, C, ctx.backend, "det"), tA), None


def _slogdet_g(g_sign: Tensor, g_logabs: Tensor, sign: Tensor, A: Tensor) -> Tensor:
    """The scalar multiplying ``G`` in slogdet's backward: for complex ``A``,
    ``d sign = i·Im tr(A⁻¹dA)·sign``, whose adjoint joins the log|det| part."""
    if A.is_complex():
        return g_logabs.to(A.dtype) - 1j * torch.imag(g_sign.conj() * sign)
    return g_logabs


class _SlogdetFirst(torch.autograd.Function):  # type: ignore[misc]
    generate_vmap_rule = True

    @staticmethod
    def forward(A: Tensor, backend: str) -> Any:
        return _slogdet_op(A, backend)

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        A = inputs[0]
        sign, _, G = output
        ctx.backend = inputs[1]
        # a real sign stays differentiable (derivative 0), as PyTorch's own:
        # PyTorch's forward AD fails on a Function with two non-differentiable
        # outputs (an internal assert), so only G is marked
        ctx.mark_non_differentiable(G)
        ctx.save_for_backward(A, sign, G)
        ctx.save_for_forward(A, sign, G)

    @staticmethod
    def backward(ctx: Any, g_sign: Tensor, g_logabs: Tensor, _gG: Any) -> Any:
        A, sign, G = ctx.saved_tensors
        return _connected(_slogdet_g(g_sign, g_logabs, sign, A)[..., None, None] * G, A), None


class _Slogdet(_SlogdetFirst):
    @staticmethod
    def backward(ctx: Any, g_sign: Tensor, g_logabs: Tensor, _gG: Any) -> Any:
        A, sign, G = ctx.saved_tensors
        G = _tie("logdet", A, G, ctx.backend, "slogdet")
        return _slogdet_g(g_sign, g_logabs, sign, A)[..., None, None] * G, None

    @staticmethod
    def jvp(ctx: Any, tA: Tensor, _tb: Any) -> Any:
        _check_forward_nesting("slogdet")
        A, sign, G = ctx.saved_tensors
        t = _dot(_tie("logdet", A, G, ctx.backend, "slogdet").conj(), tA)  # tr(A⁻¹dA)
        if not A.is_complex():
            return torch.zeros_like(sign), t, None
        return 1j * t.imag * sign, t.real, None


class _FrobeniusFirst(torch.autograd.Function):  # type: ignore[misc]
    generate_vmap_rule = True

    @staticmethod
    def forward(X: Tensor, backend: str) -> Any:
        return _frobenius_op(X, backend)

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        ctx.backend = inputs[1]
        ctx.mark_non_differentiable(output[1])
        ctx.save_for_backward(inputs[0], output[1])
        ctx.save_for_forward(inputs[0], output[1])

    @staticmethod
    def backward(ctx: Any, g: Tensor, _gG: Any) -> Any:
        X, G = ctx.saved_tensors
        return _connected(g[..., None, None] * G, X), None


class _Frobenius(_FrobeniusFirst):
    @staticmethod
    def backward(ctx: Any, g: Tensor, _gG: Any) -> Any:
        X, G = ctx.saved_tensors
        return g[..., None, None] * _tie("frobenius", X, G, ctx.backend, "frobenius_norm"), None

    @staticmethod
    def jvp(ctx: Any, tX: Tensor, _tb: Any) -> Any:
        _check_forward_nesting("frobenius_norm")
        X, G = ctx.saved_tensors
        t = _dot(_tie("frobenius", X, G, ctx.backend, "frobenius_norm").conj(), tX)
        return (t.real if t.is_complex() else t), None


class _OuterFirst(torch.autograd.Function):  # type: ignore[misc]
    """``G = x yᵀ`` (broadcast batch), through matgrad; differentiable again."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x: Tensor, y: Tensor, backend: str) -> Tensor:
        return _outer_op(x, y, backend)

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        ctx.backend = inputs[2]
        ctx.save_for_backward(inputs[0], inputs[1])
        ctx.save_for_forward(inputs[0], inputs[1])

    @staticmethod
    def backward(ctx: Any, gG: Tensor) -> Any:
        x, y = ctx.saved_tensors
        gx = gy = None
        if ctx.needs_input_grad[0]:
            gx = _sum_to((gG @ y.conj()[..., :, None])[..., 0], tuple(x.shape))
        if ctx.needs_input_grad[1]:
            gy = _sum_to((gG.mT @ x.conj()[..., :, None])[..., 0], tuple(y.shape))
        return gx, gy, None


class _Outer(_OuterFirst):
    @staticmethod
    def jvp(ctx: Any, tx: Any, ty: Any, _tb: Any) -> Tensor:
        _check_forward_nesting("bilinear")
        x, y = ctx.saved_tensors
        parts = [] if tx is None else [_Outer.apply(tx, y, ctx.backend)]
        if ty is not None:
            parts.append(_Outer.apply(x, ty, ctx.backend))
        return sum(parts[1:], parts[0])


def _bilinear_value(x: Tensor, A: Tensor, y: Tensor) -> Tensor:
    return (x[..., None, :] @ A @ y[..., :, None])[..., 0, 0]


def _bilinear_backward(ctx: Any, g: Tensor, outer: Any) -> Any:
    x, A, y = ctx.saved_tensors
    gx = gA = gy = None
    if ctx.needs_input_grad[1]:
        G = outer.apply(x, y, ctx.backend)
        gA = _sum_to(g[..., None, None] * G.conj(), tuple(A.shape))
    if ctx.needs_input_grad[0]:
        Ay = (A @ y[..., :, None])[..., 0]
        gx = _sum_to(g[..., None] * Ay.conj(), tuple(x.shape))
    if ctx.needs_input_grad[2]:
        Atx = (A.mT @ x[..., :, None])[..., 0]
        gy = _sum_to(g[..., None] * Atx.conj(), tuple(y.shape))
    return gx, gA, gy, None


class _BilinearFirst(torch.autograd.Function):  # type: ignore[misc]
    """Right to every order in reverse mode: the backward is built from
    differentiable pieces (``_OuterFirst`` is differentiable again)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x: Tensor, A: Tensor, y: Tensor, backend: str) -> Tensor:
        return _bilinear_value(x, A, y)

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        x, A, y, backend = inputs
        ctx.backend = backend
        ctx.save_for_backward(x, A, y)
        ctx.save_for_forward(x, A, y)

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> Any:
        return _bilinear_backward(ctx, g, _OuterFirst)


class _Bilinear(_BilinearFirst):
    @staticmethod
    def backward(ctx: Any, g: Tensor) -> Any:
        return _bilinear_backward(ctx, g, _Outer)

    @staticmethod
    def jvp(ctx: Any, tx: Any, tA: Any, ty: Any, _tb: Any) -> Tensor:
        _check_forward_nesting("bilinear")
        x, A, y = ctx.saved_tensors
        parts = []
        if tA is not None:
            parts.append(_dot(_Outer.apply(x, y, ctx.backend), tA))
        if tx is not None:
            parts.append(_bilinear_value(tx, A, y))
        if ty is not None:
            parts.append(_bilinear_value(x, A, ty))
        return sum(parts[1:], parts[0])


def _pick(full: Any, first: Any) -> Any:
    """The class to apply: without ``jvp`` while Dynamo traces (it refuses one)."""
    return first if torch.compiler.is_compiling() else full


class _Replace(torch.autograd.Function):  # type: ignore[misc]
    """``value`` with the derivatives of ``proxy`` (equal to it up to
    rounding): keeps an exact value (``p′(x)`` from Hyman's recurrence)
    while its derivatives come from a differentiable expression
    (``tr cofactor(xI − A)``)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(value: Tensor, proxy: Tensor) -> Tensor:
        return value.clone()

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        pass

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> Any:
        return None, g

    @staticmethod
    def jvp(ctx: Any, _tv: Any, tp: Any) -> Any:
        return tp


def _charpoly_tied(A: Tensor, x: Tensor, dp: Tensor, backend: str) -> tuple[Tensor, Tensor]:
    """``(C, p′)`` as differentiable functions of ``A`` and ``x``:
    ``C = cofactor(M)`` per point, ``M = xI − A``, tied to ``M`` (its
    derivative ``det_hvp(M, dM)``, ``dM = dx·I − dA``), and ``p′`` the exact
    saved value with the derivatives of ``tr C``:
    ``d p′ = p″·dx − Σ det_hvp(M, I)∘dA``, ``p″ = tr det_hvp(M, I)``.
    One factorisation per point (the first-order backward needs none for
    ``x``): the price of a backward that differentiates again."""
    n = A.shape[-1]
    M = x[..., None, None] * torch.eye(n, dtype=A.dtype) - A
    # the operator is opaque to autograd: called on the detached value,
    # tied back to M below
    _, C = _det_op(M.detach(), backend)
    C = _tie("det", M, C, backend, "charpoly")
    return C, _Replace.apply(dp, C.diagonal(dim1=-2, dim2=-1).sum(-1))


class _CharpolyFirst(torch.autograd.Function):  # type: ignore[misc]
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
        ctx.save_for_forward(A, x, output[1])

    @staticmethod
    def backward(ctx: Any, g: Tensor, _gdp: Any) -> Any:
        A, x, dp = ctx.saved_tensors
        gA = gx = None
        if ctx.needs_input_grad[1]:
            gx = _connected(_sum_to(g * dp.conj(), tuple(x.shape)), x)
        if ctx.needs_input_grad[0]:
            gA = _charpoly_grad_a_op(A.detach(), x.detach(), g.detach(), ctx.backend)
            gA = _connected(gA, A)
        return gA, gx, None


class _Charpoly(_CharpolyFirst):
    @staticmethod
    def backward(ctx: Any, g: Tensor, _gdp: Any) -> Any:
        if not _higher_order_possible():
            # nothing differentiates this backward: p′ and the chunked
            # A-gradient as they are
            return _CharpolyFirst.backward(ctx, g, _gdp)
        A, x, dp = ctx.saved_tensors
        C, dp = _charpoly_tied(A, x, dp, ctx.backend)
        gA = gx = None
        if ctx.needs_input_grad[1]:
            gx = _sum_to(g * dp.conj(), tuple(x.shape))
        if ctx.needs_input_grad[0]:
            gA = _sum_to(-(g[..., None, None] * C.conj()), tuple(A.shape))
        return gA, gx, None

    @staticmethod
    def jvp(ctx: Any, tA: Any, tx: Any, _tb: Any) -> Any:
        _check_forward_nesting("charpoly")
        A, x, dp = ctx.saved_tensors
        C, dp = _charpoly_tied(A, x, dp, ctx.backend)
        parts = [] if tx is None else [dp * tx]
        if tA is not None:
            parts.append(-_dot(C, tA))
        return sum(parts[1:], parts[0]), None


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
    derivatives (double backward, ``torch.func.hessian``, ``jvp``) from
    ``det_hvp``, exact at every rank; third order raises.
    """
    A, dtype = _square("det", A)
    value, _ = _pick(_Det, _DetFirst).apply(A, _carry(backend))
    return _back(value, dtype)


class SlogdetResult(NamedTuple):
    """What :func:`slogdet` returns: fields ``sign`` and ``logabsdet``, and it
    unpacks as the pair ``(sign, logabsdet)``, as ``torch.linalg.slogdet``'s."""

    sign: Tensor
    logabsdet: Tensor


def slogdet(A: Any, *, backend: BackendLike = None) -> SlogdetResult:
    """``(sign, log|det A|)`` like :func:`torch.linalg.slogdet`, with matgrad's
    gradient ``∂log|det A|/∂A = A⁻ᴴ``.

    Parameters
    ----------
    A : torch.Tensor, shape (..., n, n)
    backend : str, optional

    Returns
    -------
    SlogdetResult
        A named pair, as ``torch.linalg.slogdet``'s: ``.sign`` (shape (...),
        ±1, unit modulus for complex ``A``, 0 for a singular matrix) and
        ``.logabsdet`` (shape (...), real dtype, −inf for a singular
        matrix); unpacks as ``sign, logabsdet``.

    Notes
    -----
    Backward: ``g·A⁻ᴴ`` with ``g = ḡ_logabsdet − i·Im(conj(ḡ_sign)·sign)``
    (the second term only for complex ``A``), as PyTorch's rule.  An exactly
    singular matrix gives a non-finite gradient in its own batch slot.
    Second derivatives from ``logdet_hvp`` (``d(A⁻ᴴ) = −A⁻ᴴ·dAᴴ·A⁻ᴴ``);
    a real ``sign`` is differentiable with derivative 0, as PyTorch's own.
    """
    A, dtype = _square("slogdet", A)
    sign, logabs, _ = _pick(_Slogdet, _SlogdetFirst).apply(A, _carry(backend))
    return SlogdetResult(_back(sign, dtype), _back(logabs, _real_dtype(dtype)))


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
    norm, _ = _pick(_Frobenius, _FrobeniusFirst).apply(X, _carry(backend))
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
    return _back(_pick(_Bilinear, _BilinearFirst).apply(x, A, y, _carry(backend)), dtype)


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
    when ``A`` needs a gradient, in chunks of points.  Second derivatives
    (in ``A`` and ``x``) from ``det_hvp`` of ``xI − A``, ``p″`` exact at
    eigenvalues; one factorisation per point when the backward may be
    differentiated again.  Third order raises.
    """
    (A, x), dtype = _prepare("charpoly", {"A": A, "x": x})
    if A.dim() < 2 or A.shape[-1] != A.shape[-2]:
        raise ValueError(
            f"matgrad.torch.charpoly: A must be square (..., n, n); got shape {tuple(A.shape)}"
        )
    p, _ = _pick(_Charpoly, _CharpolyFirst).apply(A, x, _carry(backend))
    return _back(p, dtype)
