"""Time and peak memory of every operation, per backend, size and dtype.

One benchmark class per operation of matgrad's operation table
(``matgrad._operations.OPERATIONS``), over the quick variants of its
``matgrad bench`` workloads, so that ``asv run --quick`` finishes in minutes
and a new operation is benchmarked as soon as it has a row in the table.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import matgrad
from matgrad._operations import OPERATIONS, Operation

from .common import BACKENDS, finish, require, rng, to_backend

DTYPES = ["float64", "float32"]


class _Op:
    param_names = ["backend", "size", "dtype"]
    timeout = 120.0
    operation: Operation
    args: tuple[Any, ...] = ()

    def build(self, size: str, dtype: str) -> tuple[np.ndarray, ...]:
        w = next(w for w in self.operation.workloads if w.quick_label == size)
        return tuple(np.asarray(a).astype(dtype) for a in w.quick_build(rng()))

    def setup(self, backend: str, size: str, dtype: str) -> None:
        require(backend)
        self.args = to_backend(backend, *self.build(size, dtype))
        self.fn = getattr(matgrad, self.operation.name)
        finish(backend, self.fn(*self.args, backend=backend))  # warm-up / JIT

    def time_op(self, backend: str, size: str, dtype: str) -> None:
        finish(backend, self.fn(*self.args, backend=backend))

    def peakmem_op(self, backend: str, size: str, dtype: str) -> None:
        finish(backend, self.fn(*self.args, backend=backend))


def _benchmark_class(op: Operation) -> type[_Op]:
    name = "".join(part.title() for part in op.name.split("_"))  # det_grad -> DetGrad
    sizes = [w.quick_label for w in op.workloads]
    return type(name, (_Op,), {"operation": op, "params": (BACKENDS, sizes, DTYPES),
                               "__module__": __name__})


for _op in OPERATIONS.values():
    if _op.workloads:
        globals()[_benchmark_class(_op).__name__] = _benchmark_class(_op)
