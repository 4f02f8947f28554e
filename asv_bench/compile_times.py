"""Compile time of each Numba kernel with an empty cache, per dtype.

Runs ``matgrad warmup --dtypes DTYPE --jobs 1`` in a fresh process with a new
empty ``NUMBA_CACHE_DIR`` for each dtype, and reports the seconds Numba spent
compiling each kernel (top-level compiles, the called algorithms they
compile first included), from Numba's compile events.  The first kernel of a
process also pays about 0.5 s of Numba's own start-up.  docs/numba.md has the
recorded table.  Run: ``python asv_bench/compile_times.py [DTYPE ...]``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

_CHILD = r"""
import contextlib, io, json, sys, time
from collections import defaultdict
from numba.core import event
totals, starts = defaultdict(float), []

class Listener(event.Listener):
    def on_start(self, ev):
        starts.append(time.perf_counter())
    def on_end(self, ev):
        dt = time.perf_counter() - starts.pop()
        if not starts:  # top level: a kernel (its callees included)
            totals[ev.data["dispatcher"].py_func.__name__] += dt

event.register("numba:compile", Listener())
from matgrad._cli import main
t0 = time.perf_counter()
with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
    main(["warmup", "--dtypes", sys.argv[1], "--jobs", "1"])
print(json.dumps({"total": time.perf_counter() - t0, "kernels": totals}))
"""


def main(dtypes: list[str]) -> None:
    for dtype in dtypes:
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache)
            r = subprocess.run([sys.executable, "-c", _CHILD, dtype], capture_output=True,
                               text=True, env=env, check=True)
        out = json.loads(r.stdout.strip().splitlines()[-1])
        kernels = ", ".join(f"{k} {v:.1f} s" for k, v in out["kernels"].items())
        print(f"{dtype}: warm-up {out['total']:.1f} s; {kernels}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["float64", "complex128"])
