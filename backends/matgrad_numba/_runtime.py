"""Numba runtime set-up: matgrad owns the choice of threading layer.

Numba picks its threading layer once per process, when the first parallel
kernel is compiled or loaded from the cache, and by default prefers TBB, then
GNU OpenMP, then ``workqueue``.  GNU OpenMP kills a child process that uses it
after ``fork()`` (so a fork-based ``multiprocessing.Pool`` hangs), and
``workqueue`` aborts when two threads launch parallel kernels at once.  TBB is
safe for both.  The ``tbb`` wheel puts ``libtbb.so.12`` in ``<prefix>/lib``,
which is not on the loader's path inside a virtual environment, so it is
loaded here with ``RTLD_GLOBAL`` before Numba looks for it.

Every kernel launch of the Numba backend goes through :func:`parallel_call`,
which calls :func:`ensure` first, so the layer is settled before matgrad's
first kernel whichever matgrad function runs first.  :func:`ensure` starts the
layer at once (``numba.get_num_threads()``) so that nothing can change the
configuration between the decision and the start.  The rules:

1. A layer already started by other code in the process is kept and reported.
2. A layer chosen explicitly — the ``NUMBA_THREADING_LAYER`` environment
   variable (any value, ``default`` included) or ``numba.config.THREADING_LAYER``
   set to something other than ``default`` — is respected; libtbb is still
   made loadable when that choice may use TBB.
3. Otherwise TBB when it loads (interface version ≥ 12060, as Numba requires),
   else ``workqueue``: fork-safe, unlike GNU OpenMP, but not safe for
   concurrent launches, so matgrad then serialises its own kernel launches
   with a lock (one kernel at a time, each still multi-threaded).

Whatever the layer, launches are serialised only when it is ``workqueue``.
"""

from __future__ import annotations

import ctypes
import glob
import os
import site
import sys
import threading
from collections.abc import Callable
from typing import Any

from . import _compile

__all__ = ["FALLBACK", "chunks", "describe", "ensure", "layer", "parallel_call"]

#: The layer matgrad chooses when TBB cannot be loaded and the user chose none.
FALLBACK = "workqueue"
_NAMED = ("tbb", "omp", "workqueue")

_init_lock = threading.Lock()  # guards the one-time set-up
_launch_lock = threading.Lock()  # serialises launches under ``workqueue``
_state: dict[str, Any] = {"layer": None, "serialise": False, "tbb": None}


def _reset_locks_in_child() -> None:
    # A thread of the parent may have held a lock at fork(); the child has no
    # such thread, so it starts with fresh locks.
    global _init_lock, _launch_lock
    _init_lock = threading.Lock()
    _launch_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_locks_in_child)


#: TBB's runtime library as Numba looks for it, per platform
_TBB_NAME = {"darwin": "libtbb.12.dylib", "win32": "tbb12.dll"}.get(sys.platform, "libtbb.so.12")


def _tbb_candidates() -> list[str]:
    prefixes = [sys.prefix, sys.base_prefix, os.path.dirname(os.path.dirname(sys.executable))]
    try:
        prefixes.append(site.getuserbase())
    except Exception:  # noqa: BLE001 - no user base: nothing to add
        pass
    found: list[str] = []
    for prefix in dict.fromkeys(prefixes):
        for sub in ("lib", os.path.join("Library", "bin"), "bin"):
            found += sorted(glob.glob(os.path.join(prefix, sub, _TBB_NAME + "*")))
    found.append(_TBB_NAME)  # a system-wide or conda install, found by the loader
    return found


