"""First use of the Numba kernels: in memory, in the on-disk cache, or not yet.

Numba compiles a kernel for each signature (dtype, layout, read-only flag of
every argument) on its first launch, in seconds, and stores the result in its
on-disk cache (``__pycache__`` next to the sources, or ``$NUMBA_CACHE_DIR``)
for later processes.  Before every launch, :func:`prepare` (called by
``_runtime.launch``, the one launch path) finds out, without compiling,
whether the signature is compiled in this process or present in the cache
index, under the very key Numba will look up (which includes the Numba
version, the CPU name and features and the kernel's source file).  Each
(kernel, signature) is checked once per process.

When it is neither, the call's *policy* decides:

* ``defer``: raise :class:`matgrad.Defer`, so that the front end runs the
  call on the next backend of ``auto`` (NumPy).  Only where ``auto`` picked
  this backend and the call's inputs hold at most ``matgrad.config.numba_defer_max_elements``
  elements: for such a call the NumPy code path takes milliseconds, a compile
  seconds.  The rule looks at nothing but the operation, the dtype and size of
  the inputs, the path that ``n`` selects and the cache state.
* ``compile`` (any other call): Numba compiles; the first such launch of a
  call issues one :class:`matgrad.CompileWarning` with the expected wait.
* ``quiet`` (``matgrad warmup``): Numba compiles, nothing is said.

A damaged cache file (an index or data file cut short by a full disk or a
killed process) is a cache miss: it is removed, with one
:class:`matgrad.CompileWarning` naming it, and the kernel compiles again
(:func:`_read_index`, :func:`_repair`).

Arguments that a kernel only reads are passed read-only whatever the
caller's flags (:data:`READ_ONLY_ARGS`), so that one compiled signature
serves writable and read-only inputs.  See docs/numba.md for the
measurements behind the threshold and the waits.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any, TypeVar

import numpy as np

import matgrad

__all__ = [
    "EXPECTED_SECONDS",
    "READ_ONLY_ARGS",
    "cache_dir",
    "dispatchers",
    "first_use",
    "in_disk_cache",
    "prepare",
    "quiet",
    "warmup_tasks",
]

_log = logging.getLogger("matgrad")

# The size below which a cold call defers is matgrad.config.numba_defer_max_elements:
# measured (docs/numba.md), at 65 536 elements the NumPy code path of every
# operation took at most about 14 ms (about 10 ms more than the compiled
# kernel), while a cold compile takes 1 to 24 s.

#: Expected compile time in seconds of each kernel, per dtype kind (real,
#: complex), measured with an empty cache on a 2-core x86-64 machine; used
#: for the wait announced by :class:`matgrad.CompileWarning`.
EXPECTED_SECONDS: dict[str, tuple[float, float]] = {
    "_rows": (3.0, 3.0),  # complex Frobenius runs on the real view
    "_partials": (3.0, 3.0),
    "_write": (0.5, 0.5),
    "bilinear_grad_into": (1.0, 1.0),
    "closed_form": (2.5, 2.5),
    "lu_kernel": (5.0, 6.0),
    "hessenberg": (1.0, 1.0),
    "balance": (4.5, 4.5),  # 5.0-6.4 s measured with the other core busy
    "hyman": (1.5, 1.5),
    "hyman_orders": (4.5, 5.0),
    "closed_form_value": (2.5, 2.5),
    "hvp_small": (2.0, 2.5),
    "hessian_small": (0.8, 0.8),
    "frobenius_hvp_rows": (3.0, 3.0),  # complex runs on the real view
}
#: Arguments (by position) that a kernel only reads.  They are always passed
#: read-only, so that one compiled signature serves a writable array and a
#: read-only one (the front end's canonical arrays are often read-only views,
#: JAX arrays always are), instead of one compile for each.
READ_ONLY_ARGS: dict[str, tuple[int, ...]] = {
    "_partials": (0,),
    "_write": (0,),
    "_rows": (0,),
    "bilinear_grad_into": (0, 1),
    "closed_form": (0,),
    "lu_kernel": (0,),
    "closed_form_value": (0,),
    "logdet_closed": (0,),
    "closed_form_narrow": (0,),
    "hvp_small": (0, 1),
    "hessian_small": (0,),
    "frobenius_hvp_rows": (0, 1),
}
#: Kernels that a call launches after the given one (added to its estimate).
_FOLLOWERS = {"_partials": ("_write",), "hessenberg": ("hyman",)}
_DEFAULT_SECONDS = 5.0

DEFER, COMPILE, QUIET = "defer", "compile", "quiet"


@dataclass
class _Policy:
    op: str
    mode: str
    size: int
    warned: bool = False


_policy: contextvars.ContextVar[_Policy | None] = contextvars.ContextVar(
    "matgrad_numba_policy", default=None
)
_lock = threading.Lock()
_ready: set[tuple[Any, ...]] = set()  # (kernel, argument fingerprints) known compiled
_absent: dict[tuple[Any, ...], tuple[Any, ...]] = {}  # ... not on disk: their signatures


@functools.cache
def _fingerprinter() -> Callable[[Any], Any] | None:
    """Numba's C-level argument fingerprint (what its dispatcher caches
    argument types by): microseconds, where computing the types takes tens."""
    try:
        from numba._dispatcher import compute_fingerprint
    except ImportError:  # pragma: no cover - other numba versions
        return None
    return compute_fingerprint


_FINGERPRINT = _fingerprinter()


def _key(fn: Any, args: Sequence[Any]) -> tuple[Any, ...]:
    fingerprint = _FINGERPRINT
    if fingerprint is not None:
        try:
            return (fn, *map(fingerprint, args))
        except (TypeError, ValueError):
            pass
    return (fn, *_signature(fn, args))


def _signature(fn: Any, args: Sequence[Any]) -> tuple[Any, ...]:
    """The argument types Numba compiles ``fn`` for, as its dispatcher computes them."""
    return tuple(fn.typeof_pyval(a) for a in args)


def in_disk_cache(fn: Any, sig: tuple[Any, ...]) -> bool:
    """Whether Numba's on-disk cache holds ``fn`` compiled for ``sig`` for this
    machine, looked up under the key Numba's own cache uses (signature, CPU
    name and features, bytecode; the index is stale when the source file
    changed or Numba's version differs).  Reads the small index file only."""
    cache = getattr(fn, "_cache", None)
    if cache is None or not getattr(cache, "_enabled", False):
        return False
    try:
        key = cache._index_key(sig, fn.targetctx.codegen())
        return key in _read_index(fn)
    except Exception as exc:  # noqa: BLE001 - changed internals
        _log.debug("matgrad: could not look up Numba's cache index for %s: %r",
                   getattr(fn, "__name__", fn), exc)
        return False


