"""The first call of a fresh process with an empty Numba cache.

Compile time is what a new environment, container or CI job pays before its
first answer; it regresses silently when a kernel grows, so it is tracked
here like speed.  Each timed call starts a new interpreter with its own empty
``NUMBA_CACHE_DIR`` and times one call inside it:

* ``numba``: the backend named explicitly, so its kernel compiles (the
  number is the compile time of that operation's kernels, float64);
* ``auto``: the default selection, under which a small call with a cold
  kernel runs on NumPy and compiles nothing (docs/numba.md); the number
  stays well under a second unless that rule breaks.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

from .common import require

_CHILD = """
import json, sys, time, warnings
import numpy as np
import matgrad
warnings.simplefilter("ignore")
op, backend, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = np.random.default_rng(0)
A = rng.standard_normal((10, n, n))
args = {
    "frobenius_grad": (A,),
    "bilinear_grad": (A[:, 0], A[:, 1]),
    "det_grad": (A,),
    "logdet_grad": (A,),
    "charpoly_deriv": (A[:, None], rng.standard_normal((10, 5))),
}[op]
kw = {} if backend == "auto" else {"backend": backend}
t0 = time.perf_counter()
getattr(matgrad, op)(*args, **kw)
print(json.dumps(time.perf_counter() - t0))
"""

#: (operation, n): det_grad takes a closed form for n <= 3, another kernel above
CASES = ["frobenius_grad 8", "bilinear_grad 8", "det_grad 3", "det_grad 8",
         "logdet_grad 8", "charpoly_deriv 8"]


def first_call(case: str, backend: str) -> float:
    """Run the first call in a fresh process; its seconds as timed inside."""
    op, n = case.split()
    cache = tempfile.mkdtemp(prefix="matgrad-first-call-")
    try:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        env.pop("MATGRAD_BACKEND", None)
        r = subprocess.run([sys.executable, "-c", _CHILD, op, backend, n],
                           capture_output=True, text=True, env=env, timeout=600,
                           check=True)
        return float(json.loads(r.stdout.strip().splitlines()[-1]))
    finally:
        shutil.rmtree(cache, ignore_errors=True)


class FirstCall:
    params = (["auto", "numba"], CASES)
    param_names = ["selection", "case"]
    timeout = 900.0
    # one process per timed call, each with an empty cache
    number = 1
    repeat = 1
    warmup_time = 0.0

    def setup(self, selection: str, case: str) -> None:
        require("numba")

    def time_first_call(self, selection: str, case: str) -> None:
        """Wall time of a fresh process's first call, interpreter start and
        imports included (about 0.5 s of it)."""
        first_call(case, selection)
