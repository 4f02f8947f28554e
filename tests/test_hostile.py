"""Hostile finite inputs beyond the contract suite: properties of the Dask
and Numba backends.  The hostile-input checks every backend must pass live
in ``matgrad.testing`` (run on every registered backend by
tests/test_contract.py and on the CUDA simulator by tests/cudasim)."""

from __future__ import annotations

import numpy as np
import pytest


def test_dask_slot_independent_of_chunking() -> None:
    """With Dask, a slot's result is the same bits whatever the chunking of
    the batch axis (each block runs the inner backend on its own slots)."""
    da = pytest.importorskip("dask.array")
    import matgrad

    rng = np.random.default_rng(2)
    A = np.stack([rng.standard_normal((5, 5)), 1e10 * np.eye(5), np.full((5, 5), 1e300),
                  np.full((5, 5), np.nan), rng.standard_normal((5, 5))])
    A[0, -1] = A[0, 0]
    for op in (matgrad.det_grad, matgrad.logdet_grad):
        with np.errstate(all="ignore"):
            whole = op(A, backend="numpy")
            for chunks in (1, 2, 5):
                got = op(da.from_array(A, chunks=(chunks, 5, 5)), backend="numpy").compute()
                assert np.array_equal(got, whole, equal_nan=True), (op.__name__, chunks)


def test_numba_results_independent_of_thread_count() -> None:
    """The Numba backend gives the same bits with 1 thread as with several:
    work is split by slot (or by point), never reduced across threads in an
    order that depends on their number.  The thread count is
    ``matgrad.config.numba_threads`` (Numba's own setting is not read), and
    each launch's count is checked, so neither run is the other in disguise."""
    pytest.importorskip("numba")
    from matgrad_numba import _runtime

    import matgrad

    rng = np.random.default_rng(9)
    A = rng.standard_normal((40, 6, 6))
    A[3] = 1e300
    A[5, -1] = A[5, 0]
    X = rng.standard_normal((3, 700, 300))
    x = np.linspace(-3, 3, 50)
    ops = [
        lambda: matgrad.det_grad(A, backend="numba"),
        lambda: matgrad.logdet_grad(A, backend="numba"),
        lambda: matgrad.charpoly_deriv(A[:, None], x, return_value=True, backend="numba"),
        lambda: matgrad.frobenius_grad(X, backend="numba"),
    ]
    with np.errstate(all="ignore"):
        # every launch split, whatever its size
        with matgrad.config.override(numba_threads=4, numba_parallel_min_work=1), \
                _runtime.recording() as used_many:
            many = [op() for op in ops]
        with matgrad.config.override(numba_threads=1, numba_parallel_min_work=1), \
                _runtime.recording() as used_one:
            one = [op() for op in ops]
    assert used_one and set(used_one) == {1}
    assert len(used_many) == len(used_one) and min(used_many) > 1
    for a, b in zip(many, one, strict=True):
        for u, v in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,),
                        strict=True):
            assert np.array_equal(u, v, equal_nan=True)
