"""``matgrad.testing`` as a plugin author uses it: on backends installed
through real entry points (tests/plugins), in a fresh pytest process whose
only test file is the two lines the README shows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import matgrad
from matgrad import testing

PLUGINS = Path(__file__).parent / "plugins"
CORRECT = PLUGINS / "contract"  # mgtest_delegating: NumPy behind a third-party plugin


def _pytest(args: list[str], cwd: Path, *paths: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("MATGRAD_BACKEND", None)
    env["PYTHONPATH"] = os.pathsep.join([*map(str, paths), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=600)


def _outcomes(stdout: str) -> dict[str, str]:
    """``-rA`` summary lines: node id -> PASSED/FAILED/ERROR/SKIPPED."""
    out = {}
    for line in stdout.splitlines():
        m = re.match(r"(PASSED|FAILED|ERROR) (.*?)(?: - .*)?$", line)
        if m:
            out[m.group(2)] = m.group(1)
    return out


def _two_lines(name: str) -> str:
    return (f"from matgrad.testing import BackendContract\n"
            f"class Test{name.title()}(BackendContract): backend = {name!r}\n")


# The whole suite, everything it runs: a test the class gains is counted here.
MIN_TESTS = len(testing.CASE_LABELS) + len(testing.CONTRACT_CHECKS) + len(testing.HOSTILE_CHECKS)


def test_two_lines_run_the_suite_on_installed_plugins(tmp_path: Path) -> None:
    """A correct plugin passes every test; the textbook-formula plugin
    (mgtest_textbook) fails the suite, on the checks that catch it."""
    (tmp_path / "test_delegating.py").write_text(_two_lines("delegating"))
    (tmp_path / "test_textbook.py").write_text(_two_lines("textbook"))
    r = _pytest(["-rA", "--tb=no", "-W", "error::pytest.PytestWarning"], tmp_path,
                CORRECT, PLUGINS)
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr
    got = _outcomes(r.stdout)
    correct = {k: v for k, v in got.items() if k.startswith("test_delegating.py::")}
    textbook = {k: v for k, v in got.items() if k.startswith("test_textbook.py::")}
    assert len(correct) >= MIN_TESTS and set(correct.values()) == {"PASSED"}, correct
    assert set(textbook) == {k.replace("test_delegating.py::TestDelegating",
                                       "test_textbook.py::TestTextbook") for k in correct}
    failed = {k.split("::")[-1] for k, v in textbook.items() if v == "FAILED"}
    for test in ("test_contract_check[det_grad_singular]",
                 "test_contract_check[frobenius_scales]",
                 "test_contract_check[charpoly_at_eigenvalues]",
                 "test_reference_case[det_grad: diag(1,2,3,4)-2I]",
                 "test_reference_case[frobenius_grad: 1e308 2x2]"):
        assert test in failed, sorted(failed)


def test_plugin_option_runs_the_suite_without_a_test_file(tmp_path: Path) -> None:
    """``-p matgrad.testing --matgrad-backend NAME`` (repeatable) in a
    directory with no tests; a name nothing registers is an error."""
    r = _pytest(["-p", "matgrad.testing", "--matgrad-backend", "delegating",
                 "--matgrad-backend", "textbook", "--matgrad-backend", "nosuch",
                 "-k", "contract_check", "-rA", "--tb=line"], tmp_path, CORRECT, PLUGINS)
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr
    got = _outcomes(r.stdout)
    for check in testing.CONTRACT_CHECKS:
        name = check.__name__.removeprefix("check_")
        test = "matgrad.testing::TestMatgradContract::test_contract_check"
        assert got[f"{test}[delegating-{name}]"] == "PASSED"
        assert got[f"{test}[nosuch-{name}]"] == "ERROR"
    assert "FAILED" in {v for k, v in got.items() if "[textbook-" in k}
    assert "no backend named 'nosuch' is registered" in r.stdout


def test_plugin_option_alone_runs_only_the_suite(tmp_path: Path) -> None:
    """With no test path, ``--matgrad-backend`` runs the contract suite and
    nothing of the current directory: here a plugin's root holding its own
    two-line test file (which ran every test twice before) and a test file
    that cannot even be imported."""
    (tmp_path / "test_delegating.py").write_text(_two_lines("delegating"))
    (tmp_path / "test_broken.py").write_text("raise ImportError('collected by mistake')\n")
    r = _pytest(["-p", "matgrad.testing", "--matgrad-backend", "delegating",
                 "-k", "contract_check", "-rA", "--tb=line"], tmp_path, CORRECT, PLUGINS)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    got = _outcomes(r.stdout)
    assert got and all(k.startswith("matgrad.testing::") for k in got), sorted(got)
    assert len(got) == len(testing.CONTRACT_CHECKS)
    # an explicit path still runs beside the suite
    r = _pytest(["-p", "matgrad.testing", "--matgrad-backend", "delegating",
                 "-k", "contract_check", "-rA", "--tb=line", "test_delegating.py"],
                tmp_path, CORRECT, PLUGINS)
    got = _outcomes(r.stdout)
    assert r.returncode == 0 and {k.split("::")[0] for k in got} == {
        "matgrad.testing", "test_delegating.py"}, sorted(got)


def test_plugin_is_opt_in(tmp_path: Path) -> None:
    """No pytest11 entry point: a plain pytest run does not load it."""
    assert not [ep for ep in entry_points(group="pytest11") if ep.value.startswith("matgrad")]
    r = _pytest(["--matgrad-backend", "numpy"], tmp_path)
    assert r.returncode == 4 and "unrecognized arguments" in r.stderr, r.stderr


def test_checks_need_no_pytest() -> None:
    code = ("import sys; sys.modules['pytest'] = None\n"
            "import matgrad.testing as t\n"
            "t.check_frobenius_zero('numpy'); t.check_case(t.CASE_LABELS[0], 'numpy')\n"
            "try:\n    t.BackendContract\nexcept ImportError as e:\n    print(e)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert "needs pytest: pip install 'matgrad[testing]'" in r.stdout


# --------------------------------------------------- which backend is tested
@pytest.fixture
def plugins() -> Iterator[None]:
    """The fixture plugins' dist-info on sys.path, registry refreshed."""
    sys.path.insert(0, str(PLUGINS))
    matgrad.refresh_backends()
    try:
        yield
    finally:
        sys.path.remove(str(PLUGINS))
        for mod in [m for m in sys.modules if m.startswith("mgtest_")]:
            del sys.modules[mod]
        matgrad.refresh_backends()


def test_resolve_backend(plugins: None) -> None:
    resolve = testing.resolve_backend
    assert resolve("textbook") == "textbook"
    import mgtest_textbook

    instance = mgtest_textbook.TextbookBackend()  # an instance is tested as it is
    assert resolve(instance) is instance
    with pytest.raises(pytest.fail.Exception, match="no backend named 'nosuch'"):
        resolve("nosuch")
    with pytest.raises(pytest.fail.Exception, match="set `backend`"):
        resolve(None)
    # a broken plugin fails, never skips
    with pytest.raises(pytest.fail.Exception, match="'broken_import' is unusable: import failed"):
        resolve("broken_import")
    with pytest.raises(pytest.fail.Exception, match="driver exploded"):
        resolve("raising_hook")
    # one that cannot run here skips with its reason, or fails if asked to
    with pytest.raises(pytest.skip.Exception, match="needs a quantum computer"):
        resolve("unavailable")
    with pytest.raises(pytest.fail.Exception, match="needs a quantum computer"):
        resolve("unavailable", skip_unavailable=False)
