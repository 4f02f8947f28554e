"""``matgrad`` / ``python -m matgrad`` commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from matgrad._cli import main

PLUGINS = Path(__file__).parent / "plugins"


def test_backends_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["backend", "available", "version", "device",
                                           "priority"]
    assert any(line.startswith("numpy") and " yes " in line for line in out.splitlines())


def test_check_numpy_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--backend", "numpy"]) == 0
    out = capsys.readouterr().out
    for op in ("frobenius_grad", "bilinear_grad", "det_grad", "logdet_grad", "charpoly_deriv"):
        assert any(op in line and line.rstrip().endswith("ok") for line in out.splitlines())
    assert "checks passed" in out


def test_check_unknown_backend_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--backend", "nope"]) == 2
    assert "unknown backend 'nope'" in capsys.readouterr().err


def test_check_fails_textbook_backend_in_subprocess() -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(PLUGINS),
                                                       os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-m", "matgrad", "check", "--backend", "textbook"],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "FAIL" in r.stdout and "failures:" in r.stdout
    assert "LinAlgError" in r.stdout  # det·inv raises on singular input


def test_bench_table_json_plot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    import numpy as np

    from matgrad import _bench

    small = [
        _bench.Workload("det_grad", "50x3x3", lambda r: (r.standard_normal((50, 3, 3)),), "copy"),
        _bench.Workload("bilinear_grad", "8x9", lambda r: (np.ones(8), np.ones(9)), "fill"),
        _bench.Workload("charpoly_deriv", "5x5, 7 pts",
                        lambda r: (r.standard_normal((5, 5)), r.standard_normal(7)), ""),
    ]
    monkeypatch.setattr(_bench, "WORKLOADS", small)
    monkeypatch.setattr(_bench, "SETTLE_S", 0.0)
    # the optional autodiff contestants are exercised by real runs, not here
    monkeypatch.setattr(_bench, "_torch", lambda op, args: None)
    monkeypatch.setattr(_bench, "_jax", lambda op, args: None)
    out_json = tmp_path / "b.json"
    args = ["bench", "--backend", "numpy", "--repeats", "2", "--json", str(out_json)]
    try:
        import matplotlib  # noqa: F401

        args += ["--plot", str(tmp_path / "b.png")]
    except ImportError:
        pass
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "matgrad[numpy]" in text and "numpy formula" in text and "floor: X.copy()" in text
    data = json.loads(out_json.read_text())
    got = {(r["op"], r["contestant"]) for r in data["results"]}
    assert ("det_grad", "matgrad[numpy]") in got and ("bilinear_grad", "floor: np.full") in got
    assert all(r["median_s"] > 0 for r in data["results"] if not r["error"])
    assert data["machine"]["cpus"] >= 1
    if "--plot" in args:
        assert (tmp_path / "b.png").stat().st_size > 1000
