"""Differentiable matgrad functions for JAX.

``frobenius_norm(X)``, ``bilinear(x, A, y)``, ``det(A)``, ``slogdet(A)`` and
``charpoly(A, x)`` whose derivative rules are matgrad's gradients: the
cofactor matrix for ``det`` (exact at singular matrices, wherever the zero
pivot falls — JAX's own rule assumes it is the last one and returns 0 for
``n ≥ 4`` otherwise), ``A⁻ᵀ`` for ``slogdet``, ``X/‖X‖_F`` for the norm (0 at
``X = 0``, where JAX gives NaN), ``p′(x)`` exact at eigenvalues for
``charpoly``.  On non-singular input the JVPs equal JAX's own for
``jnp.linalg.det``, ``jnp.linalg.slogdet``, ``jnp.linalg.norm`` (Frobenius),
``x @ A @ y`` and ``det(xI − A)`` to rounding, in real and complex dtypes.

Design
------
Each function is a :func:`jax.custom_jvp` rule around
:func:`jax.pure_callback`: the primal and the matgrad gradient come from one
host call (``return_value=True``), and the JVP is the linear map
``dA ↦ Σ_ij G_ij·dA_ij`` (with JAX's conventions for real-valued functions
of complex input), written in ``jax.numpy``.  Because the tangent map is
linear and built from JAX primitives, JAX transposes it for reverse mode:
``grad``, ``jacrev``, ``jacfwd``, ``jit`` and ``vmap`` all work
(``custom_vjp`` would lose ``jacfwd``).  The callbacks use
``vmap_method="expand_dims"``: batch axes are matgrad's own leading batch
axes, so a vmapped call is one batched host call.  ``charpoly`` computes its
``A``-tangent (one cofactor of ``xI − A`` per point) only when ``A`` is
actually differentiated (symbolic zeros).

* **Second derivatives**: ``jax.hessian``, ``jacfwd``/``jacrev`` nested
  either way, ``jax.jvp`` of ``jax.grad`` and ``check_grads(order=2,
  modes=("fwd", "rev"))`` work, under ``jit`` and ``vmap``.  Each rule reads
  its gradient ``G`` from a second ``custom_jvp`` (``_det_with_grad`` …)
  that returns the value and ``G`` from the same host call, so a first
  derivative costs what it did; a second derivative differentiates the
  rule, meets that function's rule, and gets ``dG = D G(A)[dA]`` from the
  ``matgrad_hvp`` primitive: matgrad's second-order kernels on the host
  (:mod:`matgrad._second_order`; ``det_hvp``, exact at every rank,
  ``logdet_hvp``, ``frobenius_hvp``, NaN at ``X = 0`` where the norm has no
  Hessian), with a batching rule (one host call per batch), a transpose
  rule (the adjoint, the same kernel up to conjugation: reverse over
  reverse) and a JVP rule linear in the direction.  A ``pure_callback``
  alone cannot be transposed or differentiated, and ``linear_call`` has no
  batching rule.  ``charpoly``'s ``(p, p′)`` is differentiable the same way
  (``dp′ = p″·dx − Σ det_hvp(xI − A, I)∘dA``, ``p″ = tr det_hvp(xI − A, I)``,
  exact at eigenvalues), its ``A``-gradient through ``_det_with_grad`` of
  ``xI − A``; ``bilinear``'s ``x yᵀ`` has a tangent in ``jax.numpy``.  On
  non-singular input all agree with JAX's own second derivatives.
* **Third and higher derivatives** raise ``NotImplementedError`` naming the
  function (a derivative of ``D G(A)[V]`` along ``A``), never a zero.
* **The backend** is chosen when the function is traced (the ``backend=``
  keyword, :func:`matgrad.use_backend`, :func:`matgrad.set_backend`,
  ``$MATGRAD_BACKEND``, ``auto``) and carried into the callbacks by name:
  context variables do not reach XLA's callback threads.
* **dtypes**: float32 and float64 (with ``jax_enable_x64``), complex64 and
  complex128 compute in their own dtype; float16 and bfloat16 compute in
  float32 and come back in their own dtype; integer and bool inputs are a
  ``TypeError``.
* **Accelerators**: the callback runs on the host.  A JAX array on a GPU or
  TPU is copied to host memory for the call and the results are copied
  back (XLA does this around every ``pure_callback``); the numbers are the
  same, the transfers cost what they cost.  On the CPU the host call reads
  XLA's buffers without a copy where JAX allows it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

try:
    import jax
    import jax.numpy as jnp
    from jax.extend.core import Primitive
    from jax.interpreters import ad, batching, mlir
except ImportError as _exc:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        "matgrad.jax needs JAX, which is not installed: pip install 'matgrad[jax]'"
    ) from _exc

from . import _api, _second_order
from ._select import BackendLike, carried, carry

__all__ = ["SlogdetResult", "bilinear", "charpoly", "det", "frobenius_norm", "slogdet"]

Array = Any  # jax.Array; JAX's own annotations are not followed by mypy
_SymbolicZero = jax.custom_derivatives.SymbolicZero


def _is_zero(t: Any) -> bool:
    return isinstance(t, _SymbolicZero)


def _real_dtype(dtype: Any) -> Any:
    return jnp.empty((0,), dtype).real.dtype


def _struct(shape: tuple[int, ...], dtype: Any) -> Any:
    return jax.ShapeDtypeStruct(tuple(shape), dtype)


def _callback(fn: Callable[..., Any], shapes: Any, *args: Array) -> Any:
    return jax.pure_callback(fn, shapes, *args, vmap_method="expand_dims")


def _cast(value: Any, dtype: Any) -> np.ndarray:
    return np.asarray(value, dtype=dtype)


# ------------------------------------------------------------- host calls
def _det_host(A: Array, key: str) -> tuple[Array, Array]:
    dt = A.dtype

    def host(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d, C = _api.det_grad(np.asarray(a), return_value=True, backend=carried(key))
        return _cast(d, dt), _cast(C, dt)

    return _callback(host, (_struct(A.shape[:-2], dt), _struct(A.shape, dt)), A)  # type: ignore[no-any-return]


def _slogdet_host(A: Array, key: str) -> tuple[Array, Array, Array]:
    dt, rt = A.dtype, _real_dtype(A.dtype)

    def host(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        (s, l), G = _api.logdet_grad(np.asarray(a), return_value=True, backend=carried(key))
        return _cast(s, dt), _cast(l, rt), _cast(G, dt)

    shapes = (_struct(A.shape[:-2], dt), _struct(A.shape[:-2], rt), _struct(A.shape, dt))
    return _callback(host, shapes, A)  # type: ignore[no-any-return]


def _frobenius_host(X: Array, key: str) -> tuple[Array, Array]:
    dt, rt = X.dtype, _real_dtype(X.dtype)

    def host(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        norm, G = _api.frobenius_grad(np.asarray(x), return_value=True, backend=carried(key))
        return _cast(norm, rt), _cast(G, dt)

    return _callback(host, (_struct(X.shape[:-2], rt), _struct(X.shape, dt)), X)  # type: ignore[no-any-return]


def _outer_host(x: Array, y: Array, key: str) -> Array:
    """``x yᵀ`` for x, y with the same batch shape."""
    dt = x.dtype

    def host(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return _cast(_api.bilinear_grad(np.asarray(a), np.asarray(b), backend=carried(key)), dt)

    return _callback(host, _struct((*x.shape, y.shape[-1]), dt), x, y)


def _charpoly_host(A: Array, x: Array, key: str) -> tuple[Array, Array]:
    """``(p, p′)``; ``A`` and ``x`` padded to the same batch rank."""
    dt = A.dtype
    out = jnp.broadcast_shapes(A.shape[:-2], x.shape)

    def host(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p, dp = _api.charpoly_deriv(np.asarray(a), np.asarray(b), return_value=True,
                                    backend=carried(key))
        return _cast(p, dt), _cast(dp, dt)

    return _callback(host, (_struct(out, dt), _struct(out, dt)), A, x)  # type: ignore[no-any-return]


# ------------------------------------------------------------- second order
# ``H = D G(A)[V]`` (matgrad._second_order) is the tangent map of every
# first-order gradient ``G`` below.  Reverse over reverse transposes it and
# jacfwd/hessian batch it, neither of which JAX can do through a
# pure_callback, so it is a primitive of its own: a host call (through the
# one adapter in matgrad._second_order) with a batching rule (leading batch
# axes are matgrad's own), a transpose rule (the adjoint, again a host
# call) and a JVP rule that is linear in ``V`` and refuses a derivative
# along ``A`` (a third derivative) with an error, never a zero.
_hvp_p = Primitive("matgrad_hvp")


def _hvp_host(A: Array, V: Array, *, name: str, key: str, what: str, adjoint: bool) -> Array:
    dt = V.dtype

    def host(a: np.ndarray, v: np.ndarray) -> np.ndarray:
        a, v = np.asarray(a), np.asarray(v)
        if adjoint:
            return _cast(_second_order.adjoint_hvp(name, key, a, v, transpose=True), dt)
        return _cast(_second_order.hvp(name, key, a, v), dt)

    return jax.pure_callback(host, _struct(V.shape, dt), A, V, vmap_method="expand_dims")


def _hvp_abstract(A: Any, V: Any, **params: Any) -> Any:
    return jax.core.ShapedArray(V.shape, V.dtype)


def _hvp_batch(args: Any, dims: Any, **params: Any) -> Any:
    size = next(a.shape[d] for a, d in zip(args, dims, strict=True)
                if d is not None)
    A, V = (jnp.broadcast_to(a, (size, *a.shape)) if d is None
            else jnp.moveaxis(a, d, 0) for a, d in zip(args, dims, strict=True))
    return _hvp_p.bind(A, V, **params), 0


def _third_order(what: str) -> NotImplementedError:
    return NotImplementedError(
        f"matgrad.jax.{what}: third and higher derivatives are not implemented "
        "(first and second derivatives are); matgrad refuses rather than returning zeros"
    )


def _hvp_jvp(primals: Any, tangents: Any, **params: Any) -> Any:
    (A, V), (tA, tV) = primals, tangents
    if type(tA) is not ad.Zero:
        raise _third_order(params["what"])
    out = _hvp_p.bind(A, V, **params)
    if type(tV) is ad.Zero:
        return out, ad.Zero(jax.core.ShapedArray(out.shape, out.dtype))
    return out, _hvp_p.bind(A, tV, **params)


def _hvp_transpose(ct: Any, A: Any, V: Any, **params: Any) -> Any:
    if ad.is_undefined_primal(A):
        raise _third_order(params["what"])
    if type(ct) is ad.Zero:
        return None, ad.Zero(V.aval)
    return None, _hvp_p.bind(A, ct, **{**params, "adjoint": not params["adjoint"]})


_hvp_p.def_impl(_hvp_host)
_hvp_p.def_abstract_eval(_hvp_abstract)
mlir.register_lowering(_hvp_p, mlir.lower_fun(_hvp_host, multiple_results=False))
batching.primitive_batchers[_hvp_p] = _hvp_batch
ad.primitive_jvps[_hvp_p] = _hvp_jvp
ad.primitive_transposes[_hvp_p] = _hvp_transpose


def _hvp(name: str, key: str, what: str, A: Array, V: Array) -> Array:
    """``D G(A)[V]`` (``A`` and ``V`` broadcast to one shape and dtype)."""
    dt = jnp.result_type(A, V)
    A, V = jnp.broadcast_arrays(A.astype(dt), V.astype(dt))
    return _hvp_p.bind(A, V, name=name, key=key, what=what, adjoint=False)


def _dot(G: Array, V: Array) -> Array:
    """``Σ_ij G_ij·V_ij`` per matrix (no conjugation)."""
    return jnp.sum(G * V, axis=(-2, -1))


# ------------------------------------------------------------- rules
# Each public function is a custom_jvp whose rule reads its gradient ``G``
# from a second custom_jvp, ``_with_grad``, returning the value and ``G``
# from one host call and differentiating ``G`` by ``_hvp``: a second
# derivative differentiates the first rule, which meets ``_with_grad``'s
# rule, and a first derivative never evaluates ``_hvp``.
@functools.cache
def _det_with_grad(key: str) -> Callable[[Array], tuple[Array, Array]]:
    f = jax.custom_jvp(lambda A: _det_host(A, key))

    def jvp(primals: Any, tangents: Any) -> Any:
        (A,), (dA,) = primals, tangents
        d, C = f(A)
        return (d, C), (_dot(C, dA), _hvp("det", key, "det", A, dA))

    f.defjvp(jvp)
    return f  # type: ignore[no-any-return]


@functools.cache
def _det_fn(key: str) -> Callable[[Array], Array]:
    def value(A: Array) -> Array:
        return _det_host(A, key)[0]

    f = jax.custom_jvp(value)

    def jvp(primals: Any, tangents: Any) -> Any:
        (A,), (dA,) = primals, tangents
        d, C = _det_with_grad(key)(A)
        return d, _dot(C, dA)

    f.defjvp(jvp)
    return f  # type: ignore[no-any-return]


def _slogdet_tangent(A: Array, s: Array, G: Array, dA: Array) -> tuple[Array, Array]:
    """``(d sign, d log|det|)``: ``t = tr(A⁻¹dA)``, ``d log|det| = Re t`` and,
    for complex ``A``, ``d sign = i·Im(t)·sign``, as JAX's own rule."""
    t = _dot(jnp.conj(G), dA)
    if jnp.iscomplexobj(A):
        ldot = jnp.real(t)
        return (t - ldot.astype(t.dtype)) * s, ldot
    return jnp.zeros_like(s), t


