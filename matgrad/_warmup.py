"""``matgrad warmup``: compile every backend's kernels ahead of time.

A backend lists its preparation steps through the optional hook
:meth:`matgrad.Backend.warmup_tasks` (none by default); the Numba backend
returns one step per operation path and dtype, each compiling its kernels into
Numba's on-disk cache.  Run it once per environment (for example in a
Dockerfile, see the tuning guide in docs/) so that no call of a later process waits for a
compile.

Steps run in ``jobs`` worker processes at once (default: the CPUs this
process may use), each a fresh interpreter that rebuilds the backend's step
list and runs the steps it is given: Numba's compiler holds a process-wide
lock, so compiling in parallel needs processes, and the on-disk cache is
what the parent and every later process then load.  Steps of one *group*
(a step's optional third element; by default its backend's name) run one
after another in one worker, never at once: two processes writing the
cache index of the same kernel could lose or mix up entries.  With
``jobs=1``, or one group, the steps run in this process.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np

from ._config import available_cpus
from ._registry import entries

__all__ = ["DTYPES", "WarmupResult", "default_jobs", "parse_dtypes", "run_warmup"]

#: Every dtype matgrad computes in (the default of ``--dtypes``).
DTYPES = ("float64", "float32", "complex64", "complex128")


@dataclass(frozen=True)
class WarmupResult:
    """One step: backend, label, seconds taken, and the error if it failed."""

    backend: str
    label: str
    seconds: float
    error: str = ""


def parse_dtypes(text: str | None) -> list[np.dtype[Any]]:
    """``"float64,float32"`` → dtypes; ``None`` or empty → all four."""
    names = [t.strip() for t in (text or "").split(",") if t.strip()] or list(DTYPES)
    out: list[np.dtype[Any]] = []
    for name in names:
        if name not in DTYPES:
            raise ValueError(f"unknown dtype {name!r}; choose from {', '.join(DTYPES)}")
        dt = np.dtype(name)
        if dt not in out:
            out.append(dt)
    return out


def _bar(total: int, stream: TextIO) -> tuple[Callable[[str], None], Callable[[], None]]:
    """(advance(label), close()) of a progress bar: tqdm's if installed, else
    one plain line per finished step."""
    try:
        from tqdm import tqdm
    except ImportError:
        done = [0]

        def advance(label: str) -> None:
            done[0] += 1
            print(f"[{done[0]}/{total}] {label}", file=stream, flush=True)

        return advance, lambda: None
    bar = tqdm(total=total, file=stream, unit="step", desc="matgrad warmup")

    def step(label: str) -> None:
        bar.set_postfix_str(label, refresh=False)
        bar.update(1)

    return step, bar.close


def default_jobs() -> int:
    """Worker processes of a parallel warm-up: the CPUs this process may use."""
    return available_cpus()


@dataclass(frozen=True)
class _Step:
    backend: str
    index: int  # position in the backend's warmup_tasks(dtypes)
    label: str
    group: str
    work: Callable[[], None]


def _steps(names: Sequence[str], dtypes: Sequence[np.dtype[Any]]) -> list[_Step]:
    found = entries()
    steps: list[_Step] = []
    for name in names:
        backend = found[name].backend
        if backend is None:
            continue
        tasks = backend.warmup_tasks(dtypes)
        for i, task in enumerate(tasks):  # i: the position a worker process finds it at
            label, work = task[0], task[1]
            group = str(task[2]) if len(task) > 2 else name
            steps.append(_Step(name, i, label, f"{name}/{group}", work))
    return steps


def _run_here(step: _Step) -> WarmupResult:
    t0 = time.perf_counter()
    error = ""
    try:
        step.work()
    except Exception as exc:  # noqa: BLE001 - reported, the other steps still run
        error = f"{type(exc).__name__}: {exc}"
    return WarmupResult(step.backend, step.label, time.perf_counter() - t0, error)


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # the child imports matgrad and its backends from where this process did
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env


def _run_parallel(steps: list[_Step], dtypes: Sequence[np.dtype[Any]], jobs: int,
                  done: Callable[[WarmupResult], None]) -> None:
    """The steps in ``jobs`` worker processes: each worker takes one whole
    group at a time, the largest groups first, until none is left (workers
    are few because each pays an interpreter start and imports)."""
    groups: dict[str, list[_Step]] = {}
    for st in steps:
        groups.setdefault(st.group, []).append(st)
    todo: queue.Queue[list[_Step]] = queue.Queue()
    for group in sorted(groups.values(), key=len, reverse=True):
        todo.put(group)
    report = threading.Lock()
    names = ",".join(str(d) for d in dtypes)

    def finish(st: _Step, seconds: float, error: str) -> None:
        with report:
            done(WarmupResult(st.backend, st.label, seconds, error))

    def worker() -> None:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from matgrad._warmup import _child; _child()", names],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=_child_env())
        assert proc.stdin is not None and proc.stdout is not None
        try:
            while True:
                try:
                    group = todo.get_nowait()
                except queue.Empty:
                    return
                left = {st.index: st for st in group}
                try:
                    proc.stdin.write(f"{group[0].backend}\t"
                                     f"{','.join(str(st.index) for st in group)}\n")
                    proc.stdin.flush()
                    for line in proc.stdout:  # one JSON line per step, then the end mark
                        msg = json.loads(line)
                        if "end" in msg:
                            break
                        st = left.pop(int(msg["index"]))
                        finish(st, float(msg["seconds"]), str(msg["error"]))
                except (OSError, ValueError, KeyError):
                    pass
                if left:  # the worker died: report what it did not, stop using it
                    for st in left.values():
                        finish(st, 0.0, f"worker process exited with {proc.poll()}")
                    return
        finally:
            with contextlib.suppress(OSError):
                proc.stdin.close()
            proc.wait()

    threads = [threading.Thread(target=worker, daemon=True)
               for _ in range(min(jobs, len(groups)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _child() -> None:
    """Worker: for each line ``backend<TAB>indices`` on stdin, run those
    steps of the backend's list for the dtypes in ``argv[1]``, reporting each
    on stdout as a JSON line, then an end mark."""
    dtypes = parse_dtypes(sys.argv[1])
    lists: dict[str, dict[int, _Step]] = {}
    for line in sys.stdin:
        name, indices = line.rstrip("\n").split("\t")
        if name not in lists:
            lists[name] = {st.index: st for st in _steps([name], dtypes)}
        for i in map(int, indices.split(",")):
            r = _run_here(lists[name][i])
            print(json.dumps({"index": i, "seconds": r.seconds, "error": r.error}), flush=True)
        print(json.dumps({"end": True}), flush=True)


def run_warmup(
    dtypes: Sequence[np.dtype[Any]],
    backends: Sequence[str] | None = None,
    stream: TextIO | None = None,
    jobs: int | None = None,
) -> list[WarmupResult]:
    """Run every warm-up step of the given (default: every available) backends
    for ``dtypes``, in ``jobs`` worker processes (default
    :func:`default_jobs`), with a progress bar on ``stream`` (default
    stderr)."""
    if jobs is not None and jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    stream = sys.stderr if stream is None else stream
    found = entries()
    names = list(backends) if backends else [n for n, e in found.items() if e.available]
    steps = _steps(names, dtypes)
    jobs = default_jobs() if jobs is None else jobs
    if not steps:
        return []
    advance, close = _bar(len(steps), stream)
    results: list[WarmupResult] = []

    def done(r: WarmupResult) -> None:
        results.append(r)
        advance(r.label)

    try:
        if jobs > 1 and len({st.group for st in steps}) > 1:
            _run_parallel(steps, dtypes, jobs, done)
        else:
            for st in steps:
                done(_run_here(st))
    finally:
        close()
    return results
