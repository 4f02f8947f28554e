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
import contextvars
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

__all__ = ["Backend", "BackendInfo", "CompileWarning", "Defer", "array_module_of"]


class CompileWarning(UserWarning):
    """A backend compiles code before it can answer: a one-time wait.

    Issued once per compilation (the message gives the expected wait and how
    to compile ahead of time with ``matgrad warmup``).  Silence it with
    ``warnings.filterwarnings("ignore", category=matgrad.CompileWarning)``.
    """


class Defer(Exception):
    """Raised by a backend operation to hand the call to the next backend.

    Only while :meth:`Backend.may_defer` is true: the backend was picked by
    ``auto`` and another available backend of lower priority takes the same
    array type.  The front end then runs the same canonical operation on that
    backend and logs the reason (the exception's message) on the ``matgrad``
    logger at debug level.  The Numba backend defers a small call whose
    compiled kernel is neither in memory nor in the on-disk cache.
    """


#: Set by the front end around an operation that may raise :class:`Defer`.
DEFERRABLE: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "matgrad_deferrable", default=False
)

#: One step of :meth:`Backend.warmup_tasks`: (label for a progress bar, work).
WarmupTask = tuple[str, Callable[[], None]]


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
    A backend that compiles may also list ahead-of-time steps in
    :meth:`warmup_tasks` (``matgrad warmup``) and raise :class:`Defer` to hand
    a call to the next backend of ``auto`` (see :meth:`may_defer`).
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

    @staticmethod
    def may_defer() -> bool:
        """Whether the operation running now (in this thread) may raise
        :class:`Defer`: true when ``auto`` picked this backend and a backend of
        lower priority that takes the same arrays can run the call instead."""
        return DEFERRABLE.get()

    def warmup_tasks(self, dtypes: Sequence[np.dtype[Any]]) -> list[WarmupTask]:
        """The steps that prepare this backend for ``dtypes`` ahead of time
        (compile and cache its kernels), run in order by ``matgrad warmup``;
        none by default."""
        return []

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

        ``det`` has ``A``'s dtype and is the true value to rounding: 0 where
        the factorisation meets an exactly zero pivot, inf or 0 only where
        the true value over- or underflows.
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
