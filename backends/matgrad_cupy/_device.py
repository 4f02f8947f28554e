"""The shared scalar algorithms, compiled for CUDA.

``matgrad_numba/_scalar.py`` is executed a second time as the separate module
``matgrad_cupy._scalar_cuda`` with ``TARGET = "cuda"``, so that each of its
``@device`` functions becomes a CUDA device function calling the CUDA
versions of the others: the GPU runs the very algorithms that the CPU
backend runs and tests.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

__all__ = ["scalar_cuda"]

_NAME = "matgrad_cupy._scalar_cuda"


def scalar_cuda() -> ModuleType:
    """The CUDA-target copy of ``matgrad_numba._scalar`` (loaded once)."""
    if _NAME in sys.modules:
        return sys.modules[_NAME]
    source = importlib.util.find_spec("matgrad_numba._scalar")
    if source is None or source.origin is None:  # pragma: no cover
        raise ImportError("matgrad_numba._scalar not found")
    spec = importlib.util.spec_from_file_location(_NAME, source.origin)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    module.__dict__["TARGET"] = "cuda"
    sys.modules[_NAME] = module
    spec.loader.exec_module(module)
    return module
