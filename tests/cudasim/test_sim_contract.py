"""The CuPy backend's kernels and orchestration on Numba's CUDA simulator.

Run by ``tests/test_cuda_sim.py`` in a subprocess with
``NUMBA_ENABLE_CUDASIM=1`` (the variable must be set before Numba loads).
``SimulatedCuda`` is the CuPy backend's code with ``xp = numpy``: the very
kernels (``matgrad.kernels.scalar`` compiled for the CUDA target) and
the very orchestration, held to the same references and contract checks as
every other backend.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

import matgrad
from matgrad import testing

pytestmark = pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") != "1",
                                reason="needs NUMBA_ENABLE_CUDASIM=1")


class SimulatedCuda(matgrad.ModuleBackend):
    """The CuPy backend's operations with NumPy arrays on the simulator."""

    name = "cuda-sim"
    array_modules = ("numpy",)
    operation_modules = ("matgrad_cupy._ops",)

    def launch_args(self) -> tuple[Any, ...]:
        from matgrad_cupy._ops import Device

        return (Device(np, None, chunk=16),)  # small chunks: many blocks per matrix


SIM = SimulatedCuda()


def test_kernels_really_run_on_the_simulator() -> None:
    from matgrad_cupy import _kernels
    from numba import cuda

    from matgrad.kernels.scalar import ALGORITHMS, compile_scalar

    assert cuda.simulator_enabled if hasattr(cuda, "simulator_enabled") else True
    assert _kernels.S is compile_scalar("cuda") and _kernels.S.target == "cuda"
    cpu = compile_scalar("cpu")
    for name in ALGORITHMS:  # each a CUDA device function calling CUDA siblings
        fn = getattr(_kernels.S, name)
        assert fn is not getattr(cpu, name)
        assert fn.py_func.__globals__["gauss_jordan_det_one"] is _kernels.gauss_jordan_det_one


@pytest.mark.parametrize("label", testing.CASE_LABELS)
def test_reference_case_on_simulator(label: str) -> None:
    testing.check_case(label, SIM)


@pytest.mark.parametrize(
    "check", testing.CONTRACT_CHECKS, ids=lambda f: f.__name__.removeprefix("check_")
)
def test_contract_on_simulator(check: Any) -> None:
    check(SIM)


def test_large_n_goes_to_the_host_path() -> None:
    n = matgrad.config.cuda_gauss_jordan_max_n + 1
    A = np.random.default_rng(0).standard_normal((2, n, n))
    np.testing.assert_allclose(matgrad.det_grad(A, backend=SIM),
                               matgrad.det_grad(A, backend="numpy"), rtol=1e-12)


HOSTILE = testing.KERNEL_CHECKS


@pytest.mark.parametrize("check", HOSTILE, ids=lambda f: f.__name__.removeprefix("check_"))
def test_hostile_on_simulator(check: Any) -> None:
    check(SIM)


def test_slot_independent_of_batch_on_simulator() -> None:
    # small sizes: the simulator runs each kernel thread as Python code
    testing.check_slot_independent_of_batch(SIM, sizes=(2, 3, 4, 5, 8))
