"""``matgrad bench --group sweep``: sizes, table, plot, JSON (tiny sizes only)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from matgrad import _bench, _cli, _sweep


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_bench, "SETTLE_QUICK_S", 0.0)
    monkeypatch.setattr(_sweep, "SETTLE_QUICK_S", 0.0)
    monkeypatch.setattr(_sweep, "SIZES", ((1, 2), (3, 4)))


def test_sweep_points_cover_every_operation_size_and_backend() -> None:
    points = _sweep.run_sweep(["numpy"], repeats=3, sizes=_sweep.SIZES)
    ops = {p.op for p in points}
    assert ops == set(_sweep.SWEPT)
    assert {(p.B, p.n) for p in points} == {(1, 2), (3, 4)}
    for p in points:
        assert 0 < p.q1_s <= p.median_s <= p.q3_s
    headers, rows = _sweep.sweep_table(points)
    assert headers[:3] == ["operation", "B x n x n", "numpy s"]
    assert len(rows) == len(points)


def test_sweep_command_writes_json_and_plot(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    out, png = tmp_path / "s.json", tmp_path / "s.png"
    rc = _cli.main(["bench", "--group", "sweep", "--backend", "numpy", "--repeats", "2",
                    "--json", str(out), "--plot", str(png)])
    assert rc == 0
    data = json.loads(out.read_text())
    assert {d["op"] for d in data} == set(_sweep.SWEPT)
    assert png.stat().st_size > 1000
    assert "det_grad" in capsys.readouterr().out
