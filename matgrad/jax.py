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

* **Higher orders**: second derivatives would differentiate the callback,
  which JAX refuses with an error (``pure_callback`` has no JVP); never a
  silent zero.  ``bilinear`` is the exception only in that its ``x`` and
  ``y`` tangents are plain ``jax.numpy``.
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
from typing import Any

import numpy as np

try:
    import jax
    import jax.numpy as jnp
except ImportError as _exc:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        "matgrad.jax needs JAX, which is not installed: pip install 'matgrad[jax]'"
    ) from _exc

from . import _api
from ._select import BackendLike, carried, carry

__all__ = ["bilinear", "charpoly", "det", "frobenius_norm", "slogdet"]

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


def _charpoly_cofactor_host(A: Array, x: Array, key: str) -> Array:
    """``cofactor(xI − A)`` per point, shape ``(*broadcast, n, n)``."""
    dt = A.dtype
    n = A.shape[-1]
    out = jnp.broadcast_shapes(A.shape[:-2], x.shape)

    def host(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a, b = np.asarray(a), np.asarray(b)
        M = b[..., None, None] * np.eye(n, dtype=a.dtype) - a
        return _cast(_api.det_grad(M, backend=carried(key)), dt)

    return _callback(host, _struct((*out, n, n), dt), A, x)


# ------------------------------------------------------------- rules
@functools.cache
def _det_fn(key: str) -> Callable[[Array], Array]:
    def value(A: Array) -> Array:
        return _det_host(A, key)[0]

    f = jax.custom_jvp(value)

    def jvp(primals: Any, tangents: Any) -> Any:
        (A,), (dA,) = primals, tangents
        d, C = _det_host(A, key)
        return d, jnp.sum(C * dA, axis=(-2, -1))

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
        s, l, G = _slogdet_host(A, key)
        t = jnp.sum(jnp.conj(G) * dA, axis=(-2, -1))  # tr(A⁻¹ dA)
        if jnp.iscomplexobj(A):
            ldot = jnp.real(t)
            sdot = (t - ldot.astype(t.dtype)) * s
        else:
            ldot, sdot = t, jnp.zeros_like(s)
        return (s, l), (sdot, ldot)

    f.defjvp(jvp)
    return f  # type: ignore[no-any-return]


@functools.cache
def _frobenius_fn(key: str) -> Callable[[Array], Array]:
    def value(X: Array) -> Array:
        return _frobenius_host(X, key)[0]

    f = jax.custom_jvp(value)

    def jvp(primals: Any, tangents: Any) -> Any:
        (X,), (dX,) = primals, tangents
        norm, G = _frobenius_host(X, key)
        return norm, jnp.real(jnp.sum(jnp.conj(G) * dX, axis=(-2, -1)))

    f.defjvp(jvp)
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
            G = _outer_host(jnp.broadcast_to(x, (*batch, x.shape[-1])),
                            jnp.broadcast_to(y, (*batch, y.shape[-1])), key)
            dout = dout + jnp.sum(G * dA, axis=(-2, -1))
        if not _is_zero(dx):
            dout = dout + value(dx, A, y)
        if not _is_zero(dy):
            dout = dout + value(x, A, dy)
        return out, dout

    f.defjvp(jvp, symbolic_zeros=True)
    return f  # type: ignore[no-any-return]


@functools.cache
def _charpoly_fn(key: str) -> Callable[[Array, Array], Array]:
    def pad(A: Array, x: Array) -> tuple[Array, Array]:
        d = max(A.ndim - 2, x.ndim)
        A = A.reshape((1,) * (d - A.ndim + 2) + A.shape)
        x = x.reshape((1,) * (d - x.ndim) + x.shape)
        return A, x

    def f_(A: Array, x: Array) -> Array:
        return _charpoly_host(*pad(A, x), key)[0]

    f = jax.custom_jvp(f_)

    def jvp(primals: Any, tangents: Any) -> Any:
        A, x = primals
        dA, dx = tangents
        Ap, xp = pad(A, x)
        p, dp = _charpoly_host(Ap, xp, key)
        dout = jnp.zeros_like(p)
        if not _is_zero(dx):
            dout = dout + dp * dx
        if not _is_zero(dA):
            C = _charpoly_cofactor_host(Ap, xp, key)
            dout = dout - jnp.sum(C * dA, axis=(-2, -1))
        return p, dout

    f.defjvp(jvp, symbolic_zeros=True)
    return f  # type: ignore[no-any-return]


# ------------------------------------------------------------- public API
def _prepare(func: str, named: dict[str, Any]) -> tuple[list[Array], Any]:
    """Check the inputs and give them one compute dtype (float16/bfloat16 →
    float32); returns them and the dtype the results go back to."""
    arrays = {}
    for k, v in named.items():
        a = v if isinstance(v, (jax.Array, np.ndarray)) or hasattr(v, "dtype") else None
        if a is None:
            continue
        dt = jnp.asarray(a).dtype if not hasattr(a, "dtype") else a.dtype
        if not (jnp.issubdtype(dt, jnp.floating) or jnp.issubdtype(dt, jnp.complexfloating)):
            raise TypeError(
                f"matgrad.jax.{func}: {k} has dtype {dt}; expected a floating or "
                "complex dtype"
            )
        arrays[k] = a
    out = jnp.result_type(*named.values())
    compute = jnp.float32 if out in (jnp.float16, jnp.bfloat16) else out
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
    ``A``.  Second derivatives raise.
    """
    (A,), dt = _prepare("det", {"A": A})
    _square("det", A)
    return _back(_det_fn(carry(backend))(A), dt)


def slogdet(A: Any, *, backend: BackendLike = None) -> tuple[Array, Array]:
    """``(sign, log|det A|)``, differentiable with ``∂log|det A|/∂A = A⁻ᵀ``.

    Parameters
    ----------
    A : jax.Array, shape (..., n, n)
    backend : str, optional

    Returns
    -------
    sign : jax.Array, shape (...)
    logabsdet : jax.Array, shape (...), real

    Notes
    -----
    JVP: ``t = tr(A⁻¹dA)``; ``d logabsdet = Re t`` and, for complex ``A``,
    ``d sign = i·Im(t)·sign``, as JAX's own rule.
    """
    (A,), dt = _prepare("slogdet", {"A": A})
    _square("slogdet", A)
    s, l = _slogdet_fn(carry(backend))(A)
    return _back(s, dt), _back(l, _real_dtype(dt))


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
