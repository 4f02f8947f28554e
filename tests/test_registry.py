"""Plugin discovery through real entry points, selection rules, isolation."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import matgrad

PLUGINS = Path(__file__).parent / "plugins"
ROOT = Path(__file__).parent.parent


@pytest.fixture
def plugins() -> Iterator[dict[str, matgrad.BackendInfo]]:
    """The fixture plugins' dist-info on sys.path, registry refreshed."""
    sys.path.insert(0, str(PLUGINS))
    matgrad.refresh_backends()
    try:
        yield {b.name: b for b in matgrad.list_backends()}
    finally:
        sys.path.remove(str(PLUGINS))
        for mod in [m for m in sys.modules if m.startswith("mgtest_")]:
            del sys.modules[mod]
        matgrad.set_backend(None)
        matgrad.refresh_backends()


def _auto_default() -> str:
    """What ``auto`` picks for NumPy input among the built-in backends."""
    infos = [b for b in matgrad.list_backends() if b.available and "numpy" in b.array_modules
             and b.name in ("numpy", "numba")]
    return max(infos, key=lambda b: b.priority).name


def test_builtin_numpy_registered_through_entry_point() -> None:
    from importlib.metadata import entry_points

    eps = {ep.name: ep.value for ep in entry_points(group="matgrad.backends")}
    assert eps["numpy"] == "matgrad_numpy"
    (info,) = [b for b in matgrad.list_backends() if b.name == "numpy"]
    assert info.available and info.array_modules == ("numpy",) and info.device == "cpu"
    assert "numpy" in info.version


def test_broken_plugins_are_reported_not_raised(plugins: dict[str, matgrad.BackendInfo]) -> None:
    assert plugins["textbook"].available
    assert plugins["numpy"].available
    reasons = {name: info.reason for name, info in plugins.items() if not info.available}
    assert "ImportError" in reasons["broken_import"]
    assert "not installed" in reasons["broken_import"]
    assert "driver exploded" in reasons["raising_hook"]
    assert "returned int" in reasons["wrong_type"]
    assert "0 matgrad_backend hook" in reasons["no_hook"]
    assert "'textbook'" in reasons["misnamed"]
    assert reasons["unavailable"] == "needs a quantum computer"
    fixtures = {"broken_import", "raising_hook", "wrong_type", "no_hook", "misnamed",
                "unavailable", "textbook", "fakegpu"}
    assert set(reasons) & fixtures == fixtures - {"textbook", "fakegpu"}


def test_selection_by_keyword_context_global_env(
    plugins: dict[str, matgrad.BackendInfo], monkeypatch: pytest.MonkeyPatch
) -> None:
    import mgtest_textbook

    default = _auto_default()
    assert matgrad.get_backend().name == default  # auto: built-ins outrank textbook
    mgtest_textbook.CALLS.clear()
    matgrad.det_grad(np.eye(3), backend="textbook")
    assert mgtest_textbook.CALLS == ["det_grad"]

    monkeypatch.setenv("MATGRAD_BACKEND", "textbook")  # read at resolution time
    assert matgrad.get_backend().name == "textbook"
    monkeypatch.setenv("MATGRAD_BACKEND", "unavailable, textbook ,numpy")
    assert matgrad.get_backend().name == "textbook"
    matgrad.set_backend("numpy")
    assert matgrad.get_backend().name == "numpy"  # set_backend beats the environment
    with matgrad.use_backend("textbook"):
        assert matgrad.get_backend().name == "textbook"  # context beats set_backend
        mgtest_textbook.CALLS.clear()
        matgrad.frobenius_grad(np.ones((2, 2)), backend="numpy")  # keyword beats all
        assert mgtest_textbook.CALLS == []
    assert matgrad.get_backend().name == "numpy"  # set_backend again
    matgrad.set_backend(None)
    monkeypatch.setenv("MATGRAD_BACKEND", "nope")
    with pytest.raises(ValueError, match="unknown matgrad backend 'nope'"):
        matgrad.get_backend()


