"""The short way through for a call seen before.

A public call validates its input, resolves the dtype, selects a backend,
makes the canonical ``(B, m, n)`` array, runs the backend's method and
checks what comes back (:mod:`matgrad._frontend`).  For a NumPy array of
one of the four computed dtypes, everything but running the method is
decided by facts that repeat in a loop: the operation, the input's dtype,
shape and memory layout, and the backend selection in force.  The first
call with those facts goes the full way; if it ran on the backend the
selection chose (no deferral) and passed every check, its route — that
backend — is remembered under them (:func:`remember`), and
a later call with the same facts runs the same method of that backend on
the same canonical array directly (:func:`run`).  The result is the same,
bit for bit, since the same method receives an identical array.

What the key holds, and why each part:

* operation, dtype, shape, C-contiguity: the canonical array's type (a
  compiled kernel is typed by dtype, layout and writability) and which
  kernel runs (Numba compiles one per path, and a path is picked by shape);
* the selection: the call's ``backend=`` string if it names one (as
  ``matgrad.torch`` and ``matgrad.jax`` do, carrying the backend their
  forward resolved), else ``use_backend``'s context value, ``set_backend``'s
  process-wide value and ``$MATGRAD_BACKEND`` as read now (each read per
  call, as the full way reads them);
* the registry's current table of backends (checked by identity: a refresh
  or a backend marked unavailable makes a new table, and the route lapses).

Every route is forgotten when a :data:`matgrad.config` setting changes (a
threshold may change the path a shape takes).  With ``return_value=True`` the
route of the value method (``det_value_grad``, ...) is remembered and taken
the same way (:func:`run_values`).  Calls with ``backend=`` given as
anything but a string (an instance, a list, a record), other array types,
other dtypes, empty inputs, or with matgrad's debug logging on (which
reports the backend of every call) always take the full way.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from . import _config, _registry, _select
from ._operations import METHODS

__all__ = ["remember", "run", "run_values"]

_log = logging.getLogger("matgrad")
#: At most this many routes (a loop uses one; shapes that change every
#: call would otherwise grow the table without bound).
MAX_ROUTES = 256

Route = tuple[Any, object]  # (the backend that ran, the registry's table then)
_routes: dict[tuple[Any, ...], Route] = {}
_COMPUTED = frozenset(np.dtype(t) for t in ("float32", "float64", "complex64", "complex128"))
#: The real dtype of each computed dtype, by its character.
_REAL = {"f": np.dtype(np.float32), "d": np.dtype(np.float64),
         "F": np.dtype(np.float32), "D": np.dtype(np.float64)}


def _forget(_setting: str = "") -> None:
    _routes.clear()


_config.on_change(_forget)


def _key(op: str, x: np.ndarray, backend: str | None) -> tuple[Any, ...]:
    if backend is not None:  # named in the call: the selection state plays no part
        return (op, x.dtype, x.shape, x.flags.c_contiguous, backend)
    return (op, x.dtype, x.shape, x.flags.c_contiguous, _select._context.get(),
            _select._global, os.environ.get(_select.ENV_VAR))


def _canonical(x: np.ndarray) -> np.ndarray:
    """The array the full way hands the backend: a read-only view of a
    C-contiguous input (its broadcast), a fresh contiguous copy otherwise."""
    if x.flags.c_contiguous:
        v = x.view()
        v.flags.writeable = False
    else:
        v = np.ascontiguousarray(x)
    m, n = x.shape[-2:]
    return v.reshape(-1, m, n)


def _call(method: str, x: Any, backend: str | None) -> tuple[Any, np.ndarray] | None:
    """``(result, canonical x)`` of ``method`` by a remembered route, or None
    when there is none (or debug logging is on)."""
    if type(x) is not np.ndarray:
        return None
    # _key and _canonical written out: this function's own cost is the point
    if backend is not None:
        key: tuple[Any, ...] = (method, x.dtype, x.shape, x.flags.c_contiguous, backend)
    else:
        key = (method, x.dtype, x.shape, x.flags.c_contiguous, _select._context.get(),
               _select._global, os.environ.get(_select.ENV_VAR))
    route = _routes.get(key)
    if route is None or route[1] is not _registry._REGISTRY._entries:
        return None
    if _log.isEnabledFor(logging.DEBUG):
        return None
    if x.flags.c_contiguous:
        xc = x.view()
        xc.flags.writeable = False
    else:
        xc = np.ascontiguousarray(x)
    xc = xc.reshape(-1, *x.shape[-2:])
    # the method looked up at each call, as the full way does (a method
    # replaced on the backend or its class since is the one that runs)
    return getattr(route[0], method)(xc), xc


def run(op: str, x: Any, backend: str | None = None) -> Any:
    """``op``'s result for ``x`` by a remembered route, or None when there is
    none (the caller then takes the full way).  ``backend``: the call's
    ``backend=`` string, if any."""
    got = _call(op, x, backend)
    if got is None:
        return None
    out, xc = got
    # The route passed the full checks once; these keep a changed backend
    # from handing back something else unnoticed (the full way then reports).
    if (type(out) is not np.ndarray or out.shape != xc.shape or out.dtype != x.dtype
            or np.may_share_memory(out, x)):
        return None
    return out.reshape(x.shape)


def run_values(method: str, x: Any, backend: str | None = None) -> tuple[np.ndarray, ...] | None:
    """The parts of value method ``method``'s result for ``x`` (``(det, C)``,
    ``(sign, log|det|, G)``, ``(‖X‖, G)``), each in the caller's shape
    (values: the batch shape), by a remembered route; None if there is none."""
    got = _call(method, x, backend)
    if got is None:
        return None
    out, xc = got
    parts = METHODS[method].parts
    if type(out) is not tuple or len(out) != len(parts):
        return None
    real = _REAL[x.dtype.char]
    batch = x.shape[:-2]
    res = []
    for part, r in zip(parts, out, strict=True):
        grad = part.kind == "grad"
        if (type(r) is not np.ndarray or r.shape != (xc.shape if grad else xc.shape[:1])
                or r.dtype != (real if part.kind == "real" else x.dtype)
                or np.may_share_memory(r, x)):
            return None
        res.append(r.reshape(x.shape if grad else batch))
    for i in range(len(out)):
        for j in range(i + 1, len(out)):
            if np.may_share_memory(out[i], out[j]):
                return None
    return tuple(res)


def remember(op: str, x: Any, canonical: Any, ran: Any, deferred: bool, dtype: Any,
             backend: str | None = None) -> None:
    """After a full call of ``op`` on ``x`` (with ``backend=`` a string or
    None, which becomes part of the key), in
    which backend ``ran`` (deferred or not) received ``canonical``: remember
    the route if it is one :func:`run` may take — the backend took a NumPy
    array exactly like the one :func:`run` makes (a backend that moves
    arrays to a device, or lays them out otherwise, is never short-cut)."""
    if (type(x) is not np.ndarray or deferred or ran is None or x.dtype != dtype
            or x.dtype not in _COMPUTED or x.ndim < 2 or x.size == 0):
        return
    if (type(canonical) is not np.ndarray or not canonical.flags.c_contiguous
            or canonical.dtype != x.dtype
            or canonical.flags.writeable == x.flags.c_contiguous):
        return
    if len(_routes) >= MAX_ROUTES:
        _routes.clear()
    _routes[_key(op, x, backend)] = (ran, _registry._REGISTRY._entries)
