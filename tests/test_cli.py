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
