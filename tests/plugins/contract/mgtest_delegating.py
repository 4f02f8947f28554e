"""A correct third-party backend: each canonical method hands its canonical
arrays to the built-in NumPy backend through matgrad's public functions.

Installed through its entry point (the dist-info beside it), it is what a
plugin author's package looks like to matgrad; ``matgrad.testing`` must
pass on it (tests/test_testing.py).
"""

from __future__ import annotations

import numpy as np

import matgrad


class DelegatingBackend(matgrad.Backend):
    name = "delegating"
    priority = -1  # never chosen by "auto"
    array_modules = ("numpy",)

    @property
    def version(self) -> str:
        return "0.0-test"

    def frobenius_grad(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(matgrad.frobenius_grad(X, backend="numpy"))

    def bilinear_grad(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.asarray(matgrad.bilinear_grad(x, y, backend="numpy"))

    def det_grad(self, A: np.ndarray) -> np.ndarray:
        return np.asarray(matgrad.det_grad(A, backend="numpy"))

    def logdet_grad(self, A: np.ndarray) -> np.ndarray:
        return np.asarray(matgrad.logdet_grad(A, backend="numpy"))

    def charpoly_deriv(self, A: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # canonical x is (B, K): one matrix per row of points
        p, dp = matgrad.charpoly_deriv(A[:, None], x, return_value=True, backend="numpy")
        return np.asarray(p), np.asarray(dp)


@matgrad.hookimpl
def matgrad_backend() -> matgrad.Backend:
    return DelegatingBackend()
