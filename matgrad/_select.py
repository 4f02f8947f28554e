"""Backend selection: keyword > ``use_backend`` > ``set_backend`` > environment.

The environment variable ``MATGRAD_BACKEND`` is read each time a backend is
resolved, so changing it at run time takes effect.  A selection is a name, a
comma-separated priority list of names, or ``auto`` (every available backend,
highest priority first).  Resolution picks the first available backend of the
list that natively accepts the input's array type, else the first available
one (the front end then converts through NumPy).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator, Sequence

from ._backend import Backend, BackendInfo
from ._registry import Entry, entries

__all__ = [
    "ENV_VAR",
    "BackendLike",
    "get_backend",
    "resolve",
    "set_backend",
    "use_backend",
]

ENV_VAR = "MATGRAD_BACKEND"
AUTO = "auto"

#: What the ``backend=`` keyword takes: a name, a priority list, or an instance.
BackendLike = str | Sequence[str] | Backend | None

_context: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar(
    "matgrad_backend", default=None
)
_global: tuple[str, ...] | None = None


def _registry_report(found: dict[str, Entry]) -> str:
    if not found:
        return "no backends are registered (is matgrad installed?)"
    lines = []
    for name, e in found.items():
        lines.append(f"  {name}: " + ("available" if e.available else e.reason))
    return "registered backends:\n" + "\n".join(lines)


def _parse(selection: str | Sequence[str]) -> tuple[str, ...]:
    """Validate a selection and return it as a tuple of names."""
    if isinstance(selection, str):
        names = tuple(s.strip() for s in selection.split(",") if s.strip())
    else:
        names = tuple(selection)
        if not all(isinstance(s, str) for s in names):
            raise TypeError(f"backend names must be strings, got {selection!r}")
    if not names:
        raise ValueError("empty backend selection; give a name or 'auto'")
    found = entries()
    unknown = [n for n in names if n != AUTO and n not in found]
    if unknown:
        raise ValueError(
            f"unknown matgrad backend {', '.join(map(repr, unknown))}; "
            + _registry_report(found)
        )
    return names


def _current() -> tuple[tuple[str, ...], str]:
    """The active selection, and where it came from."""
    ctx = _context.get()
    if ctx is not None:
        return ctx, "use_backend"
    if _global is not None:
        return _global, "set_backend"
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return _parse(env), f"${ENV_VAR}={env!r}"
    return (AUTO,), "default"


def _candidates(names: Sequence[str]) -> list[Backend]:
    """Available backends in selection order (unavailable names skipped;
    their reasons appear in the error if nothing is left)."""
    found = entries()
    by_priority = sorted(
        (e for e in found.values() if e.available),
        key=lambda e: (-e.backend.priority, e.name),  # type: ignore[union-attr]
    )
    out: list[Backend] = []
    for name in names:
        group = by_priority if name == AUTO else [found[name]]
        for entry in group:
            if entry.available and entry.backend is not None and entry.backend not in out:
                out.append(entry.backend)
    return out


def resolve(backend: BackendLike, array_module: str, *, inner: bool = False) -> Backend:
    """The backend that runs a call on inputs of type ``array_module``.

    ``inner=True`` resolves the backend that runs *inside* the pieces of an
    orchestrated (e.g. Dask) array: orchestrators are skipped, and a
    selection that names only orchestrators falls back to the active
    selection, then to ``auto``.
    """
    if isinstance(backend, Backend):
        if inner and backend.orchestrates:
            return resolve(None, array_module, inner=True)
        return backend
    if backend is None:
        names, origin = _current()
    else:
        names, origin = _parse(backend), "backend="
    candidates = _candidates(names)
    if inner:
        candidates = [b for b in candidates if not b.orchestrates]
        if not candidates and backend is not None:
            return resolve(None, array_module, inner=True)
        if not candidates and names != (AUTO,):
            names, origin = (AUTO,), "auto (the selection names only orchestrators)"
            candidates = [b for b in _candidates(names) if not b.orchestrates]
    if not candidates:
        raise RuntimeError(
            f"no available matgrad backend in the selection {','.join(names)!r} "
            f"(from {origin}); " + _registry_report(entries())
        )
    for b in candidates:
        if array_module in b.array_modules:
            return b
    return candidates[0]


def set_backend(name: str | Sequence[str] | None) -> None:
    """Set the process-wide backend selection (``None`` restores the default).

    Parameters
    ----------
    name : str, sequence of str, or None
        A backend name, a comma-separated priority list or a sequence of names,
        ``"auto"``, or ``None`` to fall back to ``$MATGRAD_BACKEND``/``auto``.
    """
    global _global
    _global = None if name is None else _parse(name)


@contextlib.contextmanager
def use_backend(name: str | Sequence[str]) -> Iterator[None]:
    """Select a backend inside a ``with`` block, for this context only.

    The selection lives in a :class:`contextvars.ContextVar`, so it is private
    to the current thread and asyncio task: other threads and tasks keep their
    own selection.  Names are checked on entry.

    Examples
    --------
    >>> import numpy as np, matgrad
    >>> with matgrad.use_backend("numpy"):
    ...     matgrad.det_grad(np.eye(2))
    array([[1., 0.],
           [0., 1.]])
    """
    token = _context.set(_parse(name))
    try:
        yield
    finally:
        _context.reset(token)


def get_backend(like: object = None) -> BackendInfo:
    """Record of the backend a call on an input like ``like`` would use now.

    Parameters
    ----------
    like : array or None
        An example input; ``None`` means a NumPy array.
    """
    from ._frontend import input_module  # local: _frontend imports this module

    module = "numpy" if like is None else input_module(like)
    chosen = resolve(None, module)
    entry = entries().get(chosen.name)
    if entry is not None and entry.backend is chosen:
        return entry.info()
    return Entry(chosen.name, chosen, "").info()
