"""Numba backend specifics: threading layer, concurrent calls, fork safety."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import matgrad

pytestmark = pytest.mark.skipif(
    not any(b.name == "numba" and b.available for b in matgrad.list_backends()),
    reason="numba backend unavailable",
)


def _work(seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((500, 5, 5))
    return (
        matgrad.det_grad(A, backend="numba"),
        matgrad.frobenius_grad(A, backend="numba"),
        matgrad.charpoly_deriv(A, 0.5, backend="numba"),
    )


def test_threading_layer_is_tbb() -> None:
    import numba

    _work(0)  # runs parallel kernels
    assert numba.threading_layer() == "tbb"


def test_concurrent_calls_from_threads() -> None:
    expected = [_work(s) for s in range(4)]
    results: dict[int, tuple[np.ndarray, ...]] = {}
    barrier = threading.Barrier(4)

    def run(seed: int) -> None:
        barrier.wait()
        for _ in range(5):
            results[seed] = _work(seed)

    threads = [threading.Thread(target=run, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in range(4):
        for got, exp in zip(results[s], expected[s], strict=True):
            np.testing.assert_array_equal(got, exp)


def _child(q: multiprocessing.Queue[object]) -> None:
    q.put(np.asarray(_work(1)[0]).sum())


@pytest.mark.skipif(sys.platform == "win32", reason="fork is POSIX-only")
def test_fork_after_parallel_kernel() -> None:
    _work(1)  # the parent has run parallel kernels
    ctx = multiprocessing.get_context("fork")
    q: multiprocessing.Queue[object] = ctx.Queue()
    p = ctx.Process(target=_child, args=(q,))
    p.start()
    value = q.get(timeout=120)
    p.join(timeout=120)
    assert p.exitcode == 0
    assert value == np.asarray(_work(1)[0]).sum()


def test_first_call_in_fresh_process_works() -> None:
    """A cold process (cache may be empty) computes correctly."""
    code = (
        "import numpy as np, matgrad;"
        "print(matgrad.det_grad(np.array([[1.,2.],[2.,4.]]), backend='numba').tolist())"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=600, env=dict(os.environ))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[[4.0, -2.0], [-2.0, 1.0]]"
