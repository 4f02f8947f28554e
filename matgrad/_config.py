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
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Config", "config"]


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the platform
    has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _default_threads() -> int:
    """:func:`available_cpus`, or ``NUMBA_NUM_THREADS`` where the user set it."""
    env = os.environ.get("NUMBA_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return available_cpus()


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
    #: default the CPUs the process may use, or ``NUMBA_NUM_THREADS``.
    numba_threads: int = field(default_factory=_default_threads)
    #: A Numba launch whose estimated work (element operations, e.g.
    #: ``batch·n³`` for an elimination) is below this runs in the calling
    #: thread alone: a parallel hand-off costs more than such a call's work.
    numba_parallel_min_work: int = 1 << 18

    def __setattr__(self, name: str, value: Any) -> None:
        fields = {f.name for f in dataclasses.fields(self)}
        if name not in fields:
            raise AttributeError(
                f"matgrad.config has no setting {name!r}; settings: {', '.join(sorted(fields))}"
            )
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"matgrad.config.{name} must be a positive int, got {value!r}")
        object.__setattr__(self, name, value)

    @contextlib.contextmanager
    def override(self, **changes: int) -> Iterator[Config]:
        """Set some fields for the duration of a ``with`` block, then restore
        them (also on an exception)::

            with matgrad.config.override(det_lapack_min_n=8):
                ...
        """
        saved = {name: getattr(self, name) for name in changes}
        try:
            for name, value in changes.items():
                setattr(self, name, value)
            yield self
        finally:
            for name, value in saved.items():
                object.__setattr__(self, name, value)

    def reset(self) -> None:
        """Restore every default."""
        for f in dataclasses.fields(self):
            default = f.default
            if default is dataclasses.MISSING:
                default = f.default_factory()  # type: ignore[operator]
            object.__setattr__(self, f.name, default)


#: The process-wide settings read by the built-in backends.
config = Config()