@functools.cache
def _slogdet_with_grad(key: str) -> Callable[[Array], tuple[Array, Array, Array]]:
    f = jax.custom_jvp(lambda A: _slogdet_host(A, key))

    def jvp(primals: Any, tangents: Any) -> Any:
        (A,), (dA,) = primals, tangents
        s, l, G = f(A)
        sdot, ldot = _slogdet_tangent(A, s, G, dA)
        return (s, l, G), (sdot, ldot, _hvp("logdet", key, "slogdet", A, dA))

    f.defjvp(jvp)
    return f  # type: ignore[no-any-return]


@functools.cache
def _slogdet_fn(key: str) -> Callable[[Array], tuple[Array, Array]]:
    def value(A: Array) -> tuple[Array, Array]:
        s, l, _ = _slogdet_host(A, key)
        return s, l

    f = jax.custom_jvp(value)

    def jvp(primals: Any, tangents: Any) -> Any:
        (A,), (dA,) = primals, tangents
        s, l, G = _slogdet_with_grad(key)(A)
        return (s, l), _slogdet_tangent(A, s, G, dA)

    f.defjvp(jvp)
    return f  # type: ignore[no-any-return]


def _frobenius_tangent(G: Array, dX: Array) -> Array:
    return jnp.real(_dot(jnp.conj(G), dX))


