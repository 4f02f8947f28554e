"""Accuracy tracked like speed: a numerical regression shows in asv history.

``track_worst_error_ratio`` is the worst error of an operation over the
``matgrad check`` cases, divided by its backward-stability bound (≤ 1 passes;
references are exact rationals / 60-digit mpmath, fixed inputs).
"""

from __future__ import annotations

from matgrad._check import CASES, evaluate

from .common import BACKENDS, require

OPS = sorted({c.op for c in CASES})


class Accuracy:
    params = (BACKENDS, OPS)
    param_names = ["backend", "operation"]
    timeout = 300.0
    unit = "error / allowed"

    def setup(self, backend: str, op: str) -> None:
        require(backend)

    def track_worst_error_ratio(self, backend: str, op: str) -> float:
        return max(evaluate(c, backend).ratio for c in CASES if c.op == op)

    track_worst_error_ratio.unit = "error / allowed"  # type: ignore[attr-defined]
