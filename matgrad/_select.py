"""Backend selection: keyword > ``use_backend`` > ``set_backend`` > environment.

The environment variable ``MATGRAD_BACKEND`` is read each time a backend is
resolved, so changing it at run time takes effect.  A selection is a name, a
comma-separated priority list of names, or ``auto`` (every available backend,
highest priority first).  Resolution picks the first available backend of the
list that natively accepts the input's array type, else the first available
one (the front end then converts through NumPy).

When ``auto`` picked the backend, the next backend in ``auto``'s order that
takes the same arrays is kept as a fallback: a backend may hand a call to it
by raising :class:`matgrad.Defer` (the Numba backend does, for a small call
whose kernel is not compiled yet; see docs/numba.md).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator, Sequence
from typing import Any

from ._arrays import HOST, input_module, native_backend_for
from ._backend import Backend, BackendInfo
from ._interop import FRAMEWORKS
from ._registry import AUTO, Entry, entries, entry_for

__all__ = [
    "ENV_VAR",
    "BackendLike",
    "carried",
    "carry",
    "get_backend",
    "load_backend",
    "resolve",
    "resolve_call",
    "set_backend",
    "use_backend",
]

ENV_VAR = "MATGRAD_BACKEND"

#: What the ``backend=`` keyword takes: a name, a priority list, an instance,
#: or a :class:`BackendInfo` record (resolved by its name).
BackendLike = str | Sequence[str] | Backend | BackendInfo | None

_context: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar(
    "matgrad_backend", default=None
)
_global: tuple[str, ...] | None = None

_ACCEPTED = (
    "a backend name, a comma-separated priority list such as 'numba,numpy', "
    "a sequence of names, 'auto', a matgrad.Backend instance "
    "(see matgrad.load_backend) or a matgrad.BackendInfo record"
)


def _short(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters, so that a runaway value (an
    environment variable, a generated name) cannot flood an error message."""
    return text if len(text) <= limit else text[:limit] + "…"


def _registry_report(found: dict[str, Entry]) -> str:
    if not found:
        return "no backends are registered (is matgrad installed?)"
    lines = []
    for name, e in found.items():
        lines.append(f"  {name}: " + ("available" if e.available else e.reason))
    return "registered backends:\n" + "\n".join(lines)


def _parse(selection: object, origin: str) -> tuple[str, ...]:
    """Validate a selection and return it as a tuple of names.

    ``origin`` says where the selection came from (``backend=``,
    ``$MATGRAD_BACKEND='...'``, ``set_backend()``), for the error messages.
    """
    if isinstance(selection, BackendInfo):
        selection = selection.name
    if isinstance(selection, str):
        names = tuple(s.strip() for s in selection.split(",") if s.strip())
    elif isinstance(selection, Sequence) and not isinstance(selection, (bytes, bytearray)):
        names = tuple(selection)
        if not all(isinstance(s, str) for s in names):
            raise TypeError(
                f"{origin}: backend names must be strings, got {_short(repr(selection))}"
            )
    else:
        raise TypeError(
            f"{origin} takes {_ACCEPTED}; got {type(selection).__name__} "
            f"{_short(repr(selection))}"
        )
    if not names:
        raise ValueError(f"{origin}: empty backend selection; give a name or 'auto'")
    found = entries()
    unknown = [n for n in names if n != AUTO and n not in found]
    if unknown:
        shown = ", ".join(repr(_short(n)) for n in unknown[:5])
        if len(unknown) > 5:
            shown += f" and {len(unknown) - 5} more"
        raise ValueError(
            f"unknown matgrad backend {shown} (from {origin}); " + _registry_report(found)
        )
    return names


def _current() -> tuple[tuple[str, ...], str]:
    """The active selection, and where it came from."""
    ctx = _context.get()
    if ctx is not None:
        return ctx, "use_backend()"
    if _global is not None:
        return _global, "set_backend()"
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        origin = f"${ENV_VAR}={_short(env)!r}"
        return _parse(env, origin), origin
    return (AUTO,), "default"


def _candidates(names: Sequence[str]) -> list[Backend]:
    """Available backends in selection order (unavailable names skipped;
    their reasons appear in the error if nothing is left)."""
    found = entries()
    by_priority = sorted(
        (e for e in found.values() if e.available), key=lambda e: (-e.priority, e.name)
    )
    out: list[Backend] = []
    for name in names:
        group = by_priority if name == AUTO else [found[name]]
        for entry in group:
            if entry.available and entry.backend is not None and entry.backend not in out:
                out.append(entry.backend)
    return out


