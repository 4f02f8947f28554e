"""The CuPy backend's kernels and orchestration on Numba's CUDA simulator.

Run by ``tests/test_cuda_sim.py`` in a subprocess with
``NUMBA_ENABLE_CUDASIM=1`` (the variable must be set before Numba loads).
``SimulatedCuda`` is the CuPy backend's code with ``xp = numpy``: the very
kernels (compiled from ``matgrad_numba/_scalar.py`` for the CUDA target) and
the very orchestration, held to the same references and contract checks as
every other backend.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

import matgrad
from matgrad._check import CASES

from .. import contract, hostile

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
    from matgrad_cupy._device import scalar_cuda
    from numba import cuda

    assert cuda.simulator_enabled if hasattr(cuda, "simulator_enabled") else True
    assert scalar_cuda().TARGET == "cuda"


@pytest.mark.parametrize("label", [f"{c.op}: {c.label}" for c in CASES])
def test_reference_case_on_simulator(label: str) -> None:
    contract.check_case(label, SIM)


@pytest.mark.parametrize(
    "check", contract.ALL_CHECKS, ids=lambda f: f.__name__.removeprefix("check_")
)
def test_contract_on_simulator(check: Any) -> None:
    check(SIM)


def test_large_n_goes_to_the_host_path() -> None:
    from matgrad_cupy import _ops

    A = np.random.default_rng(0).standard_normal((2, _ops.GJ_MAX_N + 1, _ops.GJ_MAX_N + 1))
    np.testing.assert_allclose(matgrad.det_grad(A, backend=SIM),
                               matgrad.det_grad(A, backend="numpy"), rtol=1e-12)


HOSTILE = hostile.KERNEL_CHECKS


@pytest.mark.parametrize("check", HOSTILE, ids=lambda f: f.__name__.removeprefix("check_"))
def test_hostile_on_simulator(check: Any) -> None:
    check(SIM)


def test_slot_independent_of_batch_on_simulator() -> None:
    # small sizes: the simulator runs each kernel thread as Python code
    hostile.check_slot_independent_of_batch(SIM, sizes=(2, 3, 4, 5, 8))
