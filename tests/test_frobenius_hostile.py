"""``frobenius_grad`` on hostile input, as classes of inputs, on every CPU backend.

* Accuracy: entries with exponents anywhere in the format's range (subnormal
  to near overflow), random signs and zeros, real and complex — including
  complex entries whose modulus exceeds the largest float while both parts
  are finite — against an exact reference: every float is an integer
  multiple of 2⁻¹⁰⁷⁴, so ‖X‖² is an exact integer sum and only the final
  square root and quotients are rounded (mpmath, 120 bits).
* Power-of-two scaling is exact: ``f(2ᵏX)`` is bit-identical to ``f(X)`` when
  no part of ``X`` or ``2ᵏX`` is subnormal or overflows.
* A slot's result is bit-identical whatever batch it sits in: hostile
  neighbours (inf, NaN, 1e308, 1e-320, zeros), batch size, thread count,
  Dask chunking of the batch axis.
* A NaN or inf entry makes its whole slot NaN (both parts of a complex
  entry); an all-zero slot gives its zeros back with their signs.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import matgrad

AVAILABLE = {b.name for b in matgrad.list_backends() if b.available}
CPU = [b for b in ("numpy", "numba", "dask") if b in AVAILABLE]
SETTINGS = settings(
    max_examples=60,
    deadline=None,  # a JIT backend compiles on its first call
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
DTYPES = [np.float64, np.complex128, np.float32, np.complex64]
Z = 1.3e308 + 1.3e308j  # |Z| > DBL_MAX, both parts finite


def _real(dtype: Any) -> Any:
    return np.dtype(dtype).type(0).real.dtype


def _parts(a: np.ndarray) -> np.ndarray:
    """The real view of an array (re, im, re, … for complex)."""
    a = np.ascontiguousarray(a)
    return a.reshape(-1).view(_real(a.dtype))


def _bits(a: np.ndarray) -> np.ndarray:
    p = _parts(a)
    return p.view(np.uint64 if p.itemsize == 8 else np.uint32)


def _compute(x: Any) -> np.ndarray:
    return np.asarray(x.compute(scheduler="synchronous") if hasattr(x, "compute") else x)


# ------------------------------------------------------------------ runners
Runner = Callable[[np.ndarray], np.ndarray]


def _on(backend: str) -> Runner:
    def run(X: np.ndarray) -> np.ndarray:
        return np.asarray(matgrad.frobenius_grad(X, backend=backend))

    return run


def _dask(chunks: Any) -> Runner:
    """Dask input with these chunks (an int splits the matrix axes as well:
    the global reduction; (c, m, n) keeps whole matrices: the inner backend)."""

    def run(X: np.ndarray) -> np.ndarray:
        import dask.array as da

        return _compute(matgrad.frobenius_grad(da.from_array(X, chunks=chunks)))

    return run


def _runners() -> dict[str, Runner]:
    out: dict[str, Runner] = {}
    for name in ("numpy", "numba"):
        if name in AVAILABLE:
            out[name] = _on(name)
    if "dask" in AVAILABLE:
        # NumPy input, backend="dask": matrix axes split (the global reduction)
        out["dask-eager"] = _on("dask")
        for ch in (1, 2):
            out[f"dask-chunks{ch}"] = _dask(ch)
    return out


RUNNERS = _runners()


# ---------------------------------------------------------------- reference
def _as_int(v: float) -> int:
    """v as an exact integer multiple of 2⁻¹⁰⁷⁴."""
    num, den = float(v).as_integer_ratio()
    return num * ((1 << 1074) // den)


def _reference(X: np.ndarray) -> list[Any]:
    """Per slot: None when the slot holds a NaN/inf (all NaN expected), else
    the exact X/‖X‖ of its real parts as mpf values."""
    out: list[Any] = []
    mpmath.mp.prec = 120
    for slot in X.reshape(X.shape[0], -1):
        p = _parts(slot).astype(np.float64)
        if not np.isfinite(p).all():
            out.append(None)
            continue
        ints = [_as_int(v) for v in p]
        S = sum(i * i for i in ints)
        if S == 0:
            out.append([mpmath.mpf(float(v)) for v in p])  # X itself, signed zeros
            continue
        norm = mpmath.sqrt(mpmath.mpf(S))
        out.append([mpmath.mpf(i) / norm for i in ints])
    return out


def _check_against_reference(G: np.ndarray, X: np.ndarray, label: str) -> None:
    assert G.shape == X.shape and G.dtype == X.dtype, label
    rdt = _real(X.dtype)
    eps = float(np.finfo(rdt).eps)
    tiny = float(np.finfo(rdt).smallest_subnormal)
    ulps = 1.0 if rdt == np.float32 else 8.0  # float32: computed in float64, rounded once
    for b, ref in enumerate(_reference(X)):
        got = _parts(G[b]).astype(np.float64)
        if ref is None:
            assert np.isnan(got).all(), f"{label}: slot {b} should be all NaN: {G[b]}"
            continue
        for j, (g, r) in enumerate(zip(got, ref, strict=True)):
            err = abs(mpmath.mpf(float(g)) - r)
            tol = ulps * eps * abs(r) + 2 * tiny
            assert err <= tol, f"{label}: slot {b} part {j}: got {g!r}, exact {r}, X={X[b]}"
            if r == 0:  # an exact zero keeps the sign of its entry
                want = math.copysign(1.0, float(_parts(X[b])[j]))
                assert math.copysign(1.0, float(g)) == want, f"{label}: sign of zero, {X[b]}"


# ------------------------------------------------------------- strategies
@st.composite
def _values(draw: st.DrawFn, dtype: Any, n: int) -> np.ndarray:
    """n hostile values of a real dtype: exponents from subnormal to the top,
    clustered (spread 0, 4 or 60 binades) or spread over the full range."""
    f32 = _real(dtype) == np.float32
    emin, emax, mbits = (-149, 127, 23) if f32 else (-1074, 1023, 52)
    base = draw(st.integers(emin, emax))
    spread = draw(st.sampled_from([0, 4, 60, emax - emin]))
    out = []
    for _ in range(n):
        kind = draw(st.sampled_from(["x"] * 6 + ["0"]))
        sign = -1.0 if draw(st.booleans()) else 1.0
        if kind == "0":
            out.append(sign * 0.0)
            continue
        e = min(emax, max(emin, base + draw(st.integers(-spread, spread))))
        m = draw(st.integers(0, 2**mbits - 1))
        mant = np.array(1 + m / 2.0**mbits, dtype=_real(dtype))
        out.append(sign * float(np.ldexp(mant, e)))
    return np.array(out, dtype=_real(dtype))


@st.composite
def _matrices(draw: st.DrawFn, dtype: Any, max_b: int = 3) -> np.ndarray:
    B = draw(st.integers(1, max_b))
    m = draw(st.integers(1, 3))
    n = draw(st.integers(1, 3))
    k = B * m * n
    if np.dtype(dtype).kind == "c":
        vals = draw(_values(dtype, 2 * k)).view(dtype)
    else:
        vals = draw(_values(dtype, k))
    return np.ascontiguousarray(vals.reshape(B, m, n))


# ------------------------------------------------------------------- tests
@SETTINGS
@given(data=st.data(), dtype=st.sampled_from(DTYPES))
def test_hostile_entries_against_exact_reference(data: st.DataObject, dtype: Any) -> None:
    X = data.draw(_matrices(dtype))
    # now and then a NaN or inf entry in one slot: that slot becomes all NaN
    poison = data.draw(st.sampled_from([None, None, None, np.nan, np.inf, -np.inf]))
    if poison is not None:
        b = data.draw(st.integers(0, X.shape[0] - 1))
        X[b, 0, 0] = poison
    for name, run in RUNNERS.items():
        _check_against_reference(run(X), X, name)


@SETTINGS
@given(data=st.data(), dtype=st.sampled_from(DTYPES))
def test_power_of_two_scaling_is_bit_exact(data: st.DataObject, dtype: Any) -> None:
    X = data.draw(_matrices(dtype))
    p = np.abs(_parts(X))
    nz = p[p > 0]
    assume(nz.size > 0)
    info = np.finfo(_real(dtype))
    e_lo = int(np.frexp(nz.min())[1]) - 1  # nz.min() ≥ 2^e_lo
    e_hi = int(np.frexp(nz.max())[1])  # nz.max() < 2^e_hi
    assume(nz.min() >= info.tiny)  # no subnormal part in X
    lo = int(np.frexp(info.tiny)[1]) - 1 - e_lo  # keeps 2^k·min ≥ tiny
    hi = info.maxexp - e_hi  # keeps 2^k·max < 2^maxexp
    assume(lo <= hi)
    k = data.draw(st.integers(lo, hi))
    Y = np.empty_like(X)
    if X.dtype.kind == "c":
        Y.real = np.ldexp(X.real, k)
        Y.imag = np.ldexp(X.imag, k)
    else:
        Y[...] = np.ldexp(X, k)
    assert np.array_equal(np.ldexp(_parts(Y), -k), _parts(X))  # exact
    for name, run in RUNNERS.items():
        gx, gy = run(X), run(Y)
        assert np.array_equal(_bits(gx), _bits(gy)), f"{name}: k={k}\nX={X}\n{gx}\n{gy}"


NEIGHBOURS: dict[str, Callable[[tuple[int, ...], Any], np.ndarray]] = {
    "inf": lambda s, dt: np.full(s, np.inf, dt),
    "nan": lambda s, dt: np.where(np.arange(np.prod(s)).reshape(s) == 0, np.nan, 1.0).astype(dt),
    "1e308": lambda s, dt: np.full(s, 1e308, np.float64).astype(dt),
    "1e-320": lambda s, dt: np.full(s, 1e-320, np.float64).astype(dt),
    "zeros": lambda s, dt: np.zeros(s, dt),
    "-0.0": lambda s, dt: np.full(s, -0.0, dt),
    "Z": lambda s, dt: np.full(s, Z if np.dtype(dt).kind == "c" else 1.7e308).astype(dt),
    "mixed": lambda s, dt: np.resize(np.array([1e300, -1e-300, 0.0, 3.0]), s).astype(dt),
}


@pytest.mark.parametrize("chunk", [None, 3], ids=["default-chunk", "numba-chunk3"])
@settings(SETTINGS, max_examples=40)
@given(data=st.data(), dtype=st.sampled_from(DTYPES))
def test_slot_result_does_not_depend_on_its_batch(
    monkeypatch: pytest.MonkeyPatch, chunk: int | None, data: st.DataObject, dtype: Any
) -> None:
    if chunk is not None and "numba" in AVAILABLE:
        # several chunks per tiny matrix
        monkeypatch.setattr(matgrad.config, "frobenius_chunk", chunk)
    X = data.draw(_matrices(dtype, max_b=2))
    slots = [X[i] for i in range(X.shape[0])]
    for name in data.draw(st.lists(st.sampled_from(sorted(NEIGHBOURS)), max_size=4)):
        pos = data.draw(st.integers(0, len(slots)))
        with np.errstate(over="ignore"):
            slots.insert(pos, NEIGHBOURS[name](X.shape[1:], dtype))
    A = np.ascontiguousarray(np.stack(slots))
    runners = dict(RUNNERS)
    if "dask" in AVAILABLE:
        m, n = A.shape[1:]
        for bc in (1, 2, 3):
            runners[f"dask-batch{bc}"] = _dask((bc, m, n))
            # matrix axes split too: the global reduction, still per slot
            runners[f"dask-batch{bc}-split"] = _dask((bc, 1, 2))
    if "numba" in AVAILABLE:
        from matgrad_numba import _runtime

        def threads(count: int) -> Callable[[np.ndarray], np.ndarray]:
            # matgrad.config.numba_threads is what the backend reads (not
            # Numba's own setting); every launch split, whatever its size
            def run(X: np.ndarray) -> np.ndarray:
                with matgrad.config.override(numba_threads=count, numba_parallel_min_work=1), \
                        _runtime.recording() as used:
                    G = np.asarray(matgrad.frobenius_grad(X, backend="numba"))
                # each launch: min(count, its work items), and there are at
                # least as many items as matrices
                assert used and max(used) <= count, used
                assert X.shape[0] < count or max(used) == count, used
                return G

            return run

        runners["numba-1-thread"] = threads(1)
        runners["numba-3-threads"] = threads(3)
    for name, run in runners.items():
        whole = run(A)
        for i in range(A.shape[0]):
            alone = run(A[i : i + 1])[0]
            assert np.array_equal(_bits(whole[i]), _bits(alone)), (
                f"{name}: slot {i} differs in its batch\n{A}\n{whole[i]}\n{alone}")
    if "numba" in AVAILABLE:
        assert np.array_equal(_bits(runners["numba"](A)), _bits(runners["numba-1-thread"](A)))
        assert np.array_equal(_bits(runners["numba"](A)), _bits(runners["numba-3-threads"](A)))


# ------------------------------------------------------- named regressions
CASES = {
    "|z| > DBL_MAX": (np.array([[Z]]), np.array([[(1 + 1j) / math.sqrt(2)]])),
    "|z| > DBL_MAX mixed": (
        np.array([[Z, 1], [1e-300j, 0]]),
        np.array([[(1 + 1j) / math.sqrt(2), 1 / 1.3e308 / math.sqrt(2)], [0, 0]]),
    ),
    "complex64 3e38+3e38j": (
        np.full((2, 2), 3e38 + 3e38j, np.complex64),
        np.full((2, 2), (1 + 1j) / math.sqrt(8), np.complex64),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("runner", sorted(RUNNERS))
def test_named_hostile_cases(case: str, runner: str) -> None:
    X, want = CASES[case]
    G = RUNNERS[runner](X)
    assert G.dtype == X.dtype
    eps = float(np.finfo(_real(X.dtype)).eps)
    np.testing.assert_allclose(G, want, rtol=4 * eps, atol=1e-320)
    _check_against_reference(G[None], X[None], f"{runner}: {case}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("runner", sorted(RUNNERS))
def test_zero_nan_inf_slots(runner: str, dtype: Any) -> None:
    run = RUNNERS[runner]
    neg = np.full((1, 2, 2), -0.0, dtype)
    if np.dtype(dtype).kind == "c":
        neg.imag = -0.0  # both parts −0.0
    G = run(neg)
    assert np.array_equal(_bits(G), _bits(neg)), G  # −0.0 stays −0.0, part by part
    for bad in (np.inf, -np.inf, np.nan):
        X = np.ones((2, 2, 3), dtype)
        X[1, 1, 2] = bad
        G = run(X)
        assert np.isnan(_parts(G[1])).all(), (bad, G[1])  # every part NaN
        np.testing.assert_array_equal(G[0], run(X[:1])[0])


def test_cupy_kernels_on_the_cuda_simulator() -> None:
    """The CuPy backend's Frobenius orchestration and kernels on Numba's CUDA
    simulator (in a subprocess: the simulator is chosen when Numba loads),
    on the named cases, against the NumPy backend (a few ulp)."""
    pytest.importorskip("numba")
    code = r"""