def _load_tbb() -> str:
    """Load a Numba-compatible TBB runtime globally, once; '' on success, else
    why not."""
    if _state["tbb"] is not None:
        return str(_state["tbb"])
    errors: list[str] = []
    why = ""
    for path in _tbb_candidates():
        try:
            lib = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
        except OSError as exc:
            errors.append(str(exc))
            continue
        try:
            fn = lib.TBB_runtime_interface_version
            fn.restype = ctypes.c_int
            version = int(fn())
        except (AttributeError, OSError):
            version = 0
        why = "" if version >= 12060 else f"TBB interface version {version} < 12060"
        break
    else:
        why = "; ".join(errors[-2:]) or f"{_TBB_NAME} not found"
    _state["tbb"] = why
    return why


def _requested() -> tuple[str, bool]:
    """(layer requested from Numba, whether the user chose it explicitly)."""
    numba = sys.modules.get("numba")
    env = os.environ.get("NUMBA_THREADING_LAYER")
    configured = str(getattr(getattr(numba, "config", None), "THREADING_LAYER", env or "default"))
    configured = configured.strip().lower() or "default"
    return configured, env is not None or configured != "default"


def _started() -> str | None:
    """The layer Numba runs, or None while no layer has been started."""
    numba = sys.modules.get("numba")
    if numba is None:
        return None
    try:
        return str(numba.threading_layer())
    except ValueError:
        return None


def ensure() -> str:
    """Settle Numba's threading layer (once, before any matgrad kernel) and
    return the layer actually in use."""
    if _state["layer"] is not None:
        return str(_state["layer"])
    with _init_lock:
        if _state["layer"] is None:
            import numba

            running = _started()  # other code started one: keep it
            if running is None:
                requested, explicit = _requested()
                if requested not in ("omp", "workqueue"):
                    _load_tbb()  # lets 'tbb', 'default', 'safe', ... find the wheel's libtbb
                if explicit:
                    numba.get_num_threads()  # starts the layer now, as the user asked
                else:
                    numba.config.THREADING_LAYER = "tbb" if not _load_tbb() else FALLBACK
                    try:
                        numba.get_num_threads()  # starts the layer now, with this choice
                    except ValueError as exc:  # TBB loaded but Numba's TBB pool did not
                        _state["tbb"] = f"Numba could not start TBB: {exc}"
                        numba.config.THREADING_LAYER = FALLBACK
                        numba.get_num_threads()
                running = str(numba.threading_layer())
            _state["serialise"] = running == "workqueue"
            _state["layer"] = running
    return str(_state["layer"])


def layer() -> str:
    """The threading layer in use, starting it if needed."""
    return ensure()


def describe() -> str:
    """The layer in use, or the one the first kernel will start; never starts one."""
    running = _state["layer"] or _started()
    if running is not None:
        notes = {"omp": " (not fork-safe)", "workqueue": " (launches serialised)"}
        return f"{running}{notes.get(running, '')}"
    requested, explicit = _requested()
    tbb = not _load_tbb()
    if not explicit:
        planned = "tbb" if tbb else FALLBACK
    elif requested in _NAMED:
        planned = requested
    elif requested in ("safe", "threadsafe"):
        planned = "tbb" if tbb else ("omp" if requested == "threadsafe" else "none available")
    elif requested == "forksafe":
        planned = "tbb" if tbb else "workqueue"
    else:  # 'default', chosen explicitly: Numba's own order
        planned = "tbb" if tbb else "omp or workqueue"
    return f"{planned} (not yet started)"


def parallel_call(fn: Callable[..., Any], *args: Any) -> Any:
    """Launch a Numba kernel: the one entry point for every kernel call of
    this backend.  Settles the threading layer first, checks that the kernel
    is compiled or cached for these arguments (else defers the call, or
    announces the compile: see ``_compile.prepare``), and serialises the
    launch when that layer needs it."""
    if _state["layer"] is None:
        ensure()
    args = _compile.prepare(fn, args)  # compiled, cached, or not yet: see _compile.py
    if _state["serialise"]:
        with _launch_lock:
            return fn(*args)
    return fn(*args)


def chunks() -> int:
    """Work chunks for a parallel loop: enough to balance load across threads."""
    import numba

    ensure()
    return 64 * int(numba.get_num_threads())