def test_unavailable_names_give_errors_with_reasons(plugins: dict[str, object]) -> None:
    with pytest.raises(RuntimeError, match=r"(?s)no available.*needs a quantum computer"):
        matgrad.det_grad(np.eye(2), backend="unavailable")
    with pytest.raises(RuntimeError, match=r"(?s)broken_import: import failed"):
        matgrad.det_grad(np.eye(2), backend="broken_import,raising_hook")
    with pytest.raises(ValueError, match=r"(?s)unknown matgrad backend 'cuda'.*wrong_type"):
        matgrad.use_backend("cuda").__enter__()


def test_resolution_prefers_native_array_type(plugins: dict[str, object]) -> None:
    class FakeArray:
        shape = (2, 2)
        dtype = np.dtype(np.float64)

    FakeArray.__module__ = "fakearray"
    # auto: fakegpu (priority 100) only takes its own arrays natively
    assert matgrad.get_backend().name == _auto_default()
    assert matgrad.get_backend(like=FakeArray()).name == "fakegpu"
    # a list naming no native backend: the first available one, with conversion
    with matgrad.use_backend("fakegpu"):
        assert matgrad.get_backend().name == "fakegpu"
        G = matgrad.det_grad(np.array([[2.0, 1.0], [1.0, 3.0]]))
        np.testing.assert_allclose(G, [[3.0, -1.0], [-1.0, 2.0]])
    with matgrad.use_backend("fakegpu,textbook"):
        assert matgrad.get_backend().name == "textbook"  # native for NumPy


def test_use_backend_is_thread_local(plugins: dict[str, object]) -> None:
    barrier = threading.Barrier(8)
    seen: dict[int, set[str]] = {}

    def worker(i: int) -> None:
        name = "textbook" if i % 2 else "numpy"
        with matgrad.use_backend(name):
            names = set()
            for _ in range(50):
                barrier.wait()
                names.add(matgrad.get_backend().name)
            seen[i] = names

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(8):
        assert seen[i] == {"textbook" if i % 2 else "numpy"}
    assert matgrad.get_backend().name == _auto_default()


def test_use_backend_is_task_local(plugins: dict[str, object]) -> None:
    async def task(name: str) -> set[str]:
        names = set()
        with matgrad.use_backend(name):
            for _ in range(20):
                await asyncio.sleep(0)
                names.add(matgrad.get_backend().name)
        return names

    async def main() -> list[set[str]]:
        return list(await asyncio.gather(task("numpy"), task("textbook"), task("numpy")))

    assert asyncio.run(main()) == [{"numpy"}, {"textbook"}, {"numpy"}]


def test_backend_instance_keyword() -> None:
    import matgrad_numpy

    b = matgrad_numpy.NumpyBackend()
    np.testing.assert_array_equal(matgrad.det_grad(np.eye(2), backend=b), np.eye(2))


def _run(args: list[str], env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("MATGRAD_BACKEND", None)
    env["PYTHONPATH"] = os.pathsep.join([str(PLUGINS), env.get("PYTHONPATH", "")])
    env.update(env_extra)
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env,
                          timeout=300, cwd=ROOT)


def test_plugin_selected_by_environment_in_subprocess() -> None:
    code = ("import numpy as np, matgrad, mgtest_textbook;"
            "matgrad.det_grad(np.eye(3));"
            "print(matgrad.get_backend().name, mgtest_textbook.CALLS)")
    r = _run(["-c", code], {"MATGRAD_BACKEND": "textbook"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["textbook", "['det_grad']"]
    r = _run(["-c", "import matgrad; print(matgrad.get_backend().name)"], {})
    assert r.stdout.strip() == _auto_default()


def test_cli_backends_lists_plugins_and_reasons() -> None:
    r = _run(["-m", "matgrad", "backends"], {})
    assert r.returncode == 0, r.stderr
    lines = {line.split()[0]: line for line in r.stdout.splitlines()[2:]}
    assert "yes" in lines["numpy"] and "yes" in lines["textbook"]
    assert "no: needs a quantum computer" in lines["unavailable"]
    assert "driver exploded" in lines["raising_hook"]