def _only_orchestrators(names: Sequence[str]) -> bool:
    """Whether every name in the selection is an orchestrating backend (so it
    says nothing about what should run inside the pieces)."""
    found = entries()
    return all(
        n != AUTO and found[n].backend is not None and found[n].orchestrates for n in names
    )


def _none_available(names: Sequence[str], origin: str) -> RuntimeError:
    return RuntimeError(
        f"no available matgrad backend in the selection {','.join(names)!r} "
        f"(from {origin}); " + _registry_report(entries())
    )


def resolve(backend: BackendLike, array_module: str, *, inner: bool = False) -> Backend:
    """The backend that runs a call on inputs of type ``array_module``.

    ``inner=True`` resolves the backend that runs *inside* the pieces of an
    orchestrated (e.g. Dask) array: orchestrators are skipped.  A selection
    that names only orchestrators falls back to the active selection, then to
    ``auto``; a selection whose other backends are all unavailable is the
    same error as for an input that is not orchestrated.
    """
    return _resolve(backend, array_module, inner)[0]


def resolve_call(backend: BackendLike, array_module: str) -> tuple[Backend, Backend | None]:
    """:func:`resolve`, plus the backend that runs the call if the chosen one
    raises :class:`~matgrad.Defer`: the next backend in ``auto``'s order that
    takes ``array_module`` natively and does not orchestrate, and only when
    ``auto`` picked the chosen backend (it is not named in the selection);
    else None."""
    return _resolve(backend, array_module, False)


def _resolve(
    backend: BackendLike, array_module: str, inner: bool
) -> tuple[Backend, Backend | None]:
    if isinstance(backend, Backend):
        if inner and backend.orchestrates:
            return _resolve(None, array_module, True)
        return backend, None
    if backend is None:
        names, origin = _current()
    else:
        names, origin = _parse(backend, "backend="), "backend="
    candidates = _candidates(names)
    if inner:
        candidates = [b for b in candidates if not b.orchestrates]
        if not candidates and _only_orchestrators(names):
            if backend is not None:
                return _resolve(None, array_module, True)
            names, origin = (AUTO,), f"auto, as {origin} names only orchestrators"
            candidates = [b for b in _candidates(names) if not b.orchestrates]
    if not candidates:
        raise _none_available(names, origin)
    for i, b in enumerate(candidates):
        if array_module in b.array_modules:
            fallback = None
            if AUTO in names and b.name not in names:  # picked by auto
                fallback = next((c for c in candidates[i + 1:] if not c.orchestrates
                                 and array_module in c.array_modules), None)
            return b, fallback
    return candidates[0], None


def load_backend(name: str | BackendInfo) -> Backend:
    """The :class:`Backend` instance registered under ``name``.

    Pass it as ``backend=`` to skip name resolution on every call, or use it
    to call a backend's canonical operations directly.

    Parameters
    ----------
    name : str or BackendInfo
        One registered backend name (not ``"auto"``, not a list), or a record
        from :func:`matgrad.list_backends` / :func:`matgrad.get_backend`.

    Returns
    -------
    Backend
        The registry's instance (the same object every time until
        :func:`matgrad.refresh_backends`).

    Raises
    ------
    ValueError
        ``name`` is not a registered backend, or is ``"auto"`` or a list.
    RuntimeError
        The backend is registered but unavailable here (the message says why).

    Examples
    --------
    >>> import numpy as np, matgrad
    >>> b = matgrad.load_backend("numpy")
    >>> b.name
    'numpy'
    >>> matgrad.frobenius_grad(np.array([[3.0, 4.0]]), backend=b)
    array([[0.6, 0.8]])
    """
    if not isinstance(name, (str, BackendInfo)):
        raise TypeError(
            "load_backend() takes one backend name (str) or a BackendInfo; "
            f"got {type(name).__name__} {_short(repr(name))}"
        )
    names = _parse(name, "load_backend()")
    if len(names) != 1 or names[0] == AUTO:
        raise ValueError(
            "load_backend() takes one registered backend name, not 'auto' or a "
            f"list; got {_short(','.join(names))!r} (matgrad.get_backend() tells "
            "which backend the active selection picks)"
        )
    entry = entries()[names[0]]
    if not entry.available or entry.backend is None:
        raise _none_available(names, "load_backend()")
    return entry.backend


