"""Peak memory (tracemalloc, which sees NumPy's allocations): streaming
operations allocate the output plus O(batch) scalars, never a full-size
temporary.  A size check, not a speed check."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import matgrad

AVAILABLE = {b.name for b in matgrad.list_backends() if b.available}


def _peak(fn: Callable[[], Any]) -> tuple[int, Any]:
    fn()  # warm-up: JIT compilation allocates too
    tracemalloc.start()
    tracemalloc.reset_peak()
    out = fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, out


CASES = [
    ("frobenius_grad 20000x8x8", lambda r: (r.standard_normal((20000, 8, 8)),),
     matgrad.frobenius_grad, ("numba", "numpy")),
    ("frobenius_grad 2048x2048", lambda r: (r.standard_normal((2048, 2048)),),
     matgrad.frobenius_grad, ("numba", "numpy")),
    ("bilinear_grad 20000x16x16", lambda r: (r.standard_normal((20000, 16)),
                                             r.standard_normal((20000, 16))),
     matgrad.bilinear_grad, ("numba", "numpy")),
    ("det_grad 100000x3x3", lambda r: (r.standard_normal((100000, 3, 3)),),
     matgrad.det_grad, ("numba",)),
    ("det_grad 50000x4x4", lambda r: (r.standard_normal((50000, 4, 4)),),
     matgrad.det_grad, ("numba",)),
    # closed forms C/det: an earlier NumPy path peaked at 11x the output
    ("logdet_grad 100000x2x2", lambda r: (r.standard_normal((100000, 2, 2)),),
     matgrad.logdet_grad, ("numba", "numpy")),
    ("logdet_grad 100000x3x3", lambda r: (r.standard_normal((100000, 3, 3)),),
     matgrad.logdet_grad, ("numba", "numpy")),
]


@pytest.mark.parametrize("label,build,op,backends", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("backend_name", ["numba", "numpy"])
def test_peak_is_output_plus_small(label: str, build: Any, op: Any, backends: tuple[str, ...],
                                   backend_name: str) -> None:
    if backend_name not in backends:
        pytest.skip(f"{backend_name} makes per-slot temporaries for {label}")
    if backend_name not in AVAILABLE:
        pytest.skip(f"backend {backend_name} unavailable")
    args = build(np.random.default_rng(0))
    peak, out = _peak(lambda: op(*args, backend=backend_name))
    batch = out.shape[0]
    allowed = out.nbytes + 64 * batch + (2 << 20)  # output + O(batch) + 2 MiB slack
    assert peak <= allowed, f"peak {peak / 2**20:.1f} MiB > {allowed / 2**20:.1f} MiB"


@pytest.mark.parametrize("backend_name", ["numba", "numpy"])
def test_charpoly_many_points_works_in_blocks(backend_name: str) -> None:
    """Millions of points on one matrix: the recurrence runs over blocks of
    points, so the extra memory is O(block), not a multiple of the output."""
    if backend_name not in AVAILABLE:
        pytest.skip(f"backend {backend_name} unavailable")
    A = np.random.default_rng(0).standard_normal((10, 10))
    x = np.linspace(-3.0, 3.0, 1_500_000)
    peak, (p, dp) = _peak(lambda: matgrad.charpoly_deriv(A, x, return_value=True,
                                                         backend=backend_name))
    allowed = p.nbytes + dp.nbytes + (48 << 20)  # outputs + a few blocks
    assert peak <= allowed, f"peak {peak / 2**20:.1f} MiB > {allowed / 2**20:.1f} MiB"
