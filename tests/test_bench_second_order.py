"""``asv_bench/second_order_bench.py`` runs and reports every row (on
batches 100× smaller; its numbers are the recorded run's business)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("jax")

SCRIPT = Path(__file__).parent.parent / "asv_bench" / "second_order_bench.py"


def test_runs_and_reports_every_row() -> None:
    r = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--rounds", "7"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [line for line in r.stdout.splitlines()
            if line.startswith("| ") and "s (IQR)" not in line]
    assert len(rows) == 5, r.stdout
    for row in rows:
        diff = row.rstrip(" |").rsplit("|", 1)[1].strip()
        assert diff == "—" or float(diff) < 1e-10, row  # equal work: the same results


def test_refuses_fewer_than_seven_rounds() -> None:
    r = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--rounds", "3"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "at least 7" in r.stderr
