"""The contract suite must catch the textbook formulas.

``mgtest_textbook`` is a working backend built from ``det(A)·inv(A)ᵀ``,
``X / sqrt(Σx²)`` and ``det(M)·tr(M⁻¹)``.  Every check below passes for the
real backends (test_contract) and must fail for it.  (That a plugin
installed through its entry point fails ``matgrad.testing`` as a whole is
in test_testing.)
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from matgrad import testing as contract

PLUGINS = Path(__file__).parent / "plugins"
FAILURE = (AssertionError, np.linalg.LinAlgError, RuntimeWarning, FloatingPointError)


@pytest.fixture(scope="module")
def textbook() -> Iterator[Any]:
    sys.path.insert(0, str(PLUGINS))
    try:
        import mgtest_textbook

        yield mgtest_textbook.TextbookBackend()
    finally:
        sys.path.remove(str(PLUGINS))


# frobenius_isolation is left out: X / sqrt(Σx²) already gives NaN matrices
# for NaN/inf entries, so that check cannot tell the textbook formula apart.
CHECKS: list[Callable[[Any], None]] = [
    c for c in contract.CONTRACT_CHECKS if c is not contract.check_frobenius_isolation
]


@pytest.mark.parametrize("check", CHECKS, ids=lambda f: f.__name__)
def test_textbook_formula_fails_contract(textbook: Any, check: Callable[[Any], None]) -> None:
    with pytest.raises(FAILURE):
        check(textbook)


@pytest.mark.parametrize(
    "label",
    [
        "frobenius_grad: 1e308 2x2",
        "frobenius_grad: 1e-300 scale",
        "det_grad: diag(1,2,3,4)-2I",
        "det_grad: rank 3 of 5",
        "charpoly_deriv: diag(1,2,3,4) at 2",
        "det_hvp: [[1,2],[2,4]]",
        "det_hvp: rank 3 of 5",
        "det_hvp: rank 3 of 4",
        "det_hvp: 1e-20 I + triu(ones) 5x5",
        "det_hessian: rank 3 of 4",
        "frobenius_hvp: X 1e-200",
        "det_hessian: rank 2 of 4",
    ],
)
def test_textbook_formula_fails_reference_cases(textbook: Any, label: str) -> None:
    with pytest.raises(FAILURE):
        contract.check_case(label, textbook)
