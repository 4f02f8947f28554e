"""matgrad's Numba backend: compiled, parallel CPU kernels.

Registered through the ``matgrad.backends`` entry point; available when
``numba`` imports (``pip install matgrad[numba]``).  Numba itself is imported
lazily, on the first computation, so listing backends stays fast.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import matgrad

from ._compile import first_use

__all__ = ["NumbaBackend", "matgrad_backend"]


def _settle() -> None:
    """Settle Numba's threading layer before any work: every operation does,
    even one served by LAPACK alone, so the layer in the process is matgrad's
    choice from the first matgrad call on (kernel launches settle it too)."""
    from ._runtime import ensure

    ensure()


@first_use  # a small call whose kernel is not compiled yet may defer to NumPy
class NumbaBackend(matgrad.ModuleBackend):
    """Numba ``njit(parallel=True)`` kernels; NumPy arrays in and out."""

    name = "numba"
    priority = 20  # preferred over the NumPy reference for NumPy input
    array_modules = ("numpy",)
    # the canonical methods are the functions of these modules
    operation_modules = ("matgrad_numba._ops", "matgrad_numba._values")

    def available(self) -> tuple[bool, str]:
        if importlib.util.find_spec("numba") is None:
            return False, "numba not installed (pip install 'matgrad[numba]')"
        return True, ""

    @property
    def version(self) -> str:
        from importlib.metadata import version

        from ._runtime import describe

        # the layer in use, or the one matgrad's first kernel will start
        return f"numba {version('numba')}, threading layer {describe()}"

    @property
    def device(self) -> str:
        import numba

        return f"cpu ({numba.config.NUMBA_NUM_THREADS} threads)"

    def warmup_tasks(
        self, dtypes: Sequence[np.dtype[Any]]
    ) -> list[tuple[str, Callable[[], None]]]:
        from ._compile import warmup_tasks

        return warmup_tasks(self, dtypes)

    def before_launch(self) -> None:
        _settle()


@matgrad.hookimpl
def matgrad_backend() -> matgrad.Backend:
    return NumbaBackend()
