"""``matgrad bench --group autodiff``: interleaved pairs, ratios of medians,
IQRs, targets, and the JSON round trip (tiny sizes; the timings themselves
are the README's, not this test's)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("jax")

from matgrad import _bench, _cli


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_bench, "SETTLE_S", 0.0)
    monkeypatch.setattr(_bench, "AUTODIFF_CASES", [
        _bench.AutodiffCase("det", 40, 3, 20, {"pytorch": 3.0, "jax": None}),
        _bench.AutodiffCase("slogdet", 40, 5, 20, {"pytorch": 1.5, "jax": 1.0}),
    ])


def test_autodiff_group(tiny: None) -> None:
    results = _bench.run_autodiff(quick=True, repeats=3)
    assert [(r.framework, r.workload) for r in results] == [
        ("pytorch", "det 20x3x3"), ("jax", "det 20x3x3"),
        ("pytorch", "slogdet, SPD 20x5x5"), ("jax", "slogdet, SPD 20x5x5")]
    for r in results:
        assert not r.error
        assert len(r.matgrad_s) == len(r.native_s) == 7  # at least 7 repeats
        assert r.grad_diff < 1e-12  # the same gradient as the framework's
        assert r.speedup > 0
    rows = _bench.autodiff_table(results)
    assert [row[6] for row in rows] == [">= 3x", "-", ">= 1.5x", "> 1x"]
    again = _bench.load_autodiff(_bench.to_json([], results))
    assert _bench.autodiff_table(again) == rows


def test_targets() -> None:
    def result(m: list[float], n: list[float], target: float | None) -> _bench.AutodiffResult:
        return _bench.AutodiffResult("jax", "w", m, n, (0.0, 0.0), target, 0.0)

    assert result([1.0] * 7, [3.0] * 7, 3.0).met is True
    assert result([1.0] * 7, [2.9] * 7, 3.0).met is False
    # "faster": a tie is a miss, winning 3 of 4 pairs is not
    assert result([1.0] * 7, [1.0] * 7, 1.0).met is False
    assert result([1.0] * 7, [1.2] * 7, 1.0).met is True
    assert result([1.0] * 7, [1.2] * 7, None).met is None


def test_cli_group(tiny: None, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = str(tmp_path / "bench.json")
    assert _cli.main(["bench", "--group", "autodiff", "--quick", "--json", path]) == 0
    out = capsys.readouterr().out
    assert "autodiff: forward + backward" in out and "det 20x3x3" in out
    assert "contestant" not in out  # the ops group did not run
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    assert data["results"] == [] and len(data["autodiff"]) == 4
