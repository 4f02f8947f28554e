"""``matgrad check``: every backend against high-precision references.

The cases below (random and edge-case inputs) are also the core of the test
suite's contract tests, so the command a user runs and the tests CI runs hold
the backends to the same standard.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _api
from . import _reference as ref
from ._operations import OPERATIONS
from ._registry import entries

__all__ = ["CASES", "Case", "describe_failure", "evaluate", "run_check"]

Array = np.ndarray


@dataclass(frozen=True)
class Case:
    """One input for one operation."""

    op: str
    label: str
    args: tuple[Any, ...]


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _rank_deficient(n: int, rank: int, seed: int) -> Array:
    """Integer matrix of exact rank ``rank`` (a product of integer factors)."""
    r = _rng(seed)
    return (r.integers(-3, 4, (n, rank)) @ r.integers(-3, 4, (rank, n))).astype(float)


def _with_singular_values(n: int, s: Iterable[float], seed: int) -> Array:
    r = _rng(seed)
    q1, _ = np.linalg.qr(r.standard_normal((n, n)))
    q2, _ = np.linalg.qr(r.standard_normal((n, n)))
    out: Array = (q1 * np.asarray(list(s))) @ q2
    return out


def _complex(shape: tuple[int, ...], seed: int) -> Array:
    r = _rng(seed)
    return r.standard_normal(shape) + 1j * r.standard_normal(shape)


def _frank(n: int) -> Array:
    return np.array(
        [[float(n - max(i, j)) if j >= i - 1 else 0.0 for j in range(n)] for i in range(n)]
    )


def _frobenius_cases(r: np.random.Generator) -> list[Case]:
    """The ``frobenius_grad`` cases; normal draws from ``r``."""
    g = r.standard_normal
    c: list[Case] = []
    add = c.append
    add(Case("frobenius_grad", "random 3x4", (g((3, 4)),)))
    add(Case("frobenius_grad", "batch 4x2x3", (g((4, 2, 3)),)))
    add(Case("frobenius_grad", "complex 3x3", (_complex((3, 3), 1),)))
    add(Case("frobenius_grad", "float32 5x5", (g((5, 5)).astype(np.float32),)))
    add(Case("frobenius_grad", "float32 1e30", ((g((3, 3)) * 1e30).astype(np.float32),)))
    add(Case("frobenius_grad", "1e300 scale", (g((3, 4)) * 1e300,)))
    add(Case("frobenius_grad", "1e-300 scale", (g((3, 4)) * 1e-300,)))
    add(Case("frobenius_grad", "1e308 2x2", (np.full((2, 2), 1e308),)))
    mixed = g((4, 4)) * 1e-300
    mixed[0, 0] = 1e300
    add(Case("frobenius_grad", "1e300 and 1e-300", (mixed,)))
    add(Case("frobenius_grad", "subnormal", (np.array([[5e-324, -1e-320], [3e-310, 0.0]]),)))
    add(Case("frobenius_grad", "zero 3x3", (np.zeros((3, 3)),)))
    add(Case("frobenius_grad", "1x1", (np.array([[-7.0]]),)))
    return c


def _bilinear_cases(r: np.random.Generator) -> list[Case]:
    """The ``bilinear_grad`` cases; normal draws from ``r``."""
    g = r.standard_normal
    return [
        Case("bilinear_grad", "random 3,4", (g(3), g(4))),
        Case("bilinear_grad", "complex 3,2", (_complex((3,), 2), _complex((2,), 3))),
        Case("bilinear_grad", "float32 5,5", (g(5).astype(np.float32),
                                              g(5).astype(np.float32))),
        Case("bilinear_grad", "1e200 x 1e-200", (g(3) * 1e200, g(3) * 1e-200)),
    ]


def _det_cases(r: np.random.Generator) -> list[Case]:
    """The ``det_grad`` cases; normal draws from ``r``."""
    g = r.standard_normal
    c: list[Case] = []
    add = c.append
    for n in range(1, 8):
        add(Case("det_grad", f"random {n}x{n}", (g((n, n)),)))
    add(Case("det_grad", "complex 3x3", (_complex((3, 3), 4),)))
    add(Case("det_grad", "complex 5x5", (_complex((5, 5), 5),)))
    add(Case("det_grad", "float32 3x3", (g((3, 3)).astype(np.float32),)))
    add(Case("det_grad", "float32 5x5", (g((5, 5)).astype(np.float32),)))
    add(Case("det_grad", "[[1,2],[2,4]]", (np.array([[1.0, 2.0], [2.0, 4.0]]),)))
    add(Case("det_grad", "[[0,1],[0,1]]", (np.array([[0.0, 1.0], [0.0, 1.0]]),)))
    add(Case("det_grad", "diag(1,2,3,4)-2I", (np.diag([1.0, 2.0, 3.0, 4.0]) - 2 * np.eye(4),)))
    add(Case("det_grad", "diag(0,1,..) 6x6", (np.diag([1.0, 2.0, 0.0, 3.0, 4.0, 5.0]),)))
    add(Case("det_grad", "rank 2 of 3", (_rank_deficient(3, 2, 6),)))
    add(Case("det_grad", "rank 3 of 4", (_rank_deficient(4, 3, 7),)))
    add(Case("det_grad", "rank 5 of 6", (_rank_deficient(6, 5, 8),)))
    add(Case("det_grad", "rank 3 of 5", (_rank_deficient(5, 3, 9),)))
    add(Case("det_grad", "zero 4x4", (np.zeros((4, 4)),)))
    add(Case("det_grad", "ones*1e160 3x3", (np.full((3, 3), 1e160),)))
    add(Case("det_grad", "(G+3I)*1e-309 5x5", ((g((5, 5)) + 3 * np.eye(5)) * 1e-309,)))
    add(Case("det_grad", "diag(1e200,1e200,1,1,1)", (np.diag([1e200, 1e200, 1.0, 1.0, 1.0]),)))
    add(Case("det_grad", "sigma_n=1e-14, 6x6",
             (_with_singular_values(6, [3, 2, 1, 0.5, 0.25, 1e-14], 10),)))
    add(Case("det_grad", "sigma_n=0 complex 4x4",
             (_with_singular_values(4, [2, 1, 0.5, 0], 11) * (1 + 0.5j),)))
    add(Case("det_grad", "Hilbert 6", (1.0 / (np.arange(6)[:, None] + np.arange(6) + 1),)))
    return c


def _logdet_cases(r: np.random.Generator) -> list[Case]:
    """The ``logdet_grad`` cases; normal draws from ``r``."""
    g = r.standard_normal
    c = [Case("logdet_grad", f"random {n}x{n}", (g((n, n)),)) for n in range(1, 7)]
    c.append(Case("logdet_grad", "complex 4x4", (_complex((4, 4), 12),)))
    c.append(Case("logdet_grad", "float32 4x4", (g((4, 4)).astype(np.float32),)))
    c.append(Case("logdet_grad", "Hilbert 5",
                  (1.0 / (np.arange(5)[:, None] + np.arange(5) + 1),)))
    c.append(Case("logdet_grad", "1e-300 scale 4x4", ((g((4, 4)) + 3 * np.eye(4)) * 1e-300,)))
    return c


def _charpoly_cases(r: np.random.Generator) -> list[Case]:
    """The ``charpoly_deriv`` cases, each ``(A, points)``; normal draws
    from ``r``."""
    g = r.standard_normal
    c: list[Case] = []
    add = c.append
    add(Case("charpoly_deriv", "diag(1,2,3) at 2", (np.diag([1.0, 2.0, 3.0]), np.array([2.0]))))
    add(Case("charpoly_deriv", "diag(1,2,3,4) at 2", (np.diag([1.0, 2, 3, 4]), np.array([2.0]))))
    for n in (1, 2, 3, 5, 7):
        add(Case("charpoly_deriv", f"random {n}x{n}", (g((n, n)), g(3) * 2)))
    add(Case("charpoly_deriv", "complex 4x4", (_complex((4, 4), 13), _complex((3,), 14))))
    add(Case("charpoly_deriv", "real A, complex x", (g((4, 4)), _complex((2,), 15))))
    add(Case("charpoly_deriv", "float32 4x4", (g((4, 4)).astype(np.float32),
                                                g(3).astype(np.float32))))
    tri = np.diag([2.0] * 5) + np.diag([-1.0] * 4, 1) + np.diag([-1.0] * 4, -1)
    lam = 2 - 2 * np.cos(np.pi * np.arange(1, 6) / 6)  # eigenvalues of tri
    add(Case("charpoly_deriv", "tridiagonal at eigenvalues", (tri, lam)))
    add(Case("charpoly_deriv", "Frank 6", (_frank(6), np.array([0.0, 0.5, 3.0]))))
    block = np.triu(g((6, 6)))
    block[3:, :3] = 0
    block[3:, 3:] = g((3, 3))
    add(Case("charpoly_deriv", "block triangular 6x6", (block, g(3))))
    add(Case("charpoly_deriv", "scale 1e100", (g((4, 4)) * 1e100, g(2) * 1e100)))
    add(Case("charpoly_deriv", "scale 1e-100", (g((4, 4)) * 1e-100, g(2) * 1e-100)))
    return c


def _graded(n: int) -> Array:
    """``1e-20·I + triu(ones, 1)``: graded, well conditioned once scaled."""
    return 1e-20 * np.eye(n) + np.triu(np.ones((n, n)), 1)


def _second_order_cases() -> list[Case]:
    """The Hessian-vector product and Hessian cases, from their own
    generator (the first-order cases keep their draws)."""
    r = _rng(2026)
    g = r.standard_normal
    c: list[Case] = []
    add = c.append
    for n in range(1, 7):
        add(Case("det_hvp", f"random {n}x{n}", (g((n, n)), g((n, n)))))
    add(Case("det_hvp", "complex 3x3", (_complex((3, 3), 20), _complex((3, 3), 21))))
    add(Case("det_hvp", "complex 5x5", (_complex((5, 5), 22), _complex((5, 5), 23))))
    add(Case("det_hvp", "float32 3x3", (g((3, 3)).astype(np.float32),
                                         g((3, 3)).astype(np.float32))))
    add(Case("det_hvp", "float32 5x5", (g((5, 5)).astype(np.float32),
                                         g((5, 5)).astype(np.float32))))
    add(Case("det_hvp", "[[1,2],[2,4]]", (np.array([[1.0, 2.0], [2.0, 4.0]]), g((2, 2)))))
    add(Case("det_hvp", "rank 2 of 3", (_rank_deficient(3, 2, 24), g((3, 3)))))
    add(Case("det_hvp", "rank 3 of 4", (_rank_deficient(4, 3, 25), g((4, 4)))))
    add(Case("det_hvp", "rank 3 of 5", (_rank_deficient(5, 3, 26), g((5, 5)))))
    add(Case("det_hvp", "rank 2 of 5", (_rank_deficient(5, 2, 27), g((5, 5)))))
    add(Case("det_hvp", "diag(1,1,0,0)", (np.diag([1.0, 1.0, 0.0, 0.0]), g((4, 4)))))
    add(Case("det_hvp", "zero 4x4", (np.zeros((4, 4)), g((4, 4)))))
    rows = np.ldexp(g((4, 4)) + 3 * np.eye(4), np.array([300, -300, 0, 200])[:, None])
    add(Case("det_hvp", "rows 2^±300 4x4", (rows, g((4, 4)))))
    cols = np.ldexp(g((5, 5)) + 3 * np.eye(5), np.array([-300, 0, 300, 0, -150])[None, :])
    add(Case("det_hvp", "columns 2^±300 5x5", (cols, g((5, 5)))))
    add(Case("det_hvp", "1e-20 I + triu(ones) 5x5", (_graded(5), g((5, 5)))))
    add(Case("det_hvp", "batch 2x4x4", (g((2, 4, 4)), g((2, 4, 4)))))
    for n in range(1, 6):
        add(Case("logdet_hvp", f"random {n}x{n}", (g((n, n)) + 2 * np.eye(n), g((n, n)))))
    add(Case("logdet_hvp", "complex 4x4", (_complex((4, 4), 28), _complex((4, 4), 29))))
    add(Case("logdet_hvp", "float32 4x4", ((g((4, 4)) + 2 * np.eye(4)).astype(np.float32),
                                            g((4, 4)).astype(np.float32))))
    add(Case("logdet_hvp", "rows 2^±300 4x4", (rows, g((4, 4)))))
    add(Case("logdet_hvp", "Hilbert 5", (1.0 / (np.arange(5)[:, None] + np.arange(5) + 1),
                                          g((5, 5)))))
    add(Case("frobenius_hvp", "random 3x4", (g((3, 4)), g((3, 4)))))
    add(Case("frobenius_hvp", "complex 3x3", (_complex((3, 3), 30), _complex((3, 3), 31))))
    add(Case("frobenius_hvp", "float32 5x5", (g((5, 5)).astype(np.float32),
                                               g((5, 5)).astype(np.float32))))
    add(Case("frobenius_hvp", "X 1e200", (g((3, 3)) * 1e200, g((3, 3)))))  # H ~ 1e-200
    add(Case("frobenius_hvp", "X 1e-200", (g((3, 3)) * 1e-200, g((3, 3)))))  # H ~ 1e200
    add(Case("frobenius_hvp", "1e300 and 1e300", (g((2, 3)) * 1e300, g((2, 3)) * 1e300)))
    add(Case("frobenius_hvp", "batch 4x2x3", (g((4, 2, 3)), g((4, 2, 3)))))
    for n in range(1, 6):
        add(Case("det_hessian", f"random {n}x{n}", (g((n, n)),)))
    add(Case("det_hessian", "complex 4x4", (_complex((4, 4), 32),)))
    add(Case("det_hessian", "float32 4x4", (g((4, 4)).astype(np.float32),)))
    add(Case("det_hessian", "rank 3 of 4", (_rank_deficient(4, 3, 33),)))
    add(Case("det_hessian", "rank 2 of 4", (_rank_deficient(4, 2, 34),)))
    add(Case("det_hessian", "rows 2^±300 4x4", (rows,)))
    return c


def _cases() -> list[Case]:
    """Every case, one operation after another, all drawing (in this order)
    from one seeded generator."""
    r = _rng(2024)
    c = _frobenius_cases(r)
    c += _bilinear_cases(r)
    c += _det_cases(r)
    c += _logdet_cases(r)
    c += _charpoly_cases(r)
    c += _second_order_cases()
    return c


#: The standard case list (built once, deterministic).
CASES: list[Case] = _cases()


def evaluate(case: Case, backend: Any) -> ref.Score:
    """Run ``case`` on ``backend`` (name or instance) and score it against
    its operation's high-precision reference (see the operation table)."""
    try:
        op = OPERATIONS[case.op]
    except KeyError:
        raise ValueError(f"unknown operation {case.op!r}") from None
    def call(name: str, *args: Any, **options: Any) -> Any:
        return getattr(_api, name)(*args, backend=backend, **options)

    return op.score(case.args, call)


