"""Fixtures shared by the contract suite: one parameter per registered backend.

An unavailable backend appears as a skipped parameter with its reason, so a
test report always shows which backends were and were not exercised.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import matgrad


def _backend_params() -> list[object]:
    params = []
    for info in matgrad.list_backends():
        marks = []
        if "cupy" in info.array_modules:
            marks.append(pytest.mark.gpu)
        if not info.available:
            marks.append(pytest.mark.skip(reason=f"backend {info.name}: {info.reason}"))
        params.append(pytest.param(info.name, marks=marks, id=info.name))
    return params


BACKENDS = _backend_params()

# tests/cudasim runs only in its own process, with Numba's CUDA simulator on
# (see tests/test_cuda_sim.py).
collect_ignore = [] if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" else ["cudasim"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture(autouse=True)
def _restore_selection() -> object:
    """Undo any process-wide ``set_backend`` a test (or README example) made."""
    yield
    matgrad.set_backend(None)
