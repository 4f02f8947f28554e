"""Numba backend specifics: its own threads, concurrent calls, fork safety."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import matgrad

pytestmark = pytest.mark.skipif(
    not any(b.name == "numba" and b.available for b in matgrad.list_backends()),
    reason="numba backend unavailable",
)


def _work(seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((500, 5, 5))
    return (
        matgrad.det_grad(A, backend="numba"),
        matgrad.frobenius_grad(A, backend="numba"),
        matgrad.charpoly_deriv(A, 0.5, backend="numba"),
    )


def test_matgrad_starts_no_numba_threading_layer() -> None:
    """The kernels run on matgrad's own threads: Numba's process-wide
    threading layer (TBB/OpenMP/workqueue) stays unchosen, so user code can
    still choose it."""
    code = ("import numpy as np, numba, matgrad\n"
            "A = np.random.default_rng(0).standard_normal((2000, 5, 5))\n"
            "matgrad.det_grad(A, backend='numba'); matgrad.frobenius_grad(A, backend='numba')\n"
            "matgrad.charpoly_deriv(A, 0.5, backend='numba')\n"
            "try:\n    print(numba.threading_layer())\nexcept ValueError:\n    print('none')\n")
    r = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == "none"


@pytest.mark.parametrize("threads", [1, 2, 3, 7])
def test_results_do_not_depend_on_threads_or_split(threads: int) -> None:
    """Bit-identical results whether a call runs in the calling thread or is
    split over any number of threads (every work item is computed from its
    own data alone)."""
    rng = np.random.default_rng(3)
    A = rng.standard_normal((301, 5, 5))
    A3 = rng.standard_normal((301, 3, 3)) * np.exp(rng.uniform(-400, 400, (301, 1, 1)))
    X = rng.standard_normal((7, 300, 70))  # rows of 21 000: two Frobenius chunks each
    Z = (X + 1j * X[:, ::-1]) * np.exp(rng.uniform(-360, 360, X.shape))
    Z[0, 0, :5] = [np.inf, np.nan, complex(np.inf, 1.0), complex(0.0, -np.inf), -0.0]
    with np.errstate(all="ignore"):
        Z = Z.astype(np.complex64) if threads % 2 else Z
    calls = {
        "det": lambda: matgrad.det_grad(A, backend="numba", return_value=True),
        "det3": lambda: matgrad.det_grad(A3, backend="numba", return_value=True),
        "logdet": lambda: matgrad.logdet_grad(A, backend="numba", return_value=True),
        "frobenius": lambda: matgrad.frobenius_grad(X, backend="numba", return_value=True),
        "bilinear": lambda: matgrad.bilinear_grad(X[:, 0], X[:, 1], backend="numba"),
        # complex products past the largest float, inf and NaN parts: NumPy's
        # multiply (small calls) and the kernel must agree bit for bit
        "bilinear complex": lambda: matgrad.bilinear_grad(Z[:, 0], Z[:, 1], backend="numba"),
        "charpoly": lambda: matgrad.charpoly_deriv(A, rng.standard_normal((301, 1)),
                                                   backend="numba"),
    }
    rng = np.random.default_rng(4)
    with np.errstate(all="ignore"):
        serial = {k: f() for k, f in calls.items()}
    rng = np.random.default_rng(4)
    # (frobenius_chunk stays: it sets the summation order, which the thread
    # count and the split do not)
    with matgrad.config.override(numba_threads=threads, numba_parallel_min_work=1), \
            np.errstate(all="ignore"):
        split = {k: f() for k, f in calls.items()}
    for k in calls:
        got = split[k] if isinstance(split[k], tuple) else (split[k],)
        exp = serial[k] if isinstance(serial[k], tuple) else (serial[k],)
        for g, e in zip(got, exp, strict=True):
            np.testing.assert_array_equal(g, e, err_msg=k)


def test_concurrent_calls_from_threads() -> None:
    expected = [_work(s) for s in range(4)]
    results: dict[int, tuple[np.ndarray, ...]] = {}
    barrier = threading.Barrier(4)

    def run(seed: int) -> None:
        barrier.wait()
        for _ in range(5):
            results[seed] = _work(seed)

    threads = [threading.Thread(target=run, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in range(4):
        for got, exp in zip(results[s], expected[s], strict=True):
            np.testing.assert_array_equal(got, exp)


def _child(q: multiprocessing.Queue[object]) -> None:
    q.put(np.asarray(_work(1)[0]).sum())


@pytest.mark.skipif(sys.platform == "win32", reason="fork is POSIX-only")
def test_fork_after_parallel_kernel() -> None:
    _work(1)  # the parent has run parallel kernels
    ctx = multiprocessing.get_context("fork")
    q: multiprocessing.Queue[object] = ctx.Queue()
    p = ctx.Process(target=_child, args=(q,))
    p.start()
    value = q.get(timeout=120)
    p.join(timeout=120)
    assert p.exitcode == 0
    assert value == np.asarray(_work(1)[0]).sum()


def test_first_call_in_fresh_process_works() -> None:
    """A cold process (cache may be empty) computes correctly."""
    code = (
        "import numpy as np, matgrad;"
        "print(matgrad.det_grad(np.array([[1.,2.],[2.,4.]]), backend='numba').tolist())"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=600, env=dict(os.environ))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[[4.0, -2.0], [-2.0, 1.0]]"


def _frobenius_classes(rng: np.random.Generator, dtype: type) -> np.ndarray:
    """Rows of every class the Frobenius routing tells apart: ordinary,
    huge (sum of squares overflows), tiny and subnormal (sum below the fast
    path), zero with signed zeros, one NaN, one inf, inf and NaN together."""
    m, n = 5, 7
    base = rng.standard_normal((12, m, n))
    scales = [1.0, 1e200, 1e-200, 5e-320, 1e300, 1e-160, 1.0, 1.0, 1.0, 1.0, 1e150, 3e-310]
    X = base * np.array(scales)[:, None, None]
    X[6] = 0.0
    X[6, 0, ::2] = -0.0
    X[7, 1, 2] = np.nan
    X[8, 3, 3] = np.inf
    X[9, 0, 0], X[9, 4, 6] = -np.inf, np.nan
    if np.dtype(dtype).kind == "c":
        X = X + 1j * rng.standard_normal(X.shape) * np.array(scales)[:, None, None]
    with np.errstate(over="ignore", under="ignore"):
        return X.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128, np.complex64])
def test_frobenius_one_pass_rows_match_the_two_pass_path(dtype: type) -> None:
    """Rows that fit one chunk take the one-kernel path; it must give the
    bits of the two passes (``routing``) that longer rows take, on every
    class of row, so a matrix's result does not depend on its length."""
    from matgrad_numba import _frobenius

    from matgrad.kernels import routing

    X = _frobenius_classes(np.random.default_rng(11), dtype)
    value, G = _frobenius.frobenius_norm_grad(X)
    v2, G2 = routing.frobenius_norm_grad(X, _frobenius._reduce, _frobenius._write_rows)
    np.testing.assert_array_equal(value, v2)
    np.testing.assert_array_equal(G, G2)
    assert (np.signbit(G.view(G.real.dtype)) == np.signbit(G2.view(G2.real.dtype))).all()
    with matgrad.config.override(numba_threads=2, numba_parallel_min_work=1):
        v3, G3 = _frobenius.frobenius_norm_grad(X)
    np.testing.assert_array_equal(v3, v2)
    np.testing.assert_array_equal(G3, G2)


