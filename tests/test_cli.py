"""``matgrad`` / ``python -m matgrad`` commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

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
    for op in ("frobenius_grad", "bilinear_grad", "det_grad", "logdet_grad", "charpoly_deriv",
               "det_hvp", "logdet_hvp", "frobenius_hvp", "det_hessian"):
        assert any(op in line and line.rstrip().endswith("ok") for line in out.splitlines())
    assert "checks passed" in out


def test_check_unknown_backend_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--backend", "nope"]) == 2
    assert "unknown backend 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["bench", "warmup"])
def test_bench_and_warmup_name_an_unknown_backend(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command, "--backend", "nope"]) == 2
    err = capsys.readouterr().err
    assert f"matgrad {command}: unknown backend 'nope'; known: " in err and "numpy" in err


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

    def workload(label: str, build: Any, floor: str) -> Any:
        return _bench.Workload(label, build, floor, label, build)

    small = [
        ("det_grad", workload("50x3x3", lambda r: (r.standard_normal((50, 3, 3)),), "copy")),
        ("bilinear_grad", workload("8x9", lambda r: (np.ones(8), np.ones(9)), "fill")),
        ("charpoly_deriv", workload("5x5, 7 pts",
                                    lambda r: (r.standard_normal((5, 5)),
                                               r.standard_normal(7)), "")),
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


# ---------------------------------------------------------------- --fuzz
def test_fuzz_short_run_passes(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("hypothesis")
    args = ["check", "--fuzz", "3", "--backend", "numpy", "--op", "frobenius_grad",
            "--seed", "1"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "--seed 1" in out and "no failures" in out
    row = next(line for line in out.splitlines() if line.startswith("numpy "))
    assert int(row.split()[1]) > 0  # examples actually ran


def test_fuzz_broken_backend_prints_a_reproducer() -> None:
    """The textbook plugin (det·inv) fails; the shrunk reproducer runs and
    shows the same failure."""
    pytest.importorskip("hypothesis")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(PLUGINS),
                                                       os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-m", "matgrad", "check", "--fuzz", "30", "--backend",
                        "textbook", "--op", "det_grad", "--seed", "0"],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 1, r.stdout + r.stderr
    out = r.stdout
    assert "FAILED: backend 'textbook', operation det_grad" in out
    assert "expected:" in out and "got:" in out
    script = out.split("reproducer (inputs round-trip bit for bit):\n", 1)[1]
    assert "np.array(" in script and "backend='textbook'" in script
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env, timeout=300)
    # det·inv raises (or warns) on the shrunk singular input
    assert run.returncode != 0 or "Warning" in run.stderr, run.stdout + run.stderr


def test_fuzz_without_hypothesis_says_how_to_install() -> None:
    code = ("import sys; sys.modules['hypothesis'] = None\n"
            "from matgrad._cli import main\n"
            "sys.exit(main(['check', '--fuzz', '1']))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "pip install 'matgrad[testing]'" in r.stderr


def test_fuzz_rejects_unknown_names(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("hypothesis")
    assert main(["check", "--fuzz", "1", "--op", "nope"]) == 2
    assert "unknown --op nope" in capsys.readouterr().err
    assert main(["check", "--fuzz", "1", "--backend", "nope"]) == 2
    assert main(["check", "--fuzz", "1", "--property", "nope"]) == 2
