"""Backend discovery through the ``matgrad.backends`` entry-point group.

Each entry point is imported and asked for its backend on its own, so that one
broken plugin (import error, exception in the hook, wrong return type, a
metadata attribute that raises) is recorded as unavailable with its error and
never breaks ``import matgrad``, :func:`list_backends` or the other plugins.
pluggy's ``load_setuptools_entrypoints`` stops at the first failure, which is
why it is not used here.  Any exception a plugin raises counts, ``SystemExit``
included, except ``KeyboardInterrupt``: the user pressing Ctrl-C must stop the
program, not disable a backend.

Discovery is lazy (first use) and repeated by :func:`refresh_backends`.  While
one thread discovers, other threads wait for the finished registry; a plugin
that uses the registry from inside its own discovery (its import, its
``matgrad_backend()`` hook or its ``available()``) gets a ``RuntimeError``
instead of a deadlock or a half-built registry.

The names of the built-in backends (those that the ``matgrad`` distribution
itself registers in the entry-point group: ``numpy``, ``numba``, ``dask``,
``cupy``) and ``auto`` are reserved.  Another package that registers one of
them is not imported: it is listed as unavailable under ``NAME@DISTRIBUTION``
with the reason, and the built-in backend stays in place.
"""

from __future__ import annotations

import importlib
import operator
import re
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import TypeVar

import pluggy

from ._backend import Backend, BackendInfo
from ._hooks import PROJECT, BackendSpec

__all__ = [
    "AUTO",
    "ENTRY_POINT_GROUP",
    "Entry",
    "entries",
    "entry_for",
    "list_backends",
    "refresh_backends",
]

ENTRY_POINT_GROUP = "matgrad.backends"

#: The selection that means "every available backend, highest priority first".
AUTO = "auto"

#: The distribution whose entry points are the built-in backends (their
#: names are reserved).
_BUILTIN_DIST = "matgrad"

T = TypeVar("T")


class _PluginError(Exception):
    """A plugin raised while being read; ``str()`` is the reason to record."""