@functools.cache
def _frobenius_with_grad(key: str) -> Callable[[Array], tuple[Array, Array]]:
    f = jax.custom_jvp(lambda X: _frobenius_host(X, key))

    def jvp(primals: Any, tangents: Any) -> Any:
        (X,), (dX,) = primals, tangents
        norm, G = f(X)
        return (norm, G), (_frobenius_tangent(G, dX),
                           _hvp("frobenius", key, "frobenius_norm", X, dX))

    f.defjvp(jvp)
    return f  # type: ignore[no-any-return]


@functools.cache
def _frobenius_fn(key: str) -> Callable[[Array], Array]:
    def value(X: Array) -> Array:
        return _frobenius_host(X, key)[0]

    f = jax.custom_jvp(value)

    def jvp(primals: Any, tangents: Any) -> Any:
        (X,), (dX,) = primals, tangents
        norm, G = _frobenius_with_grad(key)(X)
        return norm, _frobenius_tangent(G, dX)

    f.defjvp(jvp)
    return f  # type: ignore[no-any-return]


@functools.cache
def _outer_fn(key: str) -> Callable[[Array, Array], Array]:
    """``x yᵀ`` from matgrad (same batch shapes); its tangent
    ``dx yᵀ + x dyᵀ`` in jax.numpy (transposable: every order)."""
    f = jax.custom_jvp(lambda x, y: _outer_host(x, y, key))

    def jvp(primals: Any, tangents: Any) -> Any:
        (x, y), (dx, dy) = primals, tangents
        out = f(x, y)
        dout = jnp.zeros_like(out)
        if not _is_zero(dx):
            dout = dout + dx[..., :, None] * y[..., None, :]
        if not _is_zero(dy):
            dout = dout + x[..., :, None] * dy[..., None, :]
        return out, dout

    f.defjvp(jvp, symbolic_zeros=True)
    return f  # type: ignore[no-any-return]


