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
    # the table says yes/no; why a backend is unavailable follows it, wrapped
    table, _, below = r.stdout.partition("\n\nunavailable:\n")
    rows = {line.split()[0]: line.split() for line in table.splitlines()[2:]}
    assert rows["numpy"][1] == rows["textbook"][1] == "yes"
    assert rows["unavailable"][1] == rows["raising_hook"][1] == "no"
    reasons = " ".join(below.split())
    assert "unavailable: needs a quantum computer" in reasons
    assert "raising_hook: matgrad_backend() raised RuntimeError: driver exploded" in reasons
    assert max(len(line) for line in r.stdout.splitlines()) <= 100, r.stdout


# ------------------------------------------------------------ plugin edge cases
EDGE = PLUGINS / "edge"
REENTRANT = PLUGINS / "reentrant"


@pytest.fixture
def edge_path() -> Iterator[None]:
    """The edge-case plugins' dist-info on sys.path (registry not yet read)."""
    sys.path.insert(0, str(EDGE))
    matgrad.refresh_backends()
    try:
        yield
    finally:
        sys.path.remove(str(EDGE))
        for mod in [m for m in sys.modules if m.startswith("mgtest_")]:
            del sys.modules[mod]
        matgrad.set_backend(None)
        matgrad.refresh_backends()


@pytest.fixture
def edge(edge_path: None) -> dict[str, matgrad.BackendInfo]:
    return {b.name: b for b in matgrad.list_backends()}


def test_registry_use_during_discovery_is_an_error_not_a_deadlock() -> None:
    code = ("import json, matgrad;"
            "print(json.dumps({b.name: [b.available, b.reason] for b in matgrad.list_backends()}))")
    env = dict(os.environ)
    env.pop("MATGRAD_BACKEND", None)
    env["PYTHONPATH"] = os.pathsep.join([str(REENTRANT), env.get("PYTHONPATH", "")])
    try:
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env=env, timeout=120, cwd=ROOT)
    except subprocess.TimeoutExpired:
        pytest.fail("plugin discovery deadlocked when a plugin used the registry")
    assert r.returncode == 0, r.stderr
    import json

    found = json.loads(r.stdout)
    assert found["numpy"] == [True, ""]
    for name in ("reenter_import", "reenter_hook", "reenter_available"):
        available, reason = found[name]
        assert not available
        assert "RuntimeError" in reason and "called during plugin discovery" in reason
    assert "import failed" in found["reenter_import"][1]
    assert "matgrad_backend() raised" in found["reenter_hook"][1]
    assert "available() raised" in found["reenter_available"][1]
    # version/device may not list backends either (that recursed without end)
    available, reason = found["reenter_device"]
    assert not available and "device raised RuntimeError" in reason


def test_other_threads_wait_for_discovery(edge_path: None) -> None:
    import mgtest_edge_gated

    gate = threading.Event()
    mgtest_edge_gated.GATE = gate
    mgtest_edge_gated.STARTED.clear()
    seen: dict[str, list[str]] = {}

    def lister(key: str) -> None:
        seen[key] = [b.name for b in matgrad.list_backends()]

    first = threading.Thread(target=lister, args=("first",), daemon=True)
    first.start()
    try:
        assert mgtest_edge_gated.STARTED.wait(30), "discovery never reached the gated plugin"
        second = threading.Thread(target=lister, args=("second",), daemon=True)
        second.start()
        second.join(0.5)
        assert second.is_alive(), "another thread got a registry while discovery was running"
    finally:
        gate.set()
    first.join(30)
    second.join(30)
    assert not first.is_alive() and not second.is_alive()
    assert seen["first"] == seen["second"]
    assert "gated" in seen["second"] and "numpy" in seen["second"]


