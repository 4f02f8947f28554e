"""Every algorithmic path against the references, not only the default one.

Size thresholds pick between paths (vectorised NumPy LU vs LAPACK per
matrix, in-kernel Hessenberg vs LAPACK ``gehrd``, Hessenberg + Hyman vs one
LU per point).  Lowering a threshold sends the small reference cases down the
large-size path, so each path meets the same exact/60-digit references.
"""

from __future__ import annotations

import pytest

import matgrad
from matgrad._check import CASES
from matgrad.testing import check_case

PATHS = [
    # (matgrad.config setting, value, operations it affects, backend)
    ("det_lapack_min_n", 2, ("det_grad", "logdet_grad"), "numpy"),
    ("charpoly_lapack_min_n", 2, ("charpoly_deriv",), "numpy"),
    ("numba_det_lapack_min_n", 2, ("det_grad", "logdet_grad"), "numba"),
    ("charpoly_lu_route_min_n", 2, ("charpoly_deriv",), "numba"),
    ("charpoly_lu_route_max_points", 10**9, ("charpoly_deriv",), "numba"),
    ("frobenius_chunk", 8, ("frobenius_grad",), "numba"),
    ("scaling_block", 8, ("frobenius_grad", "det_grad"), "numpy"),
    ("charpoly_point_block", 4, ("charpoly_deriv",), "numpy"),
]


def _params() -> list[object]:
    out = []
    for setting, value, ops, backend in PATHS:
        for case in CASES:
            if case.op in ops:
                out.append(pytest.param(setting, value, backend, f"{case.op}: {case.label}",
                                        id=f"{setting}={value}-{case.op}: {case.label}"))
    return out


AVAILABLE = {b.name: b for b in matgrad.list_backends()}


@pytest.mark.parametrize("setting,value,backend,label", _params())
def test_path_meets_reference(setting: str, value: int, backend: str, label: str) -> None:
    info = AVAILABLE.get(backend)
    if info is None or not info.available:
        pytest.skip(f"backend {backend}: {info.reason if info else 'not registered'}")
    with matgrad.config.override(**{setting: value}):
        check_case(label, backend)
