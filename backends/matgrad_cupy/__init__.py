"""matgrad's CuPy backend: CUDA kernels on an NVIDIA GPU.

Available when CuPy imports, numba-cuda imports and a CUDA device is present;
otherwise listed as unavailable with the reason.  CuPy arrays in → CuPy
arrays out on the same device and stream (no host round-trip); NumPy arrays
with ``backend="cupy"`` are moved to the GPU and back.  Kernels: see
``_kernels.py`` (and its design note).  Install: ``matgrad[cuda12]`` or
``matgrad[cuda13]`` (CuPy wheels) plus numba-cuda.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import matgrad

__all__ = ["CupyBackend", "matgrad_backend"]


class CupyBackend(matgrad.ModuleBackend):
    name = "cupy"
    priority = 30
    array_modules = ("cupy",)
    array_precedence = 2  # device arrays win over host arrays among mixed inputs
    # the canonical methods are the functions of this module (device last)
    operation_modules = ("matgrad_cupy._ops",)

    def available(self) -> tuple[bool, str]:
        try:
            import cupy
        except Exception as exc:  # noqa: BLE001 - any import failure is a reason
            return False, f"cupy not installed or broken ({type(exc).__name__}: {exc})"
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:  # noqa: BLE001 - driver errors
            return False, f"no CUDA device ({type(exc).__name__}: {exc})"
        if count < 1:
            return False, "no CUDA device"
        try:
            from numba import cuda

            if not cuda.is_available():
                return False, "numba-cuda cannot use the CUDA driver"
        except Exception as exc:  # noqa: BLE001
            return False, f"numba-cuda not installed ({type(exc).__name__}: {exc})"
        return True, ""

    @property
    def version(self) -> str:
        import cupy

        return f"cupy {cupy.__version__}, CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()}"

    @property
    def device(self) -> str:
        import cupy

        dev = cupy.cuda.Device()
        name = cupy.cuda.runtime.getDeviceProperties(dev.id)["name"].decode()
        return f"cuda:{dev.id} ({name})"

    def asarray(self, x: Any, dtype: Any = None) -> Any:
        import cupy

        return cupy.ascontiguousarray(cupy.asarray(x, dtype=dtype))

    def to_numpy(self, y: Any) -> np.ndarray:
        import cupy

        return cupy.asnumpy(y)  # type: ignore[no-any-return]

    def launch_args(self) -> tuple[Any, ...]:
        """The device context every operation of ``_ops`` takes last."""
        import cupy
        from numba import cuda

        from ._ops import Device

        stream = cuda.external_stream(cupy.cuda.get_current_stream().ptr)
        return (Device(cupy, stream),)


@matgrad.hookimpl
def matgrad_backend() -> matgrad.Backend:
    return CupyBackend()
