"""Raises KeyboardInterrupt in its hook when a test sets ARMED."""

from mgtest_edge_base import EdgeBackend

import matgrad

ARMED = False


class Interrupt(EdgeBackend):
    name = "interrupt"


@matgrad.hookimpl
def matgrad_backend() -> matgrad.Backend:
    if ARMED:
        raise KeyboardInterrupt
    return Interrupt()
