"""Property-based tests (hypothesis) over shapes, dtypes and scales.

Inputs are drawn as (seed, shape, dtype, scale) and generated with NumPy, and
every result is scored against the exact / 60-digit references with the
backward-stability bounds of docs/numerics.md.  ``deadline=None``: a JIT backend
compiles on its first call.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import matgrad
from matgrad import _reference as ref

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
DTYPES = [np.float32, np.float64, np.complex64, np.complex128]

seeds = st.integers(0, 2**32 - 1)
dtypes = st.sampled_from(DTYPES)


def _draw(seed: int, shape: tuple[int, ...], dtype: Any, exp: int) -> np.ndarray:
    r = np.random.default_rng(seed)
    X = r.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        X = X + 1j * r.standard_normal(shape)
    return (X * 10.0**exp).astype(dtype)


def _exp_range(dtype: Any, n: int) -> st.SearchStrategy[int]:
    # keep entries representable; results may still over/underflow legitimately
    return st.integers(-30, 30) if np.dtype(dtype).itemsize in (4, 8) and np.dtype(
        dtype
    ) in (np.float32, np.complex64) else st.integers(-300 // max(n, 1), 300 // max(n, 1))


@SETTINGS
@given(seed=seeds, batch=st.lists(st.integers(1, 3), max_size=2),
       m=st.integers(1, 6), n=st.integers(1, 6), dtype=dtypes, data=st.data())
def test_frobenius_property(backend: str, seed: int, batch: list[int], m: int, n: int,
                            dtype: Any, data: st.DataObject) -> None:
    exp = data.draw(st.integers(-300, 300) if dtype in (np.float64, np.complex128)
                    else st.integers(-30, 30))
    X = _draw(seed, (*batch, m, n), dtype, exp)
    G = np.asarray(matgrad.frobenius_grad(X, backend=backend))
    assert G.dtype == X.dtype and G.shape == X.shape
    for idx in np.ndindex(*batch):
        assert ref.frobenius_error_ratio(G[idx], X[idx]).ratio <= 1


@SETTINGS
@given(seed=seeds, n=st.integers(1, 6), rank_drop=st.integers(0, 3))
def test_det_grad_integer_matrices_exact(backend: str, seed: int, n: int,
                                         rank_drop: int) -> None:
    r = np.random.default_rng(seed)
    k = max(n - rank_drop, 0)
    A = (r.integers(-3, 4, (n, k)) @ r.integers(-3, 4, (k, n))).astype(float)
    C = np.asarray(matgrad.det_grad(A, backend=backend))
    assert ref.det_grad_error_ratio(C, A).ratio <= 1


@SETTINGS
@given(seed=seeds, n=st.integers(1, 7), dtype=dtypes, data=st.data())
def test_det_grad_property(backend: str, seed: int, n: int, dtype: Any,
                           data: st.DataObject) -> None:
    A = _draw(seed, (n, n), dtype, data.draw(_exp_range(dtype, n)))
    C = np.asarray(matgrad.det_grad(A, backend=backend))
    assert C.dtype == A.dtype
    assert ref.det_grad_error_ratio(C, A).ratio <= 1


@SETTINGS
@given(seed=seeds, n=st.integers(1, 6), dtype=dtypes, data=st.data())
def test_logdet_grad_property(backend: str, seed: int, n: int, dtype: Any,
                              data: st.DataObject) -> None:
    A = _draw(seed, (n, n), np.complex128 if np.dtype(dtype).kind == "c" else np.float64, 0)
    A = (A + 2 * np.sqrt(n) * np.eye(n)) * 10.0 ** data.draw(_exp_range(dtype, 1))
    A = A.astype(dtype)
    G = np.asarray(matgrad.logdet_grad(A, backend=backend))
    assert ref.logdet_grad_error_ratio(G, A).ratio <= 1


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(seed=seeds, n=st.integers(1, 6), dtype=dtypes, k=st.integers(1, 3), data=st.data())
def test_charpoly_property(backend: str, seed: int, n: int, dtype: Any, k: int,
                           data: st.DataObject) -> None:
    exp = data.draw(_exp_range(dtype, n))
    A = _draw(seed, (n, n), dtype, exp)
    x = _draw(seed + 1, (k,), dtype, exp)
    p, dp = matgrad.charpoly_deriv(A, x, return_value=True, backend=backend)
    p, dp = np.asarray(p), np.asarray(dp)
    assert p.dtype == dp.dtype == np.result_type(A, x)
    for i in range(k):
        assert ref.charpoly_error_ratio(p[i], dp[i], A, x[i]).ratio <= 1


@SETTINGS
@given(seed=seeds, bx=st.lists(st.integers(1, 3), max_size=2),
       m=st.integers(0, 5), n=st.integers(0, 5), dx=dtypes, dy=dtypes)
def test_bilinear_property(backend: str, seed: int, bx: list[int], m: int, n: int,
                           dx: Any, dy: Any) -> None:
    x = _draw(seed, (*bx, m), dx, 0)
    y = _draw(seed + 1, (n,), dy, 0)
    G = np.asarray(matgrad.bilinear_grad(x, y, backend=backend))
    assert G.shape == (*bx, m, n) and G.dtype == np.result_type(x, y)
    wide = np.complex128 if G.dtype.kind == "c" else np.float64
    expect = x.astype(wide)[..., :, None] * y.astype(wide)[None, :]
    np.testing.assert_allclose(G, expect, rtol=2 * np.finfo(G.dtype).eps, atol=0)
