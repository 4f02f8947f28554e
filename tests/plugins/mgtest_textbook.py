"""A third-party backend built from the textbook formulas.

It is a complete, working plugin (entry point, hookimpl, Backend subclass),
used to test discovery and selection; and because it uses ``det·inv``,
``X / sqrt(Σx²)`` and ``det·tr(inv)``, the contract suite must reject it.
"""

from __future__ import annotations

import numpy as np

import matgrad

CALLS: list[str] = []


class TextbookBackend(matgrad.Backend):
    name = "textbook"
    priority = 1
    array_modules = ("numpy",)

    @property
    def version(self) -> str:
        return "0.0-test"

    def frobenius_grad(self, X: np.ndarray) -> np.ndarray:
        CALLS.append("frobenius_grad")
        return X / np.sqrt((np.abs(X) ** 2).sum(axis=(1, 2), keepdims=True))

    def bilinear_grad(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        CALLS.append("bilinear_grad")
        return x[:, :, None] * y[:, None, :]

    def det_grad(self, A: np.ndarray) -> np.ndarray:
        CALLS.append("det_grad")
        return np.linalg.det(A)[:, None, None] * np.linalg.inv(A).transpose(0, 2, 1)

    def logdet_grad(self, A: np.ndarray) -> np.ndarray:
        CALLS.append("logdet_grad")
        return np.linalg.inv(A).conj().transpose(0, 2, 1)

    def charpoly_deriv(self, A: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        CALLS.append("charpoly_deriv")
        n = A.shape[-1]
        M = x[..., None, None] * np.eye(n) - A[:, None]
        p = np.linalg.det(M)
        return p, p * np.trace(np.linalg.inv(M), axis1=-2, axis2=-1)

    # second derivatives: the invertible-matrix formulas of the operation table
    def det_hvp(self, A: np.ndarray, V: np.ndarray) -> np.ndarray:
        CALLS.append("det_hvp")
        return _textbook("det_hvp", A, V)

    def logdet_hvp(self, A: np.ndarray, V: np.ndarray) -> np.ndarray:
        CALLS.append("logdet_hvp")
        return _textbook("logdet_hvp", A, V)

    def frobenius_hvp(self, X: np.ndarray, V: np.ndarray) -> np.ndarray:
        CALLS.append("frobenius_hvp")
        return _textbook("frobenius_hvp", X, V)

    def det_hessian(self, A: np.ndarray) -> np.ndarray:
        CALLS.append("det_hessian")
        return _textbook("det_hessian", A)


def _textbook(op: str, *args: np.ndarray) -> np.ndarray:
    from matgrad._operations import OPERATIONS

    out: np.ndarray = OPERATIONS[op].textbook(*args).astype(args[0].dtype, copy=False)
    return out


@matgrad.hookimpl
def matgrad_backend() -> matgrad.Backend:
    return TextbookBackend()
