"""matgrad's Numba backend: compiled CPU kernels, run in parallel on large inputs.

Registered through the ``matgrad.backends`` entry point; available when
``numba`` imports (``pip install matgrad[numba]``).  Numba itself is imported
lazily, on the first computation, so listing backends stays fast.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any

import numpy as np

import matgrad

from ._compile import first_use

__all__ = ["NumbaBackend", "matgrad_backend"]


@first_use  # a small call whose kernel is not compiled yet may defer to NumPy
class NumbaBackend(matgrad.ModuleBackend):
    """Numba ``njit(nogil=True)`` kernels, run serially or on matgrad's own
    threads; NumPy arrays in and out."""

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

        return f"numba {version('numba')}, {describe()}"

    @property
    def device(self) -> str:
        return f"cpu ({matgrad.config.numba_threads} threads)"

    def warmup_tasks(
        self, dtypes: Sequence[np.dtype[Any]]
    ) -> list[matgrad.WarmupTask]:
        from ._compile import warmup_tasks

        return warmup_tasks(self, dtypes)


@matgrad.hookimpl
def matgrad_backend() -> matgrad.Backend:
    return NumbaBackend()
