"""The cost of one call on one small matrix: what a loop of Newton steps or
per-step penalties pays on every call.

For each operation, on one 3×3 float64 NumPy matrix under the default
selection, after warm-up calls: the time of a call, the NumPy textbook
formula's, their ratio (best of 5 × 2000 calls each, one process, as the
per-call table of docs/guide/performance.md), and the number of Python
function calls one repeat call makes (counted with ``sys.setprofile``:
deterministic, so a regression shows exactly).
"""

from __future__ import annotations

import sys
import timeit
from collections.abc import Callable
from typing import Any

import numpy as np

import matgrad
from matgrad._operations import OPERATIONS

OPS = ["det_grad", "logdet_grad", "frobenius_grad"]


def _best_per_call(fn: Callable[[], Any], number: int = 2000, repeat: int = 5) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


class CallOverhead:
    params = [OPS]
    param_names = ["op"]
    timeout = 120.0

    def setup(self, op: str) -> None:
        self.A = np.random.default_rng(0).standard_normal((3, 3))
        self.fn = getattr(matgrad, op)
        self.textbook = OPERATIONS[op].textbook
        for _ in range(3):  # first use: compile or load kernels, remember the route
            self.fn(self.A)

    def time_call(self, op: str) -> None:
        self.fn(self.A)

    def time_textbook(self, op: str) -> None:
        self.textbook(self.A)

    def track_ratio_to_textbook(self, op: str) -> float:
        A, fn, textbook = self.A, self.fn, self.textbook
        return _best_per_call(lambda: fn(A)) / _best_per_call(lambda: textbook(A))

    track_ratio_to_textbook.unit = "ratio"  # type: ignore[attr-defined]

    def track_python_calls(self, op: str) -> int:
        count = 0

        def profile(frame: Any, event: str, arg: Any) -> None:
            nonlocal count
            if event == "call":
                count += 1

        A, fn = self.A, self.fn
        sys.setprofile(profile)
        try:
            fn(A)
        finally:
            sys.setprofile(None)
        return count

    track_python_calls.unit = "calls"  # type: ignore[attr-defined]
