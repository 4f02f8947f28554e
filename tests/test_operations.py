"""The operation table drives the API, the backend base classes, check, bench and tests."""

from __future__ import annotations

import inspect
import sys
import types
from typing import Any

import numpy as np
import pytest
from matgrad_numpy import NumpyBackend

import matgrad
from matgrad._check import CASES
from matgrad._operations import METHODS, OPERATIONS

_NUMPY = NumpyBackend()


def test_every_public_operation_has_a_row() -> None:
    public = {n for n in matgrad.__all__
              if n.endswith(("_grad", "_hvp", "_hessian")) or n.startswith("charpoly")}
    assert public == set(OPERATIONS)
    for name, op in OPERATIONS.items():
        assert callable(getattr(matgrad, name))
        assert op.method in METHODS
        assert not op.value_method or op.value_method in METHODS


def test_backend_interface_comes_from_the_table() -> None:
    required = {m.name for m in METHODS.values() if m.required}
    assert matgrad.Backend.__abstractmethods__ == required
    assert matgrad.Backend.methods == tuple(METHODS)
    for m in METHODS.values():
        fn = getattr(matgrad.Backend, m.name)
        assert fn.__doc__ == m.doc
        assert list(inspect.signature(fn).parameters) == ["self", *m.args]
    assert not matgrad.ModuleBackend.__abstractmethods__


def test_check_cases_cover_every_canonical_operation() -> None:
    covered = {c.op for c in CASES}
    assert covered <= set(OPERATIONS)
    assert {n for n, op in OPERATIONS.items() if op.method == n} <= covered


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_textbook_formula_agrees_on_a_well_conditioned_input(name: str) -> None:
    """The bench's textbook contestant computes the same thing (where it is
    accurate: a well-conditioned float64 input)."""
    op = OPERATIONS[name]
    rng = np.random.default_rng(3)
    A = np.eye(4) + rng.standard_normal((2, 4, 4)) / 8
    args = op.example(A)
    if name.startswith("charpoly"):
        args = (A[0], np.array([0.3, 2.5]))
    got = getattr(matgrad, name)(*args, backend="numpy")
    want = op.textbook(*(np.asarray(a, dtype=float) for a in args))
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_example_inputs_run_and_score(name: str) -> None:
    op = OPERATIONS[name]
    A = np.eye(3) + np.random.default_rng(4).standard_normal((2, 3, 3)) / 4
    out = getattr(matgrad, name)(*op.example(A), backend="numpy")
    assert np.all(np.isfinite(out))
    # the references score one matrix (one pair of vectors) at a time
    args = (A[0], np.array([0.5, 1.5])) if name.startswith("charpoly") else op.example(A[0])
    def call(fn: str, *a: Any, **kw: Any) -> Any:
        return getattr(matgrad, fn)(*a, backend="numpy", **kw)

    assert op.score(args, call).ratio <= 1


@pytest.mark.parametrize(
    "name,workload",
    [(n, w) for n, op in OPERATIONS.items() for w in op.workloads],
    ids=lambda v: v if isinstance(v, str) else v.quick_label,
)
def test_quick_workloads_build_valid_inputs(name: str, workload: Any) -> None:
    args = workload.quick_build(np.random.default_rng(0))
    assert all(np.asarray(a).dtype == np.float64 for a in args)
    if sum(np.asarray(a).size for a in args) <= 200_000:
        out = getattr(matgrad, name)(*args, backend="numpy")
        assert np.all(np.isfinite(out))


# ---------------------------------------------------------------- ModuleBackend
@pytest.fixture
def operations_module() -> Any:
    """A module with the required operations (NumPy's) and no value methods."""
    mod = types.ModuleType("mgtest_ops")
    calls: list[tuple[str, int]] = []

    def wrap(name: str) -> Any:
        def fn(*args: Any) -> Any:
            *arrays, token = args  # launch_args() adds one trailing argument
            calls.append((name, token))
            return getattr(_NUMPY, name)(*arrays)

        return fn

    for m in METHODS.values():
        if m.required:
            setattr(mod, m.name, wrap(m.name))
    mod.calls = calls  # type: ignore[attr-defined]
    sys.modules[mod.__name__] = mod
    yield mod
    del sys.modules[mod.__name__]


class _Delegating(matgrad.ModuleBackend):
    name = "mgtest-delegating"
    operation_modules = ("mgtest_ops",)
    launched = 0

    def before_launch(self) -> None:
        self.launched += 1

    def launch_args(self) -> tuple[Any, ...]:
        return (7,)


def test_module_backend_delegates_every_method(operations_module: Any) -> None:
    b = _Delegating()
    A = np.eye(3) + np.random.default_rng(5).standard_normal((2, 3, 3)) / 4
    np.testing.assert_array_equal(b.det_grad(A), _NUMPY.det_grad(A))
    # a value method that no module defines: the gradient + host values
    det, C = b.det_value_grad(A)
    np.testing.assert_allclose(det, np.linalg.det(A), rtol=1e-14)
    np.testing.assert_array_equal(C, _NUMPY.det_grad(A))
    sign, logabs, G = b.logdet_value_grad(A)
    np.testing.assert_allclose(sign * np.exp(logabs), np.linalg.det(A), rtol=1e-14)
    np.testing.assert_array_equal(G, _NUMPY.logdet_grad(A))
    assert operations_module.calls == [("det_grad", 7), ("det_grad", 7), ("logdet_grad", 7)]
    assert b.launched == 3
    # the public functions accept it as any backend
    out = matgrad.det_grad(A, return_value=True, backend=b)
    np.testing.assert_allclose(out[0], np.linalg.det(A), rtol=1e-14)


def test_module_backend_without_a_required_function_says_so(operations_module: Any) -> None:
    del operations_module.charpoly_deriv
    with pytest.raises(NotImplementedError, match="no function charpoly_deriv in mgtest_ops"):
        _Delegating().charpoly_deriv(np.eye(2)[None], np.zeros((1, 1)))


def test_module_backend_waits_for_a_module_another_thread_is_importing(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two threads making their first call at once: the second finds the
    operations module in ``sys.modules`` while the first is still executing
    it, and must wait for the import instead of seeing no function."""
    import threading

    (tmp_path / "mgtest_slow_ops.py").write_text(
        "import time\n"
        "time.sleep(0.5)  # still running when the second thread looks\n"
        "import matgrad\n"
        "_numpy = matgrad.load_backend('numpy')\n"
        "def det_grad(A):\n"
        "    return _numpy.det_grad(A)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "mgtest_slow_ops", raising=False)

    class Slow(matgrad.ModuleBackend):
        name = "mgtest-slow"
        operation_modules = ("mgtest_slow_ops",)

    A = np.eye(3)[None] * 2.0
    results: list[Any] = []

    def call() -> None:
        try:
            results.append(Slow().det_grad(A))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            results.append(exc)

    first = threading.Thread(target=call)
    first.start()
    while "mgtest_slow_ops" not in sys.modules:  # the first thread is importing it
        pass
    second = threading.Thread(target=call)
    second.start()
    first.join(30)
    second.join(30)
    monkeypatch.delitem(sys.modules, "mgtest_slow_ops", raising=False)
    assert len(results) == 2
    for r in results:
        assert isinstance(r, np.ndarray), r
        np.testing.assert_array_equal(r, _NUMPY.det_grad(A))


def test_a_backend_missing_a_method_cannot_be_instantiated() -> None:
    class Partial(matgrad.Backend):
        name = "partial"

        def frobenius_grad(self, X: Any) -> Any:
            return X

    with pytest.raises(TypeError, match="abstract"):
        Partial()  # type: ignore[abstract]