def set_backend(name: str | Sequence[str] | BackendInfo | None) -> None:
    """Set the process-wide backend selection (``None`` restores the default).

    A selection set here, ``"auto"`` included, takes precedence over
    ``$MATGRAD_BACKEND`` for the rest of the process: the environment variable
    is no longer consulted.  ``set_backend(None)`` is the way back to it (and,
    when it is unset, to ``auto``).

    Parameters
    ----------
    name : str, sequence of str, BackendInfo or None
        A backend name, a comma-separated priority list or a sequence of names,
        ``"auto"``, a :class:`BackendInfo` record (its name), or ``None`` to
        fall back to ``$MATGRAD_BACKEND``, then ``auto``.

    Raises
    ------
    ValueError
        A name is not registered (the message lists the registered backends).
    TypeError
        ``name`` is none of the accepted types.

    Examples
    --------
    >>> import matgrad
    >>> matgrad.set_backend("numpy")   # overrides $MATGRAD_BACKEND from now on
    >>> matgrad.set_backend(None)      # back to $MATGRAD_BACKEND / auto
    """
    global _global
    _global = None if name is None else _parse(name, "set_backend()")


@contextlib.contextmanager
def use_backend(name: str | Sequence[str] | BackendInfo) -> Iterator[None]:
    """Select a backend inside a ``with`` block, for this context only.

    The selection lives in a :class:`contextvars.ContextVar`, so it is private
    to the current thread and asyncio task: other threads and tasks keep their
    own selection.  Names are checked on entry.

    Examples
    --------
    >>> import numpy as np, matgrad
    >>> with matgrad.use_backend("numpy"):
    ...     matgrad.frobenius_grad(np.array([[3.0, 4.0]]))
    array([[0.6, 0.8]])
    """
    token = _context.set(_parse(name, "use_backend()"))
    try:
        yield
    finally:
        _context.reset(token)


def get_backend(like: object = None, *, inner: bool = False) -> BackendInfo:
    """Record of the backend a call on an input like ``like`` would use now.

    Parameters
    ----------
    like : array or None
        An example input; ``None`` means a NumPy array.
    inner : bool, default False
        The backend that would run *inside the pieces* of ``like`` instead:
        for an array of an orchestrating backend's type (a Dask array), the
        backend resolved for its pieces' array type; for any other input,
        the backend that pieces of its type would get.  Orchestrating
        backends are skipped, and a selection that names only orchestrators
        falls back to ``auto``.  An orchestrating backend asks this (with
        ``like=None``) for the backend to run inside the NumPy pieces it
        makes of canonical NumPy input.

    Examples
    --------
    >>> import matgrad
    >>> with matgrad.use_backend("numpy"):
    ...     matgrad.get_backend(inner=True).name
    'numpy'
    """
    module = HOST if like is None else input_module(like)
    if module in FRAMEWORKS:  # torch tensors and JAX arrays are computed as NumPy
        module = HOST
    if inner and like is not None:
        owner = native_backend_for(module)
        if owner is not None and owner.orchestrates:
            module = owner.block_module(like)
    chosen = resolve(None, module, inner=inner)
    entry = entries().get(chosen.name)
    if entry is not None and entry.backend is chosen:
        return entry.info()
    return entry_for(chosen.name, chosen).info()


# ------------------------------------------------- backends carried by name
# matgrad.torch and matgrad.jax resolve the backend when the forward runs (or
# is traced) and carry it to the backward by name: context variables do not
# reach autograd's or XLA's worker threads.  A Backend instance that is not
# the registered one of its name is kept here under a unique key.
_INSTANCES: dict[str, Backend] = {}


def carry(backend: Any) -> str:
    """Resolve ``backend`` (keyword, context, environment, auto) now for
    NumPy data; return a name that :func:`carried` turns back into it."""
    b = resolve(backend, HOST)
    entry = entries().get(b.name)
    if entry is not None and entry.backend is b:
        return b.name
    key = f"{b.name}@{id(b):x}"
    _INSTANCES[key] = b
    return key


def carried(key: str) -> Backend | str:
    """What to pass as ``backend=`` for a name from :func:`carry`."""
    return _INSTANCES.get(key, key)