@functools.cache
def _bilinear_fn(key: str) -> Callable[[Array, Array, Array], Array]:
    def value(x: Array, A: Array, y: Array) -> Array:
        return (x[..., None, :] @ A @ y[..., :, None])[..., 0, 0]

    f = jax.custom_jvp(value)

    def jvp(primals: Any, tangents: Any) -> Any:
        x, A, y = primals
        dx, dA, dy = tangents
        out = value(x, A, y)
        dout = jnp.zeros_like(out)
        if not _is_zero(dA):
            batch = jnp.broadcast_shapes(x.shape[:-1], y.shape[:-1])
            G = _outer_fn(key)(jnp.broadcast_to(x, (*batch, x.shape[-1])),
                               jnp.broadcast_to(y, (*batch, y.shape[-1])))
            dout = dout + _dot(G, dA)
        if not _is_zero(dx):
            dout = dout + value(dx, A, y)
        if not _is_zero(dy):
            dout = dout + value(x, A, dy)
        return out, dout

    f.defjvp(jvp, symbolic_zeros=True)
    return f  # type: ignore[no-any-return]


def _pad(A: Array, x: Array) -> tuple[Array, Array]:
    """``A`` and ``x`` with batch axes padded to one rank."""
    d = max(A.ndim - 2, x.ndim)
    A = A.reshape((1,) * (d - A.ndim + 2) + A.shape)
    x = x.reshape((1,) * (d - x.ndim) + x.shape)
    return A, x


