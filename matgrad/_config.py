"""``matgrad.config``: the tunables of the built-in backends, in one place.

Every field is a size threshold that picks a path or a block size, or a
thread count; none is a numerical tolerance.  Each decision it drives depends only on facts of one
matrix (its order ``n``, its dtype, its number of points), never on the rest
of the batch, so changing a field can change which algorithm a matrix takes
(and its rounding, within the same error bounds) but never makes one batch
slot depend on another.  The defaults were measured on x86-64 with OpenBLAS;
``docs/architecture.md`` says where each is read.

Read and set fields directly (``matgrad.config.det_lapack_min_n = 32``) or
for a block with :meth:`Config.override`.  The object is process-wide (not
thread-local): set it at start-up or in tests, not while another thread is
inside matgrad.
"""

from __future__ import annotations

import contextlib
import dataclasses
import operator
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Config", "config", "max_threads"]


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the platform
    has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def max_threads() -> int:
    """The largest ``numba_threads``: 4 × ``os.cpu_count()`` (every logical
    CPU of the machine, not only the affinity mask, which may widen later),
    and at least 8.

    The kernels are CPU-bound and release the GIL, so threads beyond the
    CPUs only queue for them: each adds a thread start, ranges to hand off
    and context switches, and none adds throughput (a count of 100 000 once
    started about 560 threads and ran 30× slower).  Four per CPU still lets
    one try oversubscription; the floor of 8 keeps a setting written on a
    small multi-core machine valid on one CPU."""
    return max(8, 4 * (os.cpu_count() or 1))


