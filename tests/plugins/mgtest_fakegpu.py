"""A backend whose native array type is ``fakearray`` (resolution tests only)."""

import numpy as np
from mgtest_textbook import TextbookBackend

import matgrad


class FakeGpuBackend(TextbookBackend):
    name = "fakegpu"
    priority = 100  # outranks numpy under auto, but takes no NumPy natively
    array_modules = ("fakearray",)
    array_precedence = 2  # device arrays: win over NumPy, torch and JAX among mixed inputs

    @property
    def xp(self):  # type: ignore[override]
        return np

    @property
    def device(self) -> str:
        return "fake:0"


@matgrad.hookimpl
def matgrad_backend() -> matgrad.Backend:
    return FakeGpuBackend()