def _shifted(A: Array, x: Array) -> Array:
    """``M = xI − A`` per point (padded ``A``, ``x``)."""
    return x[..., None, None] * jnp.eye(A.shape[-1], dtype=A.dtype) - A


@functools.cache
def _charpoly_with_deriv(key: str) -> Callable[[Array, Array], tuple[Array, Array]]:
    """``(p, p′)`` from one host call (Hyman's recurrence), differentiable:
    ``dp = p′·dx − Σ C∘dA`` and ``dp′ = p″·dx − Σ D∘dA`` with ``C`` the
    cofactors of ``M = xI − A``, ``D = det_hvp(M, I)`` and ``p″ = tr D``
    (exact at eigenvalues, as ``det_hvp`` at singular ``M``)."""
    f = jax.custom_jvp(lambda A, x: _charpoly_host(A, x, key))

    def jvp(primals: Any, tangents: Any) -> Any:
        A, x = primals
        dA, dx = tangents
        p, dp = f(A, x)
        M = _shifted(A, x)
        dp_out = jnp.zeros_like(p)
        ddp_out = jnp.zeros_like(p)
        D = _hvp("det", key, "charpoly", M, jnp.broadcast_to(jnp.eye(M.shape[-1], dtype=M.dtype),
                                                             M.shape))
        if not _is_zero(dx):
            dp_out = dp_out + dp * dx
            ddp_out = ddp_out + jnp.trace(D, axis1=-2, axis2=-1) * dx
        if not _is_zero(dA):
            dp_out = dp_out - _dot(_det_with_grad(key)(M)[1], dA)
            ddp_out = ddp_out - _dot(D, dA)
        return (p, dp), (dp_out, ddp_out)

    f.defjvp(jvp, symbolic_zeros=True)
    return f  # type: ignore[no-any-return]


