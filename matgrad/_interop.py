"""PyTorch tensors and JAX arrays in the plain functions.

``matgrad.det_grad(t)`` on a torch tensor returns a torch tensor, on a JAX
array a JAX array.  No backend takes these types natively, and none needs to
know about them: the front end reads such an input as a NumPy array (without
a copy where the framework allows: a contiguous CPU tensor, also one with
``requires_grad``, is read detached through ``.numpy()``), lets the usual
selection run on NumPy data, and hands the result back in the caller's type
on the caller's device.  The framework is imported only when one of its
arrays arrives (its type's module is checked by name first), never at
``import matgrad``.

Precedence with mixed inputs: these adapters rank torch and JAX arrays 1
on the scale of :attr:`matgrad.Backend.array_precedence`, above NumPy (0:
Python scalars and lists count as NumPy) and below the array types that
backends declare higher (CuPy 2, Dask 3).  A torch tensor mixed with a JAX
array is a ``TypeError``: neither type can hold the other's result
faithfully.

The differentiable versions of the functions live in :mod:`matgrad.torch`
and :mod:`matgrad.jax`; the plain functions return values, not graph nodes.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from ._backend import array_module_of

__all__ = ["FRAMEWORKS", "Framework", "framework_of"]


class Framework:
    """How the front end reads and returns one framework's arrays."""

    name = ""
    #: Rank of the framework's arrays among mixed inputs, on the scale of
    #: :attr:`matgrad.Backend.array_precedence`: 1, read on the host.
    array_precedence = 1

    def to_numpy(self, func: str, name: str, x: Any) -> np.ndarray:
        raise NotImplementedError

    def from_numpy(self, y: np.ndarray, like: Any) -> Any:
        raise NotImplementedError


class _Torch(Framework):
    name = "torch"

    def to_numpy(self, func: str, name: str, x: Any) -> np.ndarray:
        torch = importlib.import_module("torch")
        if not isinstance(x, torch.Tensor):
            return np.asarray(x)
        t = x.detach()
        if t.device.type != "cpu":
            raise TypeError(
                f"{func}: {name} is a torch tensor on {t.device}; the plain matgrad "
                "functions read torch tensors on the CPU only (no installed matgrad "
                f"backend takes {t.device.type} tensors from torch).  Pass "
                f"{name}.cpu(), or a CuPy array for the CuPy backend"
            )
        if t.is_conj():
            t = t.resolve_conj()  # one copy: NumPy has no lazy conjugate
        if t.is_neg():
            t = t.resolve_neg()
        if t.dtype == torch.bfloat16:  # NumPy has no bfloat16: widen, as float16
            t = t.to(torch.float32)
        return t.numpy()  # type: ignore[no-any-return]

    def from_numpy(self, y: np.ndarray, like: Any) -> Any:
        torch = importlib.import_module("torch")
        y = np.asarray(y)
        if not y.flags.c_contiguous or not y.flags.writeable:
            y = np.array(y, order="C")
        return torch.from_numpy(y)


class _Jax(Framework):
    name = "jax"

    def to_numpy(self, func: str, name: str, x: Any) -> np.ndarray:
        jax = importlib.import_module("jax")
        if isinstance(x, jax.core.Tracer):
            raise TypeError(
                f"{func}: {name} is a JAX tracer (inside jit, grad or vmap); the plain "
                "matgrad functions take concrete arrays.  Use matgrad.jax, whose "
                "functions are differentiable and work under JAX's transformations"
            )
        return np.asarray(x)

    def from_numpy(self, y: np.ndarray, like: Any) -> Any:
        jax = importlib.import_module("jax")
        devices = getattr(like, "devices", None)
        device = next(iter(devices())) if callable(devices) else None
        return jax.device_put(np.asarray(y), device)


#: Framework adapters by the top-level module of their array types.
_JAX = _Jax()  # jax arrays live in jaxlib, tracers in jax: one adapter for both
FRAMEWORKS: dict[str, Framework] = {"torch": _Torch(), "jax": _JAX, "jaxlib": _JAX}


def framework_of(x: object) -> Framework | None:
    """The framework adapter for ``x``'s type, answered without importing it."""
    return FRAMEWORKS.get(array_module_of(x))

