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