@functools.cache
def _charpoly_fn(key: str) -> Callable[[Array, Array], Array]:
    def f_(A: Array, x: Array) -> Array:
        return _charpoly_host(*_pad(A, x), key)[0]

    f = jax.custom_jvp(f_)

    def jvp(primals: Any, tangents: Any) -> Any:
        A, x = primals
        dA, dx = tangents
        Ap, xp = _pad(A, x)
        p, dp = _charpoly_with_deriv(key)(Ap, xp)
        dout = jnp.zeros_like(p)
        if not _is_zero(dx):
            dout = dout + dp * dx
        if not _is_zero(dA):
            # cofactors of xI − A, one factorisation per point, only when A
            # is differentiated; differentiable again through _det_with_grad
            C = _det_with_grad(key)(_shifted(Ap, xp))[1]
            dout = dout - _dot(C, dA)
        return p, dout

    f.defjvp(jvp, symbolic_zeros=True)
    return f  # type: ignore[no-any-return]


# ------------------------------------------------------------- public API
def _prepare(func: str, named: dict[str, Any]) -> tuple[list[Array], Any]:
    """Check the inputs and give them one compute dtype (integers and bool read
    as JAX's widest float, as the plain functions read them; float16/bfloat16 →
    float32); returns them and the dtype the results go back to."""
    arrays = {}
    for k, v in named.items():
        a = v if isinstance(v, (jax.Array, np.ndarray)) or hasattr(v, "dtype") else None
        if a is None:
            continue
        dt = jnp.asarray(a).dtype if not hasattr(a, "dtype") else a.dtype
        if not (jnp.issubdtype(dt, jnp.floating) or jnp.issubdtype(dt, jnp.complexfloating)):
            if not (jnp.issubdtype(dt, jnp.integer) or dt == jnp.bool_):
                raise TypeError(
                    f"matgrad.jax.{func}: {k} has dtype {dt}; expected a floating, "
                    "complex, integer or bool dtype"
                )
            # the plain functions' rule: integers and bool are read as float64
            # (JAX's widest float: float32 unless jax_enable_x64 is on)
            a = jnp.asarray(a, dtype=jax.dtypes.canonicalize_dtype(jnp.float64))
            named = {**named, k: a}
        arrays[k] = a
    out = jnp.result_type(*named.values())
    # float16, bfloat16 and the float8 types compute in float32
    narrow = jnp.issubdtype(out, jnp.floating) and jnp.dtype(out).itemsize < 4
    compute = jnp.float32 if narrow else out
    return [jnp.asarray(v, dtype=compute) for v in named.values()], out


def _back(a: Array, dtype: Any) -> Array:
    if a.dtype == dtype or jnp.iscomplexobj(a) != jnp.issubdtype(dtype, jnp.complexfloating):
        return a
    return a.astype(dtype)


def _square(func: str, A: Array) -> None:
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise ValueError(f"matgrad.jax.{func}: A must be square (..., n, n); got shape {A.shape}")


def det(A: Any, *, backend: BackendLike = None) -> Array:
    """Determinant, differentiable with matgrad's rule ``∂det/∂A = cofactor(A)``.

    Parameters
    ----------
    A : jax.Array, shape (..., n, n)
    backend : str, optional
        matgrad backend, chosen when traced and carried by name.

    Returns
    -------
    jax.Array, shape (...)

    Notes
    -----
    JVP ``Σ_ij C_ij dA_ij`` with ``C`` the cofactor matrix, exact for singular
    ``A``.  Second derivatives from ``det_hvp``, exact at every rank (the
    Hessian at ``diag(1, 1, 0, 0)``, where ``jax.hessian(jnp.linalg.det)`` is
    wrong); third order raises.
    """
    (A,), dt = _prepare("det", {"A": A})
    _square("det", A)
    return _back(_det_fn(carry(backend))(A), dt)