def _describe(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _guarded(what: str, get: Callable[[], T]) -> T:
    """``get()``, with anything it raises but ``KeyboardInterrupt`` turned into
    a :class:`_PluginError` whose message starts with ``what``."""
    try:
        return get()
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit from a plugin too (re-raised as ours)
        raise _PluginError(f"{what} raised {_describe(exc)}") from exc


def _show(x: object) -> str:
    """``repr(x)`` of a plugin's value, which must not raise either."""
    try:
        text = repr(x)
    except KeyboardInterrupt:
        raise
    except BaseException:  # noqa: BLE001 - a broken __repr__
        text = f"<{type(x).__name__} object>"
    return text if len(text) <= 80 else text[:77] + "..."


# Per-thread state: the thread discovering plugins holds the registry lock and
# must not wait on it again (that was a deadlock); reading a backend's
# version/device must not list backends again (unbounded recursion).
_local = threading.local()


def _in_metadata_read() -> bool:
    return bool(getattr(_local, "reading_metadata", False))


@dataclass(frozen=True)
class Entry:
    """One registered backend: the instance, or why there is none.

    ``priority``, ``array_modules``, ``orchestrates`` and
    ``array_precedence`` are read once, when the plugin is discovered, and
    validated there: selection uses these copies, so a plugin attribute that
    raises or changes cannot break it.
    """

    name: str
    backend: Backend | None
    reason: str  # empty when available
    priority: int = 0
    array_modules: tuple[str, ...] = ()
    orchestrates: bool = False
    array_precedence: int = 0

    @property
    def available(self) -> bool:
        return self.backend is not None and not self.reason

    def info(self) -> BackendInfo:
        """The public record.  Reads ``version`` and ``device`` now (they may
        change, e.g. a Dask cluster); if either raises, the backend is marked
        unavailable in the registry with that reason."""
        if _in_metadata_read():
            raise RuntimeError(
                "the matgrad backend registry was used while reading a backend's "
                "version or device; those properties must not list or select "
                "backends"
            )
        b = self.backend
        version = device = failure = ""
        if b is not None and self.available:
            _local.reading_metadata = True
            try:
                version = _guarded("version", lambda: str(b.version))
                device = _guarded("device", lambda: str(b.device))
            except _PluginError as exc:
                failure = str(exc)
            finally:
                _local.reading_metadata = False
        if failure:
            return _REGISTRY.demote(self, failure).info()
        return BackendInfo(
            name=self.name,
            available=self.available,
            reason=self.reason,
            priority=self.priority,
            version=version,
            device=device,
            array_modules=self.array_modules,
        )


def entry_for(name: str, backend: Backend, reason: str = "") -> Entry:
    """An :class:`Entry` for ``backend``, its selection attributes read and
    validated; any problem becomes the (unavailable) entry's reason."""
    try:
        priority = _guarded("priority", lambda: backend.priority)
        modules = _guarded("array_modules", lambda: backend.array_modules)
        orchestrates = _guarded("orchestrates", lambda: backend.orchestrates)
        precedence = _guarded("array_precedence", lambda: backend.array_precedence)
    except _PluginError as exc:
        return Entry(name, backend, str(exc))
    try:
        priority = _int(priority)
    except TypeError:
        return Entry(name, backend, f"priority is {_show(priority)}, not an int")
    try:
        precedence = _int(precedence)
    except TypeError:
        return Entry(name, backend, f"array_precedence is {_show(precedence)}, not an int")
    if (
        isinstance(modules, str)
        or not isinstance(modules, (tuple, list))
        or not all(isinstance(m, str) for m in modules)
    ):
        return Entry(
            name, backend, f"array_modules is {_show(modules)}, not a tuple of module names"
        )
    if not isinstance(orchestrates, bool):
        return Entry(name, backend, f"orchestrates is {_show(orchestrates)}, not a bool")
    return Entry(name, backend, reason, priority, tuple(modules), orchestrates, precedence)


def _int(value: object) -> int:
    """``value`` as an int: an int, not a bool or a float; numpy integers are
    fine.  ``TypeError`` otherwise."""
    if isinstance(value, bool):
        raise TypeError
    return operator.index(value)  # type: ignore[arg-type]


def _load_entry(ep: metadata.EntryPoint, pm: pluggy.PluginManager) -> Entry:
    """Import one entry point, call its ``matgrad_backend`` hook, and check
    what it returns."""
    try:
        module = _guarded("import", ep.load)
    except _PluginError as exc:
        return Entry(ep.name, None, f"import failed: {str(exc).removeprefix('import raised ')}")
    try:
        _guarded("registering it with pluggy", lambda: pm.register(module, name=ep.name))
    except _PluginError as exc:
        return Entry(ep.name, None, f"not a valid plugin: {exc}")
    impls = [
        impl
        for impl in pm.hook.matgrad_backend.get_hookimpls()
        if impl.plugin is module
    ]
    if len(impls) != 1:
        return Entry(
            ep.name,
            None,
            f"{ep.value} has {len(impls)} matgrad_backend hook implementations "
            "marked with matgrad.hookimpl (expected exactly one)",
        )
    try:
        backend = _guarded("matgrad_backend()", impls[0].function)
    except _PluginError as exc:
        return Entry(ep.name, None, str(exc))
    if not isinstance(backend, Backend):
        return Entry(
            ep.name,
            None,
            f"matgrad_backend() returned {type(backend).__name__!s}, "
            "not a matgrad.Backend instance",
        )
    try:
        name = _guarded("name", lambda: backend.name)
    except _PluginError as exc:
        return Entry(ep.name, None, str(exc))
    if name != ep.name:
        return Entry(
            ep.name,
            None,
            f"backend calls itself {_show(name)} but its entry point is named {ep.name!r}",
        )

    def availability() -> tuple[bool, str]:
        ok, why = backend.available()  # a malformed answer raises here, guarded
        return bool(ok), str(why)

    try:
        ok, why = _guarded("available()", availability)
    except _PluginError as exc:
        ok, why = False, str(exc)
    return entry_for(ep.name, backend, "" if ok else (why or "unavailable"))


def _dist_name(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    name = dist.name if dist is not None else ""
    # normalised as packaging does, so "Matgrad" and "matgrad" are one distribution
    return re.sub(r"[-_.]+", "-", name or "").lower()


def _is_builtin(ep: metadata.EntryPoint) -> bool:
    return _dist_name(ep) == _BUILTIN_DIST


def _reserved(ep: metadata.EntryPoint, builtins: set[str]) -> Entry | None:
    """The unavailable entry for a foreign claim on a reserved name (``auto``
    or one of ``builtins``), or None."""
    if ep.name != AUTO and (ep.name not in builtins or _is_builtin(ep)):
        return None
    key = f"{ep.name}@{_dist_name(ep) or ep.value}"
    if ep.name == AUTO:
        why = "'auto' is reserved for automatic selection"
    else:
        why = f"{ep.name!r} is reserved for matgrad's built-in backend"
    return Entry(
        key,
        None,
        f"ignored: {why}; entry point {ep.name} = {ep.value} of distribution "
        f"{_dist_name(ep) or '(unknown)'!r} was not imported",
    )


class _Registry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, Entry] | None = None
        self._discovering: int | None = None  # thread id while discovering

    def _refuse_reentry(self, what: str) -> None:
        # Only the discovering thread can see its own id here, so reading
        # without the lock is safe; other threads go on to wait on the lock.
        if self._discovering == threading.get_ident():
            raise RuntimeError(
                f"{what} was called during plugin discovery: a backend plugin must "
                "not list, select or run matgrad backends while it is imported or "
                "while its matgrad_backend() hook or available() runs"
            )

    def entries(self) -> dict[str, Entry]:
        found = self._entries
        if found is None:
            self._refuse_reentry(
                "matgrad.list_backends() (or another use of the backend registry)"
            )
            with self._lock:
                if self._entries is None:
                    self._discovering = threading.get_ident()
                    try:
                        self._entries = self._discover()
                    finally:
                        self._discovering = None
                found = self._entries
        return found

    def refresh(self) -> None:
        self._refuse_reentry("matgrad.refresh_backends()")
        with self._lock:
            self._entries = None

    def demote(self, entry: Entry, reason: str) -> Entry:
        """Mark a discovered ``entry`` unavailable with ``reason``; return the
        new entry.  Copy-on-write, so readers iterating the old dict are safe."""
        new = Entry(entry.name, entry.backend, reason, entry.priority,
                    entry.array_modules, entry.orchestrates, entry.array_precedence)
        self._refuse_reentry("reading a backend's version or device")
        with self._lock:
            current = self._entries
            if current is not None and current.get(entry.name) is entry:
                self._entries = {**current, entry.name: new}
        return new

    @staticmethod
    def _discover() -> dict[str, Entry]:
        pm = pluggy.PluginManager(PROJECT)
        pm.add_hookspecs(BackendSpec)
        found: dict[str, Entry] = {}
        seen_values: dict[str, str] = {}
        found_eps = list(metadata.entry_points(group=ENTRY_POINT_GROUP))
        builtins = {ep.name for ep in found_eps if _is_builtin(ep)}
        for ep in found_eps:
            refused = _reserved(ep, builtins)
            if refused is not None:
                found.setdefault(refused.name, refused)
                continue
            if ep.name in found:
                if seen_values[ep.name] != ep.value:
                    prev = found[ep.name]
                    found[ep.name] = Entry(
                        ep.name,
                        prev.backend,
                        prev.reason
                        or f"two installed packages register {ep.name!r} "
                        f"({seen_values[ep.name]} and {ep.value})",
                        prev.priority,
                        prev.array_modules,
                        prev.orchestrates,
                        prev.array_precedence,
                    )
                continue
            seen_values[ep.name] = ep.value
            found[ep.name] = _load_entry(ep, pm)
        return dict(sorted(found.items()))


_REGISTRY = _Registry()


def entries() -> dict[str, Entry]:
    """All registered backends by name (discovering them on first use)."""
    return _REGISTRY.entries()


def refresh_backends() -> None:
    """Forget what was discovered; the next use re-reads the entry points.

    Call this after installing or removing a backend package at run time.
    """
    importlib.invalidate_caches()  # see packages installed since the last look
    _REGISTRY.refresh()


def list_backends() -> list[BackendInfo]:
    """One :class:`BackendInfo` per registered backend, sorted by name.

    A plugin that failed in any way (import, hook, ``available()``, or its
    ``priority``, ``array_modules``, ``version`` or ``device`` attribute) is
    listed as unavailable with the error as its ``reason``; this function
    does not raise for it.  A third-party package that registers a reserved
    name (``auto`` or a built-in backend's name) is listed, unavailable, as
    ``NAME@DISTRIBUTION``.
    """
    return [e.info() for e in entries().values()]
