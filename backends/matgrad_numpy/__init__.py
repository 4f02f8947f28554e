"""matgrad's NumPy + SciPy reference backend (always available).

Registered through the ``matgrad.backends`` entry point like any plugin.
Its operations are the host algorithms of :mod:`matgrad.kernels`, bound as
they are (the other backends reuse them for their host paths).
"""

from __future__ import annotations

import numpy as np
import scipy

import matgrad
from matgrad.kernels.charpoly import charpoly_deriv, charpoly_derivs
from matgrad.kernels.cofactor import det_grad, det_value_grad, logdet_grad, logdet_value_grad
from matgrad.kernels.frobenius import frobenius_grad, frobenius_value_grad
from matgrad.kernels.hessian import det_hessian, det_hvp, det_hvp_value, frobenius_hvp, logdet_hvp

__all__ = ["NumpyBackend", "matgrad_backend"]


class NumpyBackend(matgrad.Backend):
    """Vectorised NumPy/SciPy implementation of every operation."""

    name = "numpy"
    priority = 10
    array_modules = ("numpy",)

    @property
    def version(self) -> str:
        return f"numpy {np.__version__}, scipy {scipy.__version__}"

    def frobenius_grad(self, X: np.ndarray) -> np.ndarray:
        return frobenius_grad(X)

    def bilinear_grad(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            # a product that truly overflows is inf, silently, as on every backend
            out: np.ndarray = np.multiply(x[:, :, None], y[:, None, :])
        return out

    def det_grad(self, A: np.ndarray) -> np.ndarray:
        return det_grad(A)

    def logdet_grad(self, A: np.ndarray) -> np.ndarray:
        return logdet_grad(A)

    def charpoly_deriv(
        self, A: np.ndarray, x: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        return charpoly_deriv(A, x)

    def charpoly_derivs(
        self, A: np.ndarray, x: np.ndarray, order: int
    ) -> tuple[np.ndarray, ...]:
        # one reduction per matrix for every order; p, p′ the bits of charpoly_deriv
        return charpoly_derivs(A, x, order)

    # value and gradient from one pass (one factorisation, one sum of squares)
    def frobenius_value_grad(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return frobenius_value_grad(X)

    def det_value_grad(self, A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return det_value_grad(A)

    def logdet_value_grad(self, A: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return logdet_value_grad(A)

    # second derivatives: the host kernels themselves
    def det_hvp(self, A: np.ndarray, V: np.ndarray) -> np.ndarray:
        return det_hvp(A, V)

    def det_hvp_value(
        self, A: np.ndarray, V: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return det_hvp_value(A, V)

    def logdet_hvp(self, A: np.ndarray, V: np.ndarray) -> np.ndarray:
        return logdet_hvp(A, V)

    def frobenius_hvp(self, X: np.ndarray, V: np.ndarray) -> np.ndarray:
        return frobenius_hvp(X, V)

    def det_hessian(self, A: np.ndarray) -> np.ndarray:
        return det_hessian(A)


@matgrad.hookimpl
def matgrad_backend() -> matgrad.Backend:
    return NumpyBackend()