import math, warnings
import numpy as np
warnings.simplefilter("ignore")
import matgrad
import matgrad_cupy._kernels as K
from matgrad_cupy._ops import Device, frobenius_grad
K.TPB = 8  # few simulated threads per block: fast
dev = Device(np, None, chunk=4)  # several chunks per matrix
Z = 1.3e308 + 1.3e308j
cases = [np.array([[[Z]]]), np.array([[[Z, 1], [1e-300j, 0]]]),
         np.full((2, 2, 2), 3e38 + 3e38j, np.complex64), np.full((1, 3, 2), -0.0),
         np.full((1, 2, 2), complex(-0.0, -0.0)),
         np.array([[[np.inf, 1.0, 2.0]], [[1.0, np.nan, 2.0]], [[1e-320, 0.0, -1e-321]]]),
         np.random.default_rng(0).standard_normal((3, 5, 4)) * 1e300,
         np.random.default_rng(1).standard_normal((2, 3, 4)).astype(np.float32)]
for X in cases:
    G = frobenius_grad(X, dev)
    R = matgrad.frobenius_grad(X, backend="numpy")
    assert G.dtype == X.dtype
    eps = np.finfo(G.real.dtype).eps
    np.testing.assert_allclose(G, R, rtol=4 * eps, atol=1e-320)
    assert (np.isnan(G) == np.isnan(R)).all()
    assert (np.signbit(G.real) == np.signbit(R.real)).all(), (G, R)
    for b in range(X.shape[0]):  # per slot, whatever the batch
        one = frobenius_grad(X[b : b + 1], dev)[0]
        assert np.array_equal(one, G[b], equal_nan=True)
print("ok")
"""
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=600, env=env, cwd=Path(__file__).parent.parent)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert r.stdout.strip().endswith("ok")