def _default_threads() -> int:
    """:func:`available_cpus`, or ``NUMBA_NUM_THREADS`` where the user set it
    (at most :func:`max_threads`)."""
    env = os.environ.get("NUMBA_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return min(int(env), max_threads())
    return available_cpus()


#: Called with the name of a setting of :data:`config` after its value
#: changed (by assignment, :meth:`Config.override` or :meth:`Config.reset`):
#: the Numba backend shrinks or drops its worker pool when ``numba_threads``
#: changes.  Register with :func:`on_change`.
_listeners: list[Callable[[str], None]] = []


def on_change(listener: Callable[[str], None]) -> None:
    """Call ``listener(name)`` whenever setting ``name`` of
    :data:`matgrad.config` changes value (once per listener)."""
    if listener not in _listeners:
        _listeners.append(listener)


def _positive_int(name: str, value: Any) -> int:
    """``value`` as a Python int: any integral number (``int``, NumPy
    integers, anything with ``__index__``) but a boolean, at least 1."""
    if not isinstance(value, (bool, np.bool_)):
        try:
            value = operator.index(value)
        except TypeError:
            pass
        else:
            if value >= 1:
                return int(value)
    raise ValueError(f"matgrad.config.{name} must be a positive int, got {value!r}")


@dataclass(slots=True)
class Config:
    """Path and size thresholds of the built-in backends (see the module)."""

    #: ``det_grad``/``logdet_grad`` on the NumPy backend (and the host paths
    #: of the others): matrices of this order or larger take LAPACK's LU
    #: (``getrf``/``getri``) instead of the batched equilibrated elimination.
    det_lapack_min_n: int = 48
    #: The same switch in the Numba backend (its compiled elimination stays
    #: ahead of a per-matrix LAPACK call up to here).
    numba_det_lapack_min_n: int = 64
    #: ``charpoly``: matrices of this order or larger are reduced to
    #: Hessenberg form by LAPACK (``gehrd``) instead of the batched reduction.
    charpoly_lapack_min_n: int = 64
    #: Numba ``charpoly``: a matrix of this order or larger with at most
    #: :attr:`charpoly_lu_route_max_points` points takes one LU of ``xI − A``
    #: per point (LAPACK) instead of a Hessenberg reduction plus recurrence.
    charpoly_lu_route_min_n: int = 64
    #: Most points per matrix for that LU route.
    charpoly_lu_route_max_points: int = 2
    #: Points per block in ``charpoly`` (bounds the temporaries of many points).
    charpoly_point_block: int = 1 << 20
    #: CuPy ``det_grad``/``logdet_grad``: largest order solved on the device
    #: (one thread per matrix); larger matrices use the host LAPACK path.
    cuda_gauss_jordan_max_n: int = 32
    #: Entries per block of the host scaling helpers (bounds temporaries).
    scaling_block: int = 1 << 16
    #: Entries per parallel chunk of the Numba Frobenius kernels.
    frobenius_chunk: int = 1 << 14
    #: Under ``auto``, a call with at most this many input elements whose
    #: Numba kernel is not compiled yet (neither in memory nor in the on-disk
    #: cache) runs on the NumPy backend instead of waiting for the compiler.
    numba_defer_max_elements: int = 1 << 16
    #: Threads of a parallel Numba launch (the calling thread included); by
    #: default the CPUs the process may use, or ``NUMBA_NUM_THREADS``.  At
    #: most :func:`max_threads` (4 × the machine's CPUs, at least 8): more
    #: threads than CPUs only wait for them.  Lowering it ends the surplus
    #: worker threads at once.
    numba_threads: int = field(default_factory=_default_threads)
    #: A Numba launch whose estimated work (element operations, e.g.
    #: ``batch·n³`` for an elimination) is below this runs in the calling
    #: thread alone: a parallel hand-off costs more than such a call's work.
    numba_parallel_min_work: int = 1 << 18

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in _names():
            raise AttributeError(f"matgrad.config has no setting {name!r}; {_settings()}")
        self._store(name, self._valid(name, value))

    @staticmethod
    def _valid(name: str, value: Any) -> int:
        """``value`` checked for setting ``name`` (a ``ValueError`` if not)."""
        out = _positive_int(name, value)
        if name == "numba_threads" and out > max_threads():
            raise ValueError(
                f"matgrad.config.numba_threads must be at most {max_threads()} "
                f"(4 × the {os.cpu_count()} CPUs, at least 8: more threads than "
                f"CPUs only wait for them), got {value!r}"
            )
        return out

    def _store(self, name: str, value: int) -> None:
        """Set a checked value; tell the listeners when :data:`config`'s
        value changed."""
        old = getattr(self, name, None)
        object.__setattr__(self, name, value)
        if old != value and self is globals().get("config"):
            for listener in list(_listeners):
                listener(name)

    @contextlib.contextmanager
    def override(self, **changes: Any) -> Iterator[Config]:
        """Set some fields for the duration of a ``with`` block, then restore
        them (also on an exception)::

            with matgrad.config.override(det_lapack_min_n=8):
                ...

        Every name and value is checked before any is set: an unknown name
        is a ``TypeError`` naming the settings, a bad value a ``ValueError``.
        """
        unknown = sorted(set(changes) - _names())
        if unknown:
            raise TypeError(
                f"matgrad.config.override() got unknown setting"
                f"{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                f"{_settings()}"
            )
        checked = {name: self._valid(name, value) for name, value in changes.items()}
        saved = {name: getattr(self, name) for name in checked}
        try:
            for name, value in checked.items():
                self._store(name, value)
            yield self
        finally:
            for name, value in saved.items():
                self._store(name, value)

    def reset(self) -> None:
        """Restore every default."""
        for f in dataclasses.fields(self):
            default = f.default
            if default is dataclasses.MISSING:
                default = f.default_factory()  # type: ignore[operator]
            self._store(f.name, default)

    @staticmethod
    def on_change(listener: Callable[[str], None]) -> None:
        """Call ``listener(name)`` whenever setting ``name`` changes value
        (by assignment, :meth:`override` or :meth:`reset`; once per
        listener).  A backend that keeps state derived from a setting (the
        Numba backend's worker pool, from ``numba_threads``) registers here."""
        on_change(listener)


def _names() -> set[str]:
    return {f.name for f in dataclasses.fields(Config)}


def _settings() -> str:
    return f"settings: {', '.join(sorted(_names()))}"


#: The process-wide settings read by the built-in backends.
config = Config()
