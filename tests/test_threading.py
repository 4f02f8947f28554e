"""The Numba backend's threads: safe whichever matgrad call comes first.

The kernels run in the calling thread or on matgrad's own worker threads
(``matgrad_numba._runtime``), never on Numba's process-wide threading layer.
Each scenario runs in a fresh interpreter (``sys.executable -c``) with a
timeout, so a crash or a hang fails the test instead of the suite: make a
matgrad call first, check that no Numba threading layer was started, then
``os.fork()`` and call again in the child (exit status 0 expected), then run
a call in a fork-based ``multiprocessing.Pool``; one scenario forks while
another thread is inside a parallel launch.  Kernels come from Numba's
on-disk cache after the first run, so each process takes ~1-3 s.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import matgrad

pytestmark = [
    pytest.mark.skipif(
        not any(b.name == "numba" and b.available for b in matgrad.list_backends()),
        reason="numba backend unavailable",
    ),
    pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only"),
]


# The scenario driver: argv[1] is the scenario, argv[2:] the operations.
DRIVER = r'''
import io, json, os, sys, threading, time, contextlib
import numpy as np
import matgrad

def run(op):
    rng = np.random.default_rng(7)
    if op == "frobenius_grad":
        return matgrad.frobenius_grad(rng.standard_normal((3, 6, 5)), backend="numba")
    if op == "bilinear_grad":
        return matgrad.bilinear_grad(rng.standard_normal((3, 4)), rng.standard_normal((3, 5)),
                                     backend="numba")
    if op.startswith("det_grad_"):
        n = int(op.rsplit("_", 1)[1])
        return matgrad.det_grad(rng.standard_normal((3, n, n)), backend="numba")
    if op == "logdet_grad":
        return matgrad.logdet_grad(rng.standard_normal((3, 6, 6)), backend="numba")
    if op == "charpoly_deriv":
        return matgrad.charpoly_deriv(rng.standard_normal((3, 5, 5)), rng.standard_normal(3),
                                      backend="numba")
    if op == "charpoly":
        return matgrad.charpoly(rng.standard_normal((3, 5, 5)), 0.5, backend="numba")
    raise ValueError(op)

def flat(r):
    return [np.asarray(a).tolist() for a in (r if isinstance(r, tuple) else (r,))]

def layer():
    import numba
    try:
        return numba.threading_layer()
    except ValueError:
        return None

def version():
    from matgrad_numba import NumbaBackend
    return NumbaBackend().version

def cli():
    from matgrad._cli import main
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        main(["backends"])
    return [line for line in buf.getvalue().splitlines() if line.startswith("numba")][0]

def fork_and_pool(ops):
    """Exit status of a forked child that calls every op, and whether a
    fork-based Pool ran one; a hang is turned into a failure by deadlines."""
    pid = os.fork()
    if pid == 0:
        try:
            for op in ops:
                run(op)
        except BaseException:
            os._exit(3)
        os._exit(0)
    deadline = time.monotonic() + 120
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            child = os.waitstatus_to_exitcode(status)
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            child = "hung"
            break
        time.sleep(0.01)
    import multiprocessing
    with multiprocessing.get_context("fork").Pool(2) as pool:
        got = pool.apply_async(run, (ops[0],)).get(timeout=120)
    pooled = flat(got) == flat(run(ops[0]))
    return child, pooled

scenario, ops = sys.argv[1], sys.argv[2:]
out = {}
matgrad.config.numba_parallel_min_work = 1  # every launch of these small calls is split
if scenario == "cli":
    out["cli_before"] = cli()
if scenario == "user-first":
    import numba
    @numba.njit(parallel=True)
    def user_kernel(n):
        s = 0.0
        for i in numba.prange(n):
            s += i
        return s
    user_kernel(1000)
    out["user_layer"] = layer()
if scenario == "fork-during":
    # a thread keeps parallel launches running while the main thread forks
    stop = threading.Event()
    def busy():
        A = np.random.default_rng(1).standard_normal((20000, 6, 6))
        while not stop.is_set():
            matgrad.det_grad(A, backend="numba")
    t = threading.Thread(target=busy)
    run(ops[0])
    t.start()
    time.sleep(0.2)
    out["child"], out["pooled"] = fork_and_pool(ops)
    stop.set()
    t.join(120)
elif scenario == "concurrent":
    barrier = threading.Barrier(len(ops))
    results, errors = {}, []
    def work(op):
        try:
            barrier.wait()
            for _ in range(3):
                results[op] = flat(run(op))
        except BaseException as exc:
            errors.append(repr(exc))
    threads = [threading.Thread(target=work, args=(op,)) for op in ops]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    out["errors"] = errors + [op for op in ops if op not in results]
    out["same"] = all(results.get(op) == flat(run(op)) for op in ops)
else:
    for op in ops:
        run(op)
out["layer"] = layer()
out["version"] = version()
if scenario == "cli":
    out["cli_after"] = cli()
if scenario not in ("user-first", "fork-during"):
    out["child"], out["pooled"] = fork_and_pool(ops)
print(json.dumps(out))
'''


def _scenario(scenario: str, *ops: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    full = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    full.pop("MATGRAD_BACKEND", None)
    full.update(env or {})
    # generous: an empty Numba cache compiles every kernel first
    r = subprocess.run([sys.executable, "-c", DRIVER, scenario, *ops], capture_output=True,
                       text=True, timeout=600, env=full)
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(r.stdout.strip().splitlines()[-1])
    return result


def _assert_fork_safe(out: dict[str, Any]) -> None:
    assert out["child"] == 0, f"forked child: {out['child']}"
    assert out["pooled"], "fork-based Pool gave a different result"


FIRST_CALLS = [
    "frobenius_grad", "bilinear_grad", "det_grad_3", "det_grad_8", "det_grad_64",
    "logdet_grad", "charpoly_deriv", "charpoly",
]


@pytest.mark.parametrize("op", FIRST_CALLS)
def test_first_call_starts_no_layer_then_fork_and_pool_work(op: str) -> None:
    out = _scenario("first", op)
    assert out["layer"] is None  # Numba's threading layer left to the user
    _assert_fork_safe(out)


def test_four_threads_calling_first_concurrently() -> None:
    out = _scenario("concurrent", "frobenius_grad", "det_grad_8", "charpoly_deriv",
                    "bilinear_grad")
    assert out["errors"] == []
    assert out["same"]
    assert out["layer"] is None
    _assert_fork_safe(out)


def test_fork_while_another_thread_is_in_a_parallel_launch() -> None:
    # the child has none of the parent's worker threads: its first parallel
    # launch starts its own pool instead of waiting on threads that do not exist
    out = _scenario("fork-during", "det_grad_8", "frobenius_grad", "charpoly_deriv")
    _assert_fork_safe(out)


def test_matgrad_backends_reports_the_threads() -> None:
    out = _scenario("cli", "det_grad_3")
    threads = matgrad.config.numba_threads
    for line in (out["cli_before"], out["cli_after"]):
        assert f"{threads} threads (matgrad's pool" in line, line
    assert f"{threads} threads" in out["version"]


def test_a_layer_started_by_user_code_is_kept() -> None:
    out = _scenario("user-first", "frobenius_grad", "det_grad_8")
    assert out["user_layer"] is not None
    assert out["layer"] == out["user_layer"]  # not replaced, not re-initialised


def _jitted(fn: ast.FunctionDef) -> bool:
    for d in fn.decorator_list:
        target = d.func if isinstance(d, ast.Call) else d
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        if name in ("njit", "jit", "device", "vectorize", "guvectorize"):
            return True
    return False


def test_every_kernel_launch_goes_through_launch() -> None:
    """Static guard: Python-level code of the Numba backend never calls a
    jitted function directly (its own kernels, or the algorithms of
    ``matgrad.kernels.scalar`` that ``compile_scalar`` compiles and the
    kernels call); kernels are passed to ``_runtime.launch``."""
    from matgrad.kernels.scalar import ALGORITHMS

    root = Path(__file__).parent.parent / "backends" / "matgrad_numba"
    trees = {p.name: ast.parse(p.read_text()) for p in sorted(root.glob("*.py"))}
    kernels = {
        node.name
        for tree in trees.values()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and _jitted(node)
    }
    assert {"_partials", "_write", "lu_kernel", "hyman"} <= kernels
    kernels |= set(ALGORITHMS)
    offenders = []
    for name, tree in trees.items():
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef) or _jitted(fn):
                continue
            for call in ast.walk(fn):
                if not isinstance(call, ast.Call):
                    continue
                f = call.func
                callee = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                if callee in kernels:
                    offenders.append(f"{name}:{call.lineno} {fn.name} calls {callee}")
    assert offenders == []
