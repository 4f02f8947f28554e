"""The short way through for a repeated call (matgrad/_fastpath.py).

A repeat call on a NumPy array whose operation, dtype, shape, layout and
backend selection were seen before runs the remembered backend method
directly.  These tests hold it to the full way's answers and rules:
bit-identical results, the selection read at every call (``backend=``,
``use_backend``, ``set_backend``, ``$MATGRAD_BACKEND``), routes dropped on
``refresh_backends`` and on a config change, never remembered after a
deferral, and the call budget of a repeat call.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import matgrad
from matgrad import _fastpath

OPS = ["det_grad", "logdet_grad", "frobenius_grad"]
#: Python-level calls one repeat call may make, all included (front end,
#: backend, kernel launch).  The full way made about 100-170.
CALL_BUDGET = 50


@pytest.fixture(autouse=True)
def _fresh_routes() -> Iterator[None]:
    _fastpath._routes.clear()
    yield
    _fastpath._routes.clear()


def _warm(fn: Callable[..., Any], x: np.ndarray) -> None:
    """Compile (or load) the kernels the default selection's backend runs on
    ``x``: with a cold Numba cache a small call under ``auto`` defers to
    NumPy, and a deferred call is never remembered."""
    name = matgrad.get_backend(like=x).name
    fn(x, backend=name)
    fn(x, backend=name, return_value=True)


def python_calls(fn: Callable[[], Any]) -> int:
    """Python function calls made by ``fn()`` (C functions not counted)."""
    count = 0

    def profile(frame: Any, event: str, arg: Any) -> None:
        nonlocal count
        if event == "call":
            count += 1

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return count - 1  # the lambda itself


def _inputs() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    A = rng.standard_normal((5, 4, 4))
    return [
        rng.standard_normal((3, 3)),
        A,
        A.astype(np.float32),
        A + 1j * rng.standard_normal(A.shape),
        np.swapaxes(A, -1, -2),                     # not C-contiguous: a copy
        A[:, ::2, ::2],                              # strided view
        np.array([[1.0, 2.0], [2.0, 4.0]]),         # singular
        np.array([[np.nan, 1.0], [1.0, 1.0]]),      # NaN slot
    ]


@pytest.mark.parametrize("op", OPS)
def test_repeat_calls_are_bit_identical_and_inputs_untouched(op: str) -> None:
    fn = getattr(matgrad, op)
    for x in _inputs():
        before = x.copy()
        first = fn(x)
        for _ in range(3):
            again = fn(x)
            assert again.dtype == first.dtype and again.shape == x.shape
            assert again.tobytes() == first.tobytes()  # bit for bit, signs of zero included
            assert not np.may_share_memory(again, x) and again.flags.writeable
        np.testing.assert_array_equal(x, before)
        assert x.flags.writeable or not before.flags.writeable


def _flat(result: Any) -> list[np.ndarray]:
    """The arrays of a result: G, (v, G), ((sign, logabs), G)."""
    if isinstance(result, tuple):
        return [a for part in result for a in _flat(part)]
    return [np.asarray(result)]


@pytest.mark.parametrize("op", OPS)
def test_repeat_calls_with_values_are_bit_identical(op: str) -> None:
    fn = getattr(matgrad, op)
    for x in _inputs():
        first = fn(x, return_value=True)
        for _ in range(3):
            again = fn(x, return_value=True)
            assert type(again) is type(first) and len(again) == len(first)
            for a, b in zip(_flat(again), _flat(first), strict=True):
                assert type(a) is type(b) and a.shape == b.shape and a.dtype == b.dtype
                assert a.tobytes() == b.tobytes()
        # the value parts of one matrix are 0-d arrays, as on the full way
        assert all(a.shape == x.shape[:-2] for a in _flat(first)[:-1])


@pytest.mark.parametrize("op", OPS)
def test_a_repeat_call_stays_within_its_budget(op: str) -> None:
    fn = getattr(matgrad, op)
    A = np.random.default_rng(0).standard_normal((3, 3))
    _warm(fn, A)
    fn(A)
    fn(A)
    calls = python_calls(lambda: fn(A))
    assert calls <= CALL_BUDGET, f"{op}: {calls} Python calls for a repeat 3x3 call"
    fn(A, return_value=True)
    fn(A, return_value=True)
    calls = python_calls(lambda: fn(A, return_value=True))
    assert calls <= CALL_BUDGET, f"{op}: {calls} calls for a repeat return_value=True call"
    # the first call of a new shape takes the full way (more calls)
    assert python_calls(lambda: fn(np.eye(5) * 2)) > CALL_BUDGET


def _spy(monkeypatch: pytest.MonkeyPatch, name: str, op: str) -> list[int]:
    """Count the calls of backend ``name``'s method ``op`` (an instance
    attribute, which the full way and a remembered route both look up)."""
    backend = matgrad.load_backend(name)
    real = getattr(backend, op)
    calls: list[int] = []

    def spy(*args: Any) -> Any:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(backend, op, spy, raising=False)
    return calls


def test_the_selection_is_read_at_every_call(monkeypatch: pytest.MonkeyPatch) -> None:
    A = np.random.default_rng(1).standard_normal((3, 3))
    _warm(matgrad.det_grad, A)
    numpy_calls = _spy(monkeypatch, "numpy", "det_grad")
    auto = matgrad.get_backend(like=A).name
    matgrad.det_grad(A)
    matgrad.det_grad(A)  # remembered for the default selection
    expected = 2 if auto == "numpy" else 0
    assert len(numpy_calls) == expected
    with matgrad.use_backend("numpy"):
        matgrad.det_grad(A)
        matgrad.det_grad(A)
    assert len(numpy_calls) == expected + 2
    matgrad.det_grad(A, backend="numpy")
    assert len(numpy_calls) == expected + 3
    matgrad.det_grad(A, backend="numpy")  # a named backend has its own routes
    assert len(numpy_calls) == expected + 4
    expected += 1
    monkeypatch.setenv("MATGRAD_BACKEND", "numpy")
    matgrad.det_grad(A)
    matgrad.det_grad(A)
    assert len(numpy_calls) == expected + 5
    monkeypatch.delenv("MATGRAD_BACKEND")
    matgrad.set_backend("numpy")
    try:
        matgrad.det_grad(A)
        matgrad.det_grad(A)
    finally:
        matgrad.set_backend(None)
    assert len(numpy_calls) == expected + 7
    matgrad.det_grad(A)  # back to the default's route
    assert len(numpy_calls) == expected + 7 + (1 if auto == "numpy" else 0)


def test_a_method_replaced_later_is_the_one_that_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """A route names the backend, not a method captured once: patching the
    backend's class after the route exists still takes effect."""
    A = np.random.default_rng(7).standard_normal((3, 3))
    with matgrad.use_backend("numpy"):  # a backend that never defers
        matgrad.det_grad(A)
        matgrad.det_grad(A)
        backend = matgrad.load_backend("numpy")
        real = type(backend).det_grad
        seen: list[int] = []

        def patched(self: Any, *args: Any) -> Any:
            seen.append(1)
            return real(self, *args)

        monkeypatch.setattr(type(backend), "det_grad", patched)
        matgrad.det_grad(A)
    assert seen == [1]


