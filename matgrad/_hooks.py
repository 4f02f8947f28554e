"""pluggy markers and the hook specification of the plugin contract."""

from __future__ import annotations

import pluggy

from ._backend import Backend

__all__ = ["PROJECT", "BackendSpec", "hookimpl", "hookspec"]

#: pluggy project name, also the entry-point group prefix.
PROJECT = "matgrad"

hookspec = pluggy.HookspecMarker(PROJECT)
#: Decorate a plugin module's ``matgrad_backend`` function with this.
hookimpl = pluggy.HookimplMarker(PROJECT)


class BackendSpec:
    """Hook specifications that a backend plugin module implements."""

    @hookspec
    def matgrad_backend(self) -> Backend:  # type: ignore[empty-body]
        """Return the plugin's :class:`matgrad.Backend` instance."""
