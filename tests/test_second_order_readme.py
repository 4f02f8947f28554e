"""The README's table of second derivatives of ``det``, computed.

Every cell of the table whose header starts with ``| Hessian of det at |``
(in README.md, or in a page of docs/guide/ should the frameworks' section
live there) is recomputed by :mod:`tests._second_order_table` (exact rational
references) and compared with the README's text, so the table cannot drift
from what the code and the frameworks do."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("jax")

from ._second_order_table import CASES, COLUMNS, cell, exact_det_hessian

ROOT = Path(__file__).parent.parent
HEADER = "| Hessian of det at |"


def _page() -> list[str]:
    """The lines of the one page that holds the table."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs" / "guide").glob("*.md"))]
    found = [p.read_text(encoding="utf-8").splitlines() for p in pages if p.exists()]
    holding = [lines for lines in found if any(x.startswith(HEADER) for x in lines)]
    assert len(holding) == 1, "the Hessian table must be on exactly one page"
    return holding[0]


def readme_table() -> dict[str, dict[str, str]]:
    """``{row label: {column: cell text}}`` of the table."""
    lines = _page()
    start = next(i for i, line in enumerate(lines) if line.startswith(HEADER))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    table = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        table[cells[0]] = dict(zip(header[1:], cells[1:], strict=True))
    return table


def test_rows_and_columns() -> None:
    table = readme_table()
    assert list(table) == list(CASES)
    assert all(list(cells) == COLUMNS for cells in table.values())


@pytest.mark.parametrize("column", COLUMNS)
@pytest.mark.parametrize("row", list(CASES))
def test_readme_cell(row: str, column: str) -> None:
    A = CASES[row]
    assert readme_table()[row][column] == cell(column, A, exact_det_hessian(A))


def test_matgrad_columns_are_right_everywhere() -> None:
    for cells in readme_table().values():
        assert cells["matgrad.torch"] == cells["matgrad.jax"] == "right"
