"""The numpydoc examples of the public modules run as doctests."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["matgrad._api", "matgrad._select", "matgrad._registry", "matgrad._backend"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
    if name == "matgrad._api":
        assert result.attempted >= 10  # the examples really ran


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_api_examples_hold_on_each_cpu_backend(backend: str) -> None:
    """The examples print the same on the NumPy and Numba backends (under
    ``auto`` a cold Numba kernel defers to NumPy, so either may answer a
    reader; a −0.0 in one of them would break the example)."""
    import matgrad

    if not any(b.name == backend and b.available for b in matgrad.list_backends()):
        pytest.skip(f"backend {backend} unavailable")
    module = importlib.import_module("matgrad._api")
    with matgrad.use_backend(backend):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} examples failed on {backend}"
