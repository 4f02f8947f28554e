"""Array types of the inputs: which one wins, and which backend owns it.

Both the front end (:mod:`matgrad._frontend`) and selection
(:mod:`matgrad._select`, for ``get_backend(like=x)``) ask these questions;
the answers come from what the registered backends declare
(:attr:`matgrad.Backend.array_modules`,
:attr:`matgrad.Backend.array_precedence`) and from the PyTorch and JAX
adapters (:mod:`matgrad._interop`), never from a list of backend names.
"""

from __future__ import annotations

from ._backend import Backend, array_module_of
from ._interop import FRAMEWORKS
from ._registry import Entry, entries

__all__ = ["HOST", "input_module", "native_backend_for", "precedence"]

#: The host array type: NumPy (Python scalars, lists and tuples count as
#: NumPy).  It ranks 0 among mixed inputs, below every other array type.
HOST = "numpy"

# The precedence table for one state of the registry: (entries, table).
# ``entries()`` returns the same dict until a refresh or a demotion.
_cache: tuple[dict[str, Entry], dict[str, int]] | None = None


def _table() -> dict[str, int]:
    """Array type → rank declared by the registered backends and adapters."""
    global _cache
    found = entries()
    cached = _cache
    if cached is not None and cached[0] is found:
        return cached[1]
    table = {module: fw.array_precedence for module, fw in FRAMEWORKS.items()}
    for entry in found.values():
        if entry.backend is None:
            continue
        for module in entry.array_modules:
            table[module] = max(table.get(module, 0), entry.array_precedence)
    _cache = (found, table)
    return table


def precedence(module: str) -> int:
    """Rank of array type ``module`` among mixed inputs (higher wins): 0 for
    NumPy; for any other type the highest :attr:`~matgrad.Backend.array_precedence`
    declared by a registered backend that lists it (or by matgrad's adapter
    for it), and at least 1."""
    if module == HOST:
        return 0
    return max(1, _table().get(module, 1))


def input_module(*xs: object) -> str:
    """The array type that wins among mixed inputs (``"numpy"`` by default;
    between equal ranks, the first input's)."""
    best, rank = HOST, 0
    for x in xs:
        mod = array_module_of(x)
        if mod == HOST:
            continue
        r = precedence(mod)
        if r > rank:
            best, rank = mod, r
    return best


def native_backend_for(module: str) -> Backend | None:
    """An available registered backend whose native type is ``module``
    (the highest priority first); None for NumPy, which every backend can
    take through the front end."""
    if module == HOST:
        return None
    cands = [
        e
        for e in entries().values()
        if e.available and e.backend is not None and module in e.array_modules
    ]
    cands.sort(key=lambda e: -e.priority)
    return cands[0].backend if cands else None