def _read_index(fn: Any) -> dict[Any, Any]:
    """``fn``'s on-disk cache index (signature key → data file name; empty
    when absent or stale).  An index that cannot be read — truncated by a
    full disk or a killed writer, or otherwise damaged: unpickling it raises
    ``UnpicklingError``, ``EOFError`` or anything else — is a cache miss: the
    file is removed (Numba writes a fresh one with the next compile) and the
    index reads as empty."""
    cache_file = fn._cache._cache_file
    try:
        index: dict[Any, Any] = cache_file._load_index()
    except Exception as exc:  # noqa: BLE001 - a damaged pickle raises anything
        _discard(fn, cache_file._index_path, exc)
        return {}
    return index


def _discard(fn: Any, path: str, exc: BaseException) -> None:
    """Remove an unreadable cache file of ``fn`` and say so.  Where it cannot
    be removed (a read-only cache), ``fn`` stops using the on-disk cache in
    this process, so that it still compiles and runs."""
    name = getattr(fn, "__name__", repr(fn))
    try:
        os.remove(path)
        done = "removed it; the kernel is compiled again and cached anew"
    except FileNotFoundError:
        done = "another thread or process removed it; the kernel is compiled again"
    except OSError as err:
        from numba.core.caching import NullCache

        fn._cache = NullCache()
        done = f"could not remove it ({err}); this process compiles {name} without the cache"
    message = (f"matgrad: Numba's on-disk cache file {path} for kernel {name} is unreadable "
               f"({type(exc).__name__}: {exc}); {done}")
    _log.debug("%s", message)
    _warn(message)


