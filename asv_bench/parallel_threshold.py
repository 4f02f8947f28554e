"""Where a parallel Numba launch starts to pay: one thread against all of them.

For each workload and batch size, the best of 7 × 20 calls with
``matgrad.config.numba_threads = 1`` and with the default thread count, every
launch allowed to split (``numba_parallel_min_work = 1``), next to the
launch's estimated work, the quantity ``config.numba_parallel_min_work`` is
compared with (docs/numba.md has the recorded table).  Run:
``python asv_bench/parallel_threshold.py``.
"""

from __future__ import annotations

import timeit
import warnings
from collections.abc import Callable

import numpy as np

import matgrad


def _best(f: Callable[[], object]) -> float:
    f()
    return min(timeit.repeat(f, number=20, repeat=7)) / 20


def _workloads(rng: np.random.Generator) -> list[tuple[str, Callable[[int], Callable[[], object]],
                                                        Callable[[int], int]]]:
    def det(n: int) -> Callable[[int], Callable[[], object]]:
        def make(B: int) -> Callable[[], object]:
            A = rng.standard_normal((B, n, n))
            return lambda: matgrad.det_grad(A, backend="numba")
        return make

    def frobenius(B: int) -> Callable[[], object]:
        X = rng.standard_normal((B, 8, 8))
        return lambda: matgrad.frobenius_grad(X, backend="numba")

    def bilinear(B: int) -> Callable[[], object]:
        x, y = rng.standard_normal((B, 8)), rng.standard_normal((B, 8))
        return lambda: matgrad.bilinear_grad(x, y, backend="numba")

    def charpoly(B: int) -> Callable[[], object]:
        A, x = rng.standard_normal((B, 8, 8)), rng.standard_normal(B)
        return lambda: matgrad.charpoly_deriv(A, x, backend="numba")

    return [
        ("det_grad 3x3", det(3), lambda B: B * 9),
        ("det_grad 4x4", det(4), lambda B: B * 64),
        ("det_grad 12x12", det(12), lambda B: B * 1728),
        ("frobenius_grad 8x8", frobenius, lambda B: B * 64),
        ("bilinear_grad 8, 8", bilinear, lambda B: B * 64),
        ("charpoly_deriv 8x8, 1 pt", charpoly, lambda B: B * 4 * 64),
    ]


def main(batches: tuple[int, ...] = (64, 256, 1024, 4096, 16384)) -> None:
    warnings.simplefilter("ignore", matgrad.CompileWarning)
    threads = matgrad.config.numba_threads
    print(f"{'workload':26s} {'batch':>6s} {'work':>9s} {'1 thread':>10s} {threads:>2d} threads")
    with matgrad.config.override(numba_parallel_min_work=1):
        for label, make, work in _workloads(np.random.default_rng(0)):
            for B in batches:
                f = make(B)
                with matgrad.config.override(numba_threads=1):
                    one = _best(f)
                many = _best(f)
                print(f"{label:26s} {B:6d} {work(B):9d} {one * 1e6:8.1f}us {many * 1e6:8.1f}us")


if __name__ == "__main__":
    main()
