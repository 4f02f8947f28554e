"""Time and peak memory of every operation, per backend, size and dtype.

Sizes are kept moderate so that ``asv run --quick`` finishes in minutes;
``matgrad bench`` has the heavy workloads and the autodiff comparisons.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import matgrad

from .common import BACKENDS, finish, require, rng, to_backend

DTYPES = ["float64", "float32"]


class _Op:
    param_names = ["backend", "size", "dtype"]
    timeout = 120.0
    op: str = ""
    args: tuple[Any, ...] = ()

    def build(self, size: str, dtype: str) -> tuple[np.ndarray, ...]:
        raise NotImplementedError

    def setup(self, backend: str, size: str, dtype: str) -> None:
        require(backend)
        self.args = to_backend(backend, *self.build(size, dtype))
        self.fn = getattr(matgrad, self.op)
        finish(backend, self.fn(*self.args, backend=backend))  # warm-up / JIT

    def time_op(self, backend: str, size: str, dtype: str) -> None:
        finish(backend, self.fn(*self.args, backend=backend))

    def peakmem_op(self, backend: str, size: str, dtype: str) -> None:
        finish(backend, self.fn(*self.args, backend=backend))


class FrobeniusGrad(_Op):
    op = "frobenius_grad"
    params = (BACKENDS, ["1024x1024", "20000x8x8"], DTYPES)

    def build(self, size: str, dtype: str) -> tuple[np.ndarray, ...]:
        shape = (1024, 1024) if size == "1024x1024" else (20000, 8, 8)
        return (rng().standard_normal(shape).astype(dtype),)


class BilinearGrad(_Op):
    op = "bilinear_grad"
    params = (BACKENDS, ["1024x1024", "20000x16x16"], DTYPES)

    def build(self, size: str, dtype: str) -> tuple[np.ndarray, ...]:
        r = rng()
        if size == "1024x1024":
            return r.standard_normal(1024).astype(dtype), r.standard_normal(1024).astype(dtype)
        return (r.standard_normal((20000, 16)).astype(dtype),
                r.standard_normal((20000, 16)).astype(dtype))


class DetGrad(_Op):
    op = "det_grad"
    params = (BACKENDS, ["100000x3x3", "20000x4x4", "2000x16x16", "300x300"], DTYPES)

    def build(self, size: str, dtype: str) -> tuple[np.ndarray, ...]:
        parts = [int(p) for p in size.split("x")]
        shape = tuple(parts) if len(parts) == 3 else (parts[0], parts[0])
        A = rng().standard_normal(shape)
        if len(parts) == 2:
            A = np.eye(parts[0]) + A / (2 * np.sqrt(parts[0]))
        return (A.astype(dtype),)


class LogdetGrad(DetGrad):
    op = "logdet_grad"
    params = (BACKENDS, ["20000x4x4", "300x300"], DTYPES)


class CharpolyDeriv(_Op):
    op = "charpoly_deriv"
    params = (BACKENDS, ["50x50,1000pts", "200x200,100pts", "300x300,1pt"], DTYPES)

    def build(self, size: str, dtype: str) -> tuple[np.ndarray, ...]:
        mat, pts = size.split(",")
        n, k = int(mat.split("x")[0]), int(pts.removesuffix("pts").removesuffix("pt"))
        r = rng()
        A = np.eye(n) + r.standard_normal((n, n)) / (2 * np.sqrt(n))
        return A.astype(dtype), r.standard_normal(k).astype(dtype)
