"""Validation, dtype promotion, broadcasting and array-type conversion.

Written once for every operation and backend: a backend only ever sees
canonical arrays (see :mod:`matgrad._backend`), and what it returns is checked
here (type, shape, dtype, no memory shared with its inputs) before it reaches
the caller, so that a faulty plugin is a clear error naming it rather than a
wrong answer or an ``AttributeError`` deep inside matgrad.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

import numpy as np

from ._arrays import input_module, native_backend_for
from ._backend import DEFERRABLE, Backend, Defer, OrchestrationRequest, array_module_of
from ._interop import FRAMEWORKS, Framework, framework_of
from ._operations import OPERATIONS, Part, method
from ._select import BackendLike, resolve, resolve_call

_log = logging.getLogger("matgrad")

__all__ = ["BackendResultError", "Call", "flag", "input_module", "result_dtype"]


class BackendResultError(RuntimeError):
    """A backend returned a result that breaks the backend contract.

    Raised by the public functions when the selected backend's result is not
    of the array type it was given, has the wrong shape or dtype, or shares
    memory with one of its inputs (results must be fresh arrays); for
    ``charpoly_deriv``, when it is not a pair ``(p, p′)``.  The message names
    the backend and the operation.  It is a bug in that backend: run
    ``matgrad check --backend NAME`` on it.
    """


# Public operation with return_value=True → canonical value method.
VALUE_OPS = {
    op.name: op.value_method
    for op in OPERATIONS.values()
    if op.value_method and op.value_method != op.method
}


def _type_name(x: object) -> str:
    t = type(x)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def check_input(func: str, name: str, x: object) -> None:
    """Refuse array types whose meaning conversion to a dense array would lose."""
    if isinstance(x, np.ma.MaskedArray):
        raise TypeError(
            f"{func}: {name} is a masked array (numpy.ma.MaskedArray); matgrad "
            f"would silently ignore its mask.  Pass {name}.filled(value) or "
            f"{name}.data explicitly"
        )
    # Checked by module name so that SciPy is not imported just to say no.
    if type(x).__module__.startswith("scipy.sparse"):
        raise TypeError(
            f"{func}: {name} is a SciPy sparse {type(x).__name__}; matgrad takes "
            f"dense arrays: pass {name}.toarray()"
        )
    # A Python int is exact, but every supported dtype is floating point.
    if isinstance(x, int) and not isinstance(x, bool):
        try:
            float(x)
        except OverflowError:
            raise ValueError(
                f"{func}: {name} is an integer of {x.bit_length()} bits, too large "
                "for any supported floating-point dtype (its magnitude must be "
                "below 2**1024)"
            ) from None


def flag(func: str, name: str, value: object) -> bool:
    """A keyword that must be a boolean (``bool`` or NumPy's ``bool_``):
    ``"yes"``, ``1`` or an array would pass a truth test by accident."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{func}: {name} must be a bool (True or False), got {value!r}")
    return bool(value)


def framework_of_module(module: str) -> Framework | None:
    """The framework adapter (torch, JAX) whose arrays have top-level module ``module``."""
    return FRAMEWORKS.get(module)


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


def _unknown(d: Any) -> bool:
    """A dimension whose size is not known yet: NaN, as Dask reports the
    length of an axis with unknown chunk sizes (after boolean indexing)."""
    return isinstance(d, float) and math.isnan(d)


_COMPUTE_CHUNKS = "call compute_chunk_sizes() on the Dask array first"


def broadcast_batch(func: str, shapes: dict[str, tuple[int, ...]]) -> tuple[int, ...]:
    """Broadcast batch shapes, with an error that names what did not fit.

    An unknown dimension (NaN, a Dask axis with unknown chunk sizes) stays
    unknown where every other shape has 1 or an unknown size there (Dask
    matches those blocks when it computes); against a known size other than
    1 nothing can be checked, which is a ``ValueError``."""
    desc = ", ".join(f"{k} {v}" for k, v in shapes.items())
    known = [tuple(1 if _unknown(d) else d for d in s) for s in shapes.values()]
    try:
        out = list(np.broadcast_shapes(*known))
    except ValueError:
        raise ValueError(f"{func}: batch shapes do not broadcast: {desc}") from None
    for s in shapes.values():
        for axis in range(-len(s), 0):
            if _unknown(s[axis]):
                if out[axis] != 1 and not _unknown(out[axis]):
                    raise ValueError(
                        f"{func}: batch shapes {desc}: an axis of unknown size (nan) meets "
                        f"one of size {out[axis]}, which cannot be checked; {_COMPUTE_CHUNKS}"
                    )
                out[axis] = s[axis]
    return tuple(out)