@dataclass
class Row:
    """One backend × operation of ``matgrad check``: how many cases ran, the
    largest error / bound over them (``worst_ratio``), the case it came from
    (``worst_case``) and that case's normwise relative error
    (``worst_rel``: NaN where the exact value is 0 or underflows), and a line
    per failed case."""

    backend: str
    op: str
    cases: int
    worst_ratio: float
    worst_rel: float
    worst_case: str
    failures: list[str]
    seconds: float


def describe_failure(label: str, score: ref.Score) -> str:
    """A failed case in words: what the numbers mean, not ``infx``."""
    if score.rel == float("inf"):
        return f"{label}: NaN, or ±inf where the exact value is finite"
    if score.ratio == float("inf"):
        return (f"{label}: the exact answer is required here (the bound is 0) and the error "
                f"is {score.rel:.3g} relative")
    return (f"{label}: error is {score.ratio:.3g} times its bound (normwise relative error "
            f"{score.rel:.3g})")


def run_check(
    backends: Iterable[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Row]:
    """Score every case on every (named or available) backend."""
    found = entries()
    names = list(backends) if backends else [n for n, e in found.items() if e.available]
    rows: list[Row] = []
    ops = sorted({c.op for c in CASES})
    for name in names:
        for op in ops:
            row = Row(name, op, 0, 0.0, float("nan"), "", [], 0.0)
            start = time.perf_counter()
            for case in (c for c in CASES if c.op == op):
                if progress:
                    progress(f"{name} {op} {case.label}")
                try:
                    score = evaluate(case, name)
                except Exception as exc:  # noqa: BLE001 - a raise is a failure
                    score = ref.Score(float("inf"), float("inf"))
                    row.failures.append(f"{case.label}: raised {type(exc).__name__}: {exc}")
                else:
                    if not score.ratio <= 1:
                        row.failures.append(describe_failure(case.label, score))
                row.cases += 1
                if not score.ratio <= row.worst_ratio or not row.worst_case:
                    row.worst_ratio, row.worst_case = score.ratio, case.label
                    row.worst_rel = score.rel
            row.seconds = time.perf_counter() - start
            rows.append(row)
    return rows
