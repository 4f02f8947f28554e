"""Shared set-up for the matgrad asv suite: backends, inputs, GPU sync."""

from __future__ import annotations

from typing import Any

import numpy as np

import matgrad

#: Every registered backend is a parameter; unavailable ones are skipped by
#: raising NotImplementedError in setup (asv's convention), never failed.
BACKENDS = sorted(b.name for b in matgrad.list_backends())
_INFO = {b.name: b for b in matgrad.list_backends()}


def require(backend: str) -> None:
    info = _INFO.get(backend)
    if info is None or not info.available:
        raise NotImplementedError(f"backend {backend} unavailable: "
                                  f"{info.reason if info else 'not registered'}")


def to_backend(backend: str, *arrays: np.ndarray) -> tuple[Any, ...]:
    """Inputs in the backend's native array type (CuPy on GPU, Dask chunks)."""
    mods = _INFO[backend].array_modules
    if "cupy" in mods:
        import cupy

        return tuple(cupy.asarray(a) for a in arrays)
    if "dask" in mods:
        import dask.array as da

        return tuple(da.from_array(a, chunks=(max(1, a.shape[0] // 4), *a.shape[1:]))
                     for a in arrays)
    return arrays


def finish(backend: str, result: Any) -> Any:
    """Force the work to be done before the timer stops."""
    mods = _INFO[backend].array_modules
    if "cupy" in mods:
        import cupy

        cupy.cuda.get_current_stream().synchronize()
    elif "dask" in mods:
        return result.compute() if not isinstance(result, tuple) else [
            r.compute() for r in result]
    return result


def rng() -> np.random.Generator:
    return np.random.default_rng(20261123)
