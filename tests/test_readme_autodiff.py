"""The README's table of autodiff failures, computed.

Every cell of the table near the top of README.md (textbook NumPy, PyTorch
autograd, JAX, matgrad, matgrad.torch, matgrad.jax) is computed here and
compared with the README's text, so the table cannot drift from what the
code does.  A cell may carry a comment in parentheses after its value
("0 (wrong)", "0 (overflow)"): the value before it must match.  The last row
is a cost claim: for matgrad's three columns it is counted (backend calls,
matrices reduced, points per call); the frameworks' cells there are prose.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")

import jax.numpy as jnp  # noqa: E402
from matgrad_numpy import NumpyBackend  # noqa: E402

import matgrad  # noqa: E402
import matgrad.jax as mj  # noqa: E402
import matgrad.torch as mt  # noqa: E402

README = Path(__file__).parent.parent / "README.md"
COLUMNS = ["textbook NumPy", "PyTorch 2.13 autograd", "JAX 0.10", "matgrad",
           "matgrad.torch", "matgrad.jax"]
R = np.array([[1.0, -2.0], [2.0, 4.0]])  # ‖R‖_F = 5

Cell = Callable[[], Any]


def readme_table() -> dict[str, dict[str, str]]:
    """``{row label: {column: cell text}}`` of the table whose header starts
    with ``| input | textbook NumPy |``."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines)
                 if line.startswith("| input | textbook NumPy |"))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    table = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        table[cells[0]] = dict(zip(header[1:], cells[1:], strict=True))
    return table


# ------------------------------------------------------------- the contestants
def _torch_grad(f: Callable[[Any], Any], A: np.ndarray) -> np.ndarray:
    t = torch.tensor(A, dtype=torch.float64, requires_grad=True)
    f(t).sum().backward()
    return t.grad.numpy()  # type: ignore[no-any-return]


def _jax_grad(f: Callable[[Any], Any], A: Any) -> np.ndarray:
    with jax.enable_x64(True):
        return np.asarray(jax.grad(lambda a: f(a).sum())(jnp.asarray(A, dtype=jnp.float64)))


def _frobenius(X: np.ndarray) -> dict[str, Cell]:
    def textbook() -> Any:
        with np.errstate(all="ignore"):
            return X / np.sqrt((X * X).sum())

    return {
        "textbook NumPy": textbook,
        "PyTorch 2.13 autograd": lambda: _torch_grad(torch.linalg.matrix_norm, X),
        "JAX 0.10": lambda: _jax_grad(jnp.linalg.norm, X),
        "matgrad": lambda: matgrad.frobenius_grad(X),
        "matgrad.torch": lambda: _torch_grad(mt.frobenius_norm, X),
        "matgrad.jax": lambda: _jax_grad(mj.frobenius_norm, X),
    }


def _det(A: np.ndarray) -> dict[str, Cell]:
    return {
        "textbook NumPy": lambda: np.linalg.det(A) * np.linalg.inv(A).T,
        "PyTorch 2.13 autograd": lambda: _torch_grad(torch.linalg.det, A),
        "JAX 0.10": lambda: _jax_grad(jnp.linalg.det, A),
        "matgrad": lambda: matgrad.det_grad(A),
        "matgrad.torch": lambda: _torch_grad(mt.det, A),
        "matgrad.jax": lambda: _jax_grad(mj.det, A),
    }


def _charpoly_prime(A: np.ndarray, x: float) -> dict[str, Cell]:
    n = A.shape[-1]

    def textbook() -> Any:
        M = x * np.eye(n) - A
        return np.linalg.det(M) * np.trace(np.linalg.inv(M))

    def torch_(p: Callable[[Any, Any], Any]) -> Any:
        t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        p(torch.tensor(A), t).backward()
        return t.grad.numpy()

    def jax_(p: Callable[[Any, Any], Any]) -> Any:
        with jax.enable_x64(True):
            return np.asarray(jax.grad(lambda t: p(jnp.asarray(A), t))(jnp.float64(x)))

    return {
        "textbook NumPy": textbook,
        "PyTorch 2.13 autograd": lambda: torch_(
            lambda a, t: torch.linalg.det(t * torch.eye(n, dtype=a.dtype) - a)),
        "JAX 0.10": lambda: jax_(lambda a, t: jnp.linalg.det(t * jnp.eye(n) - a)),
        "matgrad": lambda: matgrad.charpoly_deriv(A, x),
        "matgrad.torch": lambda: torch_(mt.charpoly),
        "matgrad.jax": lambda: jax_(mj.charpoly),
    }


