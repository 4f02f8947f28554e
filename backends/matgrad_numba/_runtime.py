"""Numba runtime set-up: a fork- and thread-safe threading layer.

Numba's GNU-OpenMP layer kills a process that forks after a parallel kernel,
and its ``workqueue`` layer aborts when two threads launch parallel kernels at
once.  TBB is safe for both.  The ``tbb`` wheel puts ``libtbb.so.12`` in
``<prefix>/lib``, which is not on the loader's path inside a virtual
environment, so it is loaded here with ``RTLD_GLOBAL`` before Numba looks for
it.  Without TBB, the ``workqueue`` layer is used and every parallel call is
serialised by a lock (correct, but one kernel at a time).
"""

from __future__ import annotations

import ctypes
import glob
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["chunks", "ensure", "layer", "parallel_call"]

F = TypeVar("F", bound=Callable[..., Any])

_lock = threading.Lock()
_state: dict[str, Any] = {"layer": None, "serialise": False}


def _load_tbb() -> str:
    """Load libtbb globally; return '' on success, else why not."""
    candidates: list[str] = []
    for prefix in {sys.prefix, sys.base_prefix, os.path.dirname(os.path.dirname(sys.executable))}:
        candidates += sorted(glob.glob(os.path.join(prefix, "lib", "libtbb.so.12*")))
    candidates.append("libtbb.so.12")  # system-wide install
    errors = []
    for path in candidates:
        try:
            ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            return ""
        except OSError as exc:
            errors.append(str(exc))
    return "; ".join(errors[-2:]) or "libtbb.so.12 not found"


def ensure() -> str:
    """Configure Numba's threading layer once (before any parallel kernel)."""
    if _state["layer"] is not None:
        return str(_state["layer"])
    with _lock:
        if _state["layer"] is None:
            import numba

            why = _load_tbb()
            if not why:
                numba.config.THREADING_LAYER = "tbb"
                _state["layer"] = "tbb"
            else:
                numba.config.THREADING_LAYER = "workqueue"
                _state["layer"] = "workqueue"
                _state["serialise"] = True
                _state["why"] = why
    return str(_state["layer"])


def layer() -> str:
    return ensure()


def parallel_call(fn: Callable[..., Any], *args: Any) -> Any:
    """Call a parallel kernel, serialised if the threading layer needs it."""
    ensure()
    if _state["serialise"]:
        with _lock:
            return fn(*args)
    return fn(*args)


def chunks() -> int:
    """Work chunks for a parallel loop: enough to balance load across threads."""
    import numba

    ensure()
    return 64 * int(numba.get_num_threads())
