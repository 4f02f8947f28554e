"""Root pytest configuration: GPU tests skip themselves without a CUDA device."""

from __future__ import annotations

import functools

import pytest


@functools.cache
def cuda_device_present() -> tuple[bool, str]:
    try:
        import cupy
    except Exception as exc:  # noqa: BLE001 - any import failure means no GPU
        return False, f"cupy not importable ({type(exc).__name__}: {exc})"
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # noqa: BLE001
        return False, f"no CUDA device ({exc})"
    return (n > 0, "" if n > 0 else "no CUDA device")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if not gpu_items:
        return
    ok, why = cuda_device_present()
    if not ok:
        skip = pytest.mark.skip(reason=f"GPU test: {why}")
        for item in gpu_items:
            item.add_marker(skip)