#: row label → (cells, the exact answer, how the README writes it)
ROWS: dict[str, tuple[dict[str, Cell], np.ndarray, str]] = {
    "∇‖X‖ at X = 0": (_frobenius(np.zeros((2, 2))), np.zeros((2, 2)), "0"),
    "∇‖X‖ at X = 1e200·R": (_frobenius(1e200 * R), R / 5, "R/‖R‖"),
    "∇‖X‖ at X = 1e-200·R": (_frobenius(1e-200 * R), R / 5, "R/‖R‖"),
    "∇det [[1,2],[2,4]]": (_det(np.array([[1.0, 2.0], [2.0, 4.0]])),
                           np.array([[4.0, -2.0], [-2.0, 1.0]]), "[[4,−2],[−2,1]]"),
    "p′(2) for diag(1,2,3)": (_charpoly_prime(np.diag([1.0, 2.0, 3.0]), 2.0),
                              np.array(-1.0), "−1"),
    "p′(2) for diag(1,2,3,4)": (_charpoly_prime(np.diag([1.0, 2.0, 3.0, 4.0]), 2.0),
                                np.array(2.0), "2"),
}


def describe(run: Cell, exact: np.ndarray, text: str) -> str:
    """The README's words for what ``run`` gives: the exact answer's own
    text when it is right, else the exception's name, NaN, inf, 0 or the
    numbers."""
    try:
        got = np.asarray(run(), dtype=np.float64)
    except Exception as exc:  # noqa: BLE001 - the failure is the cell
        return type(exc).__name__
    if got.shape == exact.shape and np.allclose(got, exact, rtol=1e-12, atol=0):
        return text
    if np.isnan(got).all():
        return "NaN"
    if np.isinf(got).all():
        return "inf"
    if (got == 0).all():
        return "0"
    return str(got.tolist()).replace("-", "−").replace(" ", "")


def _value(cell: str) -> str:
    """A README cell without its comment: "0 (wrong)" → "0"."""
    return re.sub(r"\s*\([^)]*\)$", "", cell)


@pytest.mark.parametrize("row", list(ROWS))
@pytest.mark.parametrize("column", COLUMNS)
def test_readme_cell(row: str, column: str) -> None:
    cells, exact, text = ROWS[row]
    want = readme_table()[row][column]
    assert _value(want) == describe(cells[column], exact, text), (row, column, want)


def test_new_columns_are_right_everywhere() -> None:
    """matgrad.torch and matgrad.jax give the exact answer in every row."""
    table = readme_table()
    for row, (_, _, text) in ROWS.items():
        assert table[row]["matgrad.torch"] == text
        assert table[row]["matgrad.jax"] == text


# ------------------------------------------------------------- the cost row
COST_ROW = "p′ at 1000 points, 200×200"


def _count(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[tuple[int, int]]]:
    """Record the NumPy backend's canonical calls: (matrices, points) for
    ``charpoly_deriv``, (matrices, 0) for the factorisations."""
    calls: dict[str, list[tuple[int, int]]] = {"charpoly_deriv": [], "factorisations": []}
    orig_cp = NumpyBackend.charpoly_deriv

    def charpoly_deriv(self: Any, A: Any, x: Any) -> Any:
        calls["charpoly_deriv"].append((A.shape[0], x.shape[1]))
        return orig_cp(self, A, x)

    monkeypatch.setattr(NumpyBackend, "charpoly_deriv", charpoly_deriv)
    for op in ("det_grad", "logdet_grad", "det_value_grad", "logdet_value_grad"):
        orig = getattr(NumpyBackend, op)

        def counted(self: Any, A: Any, _orig: Any = orig) -> Any:
            calls["factorisations"].append((A.shape[0], 0))
            return _orig(self, A)

        monkeypatch.setattr(NumpyBackend, op, counted)
    return calls


def _cost_text(calls: dict[str, list[tuple[int, int]]], points: int) -> str:
    """"1 reduction + O(n²) per point" when one charpoly_deriv call on one
    matrix served every point and nothing was factored per point."""
    cp = calls["charpoly_deriv"]
    factored = sum(b for b, _ in calls["factorisations"])
    if len(cp) == 1 and cp[0] == (1, points) and factored == 0:
        return "1 reduction + O(n²) per point"
    return f"{sum(b for b, _ in cp)} reductions, {factored} factorisations"


@pytest.mark.parametrize("column", ["matgrad", "matgrad.torch", "matgrad.jax"])
def test_readme_cost_row(column: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    A = np.eye(200) + rng.standard_normal((200, 200)) / 30
    x = rng.standard_normal(1000)
    calls = _count(monkeypatch)
    if column == "matgrad":
        matgrad.charpoly_deriv(A, x, backend="numpy")
    elif column == "matgrad.torch":
        t = torch.tensor(x, requires_grad=True)
        mt.charpoly(torch.tensor(A), t, backend="numpy").sum().backward()
    else:
        with jax.enable_x64(True):
            jax.grad(lambda t: mj.charpoly(jnp.asarray(A), t, backend="numpy").sum())(
                jnp.asarray(x)).block_until_ready()
    assert readme_table()[COST_ROW][column] == _cost_text(calls, 1000)
