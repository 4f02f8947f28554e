"""Every algorithmic path against the references, not only the default one.

Size thresholds pick between paths (vectorised NumPy LU vs LAPACK per
matrix, in-kernel Hessenberg vs LAPACK ``gehrd``, Hessenberg + Hyman vs one
LU per point).  Lowering a threshold sends the small reference cases down the
large-size path, so each path meets the same exact/60-digit references.
"""

from __future__ import annotations

import importlib

import pytest

import matgrad
from matgrad._check import CASES

from . import contract

PATHS = [
    # (module, attribute, value, operations it affects, backend)
    ("matgrad_numpy._cofactor", "LAPACK_MIN_N", 2, ("det_grad", "logdet_grad"), "numpy"),
    ("matgrad_numpy._charpoly", "LAPACK_MIN_N", 2, ("charpoly_deriv",), "numpy"),
    ("matgrad_numba._cofactor", "LAPACK_MIN_N", 2, ("det_grad", "logdet_grad"), "numba"),
    ("matgrad_numba._ops", "LU_ROUTE_MIN_N", 2, ("charpoly_deriv",), "numba"),
    ("matgrad_numba._ops", "LU_ROUTE_MAX_POINTS", 10**9, ("charpoly_deriv",), "numba"),
    ("matgrad_numba._frobenius", "CHUNK", 8, ("frobenius_grad",), "numba"),
]


def _params() -> list[object]:
    out = []
    for module, attr, value, ops, backend in PATHS:
        for case in CASES:
            if case.op in ops:
                out.append(pytest.param(module, attr, value, backend, f"{case.op}: {case.label}",
                                        id=f"{module}.{attr}={value}-{case.op}: {case.label}"))
    return out


AVAILABLE = {b.name: b for b in matgrad.list_backends()}


@pytest.mark.parametrize("module,attr,value,backend,label", _params())
def test_path_meets_reference(
    monkeypatch: pytest.MonkeyPatch, module: str, attr: str, value: int, backend: str,
    label: str,
) -> None:
    info = AVAILABLE.get(backend)
    if info is None or not info.available:
        pytest.skip(f"backend {backend}: {info.reason if info else 'not registered'}")
    mod = importlib.import_module(module)
    monkeypatch.setattr(mod, attr, value)
    contract.check_case(label, backend)
