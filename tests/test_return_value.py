"""``return_value`` takes a boolean only (``bool`` or ``numpy.bool_``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import matgrad

A = np.array([[2.0, 1.0], [0.5, 3.0]])

#: Every public function with a ``return_value`` keyword, on one input.
CALLS: dict[str, Callable[..., Any]] = {
    "det_grad": lambda a, **kw: matgrad.det_grad(a, **kw),
    "logdet_grad": lambda a, **kw: matgrad.logdet_grad(a, **kw),
    "frobenius_grad": lambda a, **kw: matgrad.frobenius_grad(a, **kw),
    "charpoly_deriv": lambda a, **kw: matgrad.charpoly_deriv(a, 0.5, **kw),
    "det_hvp": lambda a, **kw: matgrad.det_hvp(a, a, **kw),
}

#: Values that a truth test would accept but that are not booleans.
NOT_BOOLS = ["yes", "", 1, 0, 1.0, None, np.int64(1), np.array(True), [True]]


def test_every_public_function_with_return_value_is_covered() -> None:
    import inspect

    have = {name for name in matgrad.__all__
            if callable(f := getattr(matgrad, name, None)) and inspect.isfunction(f)
            and "return_value" in inspect.signature(f).parameters}
    assert have == set(CALLS)


@pytest.mark.parametrize("bad", NOT_BOOLS, ids=repr)
@pytest.mark.parametrize("name", sorted(CALLS))
def test_non_booleans_are_a_type_error(name: str, bad: object) -> None:
    with pytest.raises(TypeError, match=rf"{name}: return_value must be a bool"):
        CALLS[name](A, return_value=bad)
    # also where no backend runs (an empty batch) and on Dask input
    with pytest.raises(TypeError, match="return_value must be a bool"):
        CALLS[name](np.zeros((0, 2, 2)), return_value=bad)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_non_booleans_are_refused_for_dask_input(name: str) -> None:
    da = pytest.importorskip("dask.array")
    with pytest.raises(TypeError, match="return_value must be a bool"):
        CALLS[name](da.from_array(A), return_value="yes")


@pytest.mark.parametrize("name", sorted(CALLS))
def test_numpy_booleans_act_as_booleans(name: str) -> None:
    f = CALLS[name]
    plain = f(A, backend="numpy")
    with_value = f(A, return_value=True, backend="numpy")
    assert isinstance(with_value, tuple)
    assert len(with_value) == (3 if name == "det_hvp" else 2)  # (det, C, H)
    for flag in (np.False_, False):
        np.testing.assert_array_equal(f(A, return_value=flag, backend="numpy"), plain)
    got = f(A, return_value=np.True_, backend="numpy")
    assert isinstance(got, tuple)
    np.testing.assert_array_equal(got[1], with_value[1])