class SlogdetResult(NamedTuple):
    """What :func:`slogdet` returns: fields ``sign`` and ``logabsdet``, and it
    unpacks as the pair ``(sign, logabsdet)``, as ``jnp.linalg.slogdet``'s."""

    sign: Array
    logabsdet: Array


def slogdet(A: Any, *, backend: BackendLike = None) -> SlogdetResult:
    """``(sign, log|det A|)``, differentiable with ``∂log|det A|/∂A = A⁻ᵀ``.

    Parameters
    ----------
    A : jax.Array, shape (..., n, n)
    backend : str, optional

    Returns
    -------
    SlogdetResult
        A named pair, as ``jnp.linalg.slogdet``'s: ``.sign`` (shape (...))
        and ``.logabsdet`` (shape (...), real); unpacks as
        ``sign, logabsdet``.

    Notes
    -----
    JVP: ``t = tr(A⁻¹dA)``; ``d logabsdet = Re t`` and, for complex ``A``,
    ``d sign = i·Im(t)·sign``, as JAX's own rule.  Second derivatives from
    ``logdet_hvp`` (``d(A⁻ᵀ) = −A⁻ᵀ·dAᵀ·A⁻ᵀ``).
    """
    (A,), dt = _prepare("slogdet", {"A": A})
    _square("slogdet", A)
    s, l = _slogdet_fn(carry(backend))(A)
    return SlogdetResult(_back(s, dt), _back(l, _real_dtype(dt)))


def frobenius_norm(X: Any, *, backend: BackendLike = None) -> Array:
    """``‖X‖_F`` per matrix, differentiable with ``∇ = X/‖X‖_F`` (0 at 0).

    Parameters
    ----------
    X : jax.Array, shape (..., m, n)
    backend : str, optional

    Returns
    -------
    jax.Array, shape (...), real; no overflow or underflow in the finite range.
    """
    (X,), dt = _prepare("frobenius_norm", {"X": X})
    if X.ndim < 2:
        raise ValueError(f"matgrad.jax.frobenius_norm: X must be (..., m, n); got {X.shape}")
    return _back(_frobenius_fn(carry(backend))(X), _real_dtype(dt))


def bilinear(x: Any, A: Any, y: Any, *, backend: BackendLike = None) -> Array:
    """``xᵀ A y`` (no conjugation), batch axes broadcast.

    Parameters
    ----------
    x : jax.Array, shape (..., m)
    A : jax.Array, shape (..., m, n)
    y : jax.Array, shape (..., n)
    backend : str, optional

    Returns
    -------
    jax.Array, shape broadcast(...)

    Notes
    -----
    JVP ``dxᵀ A y + Σ (x yᵀ)∘dA + xᵀ A dy``; the ``A`` part from
    :func:`matgrad.bilinear_grad`.
    """
    (x, A, y), dt = _prepare("bilinear", {"x": x, "A": A, "y": y})
    if x.ndim < 1 or y.ndim < 1 or A.ndim < 2 or A.shape[-2:] != (x.shape[-1], y.shape[-1]):
        raise ValueError(
            "matgrad.jax.bilinear: shapes must be x (..., m), A (..., m, n), y (..., n); "
            f"got {x.shape}, {A.shape}, {y.shape}"
        )
    return _back(_bilinear_fn(carry(backend))(x, A, y), dt)


def charpoly(A: Any, x: Any, *, backend: BackendLike = None) -> Array:
    """``p(x) = det(xI − A)``, differentiable in ``A`` and ``x``.

    Parameters
    ----------
    A : jax.Array, shape (..., n, n)
    x : jax.Array or scalar
        Result shape ``broadcast(A.shape[:-2], x.shape)``.
    backend : str, optional

    Returns
    -------
    jax.Array

    Notes
    -----
    ``∂p/∂x = p′(x)``, exact at eigenvalues; ``∂p/∂A = −cofactor(xI − A)``,
    computed only when ``A`` is differentiated.
    """
    (A, x), dt = _prepare("charpoly", {"A": A, "x": x})
    _square("charpoly", A)
    return _back(_charpoly_fn(carry(backend))(A, x), dt)
