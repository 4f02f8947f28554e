"""First use of the Numba backend: deferral to NumPy, compile warnings,
``matgrad warmup`` and the on-disk cache.

Anything that depends on the cache being empty or warm runs in a fresh
subprocess with its own temporary ``NUMBA_CACHE_DIR``.  Evidence is
timing-free: Numba's dispatcher statistics (cache hits and misses) and the
overloads compiled in the process.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import matgrad
from matgrad import _select, _warmup
from matgrad._cli import main

NUMBA = any(b.name == "numba" and b.available for b in matgrad.list_backends())
needs_numba = pytest.mark.skipif(not NUMBA, reason="numba backend unavailable")

# Imported by every child: counts what Numba compiled or loaded in the process.
_PRELUDE = textwrap.dedent("""
    import json, logging, sys, time, warnings
    import numpy as np
    import matgrad

    class _Ran(logging.Handler):
        def __init__(self):
            super().__init__(logging.DEBUG)
            self.records = []
        def emit(self, record):
            self.records.append(record.getMessage())

    RAN = _Ran()
    logging.getLogger("matgrad").addHandler(RAN)
    logging.getLogger("matgrad").setLevel(logging.DEBUG)

    def compiled():
        from matgrad_numba import _compile
        d = _compile.dispatchers()
        return {
            "misses": sum(sum(f.stats.cache_misses.values()) for f in d),
            "hits": sum(sum(f.stats.cache_hits.values()) for f in d),
            "overloads": sum(len(f.overloads) for f in d),
        }

    def ran():
        return [m.split("'")[1] for m in RAN.records if " ran " in m]

    def sample(dtype, *shape):
        rng = np.random.default_rng(0)
        a = rng.standard_normal(shape)
        if np.dtype(dtype).kind == "c":
            a = a + 1j * rng.standard_normal(shape)
        return a.astype(dtype)
""")


def _child(code: str, cache: Path, timeout: float = 900) -> dict[str, Any]:
    """Run ``code`` after the prelude in a fresh interpreter with
    ``NUMBA_CACHE_DIR=cache``; it prints one JSON object last."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    env.pop("MATGRAD_BACKEND", None)
    r = subprocess.run([sys.executable, "-c", _PRELUDE + textwrap.dedent(code)],
                       capture_output=True, text=True, timeout=timeout, env=env)
    assert r.returncode == 0, r.stderr[-4000:]
    out: dict[str, Any] = json.loads(r.stdout.strip().splitlines()[-1])
    out["stderr"] = r.stderr
    return out


# ------------------------------------------------------------ core protocol
@needs_numba
def test_fallback_only_when_auto_picked_the_backend() -> None:
    chosen, fallback = _select.resolve_call(None, "numpy")  # auto
    assert (chosen.name, getattr(fallback, "name", None)) == ("numba", "numpy")
    chosen, fallback = _select.resolve_call("auto", "numpy")
    assert (chosen.name, getattr(fallback, "name", None)) == ("numba", "numpy")
    for named in ("numba", "numpy", "numba,numpy", "numpy,auto", "numba,auto"):
        assert _select.resolve_call(named, "numpy")[1] is None, named
    assert _select.resolve_call(matgrad.load_backend("numba"), "numpy")[1] is None
    with matgrad.use_backend("numba"):
        assert _select.resolve_call(None, "numpy")[1] is None


