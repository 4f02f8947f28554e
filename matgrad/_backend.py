"""The backend interface: what a backend declares and computes.

A backend receives *canonical* arrays only: arrays of its own array type,
C-contiguous, one of float32/float64/complex64/complex128, with one flattened
leading batch axis ``B``.  Validation, dtype promotion, broadcasting and
conversion between array types happen once, in the front end
(:mod:`matgrad._frontend`).  Empty problems (``B == 0`` or a 0×0 matrix) are
answered by the front end and never reach a backend.
"""

from __future__ import annotations

import abc
import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

__all__ = ["Backend", "BackendInfo", "array_module_of"]


def array_module_of(x: object) -> str:
    """Top-level module name of ``x``'s type (``"numpy"``, ``"cupy"``, ...).

    Answered from ``type(x).__module__`` so that no array library is imported.
    Python scalars, lists and tuples count as NumPy.
    """
    module = type(x).__module__.partition(".")[0]
    return "numpy" if module == "builtins" else module


class Backend(abc.ABC):
    """Abstract base class of every matgrad backend.

    Subclasses set the class attributes :attr:`name`, :attr:`priority` and
    :attr:`array_modules`, implement the five canonical operations, and may
    override :meth:`available`, :attr:`version`, :attr:`device`,
    :meth:`asarray` and :meth:`to_numpy`, and the value-and-gradient methods
    :meth:`frobenius_value_grad`, :meth:`det_value_grad` and
    :meth:`logdet_value_grad` (whose defaults are correct everywhere: the
    backend's gradient plus an overflow-safe value computed with NumPy).
    Heavy imports (numba, cupy, dask) belong inside the methods, so that
    listing backends stays cheap.
    """

    #: Registry name; must equal the entry point's name.
    name: str = ""
    #: Higher wins under ``auto``.
    priority: int = 0
    #: Top-level modules of the array types this backend takes natively.
    array_modules: tuple[str, ...] = ("numpy",)
    #: True for a backend that spreads work over the pieces of a chunked or
    #: lazy array type (Dask) and runs another backend inside each piece.  An
    #: input of its native type is always handed to :meth:`orchestrate`.
    orchestrates: bool = False

    # -- metadata ---------------------------------------------------------
    def available(self) -> tuple[bool, str]:
        """``(True, "")`` if usable here, else ``(False, reason)``."""
        return True, ""

    @property
    def version(self) -> str:
        """Version of the library doing the work."""
        return ""

    @property
    def device(self) -> str:
        """Where the work runs, e.g. ``"cpu"`` or ``"cuda:0 (NVIDIA H100)"``."""
        return "cpu"

    def accepts(self, x: object) -> bool:
        """Whether ``x``'s array type is native to this backend (no conversion)."""
        return array_module_of(x) in self.array_modules

    # -- conversion -------------------------------------------------------
    @property
    def xp(self) -> ModuleType:
        """The array namespace of this backend's arrays (``numpy``, ``cupy``)."""
        return importlib.import_module(self.array_modules[0])

    def asarray(self, x: Any, dtype: Any = None) -> Any:
        """Convert ``x`` (NumPy or native) to a native C-contiguous array."""
        return self.xp.ascontiguousarray(x, dtype=dtype)

    def to_numpy(self, y: Any) -> np.ndarray:
        """Convert a native array to NumPy."""
        return np.asarray(y)

    # -- canonical operations --------------------------------------------
    @abc.abstractmethod
    def frobenius_grad(self, X: Any) -> Any:
        """``X (B, m, n)`` → ``X / ‖X‖_F`` per matrix, same shape and dtype."""

    @abc.abstractmethod
    def bilinear_grad(self, x: Any, y: Any) -> Any:
        """``x (B, m)``, ``y (B, n)`` → ``x yᵀ`` of shape ``(B, m, n)``."""

    @abc.abstractmethod
    def det_grad(self, A: Any) -> Any:
        """``A (B, n, n)``, ``n ≥ 1`` → cofactor matrices ``(B, n, n)``."""

    @abc.abstractmethod
    def logdet_grad(self, A: Any) -> Any:
        """``A (B, n, n)``, ``n ≥ 1`` → ``A⁻ᵀ`` (``A⁻ᴴ`` if complex) ``(B, n, n)``."""

    @abc.abstractmethod
    def charpoly_deriv(self, A: Any, x: Any) -> tuple[Any, Any]:
        """``A (B, n, n)``, ``n ≥ 1``, ``x (B, K)`` → ``(p, p′)``, each ``(B, K)``.

        ``p(x) = det(xI − A)``.  ``A`` and ``x`` share one dtype.  A matrix is
        reduced at most once per call, never once per point.
        """

    # -- value and gradient from one pass ----------------------------------
    # Defaults, correct for every backend: the canonical gradient from the
    # backend plus an overflow-safe value computed on the host with NumPy
    # (see :mod:`matgrad._values`).  A backend that can take the value from
    # the factorisation it already made (one pass, no host round trip)
    # overrides them.
    def frobenius_value_grad(self, X: Any) -> tuple[Any, Any]:
        """``X (B, m, n)`` → ``(‖X‖_F (B,), X / ‖X‖_F (B, m, n))``.

        The norm has ``X``'s real dtype (float32 for complex64) and is the
        true value: inf or 0 only where ‖X‖_F itself over- or underflows.
        """
        from ._values import frobenius_value

        G = self.frobenius_grad(X)
        norm = frobenius_value(np.ascontiguousarray(self.to_numpy(X)))
        return self._native_like(norm, G), G

    def det_value_grad(self, A: Any) -> tuple[Any, Any]:
        """``A (B, n, n)``, ``n ≥ 1`` → ``(det A (B,), cofactor (B, n, n))``.

        ``det`` has ``A``'s dtype and is the true value (0 for an exactly
        singular matrix; inf only where the true value overflows).
        """
        from ._values import det_value

        C = self.det_grad(A)
        det = det_value(np.ascontiguousarray(self.to_numpy(A)))
        return self._native_like(det, C), C

    def logdet_value_grad(self, A: Any) -> tuple[Any, Any, Any]:
        """``A (B, n, n)``, ``n ≥ 1`` → ``(sign (B,), log|det A| (B,), A⁻ᵀ)``.

        ``sign`` has ``A``'s dtype (unit modulus for complex, 0 when ``A`` is
        singular), ``log|det A|`` its real dtype (−inf when singular); the
        gradient is as :meth:`logdet_grad`.
        """
        from ._values import slogdet_value

        G = self.logdet_grad(A)
        sign, logabs = slogdet_value(np.ascontiguousarray(self.to_numpy(A)))
        return self._native_like(sign, G), self._native_like(logabs, G), G

    def _native_like(self, values: np.ndarray, like: Any) -> Any:
        """A host result as an array of the type of ``like`` (this backend's)."""
        if isinstance(like, np.ndarray):
            return values
        return self.asarray(values)

    # -- orchestration (only for ``orchestrates = True``) -----------------
    def block_module(self, x: Any) -> str:
        """Array type of the pieces of ``x`` (e.g. ``"numpy"``, ``"cupy"``)."""
        raise NotImplementedError(f"{self.name} does not orchestrate")

    def orchestrate(
        self, op: str, inputs: dict[str, Any], inner: str, options: dict[str, Any]
    ) -> Any:
        """Run public operation ``op`` on validated ``inputs`` of this
        backend's array type, with backend ``inner`` (resolved by the usual
        rules, carried by name) inside each piece.  Returns this backend's
        array type (for ``charpoly_deriv``: the pair ``(p, p′)``)."""
        raise NotImplementedError(f"{self.name} does not orchestrate")

    def __repr__(self) -> str:
        return f"<matgrad backend {self.name!r}>"


@dataclass(frozen=True)
class BackendInfo:
    """What the registry knows about one backend (see ``list_backends``)."""

    name: str
    available: bool
    reason: str
    priority: int
    version: str
    device: str
    array_modules: tuple[str, ...]