def test_refresh_and_config_changes_drop_the_routes(monkeypatch: pytest.MonkeyPatch) -> None:
    A = np.random.default_rng(2).standard_normal((4, 4))
    _warm(matgrad.frobenius_grad, A)
    matgrad.frobenius_grad(A)
    matgrad.frobenius_grad(A)
    assert _fastpath._routes
    with matgrad.config.override(frobenius_chunk=8):
        assert not _fastpath._routes  # a threshold changed: every route is dropped
        matgrad.frobenius_grad(A)
    matgrad.frobenius_grad(A)
    matgrad.refresh_backends()
    # new backend instances: the old route lapses, the new instance runs
    name = matgrad.get_backend(like=A).name
    calls = _spy(monkeypatch, name, "frobenius_grad")
    matgrad.frobenius_grad(A)
    matgrad.frobenius_grad(A)
    assert len(calls) == 2


def test_a_deferred_call_is_not_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where ``auto``'s backend defers (a cold kernel), the fallback ran:
    the next call asks the chosen backend again, so that it runs once its
    kernel is ready."""
    A = np.random.default_rng(4).standard_normal((3, 3))
    chosen = matgrad.load_backend(matgrad.get_backend(like=A).name)
    if chosen.name == "numpy":
        pytest.skip("no backend above numpy to defer")
    asked: list[int] = []

    def cold(*args: Any) -> Any:
        asked.append(1)
        if matgrad.Backend.may_defer():
            raise matgrad.Defer("kernel not compiled (test)")
        raise AssertionError("only deferrable calls expected")

    monkeypatch.setattr(chosen, "det_grad", cold, raising=False)
    numpy_calls = _spy(monkeypatch, "numpy", "det_grad")
    for _ in range(3):
        matgrad.det_grad(A)
    assert len(asked) == 3 and len(numpy_calls) == 3
    assert not _fastpath._routes


def test_debug_logging_reports_every_call(caplog: pytest.LogCaptureFixture) -> None:
    A = np.random.default_rng(5).standard_normal((3, 3))
    matgrad.det_grad(A)
    matgrad.det_grad(A)
    with caplog.at_level(logging.DEBUG, logger="matgrad"):
        matgrad.det_grad(A)
    assert any("ran det_grad" in r.getMessage() for r in caplog.records)


def test_bad_input_is_still_refused_after_a_route_exists() -> None:
    A = np.random.default_rng(6).standard_normal((3, 3))
    matgrad.det_grad(A)
    matgrad.det_grad(A)
    with pytest.raises(ValueError, match="square"):
        matgrad.det_grad(A[:, :2])
    with pytest.raises(TypeError):
        matgrad.det_grad(A.astype(object))
    with pytest.raises((TypeError, ValueError)):
        matgrad.det_grad(A, return_value="yes")  # type: ignore[call-overload]