def test_plugin_exceptions_of_any_kind_make_it_unavailable(
    edge: dict[str, matgrad.BackendInfo],
) -> None:
    expected = {
        "exit_import": "import failed: SystemExit: plugin gave up at import",
        "exit_hook": "matgrad_backend() raised SystemExit",
        "exit_available": "available() raised SystemExit",
        "exit_device": "device raised SystemExit",
        "exit_priority": "priority raised SystemExit",
        "bad_modules": "array_modules is 'numpy', not a tuple",
    }
    for name, reason in expected.items():
        assert not edge[name].available, name
        assert reason in edge[name].reason, (name, edge[name].reason)
    assert edge["gated"].available and edge["numpy"].available
    # marked unavailable for selection too, not only in the listing
    with pytest.raises(RuntimeError, match=r"(?s)no available.*exit_device: device raised"):
        matgrad.det_grad(np.eye(2), backend="exit_device")
    assert matgrad.get_backend().name == _auto_default()
    # listing again is stable (the failure is remembered, nothing escapes)
    again = {b.name: b for b in matgrad.list_backends()}
    assert again["exit_device"].reason == edge["exit_device"].reason


def test_keyboard_interrupt_from_a_plugin_propagates(edge_path: None) -> None:
    import mgtest_edge_interrupt

    mgtest_edge_interrupt.ARMED = True
    with pytest.raises(KeyboardInterrupt):
        matgrad.list_backends()
    # nothing half-built was kept: the next use discovers again
    mgtest_edge_interrupt.ARMED = False
    assert {b.name: b for b in matgrad.list_backends()}["interrupt"].available


def test_reserved_names_keep_the_builtins(edge: dict[str, matgrad.BackendInfo]) -> None:
    assert edge["numpy"].available and "numpy" in edge["numpy"].version
    impostor = edge["numpy@mgtest-edge-plugins"]
    assert not impostor.available
    assert "reserved for matgrad's built-in backend" in impostor.reason
    assert "mgtest_edge_impostor" in impostor.reason
    auto = edge["auto@mgtest-edge-plugins"]
    assert not auto.available and "'auto' is reserved" in auto.reason
    assert "mgtest_edge_impostor" not in sys.modules  # never imported
    assert "auto" not in edge
    np.testing.assert_array_equal(matgrad.det_grad(np.eye(2), backend="numpy"), np.eye(2))
    with matgrad.use_backend("auto"):
        assert matgrad.get_backend().name == _auto_default()


def test_load_backend(plugins: dict[str, matgrad.BackendInfo]) -> None:
    assert "load_backend" in matgrad.__all__
    b = matgrad.load_backend("numpy")
    assert isinstance(b, matgrad.Backend) and b.name == "numpy"
    assert matgrad.load_backend("numpy") is b
    assert matgrad.load_backend(plugins["textbook"]).name == "textbook"
    np.testing.assert_array_equal(matgrad.det_grad(np.eye(2), backend=b), np.eye(2))
    with pytest.raises(ValueError, match=r"(?s)unknown matgrad backend 'nope'.*numpy: available"):
        matgrad.load_backend("nope")
    with pytest.raises(RuntimeError, match=r"(?s)no available.*needs a quantum computer"):
        matgrad.load_backend("unavailable")
    with pytest.raises(ValueError, match="one registered backend name"):
        matgrad.load_backend("auto")
    with pytest.raises(ValueError, match="one registered backend name"):
        matgrad.load_backend("numpy,textbook")
    with pytest.raises(TypeError, match="load_backend"):
        matgrad.load_backend(3)  # type: ignore[arg-type]


def test_backend_info_as_backend_keyword(plugins: dict[str, matgrad.BackendInfo]) -> None:
    import mgtest_textbook

    mgtest_textbook.CALLS.clear()
    matgrad.det_grad(np.eye(2), backend=plugins["textbook"])
    assert mgtest_textbook.CALLS == ["det_grad"]
    with matgrad.use_backend(plugins["textbook"]):
        assert matgrad.get_backend().name == "textbook"


def test_backend_of_the_wrong_type_names_what_is_accepted() -> None:
    for bad in (123, 1.5, b"numpy", {"numpy"}):
        with pytest.raises(TypeError, match=r"backend= takes a backend name.*Backend instance"):
            matgrad.det_grad(np.eye(2), backend=bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"set_backend\(\) takes .*got int"):
        matgrad.set_backend(123)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="backend names must be strings"):
        matgrad.det_grad(np.eye(2), backend=["numpy", 1])  # type: ignore[list-item]


