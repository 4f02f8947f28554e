from mgtest_edge_base import EdgeBackend

import matgrad


class BadModules(EdgeBackend):
    name = "bad_modules"
    array_modules = "numpy"  # type: ignore[assignment]  # a str, not a tuple


@matgrad.hookimpl
def matgrad_backend() -> matgrad.Backend:
    return BadModules()