class Call:
    """One public call: its backend, the caller's array type and the dtype."""

    def __init__(self, func: str, backend: BackendLike, inputs: dict[str, Any]) -> None:
        self.func = func
        for k, v in inputs.items():
            check_input(func, k, v)
        self.module = input_module(*inputs.values())
        # PyTorch tensors and JAX arrays are read as NumPy (no copy where the
        # framework allows) and results go back to the caller's framework.
        self.framework: Framework | None = None
        self.like: Any = None
        found = {k: fw for k, v in inputs.items() if (fw := framework_of(v)) is not None}
        if found:
            names = sorted({fw.name for fw in found.values()})
            if len(names) > 1:
                raise TypeError(
                    f"{func}: inputs mix {' and '.join(names)} arrays "
                    f"({', '.join(f'{k}: {found[k].name}' for k in found)}); convert "
                    "them to one framework first"
                )
            fw = next(iter(found.values()))
            if framework_of_module(self.module) is fw:  # the framework wins precedence
                self.framework = fw
                self.like = next(inputs[k] for k in found)
                self.module = "numpy"
            inputs = {k: found[k].to_numpy(func, k, v) if k in found else v
                      for k, v in inputs.items()}
        # Shapes and dtypes are read without importing or converting foreign
        # arrays where they already carry them (cupy, dask).
        self.inputs = {k: self._shaped(func, k, v) for k, v in inputs.items()}
        self.dtype = result_dtype(func, self.inputs)
        # A chunked/lazy input type (Dask) is always handed to its
        # orchestrating backend, with the backend for its pieces resolved here.
        owner = native_backend_for(self.module)
        self.orchestrator = owner if owner is not None and owner.orchestrates else None
        self.fallback: Backend | None = None  # runs the call if the backend defers
        if self.orchestrator is not None:
            piece = next(x for x in inputs.values() if array_module_of(x) == self.module)
            self.inner = resolve(backend, self.orchestrator.block_module(piece), inner=True)
            self.backend = self.orchestrator
        else:
            self.backend, self.fallback = resolve_call(backend, self.module)
        self.xp = self.backend.xp

    def _call_backend(self, op: str, args: tuple[Any, ...]) -> Any:
        """``op`` on the chosen backend; where ``auto`` chose it and a fallback
        exists, the backend may raise :class:`Defer` and the fallback runs the
        call instead.  Which backend ran is logged at debug level."""
        ran = self.backend
        self.ran: Backend | None = None
        deferred: Defer | None = None
        if self.fallback is None:
            result = getattr(ran, op)(*args)
        else:
            token = DEFERRABLE.set(True)
            try:
                result = getattr(ran, op)(*args)
            except Defer as why:
                deferred = why
            finally:
                DEFERRABLE.reset(token)
        if deferred is not None and self.fallback is not None:
            _log.debug("%s: backend %r deferred %s to %r: %s", self.func, ran.name, op,
                       self.fallback.name, deferred)
            ran = self.fallback
            result = getattr(ran, op)(*args)
        self.ran, self.deferred = ran, deferred is not None
        if _log.isEnabledFor(logging.DEBUG):
            shapes = ", ".join(str(getattr(a, "shape", "?")) for a in args)
            _log.debug("%s: backend %r ran %s on %s %s", self.func, ran.name, op,
                       self.dtype, shapes)
        return result

    def orchestrate(self, op: str, shape: Sequence[int], **options: Any) -> Any:
        """Hand the validated call to the orchestrating backend; check that
        the result is of its array type, of shape ``shape`` (where the
        result's shape is known) and of the call's dtype."""
        orch = self.orchestrator
        assert orch is not None
        kind = VALUE_OPS[op] if options.get("return_value") else op
        request = OrchestrationRequest(
            op=self.func,
            method=kind,
            inputs=MappingProxyType(dict(self.inputs)),
            dtype=self.dtype,
            inner=self.inner.name,
            options=MappingProxyType(dict(options)),
        )
        result = orch.orchestrate(request)
        count = options.get(method(kind).count) if method(kind).count else None
        for label, r, want, dtype in self._parts(kind, result, tuple(shape), count):
            if array_module_of(r) not in orch.array_modules:
                raise self._broken(
                    op, f"returned {label}{_type_name(r)}, not an array of its own type "
                    f"({', '.join(orch.array_modules)})"
                )
            got = tuple(getattr(r, "shape", ()))
            if all(isinstance(d, int) for d in got):  # lazy shapes may be unknown (nan)
                self._check_shape_dtype(op, label, r, want, dtype)
        return result

    def run(self, op: str, shape: Sequence[int], *args: Any) -> Any:
        """Run canonical operation ``op`` of the backend on ``args`` and check
        the result: of the type of ``args[0]`` (the backend's array type), of
        shape ``shape``, of the call's dtype, sharing no memory with ``args``.
        ``charpoly_deriv`` must return a pair, each part checked so."""
        result = self._call_backend(op, args)
        expected = type(args[0])
        m = method(op)
        parts = self._parts(op, result, tuple(shape),
                            args[m.args.index(m.count)] if m.count else None)
        for label, r, want, dtype in parts:
            if type(r) is not expected:
                raise self._broken(
                    op, f"returned {label}{_type_name(r)}, not {_type_name(args[0])} "
                    "(the array type it was given)"
                )
            self._check_shape_dtype(op, label, r, want, dtype)
            # may_share_memory compares address ranges only: O(1), and exact
            # enough here because results are contracted to be fresh arrays.
            if isinstance(r, np.ndarray):
                for arg_name, a in zip(method(op).args, args, strict=False):
                    if isinstance(a, np.ndarray) and np.may_share_memory(r, a):
                        raise self._broken(
                            op, f"returned {label}an array that shares memory with "
                            f"its input {arg_name}; results must be new arrays"
                        )
        for i, (la, a, _, _) in enumerate(parts):
            for lb, b, _, _ in parts[i + 1:]:
                if isinstance(a, np.ndarray) and np.may_share_memory(a, b):
                    raise self._broken(
                        op, f"returned {la.rstrip(' =')} and {lb.rstrip(' =')} sharing memory"
                    )
        return result

    def _parts(
        self, op: str, result: Any, shape: tuple[int, ...], count: int | None = None
    ) -> list[tuple[str, Any, tuple[int, ...], np.dtype[Any]]]:
        """The arrays in a result, each with its label for messages and the
        shape and dtype it must have (``shape`` is the gradient's shape);
        ``count``: the value of the method's ``count`` argument, for a result
        of ``count + 1`` arrays."""
        spec = method(op).parts
        if count is not None:
            # one part per k = 0 … count, its label a format string of k
            spec = tuple(Part(spec[0].label.format(k), spec[0].kind) for k in range(count + 1))
        if not spec:
            return [("", result, shape, self.dtype)]
        if not isinstance(result, tuple) or len(result) != len(spec):
            what = (f"a tuple of length {len(result)}" if isinstance(result, tuple)
                    else _type_name(result))
            raise self._broken(op, f"returned {what}, not {method(op).called}")
        real = np.empty(0, self.dtype).real.dtype
        out = []
        for part, r in zip(spec, result, strict=True):
            if part.kind == "grad":
                out.append((part.label, r, shape, self.dtype))
            else:
                dtype = real if part.kind == "real" else self.dtype
                out.append((part.label, r, shape[:-2], dtype))
        return out

    def _check_shape_dtype(
        self, op: str, label: str, r: Any, shape: tuple[int, ...], dtype: np.dtype[Any]
    ) -> None:
        got = tuple(getattr(r, "shape", ()))
        if not hasattr(r, "shape") or got != shape:
            raise self._broken(op, f"returned {label}an array of shape {got}, expected {shape}")
        if r.dtype != dtype:
            raise self._broken(
                op, f"returned {label}an array of dtype {r.dtype}, expected {dtype}"
            )

    def _broken(self, op: str, what: str) -> BackendResultError:
        b = self.orchestrator or self.backend
        return BackendResultError(
            f"{self.func}: matgrad backend {b.name!r} broke the backend contract: "
            f"its {op}() {what}"
        )

    @staticmethod
    def _shaped(func: str, name: str, x: Any) -> Any:
        if isinstance(x, (bool, int, float, complex)):
            return x
        if hasattr(x, "shape") and isinstance(getattr(x, "dtype", None), np.dtype):
            return x
        try:
            return np.asarray(x)
        except ValueError as exc:  # ragged nested lists, mostly
            raise ValueError(f"{func}: {name} could not be converted to an array: {exc}") from exc

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
        if square and (_unknown(shape[-1]) or _unknown(shape[-2])):
            raise ValueError(
                f"{self.func}: {name} must be square (..., n, n), and its shape {shape} "
                f"has matrix axes of unknown size (nan); {_COMPUTE_CHUNKS}"
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

    def empty_result(self, shape: Sequence[int], fill: float = 0.0, *, real: bool = False) -> Any:
        """A result that needs no computation (empty batch, 0×0 matrices);
        ``real``: in the call's real dtype (a norm, a log-determinant)."""
        dtype = np.empty(0, self.dtype).real.dtype if real else self.dtype
        out = np.full(tuple(shape), fill, dtype=dtype)
        # asarray (ascontiguousarray) makes a 0-d array 1-d: convert the
        # flattened array and restore the shape.
        native = self.backend.asarray(out.reshape(-1), dtype).reshape(tuple(shape))
        return self.back(native)

    def back(self, y: Any) -> Any:
        """A backend result in the caller's array type."""
        if self.framework is not None:
            host = y if isinstance(y, np.ndarray) else self.backend.to_numpy(y)
            return self.framework.from_numpy(host, self.like)
        if self.module in self.backend.array_modules:
            return y
        y = self.backend.to_numpy(y)
        if self.module == "numpy":
            return y
        owner = native_backend_for(self.module)
        # reshape: asarray may make a 0-d result 1-d
        return owner.asarray(y).reshape(y.shape) if owner is not None else y


def prod(shape: Sequence[int]) -> int:
    return math.prod(shape)
