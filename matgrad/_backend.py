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
import inspect
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, ClassVar

import numpy as np

from ._operations import METHODS, Method

__all__ = [
    "Backend",
    "BackendInfo",
    "CompileWarning",
    "Defer",
    "ModuleBackend",
    "OrchestrationRequest",
    "array_module_of",
]


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

#: One step of :meth:`Backend.warmup_tasks`: (label for a progress bar, work),
#: or (label, work, group): steps of one group never run at the same time
#: when ``matgrad warmup`` runs steps in parallel processes (a 2-tuple's
#: group is its backend, so its steps run one after another).
WarmupTask = tuple[str, Callable[[], None]] | tuple[str, Callable[[], None], str]


def _module(name: str) -> ModuleType:
    """``importlib.import_module(name)``, answered from ``sys.modules`` once
    imported (a dictionary lookup: the import machinery costs microseconds on
    every call, a noticeable share of a small call).  A module still being
    imported by another thread is in ``sys.modules`` half-initialised: then
    ``import_module``, which waits for that import to finish."""
    module = sys.modules.get(name)
    if module is None or getattr(getattr(module, "__spec__", None), "_initializing", False):
        return importlib.import_module(name)
    return module


def array_module_of(x: object) -> str:
    """Top-level module name of ``x``'s type (``"numpy"``, ``"cupy"``, ...).

    Answered from ``type(x).__module__`` so that no array library is imported.
    Python scalars, lists and tuples count as NumPy.  This is the name that
    :attr:`Backend.array_modules` lists and :meth:`Backend.block_module`
    returns.

    >>> import numpy as np, matgrad
    >>> matgrad.array_module_of(np.eye(2)), matgrad.array_module_of(1.5)
    ('numpy', 'numpy')
    """
    module = type(x).__module__.partition(".")[0]
    return "numpy" if module == "builtins" else module


@dataclass(frozen=True)
class OrchestrationRequest:
    """One public call, validated, as the front end hands it to an
    orchestrating backend (:meth:`Backend.orchestrate`).

    Everything the backend needs is here: it has no reason to import
    matgrad's private modules.

    Attributes
    ----------
    op : str
        The public function called, e.g. ``"det_grad"`` or ``"charpoly"``
        (for messages; what to compute is ``method``).
    method : str
        The canonical :class:`Backend` method to compute in each piece, with
        the arguments and the result parts the backend interface documents:
        ``"det_grad"``, or ``"det_value_grad"`` for
        ``det_grad(A, return_value=True)``, ``"charpoly_deriv"`` for both
        ``charpoly`` and ``charpoly_deriv``, ``"charpoly_derivs"`` for
        ``charpoly_deriv(A, x, order=k)`` with k ≥ 2 (``options["order"]``
        is k; return the ``k + 1`` arrays ``(p, p′, …, p⁽ᵏ⁾)``).
    inputs : Mapping[str, Any]
        The validated inputs by parameter name, in the order of the method's
        arguments (e.g. ``{"A": A, "x": x}``): arrays of the backend's type
        and other array-likes (NumPy arrays, Python scalars), not yet
        broadcast or cast to ``dtype``.
    dtype : numpy.dtype
        The dtype of the result (the inputs promoted; one of float32,
        float64, complex64, complex128); value parts that are real (a norm,
        ``log|det|``) have its real dtype.
    inner : str
        Name of the registered backend to run inside each piece, resolved by
        the usual rules (``backend=``, ``use_backend``, ``set_backend``,
        ``$MATGRAD_BACKEND``, ``auto``; never an orchestrating backend) for
        the pieces' array type.  Carried by name, so that it reaches worker
        processes: pass it as ``backend=`` to the public functions, or to
        :func:`matgrad.load_backend`.
    options : Mapping[str, Any]
        The public call's keyword options that change what is computed
        (``{"return_value": True}``; empty when none is set), already
        reflected in ``method``.
    """

    op: str
    method: str
    inputs: Mapping[str, Any]
    dtype: np.dtype[Any]
    inner: str
    options: Mapping[str, Any]


