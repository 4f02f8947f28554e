"""Holds discovery inside its hook while a test sets GATE (threading tests)."""

import threading

from mgtest_edge_base import EdgeBackend

import matgrad

#: Set by a test: the hook signals STARTED, then waits for GATE.
GATE: threading.Event | None = None
STARTED = threading.Event()


class Gated(EdgeBackend):
    name = "gated"


@matgrad.hookimpl
def matgrad_backend() -> matgrad.Backend:
    if GATE is not None:
        STARTED.set()
        GATE.wait(60)
    return Gated()