def _alive_pool_threads() -> int:
    return sum(t.name.startswith("matgrad-numba") for t in threading.enumerate())


def test_changing_the_thread_count_ends_the_surplus_threads() -> None:
    """A large count starts that many workers (at most count − 1, as work
    needs them); lowering it, override's restore and reset() join them
    before returning, and each launch runs on the configured count."""
    from matgrad_numba import _runtime

    A = np.random.default_rng(6).standard_normal((4000, 6, 6))
    ref = matgrad.det_grad(A, backend="numba")
    matgrad.config.reset()
    # the default count may have a pool already (kept: its size is right)
    assert _runtime.pool_threads() == _alive_pool_threads() < matgrad.config.numba_threads
    others = threading.active_count() - _alive_pool_threads()
    many = matgrad._config.max_threads()
    try:
        matgrad.config.numba_parallel_min_work = 1
        matgrad.config.numba_threads = many
        with _runtime.recording() as used:
            np.testing.assert_array_equal(matgrad.det_grad(A, backend="numba"), ref)
        assert used == [many]
        assert 1 <= _runtime.pool_threads() == _alive_pool_threads() <= many - 1
        matgrad.config.numba_threads = 2
        assert _runtime.pool_threads() == _alive_pool_threads() == 0  # joined at once
        with _runtime.recording() as used:
            np.testing.assert_array_equal(matgrad.det_grad(A, backend="numba"), ref)
        assert used == [2] and _alive_pool_threads() <= 1
        with matgrad.config.override(numba_threads=many):
            matgrad.det_grad(A, backend="numba")
            assert _alive_pool_threads() >= 1
        assert _alive_pool_threads() == 0  # override's restore shrinks too
        matgrad.config.numba_threads = many
        matgrad.det_grad(A, backend="numba")
        assert _alive_pool_threads() >= 1
    finally:
        matgrad.config.reset()
    assert _runtime.pool_threads() == _alive_pool_threads() == 0
    assert threading.active_count() == others


def test_one_configured_thread_runs_in_the_calling_thread() -> None:
    """``numba_threads = 1`` is read by every launch: no pool, no split."""
    from matgrad_numba import _runtime

    A = np.random.default_rng(7).standard_normal((300, 6, 6))
    with matgrad.config.override(numba_threads=1, numba_parallel_min_work=1), \
            _runtime.recording() as used:
        matgrad.det_grad(A, backend="numba")
        matgrad.frobenius_grad(A, backend="numba")
        matgrad.charpoly_deriv(A, 0.5, backend="numba")
    assert used and set(used) == {1}
    with matgrad.config.override(numba_threads=3, numba_parallel_min_work=1), \
            _runtime.recording() as used:
        matgrad.det_grad(A, backend="numba")
    assert used == [3]