class Backend(abc.ABC):  # noqa: B024 - abstract methods attached from the table below
    """Abstract base class of every matgrad backend.

    Subclasses set the class attributes :attr:`name`, :attr:`priority` and
    :attr:`array_modules`, implement the five required canonical operations, and may
    override :meth:`available`, :attr:`version`, :attr:`device`,
    :meth:`asarray` and :meth:`to_numpy`, and the value-and-gradient methods
    :meth:`frobenius_value_grad`, :meth:`det_value_grad` and
    :meth:`logdet_value_grad` (whose defaults are correct everywhere: the
    backend's gradient plus an overflow-safe value computed with NumPy), and
    the second-order methods :meth:`det_hvp`, :meth:`det_hvp_value`,
    :meth:`logdet_hvp`, :meth:`frobenius_hvp` and :meth:`det_hessian` (whose
    defaults run matgrad's host algorithms, :mod:`matgrad.kernels.hessian`,
    on the input converted to NumPy, and convert the result back).
    A backend that compiles may also list ahead-of-time steps in
    :meth:`warmup_tasks` (``matgrad warmup``) and raise :class:`Defer` to hand
    a call to the next backend of ``auto`` (see :meth:`may_defer`).
    A backend for a device array type sets :attr:`array_precedence`; one for
    a chunked or lazy array type that runs other backends inside its pieces
    sets :attr:`orchestrates` and implements :meth:`block_module` and
    :meth:`orchestrate`.  Heavy imports (numba, cupy, dask) belong inside
    the methods, so that listing backends stays cheap.
    """

    #: Registry name; must equal the entry point's name.
    name: str = ""
    #: Higher wins under ``auto``.
    priority: int = 0
    #: Top-level modules of the array types this backend takes natively.
    array_modules: tuple[str, ...] = ("numpy",)
    #: Rank of the array types in :attr:`array_modules` when one call mixes
    #: inputs of different array types: the type of highest rank wins (the
    #: others are converted to it and the result comes back in it; between
    #: equal ranks, the first such input).  0: host arrays, NumPy's (the
    #: default); 1: array types read on the host (matgrad's PyTorch and JAX
    #: adapters rank here); 2: device arrays (CuPy); 3: chunked or lazy
    #: arrays that wrap others (Dask).  An array type takes the highest rank
    #: declared by a registered backend that lists it, but NumPy's arrays
    #: (with Python scalars and lists) always rank 0 and any other array type
    #: at least 1: a backend for its own host-side array type keeps the
    #: default.  Read once, when the backend is discovered.
    array_precedence: int = 0
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
        (compile and cache its kernels), run by ``matgrad warmup``; none by
        default.  ``matgrad warmup`` may run them in worker processes, each
        of which calls this method again and runs the steps it is given by
        position, so the list must be the same in every process."""
        return []

    def accepts(self, x: object) -> bool:
        """Whether ``x``'s array type is native to this backend (no conversion)."""
        return array_module_of(x) in self.array_modules

    # -- conversion -------------------------------------------------------
    @property
    def xp(self) -> ModuleType:
        """The array namespace of this backend's arrays (``numpy``, ``cupy``)."""
        return _module(self.array_modules[0])

    def asarray(self, x: Any, dtype: Any = None) -> Any:
        """Convert ``x`` (NumPy or native) to a native C-contiguous array."""
        return self.xp.ascontiguousarray(x, dtype=dtype)

    def to_numpy(self, y: Any) -> np.ndarray:
        """Convert a native array to NumPy."""
        return np.asarray(y)

    # -- canonical operations --------------------------------------------
    # The abstract canonical methods (frobenius_grad, bilinear_grad,
    # det_grad, logdet_grad, charpoly_deriv) and the value-and-gradient
    # methods with their host defaults (frobenius_value_grad,
    # det_value_grad, logdet_value_grad), and the second-order methods with
    # theirs (det_hvp, det_hvp_value, logdet_hvp, frobenius_hvp,
    # det_hessian) are attached below from the
    # operation table (matgrad._operations.METHODS), with its signatures
    # and documentation.

    #: Names of the canonical methods, in table order: what the front end
    #: may call on a backend.
    methods: ClassVar[tuple[str, ...]] = tuple(METHODS)

    def _native_like(self, values: np.ndarray, like: Any) -> Any:
        """A host result as an array of the type of ``like`` (this backend's)."""
        if isinstance(like, np.ndarray):
            return values
        return self.asarray(values)

    # -- orchestration (only for ``orchestrates = True``) -----------------
    def block_module(self, x: Any) -> str:
        """Array type of the pieces of ``x``, an array of this backend's type,
        as :func:`matgrad.array_module_of` names it (e.g. ``"numpy"``,
        ``"cupy"``): the front end resolves the backend for the pieces
        (:attr:`OrchestrationRequest.inner`) for that type."""
        raise NotImplementedError(f"{self.name} does not orchestrate")

    def orchestrate(self, request: OrchestrationRequest) -> Any:
        """Compute one public call on inputs of this backend's array type.

        The front end has validated the call and resolved the dtype and the
        backend for the pieces; ``request`` (an :class:`OrchestrationRequest`)
        carries them.  Run ``request.method`` with backend ``request.inner``
        inside each piece and return the result in this backend's array type,
        parts as the method documents them (``det_value_grad``: the pair
        ``(det, C)``; ``charpoly_deriv``: ``(p, p′)``), in ``request.dtype``
        (real parts in its real dtype).  The front end checks the result's
        array type, and its shape and dtype where they are known."""
        raise NotImplementedError(f"{self.name} does not orchestrate")

    def __repr__(self) -> str:
        return f"<matgrad backend {self.name!r}>"


