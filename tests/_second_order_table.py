"""The README's table of second derivatives of ``det``, computed.

Rows are matrices (singular ones of every rank deficiency, and an invertible
one), columns are ways to get the Hessian ``∂²det/∂A_ij∂A_kl``: PyTorch's
``torch.func.hessian`` and ``torch.autograd.functional.hessian`` of
``torch.linalg.det``, ``jax.hessian(jnp.linalg.det)``, and ``hessian`` of
``matgrad.torch.det`` / ``matgrad.jax.det``.  Each cell compares the result
with the exact Hessian from the row-replacement identity

    ∂²det/∂A_ij∂A_kl = det(A with row i := e_jᵀ and row k := e_lᵀ)

(0 for ``i = k`` or ``j = l``), evaluated in exact rational arithmetic
(:class:`fractions.Fraction`, Bareiss elimination), and says ``right``
(normwise relative error at most :data:`RIGHT`), ``NaN``, ``inf`` or
``rel err x`` (one significant digit).  ``tests/test_second_order.py``
compares this with the README's text.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np

#: A result is "right" within this normwise relative error (float64).
RIGHT = 1e-13

#: row label (as the README writes it) → the matrix
CASES: dict[str, np.ndarray] = {
    "[[1,2],[2,4]] (rank 1)": np.array([[1.0, 2.0], [2.0, 4.0]]),
    "ones(3,3) (rank 1)": np.ones((3, 3)),
    "[[1,2,3,4],[5,6,7,8],[9,10,11,12],[13,14,15,17]] (rank 3)": np.array(
        [[1.0, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 17]]),
    "diag(1,1,0,0) (rank 2)": np.diag([1.0, 1.0, 0.0, 0.0]),
    "[[4,1,0,2],[1,3,1,0],[0,2,5,1],[1,0,1,6]] (invertible)": np.array(
        [[4.0, 1, 0, 2], [1, 3, 1, 0], [0, 2, 5, 1], [1, 0, 1, 6]]),
}

COLUMNS = ["torch.func.hessian", "torch.autograd.functional.hessian",
           "jax.hessian(jnp.linalg.det)", "matgrad.torch", "matgrad.jax"]


def _det_fraction(M: list[list[Fraction]]) -> Fraction:
    """Exact determinant (fraction-free Bareiss elimination on Fractions)."""
    M = [row[:] for row in M]
    n = len(M)
    sign, prev = 1, Fraction(1)
    for k in range(n - 1):
        if M[k][k] == 0:
            p = next((i for i in range(k + 1, n) if M[i][k] != 0), None)
            if p is None:
                return Fraction(0)
            M[k], M[p] = M[p], M[k]
            sign = -sign
        for i in range(k + 1, n):
            for j in range(k + 1, n):
                M[i][j] = (M[i][j] * M[k][k] - M[i][k] * M[k][j]) / prev
        prev = M[k][k]
    return sign * M[n - 1][n - 1] if n else Fraction(1)


def exact_det_hessian(A: np.ndarray) -> np.ndarray:
    """``Hess[i, j, k, l] = ∂²det/∂A_ij∂A_kl`` of a real matrix, exactly
    (row-replacement identity, rational arithmetic), rounded once to float64."""
    n = A.shape[0]
    F = [[Fraction(float(v)) for v in row] for row in A]
    out = np.zeros((n, n, n, n))
    for i in range(n):
        for j in range(n):
            for k in range(n):
                for l in range(n):
                    if i == k or j == l:
                        continue
                    N = [row[:] for row in F]
                    N[i] = [Fraction(int(q == j)) for q in range(n)]
                    N[k] = [Fraction(int(q == l)) for q in range(n)]
                    out[i, j, k, l] = float(_det_fraction(N))
    return out


def describe(got: Any, exact: np.ndarray) -> str:
    """``right``, ``NaN``, ``inf``, the exception's name or ``rel err x``."""
    got = np.asarray(got, dtype=np.float64).reshape(exact.shape)
    if np.isnan(got).any():
        return "NaN"
    if np.isinf(got).any():
        return "inf"
    err = float(np.linalg.norm(got - exact) / np.linalg.norm(exact))
    if err <= RIGHT:
        return "right"
    return f"rel err {err:.0e}".replace("e-0", "e-").replace("e+00", "").replace("e+0", "e")


def contestants() -> dict[str, Callable[[np.ndarray], Any]]:
    """column → a function from the matrix to its Hessian (float64)."""
    import jax
    import jax.numpy as jnp
    import torch

    import matgrad.jax as mj
    import matgrad.torch as mt

    def t(A: np.ndarray) -> Any:
        return torch.tensor(A, dtype=torch.float64)

    def jhess(f: Callable[[Any], Any]) -> Callable[[np.ndarray], Any]:
        def run(A: np.ndarray) -> Any:
            with jax.enable_x64(True):
                return np.asarray(jax.hessian(f)(jnp.asarray(A, dtype=jnp.float64)))
        return run

    return {
        "torch.func.hessian": lambda A: torch.func.hessian(torch.linalg.det)(t(A)).numpy(),
        "torch.autograd.functional.hessian": lambda A: torch.autograd.functional.hessian(
            torch.linalg.det, t(A)).numpy(),
        "jax.hessian(jnp.linalg.det)": jhess(jnp.linalg.det),
        "matgrad.torch": lambda A: torch.func.hessian(mt.det)(t(A)).numpy(),
        "matgrad.jax": jhess(mj.det),
    }


def cell(column: str, A: np.ndarray, exact: np.ndarray) -> str:
    try:
        got = contestants()[column](A)
    except Exception as exc:  # noqa: BLE001 - the failure is the cell
        return type(exc).__name__
    return describe(got, exact)


def table() -> dict[str, dict[str, str]]:
    """``{row: {column: cell}}`` for every case and column."""
    out = {}
    for row, A in CASES.items():
        exact = exact_det_hessian(A)
        out[row] = {c: cell(c, A, exact) for c in COLUMNS}
    return out


def markdown() -> str:
    """The table as the README writes it."""
    lines = ["| Hessian of det at | " + " | ".join(COLUMNS) + " |",
             "|---" * (len(COLUMNS) + 1) + "|"]
    for row, cells in table().items():
        lines.append(f"| {row} | " + " | ".join(cells[c] for c in COLUMNS) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown())
