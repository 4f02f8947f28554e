"""Run the GPU kernels' logic without a GPU: tests/cudasim on Numba's CUDA
simulator, in a subprocess (the simulator is chosen when Numba is imported)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def test_cupy_backend_kernels_on_cuda_simulator() -> None:
    pytest.importorskip("numba")
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    env.pop("MATGRAD_BACKEND", None)
    r = subprocess.run(
        # The simulator runs kernels as NumPy scalar code, which warns on the
        # IEEE overflows that the algorithms rely on (a GPU does not warn).
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
         "-W", "ignore::RuntimeWarning", "tests/cudasim"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800,
    )
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
    assert " passed" in r.stdout and "skipped" not in r.stdout.splitlines()[-1]
