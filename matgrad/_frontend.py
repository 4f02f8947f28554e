"""Validation, dtype promotion, broadcasting and array-type conversion.

Written once for every operation and backend: a backend only ever sees
canonical arrays (see :mod:`matgrad._backend`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._backend import Backend, array_module_of
from ._registry import entries
from ._select import BackendLike, resolve

__all__ = ["Call", "input_module", "result_dtype"]

# Array types in order of precedence when inputs are mixed: dask > cupy >
# any other foreign array library > numpy (scalars and lists count as NumPy).
_PRECEDENCE = {"dask": 3, "cupy": 2, "numpy": 0}


def input_module(*xs: object) -> str:
    """The array type that wins among mixed inputs (``"numpy"`` by default)."""
    best, rank = "numpy", 0
    for x in xs:
        mod = array_module_of(x)
        r = _PRECEDENCE.get(mod, 1)
        if r > rank:
            best, rank = mod, r
    return best


def native_backend_for(module: str) -> Backend | None:
    """An available registered backend whose native type is ``module``."""
    if module == "numpy":
        return None
    cands = [
        e.backend
        for e in entries().values()
        if e.available and e.backend is not None and module in e.backend.array_modules
    ]
    cands.sort(key=lambda b: -b.priority)
    return cands[0] if cands else None


def to_numpy(x: Any) -> np.ndarray:
    """Any supported array (or scalar, list) as a NumPy array, without copying
    when it already is one."""
    mod = array_module_of(x)
    if mod != "numpy":
        owner = native_backend_for(mod)
        if owner is not None:
            return owner.to_numpy(x)
    return np.asarray(x)


def result_dtype(func: str, named: dict[str, Any]) -> np.dtype[Any]:
    """Promote the inputs' dtypes to one of the four supported dtypes.

    ``numpy.result_type`` rules (Python scalars are weak); integer and bool go
    to float64, float16 to float32; anything else is a ``TypeError``.
    """
    parts: list[Any] = []
    for name, x in named.items():
        if isinstance(x, (bool, int, float, complex)) and not isinstance(x, np.generic):
            parts.append(x)
            continue
        dt = getattr(x, "dtype", None)
        if not isinstance(dt, np.dtype):
            dt = np.asarray(x).dtype
        if dt.kind not in "biufc":
            raise TypeError(
                f"{func}: {name} has dtype {dt}; expected a real or complex "
                "floating dtype (float32, float64, complex64, complex128), or "
                "an integer or bool dtype (promoted to float64)"
            )
        if dt.kind in "biu":
            dt = np.dtype(np.float64)
        parts.append(dt)
    dt = np.result_type(*parts)
    if dt.kind in "biu":
        dt = np.dtype(np.float64)
    if dt == np.float16:
        dt = np.dtype(np.float32)
    if dt not in (np.float32, np.float64, np.complex64, np.complex128):
        raise TypeError(
            f"{func}: dtype {dt} is not supported; use float32, float64, "
            "complex64 or complex128 (extended precision has no LAPACK)"
        )
    return dt


def broadcast_batch(func: str, shapes: dict[str, tuple[int, ...]]) -> tuple[int, ...]:
    """Broadcast batch shapes, with an error that names what did not fit."""
    try:
        return tuple(np.broadcast_shapes(*shapes.values()))
    except ValueError:
        desc = ", ".join(f"{k} {v}" for k, v in shapes.items())
        raise ValueError(f"{func}: batch shapes do not broadcast: {desc}") from None


class Call:
    """One public call: its backend, the caller's array type and the dtype."""

    def __init__(self, func: str, backend: BackendLike, inputs: dict[str, Any]) -> None:
        self.func = func
        self.module = input_module(*inputs.values())
        # Shapes and dtypes are read without importing or converting foreign
        # arrays where they already carry them (cupy, dask).
        self.inputs = {k: self._shaped(v) for k, v in inputs.items()}
        self.dtype = result_dtype(func, self.inputs)
        # A chunked/lazy input type (Dask) is always handed to its
        # orchestrating backend, with the backend for its pieces resolved here.
        owner = native_backend_for(self.module)
        self.orchestrator = owner if owner is not None and owner.orchestrates else None
        if self.orchestrator is not None:
            piece = next(x for x in inputs.values() if array_module_of(x) == self.module)
            self.inner = resolve(backend, self.orchestrator.block_module(piece), inner=True)
            self.backend = self.orchestrator
        else:
            self.backend = resolve(backend, self.module)
        self.xp = self.backend.xp

    def orchestrate(self, op: str, **options: Any) -> Any:
        """Hand the validated call to the orchestrating backend."""
        assert self.orchestrator is not None
        return self.orchestrator.orchestrate(op, self.inputs, self.inner.name, options)

    @staticmethod
    def _shaped(x: Any) -> Any:
        if isinstance(x, (bool, int, float, complex)):
            return x
        if hasattr(x, "shape") and isinstance(getattr(x, "dtype", None), np.dtype):
            return x
        return np.asarray(x)

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(np.shape(self.inputs[name]))

    def matrix(self, name: str, *, square: bool) -> tuple[int, ...]:
        """Check that input ``name`` is a (batch of) matrix; return its shape."""
        shape = self.shape(name)
        if len(shape) < 2:
            raise ValueError(
                f"{self.func}: {name} must have at least 2 dimensions "
                f"(..., {'n, n' if square else 'm, n'}); got shape {shape}"
            )
        if square and shape[-1] != shape[-2]:
            raise ValueError(
                f"{self.func}: {name} must be square (..., n, n); got shape {shape}"
            )
        return shape

    def vector(self, name: str) -> tuple[int, ...]:
        shape = self.shape(name)
        if len(shape) < 1:
            raise ValueError(
                f"{self.func}: {name} must have at least 1 dimension (..., n); "
                f"got shape {shape}"
            )
        return shape

    def canonical(
        self,
        name: str,
        shape: Sequence[int],
        flat: Sequence[int],
        perm: Sequence[int] | None = None,
    ) -> Any:
        """Input ``name`` broadcast to ``shape``, axes permuted by ``perm``,
        reshaped to ``flat``, as a C-contiguous native array of the call's
        dtype.  Copies only when the layout or the dtype requires it (a
        broadcast view that also changes dtype is copied twice)."""
        x = self.inputs[name]
        if array_module_of(x) not in self.backend.array_modules:
            x = to_numpy(x)
        xp = self.xp
        x = xp.broadcast_to(xp.asarray(x), tuple(shape))
        if perm is not None:
            x = x.transpose(tuple(perm))
        return self.backend.asarray(x.reshape(tuple(flat)), self.dtype)

    def empty_result(self, shape: Sequence[int], fill: float = 0.0) -> Any:
        """A result that needs no computation (empty batch, 0×0 matrices)."""
        out = np.full(tuple(shape), fill, dtype=self.dtype)
        return self.back(self.backend.asarray(out, self.dtype))

    def back(self, y: Any) -> Any:
        """A backend result in the caller's array type."""
        if self.module in self.backend.array_modules:
            return y
        y = self.backend.to_numpy(y)
        if self.module == "numpy":
            return y
        owner = native_backend_for(self.module)
        return owner.asarray(y) if owner is not None else y


def prod(shape: Sequence[int]) -> int:
    return math.prod(shape)
