"""``matgrad bench --group sweep``: each backend's time across input sizes.

Every operation of the table runs on its example input built from a batch of
``B`` random ``n×n`` matrices, from one 2×2 matrix up to a large batch and a
large matrix, on every backend taking NumPy arrays, interleaved as in
``matgrad bench``.  It shows where each backend's fixed costs (front end,
thread start-up, kernel launch) stop mattering, and that no backend pays for
parallelism on an input too small to use it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._bench import SETTLE_QUICK_S, Result, _matgrad, _run_workload
from ._operations import OPERATIONS
from ._registry import entries

__all__ = ["SIZES", "SWEPT", "SweepPoint", "plot_sweep", "run_sweep", "sweep_table"]

#: (B, n): batches of B matrices n×n, small to large.
SIZES: tuple[tuple[int, int], ...] = (
    (1, 2), (1, 3), (1, 4), (1, 8), (1, 16), (1, 64), (1, 256),
    (10, 4), (100, 4), (1000, 4), (10_000, 4), (100_000, 4),
)


#: The operations swept by default: the first-order ones (a Hessian of a
#: 256×256 matrix would have 4·10⁹ entries).
SWEPT: tuple[str, ...] = tuple(n for n, op in OPERATIONS.items() if op.order == 1)


@dataclass
class SweepPoint:
    op: str
    B: int
    n: int
    backend: str
    median_s: float
    q1_s: float
    q3_s: float

    @property
    def elements(self) -> int:
        return self.B * self.n * self.n


def _numpy_backends(names: Sequence[str] | None) -> list[str]:
    found = entries()
    if names:
        return list(names)
    names_ = [n for n, e in found.items() if e.available and "numpy" in e.array_modules]
    # the NumPy reference backend first: the ratios are over it
    return sorted(names_, key=lambda n: n != "numpy")


def run_sweep(
    backends: Sequence[str] | None = None,
    repeats: int = 7,
    ops: Sequence[str] | None = None,
    sizes: Sequence[tuple[int, int]] = SIZES,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[SweepPoint]:
    """Median and quartiles of every (operation, size, backend)."""
    names = _numpy_backends(backends)
    chosen = [OPERATIONS[o] for o in (ops or SWEPT)]
    rng = np.random.default_rng(0)
    plan = [(op, B, n) for op in chosen for B, n in sizes]
    points: list[SweepPoint] = []
    for i, (op, B, n) in enumerate(plan):
        if progress:
            progress(i, len(plan), f"{op.name} {B}x{n}x{n}")
        A = np.eye(n) + rng.standard_normal((B, n, n)) / (2 * np.sqrt(n))
        args = op.example(A[0] if B == 1 else A)
        contestants = [(name, _matgrad(op.name, args, name)) for name in names]
        for r in _run_workload(op.name, f"{B}x{n}x{n}", contestants, repeats, SETTLE_QUICK_S):
            points.append(_point(op.name, B, n, r))
    if progress:
        progress(len(plan), len(plan), "done")
    return points


def _point(op: str, B: int, n: int, r: Result) -> SweepPoint:
    return SweepPoint(op, B, n, r.contestant, r.median_s, r.q1_s, r.q3_s)


def sweep_table(points: Sequence[SweepPoint]) -> tuple[list[str], list[list[str]]]:
    """Headers and rows: one row per (operation, size), a median per backend
    and each backend's median over the first backend's."""
    backends = list(dict.fromkeys(p.backend for p in points))
    headers = ["operation", "B x n x n", *(f"{b} s" for b in backends),
               *(f"{b}/{backends[0]}" for b in backends[1:])]
    rows = []
    for key in dict.fromkeys((p.op, p.B, p.n) for p in points):
        by = {p.backend: p for p in points if (p.op, p.B, p.n) == key}
        base = by.get(backends[0])
        row = [key[0], f"{key[1]}x{key[2]}x{key[2]}"]
        row += [f"{by[b].median_s:.3g}" if b in by else "" for b in backends]
        row += [f"{by[b].median_s / base.median_s:.2f}" if b in by and base else ""
                for b in backends[1:]]
        rows.append(row)
    return headers, rows


def plot_sweep(points: Sequence[SweepPoint], path: str) -> None:
    """One log-log panel per operation: median time against input elements."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ops = list(dict.fromkeys(p.op for p in points))
    cols = min(3, len(ops))
    rows = -(-len(ops) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.8 * rows), squeeze=False)
    for ax, op in zip(axes.flat, ops, strict=False):
        _panel(ax, [p for p in points if p.op == op], op)
    for ax in list(axes.flat)[len(ops):]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _on_line(p: SweepPoint, label: str) -> bool:
    """One matrix of growing n, or a growing batch of 4×4 (one 4×4 on both)."""
    return p.B == 1 if label == "one matrix" else (p.B > 1 or p.n == 4)


def _panel(ax: Any, points: Sequence[SweepPoint], op: str) -> None:
    for backend in dict.fromkeys(p.backend for p in points):
        for label in ("one matrix", "batch of 4x4"):
            mine = sorted((p for p in points if p.backend == backend and _on_line(p, label)),
                          key=lambda p: p.elements)
            ax.errorbar([p.elements for p in mine], [p.median_s for p in mine],
                        yerr=[[p.median_s - p.q1_s for p in mine],
                              [p.q3_s - p.median_s for p in mine]],
                        marker="o", ms=3, label=f"{backend}, {label}",
                        linestyle="-" if label == "one matrix" else "--")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("input elements (B·n²)")
    ax.set_ylabel("median s per call")
    ax.set_title(op, fontsize=9)
    ax.grid(which="both", alpha=0.3)
    ax.legend(fontsize=6)
