"""The CuPy backend's second-derivative operations on Numba's CUDA simulator
(``matgrad_cupy._ops.det_hvp`` etc. with ``xp = numpy``), against the exact
rational references of ``tests/test_numba_hessian.py`` and the host kernels
of :mod:`matgrad.kernels.hessian`.  Run with ``NUMBA_ENABLE_CUDASIM=1`` (by
``tests/test_cuda_sim.py``); small batches, since the simulator runs every
thread as Python code.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

from matgrad.kernels import hessian as host
from tests.test_numba_hessian import (
    DTYPES,
    _c,
    _cancelling_overflow,
    _exact_equal,
    _random,
    _rank,
    assert_hvp_accurate,
    check_random_det_hvp,
    exact_hessian,
    exact_hvp,
)

pytestmark = pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") != "1",
                                reason="needs NUMBA_ENABLE_CUDASIM=1")


def _dev() -> Any:
    from matgrad_cupy._ops import Device

    return Device(np, None)


def _ops() -> Any:
    from matgrad_cupy import _ops

    return _ops


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 2, 3])
def test_det_hvp_on_simulator(n: int, dtype: Any) -> None:
    check_random_det_hvp(lambda A, V: _ops().det_hvp(A, V, _dev()), n, dtype, 8)


@pytest.mark.parametrize("dtype", [np.float64, np.complex64])
def test_det_hvp_exact_at_every_rank_on_simulator(dtype: Any) -> None:
    rng = np.random.default_rng(3)
    A = np.stack([_rank(rng, r, dtype) for r in (3, 2, 1, 0)])
    V = np.stack([_rank(rng, 3, dtype) for _ in range(4)])
    H = _ops().det_hvp(A, V, _dev())
    for b in range(4):
        assert _exact_equal(H[b], exact_hvp(A[b], V[b])[0]), b


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_overflow_and_nan_slots_on_simulator(dtype: Any) -> None:
    """Cancelling overflows go to the host (its bits), a NaN and an inf slot
    keep the plain polynomial's, every slot as alone."""
    A, V = _cancelling_overflow(dtype)
    rng = np.random.default_rng(4)
    A = np.concatenate([A, _random(rng, (3, 3, 3), dtype)])
    V = np.concatenate([V, _random(rng, (3, 3, 3), dtype)])
    A[3, 0, 1] = np.nan
    V[4, 2, 2] = np.inf
    H = _ops().det_hvp(A, V, _dev())
    for b in range(A.shape[0]):
        alone = _ops().det_hvp(A[b:b + 1].copy(), V[b:b + 1].copy(), _dev())
        np.testing.assert_array_equal(H[b:b + 1], alone)
    for b in range(2):
        np.testing.assert_array_equal(H[b:b + 1], host.det_hvp(A[b:b + 1], V[b:b + 1]))
        assert_hvp_accurate(H[b], A[b], V[b], normwise=True)
    np.testing.assert_array_equal(np.isnan(H), np.isnan(host.det_hvp(A, V)))
    assert np.isfinite(H[[0, 1, 2, 5]]).all()
    assert not np.isfinite(H[3]).all() and not np.isfinite(H[4]).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [2, 3])
def test_det_hessian_on_simulator(n: int, dtype: Any) -> None:
    rng = np.random.default_rng(5)
    A = _random(rng, (3, n, n), dtype)
    E = _ops().det_hessian(A, _dev())
    assert E.shape == (3, n, n, n, n) and E.dtype == A.dtype
    for b in range(3):
        want = exact_hessian(A[b])
        assert all(_c(E[b][i]) == want[i[0]][i[1]][i[2]][i[3]] for i in np.ndindex(E.shape[1:]))
    np.testing.assert_array_equal(E, host.det_hessian(A))


@pytest.mark.parametrize("n", [2, 3, 5])
def test_det_hvp_value_on_simulator(n: int) -> None:
    """``(det, C)`` as the backend's ``det_value_grad`` (host value, device
    cofactors), ``H`` as its ``det_hvp``."""
    from tests.cudasim.test_sim_contract import SIM

    rng = np.random.default_rng(6)
    A, V = rng.standard_normal((4, n, n)), rng.standard_normal((4, n, n))
    A[1] *= 2.0**400
    d, C, H = _ops().det_hvp_value(A, V, _dev())
    d0, C0 = SIM.det_value_grad(A)
    np.testing.assert_array_equal(d, d0)
    np.testing.assert_array_equal(C, C0)
    np.testing.assert_array_equal(H, _ops().det_hvp(A, V, _dev()))


def test_host_paths_on_simulator() -> None:
    rng = np.random.default_rng(7)
    A, V = rng.standard_normal((3, 5, 5)), rng.standard_normal((3, 5, 5))
    X, W = rng.standard_normal((3, 2, 4)), rng.standard_normal((3, 2, 4))
    dev = _dev()
    np.testing.assert_array_equal(_ops().det_hvp(A, V, dev), host.det_hvp(A, V))
    np.testing.assert_array_equal(_ops().det_hessian(A, dev), host.det_hessian(A))
    np.testing.assert_array_equal(_ops().logdet_hvp(A, V, dev), host.logdet_hvp(A, V))
    np.testing.assert_array_equal(_ops().frobenius_hvp(X, W, dev), host.frobenius_hvp(X, W))
