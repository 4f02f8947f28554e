"""How the Numba backend runs its kernels: serially, or on matgrad's own threads.

Every kernel is a serial ``@njit(nogil=True, cache=True)`` function over a
range of work items (matrices, (matrix, point) pairs, (row, chunk) pieces),
with the range as its last two arguments: ``kernel(*args, lo, hi)``.
:func:`launch` runs it over ``[0, count)``:

* in the calling thread, as one range, when the call's estimated work is
  below ``matgrad.config.numba_parallel_min_work`` or one thread is allowed:
  a small input pays no thread start-up or hand-off (a parallel region costs
  tens of microseconds, more than a small call's whole work);
* otherwise split into contiguous ranges that the calling thread and
  ``matgrad.config.numba_threads − 1`` worker threads take one at a time
  until none is left.  The kernels release the GIL, so the threads run at
  once.

Why not Numba's ``parallel=True``: a parfor kernel compiles about 0.9 s more
per kernel and dtype than the same loop written serially (the parfor passes
and the gufunc wrapper), it always pays a parallel region, even for one 2×2
matrix, and it runs on Numba's process-wide threading layer, whose choice
(TBB, GNU OpenMP, workqueue) decides whether forked children survive and
whether two threads may launch kernels at once.  matgrad's threads are plain
Python threads: nothing process-wide is configured, a forked child starts
its own pool on its first call (the parent's threads do not exist there),
and any number of threads may call matgrad at once, each launch with its own
ranges.  Every work item is computed from its own data alone, so results do
not depend on the split or on the thread count.

A kernel is compiled (or loaded from the on-disk cache) in the calling
thread before any range runs on a worker (:func:`_compile.prepare`), so the
compiler never runs on a background thread.

The pool holds at most ``numba_threads − 1`` threads, started as launches
need them.  When ``numba_threads`` changes (assignment, ``override``,
``reset``), the pool is shut down and its threads joined before the setting
returns; the next parallel launch starts a pool of the new size.
:func:`recording` shows how many threads each launch of the calling thread
ran on (tests check that a setting is really read).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import itertools
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

from matgrad import config

from . import _compile

__all__ = ["RANGES_PER_THREAD", "describe", "launch", "pool_threads", "recording", "threads"]

#: Ranges per thread of a parallel launch: a few, so that a thread that
#: finishes early (a slot taking a slower path) takes over remaining work.
RANGES_PER_THREAD = 4

_lock = threading.Lock()
_pool: dict[str, Any] = {"pid": None, "executor": None, "workers": 0}


def _reset_in_child() -> None:
    # The parent's worker threads do not exist in a forked child, and a lock
    # held by one of them at fork() would stay held: start afresh.
    global _lock
    _lock = threading.Lock()
    _pool.update(pid=None, executor=None, workers=0)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_in_child)


def threads() -> int:
    """Threads a parallel launch uses: ``matgrad.config.numba_threads``."""
    return int(config.numba_threads)


def _executor(workers: int) -> concurrent.futures.ThreadPoolExecutor:
    """The process's worker pool with ``workers`` threads (rebuilt after a
    fork, or when the configured thread count changed)."""
    old = None
    with _lock:
        ex = _pool["executor"]
        if ex is None or _pool["pid"] != os.getpid() or _pool["workers"] != workers:
            old = ex if _pool["pid"] == os.getpid() else None
            ex = concurrent.futures.ThreadPoolExecutor(workers,
                                                       thread_name_prefix="matgrad-numba")
            _pool.update(pid=os.getpid(), executor=ex, workers=workers)
    if old is not None:
        old.shutdown(wait=False)  # its threads end once idle
    return ex  # type: ignore[no-any-return]


def _drop_pool(name: str) -> None:
    """``matgrad.config`` listener: when ``numba_threads`` changed, shut the
    pool down and join its threads, so that a smaller count leaves no
    surplus threads behind (a pool of the new size starts on the next
    parallel launch).  A launch still running on the old pool finishes its
    ranges first: shutdown runs the work already submitted."""
    if name != "numba_threads":
        return
    with _lock:
        ex = _pool["executor"] if _pool["pid"] == os.getpid() else None
        if ex is None or _pool["workers"] == threads() - 1:
            return
        _pool.update(executor=None, workers=0)
    ex.shutdown(wait=True)


config.on_change(_drop_pool)


def pool_threads() -> int:
    """Worker threads of the pool now alive (the calling thread not
    counted): at most ``matgrad.config.numba_threads − 1``."""
    with _lock:
        ex = _pool["executor"] if _pool["pid"] == os.getpid() else None
    if ex is None:
        return 0
    return sum(t.is_alive() for t in list(getattr(ex, "_threads", ())))


_record = threading.local()


@contextlib.contextmanager
def recording() -> Iterator[list[int]]:
    """Collect, for the launches the calling thread makes inside the block,
    the number of threads each ran on (1: the calling thread alone)."""
    outer = getattr(_record, "log", None)
    log: list[int] = []
    _record.log = log
    try:
        yield log
    finally:
        _record.log = outer
        if outer is not None:
            outer.extend(log)


def _run_ranges(fn: Callable[..., Any], args: tuple[Any, ...], bounds: list[int],
                taken: Any) -> None:
    """Take ranges ``[bounds[i], bounds[i+1])`` one at a time until none is
    left (``taken`` is a shared counter: ``next`` on it is atomic)."""
    last = len(bounds) - 1
    while True:
        i = next(taken)
        if i >= last:
            return
        fn(*args, bounds[i], bounds[i + 1])


def launch(fn: Callable[..., Any], count: int, work: float, *args: Any) -> None:
    """Run kernel ``fn(*args, lo, hi)`` over items ``[0, count)``: the one
    entry point for every kernel call of this backend.

    ``work`` estimates the call's cost in element operations (for example
    ``count·n³`` for an elimination), compared with
    ``matgrad.config.numba_parallel_min_work`` to choose between the calling
    thread alone and the pool.  First checks that the kernel is compiled or
    cached for these arguments (else defers the call, or announces and does
    the compile, in this thread: see ``_compile.prepare``)."""
    args = _compile.prepare(fn, (*args, 0, 0))[:-2]
    n_threads = min(threads(), count)
    log = getattr(_record, "log", None)
    if n_threads <= 1 or work < config.numba_parallel_min_work:
        if log is not None:
            log.append(1)
        if count > 0:
            fn(*args, 0, count)
        return
    if log is not None:
        log.append(n_threads)
    parts = min(count, n_threads * RANGES_PER_THREAD)
    bounds = [count * i // parts for i in range(parts + 1)]
    taken = itertools.count()
    pool = _executor(threads() - 1)
    futures = [pool.submit(_run_ranges, fn, args, bounds, taken)
               for _ in range(n_threads - 1)]
    try:
        _run_ranges(fn, args, bounds, taken)
    finally:
        # every range has been taken once this thread finds none left; wait
        # for the workers' last ones (and re-raise what they raised)
        for f in futures:
            f.result()


def describe() -> str:
    """How parallel launches run, for ``matgrad backends``."""
    return (f"{threads()} threads (matgrad's pool; serial below "
            f"{config.numba_parallel_min_work} work units)")