def _signature(m: Method) -> inspect.Signature:
    P = inspect.Parameter
    params = [P("self", P.POSITIONAL_OR_KEYWORD)]
    params += [P(a, P.POSITIONAL_OR_KEYWORD, annotation=Any) for a in m.args]
    return inspect.Signature(params, return_annotation=Any)


def _named(fn: Callable[..., Any], m: Method, owner: type) -> Callable[..., Any]:
    fn.__name__ = m.name
    fn.__qualname__ = f"{owner.__name__}.{m.name}"
    fn.__doc__ = m.doc
    fn.__signature__ = _signature(m)  # type: ignore[attr-defined]
    return fn


def _abstract_method(m: Method) -> Callable[..., Any]:
    def method(self: Backend, *args: Any) -> Any:
        raise NotImplementedError(f"{self.name} does not implement {m.name}")

    return abc.abstractmethod(_named(method, m, Backend))


def _host_value_method(m: Method) -> Callable[..., Any]:
    """Default of a value method: the backend's gradient, and the values
    computed from the canonical input on the host with NumPy (overflow-safe,
    see :mod:`matgrad.kernels.values`), returned in the gradient's array type."""
    assert m.host_value is not None
    host_value = m.host_value

    def method(self: Backend, *args: Any) -> Any:
        grad = getattr(self, m.gradient)(*args)
        values = host_value(np.ascontiguousarray(self.to_numpy(args[0])))
        return (*(self._native_like(v, grad) for v in values), grad)

    return _named(method, m, Backend)


def _given_default_method(m: Method) -> Callable[..., Any]:
    """An optional method's default (:attr:`Method.default`), on ``self``."""
    assert m.default is not None
    default = m.default

    def method(self: Backend, *args: Any) -> Any:
        return default(self, *args)

    return _named(method, m, Backend)


def _host_method(m: Method) -> Callable[..., Any]:
    """Default of a second-order method: the host algorithm
    (:mod:`matgrad.kernels.hessian`) on the canonical input converted to
    NumPy, each result part converted back to this backend's array type."""
    assert m.host is not None
    host = m.host

    def method(self: Backend, *args: Any) -> Any:
        out = host(*(np.ascontiguousarray(self.to_numpy(a)) for a in args))
        if isinstance(out, tuple):
            return tuple(self._native_like(o, args[0]) for o in out)
        return self._native_like(out, args[0])

    return _named(method, m, Backend)


def _default_method(m: Method) -> Callable[..., Any]:
    """What :class:`Backend` has for method ``m``: an abstract method if it is
    required, else the host default that fits it."""
    if m.required:
        return _abstract_method(m)
    if m.host_value is not None:
        return _host_value_method(m)
    if m.default is not None:
        return _given_default_method(m)
    return _host_method(m)


for _m in METHODS.values():
    setattr(Backend, _m.name, _default_method(_m))
abc.update_abstractmethods(Backend)


class ModuleBackend(Backend):
    """A backend whose canonical methods are functions of Python modules.

    Each canonical method ``name(self, *args)`` runs :meth:`before_launch`,
    then ``module.name(*args, *self.launch_args())`` from the first of
    :attr:`operation_modules` that defines ``name``.  Value and second-order
    methods that no module defines keep :class:`Backend`'s host defaults.  The modules are
    imported at the first call, so listing backends imports nothing heavy.
    """

    #: Modules searched, in order, for a function named after each method.
    operation_modules: ClassVar[tuple[str, ...]] = ()

    def before_launch(self) -> None:
        """Called before every canonical method (e.g. to settle a runtime)."""

    def launch_args(self) -> tuple[Any, ...]:
        """Extra trailing arguments of every operation function (e.g. a device)."""
        return ()

    def operation(self, name: str) -> Callable[..., Any] | None:
        """The function implementing canonical method ``name``, or None."""
        for module_name in self.operation_modules:
            fn = getattr(_module(module_name), name, None)
            if fn is not None:
                return fn  # type: ignore[no-any-return]
        return None


def _delegating_method(m: Method) -> Callable[..., Any]:
    default = getattr(Backend, m.name)

    def method(self: ModuleBackend, *args: Any) -> Any:
        # resolved once per instance: the modules and their functions do not
        # change, and a small call should not search them every time
        resolved = self.__dict__.setdefault("_resolved_operations", {})
        try:
            fn = resolved[m.name]
        except KeyError:
            fn = resolved[m.name] = self.operation(m.name)
        if fn is None:
            if m.required:
                raise NotImplementedError(
                    f"{self.name}: no function {m.name} in {', '.join(self.operation_modules)}"
                )
            return default(self, *args)
        self.before_launch()
        return fn(*args, *self.launch_args())

    return _named(method, m, ModuleBackend)


for _m in METHODS.values():
    setattr(ModuleBackend, _m.name, _delegating_method(_m))
abc.update_abstractmethods(ModuleBackend)
del _m


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