def _repair(fn: Any, sig: tuple[Any, ...]) -> bool:
    """After loading ``fn`` for ``sig`` failed: whether its cache entry was
    unreadable (then removed, so that the next attempt compiles)."""
    cache = getattr(fn, "_cache", None)
    if cache is None or not getattr(cache, "_enabled", False):
        return False
    cache_file = cache._cache_file
    try:
        cache_file._load_index()
    except Exception as exc:  # noqa: BLE001 - a damaged pickle raises anything
        _discard(fn, cache_file._index_path, exc)
        return True
    try:
        name = cache_file._load_index().get(cache._index_key(sig, fn.targetctx.codegen()))
    except Exception:  # noqa: BLE001 - changed internals: not a cache problem we can fix
        return False
    if name is None:
        return False
    path = cache_file._data_path(name)
    try:
        cache_file._load_data(name)
    except OSError:  # absent: Numba itself treats that as a miss
        return False
    except Exception as exc:  # noqa: BLE001 - a damaged pickle raises anything
        _discard(fn, path, exc)
        return True
    return False


def cache_dir(fn: Any) -> str:
    """Where Numba caches ``fn`` (for messages)."""
    return str(getattr(getattr(fn, "_cache", None), "cache_path", "") or
               os.environ.get("NUMBA_CACHE_DIR", "__pycache__"))


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Compile whatever is needed, silently (``matgrad warmup``)."""
    token = _policy.set(_Policy("warmup", QUIET, 0))
    try:
        yield
    finally:
        _policy.reset(token)


def _expected(name: str, complex_: bool) -> float:
    total = 0.0
    for k in (name, *_FOLLOWERS.get(name, ())):
        secs = EXPECTED_SECONDS.get(k)
        total += _DEFAULT_SECONDS if secs is None else secs[complex_]
    return total


def _dtype_of(args: Sequence[Any]) -> str:
    for a in args:
        if isinstance(a, np.ndarray) and a.dtype.kind in "fc":
            return str(a.dtype)
    return "?"


def _stacklevel() -> int:
    """``warnings.warn``'s stacklevel for the first frame outside matgrad and
    its backends (so that the warning names the user's line)."""
    inside = (os.path.dirname(os.path.abspath(matgrad.__file__)),
              os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    frame: FrameType | None = sys._getframe(2)  # the caller of _warn: stacklevel 2 in _warn
    level = 2
    while frame is not None and frame.f_code.co_filename.startswith(inside):
        frame = frame.f_back
        level += 1
    return level


def _warn(message: str) -> None:
    warnings.warn(message, matgrad.CompileWarning, stacklevel=_stacklevel())


def _read_only(a: Any) -> Any:
    if isinstance(a, np.ndarray) and a.flags.writeable:
        a = a.view()
        a.flags.writeable = False
    return a


def prepare(fn: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Before launching kernel ``fn``: ``args`` with the arguments it only
    reads made read-only (see :data:`READ_ONLY_ARGS`).  If ``fn`` is neither
    compiled for them in this process nor cached on disk, by the running
    policy: raise :class:`matgrad.Defer`, announce the compile, or let it
    happen quietly."""
    name = getattr(fn, "__name__", None) or repr(fn)
    frozen = READ_ONLY_ARGS.get(name)
    if frozen and any(isinstance(args[i], np.ndarray) and args[i].flags.writeable
                      for i in frozen):  # else nothing to freeze
        args = tuple(_read_only(a) if i in frozen else a for i, a in enumerate(args))
    key = _key(fn, args)
    if key in _ready:
        return args
    sig = _absent.get(key)  # not on disk when last looked (the index is read once)
    first_look = sig is None
    if sig is None:
        sig = _signature(fn, args)
    if sig in fn.overloads or (first_look and in_disk_cache(fn, sig)):
        _load(fn, sig)
        with _lock:
            _ready.add(key)
        return args
    with _lock:
        _absent[key] = sig
    pol = _policy.get()
    mode = COMPILE if pol is None else pol.mode
    dtype = _dtype_of(args)
    op = pol.op if pol is not None else name
    if mode == DEFER:
        assert pol is not None
        raise matgrad.Defer(
            f"Numba kernel {name} for {dtype} is not compiled yet (neither in memory nor "
            f"in the on-disk cache) and the input is small ({pol.size} ≤ "
            f"{matgrad.config.numba_defer_max_elements} elements)"
        )
    if mode == COMPILE and not (pol is not None and pol.warned):
        if pol is not None:
            pol.warned = True
        secs = _expected(name, dtype.startswith("complex"))
        message = (
            f"matgrad: the Numba backend compiles its {op} kernel ({name}) for {dtype} "
            f"before this call can run: expect about {secs:.0f} s, once.  Compiled "
            f"kernels are cached in {cache_dir(fn)} for later processes; run "
            "'matgrad warmup' to compile them all ahead of time"
        )
        _log.debug("%s", message)
        _warn(message)
    _load(fn, sig)
    with _lock:
        _ready.add(key)
    return args


def _load(fn: Any, sig: tuple[Any, ...]) -> None:
    """Compile ``fn`` for ``sig``, or load it from the on-disk cache, in this
    thread (the caller's) before any worker thread runs it: the compiler
    never runs on a background thread."""
    if sig in fn.overloads:
        return
    try:
        fn.compile(sig)
    except Exception:
        # a damaged cache file (index or data) is a cache miss, not an error
        if not _repair(fn, sig):
            raise
        fn.compile(sig)


F = TypeVar("F", bound=Callable[..., Any])



def _watched(op: str, method: F) -> F:
    @functools.wraps(method)
    def run(self: Any, *args: Any) -> Any:
        if _policy.get() is not None:  # nested (a value method calling a gradient one)
            return method(self, *args)
        # may_defer first: outside a deferrable call the size is not needed
        deferrable = matgrad.Backend.may_defer()
        size = sum(int(getattr(a, "size", 1)) for a in args) if deferrable else 0
        small = deferrable and size <= matgrad.config.numba_defer_max_elements
        token = _policy.set(_Policy(op, DEFER if small else COMPILE, size))
        try:
            return method(self, *args)
        finally:
            _policy.reset(token)

    return run  # type: ignore[return-value]


C = TypeVar("C", bound=type)


def first_use(cls: C) -> C:
    """Class decorator: every canonical operation of ``cls`` (its own or
    inherited) runs under the first-use policy described in this module."""
    for op in matgrad.Backend.methods:
        method = getattr(cls, op, None)
        if method is not None:
            setattr(cls, op, _watched(op, method))
    return cls


def dispatchers() -> list[Any]:
    """Every Numba dispatcher defined in this package's loaded modules."""
    from numba.core.dispatcher import Dispatcher

    found: list[Any] = []
    for name, module in list(sys.modules.items()):
        if name.startswith(__package__ + ".") and module is not None:
            for value in vars(module).values():
                if isinstance(value, Dispatcher) and value not in found:
                    found.append(value)
    return found


def _sample(dtype: np.dtype[Any], *shape: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    a = rng.standard_normal(shape)
    if dtype.kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return np.ascontiguousarray(a, dtype=dtype)


#: Settings under which the warm-up's tiny inputs take every kernel path:
#: parallel launches (``bilinear_grad`` runs NumPy's multiply below the
#: parallel size), and rows longer than one Frobenius chunk (two passes).
_EVERY_PATH = {"numba_parallel_min_work": 1}
_LONG_ROWS = {"numba_parallel_min_work": 1, "frobenius_chunk": 4}


def _inputs(dtype: np.dtype[Any]) -> list[tuple[str, str, tuple[Any, ...], dict[str, int]]]:
    """(label, operation, canonical inputs, settings) covering every kernel path."""
    A3, A6 = _sample(dtype, 2, 3, 3), _sample(dtype, 2, 6, 6)
    V3 = _sample(dtype, 2, 3, 3)[::-1].copy()
    X = _sample(dtype, 2, 3, 4)
    x, y = _sample(dtype, 2, 3), _sample(dtype, 2, 4)
    pts = _sample(dtype, 2, 3)
    return [
        ("frobenius_grad", "frobenius_grad", (X,), _EVERY_PATH),
        ("frobenius_grad", "frobenius_value_grad", (X,), _EVERY_PATH),
        ("frobenius_grad long rows", "frobenius_grad", (X,), _LONG_ROWS),
        ("bilinear_grad", "bilinear_grad", (x, y), _EVERY_PATH),
        ("det_grad n ≤ 3", "det_grad", (A3,), _EVERY_PATH),
        ("det_grad n ≤ 3 with value", "det_value_grad", (A3,), _EVERY_PATH),
        ("logdet_grad n ≤ 3", "logdet_grad", (A3,), _EVERY_PATH),
        ("logdet_grad n ≤ 3 with value", "logdet_value_grad", (A3,), _EVERY_PATH),
        ("det_grad, logdet_grad n ≥ 4", "det_grad", (A6,), _EVERY_PATH),
        ("det_grad, logdet_grad n ≥ 4", "logdet_grad", (A6,), _EVERY_PATH),
        ("det_grad, logdet_grad n ≥ 4", "det_value_grad", (A6,), _EVERY_PATH),
        ("det_grad, logdet_grad n ≥ 4", "logdet_value_grad", (A6,), _EVERY_PATH),
        ("charpoly_deriv", "charpoly_deriv", (A6, pts), _EVERY_PATH),
        # second derivatives (n ≥ 4 and logdet/Frobenius run on the host)
        ("det_hvp n ≤ 3", "det_hvp", (A3, V3), _EVERY_PATH),
        ("det_hvp n ≤ 3 with value", "det_hvp_value", (A3, V3), _EVERY_PATH),
        ("det_hessian n ≤ 3", "det_hessian", (A3,), _EVERY_PATH),
        ("frobenius_hvp", "frobenius_hvp", (X, X[::-1].copy()), _EVERY_PATH),
        ("charpoly_deriv", "charpoly_derivs", (A6, pts, 2), _EVERY_PATH),
    ]


def warmup_tasks(backend: Any, dtypes: Sequence[np.dtype[Any]]) -> list[matgrad.WarmupTask]:
    """One task per (dtype, operation path): run it on a small input with
    compiling allowed and silent, so that every kernel lands in the on-disk
    cache (inputs that kernels only read are passed read-only whatever the
    caller's flags, so these signatures are those of every later call).
    A task's group is its path: the paths use disjoint kernels, so tasks of
    different groups may run in parallel processes."""
    return [(label, _task(backend, items), path)
            for label, path, items in _grouped(backend, dtypes)]


_Item = tuple[str, tuple[Any, ...], dict[str, int]]


def _grouped(backend: Any, dtypes: Sequence[np.dtype[Any]]) -> list[
        tuple[str, str, list[_Item]]]:
    grouped: dict[tuple[str, str], list[_Item]] = {}
    for dt in dtypes:
        dtype = np.dtype(dt)
        for path, op, args, settings in _inputs(dtype):
            if getattr(backend, op, None) is not None:
                grouped.setdefault((str(dtype), path), []).append((op, args, settings))
    return [(f"numba {path} {dt}", path, items) for (dt, path), items in grouped.items()]


def _task(backend: Any, items: list[_Item]) -> Callable[[], None]:
    def run() -> None:
        with quiet(), np.errstate(all="ignore"):
            for op, args, settings in items:
                with matgrad.config.override(**settings):
                    getattr(backend, op)(*args)

    return run