def test_environment_errors_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MATGRAD_BACKEND", "nonsense")
    with pytest.raises(ValueError, match=r"unknown matgrad backend 'nonsense'.*MATGRAD_BACKEND"):
        matgrad.det_grad(np.eye(2))
    monkeypatch.setenv("MATGRAD_BACKEND", "y" * 10_000)
    with pytest.raises(ValueError, match="MATGRAD_BACKEND") as info:
        matgrad.get_backend()
    message = str(info.value)
    assert "y" * 60 + "…" in message and "y" * 61 not in message
    assert len(message) < 2_000


def test_unavailable_selection_is_the_same_error_for_dask_input(
    plugins: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    da = pytest.importorskip("dask.array")
    dA = da.from_array(np.eye(3)[None].repeat(2, 0), chunks=(1, 3, 3))
    monkeypatch.setenv("MATGRAD_BACKEND", "unavailable")
    with pytest.raises(RuntimeError, match="needs a quantum computer") as numpy_error:
        matgrad.det_grad(np.eye(3))
    with pytest.raises(RuntimeError, match="needs a quantum computer") as dask_error:
        matgrad.det_grad(dA)
    assert str(dask_error.value) == str(numpy_error.value)
    assert "$MATGRAD_BACKEND='unavailable'" in str(dask_error.value)
    monkeypatch.delenv("MATGRAD_BACKEND")
    with pytest.raises(RuntimeError, match="needs a quantum computer"):
        matgrad.det_grad(dA, backend="unavailable")
    # a selection of orchestrators only still falls back for the blocks
    monkeypatch.setenv("MATGRAD_BACKEND", "dask")
    np.testing.assert_array_equal(matgrad.det_grad(dA).compute(), np.eye(3)[None].repeat(2, 0))


def test_set_backend_none_restores_the_environment(
    plugins: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MATGRAD_BACKEND", "textbook")
    assert matgrad.get_backend().name == "textbook"
    matgrad.set_backend("auto")  # overrides the environment from now on
    assert matgrad.get_backend().name == _auto_default()
    matgrad.set_backend(None)
    assert matgrad.get_backend().name == "textbook"
    assert "set_backend(None)" in (matgrad.set_backend.__doc__ or "")


def test_mixed_array_types_rank_as_the_backends_declare(
    plugins: dict[str, matgrad.BackendInfo],
) -> None:
    from matgrad._arrays import input_module, precedence

    class FakeArray:
        shape = (2, 2)
        dtype = np.dtype(np.float64)

    class Other:  # an array type no backend takes: read on the host, as torch's
        pass

    FakeArray.__module__ = "fakearray"
    Other.__module__ = "otherlib"
    # the built-ins keep their order: dask > cupy > torch, JAX > numpy
    assert [precedence(m) for m in ("dask", "cupy", "torch", "jax", "numpy")] == [3, 2, 1, 1, 0]
    assert precedence("fakearray") == 2 and precedence("otherlib") == 1
    assert input_module(np.eye(2), FakeArray()) == "fakearray"
    assert input_module(Other(), FakeArray()) == "fakearray"  # declared 2 beats 1, though later
    assert input_module(Other(), np.eye(2), 1.0) == "otherlib"
    assert input_module(np.eye(2), [1.0]) == "numpy"


def test_array_precedence_must_be_an_int() -> None:
    from matgrad_numpy import NumpyBackend

    from matgrad._registry import entry_for

    class Fractional(NumpyBackend):
        array_precedence = 2.5  # type: ignore[assignment]

    entry = entry_for("numpy", Fractional())
    assert not entry.available
    assert "array_precedence is 2.5, not an int" in entry.reason

    class Declared(NumpyBackend):
        array_precedence = np.int64(2)  # type: ignore[assignment]

    assert entry_for("numpy", Declared()).array_precedence == 2


def test_backends_use_only_the_public_api() -> None:
    """No backend reaches into matgrad's private modules (``matgrad._x``):
    ``matgrad.Backend``, ``matgrad.OrchestrationRequest`` and the public
    functions are all a backend needs."""
    import re

    private = re.compile(r"\bmatgrad\._[a-z]")
    found = [
        f"{path.relative_to(ROOT)}:{i}: {line.strip()}"
        for path in sorted((ROOT / "backends").rglob("*.py"))
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if private.search(line)
    ]
    assert not found, "\n".join(found)
