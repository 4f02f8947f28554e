"""Backend discovery through the ``matgrad.backends`` entry-point group.

Each entry point is imported and asked for its backend on its own, so that one
broken plugin (import error, exception in the hook, wrong return type) is
recorded as unavailable with its error and never breaks ``import matgrad`` or
the other plugins.  pluggy's ``load_setuptools_entrypoints`` stops at the first
failure, which is why it is not used here.  Discovery is lazy (first use) and
repeated by :func:`refresh_backends`.
"""

from __future__ import annotations

import importlib
import threading
import traceback
from dataclasses import dataclass
from importlib import metadata

import pluggy

from ._backend import Backend, BackendInfo
from ._hooks import PROJECT, BackendSpec

__all__ = [
    "ENTRY_POINT_GROUP",
    "Entry",
    "entries",
    "list_backends",
    "refresh_backends",
]

ENTRY_POINT_GROUP = "matgrad.backends"


@dataclass(frozen=True)
class Entry:
    """One registered backend: the instance, or why there is none."""

    name: str
    backend: Backend | None
    reason: str  # empty when available

    @property
    def available(self) -> bool:
        return self.backend is not None and not self.reason

    def info(self) -> BackendInfo:
        b = self.backend
        return BackendInfo(
            name=self.name,
            available=self.available,
            reason=self.reason,
            priority=b.priority if b is not None else 0,
            # an unavailable backend may not be able to say (its library is missing)
            version=_safe(lambda: b.version) if b is not None and self.available else "",
            device=_safe(lambda: b.device) if b is not None and self.available else "",
            array_modules=tuple(b.array_modules) if b is not None else (),
        )


def _safe(get: object) -> str:
    try:
        return str(get())  # type: ignore[operator]
    except Exception as exc:  # noqa: BLE001 - a metadata property must not break listing
        return f"<error: {exc}>"


def _describe(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _load_entry(ep: metadata.EntryPoint, pm: pluggy.PluginManager) -> Entry:
    """Import one entry point and call its ``matgrad_backend`` hook."""
    try:
        module = ep.load()
    except BaseException as exc:  # noqa: BLE001 - SystemExit in a plugin too
        return Entry(ep.name, None, f"import failed: {_describe(exc)}")
    try:
        pm.register(module, name=ep.name)
    except BaseException as exc:  # noqa: BLE001
        return Entry(ep.name, None, f"not a valid plugin: {_describe(exc)}")
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
        backend = impls[0].function()
    except BaseException as exc:  # noqa: BLE001
        return Entry(ep.name, None, f"matgrad_backend() raised {_describe(exc)}")
    if not isinstance(backend, Backend):
        return Entry(
            ep.name,
            None,
            f"matgrad_backend() returned {type(backend).__name__!s}, "
            "not a matgrad.Backend instance",
        )
    if backend.name != ep.name:
        return Entry(
            ep.name,
            None,
            f"backend calls itself {backend.name!r} but its entry point is "
            f"named {ep.name!r}",
        )
    try:
        ok, why = backend.available()
    except BaseException as exc:  # noqa: BLE001
        ok, why = False, f"available() raised {_describe(exc)}"
    return Entry(ep.name, backend, "" if ok else (why or "unavailable"))


class _Registry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, Entry] | None = None

    def entries(self) -> dict[str, Entry]:
        found = self._entries
        if found is None:
            with self._lock:
                if self._entries is None:
                    self._entries = self._discover()
                found = self._entries
        return found

    def refresh(self) -> None:
        with self._lock:
            self._entries = None

    @staticmethod
    def _discover() -> dict[str, Entry]:
        pm = pluggy.PluginManager(PROJECT)
        pm.add_hookspecs(BackendSpec)
        found: dict[str, Entry] = {}
        seen_values: dict[str, str] = {}
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in found:
                if seen_values[ep.name] != ep.value:
                    prev = found[ep.name]
                    found[ep.name] = Entry(
                        ep.name,
                        prev.backend,
                        prev.reason
                        or f"two installed packages register {ep.name!r} "
                        f"({seen_values[ep.name]} and {ep.value})",
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
    """One :class:`BackendInfo` per registered backend, sorted by name."""
    return [e.info() for e in entries().values()]