@needs_numba
def test_deferred_call_runs_on_the_fallback_and_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import matgrad_numba

    seen: list[bool] = []

    def bilinear(self: matgrad.Backend, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        seen.append(self.may_defer())
        if self.may_defer():
            raise matgrad.Defer("not ready")
        return np.full((x.shape[0], x.shape[1], y.shape[1]), 7.0)

    monkeypatch.setattr(matgrad_numba.NumbaBackend, "bilinear_grad", bilinear)
    x, y = np.arange(3.0), np.arange(2.0)
    with caplog.at_level(logging.DEBUG, logger="matgrad"):
        got = matgrad.bilinear_grad(x, y)
    np.testing.assert_array_equal(got, np.outer(x, y))  # NumPy ran it
    assert "backend 'numba' deferred bilinear_grad to 'numpy': not ready" in caplog.text
    assert "backend 'numpy' ran bilinear_grad" in caplog.text
    # named explicitly: numba must run it, so it may not defer
    assert (matgrad.bilinear_grad(x, y, backend="numba") == 7.0).all()
    assert seen == [True, False]
    assert not matgrad.Backend.may_defer()  # reset after the call


# ------------------------------------------------------- empty-cache behaviour
@needs_numba
def test_small_first_calls_under_auto_compile_nothing(tmp_path: Path) -> None:
    """Empty cache: the first call of every public function on a small input
    runs the NumPy backend's code (bit for bit) and compiles nothing."""
    out = _child("""
        times = {}
        for dt in ("float64", "float32", "complex128"):
            cases = {
                "frobenius_grad": lambda: (sample(dt, 10, 8, 8),),
                "bilinear_grad": lambda: (sample(dt, 10, 8), sample(dt, 10, 8)),
                "det_grad n=3": lambda: (sample(dt, 10, 3, 3),),
                "det_grad": lambda: (sample(dt, 10, 8, 8),),
                "logdet_grad": lambda: (sample(dt, 10, 8, 8),),
                "charpoly_deriv": lambda: (sample(dt, 10, 1, 8, 8), sample(dt, 10, 5)),
                "charpoly": lambda: (sample(dt, 10, 1, 8, 8), sample(dt, 10, 5)),
            }
            for label, make in cases.items():
                fn = getattr(matgrad, label.split()[0])
                args = make()
                t0 = time.perf_counter()
                got = fn(*args)
                times[f"{label} {dt}"] = time.perf_counter() - t0
                want = fn(*args, backend="numpy")
                for g, w in zip(got if isinstance(got, tuple) else (got,),
                                want if isinstance(want, tuple) else (want,)):
                    assert np.array_equal(g, w, equal_nan=True), label
            A = sample(dt, 10, 8, 8)
            for fn in (matgrad.det_grad, matgrad.logdet_grad, matgrad.frobenius_grad):
                fn(A, return_value=True)
        print(json.dumps({"times": times, "ran": sorted(set(ran())), **compiled()}))
    """, tmp_path)
    assert out["overloads"] == 0 and out["misses"] == 0, out
    # a small real bilinear_grad runs on Numba's backend without a kernel
    # (NumPy's multiply, the same bits); everything else deferred to NumPy
    assert out["ran"] in (["numpy"], ["numba", "numpy"])
    assert "CompileWarning" not in out["stderr"]


@needs_numba
def test_explicit_numba_compiles_and_warns_once(tmp_path: Path) -> None:
    out = _child("""
        x, y = sample("complex128", 4, 3), sample("complex128", 4, 2)  # complex: the kernel
        with warnings.catch_warnings(record=True) as w1:
            warnings.simplefilter("always")
            matgrad.bilinear_grad(x, y, backend="numba")
        with warnings.catch_warnings(record=True) as w2:
            warnings.simplefilter("always")
            matgrad.bilinear_grad(x, y, backend="numba")
        first = [str(w.message) for w in w1 if w.category is matgrad.CompileWarning]
        files = [w.filename for w in w1 if w.category is matgrad.CompileWarning]
        print(json.dumps({"first": first, "files": files, "again": len(w2),
                          "ran": ran(), **compiled()}))
    """, tmp_path)
    assert len(out["first"]) == 1 and out["again"] == 0, out
    assert "bilinear_grad" in out["first"][0] and "matgrad warmup" in out["first"][0]
    assert out["files"] == ["<string>"]  # points at the caller's line
    assert out["misses"] >= 1 and out["ran"] == ["numba", "numba"]


@needs_numba
def test_large_call_compiles_with_one_silenceable_warning(tmp_path: Path) -> None:
    """Above the size threshold ``auto`` compiles: one CompileWarning per call
    however many kernels compile, none once compiled."""
    out = _child("""
        matgrad.config.numba_defer_max_elements = 10  # every input below is 'large'
        X = sample("float64", 3, 4, 5)
        with warnings.catch_warnings(record=True) as w1:
            warnings.simplefilter("always")
            matgrad.frobenius_grad(X)
        with warnings.catch_warnings(record=True) as w2:
            warnings.simplefilter("always")
            matgrad.frobenius_grad(X)
        warnings.filterwarnings("ignore", category=matgrad.CompileWarning)
        with warnings.catch_warnings(record=True) as w3:
            matgrad.frobenius_grad(sample("float32", 3, 4, 5))  # compiles, silenced
        msgs = [str(w.message) for w in w1 if w.category is matgrad.CompileWarning]
        print(json.dumps({"msgs": msgs, "again": len(w2), "silenced": len(w3),
                          "ran": ran(), **compiled()}))
    """, tmp_path)
    assert len(out["msgs"]) == 1, out
    assert "expect about" in out["msgs"][0] and "frobenius_grad" in out["msgs"][0]
    assert out["again"] == 0 and out["silenced"] == 0
    assert out["ran"] == ["numba"] * 3 and out["misses"] >= 2


@needs_numba
def test_second_process_compiles_nothing(tmp_path: Path) -> None:
    """Kernels stay in the on-disk cache: a second process with the same cache
    loads them (cache hits), compiles nothing, and ``auto`` runs Numba even on
    small inputs; read-only and writable inputs share one signature.  This
    covers the kernels that call the algorithms ``compile_scalar("cpu")``
    builds (closed form, Gauss-Jordan, Hyman): they are module-level kernels
    with those algorithms as globals, so their cache key is the same in every
    process."""
    calls = """
        X = sample("float64", 3, 4, 5)
        x, y = sample("complex64", 4, 3), sample("complex64", 4, 2)
        matgrad.frobenius_grad(X, backend=BACKEND)  # _rows
        with matgrad.config.override(frobenius_chunk=8):  # rows of 20: _partials, _write
            matgrad.frobenius_grad(X, backend=BACKEND)
        matgrad.bilinear_grad(x, y, backend=BACKEND)  # complex: the kernel, even small
        matgrad.det_grad(sample("float64", 3, 3, 3), backend=BACKEND)  # closed_form
        matgrad.det_grad(sample("float64", 3, 6, 6), backend=BACKEND)  # lu_kernel
        matgrad.charpoly_deriv(sample("float64", 3, 1, 6, 6), sample("float64", 3, 2),
                               backend=BACKEND)  # hessenberg, hyman
    """
    algorithms = """
        from matgrad.kernels.scalar import ALGORITHMS, compile_scalar
        S = compile_scalar("cpu")
        algorithms = sum(len(getattr(S, name).overloads) for name in ALGORITHMS)
    """
    first = _child("\n        BACKEND = 'numba'" + calls + algorithms + """
        print(json.dumps({"algorithms": algorithms, **compiled()}))
    """, tmp_path)
    assert first["misses"] >= 7
    assert first["algorithms"] > 0  # the Gauss-Jordan steps compiled beside lu_kernel
    second = _child("\n        BACKEND = None" + calls + algorithms + """
        from matgrad_numba import _cofactor, _compile, _frobenius
        Xr = np.asfortranarray(sample("float64", 3, 4, 5))  # copied: writable
        matgrad.frobenius_grad(Xr)
        matgrad.frobenius_grad(np.broadcast_to(X, X.shape))  # read-only
        probe = {f.__name__: _compile.in_disk_cache(f, next(iter(f.overloads)))
                 for f in (_frobenius._rows, _frobenius._partials, _cofactor.lu_kernel)}
        print(json.dumps({"ran": ran(), "probe": probe, "algorithms": algorithms,
                          **compiled()}))
    """, tmp_path)
    assert second["misses"] == 0 and second["hits"] >= 7, second
    assert second["algorithms"] == 0  # none compiled: all in the cached kernels
    assert second["ran"] == ["numba"] * 8
    assert second["probe"] == {"_rows": True, "_partials": True, "lu_kernel": True}


@needs_numba
@pytest.mark.slow
def test_warmup_compiles_every_kernel(tmp_path: Path) -> None:
    """After ``matgrad warmup --dtypes float64``, a new process compiles
    nothing for any public function on float64 (any path, values included)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    r = subprocess.run([sys.executable, "-m", "matgrad", "warmup", "--dtypes", "float64"],
                       capture_output=True, text=True, timeout=1800, env=env)
    assert r.returncode == 0, r.stderr[-4000:]
    assert "steps done for float64" in r.stdout
    out = _child("""
        rng = np.random.default_rng(1)
        for n in (2, 3, 4, 8, 20):
            A = rng.standard_normal((30, n, n))
            matgrad.det_grad(A); matgrad.logdet_grad(A); matgrad.frobenius_grad(A)
            matgrad.det_grad(A, return_value=True)
            matgrad.logdet_grad(A, return_value=True)
            matgrad.frobenius_grad(A, return_value=True)
            matgrad.charpoly_deriv(A[:, None], rng.standard_normal((30, 3)))
            matgrad.charpoly(A, 0.5)
        matgrad.bilinear_grad(rng.standard_normal((5, 3)), rng.standard_normal((5, 4)))
        print(json.dumps({"ran": sorted(set(ran())), **compiled()}))
    """, tmp_path)
    assert out["misses"] == 0 and out["hits"] > 0, out
    assert out["ran"] == ["numba"]


# ------------------------------------------------------ damaged cache files
_DAMAGED_CALLS = """
    A = np.array([[[2.0, -1.0, 3.0], [4.0, 5.0, -6.0], [7.0, 8.0, 10.0]]])
    from matgrad._reference import ref_cofactor
    want = [[float(v) for v in row] for row in ref_cofactor(A[0])]  # exact integers
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        small = matgrad.det_grad(A)[0].tolist()  # auto: may defer to NumPy
        got = matgrad.det_grad(A, backend="numba")[0].tolist()  # closed_form
        again = matgrad.det_grad(A, backend="numba")[0].tolist()
    print(json.dumps({"small": small, "got": got, "again": again, "want": want,
                      "warnings": [str(x.message) for x in w], **compiled()}))
"""


@pytest.fixture(scope="module")
def cached_closed_form(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Numba cache holding the closed-form det_grad kernel for float64."""
    cache = tmp_path_factory.mktemp("numba-cache")
    out = _child(_DAMAGED_CALLS, cache)
    assert out["got"] == out["want"] and out["misses"] >= 1, out
    return cache


def _damage(cache: Path, how: str) -> Path:
    index = next(cache.rglob("_cofactor.closed_form-*.nbi"))
    data = next(cache.rglob("_cofactor.closed_form-*.nbc"))
    target = data if how.endswith("data") else index
    raw = target.read_bytes()
    target.write_bytes({"truncated index": raw[: len(raw) // 2],
                        "index cut after its version": raw[:20],
                        "empty index": b"",
                        "garbage index": b"\x80\x04not a pickle at all" * 3,
                        "truncated data": raw[: len(raw) // 2]}[how])
    return target


@needs_numba
@pytest.mark.parametrize("how", ["truncated index", "index cut after its version",
                                 "empty index", "garbage index", "truncated data"])
def test_damaged_cache_file_is_a_cache_miss(how: str, cached_closed_form: Path,
                                            tmp_path: Path) -> None:
    """A damaged file in Numba's on-disk cache (an index or data file cut
    short by a full disk or a killed process, or overwritten) is a cache
    miss: one warning naming the file, which is removed, the kernel compiled
    again, the right result; the next process finds the rewritten entry."""
    import shutil

    cache = tmp_path / "cache"
    shutil.copytree(cached_closed_form, cache)
    damaged = _damage(cache, how)
    out = _child(_DAMAGED_CALLS, cache)
    assert out["got"] == out["again"] == out["small"] == out["want"], out
    unreadable = [m for m in out["warnings"] if "is unreadable" in m]
    assert len(unreadable) == 1 and str(damaged) in unreadable[0], out["warnings"]
    assert "compiled again" in unreadable[0]
    assert out["misses"] >= 1  # recompiled, not loaded
    healed = _child(_DAMAGED_CALLS, cache)
    assert healed["got"] == healed["want"]
    assert healed["misses"] == 0 and healed["hits"] >= 1, healed
    assert not [m for m in healed["warnings"] if "is unreadable" in m]


# ---------------------------------------------------------------- warmup CLI
def test_parse_dtypes() -> None:
    assert _warmup.parse_dtypes(None) == [np.dtype(d) for d in _warmup.DTYPES]
    assert _warmup.parse_dtypes("float32, float32,complex64") == [
        np.dtype("float32"), np.dtype("complex64")]
    with pytest.raises(ValueError, match="unknown dtype 'int8'"):
        _warmup.parse_dtypes("int8")


def test_warmup_cli_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["warmup", "--dtypes", "float16"]) == 2
    assert "unknown dtype" in capsys.readouterr().err
    assert main(["warmup", "--backend", "nosuch"]) == 2
    assert main(["warmup", "--backend", "numpy"]) == 0  # nothing to compile
    assert "0 of 0 steps done" in capsys.readouterr().out


def test_warmup_runs_tasks_with_plain_progress(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    done: list[str] = []
    numpy_backend = matgrad.load_backend("numpy")

    def tasks(self: matgrad.Backend, dtypes: list[np.dtype[Any]]) -> list[Any]:
        def fail() -> None:
            raise RuntimeError("boom")

        return [(f"step {d}", lambda d=d: done.append(str(d))) for d in dtypes] + [
            ("broken", fail)]

    monkeypatch.setattr(type(numpy_backend), "warmup_tasks", tasks)
    monkeypatch.setitem(sys.modules, "tqdm", None)  # plain lines
    assert main(["warmup", "--backend", "numpy", "--dtypes", "float32,complex128"]) == 1
    captured = capsys.readouterr()
    assert done == ["float32", "complex128"]
    assert "[1/3] step float32" in captured.err and "[3/3] broken" in captured.err
    assert "numpy broken: RuntimeError: boom" in captured.err
    assert "2 of 3 steps done" in captured.out
